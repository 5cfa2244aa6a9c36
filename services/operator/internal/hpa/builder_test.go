package hpa

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
)

func scaledObject(mutate ...func(*v1alpha1.ScaledObject)) *v1alpha1.ScaledObject {
	so := &v1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "shop", UID: "uid-1", Labels: map[string]string{"team": "checkout"}},
		Spec: v1alpha1.ScaledObjectSpec{
			ScaleTargetRef: &v1alpha1.ScaleTarget{Name: "orders-worker"},
			Triggers:       []v1alpha1.ScaleTrigger{{Type: "redis"}},
		},
	}
	for _, m := range mutate {
		m(so)
	}
	return so
}

func external(name string, avg string) autoscalingv2.MetricSpec {
	q := resource.MustParse(avg)
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ExternalMetricSourceType,
		External: &autoscalingv2.ExternalMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: name},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &q},
		},
	}
}

func withSelector(m autoscalingv2.MetricSpec, so string) autoscalingv2.MetricSpec {
	m.External.Metric.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{v1alpha1.ScaledObjectNameLabel: so}}
	return m
}

func cpu(utilization int32) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{
			Name:   corev1.ResourceCPU,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(utilization)},
		},
	}
}

func TestBuild(t *testing.T) {
	disabled := autoscalingv2.DisabledPolicySelect
	tests := map[string]struct {
		so          *v1alpha1.ScaledObject
		metrics     []autoscalingv2.MetricSpec
		wantName    string
		wantMin     int32
		wantMax     int32
		wantLabels  map[string]string
		wantTarget  autoscalingv2.CrossVersionObjectReference
		wantMetrics []autoscalingv2.MetricSpec
		wantBehav   *autoscalingv2.HorizontalPodAutoscalerBehavior
		wantErr     string
	}{
		"defaults": {
			so:          scaledObject(),
			metrics:     []autoscalingv2.MetricSpec{external("s0-redis-orders", "5")},
			wantName:    "keda-hpa-orders",
			wantMin:     1,
			wantMax:     100,
			wantLabels:  map[string]string{"team": "checkout", v1alpha1.ScaledObjectNameLabel: "orders"},
			wantTarget:  autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "orders-worker"},
			wantMetrics: []autoscalingv2.MetricSpec{withSelector(external("s0-redis-orders", "5"), "orders")},
		},
		"min 0 is 1, bounds, custom name and target kind": {
			so: scaledObject(func(so *v1alpha1.ScaledObject) {
				so.Spec.MinReplicaCount = ptr.To[int32](0)
				so.Spec.MaxReplicaCount = ptr.To[int32](7)
				so.Spec.ScaleTargetRef = &v1alpha1.ScaleTarget{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db"}
				so.Spec.Advanced = &v1alpha1.AdvancedConfig{HorizontalPodAutoscalerConfig: &v1alpha1.HorizontalPodAutoscalerConfig{Name: "orders-hpa"}}
			}),
			metrics:     []autoscalingv2.MetricSpec{external("s0-redis-orders", "5")},
			wantName:    "orders-hpa",
			wantMin:     1,
			wantMax:     7,
			wantLabels:  map[string]string{"team": "checkout", v1alpha1.ScaledObjectNameLabel: "orders"},
			wantTarget:  autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db"},
			wantMetrics: []autoscalingv2.MetricSpec{withSelector(external("s0-redis-orders", "5"), "orders")},
		},
		"min 3, excluded labels": {
			so: scaledObject(func(so *v1alpha1.ScaledObject) {
				so.Spec.MinReplicaCount = ptr.To[int32](3)
				so.Labels["internal"] = "x"
				so.Annotations = map[string]string{v1alpha1.HPAExcludedLabelsAnnotation: "internal, team"}
			}),
			metrics:     []autoscalingv2.MetricSpec{external("s0-redis-orders", "5")},
			wantName:    "keda-hpa-orders",
			wantMin:     3,
			wantMax:     100,
			wantLabels:  map[string]string{v1alpha1.ScaledObjectNameLabel: "orders"},
			wantTarget:  autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "orders-worker"},
			wantMetrics: []autoscalingv2.MetricSpec{withSelector(external("s0-redis-orders", "5"), "orders")},
		},
		"sorted by type, trigger order kept within a type": {
			so:       scaledObject(),
			metrics:  []autoscalingv2.MetricSpec{cpu(50), external("s1-cron-x", "1"), external("s2-prometheus", "750m")},
			wantName: "keda-hpa-orders", wantMin: 1, wantMax: 100,
			wantLabels: map[string]string{"team": "checkout", v1alpha1.ScaledObjectNameLabel: "orders"},
			wantTarget: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "orders-worker"},
			wantMetrics: []autoscalingv2.MetricSpec{
				withSelector(external("s1-cron-x", "1"), "orders"),
				withSelector(external("s2-prometheus", "750m"), "orders"),
				cpu(50),
			},
		},
		"scaling modifiers: one composite metric after the Resource metrics": {
			so: scaledObject(func(so *v1alpha1.ScaledObject) {
				so.Spec.Advanced = &v1alpha1.AdvancedConfig{ScalingModifiers: &v1alpha1.ScalingModifiers{Formula: "a + b", Target: "2.5", MetricType: autoscalingv2.ValueMetricType}}
			}),
			metrics:  []autoscalingv2.MetricSpec{external("s0-redis-a", "5"), cpu(80), external("s2-redis-b", "5")},
			wantName: "keda-hpa-orders", wantMin: 1, wantMax: 100,
			wantLabels: map[string]string{"team": "checkout", v1alpha1.ScaledObjectNameLabel: "orders"},
			wantTarget: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "orders-worker"},
			wantMetrics: []autoscalingv2.MetricSpec{
				cpu(80),
				{
					Type: autoscalingv2.ExternalMetricSourceType,
					External: &autoscalingv2.ExternalMetricSource{
						Metric: autoscalingv2.MetricIdentifier{Name: "composite-metric", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{v1alpha1.ScaledObjectNameLabel: "orders"}}},
						Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: ptr.To(resource.MustParse("2.500"))},
					},
				},
			},
		},
		"paused scale-in without behavior, behavior copied with paused scale-out": {
			so: scaledObject(func(so *v1alpha1.ScaledObject) {
				so.Annotations = map[string]string{v1alpha1.PausedScaleInAnnotation: "true"}
			}),
			metrics:  []autoscalingv2.MetricSpec{external("s0-redis-orders", "5")},
			wantName: "keda-hpa-orders", wantMin: 1, wantMax: 100,
			wantLabels:  map[string]string{"team": "checkout", v1alpha1.ScaledObjectNameLabel: "orders"},
			wantTarget:  autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "orders-worker"},
			wantMetrics: []autoscalingv2.MetricSpec{withSelector(external("s0-redis-orders", "5"), "orders")},
			wantBehav:   &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{SelectPolicy: &disabled}},
		},
		"behavior copied, paused scale-out keeps its rules": {
			so: scaledObject(func(so *v1alpha1.ScaledObject) {
				so.Annotations = map[string]string{v1alpha1.PausedScaleOutAnnotation: "true"}
				so.Spec.Advanced = &v1alpha1.AdvancedConfig{HorizontalPodAutoscalerConfig: &v1alpha1.HorizontalPodAutoscalerConfig{
					Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](30)}},
				}}
			}),
			metrics:  []autoscalingv2.MetricSpec{external("s0-redis-orders", "5")},
			wantName: "keda-hpa-orders", wantMin: 1, wantMax: 100,
			wantLabels:  map[string]string{"team": "checkout", v1alpha1.ScaledObjectNameLabel: "orders"},
			wantTarget:  autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "orders-worker"},
			wantMetrics: []autoscalingv2.MetricSpec{withSelector(external("s0-redis-orders", "5"), "orders")},
			wantBehav:   &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](30), SelectPolicy: &disabled}},
		},
		"bad apiVersion": {
			so:      scaledObject(func(so *v1alpha1.ScaledObject) { so.Spec.ScaleTargetRef.APIVersion = "a/b/c" }),
			wantErr: "spec.scaleTargetRef.apiVersion",
		},
		"no target name": {
			so:      scaledObject(func(so *v1alpha1.ScaledObject) { so.Spec.ScaleTargetRef.Name = "" }),
			wantErr: "spec.scaleTargetRef.name is required",
		},
		"bad scaling modifiers target": {
			so: scaledObject(func(so *v1alpha1.ScaledObject) {
				so.Spec.Advanced = &v1alpha1.AdvancedConfig{ScalingModifiers: &v1alpha1.ScalingModifiers{Formula: "a", Target: "zero"}}
			}),
			metrics: []autoscalingv2.MetricSpec{external("s0-redis-a", "5")},
			wantErr: "scalingModifiers.target",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			inputs := make([]autoscalingv2.MetricSpec, len(tc.metrics))
			for i := range tc.metrics {
				inputs[i] = *tc.metrics[i].DeepCopy()
			}
			got, err := Build(tc.so, tc.metrics)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Build() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Build() error = %v", err)
			}
			if diff := cmp.Diff(inputs, tc.metrics); diff != "" {
				t.Errorf("Build() modified its input metrics (-before +after):\n%s", diff)
			}
			if got.Name != tc.wantName || got.Namespace != tc.so.Namespace {
				t.Errorf("name = %s/%s, want %s/%s", got.Namespace, got.Name, tc.so.Namespace, tc.wantName)
			}
			if *got.Spec.MinReplicas != tc.wantMin || got.Spec.MaxReplicas != tc.wantMax {
				t.Errorf("replicas = %d..%d, want %d..%d", *got.Spec.MinReplicas, got.Spec.MaxReplicas, tc.wantMin, tc.wantMax)
			}
			if diff := cmp.Diff(tc.wantLabels, got.Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if got.Spec.ScaleTargetRef != tc.wantTarget {
				t.Errorf("scaleTargetRef = %+v, want %+v", got.Spec.ScaleTargetRef, tc.wantTarget)
			}
			if diff := cmp.Diff(tc.wantMetrics, got.Spec.Metrics, cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 && a.String() == b.String() })); diff != "" {
				t.Errorf("metrics (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantBehav, got.Spec.Behavior); diff != "" {
				t.Errorf("behavior (-want +got):\n%s", diff)
			}
			owner := metav1.GetControllerOf(got)
			if owner == nil || owner.UID != tc.so.UID || owner.Kind != "ScaledObject" || owner.APIVersion != "keda.sh/v1alpha1" || !ptr.Deref(owner.BlockOwnerDeletion, false) {
				t.Errorf("controller owner = %+v, want the ScaledObject", owner)
			}
		})
	}
}

func TestFloatQuantity(t *testing.T) {
	// resource.MustParse keeps "12.500" as written but canonicalises integral
	// values ("5.000" is 5), so this is what KEDA's HPAs carry too.
	tests := map[float64]string{0.75: "750m", 12.5: "12.500", 5: "5", 100: "100"}
	for in, want := range tests {
		q := FloatQuantity(in)
		if q.String() != want || q.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("FloatQuantity(%v) = %s, want %s", in, q.String(), want)
		}
	}
}
