package operatorlink

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ebb-autoscaler/ebb/pkg/rpc/metricsv1"
	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles/tlsfilestest"
)

func TestHealthServiceIsTheMetricsService(t *testing.T) {
	if got := metricsv1.MetricsService_ServiceDesc.ServiceName; got != HealthService {
		t.Errorf("HealthService = %q, want the MetricsService's name %q", HealthService, got)
	}
}

func TestNew(t *testing.T) {
	p := newPKI(t, "ebb-ca")
	src, _ := source(t, tlsfilestest.Files(p.client, p.ca.PEM))

	tests := map[string]struct {
		cfg            Config
		wantErr        string
		wantServerName string
		wantTimeout    time.Duration
	}{
		"name target, server name from it": {
			cfg:            Config{Targets: []string{serverName + ":9443"}, TLS: src},
			wantServerName: serverName,
			wantTimeout:    DefaultCallTimeout,
		},
		"static addresses with a server name": {
			cfg:            Config{Targets: []string{"10.0.0.1:9443", "[fd00::1]:9443"}, ServerName: serverName, TLS: src, CallTimeout: time.Second},
			wantServerName: serverName,
			wantTimeout:    time.Second,
		},
		"no targets":                   {cfg: Config{TLS: src, ServerName: serverName}, wantErr: "no operator target"},
		"target without a port":        {cfg: Config{Targets: []string{"operator"}, TLS: src}, wantErr: "missing port"},
		"target with a named port":     {cfg: Config{Targets: []string{"operator:grpc"}, TLS: src}, wantErr: "port must be a number"},
		"target with port zero":        {cfg: Config{Targets: []string{"operator:0"}, TLS: src}, wantErr: "port must be a number"},
		"target without a host":        {cfg: Config{Targets: []string{":9443"}, TLS: src}, wantErr: "no host"},
		"no TLS":                       {cfg: Config{Targets: []string{"operator:9443"}}, wantErr: "no TLS source"},
		"IP target without a name":     {cfg: Config{Targets: []string{"10.0.0.1:9443"}, TLS: src}, wantErr: "server name is required"},
		"two names without a name":     {cfg: Config{Targets: []string{"a:9443", "b:9443"}, TLS: src}, wantErr: "server name is required"},
		"negative call timeout":        {cfg: Config{Targets: []string{"operator:9443"}, TLS: src, CallTimeout: -1}, wantErr: "negative call timeout"},
		"negative probe timeout":       {cfg: Config{Targets: []string{"operator:9443"}, TLS: src, ProbeTimeout: -1}, wantErr: "negative probe timeout"},
		"probing off":                  {cfg: Config{Targets: []string{"operator:9443"}, TLS: src, ProbeInterval: -1}, wantServerName: "operator", wantTimeout: DefaultCallTimeout},
		"IPv6 name-less target":        {cfg: Config{Targets: []string{"[::1]:9443"}, TLS: src}, wantErr: "server name is required"},
		"target with a bad host:port":  {cfg: Config{Targets: []string{"a:b:c"}, TLS: src}, wantErr: "too many colons"},
		"server name overrides target": {cfg: Config{Targets: []string{"operator:9443"}, ServerName: serverName, TLS: src}, wantServerName: serverName, wantTimeout: DefaultCallTimeout},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			l, err := New(tc.cfg, (&logSink{}).logger())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New() error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New() error = %v", err)
			}
			defer func() { _ = l.Close() }()
			if l.cfg.ServerName != tc.wantServerName {
				t.Errorf("ServerName = %q, want %q", l.cfg.ServerName, tc.wantServerName)
			}
			if l.cfg.CallTimeout != tc.wantTimeout {
				t.Errorf("CallTimeout = %v, want %v", l.cfg.CallTimeout, tc.wantTimeout)
			}
		})
	}
}

func TestGetMetrics(t *testing.T) {
	p := newPKI(t, "ebb-ca")
	srvSrc, _ := source(t, tlsfilestest.Files(p.server, p.ca.PEM))
	cliSrc, _ := source(t, tlsfilestest.Files(p.client, p.ca.PEM))
	op := startOperator(t, "op-0", srvSrc, "127.0.0.1:0")
	var got *metricsv1.GetMetricsRequest
	op.setHandler(func(_ context.Context, req *metricsv1.GetMetricsRequest) (*metricsv1.GetMetricsResponse, error) {
		got = req
		return response("op-0", req), nil
	})
	l := startLink(t, Config{Targets: []string{op.addr}, ServerName: serverName, TLS: cliSrc})
	reg := prometheus.NewPedanticRegistry()
	if err := l.RegisterMetrics(reg); err != nil {
		t.Fatalf("RegisterMetrics() error = %v", err)
	}
	if err := l.RegisterMetrics(reg); err == nil {
		t.Error("RegisterMetrics() twice with one registry: no error")
	}
	l.waitUp(t, reconnectBound)

	resp, err := l.call()
	if err != nil {
		t.Fatalf("GetMetrics() error = %v", err)
	}
	if got == nil || got.GetNamespace() != "apps" || got.GetScaledObjectName() != "orders" ||
		got.GetMetricName() != "s0-redis-orders" || got.GetLabelSelector() != "scaledobject.keda.sh/name=orders" {
		t.Errorf("The operator got %v, want the request as sent", got)
	}
	if v := resp.GetValues(); len(v) != 1 || v[0].GetValue().GetValue() != "12500m" || replicaOf(resp) != "op-0" {
		t.Errorf("GetMetrics() = %v, want one value 12500m from op-0", resp)
	}
	if s := op.clientSerial.Load(); s == nil || s.Cmp(p.client.Cert.SerialNumber) != 0 {
		t.Errorf("The operator saw client certificate %v, want %v", s, p.client.Cert.SerialNumber)
	}
	if n := l.histogramCount(t, "OK"); n != 1 {
		t.Errorf("Attempts with code OK = %d, want 1", n)
	}
	want := `
# HELP ebb_operator_link_up 1 while the link to the operator is up (connected to a replica that reports SERVING for ebb.metrics.v1.MetricsService), else 0.
# TYPE ebb_operator_link_up gauge
ebb_operator_link_up 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ebb_operator_link_up"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n < 5 {
		t.Errorf("GatherAndCount() = %d, %v; want at least the five metrics", n, err)
	}
	if n := l.logs.count("Operator link up"); n != 1 {
		t.Errorf("%d \"Operator link up\" lines, want 1", n)
	}
}

// TestOperatorStopsAndComesBack is KEDA bug #8211's test: the operator goes
// away; the link must say so within 5 s and fail calls fast, with a message
// naming the link, and must be back within 5 s of the operator, without a
// restart. It logs the measured times.
func TestOperatorStopsAndComesBack(t *testing.T) {
	p := newPKI(t, "ebb-ca")
	srvSrc, _ := source(t, tlsfilestest.Files(p.server, p.ca.PEM))
	cliSrc, _ := source(t, tlsfilestest.Files(p.client, p.ca.PEM))
	op := startOperator(t, "op-0", srvSrc, "127.0.0.1:0")
	l := startLink(t, Config{Targets: []string{op.addr}, ServerName: serverName, TLS: cliSrc})
	l.waitUp(t, reconnectBound)
	if _, err := l.call(); err != nil {
		t.Fatalf("GetMetrics() error = %v", err)
	}

	// Calls right after the stop, made before the link noticed, must
	// fail fast too. Meanwhile, measure when Check notices.
	op.stop()
	stopped := time.Now()
	detected := watchCheck(l, stopped, false)
	var slowest time.Duration
	var firstErr error
	for range 20 {
		start := time.Now()
		_, err := l.call()
		d := time.Since(start)
		slowest = max(slowest, d)
		if d > failFastBound {
			t.Errorf("GetMetrics() took %v with the operator stopped, want at most %v", d, failFastBound)
		}
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("GetMetrics() error = %v, want code Unavailable", describe(err))
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	detect := <-detected
	if detect < 0 || detect > detectBound {
		t.Fatalf("Check() noticed the stop after %v, want at most %v", detect, detectBound)
	}
	t.Logf("Operator stopped: Check failing after %v; slowest of 20 calls since the stop: %v; first error: %v", detect, slowest, firstErr)

	// Once down, calls fail at once and name the link.
	start := time.Now()
	_, err := l.call()
	failFast := time.Since(start)
	if !errors.Is(err, ErrLinkDown) || status.Code(err) != codes.Unavailable {
		t.Fatalf("GetMetrics() error = %v, want a LinkDownError with code Unavailable", describe(err))
	}
	if !strings.Contains(err.Error(), "operator link down: cannot connect to any operator replica: "+op.addr) ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Errorf("GetMetrics() error = %q, want it to name the link and the refused address", err)
	}
	if st, _ := status.FromError(err); !strings.HasPrefix(st.Message(), "operator link down: ") {
		t.Errorf("Status message = %q, want it to start with \"operator link down: \"", st.Message())
	}
	if err := l.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Check() = %v, want the reason", err)
	}
	if failFast > 200*time.Millisecond {
		t.Errorf("GetMetrics() on a down link took %v, want it at once", failFast)
	}
	t.Logf("Fail-fast latency on a down link: %v; error: %v", failFast, err)
	if got := testutil.ToFloat64(l.metrics.up); got != 0 {
		t.Errorf("ebb_operator_link_up = %v, want 0", got)
	}
	if testutil.ToFloat64(l.metrics.failedFast) == 0 {
		t.Error("ebb_operator_link_calls_failed_fast_total = 0, want the refused calls counted")
	}

	op.start(t)
	back := l.waitUp(t, reconnectBound)
	if _, err := l.call(); err != nil {
		t.Fatalf("GetMetrics() once the operator is back: %v", err)
	}
	t.Logf("Operator back: link up after %v", back)
	if got := testutil.ToFloat64(l.metrics.up); got != 1 {
		t.Errorf("ebb_operator_link_up = %v, want 1", got)
	}
	// One line per transition, however many calls failed meanwhile.
	if n := l.logs.count("Operator link down"); n != 1 {
		t.Errorf("%d \"Operator link down\" lines, want 1:\n%s", n, l.logs)
	}
	if n := l.logs.count("Operator link up"); n != 2 {
		t.Errorf("%d \"Operator link up\" lines, want 2 (start, back):\n%s", n, l.logs)
	}
}
