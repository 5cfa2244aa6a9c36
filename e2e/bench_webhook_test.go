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
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/e2e/cluster"
	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedaclient "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned"
)

// benchEnv turns the benchmarks on (make bench sets it); they are too long
// for make test.
const benchEnv = "EBB_BENCH"

// benchObjectsEnv sets the namespace sizes of TestBenchWebhookAdmission:
// one number, or increasing numbers separated by commas.
const benchObjectsEnv = "EBB_BENCH_OBJECTS"

// readDurationMetric is the webhook's histogram of its reads of the API
// server, one series per operation and result.
const readDurationMetric = "ebb_uncached_read_duration_seconds"

// TestBenchWebhookAdmission measures the webhook's admission latency with
// 10,000 and then 50,000 ScaledObjects, and as many HPAs, in one
// namespace: the webhook runs as a pod; AdmissionReviews for new
// cpu-trigger ScaledObjects (whose rules read the target, the
// ScaledObjects on the same target and the HPAs) are posted to it
// directly, one at a time, while a ConfigMap elsewhere is written 20 times
// a second, as a real cluster's other writers do. At each size it
// reports, as a BENCH line (hack/bench.sh writes them into
// docs/benchmarks.md), the latency's p50, p99 and max, the webhook's RSS
// (and peak RSS) after the reviews, the API requests the webhook made and
// the API server's CPU per review; the log also has the mean time of each
// kind of read, the API server's watch-cache waits, and its time for each
// kind of read alone. Last, a BENCH line tells how many reviews sent right
// after a conflicting HPA or ScaledObject was created were denied: all
// must be, as the webhook's reads are consistent, and the test fails
// otherwise.
//
// The namespace grows in the same run, so the RSS at the two sizes shows
// whether the webhook's memory follows the namespace. The objects are
// created straight into the API server, without admission (the
// ValidatingWebhookConfiguration is removed: the reviews go to the pod
// directly), at a high QPS.
func TestBenchWebhookAdmission(t *testing.T) {
	if os.Getenv(benchEnv) == "" {
		t.Skipf("a benchmark: set %s=1 (make bench)", benchEnv)
	}
	sizes := benchSizes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	// The HPAs target Deployments that do not exist: the HPA controller
	// visits each once, not every 5 s, so as not to load the machine
	// with work that is not measured.
	c := startCluster(ctx, t, cluster.Options{CertManager: true, HPASyncPeriod: time.Hour})
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
	// The reviews are posted to the pod; the objects are created without
	// admission.
	if err := c.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, "ebb-webhook", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	const ns = "bench"
	createNamespace(ctx, t, c, ns)
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, resourcedDeployment("target"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	review := benchReviewer(ctx, t, c, pod, ns)
	apiserver := apiServerPid(t, c)
	benchBackgroundWrites(ctx, t, c)

	created := 0
	reviews := 0
	for _, n := range sizes {
		start := time.Now()
		benchCreateObjects(ctx, t, c, ns, created, n)
		t.Logf("%d ScaledObjects and %d HPAs created in %s; the namespace has %d of each", n-created, n-created, time.Since(start).Round(time.Second), n)
		created = n

		const warmup, samples = 20, 500
		for range warmup {
			if _, err := benchAdmitted(review, reviews); err != nil {
				t.Fatalf("Warm-up admission: %v", err)
			}
			reviews++
		}
		before, err := scrapeMetrics(ctx, pod.Host.Addr.String())
		if err != nil {
			t.Fatalf("Metrics of the webhook: %v", err)
		}
		apiBefore := benchAPIServerMetrics(ctx, t, c)
		apiCPU := processCPU(t, apiserver)
		lat := make([]time.Duration, 0, samples)
		for i := range samples {
			took, err := benchAdmitted(review, reviews)
			if err != nil {
				t.Fatalf("Admission %d: %v", i, err)
			}
			reviews++
			lat = append(lat, took)
		}
		after, err := scrapeMetrics(ctx, pod.Host.Addr.String())
		if err != nil {
			t.Fatalf("Metrics of the webhook: %v", err)
		}
		apiCPU = processCPU(t, apiserver) - apiCPU
		requests := benchReads(t, before, after, samples)
		benchWatchCacheWaits(t, apiBefore, benchAPIServerMetrics(ctx, t, c), samples)
		slices.Sort(lat)
		pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
		benchAPIReads(ctx, t, c, ns, apiserver)
		rss, peak := processMemory(t, pod.Process.Pid())
		t.Logf("BENCH| webhook admission, %s ScaledObjects + %s HPAs in one namespace, %d sequential reviews | p50 %s, p99 %s, max %s, webhook RSS %s (peak %s), %.1f API requests and %.1f ms of API server CPU per review |",
			thousands(n), thousands(n), samples, pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond),
			lat[len(lat)-1].Round(10*time.Microsecond), rss, peak, requests, float64(apiCPU.Microseconds())/1000/samples)
	}

	// Last, as they add HPAs that are not ebb's to the namespace.
	const pairs = 100
	hpaDenied, soDenied := benchBackToBack(ctx, t, c, ns, review, pairs)
	t.Logf("BENCH| webhook, a conflicting object created just before the review, %d times each | HPA then ScaledObject: %d of %d denied; ScaledObject then ScaledObject: %d of %d denied |",
		pairs, hpaDenied, pairs, soDenied, pairs)
	if hpaDenied != pairs || soDenied != pairs {
		t.Errorf("The webhook admitted %d ScaledObjects on a workload an HPA created just before already scaled, and %d on one a ScaledObject created just before already scaled: it must never decide on a stale view", pairs-hpaDenied, pairs-soDenied)
	}
}

// benchBackgroundWrites updates a ConfigMap 20 times a second until ctx is
// done, as the other writers of a real cluster (Leases, Events, statuses)
// do: the reviews are measured in a cluster whose etcd revision moves.
func benchBackgroundWrites(ctx context.Context, t *testing.T, c *cluster.Cluster) {
	t.Helper()
	const ns = "bench-background"
	createNamespace(ctx, t, c, ns)
	cm, err := c.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "heartbeat"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
	})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-wctx.Done():
				return
			case <-tick.C:
			}
			cm.Data = map[string]string{"beat": strconv.Itoa(i)}
			if updated, err := c.Client.CoreV1().ConfigMaps(ns).Update(wctx, cm, metav1.UpdateOptions{}); err == nil {
				cm = updated
			}
		}
	}()
}

// benchAPIServerMetrics returns the API server's metrics, as series →
// value.
func benchAPIServerMetrics(ctx context.Context, t *testing.T, c *cluster.Cluster) map[string]float64 {
	t.Helper()
	body, err := c.Client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		t.Fatalf("Metrics of the API server: %v", err)
	}
	out := map[string]float64{}
	for line := range strings.SplitSeq(string(body), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
				out[line[:i]] = v
			}
		}
	}
	return out
}

// benchWatchCacheWaits logs how long the API server's consistent LISTs of
// HPAs and ScaledObjects waited, per review, for its watch cache to catch
// up with etcd (apiserver_watch_cache_read_wait_seconds).
func benchWatchCacheWaits(t *testing.T, before, after map[string]float64, samples int) {
	t.Helper()
	var parts []string
	for _, res := range []string{"horizontalpodautoscalers", "scaledobjects"} {
		var count, sum float64
		for series, v := range after {
			if !strings.Contains(series, `resource="`+res+`"`) {
				continue
			}
			switch {
			case strings.HasPrefix(series, "apiserver_watch_cache_read_wait_seconds_count{"):
				count += v - before[series]
			case strings.HasPrefix(series, "apiserver_watch_cache_read_wait_seconds_sum{"):
				sum += v - before[series]
			}
		}
		mean := 0.0
		if count > 0 {
			mean = 1000 * sum / count
		}
		parts = append(parts, fmt.Sprintf("%s %.2f× %.2fms", res, count/float64(samples), mean))
	}
	t.Logf("API server watch cache waits per review (count, mean wait): %s", strings.Join(parts, ", "))
}

// benchAPIReads logs the time the API server takes, seen from the test,
// to answer the webhook's kinds of reads of ns one at a time, made as the
// webhook makes them: a GET, and consistent LISTs that select a few
// objects out of the namespace. For comparison, it also times the same
// LISTs served by the watch cache as it is (resourceVersionMatch=
// NotOlderThan, which the webhook never asks for): the selectors' scan of
// the namespace without the wait for etcd.
func benchAPIReads(ctx context.Context, t *testing.T, c *cluster.Cluster, ns string, apiserver int) {
	t.Helper()
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = -1, 0
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	keda, err := kedaclient.NewForConfig(rest.CopyConfig(c.Config))
	if err != nil {
		t.Fatal(err)
	}
	hpas := kube.AutoscalingV2().HorizontalPodAutoscalers(ns)
	sos := keda.KedaV1alpha1().ScaledObjects(ns)
	unlabelled := metav1.ListOptions{LabelSelector: "!" + v1alpha1.ScaledObjectNameLabel, Limit: 500}
	onTarget := metav1.ListOptions{FieldSelector: "spec.scaleTargetRef.name=target"}
	notOlder := func(sel metav1.ListOptions) metav1.ListOptions {
		sel.ResourceVersion, sel.ResourceVersionMatch = "1", metav1.ResourceVersionMatchNotOlderThan
		return sel
	}
	reads := []struct {
		name string
		read func() error
	}{
		{"GET HPA", func() error {
			_, err := hpas.Get(ctx, v1alpha1.HPANamePrefix+"so-00001", metav1.GetOptions{})
			return err
		}},
		{"LIST HPAs !" + v1alpha1.ScaledObjectNameLabel, func() error {
			_, err := hpas.List(ctx, unlabelled)
			return err
		}},
		{"LIST ScaledObjects spec.scaleTargetRef.name=target", func() error {
			_, err := sos.List(ctx, onTarget)
			return err
		}},
		{"the same LIST of HPAs from the watch cache as it is", func() error {
			_, err := hpas.List(ctx, notOlder(unlabelled))
			return err
		}},
		{"the same LIST of ScaledObjects from the watch cache as it is", func() error {
			_, err := sos.List(ctx, notOlder(onTarget))
			return err
		}},
	}
	var parts []string
	for _, r := range reads {
		const n = 50
		var total time.Duration
		cpu := processCPU(t, apiserver)
		for range n {
			t0 := time.Now()
			if err := r.read(); err != nil {
				t.Fatalf("%s: %v", r.name, err)
			}
			total += time.Since(t0)
		}
		cpu = processCPU(t, apiserver) - cpu
		parts = append(parts, fmt.Sprintf("%s %.2fms (API server CPU %.2fms)", r.name, float64(total.Microseconds())/1000/n, float64(cpu.Microseconds())/1000/n))
	}
	t.Logf("API server reads from the test, one at a time (mean of 50): %s", strings.Join(parts, ", "))
}

// benchSizes returns the namespace sizes to measure at: EBB_BENCH_OBJECTS,
// or 10,000 and 50,000.
func benchSizes(t *testing.T) []int {
	t.Helper()
	v := os.Getenv(benchObjectsEnv)
	if v == "" {
		return []int{10000, 50000}
	}
	var sizes []int
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || (len(sizes) > 0 && n <= sizes[len(sizes)-1]) {
			t.Fatalf("%s=%q: want one positive number or increasing numbers separated by commas", benchObjectsEnv, v)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

// benchCreateObjects creates the ScaledObjects so-<from>… so-<to-1> of ns,
// each with the HPA the operator would write for it (labelled with its
// ScaledObject), each on a Deployment of its own name that does not exist.
func benchCreateObjects(ctx context.Context, t *testing.T, c *cluster.Cluster, ns string, from, to int) {
	t.Helper()
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = -1, 0 // no client-side limit
	keda, err := kedaclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pcfg := rest.CopyConfig(cfg)
	pcfg.ContentType = "application/vnd.kubernetes.protobuf"
	kube, err := kubernetes.NewForConfig(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	work := make(chan int, 64)
	var (
		mu     sync.Mutex
		failed int
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if failed++; failed <= 5 {
			t.Errorf(format, args...)
		}
	}
	for range 24 {
		wg.Go(func() {
			for i := range work {
				name := fmt.Sprintf("so-%05d", i)
				so := cronScaledObject(name, name)
				so.Spec.Advanced = &v1alpha1.AdvancedConfig{}
				if _, err := keda.KedaV1alpha1().ScaledObjects(ns).Create(ctx, so, metav1.CreateOptions{}); err != nil {
					fail("ScaledObject %s: %v", name, err)
				}
				if _, err := kube.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(ctx, &autoscalingv2.HorizontalPodAutoscaler{
					// As the operator writes them: labelled with their
					// ScaledObject.
					ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.HPANamePrefix + name, Labels: map[string]string{v1alpha1.ScaledObjectNameLabel: name}},
					Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
						ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
						MinReplicas:    ptr.To[int32](1), MaxReplicas: 10,
					},
				}, metav1.CreateOptions{}); err != nil {
					fail("HPA %s: %v", name, err)
				}
			}
		})
	}
	for i := from; i < to; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if failed > 0 {
		t.Fatalf("%d creations failed", failed)
	}
}

// benchReview posts the AdmissionReview of the CREATE of so (in the
// review's namespace) straight to the webhook pod, and returns the time to
// its answer and the answer.
type benchReview func(i int, so *v1alpha1.ScaledObject) (time.Duration, *admissionv1.AdmissionResponse, error)

// benchReviewer returns the benchReview of the webhook pod for namespace
// ns.
func benchReviewer(ctx context.Context, t *testing.T, c *cluster.Cluster, pod *cluster.Pod, ns string) benchReview {
	t.Helper()
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
	return func(i int, so *v1alpha1.ScaledObject) (time.Duration, *admissionv1.AdmissionResponse, error) {
		so = so.DeepCopy()
		so.Namespace = ns
		so.APIVersion, so.Kind = "keda.sh/v1alpha1", "ScaledObject"
		raw, err := json.Marshal(so)
		if err != nil {
			return 0, nil, err
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
			return 0, nil, err
		}
		t0 := time.Now()
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		var out admissionv1.AdmissionReview
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return 0, nil, err
		}
		took := time.Since(t0)
		if out.Response == nil {
			return took, nil, fmt.Errorf("an AdmissionReview without a response")
		}
		return took, out.Response, nil
	}
}

// benchAdmitted reviews the new cpu-trigger ScaledObject new-<i> on
// Deployment target; an answer other than allowed is an error.
func benchAdmitted(review benchReview, i int) (time.Duration, error) {
	took, resp, err := review(i, cpuScaledObject(fmt.Sprintf("new-%d", i), "target"))
	if err == nil && !resp.Allowed {
		err = fmt.Errorf("denied: %+v", resp.Result)
	}
	return took, err
}

// benchBackToBack measures what the webhook sees of a write made just
// before a review: n times, it creates an HPA (not ebb's) on a workload
// and at once reviews a new ScaledObject on the same workload, then does
// the same with a ScaledObject. Each review should be denied; it returns
// how many were.
func benchBackToBack(ctx context.Context, t *testing.T, c *cluster.Cluster, ns string, review benchReview, n int) (hpaDenied, soDenied int) {
	t.Helper()
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = -1, 0
	keda, err := kedaclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		target := fmt.Sprintf("b2b-hpa-%03d", i)
		if _, err := c.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(ctx, &autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Name: target},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: target},
				MinReplicas:    ptr.To[int32](1), MaxReplicas: 10,
			},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		_, resp, err := review(i, cronScaledObject(target, target))
		if err != nil {
			t.Fatal(err)
		}
		if benchDenied(t, resp) {
			hpaDenied++
		}

		target = fmt.Sprintf("b2b-so-%03d", i)
		if _, err := keda.KedaV1alpha1().ScaledObjects(ns).Create(ctx, cronScaledObject(target, target), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		_, resp, err = review(i, cronScaledObject(target+"-again", target))
		if err != nil {
			t.Fatal(err)
		}
		if benchDenied(t, resp) {
			soDenied++
		}
	}
	return hpaDenied, soDenied
}

// benchDenied reports whether resp denies the object for breaking a rule
// (422); any other failure fails the test.
func benchDenied(t *testing.T, resp *admissionv1.AdmissionResponse) bool {
	t.Helper()
	if resp.Allowed {
		return false
	}
	if resp.Result == nil || resp.Result.Code != http.StatusUnprocessableEntity {
		t.Fatalf("Review failed: %+v", resp.Result)
	}
	return true
}

// benchReads logs, from two scrapes of the webhook's metrics around
// samples reviews, how many reads of each operation a review made and
// their mean time, and returns the API requests per review (every read
// but resolve_kind, which the REST mapper answers from its cache of
// kinds).
func benchReads(t *testing.T, before, after map[string]float64, samples int) float64 {
	t.Helper()
	type op struct{ count, sum float64 }
	ops := map[string]*op{}
	for series, v := range after {
		name, labels, ok := strings.Cut(series, "{")
		if !ok || (name != readDurationMetric+"_count" && name != readDurationMetric+"_sum") {
			continue
		}
		operation := ""
		for l := range strings.SplitSeq(strings.TrimSuffix(labels, "}"), ",") {
			if v, ok := strings.CutPrefix(l, `operation="`); ok {
				operation = strings.TrimSuffix(v, `"`)
			}
		}
		o := ops[operation]
		if o == nil {
			o = &op{}
			ops[operation] = o
		}
		if strings.HasSuffix(name, "_count") {
			o.count += v - before[series]
		} else {
			o.sum += v - before[series]
		}
	}
	names := make([]string, 0, len(ops))
	for name := range ops {
		names = append(names, name)
	}
	sort.Strings(names)
	requests := 0.0
	var parts []string
	for _, name := range names {
		o := ops[name]
		if o.count == 0 {
			continue
		}
		if name != "resolve_kind" {
			requests += o.count
		}
		parts = append(parts, fmt.Sprintf("%s %.2f× %.2fms", name, o.count/float64(samples), 1000*o.sum/o.count))
	}
	cpu := "process_cpu_seconds_total"
	t.Logf("Reads per review (count, mean time): %s; webhook CPU %.2fms per review", strings.Join(parts, ", "), 1000*(after[cpu]-before[cpu])/float64(samples))
	return requests / float64(samples)
}

// thousands formats n with commas: 50,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// apiServerPid returns the process id of c's kube-apiserver.
func apiServerPid(t *testing.T, c *cluster.Cluster) int {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if strings.HasSuffix(args[0], "kube-apiserver") && slices.Contains(args, "--etcd-prefix=/"+c.Name) {
			return pid
		}
	}
	t.Fatalf("no kube-apiserver process of cluster %s", c.Name)
	return 0
}

// processCPU returns the CPU time (user and system) process pid has used.
func processCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command, which is in parentheses: state is
	// the first, utime and stime the 12th and 13th.
	fields := strings.Fields(string(stat[bytes.LastIndex(stat, []byte(")"))+1:]))
	if len(fields) < 13 {
		t.Fatalf("/proc/%d/stat: %q", pid, stat)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			t.Fatalf("/proc/%d/stat: %v", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// processMemory returns the resident set size of process pid and its peak,
// as /proc shows them (VmRSS, VmHWM).
func processMemory(t *testing.T, pid int) (rss, peak string) {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	field := func(name string) string {
		for line := range strings.SplitSeq(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, name+":"); ok {
				kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
				if err != nil {
					t.Fatal(err)
				}
				return fmt.Sprintf("%.1f MiB", float64(kb)/1024)
			}
		}
		t.Fatalf("no %s in /proc/%d/status", name, pid)
		return ""
	}
	return field("VmRSS"), field("VmHWM")
}
