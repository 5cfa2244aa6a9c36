package hpa

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
)

// Defaults of the HPA's replica bounds.
const (
	// DefaultMinReplicas is the HPA's minReplicas when minReplicaCount is
	// unset or 0: scaling to and from zero is ebb's job, not the HPA's.
	DefaultMinReplicas int32 = 1
	// DefaultMaxReplicas is the HPA's maxReplicas when maxReplicaCount is
	// unset.
	DefaultMaxReplicas int32 = 100
)

// Build returns the HPA for so. metrics are the HPA metrics of so's
// triggers in trigger order, as the scalers produce them (External metrics
// without a selector; Resource or ContainerResource metrics for cpu and
// memory). The result is deterministic for the same inputs, so comparing it
// with the live HPA tells whether an update is needed.
func Build(so *v1alpha1.ScaledObject, metrics []autoscalingv2.MetricSpec) (*autoscalingv2.HorizontalPodAutoscaler, error) {
	gvk, err := so.ScaleTargetGVK()
	if err != nil {
		return nil, fmt.Errorf("spec.scaleTargetRef.apiVersion: %w", err)
	}
	if so.Spec.ScaleTargetRef == nil || so.Spec.ScaleTargetRef.Name == "" {
		return nil, fmt.Errorf("spec.scaleTargetRef.name is required")
	}
	specMetrics, err := hpaMetrics(so, metrics)
	if err != nil {
		return nil, err
	}
	minReplicas := DefaultMinReplicas
	if m := so.Spec.MinReplicaCount; m != nil && *m > 0 {
		minReplicas = *m
	}
	maxReplicas := DefaultMaxReplicas
	if m := so.Spec.MaxReplicaCount; m != nil {
		maxReplicas = *m
	}

	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta: metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        so.HPAName(),
			Namespace:   so.Namespace,
			Labels:      labels(so),
			Annotations: copyMap(so.Annotations),
			OwnerReferences: []metav1.OwnerReference{
				*metav1.NewControllerRef(so, v1alpha1.SchemeGroupVersion.WithKind(v1alpha1.ScaledObjectKind)),
			},
		},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{
				APIVersion: gvk.GroupVersion().String(),
				Kind:       gvk.Kind,
				Name:       so.Spec.ScaleTargetRef.Name,
			},
			MinReplicas: &minReplicas,
			MaxReplicas: maxReplicas,
			Metrics:     specMetrics,
			Behavior:    behavior(so),
		},
	}, nil
}

// labels returns the ScaledObject's labels, less those named in the
// hpa-excluded-labels annotation, plus scaledobject.keda.sh/name.
func labels(so *v1alpha1.ScaledObject) map[string]string {
	excluded := map[string]bool{}
	for _, l := range strings.Split(so.Annotations[v1alpha1.HPAExcludedLabelsAnnotation], ",") {
		if l = strings.TrimSpace(l); l != "" {
			excluded[l] = true
		}
	}
	out := make(map[string]string, len(so.Labels)+1)
	for k, v := range so.Labels {
		if !excluded[k] {
			out[k] = v
		}
	}
	out[v1alpha1.ScaledObjectNameLabel] = so.Name
	return out
}

// hpaMetrics gives every External metric the ScaledObject selector,
// replaces them with the composite metric when a scaling modifiers formula
// is set, and orders the metrics by type (stable, so trigger order is kept
// within a type) as KEDA does, so the HPA does not churn.
func hpaMetrics(so *v1alpha1.ScaledObject, metrics []autoscalingv2.MetricSpec) ([]autoscalingv2.MetricSpec, error) {
	selector := &metav1.LabelSelector{MatchLabels: map[string]string{v1alpha1.ScaledObjectNameLabel: so.Name}}
	out := make([]autoscalingv2.MetricSpec, 0, len(metrics)+1)
	composite := so.HasScalingModifiersFormula()
	for i, m := range metrics {
		m = *m.DeepCopy()
		if m.Type == autoscalingv2.ExternalMetricSourceType {
			if m.External == nil {
				return nil, fmt.Errorf("trigger %d: External metric without a definition", i)
			}
			if composite {
				continue // folded into the composite metric
			}
			m.External.Metric.Selector = selector.DeepCopy()
		}
		out = append(out, m)
	}
	slices.SortStableFunc(out, func(a, b autoscalingv2.MetricSpec) int {
		return strings.Compare(string(a.Type), string(b.Type))
	})
	if composite {
		m, err := compositeMetric(so, selector)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// compositeMetric is the one External metric that stands for all External
// triggers when a scaling modifiers formula combines them.
func compositeMetric(so *v1alpha1.ScaledObject, selector *metav1.LabelSelector) (autoscalingv2.MetricSpec, error) {
	sm := so.Spec.Advanced.ScalingModifiers
	target, err := strconv.ParseFloat(strings.TrimSpace(sm.Target), 64)
	if err != nil || target <= 0 {
		return autoscalingv2.MetricSpec{}, fmt.Errorf("spec.advanced.scalingModifiers.target %q must be a number greater than 0", sm.Target)
	}
	q := FloatQuantity(target)
	metricTarget := autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &q}
	switch sm.MetricType {
	case "", autoscalingv2.AverageValueMetricType:
	case autoscalingv2.ValueMetricType:
		metricTarget = autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: &q}
	default:
		return autoscalingv2.MetricSpec{}, fmt.Errorf("spec.advanced.scalingModifiers.metricType %q: must be AverageValue or Value", sm.MetricType)
	}
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ExternalMetricSourceType,
		External: &autoscalingv2.ExternalMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: v1alpha1.CompositeMetricName, Selector: selector},
			Target: metricTarget,
		},
	}, nil
}

// FloatQuantity formats a threshold parsed as a float the way KEDA does:
// three decimals (0.75 becomes 750m, 12.5 becomes 12.500).
func FloatQuantity(v float64) resource.Quantity {
	return resource.MustParse(fmt.Sprintf("%.3f", v))
}

// behavior copies spec.advanced.horizontalPodAutoscalerConfig.behavior and
// applies the paused-scale-in and paused-scale-out annotations by
// disabling that direction.
func behavior(so *v1alpha1.ScaledObject) *autoscalingv2.HorizontalPodAutoscalerBehavior {
	var b *autoscalingv2.HorizontalPodAutoscalerBehavior
	if a := so.Spec.Advanced; a != nil && a.HorizontalPodAutoscalerConfig != nil && a.HorizontalPodAutoscalerConfig.Behavior != nil {
		b = a.HorizontalPodAutoscalerConfig.Behavior.DeepCopy()
	}
	disabled := autoscalingv2.DisabledPolicySelect
	if v1alpha1.IsAnnotationTrue(so.Annotations, v1alpha1.PausedScaleInAnnotation) {
		if b == nil {
			b = &autoscalingv2.HorizontalPodAutoscalerBehavior{}
		}
		if b.ScaleDown == nil {
			b.ScaleDown = &autoscalingv2.HPAScalingRules{}
		}
		b.ScaleDown.SelectPolicy = &disabled
	}
	if v1alpha1.IsAnnotationTrue(so.Annotations, v1alpha1.PausedScaleOutAnnotation) {
		if b == nil {
			b = &autoscalingv2.HorizontalPodAutoscalerBehavior{}
		}
		if b.ScaleUp == nil {
			b.ScaleUp = &autoscalingv2.HPAScalingRules{}
		}
		b.ScaleUp.SelectPolicy = &disabled
	}
	return b
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
