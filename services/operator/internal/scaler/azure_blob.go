package scaler

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// azureBlobScaler counts the blobs of an Azure Blob Storage container
// through one SDK client kept for the scaler's life.
type azureBlobScaler struct {
	cfg    *scalers.AzureBlobConfig
	client *container.Client
	*azureStorage
}

func newAzureBlob(c *scalers.AzureBlobConfig, deps Deps) (*azureBlobScaler, error) {
	s := &azureBlobScaler{cfg: c, azureStorage: newAzureStorage(c.Type(), c.Storage, c.BlobContainerName)}
	client, err := container.NewClientFromConnectionString(string(c.Storage.Connection), c.BlobContainerName,
		&container.ClientOptions{ClientOptions: s.clientOptions(deps)})
	if err != nil {
		// The SDK's message may quote the connection string: not shown.
		return nil, s.errorf(ErrInvalidConfig, "the connection string is not usable (an AccountKey that is not base64?)")
	}
	s.client = client
	return s, nil
}

// Poll counts the blobs as KEDA does (see scalers.AzureBlobConfig): a flat
// listing under the prefix with globPattern (the names matching it) or
// recursive (all), otherwise one level under the prefix by the delimiter,
// where only blobs count, not virtual directories. Every page of the
// listing is read. Active is count > activationBlobCount.
func (s *azureBlobScaler) Poll(ctx context.Context) (Reading, error) {
	if s.closed.Load() {
		return Reading{}, s.errorf(ErrClosed, "")
	}
	var prefix *string
	if s.cfg.Prefix != "" {
		p := s.cfg.Prefix
		prefix = &p
	}
	var n int64
	if s.cfg.Flat() {
		pager := s.client.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: prefix})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return Reading{}, s.sdkError(ctx, "list blobs", err)
			}
			if page.Segment == nil {
				continue
			}
			for _, b := range page.Segment.BlobItems {
				if b != nil && b.Name != nil && s.cfg.Matches(*b.Name) {
					n++
				}
			}
		}
	} else {
		pager := s.client.NewListBlobsHierarchyPager(s.cfg.Delimiter, &container.ListBlobsHierarchyOptions{Prefix: prefix})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return Reading{}, s.sdkError(ctx, "list blobs", err)
			}
			if page.Segment != nil {
				n += int64(len(page.Segment.BlobItems))
			}
		}
	}
	return Reading{Value: *resource.NewQuantity(n, resource.DecimalSI), Active: n > s.cfg.ActivationBlobCount}, nil
}

// Close marks the scaler closed. It is idempotent.
func (s *azureBlobScaler) Close() error {
	s.close()
	return nil
}
