package scalers

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// Queue length strategies of azure-queue triggers.
const (
	// AzureQueueLengthAll counts every message: the queue's approximate
	// message count, visible or not.
	AzureQueueLengthAll = "all"
	// AzureQueueLengthVisibleOnly counts the visible messages by peeking
	// (at most 32); with 32 or more it falls back to the approximate count.
	AzureQueueLengthVisibleOnly = "visibleonly"
)

// AzureQueueConfig is an azure-queue trigger (Azure Storage Queue); its
// metric is s<i>-azure-queue-<queueName> with target queueLength.
//
// Metadata: queueName (required), queueLength (default 5),
// activationQueueLength (default 0), queueLengthStrategy (all, the
// default, or visibleonly), and the AzureStorage keys; the connection
// string comes from the TriggerAuthentication, the metadata or
// connectionFromEnv, in that order.
type AzureQueueConfig struct {
	QueueName             string
	QueueLength           int64
	ActivationQueueLength int64
	QueueLengthStrategy   string
	Storage               AzureStorage

	index      int
	targetType autoscalingv2.MetricTargetType
}

func parseAzureQueue(r *reader) Config {
	c := &AzureQueueConfig{index: r.t.Index}
	c.targetType = r.externalTargetType()
	c.QueueName = r.str(meta("queueName").req())
	c.QueueLength = r.int(meta("queueLength").withDefault("5"))
	c.ActivationQueueLength = r.int(meta("activationQueueLength"))
	c.QueueLengthStrategy = r.str(meta("queueLengthStrategy").withDefault(AzureQueueLengthAll).oneOf(AzureQueueLengthAll, AzureQueueLengthVisibleOnly))
	c.Storage = parseAzureStorage(r, "queue", fromAuth, fromMetadata, fromEnv)
	return c
}

// Type returns "azure-queue".
func (c *AzureQueueConfig) Type() string { return "azure-queue" }

// MetricName returns s<i>-azure-queue-<queueName>, normalized.
func (c *AzureQueueConfig) MetricName() string {
	return ExternalMetricName(c.index, Normalize("azure-queue-"+c.QueueName))
}

// MetricSpec returns the External metric with target queueLength.
func (c *AzureQueueConfig) MetricSpec() (autoscalingv2.MetricSpec, error) {
	return externalMetricSpec(c.MetricName(), c.targetType, IntQuantity(c.QueueLength)), nil
}

// ActivationThreshold is activationQueueLength (default 0).
func (c *AzureQueueConfig) ActivationThreshold() float64 { return float64(c.ActivationQueueLength) }
