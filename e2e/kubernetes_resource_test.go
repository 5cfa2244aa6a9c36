package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/e2e/cluster"
	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedaclient "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned"
)

// TestKubernetesResource runs the operator as a pod, with its chart's
// ServiceAccount and RBAC, against the real API server: a Deployment at
// zero replicas with a ScaledObject whose kubernetes-resource trigger
// reads a JSON document in a ConfigMap of its namespace. The HPA carries
// the trigger's External metric; the Deployment goes to one replica when
// the value rises above the activation threshold, and back to zero after
// the cooldown once it is 0 again. Every read is a GET by the operator's
// ServiceAccount, so the chart's get on configmaps is what is tested too.
func TestKubernetesResource(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := startCluster(ctx, t, cluster.Options{})
	startOperator(ctx, t, c, "")

	const ns = "tasks"
	createNamespace(ctx, t, c, ns)
	createDeployment(ctx, t, c, ns, "worker", 0)

	configMaps := c.Client.CoreV1().ConfigMaps(ns)
	setPending := func(n int) {
		t.Helper()
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "queue-stats"},
			Data:       map[string]string{"stats.json": fmt.Sprintf(`{"queue": {"pending": %d, "processing": 1}}`, n)},
		}
		if _, err := configMaps.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("Updating the ConfigMap: %v", err)
		}
	}
	mustCreate(t, func() error {
		_, err := configMaps.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "queue-stats"},
			Data:       map[string]string{"stats.json": `{"queue": {"pending": 0, "processing": 0}}`},
		}, metav1.CreateOptions{})
		return err
	})

	const pollingInterval, cooldown = 2, 5
	keda, err := kedaclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	so := &v1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: "worker"},
		Spec: v1alpha1.ScaledObjectSpec{
			ScaleTargetRef:  &v1alpha1.ScaleTarget{Name: "worker"},
			PollingInterval: ptr.To[int32](pollingInterval),
			CooldownPeriod:  ptr.To[int32](cooldown),
			MinReplicaCount: ptr.To[int32](0),
			Triggers: []v1alpha1.ScaleTrigger{{Type: "kubernetes-resource", Metadata: map[string]string{
				"resourceKind":          "ConfigMap",
				"resourceName":          "queue-stats",
				"key":                   "stats.json",
				"format":                "json",
				"valueLocation":         "queue.pending",
				"targetValue":           "5",
				"activationTargetValue": "2",
			}}},
		},
	}
	if _, err := keda.KedaV1alpha1().ScaledObjects(ns).Create(ctx, so, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hpa := pollFor(ctx, t, "HPA keda-hpa-worker", time.Minute, func(ctx context.Context) (*autoscalingv2.HorizontalPodAutoscaler, error) {
		return c.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "keda-hpa-worker", metav1.GetOptions{})
	})
	const metric = "s0-configmap-queue-stats-stats-json"
	if m := hpa.Spec.Metrics; len(m) != 1 || m[0].External == nil || m[0].External.Metric.Name != metric ||
		m[0].External.Target.AverageValue == nil || m[0].External.Target.AverageValue.Value() != 5 {
		t.Errorf("HPA metrics = %+v, want the External metric %s with averageValue 5", m, metric)
	}
	// The loop has read the ConfigMap (pending 0) once: Active is False.
	pollUntil(ctx, t, "Active=False before any task", time.Minute, func(ctx context.Context) (bool, error) {
		got, err := keda.KedaV1alpha1().ScaledObjects(ns).Get(ctx, "worker", metav1.GetOptions{})
		return err == nil && got.Status.Conditions.Active().IsFalse(), err
	})

	replicas := func(ctx context.Context) (int32, error) {
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "worker", metav1.GetOptions{})
		if err != nil {
			return -1, err
		}
		return ptr.Deref(d.Spec.Replicas, 1), nil
	}

	setPending(12)
	raised := time.Now()
	pollUntil(ctx, t, "the Deployment to scale from 0 to at least 1", time.Minute, func(ctx context.Context) (bool, error) {
		n, err := replicas(ctx)
		return n >= 1, err
	})
	activation := time.Since(raised)
	t.Logf("Activated 0→1 %s after the value rose above activation (polling interval %d s)", activation.Round(time.Millisecond), pollingInterval)
	if limit := pollingInterval*time.Second + time.Second; activation > limit {
		t.Errorf("Activation took %s, want at most one polling interval + 1 s (%s)", activation, limit)
	}
	pollUntil(ctx, t, "Active=True with lastActiveTime", time.Minute, func(ctx context.Context) (bool, error) {
		got, err := keda.KedaV1alpha1().ScaledObjects(ns).Get(ctx, "worker", metav1.GetOptions{})
		return err == nil && got.Status.Conditions.Active().IsTrue() && got.Status.LastActiveTime != nil, err
	})

	setPending(0)
	drained := time.Now()
	pollUntil(ctx, t, "the Deployment to scale back to 0 after the cooldown", time.Minute, func(ctx context.Context) (bool, error) {
		n, err := replicas(ctx)
		return n == 0, err
	})
	deactivation := time.Since(drained)
	t.Logf("Deactivated →0 %s after the value fell to 0 (cooldown %d s)", deactivation.Round(time.Millisecond), cooldown)
	// The last active poll was at most one interval before the change.
	if min := (cooldown - pollingInterval) * time.Second; deactivation < min {
		t.Errorf("Scaled to zero %s after the value fell, before the cooldown (at least %s)", deactivation, min)
	}
	pollUntil(ctx, t, "Active=False after the cooldown", time.Minute, func(ctx context.Context) (bool, error) {
		got, err := keda.KedaV1alpha1().ScaledObjects(ns).Get(ctx, "worker", metav1.GetOptions{})
		return err == nil && got.Status.Conditions.Active().IsFalse(), err
	})
}
