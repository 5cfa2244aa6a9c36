package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/e2e/cluster"
	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedaclient "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned"
)

// metricsAPIValueFileEnv makes the re-executed test binary serve a
// metrics API whose value is the content of the named file.
const metricsAPIValueFileEnv = "EBB_E2E_METRICS_API_VALUE_FILE"

// serveMetricsAPI answers GET /value with {"queue":{"length":<file>}} on
// :8080, reading the file on every request.
func serveMetricsAPI(file string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/value", func(w http.ResponseWriter, _ *http.Request) {
		value, err := os.ReadFile(file)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"queue":{"length":%s}}`, strings.TrimSpace(string(value)))
	})
	server := &http.Server{Addr: ":8080", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return server.ListenAndServe()
}

// TestScaleToAndFromZeroOnMetricsAPIAndCron activates Deployments from
// zero on a metrics API served by a pod (and back after the cooldown) and
// on a cron window that is open now.
func TestScaleToAndFromZeroOnMetricsAPIAndCron(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := startCluster(ctx, t, cluster.Options{})
	startOperator(ctx, t, c, "")

	const ns = "sources"
	valueFile := filepath.Join(t.TempDir(), "value")
	setValue := func(v int) {
		t.Helper()
		if err := os.WriteFile(valueFile, []byte(fmt.Sprint(v)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	setValue(0)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RunPod(ctx, cluster.PodSpec{
		Namespace: ns, Name: "metrics", Path: exe,
		Env:   []string{metricsAPIValueFileEnv + "=" + valueFile},
		Ports: []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromInt32(8080)}},
	}); err != nil {
		t.Fatalf("Running the metrics API: %v", err)
	}

	keda, err := kedaclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	createDeployment(ctx, t, c, ns, "api-worker", 0)
	createDeployment(ctx, t, c, ns, "cron-worker", 0)
	const pollingInterval, cooldown = 2, 4
	for _, so := range []*v1alpha1.ScaledObject{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "api-worker"},
			Spec: v1alpha1.ScaledObjectSpec{
				ScaleTargetRef: &v1alpha1.ScaleTarget{Name: "api-worker"}, PollingInterval: ptr.To[int32](pollingInterval), CooldownPeriod: ptr.To[int32](cooldown),
				Triggers: []v1alpha1.ScaleTrigger{{Type: "metrics-api", Metadata: map[string]string{
					"url": "http://metrics." + ns + ".svc:8080/value", "valueLocation": "queue.length", "targetValue": "5",
				}}},
			},
		},
		// A window from 1 January to 31 December is open on every day but
		// 31 December.
		cronScaledObject("cron-worker", "cron-worker", func(so *v1alpha1.ScaledObject) {
			so.Spec.PollingInterval = ptr.To[int32](pollingInterval)
			so.Spec.Triggers[0].Metadata = map[string]string{"timezone": "UTC", "start": "0 0 1 1 *", "end": "0 0 31 12 *", "desiredReplicas": "4"}
		}),
	} {
		if _, err := keda.KedaV1alpha1().ScaledObjects(ns).Create(ctx, so, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	replicas := func(name string) func(context.Context) (int32, error) {
		return func(ctx context.Context) (int32, error) {
			d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return -1, err
			}
			return ptr.Deref(d.Spec.Replicas, 1), nil
		}
	}
	waitReplicas := func(name string, want int32) time.Duration {
		t.Helper()
		start := time.Now()
		pollUntil(ctx, t, fmt.Sprintf("%s at %d replicas", name, want), time.Minute, func(ctx context.Context) (bool, error) {
			n, err := replicas(name)(ctx)
			return n == want, err
		})
		return time.Since(start)
	}

	// The cron window is open: activated from zero.
	t.Logf("cron: activated 0→1 after %s", waitReplicas("cron-worker", 1).Round(time.Millisecond))

	// The metrics API at 0: the loop has seen it inactive.
	pollUntil(ctx, t, "api-worker Active=False", time.Minute, func(ctx context.Context) (bool, error) {
		so, err := keda.KedaV1alpha1().ScaledObjects(ns).Get(ctx, "api-worker", metav1.GetOptions{})
		return err == nil && so.Status.Conditions.Active().IsFalse(), err
	})
	setValue(3)
	activation := waitReplicas("api-worker", 1)
	t.Logf("metrics-api: activated 0→1 %s after the value rose", activation.Round(time.Millisecond))
	if limit := pollingInterval*time.Second + time.Second; activation > limit {
		t.Errorf("Activation took %s, want at most one polling interval + 1 s (%s)", activation, limit)
	}
	setValue(0)
	deactivation := waitReplicas("api-worker", 0)
	t.Logf("metrics-api: deactivated 1→0 %s after the value fell (cooldown %d s)", deactivation.Round(time.Millisecond), cooldown)
	if min := (cooldown - pollingInterval) * time.Second; deactivation < min {
		t.Errorf("Scaled to zero %s after the value fell, before the cooldown (at least %s)", deactivation, min)
	}
}
