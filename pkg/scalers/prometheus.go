package scalers

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// PrometheusConfig is a prometheus trigger; its metric is s<i>-prometheus
// with target threshold.
//
// Metadata: serverAddress, query, threshold (required);
// activationThreshold, namespace, queryParameters and customHeaders
// (key=value,...), ignoreNullValues (default true), unsafeSsl, awsRegion,
// timeout (milliseconds), and the HTTPAuth settings.
type PrometheusConfig struct {
	ServerAddress       string
	Query               string
	QueryParameters     map[string]string
	Threshold           float64
	Activation          float64
	Namespace           string
	CustomHeaders       map[string]string
	IgnoreNullValues    bool
	UnsafeSSL           bool
	AWSRegion           string
	TimeoutMilliseconds int64
	Auth                *HTTPAuth

	index      int
	targetType autoscalingv2.MetricTargetType
}

// prometheusCloudKeys are read by the cloud-provider transports KEDA adds
// to Prometheus (Azure Monitor managed Prometheus, Google Managed
// Prometheus, Amazon Managed Prometheus); ebb accepts them without
// parsing them here.
var prometheusCloudKeys = []string{"cloud", "azureManagedPrometheusResourceURL", "awsEndpoint", "identityOwner"}

func parsePrometheus(r *reader) Config {
	c := &PrometheusConfig{index: r.t.Index}
	c.targetType = r.externalTargetType()
	c.ServerAddress = r.str(meta("serverAddress").req())
	c.Query = r.str(meta("query").req())
	c.QueryParameters = r.keyValues(meta("queryParameters"))
	c.Threshold = r.float(meta("threshold").req())
	c.Activation = r.float(meta("activationThreshold"))
	c.Namespace = r.str(meta("namespace"))
	c.CustomHeaders = r.keyValues(meta("customHeaders"))
	c.IgnoreNullValues = r.boolean(meta("ignoreNullValues").withDefault("true"))
	c.UnsafeSSL = r.boolean(meta("unsafeSsl"))
	c.AWSRegion = r.str(from("awsRegion", fromMetadata, fromAuth))
	before := len(r.errs)
	c.TimeoutMilliseconds = r.int(meta("timeout"))
	if len(r.errs) == before && c.TimeoutMilliseconds < 0 {
		r.fail("timeout", "timeout must not be negative")
	}
	for _, k := range prometheusCloudKeys {
		r.declare(meta(k))
	}
	c.Auth = parseHTTPAuth(r)
	return c
}

// Type returns "prometheus".
func (c *PrometheusConfig) Type() string { return "prometheus" }

// MetricName returns s<i>-prometheus.
func (c *PrometheusConfig) MetricName() string { return ExternalMetricName(c.index, "prometheus") }

// MetricSpec returns the External metric with target threshold.
func (c *PrometheusConfig) MetricSpec() (autoscalingv2.MetricSpec, error) {
	return externalMetricSpec(c.MetricName(), c.targetType, FloatQuantity(c.Threshold)), nil
}

// ActivationThreshold is activationThreshold (default 0).
func (c *PrometheusConfig) ActivationThreshold() float64 { return c.Activation }
