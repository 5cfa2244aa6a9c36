package scalers

import (
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// MetricsAPIConfig is a metrics-api trigger; its metric is
// s<i>-metric-api-<valueLocation> with target targetValue.
//
// Metadata: url, valueLocation (required), targetValue (required unless
// the trigger only feeds a scaling modifiers formula),
// activationTargetValue, format (json, xml, yaml or prometheus; default
// json), unsafeSsl, aggregateFromKubeServiceEndpoints, aggregationType
// (average, sum, max or min; default average), and the HTTPAuth settings.
type MetricsAPIConfig struct {
	URL                               string
	ValueLocation                     string
	TargetValue                       float64
	ActivationTargetValue             float64
	Format                            string
	UnsafeSSL                         bool
	AggregateFromKubeServiceEndpoints bool
	AggregationType                   string
	Auth                              *HTTPAuth

	index      int
	targetType autoscalingv2.MetricTargetType
}

func parseMetricsAPI(r *reader) Config {
	c := &MetricsAPIConfig{index: r.t.Index}
	c.targetType = r.externalTargetType()
	before := len(r.errs)
	c.TargetValue = r.float(meta("targetValue"))
	if len(r.errs) == before && c.TargetValue == 0 && !r.t.AsMetricSource {
		r.fail("targetValue", "targetValue is required and must not be 0")
	}
	c.ActivationTargetValue = r.float(meta("activationTargetValue"))
	c.URL = r.str(meta("url").req())
	c.Format = r.str(meta("format").withDefault("json").oneOf("prometheus", "json", "xml", "yaml"))
	c.ValueLocation = r.str(meta("valueLocation").req())
	c.UnsafeSSL = r.boolean(meta("unsafeSsl"))
	c.AggregateFromKubeServiceEndpoints = r.boolean(meta("aggregateFromKubeServiceEndpoints"))
	c.AggregationType = r.str(meta("aggregationType").withDefault("average").oneOf("average", "sum", "max", "min"))
	c.Auth = parseHTTPAuth(r)
	return c
}

// Type returns "metrics-api".
func (c *MetricsAPIConfig) Type() string { return "metrics-api" }

// MetricName returns s<i>-metric-api-<valueLocation>, normalized.
func (c *MetricsAPIConfig) MetricName() string {
	return ExternalMetricName(c.index, Normalize(fmt.Sprintf("metric-api-%s", c.ValueLocation)))
}

// MetricSpec returns the External metric with target targetValue.
func (c *MetricsAPIConfig) MetricSpec() (autoscalingv2.MetricSpec, error) {
	return externalMetricSpec(c.MetricName(), c.targetType, FloatQuantity(c.TargetValue)), nil
}

// ActivationThreshold is activationTargetValue (default 0).
func (c *MetricsAPIConfig) ActivationThreshold() float64 { return c.ActivationTargetValue }
