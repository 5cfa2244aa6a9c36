package v1alpha1

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestScaledObjectHelpers(t *testing.T) {
	tests := map[string]struct {
		so       ScaledObject
		wantHPA  string
		wantGVK  schema.GroupVersionKind
		wantErr  bool
		wantForm bool
	}{
		"defaults": {
			so:      ScaledObject{Spec: ScaledObjectSpec{ScaleTargetRef: &ScaleTarget{Name: "web"}}},
			wantHPA: "keda-hpa-", wantGVK: schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
		},
		"custom HPA name, custom kind, formula": {
			so: ScaledObject{Spec: ScaledObjectSpec{
				ScaleTargetRef: &ScaleTarget{Name: "db", APIVersion: "example.com/v2", Kind: "Database"},
				Advanced: &AdvancedConfig{
					HorizontalPodAutoscalerConfig: &HorizontalPodAutoscalerConfig{Name: "db-hpa"},
					ScalingModifiers:              &ScalingModifiers{Formula: "a + b"},
				},
			}},
			wantHPA: "db-hpa", wantGVK: schema.GroupVersionKind{Group: "example.com", Version: "v2", Kind: "Database"}, wantForm: true,
		},
		"empty scaling modifiers have no formula": {
			so:      ScaledObject{Spec: ScaledObjectSpec{ScaleTargetRef: &ScaleTarget{Name: "web"}, Advanced: &AdvancedConfig{ScalingModifiers: &ScalingModifiers{Formula: "  "}}}},
			wantHPA: "keda-hpa-", wantGVK: schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
		},
		"bad apiVersion": {
			so:      ScaledObject{Spec: ScaledObjectSpec{ScaleTargetRef: &ScaleTarget{Name: "web", APIVersion: "a/b/c"}}},
			wantHPA: "keda-hpa-", wantErr: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.so.HPAName(); got != tc.wantHPA+tc.so.Name {
				t.Errorf("HPAName() = %q, want %q", got, tc.wantHPA)
			}
			gvk, err := tc.so.ScaleTargetGVK()
			if (err != nil) != tc.wantErr || (!tc.wantErr && gvk != tc.wantGVK) {
				t.Errorf("ScaleTargetGVK() = %v, %v; want %v (error: %v)", gvk, err, tc.wantGVK, tc.wantErr)
			}
			if got := tc.so.HasScalingModifiersFormula(); got != tc.wantForm {
				t.Errorf("HasScalingModifiersFormula() = %v, want %v", got, tc.wantForm)
			}
		})
	}
	if !IsAnnotationTrue(map[string]string{"a": "True"}, "a") || IsAnnotationTrue(map[string]string{"a": "yes"}, "a") || IsAnnotationTrue(nil, "a") {
		t.Error("IsAnnotationTrue: want true only for \"true\" in any case")
	}
}

func TestPausedState(t *testing.T) {
	tests := map[string]struct {
		annotations  map[string]string
		wantPaused   bool
		wantReplicas int32 // -1: none
		wantErr      bool
	}{
		"not paused":          {wantReplicas: -1},
		"paused":              {annotations: map[string]string{PausedAnnotation: "true"}, wantPaused: true, wantReplicas: -1},
		"paused false":        {annotations: map[string]string{PausedAnnotation: "false"}, wantReplicas: -1},
		"paused at 2":         {annotations: map[string]string{PausedReplicasAnnotation: " 2 "}, wantPaused: true, wantReplicas: 2},
		"replicas win":        {annotations: map[string]string{PausedAnnotation: "false", PausedReplicasAnnotation: "0"}, wantPaused: true, wantReplicas: 0},
		"not a replica count": {annotations: map[string]string{PausedReplicasAnnotation: "-1"}, wantErr: true, wantReplicas: -1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			so := &ScaledObject{}
			so.Annotations = tc.annotations
			paused, replicas, err := so.PausedState()
			got := int32(-1)
			if replicas != nil {
				got = *replicas
			}
			if paused != tc.wantPaused || got != tc.wantReplicas || (err != nil) != tc.wantErr {
				t.Errorf("PausedState() = %v, %d, %v; want %v, %d, error %v", paused, got, err, tc.wantPaused, tc.wantReplicas, tc.wantErr)
			}
		})
	}
}
