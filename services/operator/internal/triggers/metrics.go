package triggers

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Scaler call metrics, labelled by trigger type and Operation only: the
// cost of a label per ScaledObject at 10,000 objects is not worth it, and
// the ScaledObject of a failing call is in the logs and in its status.
var (
	callDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "ebb", Subsystem: "scaler", Name: "call_duration_seconds",
		Help:    "Time taken by one poll of a trigger's event source, by trigger type and operation (is_active: the scale loop; get_metrics: an HPA read; scaled_job: the ScaledJob loop).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
	}, []string{"type", "operation"})
	callErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "ebb", Subsystem: "scaler", Name: "call_errors_total",
		Help: "Failed polls of a trigger's event source, by trigger type and operation (is_active: the scale loop; get_metrics: an HPA read; scaled_job: the ScaledJob loop).",
	}, []string{"type", "operation"})
	invalidations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "ebb", Subsystem: "triggers", Name: "invalidations_total",
		Help: "ScaledObjects and ScaledJobs whose triggers were built again because an object their resolution read changed, by kind of that object (Secret, ConfigMap, TriggerAuthentication, ClusterTriggerAuthentication, File).",
	}, []string{"kind"})
)

// RegisterMetrics registers the scaler call metrics and the invalidation
// counter with reg. Call it once per registry.
func RegisterMetrics(reg prometheus.Registerer) error {
	return errors.Join(reg.Register(callDuration), reg.Register(callErrors), reg.Register(invalidations))
}
