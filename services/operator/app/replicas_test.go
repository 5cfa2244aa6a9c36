package app

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	scalefake "k8s.io/client-go/scale/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedalisters "github.com/ebb-autoscaler/ebb/pkg/client/listers/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/rpc/metricsv1"
	"github.com/ebb-autoscaler/ebb/pkg/scalers"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/metricsserver"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/triggers"
)

// downScaler is an event source that is down.
type downScaler struct{}

func (downScaler) Poll(context.Context) (scaler.Reading, error) {
	return scaler.Reading{}, &scaler.Error{Type: "metrics-api", Kind: scaler.ErrUnreachable, Detail: "connection refused"}
}
func (downScaler) Close() error { return nil }

// TestMetricsServiceFallbackReplicas checks the wiring of the
// MetricsService's fallback to the target's replicas: the fallbacks that
// need them read them from the slim Deployment cache, with no API request.
func TestMetricsServiceFallbackReplicas(t *testing.T) {
	tests := map[string]struct {
		behavior   string
		replicas   int32
		metricType autoscalingv2.MetricTargetType
		want       string
	}{
		"currentReplicas":                  {behavior: v1alpha1.FallbackBehaviorCurrentReplicas, replicas: 2, want: "10"},
		"currentReplicasIfHigher":          {behavior: v1alpha1.FallbackBehaviorCurrentReplicasIfHigher, replicas: 2, want: "10"},
		"currentReplicasIfLower":           {behavior: v1alpha1.FallbackBehaviorCurrentReplicasIfLower, replicas: 8, want: "10"},
		"static, Value target: ÷ ready":    {replicas: 4, metricType: autoscalingv2.ValueMetricType, want: "2666m"},
		"static, AverageValue: no replica": {replicas: 4, want: "8"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			kube := fake.NewClientset()
			factory := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithTransform(slimKubeObject))
			scales := &scalefake.FakeScaleClient{}
			replicas := targetReplicas(factory, scales, podCounter{client: kube})
			web, _ := slimKubeObject(&appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
				Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](5)},
				Status:     appsv1.DeploymentStatus{Replicas: 5, ReadyReplicas: 3},
			})
			if err := factory.Apps().V1().Deployments().Informer().GetIndexer().Add(web); err != nil {
				t.Fatal(err)
			}

			so := &v1alpha1.ScaledObject{
				ObjectMeta: metav1.ObjectMeta{Name: "so", Namespace: "shop", UID: "uid", Generation: 1},
				Spec: v1alpha1.ScaledObjectSpec{
					ScaleTargetRef: &v1alpha1.ScaleTarget{Name: "web"},
					Fallback:       &v1alpha1.Fallback{FailureThreshold: 0, Replicas: tc.replicas, Behavior: tc.behavior},
					Triggers: []v1alpha1.ScaleTrigger{{Type: "metrics-api", MetricType: tc.metricType, Metadata: map[string]string{
						"url": "http://source.example/metrics", "valueLocation": "depth", "targetValue": "2",
					}}},
				},
				Status: v1alpha1.ScaledObjectStatus{ScaleTargetGVKR: &v1alpha1.GroupVersionKindResource{Group: "apps", Version: "v1", Kind: "Deployment", Resource: "deployments"}},
			}
			soIndexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
			if err := soIndexer.Add(so); err != nil {
				t.Fatal(err)
			}
			trigs := triggers.NewCache(scaler.Deps{}, triggers.WithScalerConstructor(func(scalers.Config, scaler.Deps) (scaler.Scaler, error) { return downScaler{}, nil }))
			defer trigs.Close()
			server := metricsserver.New(kedalisters.NewScaledObjectLister(soIndexer), trigs, nil,
				metricsServiceOptions(replicas, func(cache.ObjectName) {})...)

			resp, err := server.GetMetrics(context.Background(), &metricsv1.GetMetricsRequest{
				Namespace: "shop", ScaledObjectName: "so", MetricName: "s0-metric-api-depth",
			})
			if err != nil {
				t.Fatalf("GetMetrics() error = %v, want the fallback value", err)
			}
			if got := resp.GetValues()[0].GetValue().GetValue(); got != tc.want {
				t.Errorf("fallback value = %s, want %s", got, tc.want)
			}
			if n := len(kube.Actions()) + len(scales.Actions()); n != 0 {
				t.Errorf("%d API requests, want none: %v %v", n, kube.Actions(), scales.Actions())
			}
		})
	}
}

func TestPodCounterReadyPods(t *testing.T) {
	pod := func(ns, name, app string, phase corev1.PodPhase, ready corev1.ConditionStatus) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": app}}, Status: corev1.PodStatus{Phase: phase}}
		if ready != "" {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}
		}
		return p
	}
	client := fake.NewClientset(
		pod("shop", "a", "worker", corev1.PodRunning, corev1.ConditionTrue),
		pod("shop", "b", "worker", corev1.PodRunning, corev1.ConditionFalse),
		pod("shop", "c", "worker", corev1.PodRunning, ""),
		pod("shop", "d", "worker", corev1.PodPending, corev1.ConditionTrue),
		pod("shop", "e", "worker", corev1.PodRunning, corev1.ConditionTrue),
		pod("shop", "f", "web", corev1.PodRunning, corev1.ConditionTrue),
		pod("other", "g", "worker", corev1.PodRunning, corev1.ConditionTrue),
	)
	tests := map[string]struct {
		namespace string
		selector  labels.Set
		want      int32
	}{
		"running and ready only": {namespace: "shop", selector: labels.Set{"app": "worker"}, want: 2},
		"another selector":       {namespace: "shop", selector: labels.Set{"app": "web"}, want: 1},
		"another namespace":      {namespace: "other", selector: labels.Set{"app": "worker"}, want: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := podCounter{client: client}.CountReadyPods(context.Background(), tc.namespace, labels.SelectorFromSet(tc.selector))
			if err != nil || got != tc.want {
				t.Errorf("CountReadyPods() = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}
