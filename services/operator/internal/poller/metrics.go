package poller

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	scheduled prometheus.Gauge
	busy      prometheus.Gauge
	lag       prometheus.Histogram
	duration  prometheus.Histogram
}

func newMetrics() *metrics {
	return &metrics{
		scheduled: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "ebb", Subsystem: "poller", Name: "scheduled",
			Help: "Keys (ScaledObjects) scheduled for polling.",
		}),
		busy: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "ebb", Subsystem: "poller", Name: "busy_workers",
			Help: "Poll workers currently running a poll.",
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "ebb", Subsystem: "poller", Name: "lag_seconds",
			Help:    "Delay between when a poll was due and when it started (waiting for a free worker or for the previous poll of the key).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 15),
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "ebb", Subsystem: "poller", Name: "poll_duration_seconds",
			Help:    "Time taken by one poll.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
	}
}

// RegisterMetrics registers the metrics of this Poller with reg. Only one
// Poller may be registered with a given registry.
func (p *Poller) RegisterMetrics(reg prometheus.Registerer) error {
	return errors.Join(
		reg.Register(p.metrics.scheduled),
		reg.Register(p.metrics.busy),
		reg.Register(p.metrics.lag),
		reg.Register(p.metrics.duration),
	)
}
