package promserve

import (
	"errors"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"
)

// NewRegistry returns a registry holding the Go and process collectors.
func NewRegistry() (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	if err := errors.Join(
		reg.Register(collectors.NewGoCollector()),
		reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
	); err != nil {
		return nil, err
	}
	return reg, nil
}

// HandlerOption changes what Handler serves.
type HandlerOption func(*http.ServeMux)

// WithProfiling also serves Go's runtime profiles at /debug/pprof/ (the
// --profiling flag of ebb's services; off by default, since a profile
// request costs CPU and shows the process's internals).
func WithProfiling(enabled bool) HandlerOption {
	return func(mux *http.ServeMux) {
		if !enabled {
			return
		}
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
}

// Handler serves reg at /metrics, in the OpenMetrics format to scrapers
// that ask for it. Collection errors are logged to logger and the metrics
// that could be collected are served.
func Handler(reg *prometheus.Registry, logger klog.Logger, opts ...HandlerOption) http.Handler {
	mux := http.NewServeMux()
	for _, o := range opts {
		o(mux)
	}
	mux.Handle("/metrics", promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:          errorLog{logger},
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          reg,
		EnableOpenMetrics: true,
	})))
	return mux
}

// errorLog passes promhttp's errors to a logger.
type errorLog struct{ logger klog.Logger }

func (l errorLog) Println(v ...any) {
	l.logger.Error(nil, "Serving metrics", "details", v)
}
