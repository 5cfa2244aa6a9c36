package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
	"github.com/redis/go-redis/v9"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/e2e/cluster"
	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedaclient "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned"
)

// TestCertificateRenewalUnderLoad installs the three charts and the demo as
// TestHelmInstall does (ebb's two-tier CA from the operator chart,
// certManager.createCA) and, while three loads run without pause, makes
// cert-manager re-issue every certificate, the CAs too, twice:
//
//   - load (a): external metric reads through the API server's aggregator
//     (the metrics-apiserver, then the operator over mutual TLS), 5 a second;
//   - load (b): ScaledObject creates through the webhook, a real one (a
//     paused cron trigger on an existing Deployment, deleted at once, so the
//     operator's finalizer update goes through the webhook too) and a
//     dry-run one per round;
//   - load (c): the real HPA of the demo reading the metric every 5 s: its
//     ScalingActive and AbleToScale conditions must stay True, and it must
//     record no warning event.
//
// Each round re-issues, as `cmctl renew` does it (the Issuing condition),
// the root CA (its key kept, as the chart configures it), then the issuing
// CA (a new key, as the chart configures it), then the services'
// certificates (new keys): phase "staged" renews the operator's first and,
// renewalHold later, the webhook's and the metrics-apiserver's, so the
// services reach the new issuing CA at different times, as they do when each
// certificate renews on its own schedule; phase "at once" renews all three
// together. In both, every load must see zero failures, every pod must serve
// and use its new certificate without a restart (same pod, same process,
// restartCount 0), and at every instant a new handshake on every link must
// succeed (trust probes, below): every service trusts the root (ca.crt) and
// presents its certificate with its issuing CA (tls.crt), so a certificate
// from the old and one from the new issuing CA verify everywhere.
//
// Trust probes: every 200 ms the test dials every pod's TLS port and reads
// the files each pod has mounted, and checks what a new connection on each
// link would see: the API server verifying each webhook pod's serving
// certificate against the webhook configuration's caBundle, the aggregator
// verifying the metrics-apiserver's against the APIService's caBundle, the
// metrics-apiserver verifying each operator pod's against its own mounted
// ca.crt, and each operator pod, in a real handshake, accepting or refusing
// the metrics-apiserver's mounted client certificate.
func TestCertificateRenewalUnderLoad(t *testing.T) {
	redisServer, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed (make test installs it with hack/install-event-sources.sh): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	images := serviceImages(ctx, t)
	images["docker.io/library/redis"] = redisServer
	c := startCluster(ctx, t, cluster.Options{CertManager: true, Images: images})
	run := func(name string, args ...string) string {
		t.Helper()
		return clusterRun(ctx, t, c, name, args...)
	}
	installEBB(ctx, t, c, chartValues{operator: []string{"replicas=2"}})

	// The demo: 20 items in the list, 4 workers, and an HPA that reads the
	// metric every 5 s for the rest of the test.
	run(c.Bins.Kubectl, "apply", "-f", "deploy/demo/demo.yaml")
	redisPod := pollFor(ctx, t, "the demo's Redis pod Ready", 3*time.Minute, func(ctx context.Context) (*corev1.Pod, error) {
		pods, err := c.Client.CoreV1().Pods(renewalDemoNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=redis"})
		if err != nil {
			return nil, err
		}
		for i := range pods.Items {
			if renewalPodReady(&pods.Items[i]) && pods.Items[i].Status.PodIP != "" {
				return &pods.Items[i], nil
			}
		}
		return nil, fmt.Errorf("no ready Redis pod among %d", len(pods.Items))
	})
	rdb := redis.NewClient(&redis.Options{Addr: net.JoinHostPort(redisPod.Status.PodIP, "6379")})
	defer rdb.Close()
	items := make([]any, renewalItems)
	for i := range items {
		items[i] = i
	}
	if err := rdb.RPush(ctx, "jobs", items...).Err(); err != nil {
		t.Fatal(err)
	}
	pollUntil(ctx, t, "the worker to scale to 4 with the HPA's ScalingActive True", 3*time.Minute, func(ctx context.Context) (bool, error) {
		d, err := c.Client.AppsV1().Deployments(renewalDemoNamespace).Get(ctx, "worker", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if n := ptr.Deref(d.Spec.Replicas, 1); n != 4 {
			return false, fmt.Errorf("worker has %d replicas", n)
		}
		hpa, err := c.Client.AutoscalingV2().HorizontalPodAutoscalers(renewalDemoNamespace).Get(ctx, renewalHPA, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return renewalHPAProblem(hpa) == nil, renewalHPAProblem(hpa)
	})

	// Clients of their own, not throttled by client-go's default limiter.
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = 500, 1000
	cfg.WarningHandler = rest.NoWarnings{}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	keda, err := kedaclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := cmclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}

	// The webhook load's targets.
	createNamespace(ctx, t, c, renewalNamespace)
	for i := range renewalTargets {
		createDeployment(ctx, t, c, renewalNamespace, fmt.Sprintf("target-%d", i), 0)
	}
	createDeployment(ctx, t, c, renewalNamespace, "dry-target", 0)

	r := &renewalRun{t: t, c: c, kube: kube, keda: keda, cm: cm}
	r.pods = r.findPods(ctx)
	for _, p := range r.pods {
		t.Logf("Pod %s (%s, %s): pid %d", p.name, p.service, p.ip, p.pid)
	}
	msBefore := r.scrape(ctx, r.podsOf("metrics-apiserver")[0])
	whBefore := ""
	for _, p := range r.podsOf("webhook") {
		whBefore += r.scrape(ctx, p)
	}

	// The loads and the observer run until the end.
	r.metricLoop = newRenewalLoop("(a) external metric reads via the API server")
	r.webhookLoop = newRenewalLoop("(b) ScaledObject creates via the webhook")
	r.deleteLoop = newRenewalLoop("(b) ScaledObject deletions done (finalizer through the webhook)")
	r.hpaLoop = newRenewalLoop("(c) HPA ScalingActive/AbleToScale polls")
	r.obs = newRenewalObserver()
	loadCtx, stopLoads := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, f := range []func(context.Context){r.readMetrics, r.createScaledObjects, r.watchHPA, r.observe} {
		wg.Go(func() { f(loadCtx) })
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stopLoads()
			wg.Wait()
		}
	}
	defer stop()
	loadStart := time.Now()
	r.setPhase(renewalPhaseWarmUp)
	r.obs.waitFor(ctx, t, "the observer's first round", time.Minute, func() error {
		if r.obs.rounds == 0 {
			return errors.New("no round yet")
		}
		return nil
	})
	renewalSleep(ctx, renewalWarmUp)

	r.setPhase(renewalPhaseStaged)
	r.renewAll(ctx, [][]string{{"operator"}, {"webhook", "metrics-apiserver"}}, renewalHold)
	renewalSleep(ctx, renewalSettle)
	r.setPhase(renewalPhaseAtOnce)
	r.renewAll(ctx, [][]string{{"operator", "webhook", "metrics-apiserver"}}, 0)
	renewalSleep(ctx, 5*time.Second)
	r.setPhase(renewalPhaseAfter)
	renewalSleep(ctx, renewalAfter)
	stop()
	loadTime := time.Since(loadStart)

	// The report.
	t.Logf("Loads ran for %s; phases started at: %s", loadTime.Round(time.Millisecond), r.phaseTimes(loadStart))
	for _, l := range []*renewalLoop{r.metricLoop, r.webhookLoop, r.deleteLoop, r.hpaLoop} {
		t.Log(l.report())
	}
	t.Log(r.obs.trustReport())
	msAfter := r.scrape(ctx, r.podsOf("metrics-apiserver")[0])
	whAfter := ""
	for _, p := range r.podsOf("webhook") {
		whAfter += r.scrape(ctx, p)
	}
	msCodes := renewalPromDelta(msBefore, msAfter, "ebb_metrics_apiserver_requests_total", "code")
	whResults := renewalPromDelta(whBefore, whAfter, "ebb_webhook_admissions_total", "result")
	loopReads := r.metricLoop.total()
	t.Logf("metrics-apiserver answers during the loads, by HTTP code: %v (the read loop made %d requests; the HPA and the rest about %d)",
		msCodes, loopReads, int(renewalSum(msCodes))-loopReads)
	t.Logf("webhook admissions during the loads, by result: %v", whResults)

	// Zero failures, in every phase.
	for p := range renewalPhases {
		for _, l := range []*renewalLoop{r.metricLoop, r.webhookLoop, r.deleteLoop, r.hpaLoop} {
			if n := l.failedIn(p); n > 0 {
				t.Errorf("%s: %d failed requests in phase %q; first: %s", l.name, n, p, strings.Join(l.errorsIn(p), "; "))
			}
		}
		for _, l := range []*renewalLoop{r.metricLoop, r.webhookLoop, r.hpaLoop} {
			if l.okIn(p) == 0 {
				t.Errorf("%s: no successful request in phase %q", l.name, p)
			}
		}
		if bad := r.obs.badIn(p); len(bad) > 0 {
			t.Errorf("A new connection would have failed in phase %q: %s", p, strings.Join(bad, "; "))
		}
	}
	for code, n := range msCodes {
		if code != "200" && n > 0 {
			t.Errorf("The metrics-apiserver answered %v requests with HTTP %s", n, code)
		}
	}
	// The loads' own admissions all succeeded (above). Other writers'
	// admissions (the operator's finalizer updates) are retried by their
	// writer; an error there is reported with the webhook's reason, and
	// fails the test only when it names a certificate problem.
	if n := whResults["error"] + whResults["bad_request"]; n > 0 {
		var reasons []string
		for _, p := range r.podsOf("webhook") {
			logPath := filepath.Join(c.LogDir, fmt.Sprintf("pod-%s-%s-%s.log", operatorNamespace, p.name, p.container))
			data, err := os.ReadFile(logPath)
			if err != nil {
				t.Errorf("Reading the webhook's log: %v", err)
				continue
			}
			for line := range strings.SplitSeq(string(data), "\n") {
				if strings.Contains(line, "Could not decide") {
					reasons = append(reasons, line)
				}
			}
		}
		t.Logf("The webhook answered %v admissions of other writers with an error: %s", n, strings.Join(reasons, " | "))
		for _, line := range reasons {
			if l := strings.ToLower(line); strings.Contains(l, "certificate") || strings.Contains(l, "tls") || strings.Contains(l, "x509") {
				t.Errorf("The webhook failed an admission on a certificate problem: %s", line)
			}
		}
	}
	for _, e := range r.hpaWarnings(ctx, loadStart) {
		t.Errorf("HPA warning event during the loads: %s", e)
	}

	// Every reload found a complete set: tlsfiles rejected none (a
	// half-updated Secret, a key that does not match its certificate).
	for _, p := range r.pods {
		if n := renewalPromSum(r.scrape(ctx, p), "ebb_tlsfiles_reloads_total", `result="error"`); n != 0 {
			t.Errorf("Pod %s: tlsfiles rejected %v sets of files", p.name, n)
		}
	}
	// No operator refused a client's certificate (it logs every refused
	// handshake with the reason).
	for _, p := range r.podsOf("operator") {
		logPath := filepath.Join(c.LogDir, fmt.Sprintf("pod-%s-%s-%s.log", operatorNamespace, p.name, p.container))
		data, err := os.ReadFile(logPath)
		if err != nil {
			t.Errorf("Reading the operator's log: %v", err)
			continue
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			// (A probe's dial made while the metrics-apiserver's files
			// were unreadable has no certificate; that is not a refusal
			// of a certificate.)
			if strings.Contains(line, "Refused connection") && strings.Contains(line, "client certificate") {
				t.Errorf("Operator %s refused a connection: %s", p.name, line)
			}
		}
	}

	// No restart: the same pods, processes and restart counts.
	r.checkNoRestart(ctx)
}

const (
	renewalDemoNamespace = "ebb-demo"
	renewalHPA           = "keda-hpa-worker"
	renewalNamespace     = "ebb-renewal"
	// renewalTargets Deployments take the webhook load's real ScaledObjects
	// in turn; a target is reused once its previous ScaledObject is gone.
	renewalTargets = 8
	// renewalItems in the demo list: the value every metric read must return.
	renewalItems = 20
	// renewalWarmUp, renewalSettle, renewalAfter: load before the first
	// renewal, after the first renewal converged (three HPA syncs at least),
	// and after the second renewal converged.
	renewalWarmUp = 10 * time.Second
	renewalSettle = 20 * time.Second
	renewalAfter  = 20 * time.Second
	// renewalHold is how long a renewal waits between re-issuing the
	// operator's certificate and the others': cert-manager re-issues each
	// Certificate on its own schedule, and does not re-issue them when
	// their CA changes, so peers move to a new issuing CA at different
	// times.
	renewalHold = 5 * time.Second
	// renewalConvergeTimeout bounds a renewal from the trigger to every service
	// serving its new certificate (the API server library behind the
	// metrics-apiserver re-reads its files at least every minute).
	renewalConvergeTimeout = 3 * time.Minute
	// renewalObserveEvery is the trust probes' period.
	renewalObserveEvery = 200 * time.Millisecond
)

// The service Certificates and their Secrets, as the charts name them.
var renewalLeaves = []struct{ service, certificate, secret, dnsName string }{
	{"operator", "ebb-operator", "ebb-operator-tls", "ebb-operator.ebb-system.svc"},
	{"webhook", "ebb-webhook", "ebb-webhook-tls", "ebb-webhook.ebb-system.svc"},
	{"metrics-apiserver", "ebb-metrics-apiserver", "ebb-metrics-apiserver-tls", "ebb-metrics-apiserver.ebb-system.svc"},
}

// The CA Certificates (and their Secrets and Issuers) of the operator chart.
const (
	renewalRootCA    = "ebb-root-ca"
	renewalIssuingCA = "ebb-ca"
)

type renewalPhase int32

const (
	renewalPhaseWarmUp renewalPhase = iota
	renewalPhaseStaged
	renewalPhaseAtOnce
	renewalPhaseAfter
	renewalPhases
)

func (p renewalPhase) String() string {
	return [...]string{"warm-up", "staged renewal", "renewal at once", "after"}[p]
}

// renewalRun holds the state of TestCertificateRenewalUnderLoad.
type renewalRun struct {
	t    *testing.T
	c    *cluster.Cluster
	kube kubernetes.Interface
	keda kedaclient.Interface
	cm   cmclient.Interface
	pods []*renewalPod

	phase      atomic.Int32
	phaseMu    sync.Mutex
	phaseStart [renewalPhases]time.Time

	metricLoop, webhookLoop, deleteLoop, hpaLoop *renewalLoop
	obs                                          *renewalObserver
}

func (r *renewalRun) setPhase(p renewalPhase) {
	r.phaseMu.Lock()
	r.phaseStart[p] = time.Now()
	r.phaseMu.Unlock()
	r.phase.Store(int32(p))
	r.t.Logf("=== Phase %q", p)
}

func (r *renewalRun) currentPhase() renewalPhase { return renewalPhase(r.phase.Load()) }

func (r *renewalRun) phaseTimes(base time.Time) string {
	r.phaseMu.Lock()
	defer r.phaseMu.Unlock()
	var parts []string
	for i := range renewalPhases {
		parts = append(parts, fmt.Sprintf("%s +%s", i, r.phaseStart[i].Sub(base).Round(100*time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}

// renewalPod is one pod of the three services.
type renewalPod struct {
	service, name, container string
	uid                      string
	ip                       string
	port                     int
	dir                      string // the pod's certificate volume on the host
	pid                      int
	node                     *cluster.NodePod
}

func (r *renewalRun) findPods(ctx context.Context) []*renewalPod {
	t := r.t
	t.Helper()
	ports := map[string]int{"operator": 9443, "webhook": 9443, "metrics-apiserver": 6443}
	var pods []*renewalPod
	for _, leaf := range renewalLeaves {
		list, err := r.kube.CoreV1().Pods(operatorNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=ebb-" + leaf.service})
		if err != nil {
			t.Fatal(err)
		}
		for i := range list.Items {
			pod := &list.Items[i]
			if pod.DeletionTimestamp != nil || !renewalPodReady(pod) {
				t.Fatalf("Pod %s is not Ready before the test: %+v", pod.Name, pod.Status)
			}
			np := r.c.Node.Pod(operatorNamespace, pod.Name)
			if np == nil {
				t.Fatalf("The node does not run pod %s", pod.Name)
			}
			container := pod.Spec.Containers[0].Name
			proc := np.Process(container)
			if proc == nil {
				t.Fatalf("Container %s of pod %s is not running", container, pod.Name)
			}
			pods = append(pods, &renewalPod{
				service: leaf.service, name: pod.Name, container: container, uid: string(pod.UID),
				ip: pod.Status.PodIP, port: ports[leaf.service],
				dir: filepath.Join(np.Dir, "volumes", "certs"), pid: proc.Pid(), node: np,
			})
		}
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].service+pods[i].name < pods[j].service+pods[j].name })
	want := map[string]int{"operator": 2, "webhook": 2, "metrics-apiserver": 1}
	for svc, n := range want {
		if got := len(r.podsOfIn(pods, svc)); got != n {
			t.Fatalf("Found %d %s pods, want %d", got, svc, n)
		}
	}
	return pods
}

func (r *renewalRun) podsOf(service string) []*renewalPod { return r.podsOfIn(r.pods, service) }

func (r *renewalRun) podsOfIn(pods []*renewalPod, service string) []*renewalPod {
	var out []*renewalPod
	for _, p := range pods {
		if p.service == service {
			out = append(out, p)
		}
	}
	return out
}

func renewalPodReady(pod *corev1.Pod) bool {
	for _, cond := range pod.Status.Conditions {
		if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// checkNoRestart: the pods are the ones found at the start, with the same
// processes, and their restart counts are 0.
func (r *renewalRun) checkNoRestart(ctx context.Context) {
	t := r.t
	for _, p := range r.pods {
		pod, err := r.kube.CoreV1().Pods(operatorNamespace).Get(ctx, p.name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("Pod %s: %v", p.name, err)
			continue
		}
		if string(pod.UID) != p.uid {
			t.Errorf("Pod %s was replaced (uid %s, was %s)", p.name, pod.UID, p.uid)
		}
		for _, cs := range pod.Status.ContainerStatuses {
			if cs.RestartCount != 0 {
				t.Errorf("Pod %s container %s: restartCount %d, want 0", p.name, cs.Name, cs.RestartCount)
			}
		}
		if n := p.node.RestartCount(p.container); n != 0 {
			t.Errorf("Pod %s: the node restarted container %s %d times", p.name, p.container, n)
		}
		proc := p.node.Process(p.container)
		if proc == nil || proc.Pid() != p.pid {
			t.Errorf("Pod %s: container %s is no longer process %d", p.name, p.container, p.pid)
		}
	}
	t.Logf("No restart: %d pods, same UIDs, same processes, restartCount 0", len(r.pods))
}

// scrape returns the Prometheus text of a pod's metrics port.
func (r *renewalRun) scrape(ctx context.Context, p *renewalPod) string {
	body, err := renewalScrape(ctx, p.ip)
	if err != nil {
		r.t.Fatalf("Metrics of pod %s: %v", p.name, err)
	}
	return body
}

func renewalScrape(ctx context.Context, ip string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(ip, "8080")+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, body)
	}
	return string(body), nil
}

// renewalPromValues returns the samples of metric name in a Prometheus text body,
// keyed by their label set, summed over repeated label sets.
func renewalPromValues(body, name string) map[string]float64 {
	out := map[string]float64{}
	for line := range strings.SplitSeq(body, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		labels := ""
		rest := strings.TrimPrefix(line, name)
		if strings.HasPrefix(rest, "{") {
			end := strings.Index(rest, "}")
			if end < 0 {
				continue
			}
			labels, rest = rest[1:end], rest[end+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		out[labels] += v
	}
	return out
}

// renewalPromSum sums the samples of name whose labels contain every match.
func renewalPromSum(body, name string, match ...string) float64 {
	var sum float64
	for labels, v := range renewalPromValues(body, name) {
		ok := true
		for _, m := range match {
			if !strings.Contains(labels, m) {
				ok = false
			}
		}
		if ok {
			sum += v
		}
	}
	return sum
}

// renewalPromDelta is after − before of metric name, by the value of label.
func renewalPromDelta(before, after, name, label string) map[string]float64 {
	byLabel := func(body string) map[string]float64 {
		out := map[string]float64{}
		for labels, v := range renewalPromValues(body, name) {
			key := ""
			for kv := range strings.SplitSeq(labels, ",") {
				if k, val, ok := strings.Cut(kv, "="); ok && k == label {
					key = strings.Trim(val, `"`)
				}
			}
			out[key] += v
		}
		return out
	}
	b, a := byLabel(before), byLabel(after)
	out := map[string]float64{}
	for k, v := range a {
		if d := v - b[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func renewalSum(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

// renewalSleep sleeps for d or until ctx is done.
func renewalSleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// The loads.

// renewalLoop counts the requests of one load, by phase.
type renewalLoop struct {
	name string

	mu         sync.Mutex
	ok, failed [renewalPhases]int
	maxLatency [renewalPhases]time.Duration
	// maxGap is the longest time between two successes, counted in the
	// phase of the second.
	maxGap [renewalPhases]time.Duration
	errs   [renewalPhases][]string
	lastOK time.Time
}

func newRenewalLoop(name string) *renewalLoop { return &renewalLoop{name: name} }

func (l *renewalLoop) record(p renewalPhase, start time.Time, err error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if d := now.Sub(start); d > l.maxLatency[p] {
		l.maxLatency[p] = d
	}
	if err != nil {
		l.failed[p]++
		if len(l.errs[p]) < 3 {
			msg := err.Error()
			if len(msg) > 300 {
				msg = msg[:300] + "…"
			}
			l.errs[p] = append(l.errs[p], now.Format("15:04:05.000")+" "+msg)
		}
		return
	}
	l.ok[p]++
	if !l.lastOK.IsZero() {
		if gap := now.Sub(l.lastOK); gap > l.maxGap[p] {
			l.maxGap[p] = gap
		}
	}
	l.lastOK = now
}

func (l *renewalLoop) failedIn(p renewalPhase) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed[p]
}

func (l *renewalLoop) okIn(p renewalPhase) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok[p]
}

func (l *renewalLoop) errorsIn(p renewalPhase) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs[p]...)
}

func (l *renewalLoop) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for p := range renewalPhases {
		n += l.ok[p] + l.failed[p]
	}
	return n
}

func (l *renewalLoop) report() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	ok, failed := 0, 0
	var gap, lat time.Duration
	for p := range renewalPhases {
		ok += l.ok[p]
		failed += l.failed[p]
		gap, lat = max(gap, l.maxGap[p]), max(lat, l.maxLatency[p])
	}
	fmt.Fprintf(&b, "%s: %d requests, %d failed, longest gap between successes %s, slowest %s",
		l.name, ok+failed, failed, gap.Round(time.Millisecond), lat.Round(time.Millisecond))
	for p := range renewalPhases {
		fmt.Fprintf(&b, "\n    %-24s %5d ok %3d failed, longest gap %s, slowest %s",
			p.String()+":", l.ok[p], l.failed[p], l.maxGap[p].Round(time.Millisecond), l.maxLatency[p].Round(time.Millisecond))
		for _, e := range l.errs[p] {
			fmt.Fprintf(&b, "\n        %s", e)
		}
	}
	return b.String()
}

// readMetrics is load (a): the demo's external metric through the API
// server, every 200 ms.
func (r *renewalRun) readMetrics(ctx context.Context) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p := r.currentPhase()
		start := time.Now()
		err := r.readMetric(ctx)
		if ctx.Err() != nil {
			return
		}
		r.metricLoop.record(p, start, err)
	}
}

func (r *renewalRun) readMetric(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	body, err := r.kube.CoreV1().RESTClient().Get().
		AbsPath("/apis/external.metrics.k8s.io/v1beta1/namespaces", renewalDemoNamespace, "s0-redis-jobs").
		Param("labelSelector", v1alpha1.ScaledObjectNameLabel+"=worker").
		Do(ctx).Raw()
	if err != nil {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(body))
	}
	var list struct {
		Items []struct {
			Value string `json:"value"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil || len(list.Items) != 1 {
		return fmt.Errorf("unexpected answer %s", body)
	}
	if v := list.Items[0].Value; v != strconv.Itoa(renewalItems) {
		return fmt.Errorf("value %s, want %d", v, renewalItems)
	}
	return nil
}

// createScaledObjects is load (b): each round creates a ScaledObject for
// real (the webhook admits it after reading the cluster; the operator adds
// its finalizer, an UPDATE the webhook admits too) and deletes it, and
// dry-run creates another. The real ones are paused, so they own no HPA
// that could outlive them and conflict with the next one on the target.
func (r *renewalRun) createScaledObjects(ctx context.Context) {
	sos := r.keda.KedaV1alpha1().ScaledObjects(renewalNamespace)
	for i := 0; ; i++ {
		if ctx.Err() != nil {
			return
		}
		target := fmt.Sprintf("target-%d", i%renewalTargets)
		if i >= renewalTargets {
			// The target's previous ScaledObject must be gone: its deletion
			// waits for the operator to remove the finalizer.
			prev := fmt.Sprintf("so-%d", i-renewalTargets)
			p, start := r.currentPhase(), time.Now()
			err := renewalWaitGone(ctx, sos, prev, 30*time.Second)
			if ctx.Err() != nil {
				return
			}
			r.deleteLoop.record(p, start, err)
		}
		name := fmt.Sprintf("so-%d", i)
		p, start := r.currentPhase(), time.Now()
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		_, err := sos.Create(rctx, renewalScaledObject(name, target, true), metav1.CreateOptions{})
		cancel()
		if ctx.Err() != nil {
			return
		}
		r.webhookLoop.record(p, start, err)
		if err == nil {
			if err := sos.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && ctx.Err() == nil {
				r.deleteLoop.record(r.currentPhase(), time.Now(), fmt.Errorf("deleting %s: %w", name, err))
			}
		}
		p, start = r.currentPhase(), time.Now()
		rctx, cancel = context.WithTimeout(ctx, 15*time.Second)
		_, err = sos.Create(rctx, renewalScaledObject(fmt.Sprintf("dry-%d", i), "dry-target", false), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		cancel()
		if ctx.Err() != nil {
			return
		}
		r.webhookLoop.record(p, start, err)
		renewalSleep(ctx, 100*time.Millisecond)
	}
}

// renewalWaitGone waits until ScaledObject name no longer exists.
func renewalWaitGone(ctx context.Context, sos interface {
	Get(context.Context, string, metav1.GetOptions) (*v1alpha1.ScaledObject, error)
}, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := sos.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ScaledObject %s still there %s after its deletion (last error: %v)", name, timeout, err)
		}
		renewalSleep(ctx, 50*time.Millisecond)
	}
}

// renewalScaledObject is a cron ScaledObject on target, paused or not.
func renewalScaledObject(name, target string, paused bool) *v1alpha1.ScaledObject {
	so := &v1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.ScaledObjectSpec{
			ScaleTargetRef: &v1alpha1.ScaleTarget{Name: target},
			Triggers: []v1alpha1.ScaleTrigger{{Type: "cron", Metadata: map[string]string{
				"timezone": "UTC", "start": "0 8 * * *", "end": "0 18 * * *", "desiredReplicas": "3",
			}}},
		},
	}
	if paused {
		so.Annotations = map[string]string{v1alpha1.PausedAnnotation: "true"}
	}
	return so
}

// watchHPA is load (c)'s check: the demo's HPA, every second, must have
// ScalingActive and AbleToScale True (the HPA controller reads the metric
// every 5 s and sets ScalingActive False with FailedGetExternalMetric when
// a read fails).
func (r *renewalRun) watchHPA(ctx context.Context) {
	hpas := r.kube.AutoscalingV2().HorizontalPodAutoscalers(renewalDemoNamespace)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p, start := r.currentPhase(), time.Now()
		hpa, err := hpas.Get(ctx, renewalHPA, metav1.GetOptions{})
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = renewalHPAProblem(hpa)
		}
		r.hpaLoop.record(p, start, err)
	}
}

func renewalHPAProblem(hpa *autoscalingv2.HorizontalPodAutoscaler) error {
	for _, typ := range []autoscalingv2.HorizontalPodAutoscalerConditionType{autoscalingv2.ScalingActive, autoscalingv2.AbleToScale} {
		found := false
		for _, cond := range hpa.Status.Conditions {
			if cond.Type != typ {
				continue
			}
			found = true
			if cond.Status != corev1.ConditionTrue {
				return fmt.Errorf("HPA %s: %s=%s since %s (%s: %s)", hpa.Name, typ, cond.Status,
					cond.LastTransitionTime.Format("15:04:05"), cond.Reason, cond.Message)
			}
		}
		if !found {
			return fmt.Errorf("HPA %s has no %s condition", hpa.Name, typ)
		}
	}
	return nil
}

type renewalEvent struct {
	at                    time.Time
	reason, message, kind string
	count                 int32
}

func (e renewalEvent) String() string {
	return fmt.Sprintf("%s %s %s ×%d: %s", e.at.Format("15:04:05"), e.kind, e.reason, e.count, e.message)
}

// hpaWarnings lists the demo HPA's warning events since since.
func (r *renewalRun) hpaWarnings(ctx context.Context, since time.Time) []renewalEvent {
	list, err := r.kube.CoreV1().Events(renewalDemoNamespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.name=" + renewalHPA,
	})
	if err != nil {
		r.t.Errorf("Listing the HPA's events: %v", err)
		return nil
	}
	var out []renewalEvent
	for _, e := range list.Items {
		at := e.LastTimestamp.Time
		if e.Series != nil {
			at = e.Series.LastObservedTime.Time
		}
		if at.IsZero() {
			at = e.EventTime.Time
		}
		// Events carry seconds: an event in the second the loads started
		// counts.
		if e.Type != corev1.EventTypeWarning || at.Before(since.Truncate(time.Second)) {
			continue
		}
		out = append(out, renewalEvent{at: at, reason: e.Reason, message: e.Message, kind: e.Type, count: e.Count})
	}
	for _, e := range out {
		r.t.Logf("HPA warning event: %s", e)
	}
	if len(out) == 0 {
		r.t.Logf("HPA %s: no warning event during the loads (no FailedGetExternalMetric)", renewalHPA)
	}
	return out
}

// The renewals.

// renewAll re-issues the root CA (its key kept), then the issuing CA (a new
// key), then the service Certificates in stages: the services of each stage
// at once, waiting until their Secrets hold certificates from the new
// issuing CA and their pods serve and use them (and the caBundles hold the
// root), then hold before the next stage.
func (r *renewalRun) renewAll(ctx context.Context, stages [][]string, hold time.Duration) {
	t := r.t
	t.Helper()
	secrets := r.kube.CoreV1().Secrets(operatorNamespace)
	for _, name := range []string{renewalRootCA, renewalIssuingCA, renewalLeaves[0].certificate, renewalLeaves[1].certificate, renewalLeaves[2].certificate} {
		r.waitCertificateIdle(ctx, name)
	}
	oldLeaves := map[string]*corev1.Secret{}
	for _, leaf := range renewalLeaves {
		s, err := secrets.Get(ctx, leaf.secret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		oldLeaves[leaf.service] = s
	}
	reloadsBefore := map[string]float64{}
	for _, p := range r.pods {
		reloadsBefore[p.name] = renewalPromSum(r.scrape(ctx, p), "ebb_tlsfiles_reloads_total", `result="success"`)
	}

	// The CAs first: the root keeps its key, the issuing CA gets a new one.
	start := time.Now()
	root := r.reissueCA(ctx, renewalRootCA, true)
	issuing := r.reissueCA(ctx, renewalIssuingCA, false)
	caPEM := root.Data["tls.crt"]
	if !bytes.Equal(issuing.Data["ca.crt"], caPEM) {
		t.Fatalf("The issuing CA's ca.crt is %s, want the new root %s", renewalDescribePEM(issuing.Data["ca.crt"]), renewalDescribePEM(caPEM))
	}
	caCert := renewalParseCert(t, caPEM)
	issuingCert := renewalParseCert(t, issuing.Data["tls.crt"])
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)

	// Then the service certificates, stage by stage.
	secretAt := map[string]time.Time{}    // by service
	newSerial := map[string]string{}      // by service
	renewedAt := map[string]time.Time{}   // by service: when its renewal was triggered
	convergedAt := map[string]time.Time{} // by service
	for n, stage := range stages {
		if n > 0 {
			t.Logf("Holding %s before renewing %v", hold, stage)
			renewalSleep(ctx, hold)
		}
		stageStart := time.Now()
		for _, svc := range stage {
			renewedAt[svc] = time.Now()
			r.renew(ctx, renewalLeaf(svc).certificate)
		}
		pollUntil(ctx, t, fmt.Sprintf("the Secrets of %v to hold certificates from the new CA", stage), 2*time.Minute, func(ctx context.Context) (bool, error) {
			var missing []string
			for _, svc := range stage {
				leaf := renewalLeaf(svc)
				if _, ok := newSerial[svc]; ok {
					continue
				}
				s, err := secrets.Get(ctx, leaf.secret, metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				if bytes.Equal(s.Data["tls.crt"], oldLeaves[svc].Data["tls.crt"]) {
					missing = append(missing, leaf.secret)
					continue
				}
				cert, err := renewalCert(s.Data["tls.crt"])
				if err != nil {
					return false, err
				}
				if !bytes.Equal(s.Data["ca.crt"], caPEM) {
					return false, fmt.Errorf("secret %s has a new certificate but its ca.crt %s is not the root %s",
						leaf.secret, renewalDescribePEM(s.Data["ca.crt"]), renewalSerial(caCert))
				}
				chain := renewalPEMCerts(s.Data["tls.crt"])
				if len(chain) != 2 || !chain[1].Equal(issuingCert) {
					return false, fmt.Errorf("secret %s: tls.crt holds %s, want the certificate and the new issuing CA %s",
						leaf.secret, renewalDescribePEM(s.Data["tls.crt"]), renewalSerial(issuingCert))
				}
				inter := x509.NewCertPool()
				inter.AddCert(chain[1])
				if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: leaf.dnsName,
					KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}); err != nil {
					return false, fmt.Errorf("secret %s: the new certificate does not verify against the root: %w", leaf.secret, err)
				}
				newSerial[svc] = renewalSerial(cert)
				// The observer saw it first (it polls every 200 ms).
				secretAt[svc] = r.obs.firstSeenOr("secret/"+leaf.secret+"/"+renewalSerial(cert), time.Now())
			}
			if len(missing) > 0 {
				return false, fmt.Errorf("not renewed yet: %v", missing)
			}
			return true, nil
		})
		var parts []string
		for _, svc := range stage {
			parts = append(parts, fmt.Sprintf("%s %s (+%s)", renewalLeaf(svc).secret, newSerial[svc], secretAt[svc].Sub(stageStart).Round(10*time.Millisecond)))
		}
		t.Logf("Re-issued %s", strings.Join(parts, ", "))

		// Convergence: every pod of the stage serving its new
		// certificate and holding its new files, its tlsfiles Source
		// reloaded, and the caBundle that verifies it holding the new CA.
		r.obs.waitFor(ctx, t, fmt.Sprintf("the pods of %v to serve their new certificates", stage), renewalConvergeTimeout, func() error {
			var problems []string
			for _, svc := range stage {
				// cert-manager's CA injector merges the new CA into the
				// bundle (feature CAInjectorMerging, GA): old CAs stay
				// until they expire.
				key := map[string]string{"webhook": "cabundle/webhook", "metrics-apiserver": "cabundle/apiservice"}[svc]
				if got := r.obs.current[key]; key != "" && !renewalPEMContains(got, caPEM) {
					problems = append(problems, fmt.Sprintf("%s %s lacks the new CA %s", key, renewalDescribePEM(got), renewalSerial(caCert)))
				}
				for _, p := range r.podsOf(svc) {
					want := newSerial[svc]
					if got := string(r.obs.current["served/"+p.name]); got != want {
						problems = append(problems, fmt.Sprintf("%s serves %s, want %s", p.name, got, want))
					}
					if got := string(r.obs.current["files/"+p.name]); got != want {
						problems = append(problems, fmt.Sprintf("%s's files hold %s, want %s", p.name, got, want))
					}
					if r.obs.reloads[p.name] <= reloadsBefore[p.name] {
						problems = append(problems, fmt.Sprintf("%s's tlsfiles Source has not reloaded (%v)", p.name, r.obs.reloads[p.name]))
					}
				}
			}
			if len(problems) > 0 {
				return errors.New(strings.Join(problems, "; "))
			}
			return nil
		})
		for _, svc := range stage {
			convergedAt[svc] = time.Now()
		}
	}

	t.Logf("Renewal converged %s after the root CA trigger", time.Since(start).Round(time.Millisecond))
	for _, key := range []string{"cabundle/webhook", "cabundle/apiservice"} {
		bundle := r.obs.currentValue(key)
		at := r.obs.firstSeenOr(key+"/"+renewalHash(bundle), time.Now())
		t.Logf("  %-40s now %s, injected +%s after the CA trigger", key, renewalDescribePEM(bundle), at.Sub(start).Round(10*time.Millisecond))
	}
	for _, p := range r.pods {
		serial, sAt := newSerial[p.service], secretAt[p.service]
		filesAt := r.obs.firstSeenOr("files/"+p.name+"/"+serial, convergedAt[p.service])
		servedAt := r.obs.firstSeenOr("served/"+p.name+"/"+serial, convergedAt[p.service])
		reloadAt := r.obs.reloadAt(p.name, reloadsBefore[p.name], convergedAt[p.service])
		t.Logf("  %-40s renewal trigger→Secret %6s; Secret→files %6s, →tlsfiles reload %6s, →served %6s (tlsfiles reloads %v → %v)",
			p.name, sAt.Sub(renewedAt[p.service]).Round(10*time.Millisecond),
			filesAt.Sub(sAt).Round(10*time.Millisecond), reloadAt.Sub(sAt).Round(10*time.Millisecond),
			servedAt.Sub(sAt).Round(10*time.Millisecond), reloadsBefore[p.name], r.obs.reloadCount(p.name))
	}
	for _, name := range []string{renewalRootCA, renewalIssuingCA, renewalLeaves[0].certificate, renewalLeaves[1].certificate, renewalLeaves[2].certificate} {
		r.waitCertificateIdle(ctx, name)
	}
}

// reissueCA re-issues CA Certificate name and returns its new Secret, after
// checking that its key was kept (keepKey) or replaced, as the chart
// configures it.
func (r *renewalRun) reissueCA(ctx context.Context, name string, keepKey bool) *corev1.Secret {
	t := r.t
	t.Helper()
	secrets := r.kube.CoreV1().Secrets(operatorNamespace)
	old, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r.renew(ctx, name)
	pollUntil(ctx, t, "Secret "+name+" to hold a new CA certificate", 2*time.Minute, func(ctx context.Context) (bool, error) {
		s, err := secrets.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if bytes.Equal(s.Data["tls.crt"], old.Data["tls.crt"]) {
			return false, errors.New("still the old CA certificate")
		}
		return true, nil
	})
	r.waitCertificateIdle(ctx, name)
	s, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kept := bytes.Equal(s.Data["tls.key"], old.Data["tls.key"])
	t.Logf("%s re-issued in %s: serial %s → %s, key %s", name, time.Since(start).Round(time.Millisecond),
		renewalSerial(renewalParseCert(t, old.Data["tls.crt"])), renewalSerial(renewalParseCert(t, s.Data["tls.crt"])),
		map[bool]string{true: "kept", false: "new"}[kept])
	if kept != keepKey {
		t.Fatalf("%s: key kept %v, want %v (the chart's rotationPolicy)", name, kept, keepKey)
	}
	return s
}

// renewalLeaf is the service Certificate of service.
func renewalLeaf(service string) struct{ service, certificate, secret, dnsName string } {
	for _, leaf := range renewalLeaves {
		if leaf.service == service {
			return leaf
		}
	}
	panic("no service " + service)
}

// renew triggers the re-issuance of a Certificate as `cmctl renew` does:
// it sets the Issuing condition to True (reason ManuallyTriggered).
func (r *renewalRun) renew(ctx context.Context, name string) {
	certs := r.cm.CertmanagerV1().Certificates(operatorNamespace)
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		crt, err := certs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		cond := cmapi.CertificateCondition{
			Type:               cmapi.CertificateConditionIssuing,
			Status:             cmmeta.ConditionTrue,
			Reason:             "ManuallyTriggered",
			Message:            "Certificate re-issuance manually triggered",
			LastTransitionTime: &now,
			ObservedGeneration: crt.Generation,
		}
		replaced := false
		for i := range crt.Status.Conditions {
			if crt.Status.Conditions[i].Type == cmapi.CertificateConditionIssuing {
				crt.Status.Conditions[i], replaced = cond, true
			}
		}
		if !replaced {
			crt.Status.Conditions = append(crt.Status.Conditions, cond)
		}
		_, err = certs.UpdateStatus(ctx, crt, metav1.UpdateOptions{})
		return err
	}); err != nil {
		r.t.Fatalf("Triggering the renewal of Certificate %s: %v", name, err)
	}
}

// waitCertificateIdle waits until a Certificate is Ready for its current
// generation and not being issued.
func (r *renewalRun) waitCertificateIdle(ctx context.Context, name string) {
	certs := r.cm.CertmanagerV1().Certificates(operatorNamespace)
	pollUntil(ctx, r.t, "Certificate "+name+" Ready and not issuing", 2*time.Minute, func(ctx context.Context) (bool, error) {
		crt, err := certs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ready := false
		for _, cond := range crt.Status.Conditions {
			switch cond.Type {
			case cmapi.CertificateConditionIssuing:
				if cond.Status == cmmeta.ConditionTrue {
					return false, fmt.Errorf("issuing: %s", cond.Message)
				}
			case cmapi.CertificateConditionReady:
				ready = cond.Status == cmmeta.ConditionTrue && cond.ObservedGeneration == crt.Generation
			}
		}
		if !ready {
			return false, fmt.Errorf("not Ready: %+v", crt.Status.Conditions)
		}
		return true, nil
	})
}

func renewalCert(pemData []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(pemData)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	return x509.ParseCertificate(block.Bytes)
}

func renewalParseCert(t *testing.T, pemData []byte) *x509.Certificate {
	t.Helper()
	cert, err := renewalCert(pemData)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// renewalPEMCerts returns the certificates of a PEM bundle.
func renewalPEMCerts(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out
		}
		if cert, err := x509.ParseCertificate(block.Bytes); err == nil {
			out = append(out, cert)
		}
	}
}

// renewalPEMContains reports whether every certificate of want is in bundle.
func renewalPEMContains(bundle, want []byte) bool {
	certs := renewalPEMCerts(want)
	if len(certs) == 0 {
		return false
	}
	for _, w := range certs {
		found := false
		for _, c := range renewalPEMCerts(bundle) {
			found = found || bytes.Equal(c.Raw, w.Raw)
		}
		if !found {
			return false
		}
	}
	return true
}

// renewalDescribePEM names the certificates of a PEM bundle by serial.
func renewalDescribePEM(data []byte) string {
	var serials []string
	for _, c := range renewalPEMCerts(data) {
		serials = append(serials, renewalSerial(c))
	}
	return fmt.Sprintf("%v", serials)
}

func renewalSerial(c *x509.Certificate) string {
	s := c.SerialNumber.Text(16)
	if len(s) > 12 {
		s = s[:12]
	}
	return s
}

func renewalHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// The observer and its trust probes.

// renewalClientProbe names the probe of an operator pod's verdict on the
// metrics-apiserver's client certificate.
const renewalClientProbe = " accepts the metrics-apiserver's client certificate (real handshake)"

// renewalObserver polls, every renewalObserveEvery, the certificate
// Secrets, the caBundles, what every pod serves, the files it has mounted
// and its tlsfiles reload counter, remembers when each value was first
// seen, and checks that a new connection would verify on every link.
type renewalObserver struct {
	mu       sync.Mutex
	cond     *sync.Cond
	rounds   int
	current  map[string][]byte
	first    map[string]time.Time
	reloads  map[string]float64
	reloadTS map[string][]renewalReloadSample
	// probeErrs counts rounds in which an observation itself failed (a
	// dial, a scrape), by what.
	probeErrs map[string]int
	links     map[string]*renewalTrustLink
}

type renewalReloadSample struct {
	at    time.Time
	count float64
}

// renewalTrustLink is what a new connection on one link would see, by phase.
type renewalTrustLink struct {
	samples, bad [renewalPhases]int
	badSince     time.Time
	badReason    string
	windows      []string
	longest      [renewalPhases]time.Duration
}

func newRenewalObserver() *renewalObserver {
	o := &renewalObserver{
		current: map[string][]byte{}, first: map[string]time.Time{}, reloads: map[string]float64{},
		reloadTS: map[string][]renewalReloadSample{}, probeErrs: map[string]int{}, links: map[string]*renewalTrustLink{},
	}
	o.cond = sync.NewCond(&o.mu)
	return o
}

// set records the current value of what, and when a value was first seen.
func (o *renewalObserver) set(at time.Time, what string, value []byte, id string) {
	o.current[what] = value
	key := what + "/" + id
	if _, ok := o.first[key]; !ok {
		o.first[key] = at
	}
}

func (o *renewalObserver) currentValue(what string) []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.current[what]
}

func (o *renewalObserver) firstSeenOr(key string, or time.Time) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	if at, ok := o.first[key]; ok {
		return at
	}
	return or
}

// reloadAt is when the pod's reload counter first exceeded before.
func (o *renewalObserver) reloadAt(pod string, before float64, or time.Time) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.reloadTS[pod] {
		if s.count > before {
			return s.at
		}
	}
	return or
}

func (o *renewalObserver) reloadCount(pod string) float64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.reloads[pod]
}

// waitFor waits until check, called with the observer's lock held after
// each round, returns nil.
func (o *renewalObserver) waitFor(ctx context.Context, t *testing.T, what string, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	stop := context.AfterFunc(ctx, func() { o.mu.Lock(); o.cond.Broadcast(); o.mu.Unlock() })
	defer stop()
	timer := time.AfterFunc(timeout, func() { o.mu.Lock(); o.cond.Broadcast(); o.mu.Unlock() })
	defer timer.Stop()
	o.mu.Lock()
	defer o.mu.Unlock()
	for {
		err := check()
		if err == nil {
			return
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			t.Fatalf("Waiting %s for %s: %v (observation errors: %v)", timeout, what, err, o.probeErrs)
		}
		o.cond.Wait()
	}
}

func (o *renewalObserver) probe(p renewalPhase, at time.Time, link string, err error) {
	l := o.links[link]
	if l == nil {
		l = &renewalTrustLink{}
		o.links[link] = l
	}
	l.samples[p]++
	if err != nil {
		l.bad[p]++
		if l.badSince.IsZero() {
			l.badSince, l.badReason = at, err.Error()
		}
		if d := at.Sub(l.badSince); d > l.longest[p] {
			l.longest[p] = d
		}
		return
	}
	if !l.badSince.IsZero() {
		d := at.Sub(l.badSince)
		if d > l.longest[p] {
			l.longest[p] = d
		}
		l.windows = append(l.windows, fmt.Sprintf("%s for ≤%s (%s)", l.badSince.Format("15:04:05.000"), d.Round(time.Millisecond), l.badReason))
		l.badSince = time.Time{}
	}
}

// badIn lists the links on which a probe failed in phase p.
func (o *renewalObserver) badIn(p renewalPhase) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for name, l := range o.links {
		if l.bad[p] > 0 {
			out = append(out, fmt.Sprintf("%s: %d of %d probes, windows %v", name, l.bad[p], l.samples[p], l.windows))
		}
	}
	sort.Strings(out)
	return out
}

func (o *renewalObserver) trustReport() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	names := make([]string, 0, len(o.links))
	for name := range o.links {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "Trust probes (would a new connection verify?), %d rounds of %s:", o.rounds, renewalObserveEvery)
	for _, name := range names {
		l := o.links[name]
		fmt.Fprintf(&b, "\n    %s:", name)
		for p := range renewalPhases {
			fmt.Fprintf(&b, " %s %d/%d bad", p, l.bad[p], l.samples[p])
			if l.longest[p] > 0 {
				fmt.Fprintf(&b, " (longest %s)", l.longest[p].Round(time.Millisecond))
			}
			b.WriteString(";")
		}
		for _, w := range l.windows {
			fmt.Fprintf(&b, "\n        refused from %s", w)
		}
	}
	if len(o.probeErrs) > 0 {
		fmt.Fprintf(&b, "\n    observation errors (rounds): %v", o.probeErrs)
	}
	return b.String()
}

// observe runs the observer until ctx is done.
func (r *renewalRun) observe(ctx context.Context) {
	tick := time.NewTicker(renewalObserveEvery)
	defer tick.Stop()
	for {
		r.observeOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// renewalPodView is what one round saw of one pod.
type renewalPodView struct {
	served      *x509.Certificate // the certificate the pod serves
	servedChain []*x509.Certificate
	filesCert   *x509.Certificate // tls.crt in its volume
	filesPair   *tls.Certificate  // tls.crt + tls.key in its volume
	filesCA     *x509.CertPool    // ca.crt in its volume
	filesCAPEM  []byte
	// clientRefused is the operator's verdict on the metrics-apiserver's
	// client certificate, in a real handshake.
	clientChecked bool
	clientRefused error
	reloads       float64
	errs          map[string]error
}

func (r *renewalRun) observeOnce(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	phase := r.currentPhase()
	errs := map[string]error{}
	var errsMu sync.Mutex
	fail := func(what string, err error) {
		errsMu.Lock()
		errs[what] = err
		errsMu.Unlock()
	}

	// The Secrets and the caBundles.
	secretData := map[string][]byte{}
	var caBundleWebhook, caBundleAPIService []byte
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, name := range []string{renewalRootCA, renewalIssuingCA, renewalLeaves[0].secret, renewalLeaves[1].secret, renewalLeaves[2].secret} {
		wg.Go(func() {
			s, err := r.kube.CoreV1().Secrets(operatorNamespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				fail("secret "+name, err)
				return
			}
			mu.Lock()
			secretData[name] = s.Data["tls.crt"]
			mu.Unlock()
		})
	}
	wg.Go(func() {
		vwc, err := r.kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "ebb-webhook", metav1.GetOptions{})
		if err != nil {
			fail("webhook configuration", err)
			return
		}
		for _, wh := range vwc.Webhooks[1:] {
			if !bytes.Equal(wh.ClientConfig.CABundle, vwc.Webhooks[0].ClientConfig.CABundle) {
				fail("webhook configuration", errors.New("webhooks with different caBundles"))
			}
		}
		mu.Lock()
		caBundleWebhook = vwc.Webhooks[0].ClientConfig.CABundle
		mu.Unlock()
	})
	wg.Go(func() {
		body, err := r.kube.CoreV1().RESTClient().Get().AbsPath("/apis/apiregistration.k8s.io/v1/apiservices", externalMetricsAPI).Do(ctx).Raw()
		if err != nil {
			fail("APIService", err)
			return
		}
		var svc struct {
			Spec struct {
				CABundle []byte `json:"caBundle"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(body, &svc); err != nil {
			fail("APIService", err)
			return
		}
		mu.Lock()
		caBundleAPIService = svc.Spec.CABundle
		mu.Unlock()
	})

	// Every pod: what it serves, what it has mounted, its reloads.
	views := map[string]*renewalPodView{}
	for _, p := range r.pods {
		v := &renewalPodView{errs: map[string]error{}}
		views[p.name] = v
		wg.Go(func() { r.viewFiles(p, v) })
		wg.Go(func() {
			body, err := renewalScrape(ctx, p.ip)
			if err != nil {
				fail("metrics of "+p.name, err)
				v.reloads = -1
				return
			}
			v.reloads = renewalPromSum(body, "ebb_tlsfiles_reloads_total", `result="success"`)
		})
	}
	wg.Wait()
	// The dials need the metrics-apiserver's client certificate from its
	// files (the operator requires one).
	clientPair := views[r.podsOf("metrics-apiserver")[0].name].filesPair
	for _, p := range r.pods {
		v := views[p.name]
		wg.Go(func() {
			var pair *tls.Certificate
			if p.service == "operator" {
				pair = clientPair
			}
			chain, refused, err := renewalDial(ctx, p, pair)
			if err != nil {
				fail("dial "+p.name, err)
				return
			}
			v.served, v.servedChain = chain[0], chain
			v.clientChecked, v.clientRefused = pair != nil, refused
		})
	}
	wg.Wait()
	at := time.Now()

	o := r.obs
	o.mu.Lock()
	defer func() {
		o.rounds++
		o.cond.Broadcast()
		o.mu.Unlock()
	}()
	for what, err := range errs {
		_ = err
		o.probeErrs[what]++
	}
	for name, data := range secretData {
		if cert, err := renewalCert(data); err == nil {
			o.set(at, "secret/"+name, []byte(renewalSerial(cert)), renewalSerial(cert))
		}
	}
	if caBundleWebhook != nil {
		o.set(at, "cabundle/webhook", caBundleWebhook, renewalHash(caBundleWebhook))
	}
	if caBundleAPIService != nil {
		o.set(at, "cabundle/apiservice", caBundleAPIService, renewalHash(caBundleAPIService))
	}
	for _, p := range r.pods {
		v := views[p.name]
		for what, err := range v.errs {
			_ = err
			o.probeErrs[what+" "+p.name]++
		}
		if v.served != nil {
			o.set(at, "served/"+p.name, []byte(renewalSerial(v.served)), renewalSerial(v.served))
		}
		if v.filesCert != nil {
			o.set(at, "files/"+p.name, []byte(renewalSerial(v.filesCert)), renewalSerial(v.filesCert))
		}
		if v.reloads >= 0 {
			if v.reloads != o.reloads[p.name] || len(o.reloadTS[p.name]) == 0 {
				o.reloadTS[p.name] = append(o.reloadTS[p.name], renewalReloadSample{at: at, count: v.reloads})
			}
			o.reloads[p.name] = v.reloads
		}
	}

	// The trust probes.
	poolOf := func(pemData []byte) *x509.CertPool {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil
		}
		return pool
	}
	verify := func(chain []*x509.Certificate, roots *x509.CertPool, dnsName string, usage x509.ExtKeyUsage) error {
		if roots == nil {
			return errors.New("no CA")
		}
		inter := x509.NewCertPool()
		for _, c := range chain[1:] {
			inter.AddCert(c)
		}
		_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: dnsName, KeyUsages: []x509.ExtKeyUsage{usage}})
		return err
	}
	ms := views[r.podsOf("metrics-apiserver")[0].name]
	for _, p := range r.pods {
		v := views[p.name]
		switch p.service {
		case "webhook":
			if v.served != nil && caBundleWebhook != nil {
				o.probe(phase, at, "API server → "+p.name, verify(v.servedChain, poolOf(caBundleWebhook), "ebb-webhook.ebb-system.svc", x509.ExtKeyUsageServerAuth))
			}
		case "metrics-apiserver":
			if v.served != nil && caBundleAPIService != nil {
				o.probe(phase, at, "aggregator → "+p.name, verify(v.servedChain, poolOf(caBundleAPIService), "ebb-metrics-apiserver.ebb-system.svc", x509.ExtKeyUsageServerAuth))
			}
		case "operator":
			if v.served != nil && ms.filesCA != nil {
				o.probe(phase, at, "metrics-apiserver → "+p.name, verify(v.servedChain, ms.filesCA, "ebb-operator.ebb-system.svc", x509.ExtKeyUsageServerAuth))
			}
			if v.clientChecked {
				o.probe(phase, at, p.name+renewalClientProbe, v.clientRefused)
			}
		}
	}
}

// viewFiles reads the certificate files a pod has mounted, as its process
// sees them (through the ..data link the node swaps atomically).
func (r *renewalRun) viewFiles(p *renewalPod, v *renewalPodView) {
	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(p.dir, name))
		if err != nil {
			v.errs["read "+name] = err
			return nil
		}
		return data
	}
	crt, key, ca := read("tls.crt"), read("tls.key"), read("ca.crt")
	if crt == nil || key == nil || ca == nil {
		return
	}
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		// Read across a swap; the next round reads a consistent set.
		v.errs["key pair"] = err
		return
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		v.errs["parse tls.crt"] = err
		return
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		v.errs["parse ca.crt"] = errors.New("no certificate")
		return
	}
	v.filesCert, v.filesPair, v.filesCA, v.filesCAPEM = cert, &pair, pool, ca
}

// renewalDial makes a TLS handshake with a pod's serving port and returns
// the chain it presents, without verifying it (the probes do). With pair,
// it presents that client certificate (the operator requires one) and
// returns in refused the server's verdict on it: with TLS 1.3 the client's
// handshake completes before the server has checked the client
// certificate, so it reads until the server either refuses with an alert
// or speaks (a gRPC server sends its HTTP/2 settings at once).
func renewalDial(ctx context.Context, p *renewalPod, pair *tls.Certificate) (chain []*x509.Certificate, refused error, err error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, //nolint:gosec // the chain is verified by the trust probes
		NextProtos:         []string{"h2"},
	}
	if pair != nil {
		cfg.Certificates = []tls.Certificate{*pair}
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 2 * time.Second}, Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(p.ip, strconv.Itoa(p.port)))
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	chain = conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(chain) == 0 {
		return nil, nil, errors.New("no certificate presented")
	}
	if pair != nil {
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		var buf [1]byte
		if _, rerr := conn.Read(buf[:]); rerr != nil {
			var ne net.Error
			if !errors.As(rerr, &ne) || !ne.Timeout() {
				refused = rerr
			}
		}
	}
	return chain, refused, nil
}
