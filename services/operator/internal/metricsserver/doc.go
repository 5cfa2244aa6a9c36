// Package metricsserver implements the operator's ebb.metrics.v1
// MetricsService: it answers the metrics-apiserver's GetMetrics calls by
// polling the ScaledObject's trigger through the shared trigger cache, maps
// failures onto the gRPC codes the service documents, and applies the
// ScaledObject's fallback after repeated failures, as KEDA does.
package metricsserver
