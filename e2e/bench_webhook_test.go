package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/e2e/cluster"
	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedaclient "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned"
)

// benchEnv turns the benchmarks on (make bench sets it); they are too long
// for make test.
const benchEnv = "EBB_BENCH"

// TestBenchWebhookAdmission measures the webhook's admission latency with
// 10,000 ScaledObjects and their 10,000 HPAs in one namespace: the
// webhook runs as a pod; AdmissionReviews for new cpu-trigger
// ScaledObjects (whose rules read the target, the ScaledObjects on the
// same target and the namespace's HPAs) are posted to it directly, one at
// a time, and their latency and the webhook's RSS are reported as BENCH
// lines, which hack/bench.sh writes into docs/benchmarks.md.
func TestBenchWebhookAdmission(t *testing.T) {
	if os.Getenv(benchEnv) == "" {
		t.Skipf("a benchmark: set %s=1 (make bench)", benchEnv)
	}
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("EBB_BENCH_OBJECTS")); err == nil && v > 0 {
		n = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	c := startCluster(ctx, t, cluster.Options{CertManager: true})
	createNamespace(ctx, t, c, operatorNamespace)
	issueCertificates(ctx, t, c)
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyCRDs(ctx, filepath.Join(root, "deploy", "crds")); err != nil {
		t.Fatal(err)
	}
	pod := startWebhook(ctx, t, c)

	// The objects, created directly (the webhook is registered, but these
	// go fast enough through it too).
	const ns = "bench"
	createNamespace(ctx, t, c, ns)
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = 2000, 4000
	cfg.WarningHandler = rest.NoWarnings{} // "does not exist yet", 10,000 times
	keda, err := kedaclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				name := fmt.Sprintf("so-%05d", i)
				so := cronScaledObject(name, name)
				so.Spec.Advanced = &v1alpha1.AdvancedConfig{}
				if _, err := keda.KedaV1alpha1().ScaledObjects(ns).Create(ctx, so, metav1.CreateOptions{}); err != nil {
					t.Errorf("ScaledObject %s: %v", name, err)
				}
				if _, err := c.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(ctx, &autoscalingv2.HorizontalPodAutoscaler{
					// As the operator writes them: labelled with their
					// ScaledObject.
					ObjectMeta: metav1.ObjectMeta{Name: "keda-hpa-" + name, Labels: map[string]string{v1alpha1.ScaledObjectNameLabel: name}},
					Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
						ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
						MinReplicas:    ptr.To[int32](1), MaxReplicas: 10,
					},
				}, metav1.CreateOptions{}); err != nil {
					t.Errorf("HPA %s: %v", name, err)
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	t.Logf("%d ScaledObjects and %d HPAs created in %s", n, n, time.Since(start).Round(time.Second))

	// A Deployment for the admissions' target.
	d := resourcedDeployment("target")
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// AdmissionReviews straight to the webhook pod.
	caPEM, err := os.ReadFile(filepath.Join(secretToDir(ctx, t, c, operatorNamespace, webhookCert), "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "ebb-webhook.ebb-system.svc", MinVersion: tls.VersionTLS12},
	}}
	url := "https://" + net.JoinHostPort(pod.Host.Addr.String(), "9443") + "/validate-keda-sh-v1alpha1-scaledobject"
	review := func(i int) (time.Duration, error) {
		so := cpuScaledObject(fmt.Sprintf("new-%d", i), "target")
		so.Namespace = ns
		so.APIVersion, so.Kind = "keda.sh/v1alpha1", "ScaledObject"
		raw, err := json.Marshal(so)
		if err != nil {
			return 0, err
		}
		body, err := json.Marshal(admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request: &admissionv1.AdmissionRequest{
				UID:       types.UID(fmt.Sprintf("bench-%d", i)),
				Kind:      metav1.GroupVersionKind{Group: "keda.sh", Version: "v1alpha1", Kind: "ScaledObject"},
				Resource:  metav1.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledobjects"},
				Name:      so.Name,
				Namespace: ns,
				Operation: admissionv1.Create,
				Object:    runtime.RawExtension{Raw: raw},
			},
		})
		if err != nil {
			return 0, err
		}
		t0 := time.Now()
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var out admissionv1.AdmissionReview
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return 0, err
		}
		took := time.Since(t0)
		if out.Response == nil || !out.Response.Allowed {
			return took, fmt.Errorf("denied: %+v", out.Response)
		}
		return took, nil
	}
	const warmup, samples = 20, 500
	for i := range warmup {
		if _, err := review(i); err != nil {
			t.Fatalf("Warm-up admission: %v", err)
		}
	}
	var lat []time.Duration
	for i := range samples {
		took, err := review(warmup + i)
		if err != nil {
			t.Fatalf("Admission %d: %v", i, err)
		}
		lat = append(lat, took)
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	rss := processRSS(t, pod.Process.Pid())
	t.Logf("BENCH| webhook admission, %d ScaledObjects + %d HPAs in the namespace, %d sequential reviews | p50 %s, p99 %s, max %s, webhook RSS %s |",
		n, n, samples, pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond), rss)
}

// processRSS returns the resident set size of process pid, as /proc shows it.
func processRSS(t *testing.T, pid int) string {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("%.1f MiB", float64(kb)/1024)
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return ""
}
