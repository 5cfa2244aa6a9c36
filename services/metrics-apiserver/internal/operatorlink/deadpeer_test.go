package operatorlink

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles/tlsfilestest"
)

// silentOperator starts an operator behind a proxy, and a link to it
// through the proxy, up.
func silentOperator(t *testing.T, cfg Config) (*testLink, *proxy) {
	t.Helper()
	p := newPKI(t, "ebb-ca")
	srvSrc, _ := source(t, tlsfilestest.Files(p.server, p.ca.PEM))
	cliSrc, _ := source(t, tlsfilestest.Files(p.client, p.ca.PEM))
	op := startOperator(t, "op-0", srvSrc, "127.0.0.1:0")
	px := startProxy(t, op.addr)
	cfg.Targets, cfg.ServerName, cfg.TLS = []string{px.addr()}, serverName, cliSrc
	l := startLink(t, cfg)
	l.waitUp(t, reconnectBound)
	if _, err := l.call(); err != nil {
		t.Fatal(err)
	}
	return l, px
}

// TestSilentOperator: the operator's network vanishes without a FIN or an
// RST, so the connection looks open. The health probe must find out
// within 5 s, and the link must be back within 5 s of the network.
func TestSilentOperator(t *testing.T) {
	l, px := silentOperator(t, Config{})

	px.pause()
	paused := time.Now()
	detected := watchCheck(l, paused, false)
	// A call made now goes out on the silent connection; it must end once
	// the probe closes that connection, long before its deadline.
	start := time.Now()
	_, err := l.call()
	firstCall := time.Since(start)
	if !errors.Is(err, ErrLinkDown) {
		t.Errorf("GetMetrics() on the silent link: %v, want ErrLinkDown", describe(err))
	}
	detect := <-detected
	if detect < 0 || detect > detectBound {
		t.Fatalf("Check() noticed the silent operator after %v, want at most %v", detect, detectBound)
	}
	if err := l.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "no answer to a health probe within 1.5s") {
		t.Errorf("Check() = %v, want the unanswered probe as the reason", err)
	}
	start = time.Now()
	_, err = l.call()
	if d := time.Since(start); d > failFastBound || !errors.Is(err, ErrLinkDown) {
		t.Errorf("GetMetrics() once down = %v after %v, want ErrLinkDown within %v", err, d, failFastBound)
	}
	if got := testutil.ToFloat64(l.metrics.probeKills); got < 1 {
		t.Errorf("ebb_operator_link_probe_timeouts_total = %v, want at least 1", got)
	}
	if n := l.logs.count("did not answer a health probe in time"); n < 1 {
		t.Errorf("No log line for the closed connection:\n%s", l.logs)
	}
	t.Logf("Silent operator: Check failing after %v; a call made at the start failed after %v", detect, firstCall)

	px.unpause()
	took := l.waitUp(t, reconnectBound)
	if _, err := l.call(); err != nil {
		t.Fatalf("GetMetrics() once the network is back: %v", err)
	}
	t.Logf("Network back: link up after %v", took)
}

// TestKeepalive turns probing off: keepalive alone must close a silent
// connection, 10 s (the shortest gRPC allows) + 3 s after the last
// activity.
func TestKeepalive(t *testing.T) {
	if testing.Short() {
		t.Skip("Takes 15 s")
	}
	l, px := silentOperator(t, Config{ProbeInterval: -1})
	px.pause()
	paused := time.Now()
	detect := l.waitDown(t, KeepaliveTime+KeepaliveTimeout+downGrace+3*time.Second)
	if got := testutil.ToFloat64(l.metrics.probeKills); got != 0 {
		t.Errorf("ebb_operator_link_probe_timeouts_total = %v with probing off", got)
	}
	if detect < KeepaliveTime {
		t.Errorf("Link down %v after the pause, before any keepalive ping was due: something else closed it", detect)
	}
	t.Logf("Keepalive alone: link down %v after the pause; %v", time.Since(paused), l.Check(context.Background()))
}

// TestNoBusyReconnect: a reconnecting link must not spin, whether the
// operator refuses connections or accepts them and closes them at once.
func TestNoBusyReconnect(t *testing.T) {
	const window = 3 * time.Second
	p := newPKI(t, "ebb-ca")
	srvSrc, _ := source(t, tlsfilestest.Files(p.server, p.ca.PEM))
	cliSrc, _ := source(t, tlsfilestest.Files(p.client, p.ca.PEM))

	tests := map[string]struct {
		opts []grpc.ServerOption
		stop bool
		// The bounds of dials in the window.
		min, max int64
	}{
		"refused": {
			stop: true,
			// Backoff from 500 ms to 2 s, ±20 %: 0.5, 0.8, 1.28 s...
			min: 2, max: 6,
		},
		"closed as soon as established": {
			opts: []grpc.ServerOption{grpc.KeepaliveParams(keepalive.ServerParameters{
				MaxConnectionAge:      time.Millisecond,
				MaxConnectionAgeGrace: time.Millisecond,
			})},
			// At most one dial per 500 ms: 3 s / 500 ms, +1 for the dial
			// at the start of the window, +1 for slack. (gRPC alone
			// makes hundreds: it does not back off after a connection
			// that was established.)
			min: 2, max: 8,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			op := startOperator(t, "op-0", srvSrc, "127.0.0.1:0", tc.opts...)
			if tc.stop {
				op.stop()
			}
			l := startLink(t, Config{Targets: []string{op.addr}, ServerName: serverName, TLS: cliSrc})
			waitFor(t, 5*time.Second, "a first dial", func() bool { return l.conns.dials.Load() > 0 })
			before := l.conns.dials.Load()
			time.Sleep(window) // counting events over a fixed window
			n := l.conns.dials.Load() - before
			t.Logf("%d dials in %v", n, window)
			if n < tc.min || n > tc.max {
				t.Errorf("%d dials in %v, want %d to %d", n, window, tc.min, tc.max)
			}
			if tc.stop {
				// The backoff has grown close to its maximum: the link must
				// still be back soon after the operator.
				op.start(t)
				took := l.waitUp(t, reconnectBound)
				t.Logf("Operator back after %v of refusals: link up after %v", window, took)
			}
		})
	}
}
