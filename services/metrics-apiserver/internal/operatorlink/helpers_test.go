package operatorlink

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"k8s.io/klog/v2"

	"github.com/ebb-autoscaler/ebb/pkg/mtls"
	"github.com/ebb-autoscaler/ebb/pkg/rpc/metricsv1"
	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles"
	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles/tlsfilestest"
)

// serverName is the operator's Service DNS name, on its certificate.
const serverName = "ebb-operator.ebb-system.svc"

// Bounds from the requirements the link is built to.
const (
	detectBound    = 5 * time.Second // the link reports a lost operator
	reconnectBound = 5 * time.Second // the link is up again once the operator is back
	failFastBound  = time.Second     // a call fails while the link is down
)

// waitFor polls cond every 10 ms until it holds, and fails the test if it
// does not within limit. It returns how long it took.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("Timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// logSink collects log lines.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, prefix+" "+args)
	}, funcr.Options{Verbosity: 4})
}

// count returns how many lines contain every one of substrs.
func (l *logSink) count(substrs ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
next:
	for _, line := range l.lines {
		for _, s := range substrs {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		n++
	}
	return n
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// pki is a CA with an operator certificate for serverName and a client
// certificate.
type pki struct {
	ca             *tlsfilestest.CA
	server, client tlsfilestest.KeyPair
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	ca := tlsfilestest.NewCA(t, name)
	return &pki{
		ca:     ca,
		server: ca.Issue(t, "ebb-operator", []string{serverName}, tlsfilestest.LeafOptions{}),
		client: ca.Issue(t, "ebb-metrics-apiserver", []string{"ebb-metrics-apiserver.ebb-system.svc"}, tlsfilestest.LeafOptions{}),
	}
}

// source writes files into a new directory the way the kubelet does and
// returns a running Source for it.
func source(t *testing.T, files map[string][]byte) (*tlsfiles.Source, string) {
	t.Helper()
	dir := t.TempDir()
	tlsfilestest.WriteAtomic(t, dir, files)
	src, err := tlsfiles.New(dir, tlsfiles.WithResyncInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), logr.Discard()))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = src.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return src, dir
}

// handlerFunc answers GetMetrics in a test operator.
type handlerFunc func(ctx context.Context, req *metricsv1.GetMetricsRequest) (*metricsv1.GetMetricsResponse, error)

// operator is a stand-in for the operator's mTLS gRPC server: the
// MetricsService, and grpc.health.v1 with HealthService SERVING or not.
type operator struct {
	name string
	src  *tlsfiles.Source
	// addr is fixed by the first start, so a restart comes back at the
	// same address.
	addr string
	// extra server options, for tests that need them.
	opts []grpc.ServerOption

	serving atomic.Bool
	calls   atomic.Int64
	handler atomic.Pointer[handlerFunc]
	// clientSerial is the serial of the client certificate of the last call.
	clientSerial atomic.Pointer[big.Int]

	mu sync.Mutex
	gs *grpc.Server
	hs *grpchealth.Server
}

// startOperator starts an operator named name on addr ("127.0.0.1:0" for
// any port), SERVING.
func startOperator(t *testing.T, name string, src *tlsfiles.Source, addr string, opts ...grpc.ServerOption) *operator {
	t.Helper()
	o := &operator{name: name, src: src, addr: addr, opts: opts}
	o.serving.Store(true)
	o.start(t)
	t.Cleanup(o.stop)
	return o
}

func (o *operator) start(t *testing.T) {
	t.Helper()
	var lis net.Listener
	var err error
	// A port just released may take a moment to be free again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		lis, err = net.Listen("tcp", o.addr)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Starting operator %s: %v", o.name, err)
	}
	o.addr = lis.Addr().String()
	opts := append([]grpc.ServerOption{
		grpc.Creds(mtls.ServerCredentials(o.src, mtls.WithLogger(logr.Discard()))),
		// What the operator must allow; see doc.go.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	}, o.opts...)
	gs := grpc.NewServer(opts...)
	hs := grpchealth.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	metricsv1.RegisterMetricsServiceServer(gs, &metricsService{o: o})
	o.mu.Lock()
	o.gs, o.hs = gs, hs
	o.mu.Unlock()
	o.setServing(o.serving.Load())
	go func() { _ = gs.Serve(lis) }()
}

// stop stops the operator at once, closing its connections.
func (o *operator) stop() {
	o.mu.Lock()
	gs := o.gs
	o.gs, o.hs = nil, nil
	o.mu.Unlock()
	if gs != nil {
		gs.Stop()
	}
}

func (o *operator) restart(t *testing.T) {
	t.Helper()
	o.stop()
	o.start(t)
}

// setServing sets the health status of HealthService.
func (o *operator) setServing(serving bool) {
	o.serving.Store(serving)
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.hs != nil {
		o.hs.SetServingStatus(HealthService, st)
	}
}

func (o *operator) setHandler(h handlerFunc) { o.handler.Store(&h) }

type metricsService struct {
	metricsv1.UnimplementedMetricsServiceServer
	o *operator
}

func (s *metricsService) GetMetrics(ctx context.Context, req *metricsv1.GetMetricsRequest) (*metricsv1.GetMetricsResponse, error) {
	s.o.calls.Add(1)
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
			s.o.clientSerial.Store(ti.State.PeerCertificates[0].SerialNumber)
		}
	}
	if h := s.o.handler.Load(); h != nil {
		return (*h)(ctx, req)
	}
	return response(s.o.name, req), nil
}

// response is what a test operator named name answers by default: one
// value labelled with its name.
func response(name string, req *metricsv1.GetMetricsRequest) *metricsv1.GetMetricsResponse {
	return &metricsv1.GetMetricsResponse{Values: []*metricsv1.MetricValue{{
		MetricName: req.GetMetricName(),
		Labels:     map[string]string{"replica": name},
		Value:      &metricsv1.Quantity{Value: "12500m"},
	}}}
}

// replicaOf returns the replica that answered resp.
func replicaOf(resp *metricsv1.GetMetricsResponse) string {
	if resp == nil || len(resp.Values) == 0 {
		return ""
	}
	return resp.Values[0].Labels["replica"]
}

var testRequest = &metricsv1.GetMetricsRequest{
	Namespace:        "apps",
	ScaledObjectName: "orders",
	MetricName:       "s0-redis-orders",
	LabelSelector:    "scaledobject.keda.sh/name=orders",
}

// testLink is a running Link with its logs.
type testLink struct {
	*Link
	logs *logSink
	stop func()
}

// startLink creates a Link from cfg and runs it until the test ends.
func startLink(t *testing.T, cfg Config) *testLink {
	t.Helper()
	logs := &logSink{}
	l, err := New(cfg, logs.logger())
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run() error = %v", err)
			}
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("Link logs:\n%s", logs)
		}
	})
	return &testLink{Link: l, logs: logs, stop: stop}
}

// call makes one GetMetrics call with a generous deadline.
func (l *testLink) call() (*metricsv1.GetMetricsResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return l.GetMetrics(ctx, testRequest)
}

// waitUp waits until Check passes and returns how long it took.
func (l *testLink) waitUp(t *testing.T, limit time.Duration) time.Duration {
	t.Helper()
	return waitFor(t, limit, "the link to be up", func() bool { return l.Check(context.Background()) == nil })
}

// waitDown waits until Check fails and returns how long it took.
func (l *testLink) waitDown(t *testing.T, limit time.Duration) time.Duration {
	t.Helper()
	return waitFor(t, limit, "the link to be down", func() bool { return l.Check(context.Background()) != nil })
}

// histogramCount returns how many attempts ended with code.
func (l *testLink) histogramCount(t *testing.T, code string) uint64 {
	t.Helper()
	var m dto.Metric
	if err := l.metrics.callDuration.WithLabelValues(code).(prometheus.Histogram).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// proxy forwards TCP connections to an upstream address, and can be paused
// to play a peer whose network vanished: while paused it forwards nothing
// and closes nothing, so the connections look open and silent.
type proxy struct {
	lis      net.Listener
	upstream string

	mu     sync.Mutex
	resume chan struct{} // non-nil while paused; closed to resume
	conns  []net.Conn
}

func startProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{lis: lis, upstream: upstream}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.lis.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go p.pipe(up, c)
		go p.pipe(c, up)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.wait()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			p.wait()
			return
		}
	}
}

// wait blocks while the proxy is paused.
func (p *proxy) wait() {
	p.mu.Lock()
	ch := p.resume
	p.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

func (p *proxy) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resume == nil {
		p.resume = make(chan struct{})
	}
}

func (p *proxy) unpause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resume != nil {
		close(p.resume)
		p.resume = nil
	}
}

func (p *proxy) close() {
	_ = p.lis.Close()
	p.unpause()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

// fakeDNS maps names to addresses, and can be changed.
type fakeDNS struct {
	mu      sync.Mutex
	records map[string][]string
	lookups atomic.Int64
}

func (d *fakeDNS) set(name string, ips ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.records == nil {
		d.records = map[string][]string{}
	}
	d.records[name] = ips
}

func (d *fakeDNS) lookup(_ context.Context, host string) ([]string, error) {
	d.lookups.Add(1)
	d.mu.Lock()
	defer d.mu.Unlock()
	ips, ok := d.records[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return ips, nil
}

// listenPair listens on 127.0.0.1 and 127.0.0.2 on one port, as two pods
// behind one headless Service name would.
func listenPair(t *testing.T) (port string) {
	t.Helper()
	for range 20 {
		a, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ = net.SplitHostPort(a.Addr().String())
		b, err := net.Listen("tcp", "127.0.0.2:"+port)
		_ = a.Close()
		if err == nil {
			_ = b.Close()
			return port
		}
	}
	t.Fatal("No port free on both 127.0.0.1 and 127.0.0.2")
	return ""
}

func describe(err error) string {
	if err == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%T: %v", err, err)
}

// watchCheck polls l.Check every 5 ms from now on and sends how long after
// since it first returned nil (wantUp) or an error (!wantUp); -1 if that
// did not happen within 20 s.
func watchCheck(l *testLink, since time.Time, wantUp bool) <-chan time.Duration {
	out := make(chan time.Duration, 1)
	go func() {
		for time.Since(since) < 20*time.Second {
			if (l.Check(context.Background()) == nil) == wantUp {
				out <- time.Since(since)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		out <- -1
	}()
	return out
}
