package promserve

import (
	"errors"
	"net/http"

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

// Handler serves reg at /metrics, in the OpenMetrics format to scrapers
// that ask for it. Collection errors are logged to logger and the metrics
// that could be collected are served.
func Handler(reg *prometheus.Registry, logger klog.Logger) http.Handler {
	mux := http.NewServeMux()
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
