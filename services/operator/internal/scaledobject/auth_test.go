package scaledobject

import (
	"context"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/scalers"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/triggers"
)

type nopScaler struct{}

func (nopScaler) Poll(context.Context) (scaler.Reading, error) { return scaler.Reading{}, nil }
func (nopScaler) Close() error                                 { return nil }

// authFixture is a fixture whose ScaledObject "jobs" has a redis trigger
// authenticated through TriggerAuthentication "redis-auth" (Secret
// "redis-auth", key "password"), resolved by a real AuthResolver on the
// fakes; the Secret does not exist yet.
func authFixture(t *testing.T, mutate ...func(*v1alpha1.ScaledObject)) (*fixture, *triggers.Cache, *[]triggers.Owner) {
	t.Helper()
	so := newScaledObject(append([]func(*v1alpha1.ScaledObject){func(so *v1alpha1.ScaledObject) {
		so.Spec.Triggers[0].Metadata = map[string]string{"address": "redis:6379", "listName": "jobs"}
		so.Spec.Triggers[0].AuthenticationRef = &v1alpha1.AuthenticationRef{Name: "redis-auth"}
	}}, mutate...)...)
	f := newFixture(t, []*v1alpha1.ScaledObject{so}, nil, map[string]int32{"worker": 1})
	if _, err := f.keda.KedaV1alpha1().TriggerAuthentications("shop").Create(context.Background(), &v1alpha1.TriggerAuthentication{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "redis-auth", ResourceVersion: "1"},
		Spec:       v1alpha1.TriggerAuthenticationSpec{SecretTargetRef: []v1alpha1.AuthSecretTargetRef{{Parameter: "password", Name: "redis-auth", Key: "password"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	trigs := triggers.NewCache(scaler.Deps{},
		triggers.WithAuthResolver(triggers.NewAuthResolver(f.kube, f.keda, "ebb-system")),
		triggers.WithScalerConstructor(func(scalers.Config, scaler.Deps) (scaler.Scaler, error) { return nopScaler{}, nil }))
	t.Cleanup(trigs.Close)
	var told []triggers.Owner
	trigs.SetInvalidationHandler(func(o triggers.Owner) { told = append(told, o) })
	f.controller.SetTriggerCache(trigs)
	return f, trigs, &told
}

// refresh puts the ScaledObject and HPA as the fake API server has them
// into the informers' indexers, as a watch would.
func (f *fixture) refresh() {
	f.t.Helper()
	if err := f.soStore.Update(f.scaledObject("jobs")); err != nil {
		f.t.Fatal(err)
	}
	if h, err := f.kube.AutoscalingV2().HorizontalPodAutoscalers("shop").Get(context.Background(), "keda-hpa-jobs", metav1.GetOptions{}); err == nil {
		if err := f.hpaStore.Update(h); err != nil {
			f.t.Fatal(err)
		}
	}
	f.kube.ClearActions()
	f.keda.ClearActions()
}

// TestSyncAuthenticationFailure follows a ScaledObject whose Secret is
// missing, then created: Ready False naming the Secret and key (once, with
// one event), the HPA kept, no retry (the Secret is watched); its creation
// brings the ScaledObject back and Ready follows the HPA again.
func TestSyncAuthenticationFailure(t *testing.T) {
	f, trigs, told := authFixture(t)
	if err := f.sync("jobs"); err != nil {
		t.Fatalf("sync() = %v, want nil: the Secret is watched, no retry", err)
	}
	f.hpa("keda-hpa-jobs") // the HPA is built from the metadata all the same
	r := f.scaledObject("jobs").Status.Conditions.Ready()
	wantMsg := []string{"trigger 0 (redis)", "TriggerAuthentication shop/redis-auth", `secretTargetRef parameter "password" (key "password" of Secret shop/redis-auth)`, "no Secret shop/redis-auth"}
	if !r.IsFalse() || r.Reason != reasonAuthFailed {
		t.Fatalf("Ready = %+v, want False %s", r, reasonAuthFailed)
	}
	for _, w := range wantMsg {
		if !strings.Contains(r.Message, w) {
			t.Errorf("Ready message %q lacks %q", r.Message, w)
		}
	}
	ev := f.events()
	var warnings []string
	for _, e := range ev {
		if strings.HasPrefix(e, "Warning "+reasonAuthFailed+" ") {
			warnings = append(warnings, e)
		}
	}
	if len(warnings) != 1 {
		t.Errorf("events %q, want one %s warning", ev, reasonAuthFailed)
	}

	// Again, with the HPA now reading its metrics: nothing changes.
	f.refresh()
	h := f.hpa("keda-hpa-jobs")
	h.Status.Conditions = []autoscalingv2.HorizontalPodAutoscalerCondition{{Type: autoscalingv2.ScalingActive, Status: corev1.ConditionTrue, Reason: "ValidMetricFound"}}
	if err := f.hpaStore.Update(h); err != nil {
		t.Fatal(err)
	}
	if err := f.sync("jobs"); err != nil {
		t.Fatal(err)
	}
	if ev := f.events(); len(ev) != 0 {
		t.Errorf("events on a second sync = %q", ev)
	}
	if w := f.writes(); len(w) != 0 {
		t.Errorf("writes on a second sync = %v", w)
	}
	if len(*told) != 0 {
		t.Errorf("invalidated %v before any change", *told)
	}

	// The Secret appears: its event invalidates the triggers and tells the
	// controller; the next sync finds it.
	if _, err := f.kube.CoreV1().Secrets("shop").Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "redis-auth", ResourceVersion: "7"},
		Data:       map[string][]byte{"password": []byte("s3cr3t-redis-pw")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	trigs.Changed(triggers.Ref{Kind: triggers.RefSecret, Namespace: "shop", Name: "redis-auth"}, "7")
	want := triggers.Owner{Kind: v1alpha1.ScaledObjectKind, ObjectName: cache.NewObjectName("shop", "jobs")}
	if !slices.Equal(*told, []triggers.Owner{want}) {
		t.Fatalf("invalidation handler told %v, want %v", *told, want)
	}
	if err := f.sync("jobs"); err != nil {
		t.Fatal(err)
	}
	if r := f.scaledObject("jobs").Status.Conditions.Ready(); !r.IsTrue() {
		t.Errorf("Ready after the Secret appeared = %+v, want True (the HPA reads its metrics)", r)
	}
	for _, e := range f.events() {
		if strings.Contains(e, "s3cr3t") {
			t.Errorf("event %q holds the password", e)
		}
	}
}

// TestSyncAuthenticationRetried checks that an error no watched change
// fixes (here a variable the target's container lacks) is retried with
// backoff, each retry resolving again.
func TestSyncAuthenticationRetried(t *testing.T) {
	f, _, _ := authFixture(t, func(so *v1alpha1.ScaledObject) {
		so.Spec.Triggers[0].AuthenticationRef = nil
		so.Spec.Triggers[0].Metadata["passwordFromEnv"] = "REDIS_PASSWORD"
	})
	deployment := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "worker"},
		Spec:       appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}}}}},
	}
	if _, err := f.kube.AppsV1().Deployments("shop").Create(context.Background(), deployment, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := f.sync("jobs")
	if err == nil || !strings.Contains(err.Error(), "REDIS_PASSWORD is not set in container main of Deployment shop/worker") {
		t.Fatalf("sync() = %v, want a retried error naming the variable", err)
	}
	if r := f.scaledObject("jobs").Status.Conditions.Ready(); !r.IsFalse() || r.Reason != reasonAuthFailed {
		t.Errorf("Ready = %+v, want False %s", r, reasonAuthFailed)
	}

	// The variable is added: the retry reads the Deployment again.
	deployment.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "REDIS_PASSWORD", Value: "pw"}}
	if _, err := f.kube.AppsV1().Deployments("shop").Update(context.Background(), deployment, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.refresh()
	if err := f.sync("jobs"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if r := f.scaledObject("jobs").Status.Conditions.Ready(); r.Reason == reasonAuthFailed {
		t.Errorf("Ready after the fix = %+v", r)
	}
}
