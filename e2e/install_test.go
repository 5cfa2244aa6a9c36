package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/e2e/cluster"
	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
)

// TestHelmInstall installs the three charts with helm onto the local
// cluster, whose node runs their images as the locally built binaries, with
// two operator replicas, and runs the demo of deploy/demo: a KEDA
// ScaledObject on a Redis list scales a worker from 0 to 4 through the
// operator, the metrics-apiserver and the real HPA. Then the leader is
// killed (SIGKILL, its Lease not released): the standby takes over, and
// metric reads through the API server work again (served by whichever
// replica wins the Lease: the standby, or the killed pod's restarted
// process, which competes for it like any other).
func TestHelmInstall(t *testing.T) {
	redisServer, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed (make test installs it with hack/install-event-sources.sh): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	images := serviceImages(ctx, t)
	images["docker.io/library/redis"] = redisServer
	c := startCluster(ctx, t, cluster.Options{CertManager: true, Images: images})

	run := func(name string, args ...string) string {
		t.Helper()
		return clusterRun(ctx, t, c, name, args...)
	}
	installEBB(ctx, t, c, chartValues{operator: []string{"replicas=2"}})

	// The demo.
	run(c.Bins.Kubectl, "apply", "-f", "deploy/demo/demo.yaml")
	const ns = "ebb-demo"
	redisPod := pollFor(ctx, t, "the demo's Redis pod Ready", 3*time.Minute, func(ctx context.Context) (*corev1.Pod, error) {
		pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=redis"})
		if err != nil {
			return nil, err
		}
		for i := range pods.Items {
			for _, cond := range pods.Items[i].Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue && pods.Items[i].Status.PodIP != "" {
					return &pods.Items[i], nil
				}
			}
		}
		return nil, fmt.Errorf("no ready Redis pod among %d", len(pods.Items))
	})
	rdb := redis.NewClient(&redis.Options{Addr: net.JoinHostPort(redisPod.Status.PodIP, "6379")})
	defer rdb.Close()
	items := make([]any, 20)
	for i := range items {
		items[i] = i
	}
	if err := rdb.RPush(ctx, "jobs", items...).Err(); err != nil {
		t.Fatal(err)
	}
	pushed := time.Now()
	replicas := func(ctx context.Context) (int32, error) {
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "worker", metav1.GetOptions{})
		if err != nil {
			return -1, err
		}
		return ptr.Deref(d.Spec.Replicas, 1), nil
	}
	pollUntil(ctx, t, "the worker to scale from 0 to 4", 3*time.Minute, func(ctx context.Context) (bool, error) {
		n, err := replicas(ctx)
		return n == 4, err
	})
	t.Logf("The worker reached 4 replicas %s after the items arrived", time.Since(pushed).Round(time.Millisecond))

	read := func(ctx context.Context) (string, error) {
		body, err := c.Client.CoreV1().RESTClient().Get().
			AbsPath("/apis/external.metrics.k8s.io/v1beta1/namespaces", ns, "s0-redis-jobs").
			Param("labelSelector", v1alpha1.ScaledObjectNameLabel+"=worker").
			Do(ctx).Raw()
		if err != nil {
			return "", fmt.Errorf("%w: %s", err, body)
		}
		var list struct {
			Items []struct {
				Value string `json:"value"`
			} `json:"items"`
		}
		if err := json.Unmarshal(body, &list); err != nil || len(list.Items) != 1 {
			return "", fmt.Errorf("unexpected answer %s", body)
		}
		return list.Items[0].Value, nil
	}
	if v, err := read(ctx); err != nil || v != "20" {
		t.Fatalf("The metric through the API server: %q, %v; want 20", v, err)
	}

	// Kill the leader: the standby takes over once the Lease expires.
	lease, err := c.Client.CoordinationV1().Leases(operatorNamespace).Get(ctx, "ebb-operator", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	leader, _, _ := strings.Cut(ptr.Deref(lease.Spec.HolderIdentity, ""), "_")
	if leader == "" {
		t.Fatalf("The Lease has no holder: %+v", lease.Spec)
	}
	if _, err := c.Node.KillContainer(operatorNamespace, leader, "operator"); err != nil {
		t.Fatalf("Killing the leader %s: %v", leader, err)
	}
	killed := time.Now()
	if err := rdb.RPush(ctx, "jobs", items[:5]...).Err(); err != nil { // 25 now
		t.Fatal(err)
	}
	pollUntil(ctx, t, "metric reads after the leader was killed", 2*time.Minute, func(ctx context.Context) (bool, error) {
		v, err := read(ctx)
		return err == nil && v == "25", nil
	})
	failover := time.Since(killed)
	lease, err = c.Client.CoordinationV1().Leases(operatorNamespace).Get(ctx, "ebb-operator", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Reads served again %s after the leader (%s) was killed; the Lease is held by %s",
		failover.Round(time.Millisecond), leader, ptr.Deref(lease.Spec.HolderIdentity, ""))
	// A killed leader does not release its Lease: the standby waits out
	// the lease duration (15 s) and one retry period (2 s).
	if limit := 15*time.Second + 2*time.Second + 5*time.Second; failover > limit {
		t.Errorf("Failover took %s, want at most %s", failover, limit)
	}
	pollUntil(ctx, t, "the worker to scale to 5", 2*time.Minute, func(ctx context.Context) (bool, error) {
		n, err := replicas(ctx)
		return n == 5, err
	})

	// Upgrades roll every service to a new ReplicaSet; reads keep working.
	for _, chart := range []string{"ebb-operator", "ebb-webhook", "ebb-metrics-apiserver"} {
		run(c.Bins.Helm, "upgrade", chart, "deploy/charts/"+chart, "--namespace", operatorNamespace, "--reuse-values",
			"--set", "logging.verbosity=2", "--wait", "--timeout", "5m")
	}
	for _, d := range []string{"ebb-operator", "ebb-webhook", "ebb-metrics-apiserver"} {
		run(c.Bins.Kubectl, "-n", operatorNamespace, "rollout", "status", "deployment/"+d, "--timeout=3m")
	}
	pollUntil(ctx, t, "metric reads after the upgrades", 2*time.Minute, func(ctx context.Context) (bool, error) {
		v, err := read(ctx)
		return err == nil && v == "25", nil
	})

	// Uninstall: the demo first, so the operator releases its
	// ScaledObjects' finalizers; then nothing of the charts is left.
	run(c.Bins.Kubectl, "delete", "namespace", ns, "--wait=true", "--timeout=3m")
	for _, chart := range []string{"ebb-metrics-apiserver", "ebb-webhook", "ebb-operator"} {
		run(c.Bins.Helm, "uninstall", chart, "--namespace", operatorNamespace, "--wait", "--timeout", "3m")
	}
	// The Deployments' pods go by garbage collection, after helm returns.
	pollUntil(ctx, t, "nothing of the charts left in "+operatorNamespace, 2*time.Minute, func(ctx context.Context) (bool, error) {
		left := run(c.Bins.Kubectl, "-n", operatorNamespace, "get", "deployments,services,serviceaccounts,roles,rolebindings,certificates,issuers,pods",
			"-l", "app.kubernetes.io/part-of=ebb", "-o", "name")
		return strings.TrimSpace(left) == "", nil
	})
	for _, kind := range []string{"apiservice/" + externalMetricsAPI, "validatingwebhookconfiguration/ebb-webhook", "clusterrole/ebb-operator", "clusterrole/ebb-webhook"} {
		if out := run(c.Bins.Kubectl, "get", kind, "--ignore-not-found", "-o", "name"); strings.TrimSpace(out) != "" {
			t.Errorf("%s is left after helm uninstall", kind)
		}
	}
}
