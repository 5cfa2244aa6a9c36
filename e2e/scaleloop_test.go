package e2e

import (
	"context"
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

// TestScaleToAndFromZeroOnRedis runs a real Redis (with a password) as a
// pod and the operator as a pod: a Deployment at zero replicas with a
// ScaledObject on a Redis list, authenticated through a
// TriggerAuthentication's secretTargetRef, goes to one replica within a
// polling interval (+1 s) of items arriving, its HPA carries the list's
// External metric, and it goes back to zero after the cooldown once the
// list is drained.
func TestScaleToAndFromZeroOnRedis(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := startCluster(ctx, t, cluster.Options{})
	startOperator(ctx, t, c, "")

	const ns, redisPassword = "queue", "e2e-redis-password"
	rdb := startRedis(ctx, t, c, ns, redisPassword)

	createDeployment(ctx, t, c, ns, "worker", 0)
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
			Triggers: []v1alpha1.ScaleTrigger{{Type: "redis", Metadata: map[string]string{
				"address": "redis." + ns + ".svc:6379", "listName": "jobs", "listLength": "5",
			}}},
		},
	}
	mustCreate(t, func() error {
		_, err := c.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "redis-auth"},
			StringData: map[string]string{"password": redisPassword},
		}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := keda.KedaV1alpha1().TriggerAuthentications(ns).Create(ctx, &v1alpha1.TriggerAuthentication{
			ObjectMeta: metav1.ObjectMeta{Name: "redis-auth"},
			Spec:       v1alpha1.TriggerAuthenticationSpec{SecretTargetRef: []v1alpha1.AuthSecretTargetRef{{Parameter: "password", Name: "redis-auth", Key: "password"}}},
		}, metav1.CreateOptions{})
		return err
	})
	so.Spec.Triggers[0].AuthenticationRef = &v1alpha1.AuthenticationRef{Name: "redis-auth"}
	if _, err := keda.KedaV1alpha1().ScaledObjects(ns).Create(ctx, so, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hpa := pollFor(ctx, t, "HPA keda-hpa-worker", time.Minute, func(ctx context.Context) (*autoscalingv2.HorizontalPodAutoscaler, error) {
		return c.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "keda-hpa-worker", metav1.GetOptions{})
	})
	if m := hpa.Spec.Metrics; len(m) != 1 || m[0].External == nil || m[0].External.Metric.Name != "s0-redis-jobs" {
		t.Errorf("HPA metrics = %+v, want the External metric s0-redis-jobs", m)
	}
	// The loop has seen the empty list once: Active is False.
	pollUntil(ctx, t, "Active=False before any item", time.Minute, func(ctx context.Context) (bool, error) {
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

	if err := rdb.RPush(ctx, "jobs", "a", "b", "c").Err(); err != nil {
		t.Fatal(err)
	}
	pushed := time.Now()
	pollUntil(ctx, t, "the Deployment to scale from 0 to 1", time.Minute, func(ctx context.Context) (bool, error) {
		n, err := replicas(ctx)
		return n == 1, err
	})
	activation := time.Since(pushed)
	t.Logf("Activated 0→1 %s after the items arrived (polling interval %d s)", activation.Round(time.Millisecond), pollingInterval)
	if limit := pollingInterval*time.Second + time.Second; activation > limit {
		t.Errorf("Activation took %s, want at most one polling interval + 1 s (%s)", activation, limit)
	}
	pollUntil(ctx, t, "Active=True with lastActiveTime", time.Minute, func(ctx context.Context) (bool, error) {
		got, err := keda.KedaV1alpha1().ScaledObjects(ns).Get(ctx, "worker", metav1.GetOptions{})
		return err == nil && got.Status.Conditions.Active().IsTrue() && got.Status.LastActiveTime != nil, err
	})

	if err := rdb.Del(ctx, "jobs").Err(); err != nil {
		t.Fatal(err)
	}
	drained := time.Now()
	pollUntil(ctx, t, "the Deployment to scale back to 0 after the cooldown", time.Minute, func(ctx context.Context) (bool, error) {
		n, err := replicas(ctx)
		return n == 0, err
	})
	deactivation := time.Since(drained)
	t.Logf("Deactivated 1→0 %s after the list was drained (cooldown %d s)", deactivation.Round(time.Millisecond), cooldown)
	// The last active poll was at most one interval before the drain.
	if min := (cooldown - pollingInterval) * time.Second; deactivation < min {
		t.Errorf("Scaled to zero %s after the drain, before the cooldown (at least %s)", deactivation, min)
	}
}
