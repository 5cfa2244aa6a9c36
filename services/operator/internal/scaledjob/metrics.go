package scaledjob

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Prometheus metrics of the ScaledJob controller and its loop. No metric
// carries a ScaledJob label: the ScaledJob at fault is in the logs, its
// events and its status.
var (
	reconcileTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "ebb", Subsystem: "scaledjob", Name: "reconcile_total",
		Help: "ScaledJob reconciles by result (success, error).",
	}, []string{"result"})
	reconcileDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "ebb", Subsystem: "scaledjob", Name: "reconcile_duration_seconds",
		Help:    "Time taken by one ScaledJob reconcile.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
	})
	pollDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "ebb", Subsystem: "scaledjob", Name: "poll_duration_seconds",
		Help:    "Time taken by one poll of a ScaledJob: reading its triggers, creating and deleting its Jobs.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	})
	scheduled = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "ebb", Subsystem: "scaledjob", Name: "scheduled",
		Help: "ScaledJobs the loop polls (valid and not paused, on the leader).",
	})
	jobsCreated = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "ebb", Subsystem: "scaledjob", Name: "jobs_created_total",
		Help: "Jobs created for ScaledJobs.",
	})
	jobCreateErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "ebb", Subsystem: "scaledjob", Name: "job_create_errors_total",
		Help: "Failed Job creations (each stops the creations of its poll).",
	})
	jobsDeleted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "ebb", Subsystem: "scaledjob", Name: "jobs_deleted_total",
		Help: "Jobs of ScaledJobs deleted, by reason (history: finished Jobs beyond the history limits; rollout: running Jobs of an older generation).",
	}, []string{"reason"})
)

// RegisterMetrics registers the controller's metrics with reg. Call it
// once per registry.
func RegisterMetrics(reg prometheus.Registerer) error {
	return errors.Join(
		reg.Register(reconcileTotal),
		reg.Register(reconcileDuration),
		reg.Register(pollDuration),
		reg.Register(scheduled),
		reg.Register(jobsCreated),
		reg.Register(jobCreateErrors),
		reg.Register(jobsDeleted),
	)
}
