package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/e2e/cluster"
	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedaclient "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned"
)

const (
	metricsAPIServerCert = "ebb-metrics-apiserver-tls"
	externalMetricsAPI   = "v1beta1.external.metrics.k8s.io"
)

// TestMetricsAPIServer runs the operator and the metrics-apiserver as pods
// with cert-manager certificates, behind the real aggregator: the
// APIService becomes Available, an external metric read through the API
// server is the real Redis list length, and the real HPA controller scales
// a Deployment from 1 to the expected count and back. Then the operator
// stops: the link's health goes down within 5 s, reads fail fast with a
// 503 that names the link, while discovery and namespace deletion keep
// working; the operator starts again: reads succeed within 5 s, without a
// restart of the metrics-apiserver.
func TestMetricsAPIServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	c := startCluster(ctx, t, cluster.Options{CertManager: true})
	createNamespace(ctx, t, c, operatorNamespace)
	issueCertificates(ctx, t, c)
	operator := startOperator(ctx, t, c, "ebb-operator-tls")
	metricsPod := startMetricsAPIServer(ctx, t, c)

	const ns, redisPassword = "orders", ""
	rdb := startRedis(ctx, t, c, ns, redisPassword)
	createDeployment(ctx, t, c, ns, "worker", 1)
	keda, err := kedaclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	so := &v1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: "worker"},
		Spec: v1alpha1.ScaledObjectSpec{
			ScaleTargetRef:  &v1alpha1.ScaleTarget{Name: "worker"},
			PollingInterval: ptr.To[int32](2),
			MinReplicaCount: ptr.To[int32](1),
			MaxReplicaCount: ptr.To[int32](10),
			Advanced: &v1alpha1.AdvancedConfig{HorizontalPodAutoscalerConfig: &v1alpha1.HorizontalPodAutoscalerConfig{
				Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
					// Scale down at once, so the test need not wait out
					// the default five-minute stabilization window.
					ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](0)},
				},
			}},
			Triggers: []v1alpha1.ScaleTrigger{{Type: "redis", Metadata: map[string]string{
				"address": "redis." + ns + ".svc:6379", "listName": "jobs", "listLength": "5",
			}}},
		},
	}
	if _, err := keda.KedaV1alpha1().ScaledObjects(ns).Create(ctx, so, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	const metric = "s0-redis-jobs"
	read := func(ctx context.Context) (string, error) {
		body, err := c.Client.CoreV1().RESTClient().Get().
			AbsPath("/apis/external.metrics.k8s.io/v1beta1/namespaces", ns, metric).
			Param("labelSelector", v1alpha1.ScaledObjectNameLabel+"=worker").
			Do(ctx).Raw()
		if err != nil {
			// The body is what kubectl get --raw shows.
			return "", fmt.Errorf("%w: %s", err, body)
		}
		var list struct {
			Items []struct {
				MetricName string `json:"metricName"`
				Value      string `json:"value"`
			} `json:"items"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return "", err
		}
		if len(list.Items) != 1 || list.Items[0].MetricName != metric {
			return "", fmt.Errorf("unexpected answer %s", body)
		}
		return list.Items[0].Value, nil
	}

	// 20 items at 5 per replica: the HPA wants 4.
	items := make([]any, 20)
	for i := range items {
		items[i] = i
	}
	if err := rdb.RPush(ctx, "jobs", items...).Err(); err != nil {
		t.Fatal(err)
	}
	pollUntil(ctx, t, "the external metric to read 20 through the API server", 2*time.Minute, func(ctx context.Context) (bool, error) {
		v, err := read(ctx)
		if err != nil {
			t.Logf("Reading %s: %v", metric, err)
		}
		return v == "20", nil
	})
	replicas := func(ctx context.Context) (int32, error) {
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "worker", metav1.GetOptions{})
		if err != nil {
			return -1, err
		}
		return ptr.Deref(d.Spec.Replicas, 1), nil
	}
	pollUntil(ctx, t, "the HPA to scale the Deployment from 1 to 4", 2*time.Minute, func(ctx context.Context) (bool, error) {
		n, err := replicas(ctx)
		return n == 4, err
	})
	if err := rdb.LTrim(ctx, "jobs", 0, 4).Err(); err != nil { // 5 items: 1 replica
		t.Fatal(err)
	}
	pollUntil(ctx, t, "the HPA to scale the Deployment back to 1", 2*time.Minute, func(ctx context.Context) (bool, error) {
		n, err := replicas(ctx)
		return n == 1, err
	})
	hpa, err := c.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "keda-hpa-worker", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cond := range hpa.Status.Conditions {
		if cond.Type == autoscalingv2.ScalingActive && cond.Status != corev1.ConditionTrue {
			t.Errorf("HPA ScalingActive = %s: %s", cond.Status, cond.Message)
		}
	}

	// The operator goes away.
	health := healthClient(t, metricsPod)
	linkStatus := func(ctx context.Context) healthpb.HealthCheckResponse_ServingStatus {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: "operator-link"})
		if err != nil {
			return healthpb.HealthCheckResponse_UNKNOWN
		}
		return resp.GetStatus()
	}
	if st := linkStatus(ctx); st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("operator-link health = %s before the operator stops, want SERVING", st)
	}
	if err := operator.Process.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	pollUntil(ctx, t, "operator-link NOT_SERVING", 10*time.Second, func(ctx context.Context) (bool, error) {
		return linkStatus(ctx) == healthpb.HealthCheckResponse_NOT_SERVING, nil
	})
	detected := time.Since(stopped)
	t.Logf("The link was reported down %s after the operator stopped", detected.Round(time.Millisecond))
	if detected > 5*time.Second {
		t.Errorf("The link was reported down after %s, want within 5 s", detected)
	}
	readStart := time.Now()
	_, err = read(ctx)
	failFast := time.Since(readStart)
	t.Logf("A read with the link down failed in %s: %v", failFast.Round(time.Millisecond), err)
	if !apierrors.IsServiceUnavailable(err) || !strings.Contains(err.Error(), "operator link") {
		t.Errorf("Read with the operator down: %v, want 503 naming the operator link", err)
	}
	if failFast > time.Second+500*time.Millisecond { // 1 s, plus the API server's own hop
		t.Errorf("A read with the link down took %s, want it to fail within about 1 s", failFast)
	}
	// The pod stays ready by default, so discovery and namespace deletion
	// keep working.
	if st := overallStatus(ctx, health); st != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("Readiness with the link down = %s, want SERVING (readiness follows the API server, not the link, by default)", st)
	}
	if _, err := c.Client.Discovery().ServerResourcesForGroupVersion("external.metrics.k8s.io/v1beta1"); err != nil {
		t.Errorf("Discovery of external.metrics.k8s.io with the link down: %v", err)
	}
	if _, _, err := c.Client.Discovery().ServerGroupsAndResources(); err != nil {
		t.Errorf("Full discovery with the link down: %v", err)
	}
	createNamespace(ctx, t, c, "doomed")
	if err := c.Client.CoreV1().Namespaces().Delete(ctx, "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	pollUntil(ctx, t, "namespace deletion with the link down", time.Minute, func(ctx context.Context) (bool, error) {
		_, err := c.Client.CoreV1().Namespaces().Get(ctx, "doomed", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})

	// The operator comes back: reads work again, no restart.
	if err := operator.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	opHealth := healthClient(t, operator)
	pollUntil(ctx, t, "the operator to be ready again", 2*time.Minute, func(ctx context.Context) (bool, error) {
		return overallStatus(ctx, opHealth) == healthpb.HealthCheckResponse_SERVING, nil
	})
	back := time.Now()
	pollUntil(ctx, t, "reads to succeed again", 30*time.Second, func(ctx context.Context) (bool, error) {
		v, err := read(ctx)
		return err == nil && v == "5", nil
	})
	reconnect := time.Since(back)
	t.Logf("Reads succeeded again %s after the operator was ready", reconnect.Round(time.Millisecond))
	if reconnect > 5*time.Second {
		t.Errorf("Reads succeeded again only %s after the operator was ready, want within 5 s", reconnect)
	}
	if metricsPod.Process.Exited() {
		t.Error("The metrics-apiserver exited")
	}
}

// startMetricsAPIServer builds the metrics-apiserver and runs it as a pod
// with the ServiceAccount and RBAC of the ebb-metrics-apiserver chart and
// its cert-manager certificate; it registers the external metrics
// APIService (caBundle from cainjector) and waits until the APIService is
// Available.
func startMetricsAPIServer(ctx context.Context, t *testing.T, c *cluster.Cluster) *cluster.Pod {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "ebb-metrics-apiserver")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./services/metrics-apiserver")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("Building the metrics-apiserver: %v\n%s", err, out)
	}

	// The chart's defaults: system:auth-delegator, and
	// extension-apiserver-authentication-reader in kube-system. The HPA
	// controller reads external metrics through its bootstrap role (the
	// chart's hpaControllerRBAC is off by default); the test's own reads
	// use the admin credentials.
	serviceAccount := applyChartRBAC(ctx, t, c, "ebb-metrics-apiserver")

	certDir := filepath.Join(t.TempDir(), "certs")
	pod, err := c.RunPod(ctx, cluster.PodSpec{
		Namespace:      operatorNamespace,
		Name:           "ebb-metrics-apiserver",
		ServiceAccount: serviceAccount,
		Path:           bin,
		Args: []string{
			"--secure-port=6443",
			"--cert-dir=" + certDir,
			"--operator-address=" + operatorServerName + ":9443",
			"--health-bind-address=:8081",
			"--metrics-bind-address=:8080",
			"--v=2",
		},
		Secrets: []cluster.SecretVolume{{SecretName: metricsAPIServerCert, Dir: certDir}},
		Ports: []corev1.ServicePort{
			{Name: "https", Port: 443, TargetPort: intstr.FromInt32(6443)},
			{Name: "health", Port: 8081, TargetPort: intstr.FromInt32(8081)},
		},
	})
	if err != nil {
		t.Fatalf("Running the metrics-apiserver: %v", err)
	}
	t.Logf("Metrics-apiserver running (log: %s)", pod.Process.LogPath)

	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	apiServices := dyn.Resource(schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"})
	mustCreate(t, func() error {
		_, err := apiServices.Create(ctx, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiregistration.k8s.io/v1",
			"kind":       "APIService",
			"metadata": map[string]any{
				"name":        externalMetricsAPI,
				"annotations": map[string]any{"cert-manager.io/inject-ca-from": operatorNamespace + "/" + metricsAPIServerCert},
			},
			"spec": map[string]any{
				"group":                "external.metrics.k8s.io",
				"version":              "v1beta1",
				"service":              map[string]any{"namespace": operatorNamespace, "name": "ebb-metrics-apiserver", "port": int64(443)},
				"groupPriorityMinimum": int64(100),
				"versionPriority":      int64(100),
			},
		}}, metav1.CreateOptions{})
		return err
	})
	pollUntil(ctx, t, "APIService "+externalMetricsAPI+" Available", 2*time.Minute, func(ctx context.Context) (bool, error) {
		got, err := apiServices.Get(ctx, externalMetricsAPI, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, cond := range conds {
			m, _ := cond.(map[string]any)
			if m["type"] == "Available" {
				return m["status"] == "True", nil
			}
		}
		return false, nil
	})
	return pod
}

// healthClient returns a client of the pod's plaintext gRPC health port
// (8081), as kubelet probes it.
func healthClient(t *testing.T, pod *cluster.Pod) healthpb.HealthClient {
	t.Helper()
	conn, err := grpc.NewClient(net.JoinHostPort(pod.Host.Addr.String(), "8081"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return healthpb.NewHealthClient(conn)
}

// overallStatus is the pod's readiness as a kubelet gRPC probe sees it.
func overallStatus(ctx context.Context, c healthpb.HealthClient) healthpb.HealthCheckResponse_ServingStatus {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := c.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN
	}
	return resp.GetStatus()
}
