package v1alpha1

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// HPAName returns the name of the HorizontalPodAutoscaler ebb manages for
// the ScaledObject: spec.advanced.horizontalPodAutoscalerConfig.name when
// set, otherwise "keda-hpa-<name>".
func (so *ScaledObject) HPAName() string {
	if a := so.Spec.Advanced; a != nil && a.HorizontalPodAutoscalerConfig != nil && a.HorizontalPodAutoscalerConfig.Name != "" {
		return a.HorizontalPodAutoscalerConfig.Name
	}
	return HPANamePrefix + so.Name
}

// ScaleTargetGVK returns the group, version and kind of the scale target,
// defaulting to apps/v1 Deployment as KEDA does. It returns an error text
// in the second value when apiVersion does not parse.
func (so *ScaledObject) ScaleTargetGVK() (schema.GroupVersionKind, error) {
	ref := so.Spec.ScaleTargetRef
	apiVersion, kind := "apps/v1", "Deployment"
	if ref != nil && ref.APIVersion != "" {
		apiVersion = ref.APIVersion
	}
	if ref != nil && ref.Kind != "" {
		kind = ref.Kind
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return schema.GroupVersionKind{}, err
	}
	return gv.WithKind(kind), nil
}

// HasScalingModifiersFormula reports whether the ScaledObject combines its
// triggers with a scaling modifiers formula.
func (so *ScaledObject) HasScalingModifiersFormula() bool {
	a := so.Spec.Advanced
	return a != nil && a.ScalingModifiers != nil && strings.TrimSpace(a.ScalingModifiers.Formula) != ""
}

// IsAnnotationTrue reports whether annotation key is set to "true"
// (case-insensitive), the form KEDA's boolean annotations take.
func IsAnnotationTrue(annotations map[string]string, key string) bool {
	return strings.EqualFold(annotations[key], "true")
}

// PausedState reads the paused and paused-replicas annotations: paused-replicas
// (a replica count) pauses at that count, paused "true" pauses where the
// target is. A paused-replicas value that is not a replica count is an error.
func (so *ScaledObject) PausedState() (paused bool, replicas *int32, err error) {
	if v, ok := so.Annotations[PausedReplicasAnnotation]; ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil || n < 0 {
			return false, nil, fmt.Errorf("annotation %s: %q is not a replica count", PausedReplicasAnnotation, v)
		}
		r := int32(n)
		return true, &r, nil
	}
	return IsAnnotationTrue(so.Annotations, PausedAnnotation), nil, nil
}
