package scalers

import (
	"fmt"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The resource kinds, formats and value types of kubernetes-resource
// triggers, spelled as in their metadata.
const (
	ResourceKindConfigMap = "ConfigMap"
	ResourceKindSecret    = "Secret"

	ResourceFormatNumber = "number"
	ResourceFormatJSON   = "json"
	ResourceFormatYAML   = "yaml"

	ResourceValueFloat64  = "float64"
	ResourceValueInt64    = "int64"
	ResourceValueQuantity = "quantity"
)

// KubernetesResourceConfig is a kubernetes-resource trigger: it reads the
// value at Key of a ConfigMap's data or a Secret's data, in the namespace
// of the ScaledObject (or ScaledJob). Its metric is
// s<i>-<kind lower-cased>-<resourceName>-<key>, normalized, with target
// targetValue.
//
// Metadata: resourceKind (required, ConfigMap or Secret), resourceName
// (required), key (required), format (number, json or yaml; default
// number), valueLocation (required for json and yaml, refused for
// number), valueType (float64, int64 or quantity; default float64),
// targetValue (required, > 0 unless the trigger only feeds a scaling
// modifiers formula), activationTargetValue (default 0). No
// authentication parameters: the operator reads the object with its own
// ServiceAccount.
type KubernetesResourceConfig struct {
	// ResourceKind is ResourceKindConfigMap or ResourceKindSecret.
	ResourceKind string
	ResourceName string
	Key          string
	// Format is ResourceFormatNumber, ResourceFormatJSON or
	// ResourceFormatYAML.
	Format string
	// ValueLocation is a GJSON path (json) or a dotted path (yaml); empty
	// for number.
	ValueLocation string
	// ValueType is ResourceValueFloat64, ResourceValueInt64 or
	// ResourceValueQuantity.
	ValueType             string
	TargetValue           float64
	ActivationTargetValue float64
	// Namespace is the ScaledObject's (or ScaledJob's): the object is read
	// there, and only there, as KEDA reads it.
	Namespace string

	index      int
	targetType autoscalingv2.MetricTargetType
}

func parseKubernetesResource(r *reader) Config {
	c := &KubernetesResourceConfig{index: r.t.Index, Namespace: r.t.Namespace}
	c.targetType = r.externalTargetType()
	c.ResourceKind = r.str(meta("resourceKind").req().oneOf(ResourceKindConfigMap, ResourceKindSecret))
	c.ResourceName = r.str(meta("resourceName").req())
	c.Key = r.str(meta("key").req())
	c.Format = r.str(meta("format").withDefault(ResourceFormatNumber).oneOf(ResourceFormatNumber, ResourceFormatJSON, ResourceFormatYAML))
	c.ValueLocation = r.str(meta("valueLocation"))
	c.ValueType = r.str(meta("valueType").withDefault(ResourceValueFloat64).oneOf(ResourceValueFloat64, ResourceValueInt64, ResourceValueQuantity))
	before := len(r.errs)
	c.TargetValue = r.float(meta("targetValue").req())
	if len(r.errs) == before && c.TargetValue <= 0 && !r.t.AsMetricSource {
		r.fail("targetValue", "targetValue must be greater than 0")
	}
	c.ActivationTargetValue = r.float(meta("activationTargetValue"))

	switch c.Format {
	case ResourceFormatNumber:
		if c.ValueLocation != "" {
			r.fail("valueLocation", "valueLocation is only supported with format json or yaml")
		}
	case ResourceFormatJSON, ResourceFormatYAML:
		if c.ValueLocation == "" {
			r.fail("valueLocation", "valueLocation is required for format %s", c.Format)
		}
	}

	// KEDA admits any string; the API server would never find such an
	// object, so say so now rather than at every poll.
	if c.ResourceName != "" {
		if msgs := validation.IsDNS1123Subdomain(c.ResourceName); len(msgs) > 0 {
			r.warn("resourceName%s cannot name a ConfigMap or Secret: %s", quote(meta("resourceName"), fromMetadata, c.ResourceName), escapeLineBreaks(strings.Join(msgs, "; ")))
		}
	}
	if c.Key != "" {
		if msgs := validation.IsConfigMapKey(c.Key); len(msgs) > 0 {
			r.warn("key%s cannot be a key of a ConfigMap's or Secret's data: %s", quote(meta("key"), fromMetadata, c.Key), escapeLineBreaks(strings.Join(msgs, "; ")))
		}
	}
	return c
}

// Type returns "kubernetes-resource".
func (c *KubernetesResourceConfig) Type() string { return "kubernetes-resource" }

// MetricName returns s<i>-<kind>-<resourceName>-<key>, the kind
// lower-cased ("configmap" or "secret"), normalized, as KEDA names it.
func (c *KubernetesResourceConfig) MetricName() string {
	return ExternalMetricName(c.index, Normalize(fmt.Sprintf("%s-%s-%s", strings.ToLower(c.ResourceKind), c.ResourceName, c.Key)))
}

// MetricSpec returns the External metric with target targetValue.
func (c *KubernetesResourceConfig) MetricSpec() (autoscalingv2.MetricSpec, error) {
	return externalMetricSpec(c.MetricName(), c.targetType, FloatQuantity(c.TargetValue)), nil
}

// ActivationThreshold is activationTargetValue (default 0).
func (c *KubernetesResourceConfig) ActivationThreshold() float64 { return c.ActivationTargetValue }
