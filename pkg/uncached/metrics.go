package uncached

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	duration *prometheus.HistogramVec
}

func newMetrics() *metrics {
	return &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ebb",
			Subsystem: "uncached",
			Name:      "read_duration_seconds",
			Help: "Duration of the direct API reads of the webhook's uncached reader, by operation " +
				"(resolve_kind, discover_scale, get_scale, get_target, list_scaledobjects_by_target, list_scaledobjects, " +
				"list_hpas, get_hpa, list_limitranges, get_triggerauthentication, get_clustertriggerauthentication; a paged LIST counts each page) " +
				"and result (success, not_found, no_match, bad_request, error).",
			// 1 ms to about 8 s: an admission's reads must fit in the
			// webhook's few-second timeout.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"operation", "result"}),
	}
}

// RegisterMetrics registers the Reader's metrics with reg:
// ebb_uncached_read_duration_seconds{operation,result}. It returns an
// error if they are registered with reg already.
func (r *Reader) RegisterMetrics(reg prometheus.Registerer) error {
	return reg.Register(r.metrics.duration)
}
