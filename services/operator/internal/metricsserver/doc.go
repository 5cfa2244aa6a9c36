// Package metricsserver implements the operator's ebb.metrics.v1
// MetricsService: it answers the metrics-apiserver's GetMetrics calls by
// polling the ScaledObject's trigger through the shared trigger cache (or,
// for triggers with useCachedMetrics, from the scale loop's last poll),
// evaluates a scaling modifiers formula for the composite metric, maps
// failures onto the gRPC codes the service documents, and applies the
// ScaledObject's fallback after repeated failures, as KEDA does. The
// metric of an external or external-push trigger is the one its scaler
// named (see triggers.Trigger.ExternalMetricName); when the HPA asks for
// an "s<i>-…" name the scaler has not given yet during this generation,
// the server asks it.
//
// It keeps, in memory, each metric's consecutive failures and whether the
// fallback answers for it (Health, FallbackMetrics), and tells the
// ScaledObject controller when that changes in a way status.health or the
// Fallback condition shows (WithHealthNotifier), so the status is written
// on transitions, never per read.
package metricsserver
