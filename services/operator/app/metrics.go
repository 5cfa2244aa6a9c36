package app

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"
)

// workqueueMetrics is a workqueue.MetricsProvider whose metrics live in a
// private registry. The names and the "name" label are the ones every
// Kubernetes component uses, so existing workqueue dashboards work as is.
type workqueueMetrics struct {
	depth                   *prometheus.GaugeVec
	adds                    *prometheus.CounterVec
	latency                 *prometheus.HistogramVec
	workDuration            *prometheus.HistogramVec
	unfinished              *prometheus.GaugeVec
	longestRunningProcessor *prometheus.GaugeVec
	retries                 *prometheus.CounterVec
}

var _ workqueue.MetricsProvider = (*workqueueMetrics)(nil)

// registerWorkqueueMetrics registers the workqueue metrics with reg and makes
// them the provider of every queue created afterwards. client-go accepts one
// provider per process: the first call wins.
func registerWorkqueueMetrics(reg prometheus.Registerer) error {
	m, err := newWorkqueueMetrics(reg)
	if err != nil {
		return err
	}
	workqueue.SetProvider(m)
	return nil
}

// newWorkqueueMetrics returns a workqueue.MetricsProvider whose metrics are
// registered with reg.
func newWorkqueueMetrics(reg prometheus.Registerer) (*workqueueMetrics, error) {
	const subsystem = "workqueue"
	buckets := prometheus.ExponentialBuckets(10e-9, 10, 12) // 10ns to ~3h, as in Kubernetes
	m := &workqueueMetrics{
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Subsystem: subsystem, Name: "depth",
			Help: "Current depth of the workqueue.",
		}, []string{"name"}),
		adds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: subsystem, Name: "adds_total",
			Help: "Total number of adds handled by the workqueue.",
		}, []string{"name"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: subsystem, Name: "queue_duration_seconds",
			Help:    "How long in seconds an item stays in the workqueue before being requested.",
			Buckets: buckets,
		}, []string{"name"}),
		workDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: subsystem, Name: "work_duration_seconds",
			Help:    "How long in seconds processing an item from the workqueue takes.",
			Buckets: buckets,
		}, []string{"name"}),
		unfinished: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Subsystem: subsystem, Name: "unfinished_work_seconds",
			Help: "How many seconds of work has been done that is in progress and has not been observed by work_duration. " +
				"Large values indicate stuck workers.",
		}, []string{"name"}),
		longestRunningProcessor: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Subsystem: subsystem, Name: "longest_running_processor_seconds",
			Help: "How many seconds the longest running processor of the workqueue has been running.",
		}, []string{"name"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: subsystem, Name: "retries_total",
			Help: "Total number of retries handled by the workqueue.",
		}, []string{"name"}),
	}
	if err := errors.Join(
		reg.Register(m.depth),
		reg.Register(m.adds),
		reg.Register(m.latency),
		reg.Register(m.workDuration),
		reg.Register(m.unfinished),
		reg.Register(m.longestRunningProcessor),
		reg.Register(m.retries),
	); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *workqueueMetrics) NewDepthMetric(name string) workqueue.GaugeMetric {
	return m.depth.WithLabelValues(name)
}

func (m *workqueueMetrics) NewAddsMetric(name string) workqueue.CounterMetric {
	return m.adds.WithLabelValues(name)
}

func (m *workqueueMetrics) NewLatencyMetric(name string) workqueue.HistogramMetric {
	return m.latency.WithLabelValues(name)
}

func (m *workqueueMetrics) NewWorkDurationMetric(name string) workqueue.HistogramMetric {
	return m.workDuration.WithLabelValues(name)
}

func (m *workqueueMetrics) NewUnfinishedWorkSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return m.unfinished.WithLabelValues(name)
}

func (m *workqueueMetrics) NewLongestRunningProcessorSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return m.longestRunningProcessor.WithLabelValues(name)
}

func (m *workqueueMetrics) NewRetriesMetric(name string) workqueue.CounterMetric {
	return m.retries.WithLabelValues(name)
}
