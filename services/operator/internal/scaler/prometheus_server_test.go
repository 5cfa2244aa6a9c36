package scaler

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/apimachinery/pkg/api/resource"
)

// promServer is a real Prometheus server owned by a test, scraping one
// target every second.
type promServer struct {
	t    *testing.T
	url  string
	cmd  *exec.Cmd
	logs *lockedBuffer
	once sync.Once
}

// lockedBuffer collects a child process's output for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	if len(s) > 4096 {
		s = "..." + s[len(s)-4096:]
	}
	return s
}

// startPrometheus starts the Debian prometheus binary on a free loopback
// port, scraping target (host:port) every second, with its TSDB in a
// temporary directory.
func startPrometheus(t *testing.T, target string) *promServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("the prometheus server binary is not installed: run hack/install-event-sources.sh (Debian package prometheus)")
	}
	dir := t.TempDir()
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: ebb-test
    static_configs:
      - targets: [%q]
`, target)
	configFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := closedAddress(t)
	ps := &promServer{t: t, url: "http://" + addr, logs: &lockedBuffer{}}
	ps.cmd = exec.Command(bin,
		"--config.file="+configFile,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	ps.cmd.Stdout = ps.logs
	ps.cmd.Stderr = ps.logs
	if err := ps.cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(ps.stop)

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(ps.url + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return ps
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus on %s not ready: %v\n%s", addr, err, ps.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the server (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (ps *promServer) stop() {
	ps.once.Do(func() {
		_ = ps.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = ps.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = ps.cmd.Process.Kill()
			<-done
		}
	})
}

// waitReading polls s until it reads want (compared as quantities) with
// the given activity, or fails after a deadline. The scrape interval is
// 1 s, so a change of the gauge shows within a few seconds.
func waitReading(t *testing.T, s Scaler, want string, wantActive bool) {
	t.Helper()
	wq := resource.MustParse(want)
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for {
		r, err := s.Poll(t.Context())
		if err == nil && r.Value.Cmp(wq) == 0 && r.Active == wantActive {
			return
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%s active=%v", r.Value.String(), r.Active)
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %s active=%v; last poll: %s", want, wantActive, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestPrometheusServer(t *testing.T) {
	ctx := t.Context()
	reg := prometheus.NewRegistry()
	depth := prometheus.NewGauge(prometheus.GaugeOpts{Name: "ebb_test_queue_depth", Help: "Items waiting."})
	reg.MustRegister(depth)
	exporter := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer exporter.Close()
	ps := startPrometheus(t, strings.TrimPrefix(exporter.URL, "http://"))

	meta := func(query string, extra ...string) map[string]string {
		m := map[string]string{"serverAddress": ps.url, "query": query, "threshold": "5", "activationThreshold": "3"}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	s := build(t, "prometheus", meta("ebb_test_queue_depth"), nil, Deps{})

	// The series exists after the first scrape; until then the result is
	// empty, which ignoreNullValues (the default) reads as 0.
	depth.Set(3)
	waitReading(t, s, "3", false) // at the activation threshold: not active
	depth.Set(7.5)
	waitReading(t, s, "7.5", true)
	depth.Set(12)
	waitReading(t, s, "12", true)

	// Aggregations and scalar results, on the same series.
	waitReading(t, build(t, "prometheus", meta("sum(ebb_test_queue_depth) / 8"), nil, Deps{}), "1.5", false)
	waitReading(t, build(t, "prometheus", meta("scalar(ebb_test_queue_depth) * 2"), nil, Deps{}), "24", true)
	// queryParameters are passed on: Prometheus's own timeout parameter.
	waitReading(t, build(t, "prometheus", meta("ebb_test_queue_depth", "queryParameters", "timeout=5s"), nil, Deps{}), "12", true)

	depth.Set(0)
	waitReading(t, s, "0", false)

	// No series: 0 with ignoreNullValues, an error without.
	none := "ebb_test_no_such_metric"
	waitReading(t, build(t, "prometheus", meta(none), nil, Deps{}), "0", false)
	_, err := build(t, "prometheus", meta(none, "ignoreNullValues", "false"), nil, Deps{}).Poll(ctx)
	checkKind(t, err, ErrBadResponse)
	if !strings.Contains(err.Error(), "no series") {
		t.Errorf("error %q does not say the query returned no series", err)
	}

	// Several series: an error.
	_, err = build(t, "prometheus", meta(`{__name__=~"ebb_test_queue_depth|up"}`), nil, Deps{}).Poll(ctx)
	checkKind(t, err, ErrBadResponse)
	if !strings.Contains(err.Error(), "2 series") {
		t.Errorf("error %q does not count the series", err)
	}

	// A bad query: Prometheus's own error, naming the trigger and source.
	_, err = build(t, "prometheus", meta("sum(ebb_test_queue_depth"), nil, Deps{}).Poll(ctx)
	checkKind(t, err, ErrBadResponse)
	for _, want := range []string{"prometheus trigger (" + ps.url + ")", "HTTP status 400", "bad_data", "parse error"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	// A query that parses but fails to evaluate: a range vector.
	_, err = build(t, "prometheus", meta("ebb_test_queue_depth[1m]"), nil, Deps{}).Poll(ctx)
	checkKind(t, err, ErrBadResponse)

	// Close: polls fail with ErrClosed, Close is idempotent.
	closed := build(t, "prometheus", meta("ebb_test_queue_depth"), nil, Deps{})
	waitReading(t, closed, "0", false)
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = closed.Poll(ctx)
	checkKind(t, err, ErrClosed)
	if err := closed.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	// Server stopped: unreachable.
	ps.stop()
	_, err = s.Poll(ctx)
	checkKind(t, err, ErrUnreachable)
	if !strings.Contains(err.Error(), "prometheus trigger ("+ps.url+")") {
		t.Errorf("error %q does not name the trigger type and source", err)
	}
}
