package triggers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedafake "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned/fake"
)

func testSJ(gen int64, triggers ...v1alpha1.ScaleTrigger) *v1alpha1.ScaledJob {
	return &v1alpha1.ScaledJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "so", UID: "uid-sj", Generation: gen},
		Spec: v1alpha1.ScaledJobSpec{
			JobTargetRef: &batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}}}}},
			Triggers:     triggers,
		},
	}
}

// TestJobScalersApartFromScaledObjects checks that a ScaledJob's scalers
// are built once per generation like a ScaledObject's, and kept apart from
// those of a ScaledObject of the same name.
func TestJobScalersApartFromScaledObjects(t *testing.T) {
	c, cnt := newTestCache()
	defer c.Close()
	so := testSO(1, metricsAPI("5"))
	sj := testSJ(1, metricsAPI("5"), metricsAPI("7"))

	soTrigs, err := c.Scalers(so)
	if err != nil {
		t.Fatal(err)
	}
	sjTrigs, err := c.JobScalers(sj)
	if err != nil {
		t.Fatal(err)
	}
	if len(soTrigs) != 1 || len(sjTrigs) != 2 || c.Len() != 2 || cnt.builds.Load() != 3 {
		t.Fatalf("got %d ScaledObject and %d ScaledJob triggers, %d entries, %d builds; want 1, 2, 2, 3", len(soTrigs), len(sjTrigs), c.Len(), cnt.builds.Load())
	}
	for i, tr := range sjTrigs {
		if tr.Err != nil || tr.Scaler == nil || !strings.HasPrefix(tr.MetricName, fmt.Sprintf("s%d-metric-api-", i)) {
			t.Errorf("ScaledJob trigger %d = %+v", i, tr)
		}
	}
	// Same generation: reused.
	if again, _ := c.JobScalers(sj); &again[0] != &sjTrigs[0] || cnt.builds.Load() != 3 {
		t.Error("a second call for the same generation rebuilt the scalers")
	}
	// A new generation replaces and closes the old scalers.
	sj2 := sj.DeepCopy()
	sj2.Generation = 2
	if _, err := c.JobScalers(sj2); err != nil {
		t.Fatal(err)
	}
	cnt.mu.Lock()
	built := append([]*fakeScaler(nil), cnt.built...)
	cnt.mu.Unlock()
	if built[1].closed.Load() != 1 || built[2].closed.Load() != 1 || built[0].closed.Load() != 0 {
		t.Errorf("closes after a new generation: %d %d %d; want the ScaledJob's two old scalers closed only",
			built[0].closed.Load(), built[1].closed.Load(), built[2].closed.Load())
	}

	// ForgetJob closes the ScaledJob's scalers only.
	c.ForgetJob(cache.NewObjectName("ns", "so"))
	if c.Len() != 1 || built[0].closed.Load() != 0 {
		t.Errorf("after ForgetJob: %d entries, ScaledObject scaler closed %d times; want 1, 0", c.Len(), built[0].closed.Load())
	}
	c.Forget(cache.NewObjectName("ns", "so"))
	if c.Len() != 0 || built[0].closed.Load() != 1 {
		t.Errorf("after Forget: %d entries, ScaledObject scaler closed %d times; want 0, 1", c.Len(), built[0].closed.Load())
	}
}

func TestDefaultJobResolver(t *testing.T) {
	sj := testSJ(1, v1alpha1.ScaleTrigger{Type: "redis", Name: "queue", Metadata: map[string]string{"listName": "jobs"}})
	got, err := DefaultJobResolver(sj, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Index != 0 || got.Type != "redis" || got.Name != "queue" || got.Namespace != "ns" || got.ScaledObjectName != "so" ||
		got.Metadata["listName"] != "jobs" || got.AsMetricSource {
		t.Errorf("DefaultJobResolver() = %+v", got)
	}
	if _, err := DefaultJobResolver(sj, 1); err == nil {
		t.Error("DefaultJobResolver(out of range) succeeded")
	}
}

// TestResolveJob checks that a ScaledJob's triggers read the environment
// of its Job template: <key>FromEnv and env sources, from
// envSourceContainerName or the first container, with the Secrets they
// refer to read in the ScaledJob's namespace.
func TestResolveJob(t *testing.T) {
	kube := kubefake.NewClientset(authKubeObjects()...)
	keda := kedafake.NewSimpleClientset(append(authKedaObjects(), ta("job-env", v1alpha1.TriggerAuthenticationSpec{
		Env: []v1alpha1.AuthEnvironment{
			{Parameter: "plain", Name: "PLAIN"},
			{Parameter: "side", Name: "SIDE_SECRET", ContainerName: "sidecar"},
		},
	}))...)
	r := NewAuthResolver(kube, keda, clusterNS)

	template := corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "main", Env: []corev1.EnvVar{
			{Name: "HOST", Value: "redis.apps:6379"},
			{Name: "FROM_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "app-secret"}, Key: "password"}}},
			{Name: "PLAIN", Value: "main-value"},
		}},
		{Name: "sidecar", Env: []corev1.EnvVar{
			{Name: "PLAIN", Value: "sidecar-value"},
			{Name: "SIDE_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "app-secret"}, Key: "side"}}},
		}},
	}}}
	sj := func(envContainer string, triggers ...v1alpha1.ScaleTrigger) *v1alpha1.ScaledJob {
		return &v1alpha1.ScaledJob{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "worker"},
			Spec: v1alpha1.ScaledJobSpec{
				JobTargetRef:           &batchv1.JobSpec{Template: template},
				EnvSourceContainerName: envContainer,
				Triggers:               triggers,
			},
		}
	}
	fromEnv := v1alpha1.ScaleTrigger{Type: "redis", Metadata: map[string]string{
		"addressFromEnv": "HOST", "passwordFromEnv": "FROM_SECRET", "plainFromEnv": "PLAIN", "listName": "jobs",
	}}
	envAuth := v1alpha1.ScaleTrigger{Type: "redis", AuthenticationRef: &v1alpha1.AuthenticationRef{Name: "job-env"}, Metadata: map[string]string{"listName": "jobs"}}

	for name, tc := range map[string]struct {
		sj         *v1alpha1.ScaledJob
		wantMeta   map[string]string
		wantParams map[string]string
		wantErr    string
	}{
		"FromEnv from the first container": {
			sj: sj("", fromEnv),
			wantMeta: map[string]string{
				"addressFromEnv": "HOST", "passwordFromEnv": "FROM_SECRET", "plainFromEnv": "PLAIN", "listName": "jobs",
				"address": "redis.apps:6379", "password": "s3cr3t-pw", "plain": "main-value",
			},
		},
		"FromEnv from envSourceContainerName": {
			sj:      sj("sidecar", fromEnv),
			wantErr: "environment variable HOST is not set in container sidecar of the Job template of ScaledJob apps/worker",
		},
		"env authentication": {
			sj:         sj("", envAuth),
			wantMeta:   map[string]string{"listName": "jobs"},
			wantParams: map[string]string{"plain": "main-value", "side": "s3cr3t-side"},
		},
		"env authentication from envSourceContainerName": {
			sj:         sj("sidecar", envAuth),
			wantMeta:   map[string]string{"listName": "jobs"},
			wantParams: map[string]string{"plain": "sidecar-value", "side": "s3cr3t-side"},
		},
		"no jobTargetRef": {
			sj: func() *v1alpha1.ScaledJob {
				s := sj("", fromEnv)
				s.Spec.JobTargetRef = nil
				return s
			}(),
			wantErr: "needs spec.jobTargetRef",
		},
		"no container of that name": {
			sj:      sj("absent", fromEnv),
			wantErr: "the Job template of ScaledJob apps/worker has no container \"absent\"",
		},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := r.ResolveJobContext(context.Background(), tc.sj, 0)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ResolveJobContext() error = %v, want one containing %q", err, tc.wantErr)
				}
				for _, s := range secretValues {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error %q contains a secret", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantMeta, got.Metadata); diff != "" {
				t.Errorf("metadata (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantParams, got.AuthParams); diff != "" {
				t.Errorf("auth params (-want +got):\n%s", diff)
			}
			if got.Namespace != testNS || got.ScaledObjectName != "worker" {
				t.Errorf("namespace, name = %q, %q", got.Namespace, got.ScaledObjectName)
			}
		})
	}

	// secretTargetRef reads the ScaledJob's namespace.
	secretAuth := v1alpha1.ScaleTrigger{Type: "redis", AuthenticationRef: &v1alpha1.AuthenticationRef{Name: "secret"}, Metadata: map[string]string{"listName": "jobs"}}
	got, err := r.ResolveJob(sj("", secretAuth), 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"password": "s3cr3t-pw", "token": "s3cr3t-token"}, got.AuthParams); diff != "" {
		t.Errorf("secretTargetRef params (-want +got):\n%s", diff)
	}
}
