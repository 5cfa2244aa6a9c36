package scalers

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// GraphiteConfig is a graphite trigger; its metric is s<i>-graphite with
// target threshold.
//
// Metadata: serverAddress, query and queryTime (required), threshold
// (default 100), activationThreshold (default 0), authMode (basic, or
// unset); username and password from the TriggerAuthentication (username
// required with authMode basic).
type GraphiteConfig struct {
	ServerAddress string
	Query         string
	QueryTime     string
	Threshold     float64
	Activation    float64
	AuthMode      string
	Username      string
	Password      Secret

	index      int
	targetType autoscalingv2.MetricTargetType
}

func parseGraphite(r *reader) Config {
	c := &GraphiteConfig{index: r.t.Index}
	c.targetType = r.externalTargetType()
	c.ServerAddress = r.str(meta("serverAddress").req())
	c.Query = r.str(meta("query").req())
	c.QueryTime = r.str(meta("queryTime").req())
	c.Threshold = r.float(meta("threshold").withDefault("100"))
	c.Activation = r.float(meta("activationThreshold"))
	c.AuthMode = r.str(meta("authMode").oneOf("basic"))
	c.Username = r.str(auth("username"))
	c.Password = r.secret(auth("password"))
	if c.AuthMode == "basic" && c.Username == "" {
		r.fail("username", "username (from the TriggerAuthentication) is required when authMode is basic")
	}
	return c
}

// Type returns "graphite".
func (c *GraphiteConfig) Type() string { return "graphite" }

// MetricName returns s<i>-graphite.
func (c *GraphiteConfig) MetricName() string { return ExternalMetricName(c.index, "graphite") }

// MetricSpec returns the External metric with target threshold.
func (c *GraphiteConfig) MetricSpec() (autoscalingv2.MetricSpec, error) {
	return externalMetricSpec(c.MetricName(), c.targetType, FloatQuantity(c.Threshold)), nil
}

// ActivationThreshold is activationThreshold (default 0).
func (c *GraphiteConfig) ActivationThreshold() float64 { return c.Activation }
