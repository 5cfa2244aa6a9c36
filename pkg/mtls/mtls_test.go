package mtls_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"k8s.io/klog/v2/ktesting"

	"github.com/ebb-autoscaler/ebb/pkg/mtls"
	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles"
	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles/tlsfilestest"
)

const serverName = "operator.ebb.svc"

// logSink collects log lines.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, args)
	}, funcr.Options{Verbosity: 4})
}

func (l *logSink) find(substrs ...string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
next:
	for _, line := range l.lines {
		for _, s := range substrs {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		return line
	}
	return ""
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("Timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// source writes files to a new kubelet-style directory and runs a Source
// on it until the test ends.
func source(ctx context.Context, t *testing.T, files map[string][]byte) (*tlsfiles.Source, string) {
	t.Helper()
	dir := t.TempDir()
	tlsfilestest.WriteAtomic(t, dir, files)
	src, err := tlsfiles.New(dir, tlsfiles.WithResyncInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = src.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return src, dir
}

type server struct {
	addr string
	logs *logSink
	// clientSerial is the serial of the client certificate of the last call.
	clientSerial atomic.Pointer[big.Int]
}

// startServer serves grpc.health.v1.Health over mutual TLS from src.
func startServer(t *testing.T, src *tlsfiles.Source) *server {
	t.Helper()
	s := &server{logs: &logSink{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = lis.Addr().String()
	gs := grpc.NewServer(
		grpc.Creds(mtls.ServerCredentials(src, mtls.WithLogger(s.logs.logger()))),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if p, ok := peer.FromContext(ctx); ok {
				if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
					s.clientSerial.Store(ti.State.PeerCertificates[0].SerialNumber)
				}
			}
			return handler(ctx, req)
		}),
	)
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return s
}

func dial(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// check makes one health Check call on conn and returns the peer.
func check(ctx context.Context, conn *grpc.ClientConn) (*peer.Peer, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p := &peer.Peer{}
	_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(p))
	return p, err
}

// checkOnce dials, calls once and closes.
func checkOnce(ctx context.Context, t *testing.T, addr string, creds credentials.TransportCredentials) (*peer.Peer, error) {
	conn := dial(t, addr, creds)
	defer func() { _ = conn.Close() }()
	return check(ctx, conn)
}

func serverCert(p *peer.Peer) *x509.Certificate {
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return nil
	}
	return ti.State.PeerCertificates[0]
}

func TestHandshake(t *testing.T) {
	ca := tlsfilestest.NewCA(t, "ebb-ca")
	other := tlsfilestest.NewCA(t, "other-ca")
	srvKP := ca.Issue(t, "operator", []string{serverName}, tlsfilestest.LeafOptions{})
	cliKP := ca.Issue(t, "metrics-apiserver", []string{"metrics-apiserver.ebb.svc"}, tlsfilestest.LeafOptions{})
	expired := tlsfilestest.LeafOptions{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}

	tests := map[string]struct {
		serverFiles map[string][]byte
		clientFiles map[string][]byte
		// clientCreds, if set, replaces ClientCredentials.
		clientCreds func(*tlsfiles.Source) credentials.TransportCredentials
		serverName  string
		wantErr     string
		wantLog     string
	}{
		"valid": {},
		"client certificate from another CA": {
			clientFiles: tlsfilestest.Files(other.Issue(t, "intruder", nil, tlsfilestest.LeafOptions{}), ca.PEM),
			wantErr:     "Unavailable",
			wantLog:     "client certificate is not issued by a trusted CA",
		},
		"expired client certificate": {
			clientFiles: tlsfilestest.Files(ca.Issue(t, "old", nil, expired), ca.PEM),
			wantErr:     "Unavailable",
			wantLog:     "client certificate has expired",
		},
		"client certificate without the client auth usage": {
			clientFiles: tlsfilestest.Files(ca.Issue(t, "server-only", nil,
				tlsfilestest.LeafOptions{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}), ca.PEM),
			wantErr: "Unavailable",
			wantLog: "client certificate is not valid for client auth",
		},
		"plaintext client": {
			clientCreds: func(*tlsfiles.Source) credentials.TransportCredentials { return insecure.NewCredentials() },
			wantErr:     "Unavailable",
			wantLog:     "client does not speak TLS",
		},
		"client without a certificate": {
			clientCreds: func(src *tlsfiles.Source) credentials.TransportCredentials {
				return credentials.NewTLS(&tls.Config{RootCAs: src.CAPool(), ServerName: serverName, MinVersion: tls.VersionTLS12})
			},
			wantErr: "Unavailable",
			wantLog: "client presented no certificate",
		},
		"server name mismatch": {
			serverName: "other.ebb.svc",
			wantErr:    `certificate is valid for operator.ebb.svc, not other.ebb.svc`,
			wantLog:    "client refused the handshake",
		},
		"client does not trust the server's CA": {
			clientFiles: tlsfilestest.Files(cliKP, other.PEM),
			wantErr:     "certificate signed by unknown authority",
			wantLog:     "client refused the handshake",
		},
		"expired server certificate": {
			serverFiles: tlsfilestest.Files(ca.Issue(t, "operator", []string{serverName}, expired), ca.PEM),
			wantErr:     "certificate has expired",
			wantLog:     "client refused the handshake",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			if tc.serverFiles == nil {
				tc.serverFiles = tlsfilestest.Files(srvKP, ca.PEM)
			}
			if tc.clientFiles == nil {
				tc.clientFiles = tlsfilestest.Files(cliKP, ca.PEM)
			}
			if tc.serverName == "" {
				tc.serverName = serverName
			}
			srvSrc, _ := source(ctx, t, tc.serverFiles)
			cliSrc, _ := source(ctx, t, tc.clientFiles)
			srv := startServer(t, srvSrc)
			creds := mtls.ClientCredentials(cliSrc, tc.serverName)
			if tc.clientCreds != nil {
				creds = tc.clientCreds(cliSrc)
			}

			p, err := checkOnce(ctx, t, srv.addr, creds)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Check() error = %v", err)
				}
				ti := p.AuthInfo.(credentials.TLSInfo)
				if ti.State.Version != tls.VersionTLS13 {
					t.Errorf("TLS version = %x, want TLS 1.3", ti.State.Version)
				}
				if got := serverCert(p).SerialNumber; got.Cmp(srvKP.Cert.SerialNumber) != 0 {
					t.Errorf("Server certificate serial = %v, want %v", got, srvKP.Cert.SerialNumber)
				}
				if got := srv.clientSerial.Load(); got == nil || got.Cmp(cliKP.Cert.SerialNumber) != 0 {
					t.Errorf("Client certificate serial seen by the server = %v, want %v", got, cliKP.Cert.SerialNumber)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Check() error = %v, want it to contain %q", err, tc.wantErr)
			}
			deadline := time.Now().Add(5 * time.Second)
			for srv.logs.find("TLS handshake failed", tc.wantLog, `"remoteAddr"="127.0.0.1:`) == "" {
				if time.Now().After(deadline) {
					t.Fatalf("No server log line with reason %q; logs:\n%s", tc.wantLog, srv.logs)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

// TestRotation runs calls in a loop, on one long-lived connection and on a
// new connection each time, while the server's and the client's
// certificates are renewed and then moved to a new CA, each directory
// updated on its own as separate pods would see it. No call may fail, new
// connections must use the new certificates, and once the old CA is
// dropped a client holding a certificate of the old CA must be refused.
func TestRotation(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ca1 := tlsfilestest.NewCA(t, "ebb-ca-1")
	ca2 := tlsfilestest.NewCA(t, "ebb-ca-2")
	issue := func(ca *tlsfilestest.CA, cn string, dns ...string) tlsfilestest.KeyPair {
		return ca.Issue(t, cn, dns, tlsfilestest.LeafOptions{})
	}
	srv1, cli1 := issue(ca1, "operator", serverName), issue(ca1, "metrics-apiserver")
	srvSrc, srvDir := source(ctx, t, tlsfilestest.Files(srv1, ca1.PEM))
	cliSrc, cliDir := source(ctx, t, tlsfilestest.Files(cli1, ca1.PEM))
	srv := startServer(t, srvSrc)
	creds := mtls.ClientCredentials(cliSrc, serverName)

	var calls, failures atomic.Int64
	var firstErr atomic.Value
	record := func(err error) {
		calls.Add(1)
		if err != nil {
			failures.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
		}
	}
	loopCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	longLived := dial(t, srv.addr, creds)
	defer func() { _ = longLived.Close() }()
	wg.Go(func() {
		for loopCtx.Err() == nil {
			_, err := check(ctx, longLived)
			record(err)
		}
	})
	wg.Go(func() {
		for loopCtx.Err() == nil {
			_, err := checkOnce(ctx, t, srv.addr, creds)
			record(err)
		}
	})
	// progress waits until the loops made some more calls.
	progress := func() {
		n := calls.Load()
		waitFor(t, "calls to go on", func() bool { return calls.Load() >= n+20 })
	}
	// update rewrites dir and waits for src to load it.
	update := func(src *tlsfiles.Source, dir string, files map[string][]byte) {
		gen := src.Generation()
		tlsfilestest.WriteAtomic(t, dir, files)
		waitFor(t, "a reload of "+dir, func() bool { return src.Generation() > gen })
		progress()
	}

	progress()
	// Renewal by the same CA, the usual case.
	srv2, cli2 := issue(ca1, "operator", serverName), issue(ca1, "metrics-apiserver")
	update(srvSrc, srvDir, tlsfilestest.Files(srv2, ca1.PEM))
	update(cliSrc, cliDir, tlsfilestest.Files(cli2, ca1.PEM))
	// CA rotation: trust both, move the certificates, drop the old CA.
	srv3, cli3 := issue(ca2, "operator", serverName), issue(ca2, "metrics-apiserver")
	update(srvSrc, srvDir, tlsfilestest.Files(srv2, ca1.PEM, ca2.PEM))
	update(cliSrc, cliDir, tlsfilestest.Files(cli2, ca1.PEM, ca2.PEM))
	update(srvSrc, srvDir, tlsfilestest.Files(srv3, ca1.PEM, ca2.PEM))
	update(cliSrc, cliDir, tlsfilestest.Files(cli3, ca1.PEM, ca2.PEM))
	update(srvSrc, srvDir, tlsfilestest.Files(srv3, ca2.PEM))
	update(cliSrc, cliDir, tlsfilestest.Files(cli3, ca2.PEM))
	stop()
	wg.Wait()

	t.Logf("%d calls during rotation", calls.Load())
	if n := failures.Load(); n != 0 {
		t.Errorf("%d of %d calls failed during rotation; first: %v", n, calls.Load(), firstErr.Load())
	}

	// A new connection uses the new certificates on both sides.
	p, err := checkOnce(ctx, t, srv.addr, creds)
	if err != nil {
		t.Fatalf("Check() after rotation: %v", err)
	}
	if got := serverCert(p).SerialNumber; got.Cmp(srv3.Cert.SerialNumber) != 0 {
		t.Errorf("Server certificate serial = %v, want %v", got, srv3.Cert.SerialNumber)
	}
	if got := srv.clientSerial.Load(); got.Cmp(cli3.Cert.SerialNumber) != 0 {
		t.Errorf("Client certificate serial seen by the server = %v, want %v", got, cli3.Cert.SerialNumber)
	}

	// A client still holding a certificate of the dropped CA is refused,
	// even though it trusts the server.
	staleSrc, _ := source(ctx, t, tlsfilestest.Files(cli2, ca1.PEM, ca2.PEM))
	if _, err := checkOnce(ctx, t, srv.addr, mtls.ClientCredentials(staleSrc, serverName)); err == nil {
		t.Fatal("A client with a certificate of the dropped CA was accepted")
	}
	waitFor(t, "the refusal to be logged", func() bool {
		return srv.logs.find("TLS handshake failed", "client certificate is not issued by a trusted CA") != ""
	})
}

// TestServerNameFromTarget checks that with no server name the client
// verifies the name gRPC derives from the target.
func TestServerNameFromTarget(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ca := tlsfilestest.NewCA(t, "ebb-ca")
	srvSrc, _ := source(ctx, t, tlsfilestest.Files(ca.Issue(t, "operator", []string{"localhost"}, tlsfilestest.LeafOptions{}), ca.PEM))
	cliSrc, _ := source(ctx, t, tlsfilestest.Files(ca.Issue(t, "client", nil, tlsfilestest.LeafOptions{}), ca.PEM))
	srv := startServer(t, srvSrc)
	_, port, _ := net.SplitHostPort(srv.addr)

	tests := map[string]struct {
		target  string
		wantErr string
	}{
		"name in the certificate": {target: "localhost:" + port},
		"IP not in the certificate": {
			target:  "127.0.0.1:" + port,
			wantErr: "no server name to verify",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			conn, err := grpc.NewClient("passthrough:///"+tc.target, grpc.WithTransportCredentials(mtls.ClientCredentials(cliSrc, "")))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			_, err = check(ctx, conn)
			if got := fmt.Sprint(err); (tc.wantErr == "" && err != nil) || !strings.Contains(got, tc.wantErr) {
				t.Fatalf("Check() error = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
