package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/e2e/cluster"
	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedaclient "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned"
	kedainformers "github.com/ebb-autoscaler/ebb/pkg/client/informers/externalversions"
)

// The scale benchmark's fixed settings: the HPA controller's default sync
// period (the harness's 5 s would make kube-controller-manager, not ebb,
// the load at 10,000 HPAs).
const (
	scaleHPASyncPeriod = 15 * time.Second
	scaleNamespace     = "bench"
	// operatorUser is the operator's user name: the chart's ServiceAccount.
	operatorUser = "system:serviceaccount:" + operatorNamespace + ":ebb-operator"
)

// scaleParams size one run of the scale benchmark.
type scaleParams struct {
	n               int
	pollingInterval time.Duration
	settle          time.Duration // after all Ready, before the steady window
	window          time.Duration // the steady-state window
	activations     int           // sampled ScaledObjects flipped to active
	// smoke: a check in make test, not a measurement: it fails when the
	// operator sends anything but Lease renewals in the steady window.
	smoke bool
}

// TestBenchScale measures ebb's operator at 100, 1,000 and 10,000
// ScaledObjects (EBB_BENCH_SCALE="100,1000,10000" by default), each in a
// fresh cluster with the operator on its default flags and the chart's
// RBAC: N Deployments at zero replicas, then N ScaledObjects with one
// metrics-api trigger each (pollingInterval 30 s, KEDA's default) against
// a source the test serves, created at once. It reports as BENCH lines:
//
//   - time to Ready: from the last create until every ScaledObject is
//     Ready and every HPA exists, with the curve of Ready over time;
//   - the operator's requests to the API server while creating and in a
//     steady-state minute, from the API server's audit log (by verb and
//     resource), and its requests to the source;
//   - the operator's RSS, Go heap, goroutines and CPU in that minute;
//   - activation latency: 100 sampled sources flipped to active, the time
//     until their Deployment has a replica (p50/p99/max).
//
// Without EBB_BENCH (make test) it is a smoke test at 20 ScaledObjects
// polled every 5 s, which fails if the operator's steady state costs any
// request but its Lease renewals: no GET or LIST per poll, no write when
// nothing changed.
func TestBenchScale(t *testing.T) {
	if os.Getenv(benchEnv) == "" {
		benchScale(t, scaleParams{n: 20, pollingInterval: 5 * time.Second, settle: 10 * time.Second, window: 20 * time.Second, activations: 5, smoke: true})
		return
	}
	sizes := []int{100, 1000, 10000}
	if v := os.Getenv("EBB_BENCH_SCALE"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				t.Fatalf("EBB_BENCH_SCALE=%q: %q is not a count", v, f)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			benchScale(t, scaleParams{n: n, pollingInterval: 30 * time.Second, settle: 45 * time.Second, window: 60 * time.Second, activations: 100})
		})
	}
}

func benchScale(t *testing.T, p scaleParams) {
	n := p.n
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	c := startCluster(ctx, t, cluster.Options{HPASyncPeriod: scaleHPASyncPeriod, AuditLog: true})
	source := startValueSource(t, c.APIServerAddr.Addr().String())
	op := startOperator(ctx, t, c, "", func(spec *cluster.PodSpec) {
		spec.Args = append(spec.Args, "--profiling")
	})
	createNamespace(ctx, t, c, scaleNamespace)

	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = 2000, 4000
	cfg.WarningHandler = rest.NoWarnings{}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	keda, err := kedaclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	name := func(i int) string { return fmt.Sprintf("w-%05d", i) }

	start := time.Now()
	parallel(ctx, t, n, func(i int) error {
		_, err := kube.AppsV1().Deployments(scaleNamespace).Create(ctx, scaleDeployment(name(i)), metav1.CreateOptions{})
		return err
	})
	t.Logf("%d Deployments created in %s", n, time.Since(start).Round(time.Millisecond))

	w := newScaleWatch(ctx, t, kube, keda)

	// The ScaledObjects, at once.
	createStart := time.Now()
	profiles := startProfile(ctx, t, op, n, "cpu-creating", 30*time.Second)
	parallel(ctx, t, n, func(i int) error {
		_, err := keda.KedaV1alpha1().ScaledObjects(scaleNamespace).Create(ctx, scaleScaledObject(name(i), source.url(name(i)), p.pollingInterval), metav1.CreateOptions{})
		return err
	})
	lastCreate := time.Now()
	t.Logf("%d ScaledObjects created in %s", n, lastCreate.Sub(createStart).Round(time.Millisecond))

	var curve []string
	next, last := time.Duration(0), -1
	deadline := lastCreate.Add(15 * time.Minute)
	var allReady time.Time
	for {
		ready, hpas := w.counts()
		if el := time.Since(createStart); el >= next {
			if ready != last {
				curve = append(curve, fmt.Sprintf("%.1fs: %d", el.Seconds(), ready))
				last = ready
			}
			next += curveStep(n)
		}
		if ready == n && hpas == n {
			allReady = time.Now()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("After %s, %d of %d ScaledObjects Ready and %d HPAs (operator log: %s)", time.Since(lastCreate).Round(time.Second), ready, n, hpas, op.Process.LogPath)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	curve = append(curve, fmt.Sprintf("%.1fs: %d (all)", allReady.Sub(createStart).Seconds(), n))
	loadAtReady := loadAverage()
	profiles.wait()
	toReady := allReady.Sub(lastCreate)
	creation := auditCount(t, c, createStart, allReady.Add(2*time.Second))
	t.Logf("All %d Ready with HPAs %s after the last create (%s after the first)", n, toReady.Round(time.Millisecond), allReady.Sub(createStart).Round(time.Millisecond))

	// Steady state: every ScaledObject polled at least once more (its
	// first poll's Active condition written) and no ScaledObject changed
	// for quietFor, then the window.
	const quietFor = 15 * time.Second
	scaleSleep(ctx, p.settle)
	for ctx.Err() == nil {
		w.mu.Lock()
		quiet := time.Since(w.lastChange)
		w.mu.Unlock()
		if quiet >= quietFor {
			break
		}
		if time.Since(allReady) > 15*time.Minute {
			t.Fatalf("ScaledObjects still changing %s after all were Ready", time.Since(allReady).Round(time.Second))
		}
		scaleSleep(ctx, time.Second)
	}
	w.mu.Lock()
	settled := w.lastChange
	w.mu.Unlock()
	scrapeBefore := scrapeProcess(ctx, t, op)
	sourceBefore := source.requests.Load()
	windowStart := time.Now()
	w.watchChanges(true)
	scaleSleep(ctx, p.window)
	windowEnd := time.Now()
	if body, err := renewalScrape(ctx, op.Host.Addr.String()); err == nil {
		var lines []string
		for _, l := range strings.Split(body, "\n") {
			if (strings.HasPrefix(l, "workqueue_") && strings.Contains(l, `name="scaledobject"`) && !strings.Contains(l, "_bucket")) ||
				(strings.HasPrefix(l, "ebb_poller_") && !strings.Contains(l, "_bucket")) {
				lines = append(lines, l)
			}
		}
		t.Logf("The operator's queue and poller at the end of the steady window:\n%s", strings.Join(lines, "\n"))
	}
	changes, changeSamples := w.watchChanges(false)
	if changes > 0 {
		t.Logf("%d ScaledObject changes in the steady window; the first:\n%s", changes, strings.Join(changeSamples, "\n"))
	}
	scrapeAfter := scrapeProcess(ctx, t, op)
	startProfile(ctx, t, op, n, "heap-steady", 0).wait()
	sourceReqs := source.requests.Load() - sourceBefore
	scaleSleep(ctx, 3*time.Second) // the audit log's batches
	steady := auditCount(t, c, windowStart, windowEnd)
	secs := windowEnd.Sub(windowStart).Seconds()
	cpu := (scrapeAfter.cpuSeconds - scrapeBefore.cpuSeconds) / secs

	// Activation: 100 sampled sources become active.
	samples := min(p.activations, n)
	sampled := make([]string, samples)
	for k := range samples {
		sampled[k] = name(k * n / samples)
	}
	flip := time.Now()
	for _, s := range sampled {
		source.set(s, 5)
	}
	lat := w.waitScaled(ctx, t, sampled, flip, 2*p.pollingInterval+30*time.Second)

	// In make test's smoke run the figures are logged but not collected.
	logf := func(format string, args ...any) {
		if p.smoke {
			format = "smoke " + format
		}
		t.Logf(format, args...)
	}
	logf("BENCH| scale %d: time to Ready | %d ScaledObjects created in %.1f s; all Ready with their HPAs %.1f s after the last create (%.1f s after the first); machine load average then %s |",
		n, n, lastCreate.Sub(createStart).Seconds(), toReady.Seconds(), allReady.Sub(createStart).Seconds(), loadAtReady)
	logf("BENCH| scale %d: Ready over time (from the first create) | %s |", n, strings.Join(curve, ", "))
	logf("BENCH| scale %d: settled (last status change: every Active condition after its first poll) | %.1f s after the last create |", n, settled.Sub(lastCreate).Seconds())
	logf("BENCH| scale %d: operator requests while creating | %d (%.2f per ScaledObject): %s |", n, creation.total, float64(creation.total)/float64(n), creation.top(8))
	logf("BENCH| scale %d: operator requests, steady state | %.2f req/s (%d in %.0f s): %s; source polls %.1f/s (expected %.1f/s) |",
		n, float64(steady.total)/secs, steady.total, secs, steady.top(8), float64(sourceReqs)/secs, float64(n)/p.pollingInterval.Seconds())
	logf("BENCH| scale %d: operator resources, steady state | RSS %.1f MiB, heap in use %.1f MiB, %d goroutines, CPU %.3f cores |",
		n, scrapeAfter.rss/(1<<20), scrapeAfter.heapInuse/(1<<20), int(scrapeAfter.goroutines), cpu)
	logf("BENCH| scale %d: activation 0→1, %d sampled | p50 %.1f s, p99 %.1f s, max %.1f s (pollingInterval %s) |",
		n, samples, pctl(lat, 0.50).Seconds(), pctl(lat, 0.99).Seconds(), lat[len(lat)-1].Seconds(), p.pollingInterval)

	logf("BENCHROW| %d | %.1f s | %.1f s | %.1f s | %.2f | %.2f | %.0f MiB | %.0f MiB | %d | %.3f | %.1f s |",
		n, lastCreate.Sub(createStart).Seconds(), toReady.Seconds(), settled.Sub(lastCreate).Seconds(), float64(creation.total)/float64(n), float64(steady.total)/secs,
		scrapeAfter.rss/(1<<20), scrapeAfter.heapInuse/(1<<20), int(scrapeAfter.goroutines), cpu, pctl(lat, 0.99).Seconds())

	if p.smoke {
		var unexpected []string
		for key, count := range steady.by {
			if !strings.Contains(key, "leases") && !strings.HasPrefix(key, "watch ") {
				unexpected = append(unexpected, fmt.Sprintf("%s %d", key, count))
			}
		}
		if len(unexpected) > 0 {
			t.Errorf("In the steady state the operator sent %v; want only Lease renewals (and watches): no GET or LIST per poll, no write when nothing changed (operator log: %s)",
				unexpected, op.Process.LogPath)
		}
		if want := int64(float64(n) * secs / p.pollingInterval.Seconds()); sourceReqs < want/2 || sourceReqs > 2*want {
			t.Errorf("The source was polled %d times in %.0f s; want about %d (%d ScaledObjects every %s)", sourceReqs, secs, want, n, p.pollingInterval)
		}
	}

	if steady.total > 0 && testing.Verbose() {
		t.Logf("Steady-state requests: %s", steady.top(100))
	}
}

// curveStep spaces the Ready-over-time samples.
func curveStep(n int) time.Duration {
	switch {
	case n <= 100:
		return 250 * time.Millisecond
	case n <= 1000:
		return time.Second
	default:
		return 5 * time.Second
	}
}

func scaleSleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func pctl(sorted []time.Duration, p float64) time.Duration {
	return sorted[int(math.Round(p*float64(len(sorted)-1)))]
}

// parallel runs do(0..n-1) on 32 workers and fails t on the first error.
func parallel(ctx context.Context, t *testing.T, n int, do func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				for attempt := 0; ; attempt++ {
					err := do(i)
					if err == nil || apierrors.IsAlreadyExists(err) {
						break
					}
					if attempt < 5 && (apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err)) {
						time.Sleep(time.Second)
						continue
					}
					select {
					case errs <- fmt.Errorf("object %d: %w", i, err):
					default:
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

func scaleDeployment(name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "example.invalid/worker:1"}}},
			},
		},
	}
}

func scaleScaledObject(name, url string, pollingInterval time.Duration) *v1alpha1.ScaledObject {
	return &v1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.ScaledObjectSpec{
			ScaleTargetRef:  &v1alpha1.ScaleTarget{Name: name},
			PollingInterval: ptr.To[int32](int32(pollingInterval.Seconds())),
			MinReplicaCount: ptr.To[int32](0),
			MaxReplicaCount: ptr.To[int32](10),
			Triggers: []v1alpha1.ScaleTrigger{{
				Type: "metrics-api",
				Metadata: map[string]string{
					"url":           url,
					"valueLocation": "value",
					"targetValue":   "10",
				},
			}},
		},
	}
}

// valueSource is the benchmark's event source: an HTTP server on the
// cluster's gateway address (which the operator's network namespace
// reaches) answering {"value": v} for each ScaledObject's name, 0 until
// set.
type valueSource struct {
	base     string
	values   sync.Map // name → int
	requests atomic.Int64
}

func startValueSource(t *testing.T, host string) *valueSource {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	s := &valueSource{base: "http://" + l.Addr().String()}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		v := 0
		if got, ok := s.values.Load(strings.TrimPrefix(r.URL.Path, "/v/")); ok {
			v = got.(int)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"value": %d}`, v)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *valueSource) url(name string) string { return s.base + "/v/" + name }
func (s *valueSource) set(name string, v int) { s.values.Store(name, v) }

// scaleWatch follows the benchmark namespace's ScaledObjects, HPAs and
// Deployments through the test's own informers.
type scaleWatch struct {
	mu       sync.Mutex
	ready    map[string]bool
	hpas     map[string]bool
	replicas map[string]int32
	scaledAt map[string]time.Time
	last     map[string]v1alpha1.ScaledObjectStatus
	// lastChange is when a ScaledObject last changed.
	lastChange time.Time
	watching   bool
	changes    int
	samples    []string
}

func newScaleWatch(ctx context.Context, t *testing.T, kube kubernetes.Interface, keda kedaclient.Interface) *scaleWatch {
	t.Helper()
	w := &scaleWatch{ready: map[string]bool{}, hpas: map[string]bool{}, replicas: map[string]int32{}, scaledAt: map[string]time.Time{}, last: map[string]v1alpha1.ScaledObjectStatus{}}
	kf := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(scaleNamespace))
	sf := kedainformers.NewSharedInformerFactoryWithOptions(keda, 0, kedainformers.WithNamespace(scaleNamespace))
	onSO := func(obj any) {
		so, ok := obj.(*v1alpha1.ScaledObject)
		if !ok {
			return
		}
		w.recordChange(so)
		cond, _ := so.Status.Conditions.Get(v1alpha1.ConditionReady)
		w.mu.Lock()
		w.ready[so.Name] = cond.Status == metav1.ConditionTrue
		w.mu.Unlock()
	}
	_, _ = sf.Keda().V1alpha1().ScaledObjects().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onSO, UpdateFunc: func(_, o any) { onSO(o) },
	})
	_, _ = kf.Autoscaling().V2().HorizontalPodAutoscalers().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if h, ok := obj.(*autoscalingv2.HorizontalPodAutoscaler); ok {
				w.mu.Lock()
				w.hpas[h.Name] = true
				w.mu.Unlock()
			}
		},
	})
	onDeploy := func(obj any) {
		d, ok := obj.(*appsv1.Deployment)
		if !ok || d.Spec.Replicas == nil {
			return
		}
		w.mu.Lock()
		w.replicas[d.Name] = *d.Spec.Replicas
		if *d.Spec.Replicas > 0 {
			if _, seen := w.scaledAt[d.Name]; !seen {
				w.scaledAt[d.Name] = time.Now()
			}
		}
		w.mu.Unlock()
	}
	_, _ = kf.Apps().V1().Deployments().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onDeploy, UpdateFunc: func(_, o any) { onDeploy(o) },
	})
	kf.Start(ctx.Done())
	sf.Start(ctx.Done())
	for typ, ok := range kf.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("the test's %v informer did not sync", typ)
		}
	}
	for typ, ok := range sf.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("the test's %v informer did not sync", typ)
		}
	}
	t.Cleanup(func() { kf.Shutdown(); sf.Shutdown() })
	return w
}

// recordChange keeps, while watching for changes (watchChanges), the
// first few status changes seen, to show what was written.
func (w *scaleWatch) recordChange(so *v1alpha1.ScaledObject) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lastChange = time.Now()
	if !w.watching {
		w.last[so.Name] = so.Status
		return
	}
	w.changes++
	if len(w.samples) < 3 {
		before, _ := json.Marshal(w.last[so.Name])
		after, _ := json.Marshal(so.Status)
		w.samples = append(w.samples, fmt.Sprintf("%s: %s\n  → %s", so.Name, before, after))
	}
	w.last[so.Name] = so.Status
}

// watchChanges starts (true) or stops counting ScaledObject changes and
// returns the count and samples so far.
func (w *scaleWatch) watchChanges(on bool) (int, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.watching = on
	n, samples := w.changes, w.samples
	w.changes, w.samples = 0, nil
	return n, samples
}

func (w *scaleWatch) counts() (ready, hpas int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.ready {
		if r {
			ready++
		}
	}
	return ready, len(w.hpas)
}

// waitScaled waits until every named Deployment has a replica and returns
// the latencies from since, sorted.
func (w *scaleWatch) waitScaled(ctx context.Context, t *testing.T, names []string, since time.Time, timeout time.Duration) []time.Duration {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		var lat []time.Duration
		var missing []string
		for _, n := range names {
			if at, ok := w.scaledAt[n]; ok {
				lat = append(lat, at.Sub(since))
			} else {
				missing = append(missing, n)
			}
		}
		w.mu.Unlock()
		if len(missing) == 0 {
			slices.Sort(lat)
			return lat
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d activated Deployments still at zero after %s: %v", len(missing), len(names), timeout, missing[:min(len(missing), 10)])
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// processFigures is what the benchmark reads from the operator's /metrics.
type processFigures struct {
	rss, heapInuse, goroutines, cpuSeconds float64
}

func scrapeProcess(ctx context.Context, t *testing.T, pod *cluster.Pod) processFigures {
	t.Helper()
	body, err := renewalScrape(ctx, pod.Host.Addr.String())
	if err != nil {
		t.Fatalf("Scraping the operator's metrics: %v", err)
	}
	get := func(name string) float64 {
		v := renewalPromValues(body, name)
		if len(v) == 0 {
			t.Fatalf("the operator's /metrics has no %s", name)
		}
		var sum float64
		for _, x := range v {
			sum += x
		}
		return sum
	}
	return processFigures{
		rss:        get("process_resident_memory_bytes"),
		heapInuse:  get("go_memstats_heap_inuse_bytes"),
		goroutines: get("go_goroutines"),
		cpuSeconds: get("process_cpu_seconds_total"),
	}
}

// auditTally counts the operator's requests in an audit log window.
type auditTally struct {
	total int
	by    map[string]int
}

func (a auditTally) top(k int) string {
	if a.total == 0 {
		return "none"
	}
	keys := make([]string, 0, len(a.by))
	for key := range a.by {
		keys = append(keys, key)
	}
	sort.Slice(keys, func(i, j int) bool {
		if a.by[keys[i]] != a.by[keys[j]] {
			return a.by[keys[i]] > a.by[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var parts []string
	for i, key := range keys {
		if i == k {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, fmt.Sprintf("%s %d", key, a.by[key]))
	}
	return strings.Join(parts, ", ")
}

// auditCount counts the operator's requests received in [from, to) from
// the API server's audit log: one per audit ID, keyed "verb resource"
// (with the subresource after a slash).
func auditCount(t *testing.T, c *cluster.Cluster, from, to time.Time) auditTally {
	t.Helper()
	f, err := os.Open(c.AuditLogPath())
	if err != nil {
		t.Fatalf("Reading the audit log: %v", err)
	}
	defer f.Close()
	type event struct {
		AuditID        string                    `json:"auditID"`
		Verb           string                    `json:"verb"`
		User           struct{ Username string } `json:"user"`
		Received       time.Time                 `json:"requestReceivedTimestamp"`
		ResponseStatus *struct {
			Code int `json:"code"`
		} `json:"responseStatus"`
		ObjectRef *struct {
			Resource    string `json:"resource"`
			Subresource string `json:"subresource"`
		} `json:"objectRef"`
		RequestURI string `json:"requestURI"`
	}
	tally := auditTally{by: map[string]int{}}
	seen := map[string]bool{}
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && strings.Contains(string(line), operatorUser) {
			var e event
			if json.Unmarshal(line, &e) == nil && e.User.Username == operatorUser && !seen[e.AuditID] &&
				!e.Received.Before(from) && e.Received.Before(to) {
				seen[e.AuditID] = true
				key := e.Verb + " " + e.RequestURI
				if e.ObjectRef != nil {
					key = e.Verb + " " + e.ObjectRef.Resource
					if e.ObjectRef.Subresource != "" {
						key += "/" + e.ObjectRef.Subresource
					}
				}
				if e.ResponseStatus != nil && e.ResponseStatus.Code >= 300 {
					key += fmt.Sprintf(" (%d)", e.ResponseStatus.Code)
				}
				tally.by[key]++
				tally.total++
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Reading the audit log: %v", err)
		}
	}
	return tally
}

// profileRun is a profile being taken from the operator.
type profileRun struct{ done chan struct{} }

func (p *profileRun) wait() {
	if p != nil {
		<-p.done
	}
}

// startProfile saves one of the operator's pprof profiles into the
// directory EBB_BENCH_PROFILE names (nothing when unset): a CPU profile
// over d when d > 0, else a heap profile.
func startProfile(ctx context.Context, t *testing.T, pod *cluster.Pod, n int, name string, d time.Duration) *profileRun {
	t.Helper()
	dir := os.Getenv("EBB_BENCH_PROFILE")
	if dir == "" {
		return nil
	}
	url := "http://" + net.JoinHostPort(pod.Host.Addr.String(), "8080") + "/debug/pprof/heap"
	if d > 0 {
		url = fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", net.JoinHostPort(pod.Host.Addr.String(), "8080"), int(d.Seconds()))
	}
	path := filepath.Join(dir, fmt.Sprintf("operator-%d-%s.pprof", n, name))
	p := &profileRun{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Errorf("Profile %s: %v", name, err)
			return
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Errorf("Profile %s: %v", name, err)
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("Profile %s: %v", name, err)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %.200s", resp.Status, body)
		}
		if err == nil {
			err = os.WriteFile(path, body, 0o644)
		}
		if err != nil {
			t.Errorf("Profile %s: %v", name, err)
			return
		}
		t.Logf("Saved the operator's %s profile: %s", name, path)
	}()
	return p
}

// loadAverage returns the machine's 1- and 5-minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return "unknown"
	}
	return f[0] + " (1 min), " + f[1] + " (5 min)"
}
