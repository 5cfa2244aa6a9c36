package admission

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts and times admissions. Create it with NewMetrics.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	warnings *prometheus.CounterVec
}

// NewMetrics returns unregistered admission metrics.
func NewMetrics() *Metrics {
	return &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ebb",
			Subsystem: "webhook",
			Name:      "admissions_total",
			Help: "Admission requests answered, by kind, operation (CREATE, UPDATE, DELETE, CONNECT; empty for a request too malformed to have one) " +
				"and result: allowed, denied (a rule is broken), error (the cluster could not be read, or a bug), bad_request (a malformed request or object).",
		}, []string{"kind", "operation", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ebb",
			Subsystem: "webhook",
			Name:      "admission_duration_seconds",
			Help:      "Time from receiving an admission request to answering it, by kind and operation.",
			// 1 ms to about 16 s, past the largest timeout the API server
			// gives a webhook call.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"kind", "operation"}),
		warnings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ebb",
			Subsystem: "webhook",
			Name:      "admission_warnings_total",
			Help:      "Warnings returned with admission responses, by kind.",
		}, []string{"kind"}),
	}
}

// RegisterMetrics registers the metrics with reg:
// ebb_webhook_admissions_total{kind,operation,result},
// ebb_webhook_admission_duration_seconds{kind,operation} and
// ebb_webhook_admission_warnings_total{kind}.
func (m *Metrics) RegisterMetrics(reg prometheus.Registerer) error {
	return errors.Join(reg.Register(m.requests), reg.Register(m.duration), reg.Register(m.warnings))
}

func (m *Metrics) observe(kind, operation, result string, warnings int, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(kind, operation, result).Inc()
	m.duration.WithLabelValues(kind, operation).Observe(elapsed.Seconds())
	if warnings > 0 {
		m.warnings.WithLabelValues(kind).Add(float64(warnings))
	}
}
