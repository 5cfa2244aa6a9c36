package tlsfiles

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	resultSuccess = "success"
	resultError   = "error"
)

type metrics struct {
	reloads  *prometheus.CounterVec
	expiry   prometheus.GaugeFunc
	caExpiry prometheus.GaugeFunc
}

func newMetrics(s *Source) *metrics {
	labels := prometheus.Labels{"source": s.opts.name}
	m := &metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace:   "ebb",
			Subsystem:   "tlsfiles",
			Name:        "reloads_total",
			Help:        "Re-reads of TLS files that found a changed set, by result: success (the new set is in use) or error (rejected, the previous set stays in use).",
			ConstLabels: labels,
		}, []string{"result"}),
		expiry: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace:   "ebb",
			Subsystem:   "tlsfiles",
			Name:        "certificate_expiry_timestamp_seconds",
			Help:        "Expiry time (Unix seconds) of the certificate in use.",
			ConstLabels: labels,
		}, func() float64 { return float64(s.NotAfter().Unix()) }),
		caExpiry: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace:   "ebb",
			Subsystem:   "tlsfiles",
			Name:        "ca_expiry_timestamp_seconds",
			Help:        "Earliest expiry time (Unix seconds) among the trusted CAs in use.",
			ConstLabels: labels,
		}, func() float64 { return float64(s.Current().CANotAfter().Unix()) }),
	}
	// Make both results visible from the start.
	m.reloads.WithLabelValues(resultSuccess)
	m.reloads.WithLabelValues(resultError)
	return m
}

// RegisterMetrics registers the metrics of this Source with reg. Sources
// registered with the same registry need distinct names (see WithName).
func (s *Source) RegisterMetrics(reg prometheus.Registerer) error {
	return errors.Join(
		reg.Register(s.metrics.reloads),
		reg.Register(s.metrics.expiry),
		reg.Register(s.metrics.caExpiry),
	)
}
