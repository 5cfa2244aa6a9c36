package operatorlink

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Prometheus metrics of one Link.
type metrics struct {
	up           prometheus.Gauge
	callDuration *prometheus.HistogramVec
	retries      prometheus.Counter
	failedFast   prometheus.Counter
	probeKills   prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "ebb", Subsystem: "operator_link", Name: "up",
			Help: "1 while the link to the operator is up (connected to a replica that reports SERVING for ebb.metrics.v1.MetricsService), else 0.",
		}),
		callDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ebb", Subsystem: "operator_link", Name: "call_duration_seconds",
			Help: "Duration of GetMetrics calls to the operator, one observation per attempt, by gRPC status code. " +
				"Calls refused because the link is down are not attempts; see calls_failed_fast_total.",
			// 5 ms to about 10 s: the operator may poll a slow event source.
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"code"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ebb", Subsystem: "operator_link", Name: "call_retries_total",
			Help: "GetMetrics attempts made again after the operator answered UNAVAILABLE.",
		}),
		failedFast: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ebb", Subsystem: "operator_link", Name: "calls_failed_fast_total",
			Help: "GetMetrics calls answered UNAVAILABLE at once, without calling the operator, because the link was down.",
		}),
		probeKills: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ebb", Subsystem: "operator_link", Name: "probe_timeouts_total",
			Help: "Health probes the operator did not answer in time; each closes the connection it was sent on.",
		}),
	}
}

// RegisterMetrics registers the link's metrics with reg:
//
//   - ebb_operator_link_up, 1 while the link is up, else 0;
//   - ebb_operator_link_call_duration_seconds{code}, a histogram of every
//     attempt of a GetMetrics call, by gRPC status code;
//   - ebb_operator_link_call_retries_total, attempts made again after an
//     UNAVAILABLE answer;
//   - ebb_operator_link_calls_failed_fast_total, calls refused at once
//     because the link was down;
//   - ebb_operator_link_probe_timeouts_total, health probes the operator
//     did not answer in time.
//
// It returns an error if they are registered with reg already. The metrics
// belong to the Link, not to the package, so that a test can run several
// Links side by side.
func (l *Link) RegisterMetrics(reg prometheus.Registerer) error {
	return errors.Join(
		reg.Register(l.metrics.up),
		reg.Register(l.metrics.callDuration),
		reg.Register(l.metrics.retries),
		reg.Register(l.metrics.failedFast),
		reg.Register(l.metrics.probeKills),
	)
}
