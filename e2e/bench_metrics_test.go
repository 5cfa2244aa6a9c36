package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/e2e/cluster"
	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedaclient "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned"
	"github.com/ebb-autoscaler/ebb/pkg/mtls"
	"github.com/ebb-autoscaler/ebb/pkg/rpc/metricsv1"
	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles"
)

// Knobs of TestBenchMetricsReadPath.
const (
	// benchRateSecondsEnv sets how long each rate runs (20 s by default).
	benchRateSecondsEnv = "EBB_BENCH_RATE_SECONDS"
	// benchProfileDirEnv, when set, is where CPU profiles of the operator
	// (run with --profiling) and the metrics-apiserver, taken through their
	// /debug/pprof during the 200 req/s runs, and the cluster's logs are
	// written.
	benchProfileDirEnv = "EBB_BENCH_PROFILE_DIR"
)

// TestBenchMetricsReadPath measures the latency of reading an external
// metric of a ScaledObject whose trigger has useCachedMetrics, as the HPA
// controller reads it, at open-loop fixed rates of 50, 200 and 500
// requests/s: requests are sent on a schedule, whatever the answers'
// latency, and each latency counts from the request's scheduled time, so
// a stalled server shows up in the figures instead of slowing the load.
// Each rate is run against each hop of the path, to split the latency:
//
//   - through the kube-apiserver (aggregation) to the metrics-apiserver
//     and on to the operator over the mTLS gRPC link, as the HPA reads;
//   - the metrics-apiserver's own endpoint, directly;
//   - the operator's MetricsService, directly, with a client
//     certificate;
//
// and, as a baseline of the machine without ebb, against a GET of the
// ScaledObject that the kube-apiserver answers alone.
//
// p50, p99, max, the achieved rate, errors, and the CPU time the
// kube-apiserver, the metrics-apiserver and the operator spent per read
// (beyond what they spend idle) are reported as BENCH lines. Reads that time out or are shed
// are figures; any other failed read fails the test.
func TestBenchMetricsReadPath(t *testing.T) {
	if os.Getenv(benchEnv) == "" {
		t.Skipf("a benchmark: set %s=1 (make bench)", benchEnv)
	}
	perRate := 20 * time.Second
	if v, err := strconv.Atoi(os.Getenv(benchRateSecondsEnv)); err == nil && v > 0 {
		perRate = time.Duration(v) * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	profileDir := os.Getenv(benchProfileDirEnv)
	c := startCluster(ctx, t, cluster.Options{CertManager: true})
	if profileDir != "" {
		// Runs before the cluster stops (cleanups run last first).
		t.Cleanup(func() { copyLogs(t, c.LogDir, filepath.Join(profileDir, "logs")) })
	}
	createNamespace(ctx, t, c, operatorNamespace)
	issueCertificates(ctx, t, c)
	operator := startOperator(ctx, t, c, "ebb-operator-tls", func(spec *cluster.PodSpec) {
		if profileDir != "" {
			spec.Args = append(spec.Args, "--profiling")
		}
	})
	metricsPod := startMetricsAPIServer(ctx, t, c)

	// A ScaledObject on a Redis list, read from the scale loop's cache.
	const ns, name, metric, items = "bench", "worker", "s0-redis-jobs", 7
	rdb := startRedis(ctx, t, c, ns, "")
	createDeployment(ctx, t, c, ns, name, 1)
	list := make([]any, items)
	for i := range list {
		list[i] = i
	}
	if err := rdb.RPush(ctx, "jobs", list...).Err(); err != nil {
		t.Fatal(err)
	}
	keda, err := kedaclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keda.KedaV1alpha1().ScaledObjects(ns).Create(ctx, &v1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.ScaledObjectSpec{
			ScaleTargetRef:  &v1alpha1.ScaleTarget{Name: name},
			PollingInterval: ptr.To[int32](5),
			MinReplicaCount: ptr.To[int32](1),
			MaxReplicaCount: ptr.To[int32](10),
			Triggers: []v1alpha1.ScaleTrigger{{
				Type:             "redis",
				UseCachedMetrics: true,
				Metadata:         map[string]string{"address": "redis." + ns + ".svc:6379", "listName": "jobs", "listLength": "5"},
			}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The three clients. Every one keeps its connection, as the
	// aggregator and the metrics-apiserver keep theirs.
	path := "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + ns + "/" + metric +
		"?labelSelector=" + url.QueryEscape(v1alpha1.ScaledObjectNameLabel+"="+name)
	viaAPIServer := httpReader(t, c.Config, path, "ExternalMetricValueList")
	direct := rest.CopyConfig(c.Config)
	// The metrics-apiserver's serving certificate is the ebb CA's; the
	// admin's client certificate is the cluster CA's, which it trusts
	// from the API server's extension-apiserver-authentication.
	metricsCA, err := os.ReadFile(filepath.Join(secretToDir(ctx, t, c, operatorNamespace, metricsAPIServerCert), "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	direct.Host = "https://" + net.JoinHostPort(metricsPod.Host.Addr.String(), "6443")
	direct.CAFile, direct.CAData = "", metricsCA
	direct.ServerName = "ebb-metrics-apiserver.ebb-system.svc"
	metricsAPIServer := httpReader(t, direct, path, "ExternalMetricValueList")
	// A read the API server answers alone, from its watch cache: what its
	// own hop costs on this machine, without ebb.
	apiServerAlone := httpReader(t, c.Config, "/apis/keda.sh/v1alpha1/namespaces/"+ns+"/scaledobjects/"+name, "ScaledObject")
	// The operator's pprof (--profiling) is on its plaintext metrics port.
	operatorDebug := &rest.Config{Host: "http://" + net.JoinHostPort(operator.Host.Addr.String(), "8080")}
	clientSrc, err := tlsfiles.New(secretToDir(ctx, t, c, operatorNamespace, "ebb-e2e-client-tls"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(net.JoinHostPort(operator.Host.Addr.String(), "9443"), grpc.WithTransportCredentials(mtls.ClientCredentials(clientSrc, operatorServerName)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	grpcClient := metricsv1.NewMetricsServiceClient(conn)
	req := &metricsv1.GetMetricsRequest{Namespace: ns, ScaledObjectName: name, MetricName: metric, LabelSelector: v1alpha1.ScaledObjectNameLabel + "=" + name}
	viaGRPC := func(ctx context.Context) error {
		resp, err := grpcClient.GetMetrics(ctx, req)
		if err != nil {
			return err
		}
		if v := resp.GetValues(); len(v) != 1 || v[0].GetValue().GetValue() != strconv.Itoa(items) {
			return fmt.Errorf("unexpected answer %v", resp)
		}
		return nil
	}

	// Every hop answers with the list's length.
	for _, hop := range []struct {
		name string
		read func(context.Context) error
	}{{"the API server", viaAPIServer}, {"the metrics-apiserver", metricsAPIServer}, {"the operator", viaGRPC}} {
		pollUntil(ctx, t, "a read through "+hop.name, 2*time.Minute, func(ctx context.Context) (bool, error) {
			err := hop.read(ctx)
			return err == nil, err
		})
	}

	// What the processes spend idle (informers, the scale loop, probes),
	// taken off the CPU time they spend during a run.
	pids := map[string]int{
		"kube-apiserver":    clusterProcess(t, "kube-apiserver", c.Dir),
		"metrics-apiserver": metricsPod.Process.Pid(),
		"operator":          operator.Process.Pid(),
	}
	const idleWindow = 5 * time.Second
	idleStart := cpuTimes(t, pids)
	time.Sleep(idleWindow)
	idleEnd := cpuTimes(t, pids)
	idle := func(p string, d time.Duration) time.Duration {
		return time.Duration(float64(idleEnd[p]-idleStart[p]) * d.Seconds() / idleWindow.Seconds())
	}
	for _, hop := range []struct {
		// id names the hop's profiles; path says what is read, and the
		// way a read goes.
		id, path string
		read     func(context.Context) error
		// cpu are the processes whose CPU time the hop's requests use.
		cpu []string
	}{
		{"operator", "metrics read (useCachedMetrics), operator gRPC (mTLS), direct", viaGRPC, []string{"operator"}},
		{"metrics-apiserver", "metrics read (useCachedMetrics), metrics-apiserver, direct → operator", metricsAPIServer, []string{"metrics-apiserver", "operator"}},
		{"kube-apiserver", "metrics read (useCachedMetrics), kube-apiserver → metrics-apiserver → operator", viaAPIServer, []string{"kube-apiserver", "metrics-apiserver", "operator"}},
		{"baseline", "baseline without ebb: kube-apiserver GET of the ScaledObject", apiServerAlone, []string{"kube-apiserver"}},
	} {
		// A short warm-up: connections, caches, the authorizer's.
		if r := openLoop(ctx, 50, 2*time.Second, hop.read); r.wrong > 0 {
			t.Fatalf("Warm-up via %s: %d failed reads, the first: %v", hop.path, r.wrong, r.firstWrong)
		}
		for _, rate := range []int{50, 200, 500} {
			var profiles []func()
			if profileDir != "" && rate == 200 && hop.id != "baseline" {
				d := max(perRate*3/4, time.Second)
				profiles = append(profiles, cpuProfile(ctx, t, operatorDebug, filepath.Join(profileDir, fmt.Sprintf("operator-via-%s-%d.pprof", hop.id, rate)), d))
				if hop.id != "operator" {
					profiles = append(profiles, cpuProfile(ctx, t, direct, filepath.Join(profileDir, fmt.Sprintf("metrics-apiserver-via-%s-%d.pprof", hop.id, rate)), d))
				}
			}
			conns := watchConnections(ctx, pids["metrics-apiserver"], 6443)
			before, started := cpuTimes(t, pids), time.Now()
			r := openLoop(ctx, rate, perRate, hop.read)
			after, took := cpuTimes(t, pids), time.Since(started)
			if n := conns(); hop.id == "metrics-apiserver" || hop.id == "kube-apiserver" {
				t.Logf("Connections made to the metrics-apiserver during the run: %d", n)
			}
			for _, wait := range profiles {
				wait()
			}
			var cpu []string
			for _, p := range hop.cpu {
				cpu = append(cpu, fmt.Sprintf("%s %s", p, perRequest(after[p]-before[p]-idle(p, took), len(r.latencies))))
			}
			t.Logf("BENCH| %s, open loop %d req/s for %s | p50 %s, p99 %s, max %s; %.1f req/s achieved, %d errors; CPU per read: %s |",
				hop.path, rate, perRate, r.percentile(0.50), r.percentile(0.99), r.max(), r.achieved(), r.errors, strings.Join(cpu, ", "))
			switch {
			case r.wrong > 0:
				// Answers that are wrong, or errors other than running
				// out of time: the path is broken, not slow.
				t.Errorf("%d of %d reads via %s at %d req/s failed; the first: %v", r.wrong, r.sent, hop.path, rate, r.firstWrong)
			case r.errors > 0:
				// Overload is a figure of the benchmark, reported above.
				t.Logf("%d of %d reads via %s at %d req/s timed out or were shed; the first: %v", r.errors, r.sent, hop.path, rate, r.firstErr)
			}
		}
	}
}

// httpReader returns a function that GETs path with cfg's transport (TLS
// and credentials, without client-go's rate limiter) and checks that the
// answer is an object of kind.
func httpReader(t *testing.T, cfg *rest.Config, path, kind string) func(context.Context) error {
	t.Helper()
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.CloseIdleConnections)
	target := strings.TrimSuffix(cfg.Host, "/") + path
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", resp.Status, body)
		}
		if !strings.Contains(string(body), `"kind":"`+kind+`"`) {
			return fmt.Errorf("unexpected answer %s", body)
		}
		return nil
	}
}

// loadResult is the outcome of one openLoop run.
type loadResult struct {
	// errors counts the reads that failed; wrong those of them that
	// failed other than by running out of time or being shed.
	sent, errors, wrong  int
	firstErr, firstWrong error
	// latencies of every read made (not shed), from its scheduled start
	// to its end, sorted.
	latencies []time.Duration
	// span is from the first scheduled start to the last end.
	span time.Duration
}

func (r loadResult) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return roundLatency(r.latencies[int(p*float64(len(r.latencies)-1))])
}

func (r loadResult) max() time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return roundLatency(r.latencies[len(r.latencies)-1])
}

// achieved is the rate of successful reads over the run.
func (r loadResult) achieved() float64 {
	if r.span <= 0 {
		return 0
	}
	return float64(r.sent-r.errors) / r.span.Seconds()
}

func roundLatency(d time.Duration) time.Duration {
	if d < 10*time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(100 * time.Microsecond)
}

// errShed is the error of a call openLoop did not make.
var errShed = errors.New("overloaded: more than 2 s of requests outstanding")

// openLoop calls read rate times a second for d, on a fixed schedule (the
// i-th call is due at start + i/rate, whether or not earlier calls have
// ended), each call bounded by 5 s; at most 2 s worth of calls may be
// outstanding, beyond which a due call is counted as failed without being
// made. It returns once every call has ended.
func openLoop(ctx context.Context, rate int, d time.Duration, read func(context.Context) error) loadResult {
	const callTimeout = 5 * time.Second
	n := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	maxInFlight := 2 * rate
	var (
		mu      sync.Mutex
		res     = loadResult{sent: n, latencies: make([]time.Duration, 0, n)}
		lastEnd time.Time
		wg      sync.WaitGroup
	)
	record := func(due time.Time, err error) {
		end := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if !errors.Is(err, errShed) {
			res.latencies = append(res.latencies, end.Sub(due))
		}
		if end.After(lastEnd) {
			lastEnd = end
		}
		if err != nil {
			res.errors++
			if res.firstErr == nil {
				res.firstErr = err
			}
			if !errors.Is(err, errShed) && !errors.Is(err, context.DeadlineExceeded) && status.Code(err) != codes.DeadlineExceeded {
				res.wrong++
				if res.firstWrong == nil {
					res.firstWrong = err
				}
			}
		}
	}
	slots := make(chan struct{}, maxInFlight)
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		select {
		case slots <- struct{}{}:
		default:
			record(due, errShed)
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			defer cancel()
			record(due, read(cctx))
		})
	}
	wg.Wait()
	slices.Sort(res.latencies)
	res.span = lastEnd.Sub(start)
	return res
}

// cpuTimes returns the CPU time (user and system) each process has used,
// by name.
func cpuTimes(t *testing.T, pids map[string]int) map[string]time.Duration {
	t.Helper()
	out := map[string]time.Duration{}
	for name, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// The fields after the command, which is in parentheses and may
		// hold spaces; utime and stime are fields 14 and 15, in clock
		// ticks (USER_HZ, 100 on Linux).
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		var ticks int64
		for _, f := range fields[11:13] {
			v, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				t.Fatalf("/proc/%d/stat: %v", pid, err)
			}
			ticks += v
		}
		out[name] = time.Duration(ticks) * 10 * time.Millisecond
	}
	return out
}

// perRequest formats cpu spread over n requests.
func perRequest(cpu time.Duration, n int) string {
	if n == 0 {
		return "-"
	}
	return (cpu / time.Duration(n)).Round(time.Microsecond).String()
}

// cpuProfile starts taking a CPU profile of d from the server reached with
// cfg (its /debug/pprof/profile: the metrics-apiserver's, which the admin
// may read, or the operator's with --profiling) and returns a function
// that waits for it and writes it to file.
func cpuProfile(ctx context.Context, t *testing.T, cfg *rest.Config, file string, d time.Duration) func() {
	t.Helper()
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			u := strings.TrimSuffix(cfg.Host, "/") + "/debug/pprof/profile?seconds=" + strconv.Itoa(int(d.Seconds()))
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %s", resp.Status, body)
			}
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				return err
			}
			return os.WriteFile(file, body, 0o644)
		}()
	}()
	return func() {
		if err := <-done; err != nil {
			t.Errorf("Profiling %s: %v", cfg.Host, err)
			return
		}
		t.Logf("CPU profile of %s written to %s", cfg.Host, file)
	}
}

// watchConnections samples, every 50 ms until the returned function is
// called, the TCP connections established to port in the network
// namespace of process pid, and returns a function that stops and returns
// how many distinct ones it saw: one per connection a client opened (and
// TLS handshake the server made), unless one opened and closed between
// two samples.
func watchConnections(ctx context.Context, pid, port int) func() int {
	ctx, cancel := context.WithCancel(ctx)
	seen := map[string]bool{}
	done := make(chan struct{})
	local := fmt.Sprintf(":%04X", port)
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, file := range []string{"tcp", "tcp6"} {
				data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, file))
				for _, line := range strings.Split(string(data), "\n")[1:] {
					// sl local_address rem_address st ...; 01 is ESTABLISHED.
					f := strings.Fields(line)
					if len(f) > 3 && strings.HasSuffix(f[1], local) && f[3] == "01" {
						seen[f[2]] = true
					}
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() int {
		cancel()
		<-done
		return len(seen)
	}
}

// copyLogs copies the *.log files of dir into to.
func copyLogs(t *testing.T, dir, to string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err == nil {
		err = os.MkdirAll(to, 0o755)
	}
	for _, f := range files {
		if err != nil {
			break
		}
		var data []byte
		if data, err = os.ReadFile(f); err == nil {
			err = os.WriteFile(filepath.Join(to, filepath.Base(f)), data, 0o644)
		}
	}
	if err != nil {
		t.Errorf("Copying the logs: %v", err)
		return
	}
	t.Logf("Logs copied to %s", to)
}

// clusterProcess returns the pid of the cluster's process whose binary is
// named name: the one whose command line holds both name and the
// cluster's directory (its flags point into it).
func clusterProcess(t *testing.T, name, dir string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if filepath.Base(args[0]) == name && strings.Contains(string(cmdline), dir) {
			return pid
		}
	}
	t.Fatalf("No %s process of the cluster in %s", name, dir)
	return 0
}
