package provider

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

const namespace = "ebb"

var (
	requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "metrics_apiserver", Name: "requests_total",
		Help: "External metric requests answered, by target (operator or delegate) and HTTP status code.",
	}, []string{"target", "code"})
	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "metrics_apiserver", Name: "request_duration_seconds",
		Help:    "Time to answer one external metric request, by target (operator or delegate).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"target"})
)

// RegisterMetrics registers the provider's metrics with reg.
func RegisterMetrics(reg prometheus.Registerer) error {
	return errors.Join(reg.Register(requests), reg.Register(requestDuration))
}

// outcome is the HTTP status code the request is answered with.
func outcome(err error) string {
	if err == nil {
		return "200"
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		return strconv.Itoa(int(st.Status().Code))
	}
	return "500"
}
