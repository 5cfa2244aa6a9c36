package scalers

import (
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/labels"
)

// KubernetesWorkloadConfig is a kubernetes-workload trigger: it counts the
// pods matching PodSelector (not Succeeded nor Failed) in PodNamespace.
// Its metric is s<i>-workload-<namespace> with target value.
//
// Metadata: podSelector (required), value (required, > 0, unless the
// trigger only feeds a scaling modifiers formula), activationValue, and
// namespace (default the ScaledObject's; "*" for all namespaces).
type KubernetesWorkloadConfig struct {
	PodSelector     labels.Selector
	Value           float64
	ActivationValue float64
	// PodNamespace is where pods are counted; "" means all namespaces.
	PodNamespace string

	index      int
	targetType autoscalingv2.MetricTargetType
}

func parseKubernetesWorkload(r *reader) Config {
	c := &KubernetesWorkloadConfig{index: r.t.Index, PodNamespace: r.t.Namespace}
	c.targetType = r.externalTargetType()
	selector := r.str(meta("podSelector").req())
	before := len(r.errs)
	c.Value = r.float(meta("value"))
	if len(r.errs) == before && c.Value <= 0 && !r.t.AsMetricSource {
		r.fail("value", "value is required and must be greater than 0")
	}
	c.ActivationValue = r.float(meta("activationValue"))
	switch ns := r.str(meta("namespace")); ns {
	case "":
	case "*":
		c.PodNamespace = ""
	default:
		c.PodNamespace = ns
	}
	if selector != "" {
		s, err := labels.Parse(selector)
		if err != nil {
			r.fail("podSelector", "podSelector%s is not a label selector: %s", quote(meta("podSelector"), fromMetadata, selector), escapeLineBreaks(err.Error()))
		}
		c.PodSelector = s
	}
	return c
}

// Type returns "kubernetes-workload".
func (c *KubernetesWorkloadConfig) Type() string { return "kubernetes-workload" }

// MetricName returns s<i>-workload-<namespace>, normalized, where
// namespace is the one pods are counted in (empty for all), as KEDA
// names it.
func (c *KubernetesWorkloadConfig) MetricName() string {
	return ExternalMetricName(c.index, Normalize(fmt.Sprintf("workload-%s", c.PodNamespace)))
}

// MetricSpec returns the External metric with target value.
func (c *KubernetesWorkloadConfig) MetricSpec() (autoscalingv2.MetricSpec, error) {
	return externalMetricSpec(c.MetricName(), c.targetType, FloatQuantity(c.Value)), nil
}

// ActivationThreshold is activationValue (default 0).
func (c *KubernetesWorkloadConfig) ActivationThreshold() float64 { return c.ActivationValue }
