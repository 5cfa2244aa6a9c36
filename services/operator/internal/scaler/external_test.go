package scaler

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ebb-autoscaler/ebb/pkg/rpc/externalscaler"
	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// fakeExternal is an external scaler: configurable metric spec, value and
// activity, and a StreamIsActive that sends what is put on pushes.
type fakeExternal struct {
	externalscaler.UnimplementedExternalScalerServer

	mu         sync.Mutex
	specs      []*externalscaler.MetricSpec
	value      int64
	valueFloat float64
	active     bool
	code       codes.Code    // non-OK: GetMetrics answers with this status
	block      chan struct{} // non-nil: GetMetrics waits for it
	lastRef    *externalscaler.ScaledObjectRef
	lastMetric string
	peerCerts  int

	specCalls, metricsCalls, activeCalls, streams atomic.Int64
	pushes                                        chan bool
}

func newFakeExternal() *fakeExternal {
	return &fakeExternal{
		specs:  []*externalscaler.MetricSpec{{MetricName: "queue", TargetSize: 10}},
		pushes: make(chan bool),
	}
}

func (f *fakeExternal) set(fn func(f *fakeExternal)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeExternal) GetMetricSpec(_ context.Context, ref *externalscaler.ScaledObjectRef) (*externalscaler.GetMetricSpecResponse, error) {
	f.specCalls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastRef = proto.Clone(ref).(*externalscaler.ScaledObjectRef)
	return &externalscaler.GetMetricSpecResponse{MetricSpecs: f.specs}, nil
}

func (f *fakeExternal) GetMetrics(ctx context.Context, req *externalscaler.GetMetricsRequest) (*externalscaler.GetMetricsResponse, error) {
	f.metricsCalls.Add(1)
	f.mu.Lock()
	block, code := f.block, f.code
	f.lastRef = proto.Clone(req.GetScaledObjectRef()).(*externalscaler.ScaledObjectRef)
	f.lastMetric = req.GetMetricName()
	if p, ok := peer.FromContext(ctx); ok {
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			f.peerCerts = len(info.State.PeerCertificates)
		}
	}
	resp := &externalscaler.GetMetricsResponse{MetricValues: []*externalscaler.MetricValue{
		{MetricName: "other", MetricValue: 999},
		{MetricName: req.GetMetricName(), MetricValue: f.value, MetricValueFloat: f.valueFloat},
	}}
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if code != codes.OK {
		return nil, status.Error(code, "scaler says no")
	}
	return resp, nil
}

func (f *fakeExternal) IsActive(context.Context, *externalscaler.ScaledObjectRef) (*externalscaler.IsActiveResponse, error) {
	f.activeCalls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return &externalscaler.IsActiveResponse{Result: f.active}, nil
}

func (f *fakeExternal) StreamIsActive(_ *externalscaler.ScaledObjectRef, stream externalscaler.ExternalScaler_StreamIsActiveServer) error {
	f.streams.Add(1)
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case v := <-f.pushes:
			if err := stream.Send(&externalscaler.IsActiveResponse{Result: v}); err != nil {
				return err
			}
		}
	}
}

// serveExternal serves f on addr ("127.0.0.1:0" for any port) and returns
// the address and a stop function (also run at the end of t).
func serveExternal(t *testing.T, f *fakeExternal, addr string, opts ...grpc.ServerOption) (string, func()) {
	t.Helper()
	var lis net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port of a restarted server may take a moment to free
		if lis, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	externalscaler.RegisterExternalScalerServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	var once sync.Once
	stop := func() { once.Do(srv.Stop) }
	t.Cleanup(stop)
	return lis.Addr().String(), stop
}

func externalConfig(t *testing.T, meta, auth map[string]string, push bool) *scalers.ExternalConfig {
	t.Helper()
	typ := "external"
	if push {
		typ = "external-push"
	}
	cfg, _, err := scalers.Parse(scalers.Trigger{Index: 2, Type: typ, Metadata: meta, AuthParams: auth, Namespace: "shop", ScaledObjectName: "orders"})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg.(*scalers.ExternalConfig)
}

func buildExternal(t *testing.T, meta, auth map[string]string, push bool) *externalScaler {
	t.Helper()
	s, err := newExternal(externalConfig(t, meta, auth, push), "orders", "shop", Deps{}.withDefaults(), push)
	if err != nil {
		t.Fatalf("newExternal: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s.(*externalScaler)
}

func pollCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestExternalValueAndActivity(t *testing.T) {
	tests := map[string]struct {
		value      int64
		valueFloat float64
		active     bool
		want       string
	}{
		"integer value, active":        {value: 42, active: true, want: "42"},
		"integer value, inactive":      {value: 0, want: "0"},
		"float value wins":             {value: 7, valueFloat: 2.5, active: true, want: "2500m"},
		"zero float falls back to int": {value: 3, valueFloat: 0, want: "3"},
		"negative float falls back":    {value: 5, valueFloat: -1, want: "5"},
		"large integer exact":          {value: 9007199254740993, active: true, want: "9007199254740993"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeExternal()
			f.set(func(f *fakeExternal) { f.value, f.valueFloat, f.active = tc.value, tc.valueFloat, tc.active })
			addr, _ := serveExternal(t, f, "127.0.0.1:0")
			s := buildExternal(t, map[string]string{"scalerAddress": addr}, nil, false)
			r, err := s.Poll(pollCtx(t))
			checkKind(t, err, nil)
			if got := r.Value.String(); got != tc.want {
				t.Errorf("value %s, want %s", got, tc.want)
			}
			if r.Active != tc.active {
				t.Errorf("active %v, want %v", r.Active, tc.active)
			}
			if f.activeCalls.Load() != 1 {
				t.Errorf("IsActive called %d times, want 1", f.activeCalls.Load())
			}
		})
	}
}

func TestExternalMetadataAndSpecOnce(t *testing.T) {
	f := newFakeExternal()
	f.set(func(f *fakeExternal) {
		f.specs = []*externalscaler.MetricSpec{{MetricName: "depth", TargetSize: 4, TargetSizeFloat: 1.5}, {MetricName: "ignored", TargetSize: 1}}
		f.value = 6
	})
	addr, _ := serveExternal(t, f, "127.0.0.1:0")
	meta := map[string]string{"scalerAddress": addr, "queue": "orders-q", "tokenFromEnv": "TOKEN", "token": "resolved-secret"}
	s := buildExternal(t, meta, nil, false)
	ctx := pollCtx(t)
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Poll(ctx); err != nil {
				t.Errorf("Poll: %v", err)
			}
		}()
	}
	wg.Wait()
	if _, err := s.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.specCalls.Load(); n != 1 {
		t.Errorf("GetMetricSpec called %d times, want 1", n)
	}
	if n := f.metricsCalls.Load(); n != 6 {
		t.Errorf("GetMetrics called %d times, want 6", n)
	}
	f.mu.Lock()
	ref, metric := f.lastRef, f.lastMetric
	f.mu.Unlock()
	if metric != "depth" {
		t.Errorf("GetMetrics metricName %q, want depth", metric)
	}
	if ref.GetName() != "orders" || ref.GetNamespace() != "shop" {
		t.Errorf("ScaledObjectRef %s/%s, want shop/orders", ref.GetNamespace(), ref.GetName())
	}
	md := ref.GetScalerMetadata()
	if md["queue"] != "orders-q" || md["scalerAddress"] != addr || md["tokenFromEnv"] != "resolved-secret" {
		t.Errorf("scalerMetadata %v", md)
	}
	spec, err := s.MetricSpec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if spec.External == nil || spec.External.Metric.Name != "s2-depth" || spec.External.Target.AverageValue == nil || spec.External.Target.AverageValue.MilliValue() != 1500 {
		t.Errorf("metric spec %+v", spec.External)
	}
	if n := f.specCalls.Load(); n != 1 {
		t.Errorf("GetMetricSpec called %d times after MetricSpec, want 1", n)
	}
	var _ MetricSpecSource = s
}

func TestExternalErrors(t *testing.T) {
	tests := map[string]struct {
		code    codes.Code
		block   bool
		specs   []*externalscaler.MetricSpec
		want    error
		notWant error
	}{
		"Unavailable is unreachable":     {code: codes.Unavailable, want: ErrUnreachable, notWant: ErrTimeout},
		"DeadlineExceeded is a timeout":  {code: codes.DeadlineExceeded, want: ErrTimeout},
		"Internal is a bad response":     {code: codes.Internal, want: ErrBadResponse},
		"Unimplemented is bad response":  {code: codes.Unimplemented, want: ErrBadResponse},
		"no metric spec is bad response": {specs: []*externalscaler.MetricSpec{}, want: ErrBadResponse},
		"caller deadline is a timeout":   {block: true, want: ErrTimeout},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeExternal()
			f.set(func(f *fakeExternal) {
				f.code = tc.code
				if tc.specs != nil {
					f.specs = tc.specs
				}
				if tc.block {
					f.block = make(chan struct{})
				}
			})
			addr, _ := serveExternal(t, f, "127.0.0.1:0")
			s := buildExternal(t, map[string]string{"scalerAddress": addr}, nil, false)
			ctx := pollCtx(t)
			if tc.block {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 200*time.Millisecond)
				defer cancel()
			}
			_, err := s.Poll(ctx)
			checkKind(t, err, tc.want)
			if tc.notWant != nil && errors.Is(err, tc.notWant) {
				t.Errorf("error %v also wraps %v", err, tc.notWant)
			}
		})
	}
}

func TestExternalServerDownAndRecovery(t *testing.T) {
	f := newFakeExternal()
	f.set(func(f *fakeExternal) { f.value = 1 })
	addr, stop := serveExternal(t, f, "127.0.0.1:0")
	s := buildExternal(t, map[string]string{"scalerAddress": addr}, nil, false)
	if _, err := s.Poll(pollCtx(t)); err != nil {
		t.Fatal(err)
	}
	stop()
	for i := 0; i < 3; i++ {
		_, err := s.Poll(pollCtx(t))
		checkKind(t, err, ErrUnreachable)
		if errors.Is(err, ErrTimeout) {
			t.Fatalf("a refused connection is not a timeout: %v", err)
		}
	}
	f.set(func(f *fakeExternal) { f.value = 2 })
	serveExternal(t, f, addr)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := s.Poll(pollCtx(t))
		if err == nil {
			if r.Value.String() != "2" {
				t.Fatalf("value %s after restart, want 2", r.Value.String())
			}
			break
		}
		checkKind(t, err, ErrUnreachable)
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestExternalPush(t *testing.T) {
	f := newFakeExternal()
	addr, stop := serveExternal(t, f, "127.0.0.1:0")
	s := buildExternal(t, map[string]string{"scalerAddress": addr}, nil, true)
	ctx := pollCtx(t)
	if r, err := s.Poll(ctx); err != nil || r.Active {
		t.Fatalf("first poll: %+v, %v", r, err)
	}
	push := func(v bool) {
		t.Helper()
		select {
		case f.pushes <- v:
		case <-time.After(10 * time.Second):
			t.Fatal("no StreamIsActive stream to push on")
		}
		select {
		case <-s.PushNotify():
		case <-time.After(5 * time.Second):
			t.Fatal("the push did not reach the scaler")
		}
	}
	push(true)
	if r, err := s.Poll(ctx); err != nil || !r.Active {
		t.Fatalf("poll after a push of true: %+v, %v", r, err)
	}
	// No push since: IsActive decides again.
	if r, err := s.Poll(ctx); err != nil || r.Active {
		t.Fatalf("poll without a new push: %+v, %v", r, err)
	}
	if n := f.streams.Load(); n != 1 {
		t.Errorf("%d streams opened, want 1", n)
	}

	// The stream breaks with the server and is reopened after its restart.
	stop()
	serveExternal(t, f, addr)
	push(true)
	if n := f.streams.Load(); n != 2 {
		t.Errorf("%d streams opened, want 2", n)
	}
	if r, err := s.Poll(pollCtx(t)); err != nil || !r.Active {
		t.Fatalf("poll after a push on the reopened stream: %+v, %v", r, err)
	}
	f.set(func(f *fakeExternal) { f.active = true })
	push(false)
	if r, err := s.Poll(pollCtx(t)); err != nil || r.Active {
		t.Fatalf("a pushed false since the last poll: %+v, %v", r, err)
	}
}

func TestExternalCloseStopsEverything(t *testing.T) {
	f := newFakeExternal()
	addr, _ := serveExternal(t, f, "127.0.0.1:0")
	time.Sleep(50 * time.Millisecond)
	before := runtime.NumGoroutine()

	cfg := externalConfig(t, map[string]string{"scalerAddress": addr}, nil, true)
	sc, err := newExternal(cfg, "orders", "shop", Deps{}, true)
	if err != nil {
		t.Fatal(err)
	}
	s := sc.(*externalScaler)
	if _, err := s.Poll(pollCtx(t)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.streams.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	default:
		t.Fatal("the stream goroutine still runs after Close")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err = s.Poll(pollCtx(t))
	checkKind(t, err, ErrClosed)
	_, err = s.MetricSpec(pollCtx(t))
	checkKind(t, err, ErrClosed)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			break
		}
		if time.Now().After(deadline.Add(5 * time.Second)) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A push scaler closed before any poll starts nothing.
	sc, err = newExternal(cfg, "orders", "shop", Deps{}, true)
	if err != nil {
		t.Fatal(err)
	}
	_ = sc.Close()
	_, err = sc.Poll(pollCtx(t))
	checkKind(t, err, ErrClosed)
	if sc.(*externalScaler).done != nil {
		t.Error("a stream was started after Close")
	}
}

// serverCert returns a TLS certificate for 127.0.0.1 and its PEM.
func serverCert(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "ebb-test-scaler"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestExternalTLS(t *testing.T) {
	cert, caPEM := serverCert(t)
	f := newFakeExternal()
	creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12})
	addr, _ := serveExternal(t, f, "127.0.0.1:0", grpc.Creds(creds))
	clientPEM, keyPEM := clientCert(t)
	tests := map[string]struct {
		meta      map[string]string
		auth      map[string]string
		wantErr   error
		wantCerts int
	}{
		"plaintext against TLS fails":  {meta: map[string]string{}, wantErr: ErrUnreachable},
		"unknown CA refused":           {meta: map[string]string{"enableTLS": "true"}, wantErr: ErrUnreachable},
		"caCert trusts the server":     {meta: map[string]string{}, auth: map[string]string{"caCert": caPEM}},
		"unsafeSsl skips verification": {meta: map[string]string{"enableTLS": "true", "unsafeSsl": "true"}},
		"client certificate sent":      {meta: map[string]string{}, auth: map[string]string{"caCert": caPEM, "tlsClientCert": clientPEM, "tlsClientKey": keyPEM}, wantCerts: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.meta["scalerAddress"] = addr
			s := buildExternal(t, tc.meta, tc.auth, false)
			_, err := s.Poll(pollCtx(t))
			checkKind(t, err, tc.wantErr)
			if err != nil {
				return
			}
			f.mu.Lock()
			n := f.peerCerts
			f.mu.Unlock()
			if n != tc.wantCerts {
				t.Errorf("server saw %d client certificates, want %d", n, tc.wantCerts)
			}
		})
	}
}

func TestExternalInvalidConfigHidesKey(t *testing.T) {
	_, keyPEM := clientCert(t)
	cfg := externalConfig(t, map[string]string{"scalerAddress": "127.0.0.1:1"}, map[string]string{"tlsClientCert": "not a cert", "tlsClientKey": keyPEM}, false)
	_, err := newExternal(cfg, "orders", "shop", Deps{}, false)
	checkKind(t, err, ErrInvalidConfig)
	if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), keyPEM[40:80]) {
		t.Fatalf("error shows the key: %v", err)
	}
	cfg = externalConfig(t, map[string]string{"scalerAddress": "127.0.0.1:1"}, map[string]string{"caCert": "not pem"}, false)
	_, err = newExternal(cfg, "orders", "shop", Deps{}, false)
	checkKind(t, err, ErrInvalidConfig)
}
