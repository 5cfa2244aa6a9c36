// Package provider is the metrics-apiserver's external metrics provider: it
// answers every external.metrics.k8s.io request with one call to the
// operator's MetricsService, and forwards requests that are not ebb's to a
// delegate adapter when one is configured.
//
// The ScaledObject is named by the scaledobject.keda.sh/name requirement of
// the request's label selector, the selector the operator puts on every HPA
// metric it writes. The operator's gRPC status codes become the API
// responses documented in proto/ebb/metrics/v1/metrics.proto: 400 for a
// malformed request, 404 for an unknown ScaledObject or metric, 503 while
// the operator cannot answer, 504 when the deadline passes, 500 otherwise.
package provider
