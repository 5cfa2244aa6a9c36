package scalers

import (
	"errors"
	"strconv"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// CPUMemoryConfig is a cpu or memory trigger. Its metric is a Resource
// metric, or a ContainerResource metric when ContainerName is set.
//
// Metadata: value (required), activationValue (default 0),
// containerName, and the deprecated type (use the trigger's metricType).
type CPUMemoryConfig struct {
	// Resource is cpu or memory.
	Resource corev1.ResourceName
	// MetricType is Utilization or AverageValue; cpu and memory triggers
	// have no default.
	MetricType autoscalingv2.MetricTargetType
	// AverageUtilization and ActivationUtilization are set for
	// Utilization, in percent of the request.
	AverageUtilization    int32
	ActivationUtilization int32
	// AverageValue and ActivationValue are set for AverageValue.
	AverageValue    resource.Quantity
	ActivationValue resource.Quantity
	// ContainerName selects one container's usage.
	ContainerName string
}

func parseCPUMemory(r *reader, name corev1.ResourceName) Config {
	c := &CPUMemoryConfig{Resource: name}
	deprecated := autoscalingv2.MetricTargetType(r.str(meta("type").oneOf(string(autoscalingv2.UtilizationMetricType), string(autoscalingv2.AverageValueMetricType))))
	value := r.str(meta("value").req())
	activation := r.str(meta("activationValue").withDefault("0"))
	c.ContainerName = r.str(meta("containerName"))

	c.MetricType = r.t.MetricType
	if deprecated != "" {
		r.warn("metadata key \"type\" is deprecated; use the trigger's metricType")
		if c.MetricType != "" && c.MetricType != deprecated {
			r.fail("type", "metadata type %s and metricType %s disagree; set only metricType", deprecated, c.MetricType)
			return nil
		}
		c.MetricType = deprecated
	}
	switch c.MetricType {
	case autoscalingv2.UtilizationMetricType:
		c.AverageUtilization = r.utilization("value", value)
		c.ActivationUtilization = r.utilization("activationValue", activation)
	case autoscalingv2.AverageValueMetricType:
		c.AverageValue = r.quantity("value", value)
		c.ActivationValue = r.quantity("activationValue", activation)
	case "":
		r.fail("metricType", "metricType is required for %s triggers: Utilization or AverageValue", name)
	default:
		r.fail("metricType", "metricType %q is not supported for %s triggers: use Utilization or AverageValue", c.MetricType, name)
	}
	return c
}

// utilization parses a percentage as KEDA does (a 32-bit decimal integer).
func (r *reader) utilization(key, v string) int32 {
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		r.fail(key, "%s%s is not an integer percentage", key, quote(meta(key), fromMetadata, v))
	}
	return int32(n)
}

// quantity parses a resource quantity such as 500m or 1Gi.
func (r *reader) quantity(key, v string) resource.Quantity {
	if v == "" {
		return resource.Quantity{}
	}
	q, err := ParseQuantity(v)
	switch {
	case errors.Is(err, ErrQuantityOutOfRange):
		r.fail(key, "%s%s is out of range: %v", key, quote(meta(key), fromMetadata, v), err)
	case err != nil:
		r.fail(key, "%s%s is not a quantity", key, quote(meta(key), fromMetadata, v))
	}
	return q
}

// Type returns "cpu" or "memory".
func (c *CPUMemoryConfig) Type() string { return string(c.Resource) }

// MetricSpec returns the Resource (or ContainerResource) metric.
func (c *CPUMemoryConfig) MetricSpec() (autoscalingv2.MetricSpec, error) {
	target := autoscalingv2.MetricTarget{Type: c.MetricType}
	if c.MetricType == autoscalingv2.UtilizationMetricType {
		u := c.AverageUtilization
		target.AverageUtilization = &u
	} else {
		q := c.AverageValue.DeepCopy()
		target.AverageValue = &q
	}
	if c.ContainerName != "" {
		return autoscalingv2.MetricSpec{
			Type:              autoscalingv2.ContainerResourceMetricSourceType,
			ContainerResource: &autoscalingv2.ContainerResourceMetricSource{Name: c.Resource, Container: c.ContainerName, Target: target},
		}, nil
	}
	return autoscalingv2.MetricSpec{
		Type:     autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{Name: c.Resource, Target: target},
	}, nil
}

// ActivationThreshold is activationValue: a percentage for Utilization, the
// quantity as a float for AverageValue.
func (c *CPUMemoryConfig) ActivationThreshold() float64 {
	if c.MetricType == autoscalingv2.UtilizationMetricType {
		return float64(c.ActivationUtilization)
	}
	return c.ActivationValue.AsApproximateFloat64()
}
