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
