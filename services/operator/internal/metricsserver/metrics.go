package metricsserver

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "ebb", Subsystem: "metrics_service", Name: "requests_total",
		Help: "GetMetrics calls served, by gRPC status code.",
	}, []string{"code"})
	requestDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "ebb", Subsystem: "metrics_service", Name: "request_duration_seconds",
		Help:    "Time taken to answer one GetMetrics call.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
	scalerErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "ebb", Subsystem: "metrics_service", Name: "scaler_errors_total",
		Help: "Failed reads of a trigger's event source while serving GetMetrics, by trigger type.",
	}, []string{"type"})
	fallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "ebb", Subsystem: "metrics_service", Name: "fallbacks_total",
		Help: "GetMetrics calls answered with a ScaledObject's fallback value, by trigger type (composite for a scaling modifiers formula's metric).",
	}, []string{"type"})
	fallbackObjects = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "ebb", Subsystem: "metrics_service", Name: "scaled_objects_in_fallback",
		Help: "ScaledObjects with at least one metric whose failures are answered with (or, with a formula, handled by) their fallback.",
	})
	cachedReads = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "ebb", Subsystem: "metrics_service", Name: "cached_reads_total",
		Help: "Trigger reads answered from the scale loop's last poll (useCachedMetrics) instead of polling the source.",
	})
)

// RegisterMetrics registers the MetricsService's Prometheus metrics with
// reg. Call it once per registry.
func RegisterMetrics(reg prometheus.Registerer) error {
	return errors.Join(
		reg.Register(requests),
		reg.Register(requestDuration),
		reg.Register(scalerErrors),
		reg.Register(fallbacks),
		reg.Register(fallbackObjects),
		reg.Register(cachedReads),
	)
}
