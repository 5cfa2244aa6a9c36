package scaler

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// azureQueuePeekLimit is how many messages the visibleonly strategy peeks
// at (the service's maximum, KEDA's number).
const azureQueuePeekLimit int32 = 32

// azureQueueScaler reads the length of an Azure Storage queue through one
// SDK client kept for the scaler's life.
type azureQueueScaler struct {
	cfg    *scalers.AzureQueueConfig
	client *azqueue.QueueClient
	*azureStorage
}

func newAzureQueue(c *scalers.AzureQueueConfig, deps Deps) (*azureQueueScaler, error) {
	s := &azureQueueScaler{cfg: c, azureStorage: newAzureStorage(c.Type(), c.Storage, c.QueueName)}
	client, err := azqueue.NewQueueClientFromConnectionString(string(c.Storage.Connection), c.QueueName,
		&azqueue.ClientOptions{ClientOptions: s.clientOptions(deps)})
	if err != nil {
		// The SDK's message may quote the connection string: not shown.
		return nil, s.errorf(ErrInvalidConfig, "the connection string is not usable (an AccountKey that is not base64?)")
	}
	s.client = client
	return s, nil
}

// Poll reads the queue's length as KEDA does: the approximate message
// count (visible and invisible messages) with queueLengthStrategy all;
// with visibleonly, the number of messages a peek sees when under 32, the
// approximate count otherwise. Active is length > activationQueueLength.
func (s *azureQueueScaler) Poll(ctx context.Context) (Reading, error) {
	if s.closed.Load() {
		return Reading{}, s.errorf(ErrClosed, "")
	}
	if s.cfg.QueueLengthStrategy == scalers.AzureQueueLengthVisibleOnly {
		n := azureQueuePeekLimit
		peek, err := s.client.PeekMessages(ctx, &azqueue.PeekMessagesOptions{NumberOfMessages: &n})
		if err != nil {
			return Reading{}, s.sdkError(ctx, "peek messages", err)
		}
		if visible := int64(len(peek.Messages)); visible < int64(azureQueuePeekLimit) {
			return s.reading(visible), nil
		}
	}
	props, err := s.client.GetProperties(ctx, nil)
	if err != nil {
		return Reading{}, s.sdkError(ctx, "get queue properties", err)
	}
	if props.ApproximateMessagesCount == nil {
		return Reading{}, s.errorf(ErrBadResponse, "get queue properties: no approximate message count in the answer")
	}
	return s.reading(*props.ApproximateMessagesCount), nil
}

func (s *azureQueueScaler) reading(n int64) Reading {
	return Reading{Value: *resource.NewQuantity(n, resource.DecimalSI), Active: n > s.cfg.ActivationQueueLength}
}

// Close marks the scaler closed. It is idempotent.
func (s *azureQueueScaler) Close() error {
	s.close()
	return nil
}
