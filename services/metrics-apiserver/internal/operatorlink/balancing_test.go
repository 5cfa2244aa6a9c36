package operatorlink

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles/tlsfilestest"
)

// callsGoTo makes n calls and reports whether every one was answered by
// replica.
func callsGoTo(l *testLink, n int, replica string) bool {
	for range n {
		resp, err := l.call()
		if err != nil || replicaOf(resp) != replica {
			return false
		}
	}
	return true
}

// TestCallsGoToTheServingReplica runs two operator replicas, one the
// leader (SERVING) and one a standby (NOT_SERVING), given as two static
// addresses: every call must go to the leader, and follow it when the
// roles swap.
func TestCallsGoToTheServingReplica(t *testing.T) {
	p := newPKI(t, "ebb-ca")
	srvSrc, _ := source(t, tlsfilestest.Files(p.server, p.ca.PEM))
	cliSrc, _ := source(t, tlsfilestest.Files(p.client, p.ca.PEM))
	a := startOperator(t, "op-a", srvSrc, "127.0.0.1:0")
	b := startOperator(t, "op-b", srvSrc, "127.0.0.1:0")
	b.setServing(false)
	l := startLink(t, Config{Targets: []string{a.addr, b.addr}, ServerName: serverName, TLS: cliSrc})
	l.waitUp(t, reconnectBound)
	// Both replicas are connected, so the standby is skipped by choice.
	waitFor(t, reconnectBound, "connections to both replicas", func() bool { return l.conns.established() == 2 })

	for i := range 20 {
		resp, err := l.call()
		if err != nil {
			t.Fatalf("Call %d: %v", i, err)
		}
		if got := replicaOf(resp); got != "op-a" {
			t.Fatalf("Call %d answered by %q, want op-a (the only SERVING replica)", i, got)
		}
	}
	if n := b.calls.Load(); n != 0 {
		t.Fatalf("The standby got %d calls", n)
	}

	// Failover: b becomes the leader, then a steps down.
	b.setServing(true)
	a.setServing(false)
	took := waitFor(t, reconnectBound, "calls to move to op-b", func() bool { return callsGoTo(l, 10, "op-b") })
	t.Logf("Calls moved to the new leader within %v", took)
	before := a.calls.Load()
	if !callsGoTo(l, 20, "op-b") {
		t.Fatal("Calls went elsewhere than op-b after the failover")
	}
	if n := a.calls.Load() - before; n != 0 {
		t.Errorf("The old leader got %d calls after it stepped down", n)
	}
	if err := l.Check(context.Background()); err != nil {
		t.Errorf("Check() = %v during a failover with one replica serving", err)
	}

	// Both serving: round robin uses both.
	a.setServing(true)
	waitFor(t, reconnectBound, "calls to reach both replicas", func() bool {
		seen := map[string]bool{}
		for range 10 {
			resp, err := l.call()
			if err != nil {
				return false
			}
			seen[replicaOf(resp)] = true
		}
		return seen["op-a"] && seen["op-b"]
	})
}

// TestNoReplicaServing: replicas that all report NOT_SERVING (standbys, or
// a leader not synced yet) make the link down, saying so.
func TestNoReplicaServing(t *testing.T) {
	p := newPKI(t, "ebb-ca")
	srvSrc, _ := source(t, tlsfilestest.Files(p.server, p.ca.PEM))
	cliSrc, _ := source(t, tlsfilestest.Files(p.client, p.ca.PEM))
	a := startOperator(t, "op-a", srvSrc, "127.0.0.1:0")
	b := startOperator(t, "op-b", srvSrc, "127.0.0.1:0")
	l := startLink(t, Config{Targets: []string{a.addr, b.addr}, ServerName: serverName, TLS: cliSrc})
	l.waitUp(t, reconnectBound)

	a.setServing(false)
	b.setServing(false)
	took := l.waitDown(t, detectBound)
	t.Logf("No replica serving: Check failing after %v", took)
	const want = "operator link down: no operator replica is serving ebb.metrics.v1.MetricsService"
	if err := l.Check(context.Background()); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Check() = %v, want it to contain %q", err, want)
	}
	start := time.Now()
	_, err := l.call()
	if d := time.Since(start); d > failFastBound {
		t.Errorf("GetMetrics() took %v, want at most %v", d, failFastBound)
	}
	if !errors.Is(err, ErrLinkDown) || status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), want) {
		t.Errorf("GetMetrics() error = %v, want code Unavailable and %q", describe(err), want)
	}
	if n := a.calls.Load() + b.calls.Load(); n != 0 {
		t.Errorf("Replicas not serving got %d calls", n)
	}
	if n := l.logs.count("Operator link down", "no operator replica is serving"); n != 1 {
		t.Errorf("%d \"Operator link down\" lines, want 1:\n%s", n, l.logs)
	}

	b.setServing(true)
	l.waitUp(t, reconnectBound)
	if !callsGoTo(l, 5, "op-b") {
		t.Error("Calls do not go to op-b once it serves")
	}
}

// TestNameWithSeveralAddresses resolves one name (a headless Service) to
// two addresses on one port: the link balances over both, keeps only the
// serving one, and follows the name when a replica is replaced by one at
// a new address.
func TestNameWithSeveralAddresses(t *testing.T) {
	p := newPKI(t, "ebb-ca")
	srvSrc, _ := source(t, tlsfilestest.Files(p.server, p.ca.PEM))
	cliSrc, _ := source(t, tlsfilestest.Files(p.client, p.ca.PEM))
	port := listenPair(t)
	a := startOperator(t, "op-a", srvSrc, net.JoinHostPort("127.0.0.1", port))
	b := startOperator(t, "op-b", srvSrc, net.JoinHostPort("127.0.0.2", port))
	dns := &fakeDNS{}
	dns.set(serverName, "127.0.0.1", "127.0.0.2")
	// No ServerName: it defaults to the target's host.
	l := startLink(t, Config{Targets: []string{net.JoinHostPort(serverName, port)}, TLS: cliSrc, lookupHost: dns.lookup})
	l.waitUp(t, reconnectBound)
	if l.cfg.ServerName != serverName {
		t.Fatalf("ServerName = %q, want %q", l.cfg.ServerName, serverName)
	}
	waitFor(t, reconnectBound, "calls to reach both addresses", func() bool {
		seen := map[string]bool{}
		for range 10 {
			resp, err := l.call()
			if err != nil {
				return false
			}
			seen[replicaOf(resp)] = true
		}
		return seen["op-a"] && seen["op-b"]
	})
	if n := l.logs.count("Resolved the operator's addresses", "127.0.0.1:"+port, "127.0.0.2:"+port); n != 1 {
		t.Errorf("%d lines logging the two addresses, want 1:\n%s", n, l.logs)
	}

	a.setServing(false)
	waitFor(t, reconnectBound, "calls to go to op-b only", func() bool { return callsGoTo(l, 10, "op-b") })

	// op-b's pod is replaced by op-c at a new address; op-a stays a
	// standby. The name now resolves to op-a and op-c; the link must
	// find op-c on its own.
	b.stop()
	c := startOperator(t, "op-c", srvSrc, net.JoinHostPort("127.0.0.3", port))
	dns.set(serverName, "127.0.0.1", "127.0.0.3")
	replaced := time.Now()
	waitFor(t, reconnectBound, "calls to go to op-c", func() bool { return callsGoTo(l, 5, "op-c") })
	t.Logf("Replica replaced at a new address: calls reach it %v after the DNS change", time.Since(replaced))
	if n := c.calls.Load(); n == 0 {
		t.Error("op-c got no calls")
	}
}

// TestDNSFailure: a name that does not resolve keeps the link down with
// the DNS error, and the link comes up once it resolves.
func TestDNSFailure(t *testing.T) {
	p := newPKI(t, "ebb-ca")
	srvSrc, _ := source(t, tlsfilestest.Files(p.server, p.ca.PEM))
	cliSrc, _ := source(t, tlsfilestest.Files(p.client, p.ca.PEM))
	op := startOperator(t, "op-0", srvSrc, "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(op.addr)
	dns := &fakeDNS{}
	l := startLink(t, Config{Targets: []string{net.JoinHostPort(serverName, port)}, TLS: cliSrc, lookupHost: dns.lookup})

	const want = "operator link down: cannot resolve the operator's address: resolving " + serverName + ": lookup " + serverName + ": no such host"
	waitFor(t, detectBound, "the DNS error", func() bool {
		err := l.Check(context.Background())
		return err != nil && strings.Contains(err.Error(), want)
	})
	start := time.Now()
	_, err := l.call()
	if d := time.Since(start); d > failFastBound || !strings.Contains(err.Error(), want) {
		t.Errorf("GetMetrics() = %v after %v, want %q at once", err, d, want)
	}

	// The name appears (an operator pod became ready); the link retries
	// the resolution on its own.
	dns.set(serverName, "127.0.0.1")
	took := l.waitUp(t, reconnectBound)
	t.Logf("Name resolvable: link up after %v", took)
	if _, err := l.call(); err != nil {
		t.Fatalf("GetMetrics() error = %v", err)
	}
}

// TestLocalhost uses the real resolver.
func TestLocalhost(t *testing.T) {
	p := newPKI(t, "ebb-ca")
	srvSrc, _ := source(t, tlsfilestest.Files(p.server, p.ca.PEM))
	cliSrc, _ := source(t, tlsfilestest.Files(p.client, p.ca.PEM))
	op := startOperator(t, "op-0", srvSrc, "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(op.addr)
	l := startLink(t, Config{Targets: []string{net.JoinHostPort("localhost", port)}, ServerName: serverName, TLS: cliSrc})
	l.waitUp(t, reconnectBound)
	if _, err := l.call(); err != nil {
		t.Fatalf("GetMetrics() error = %v", err)
	}
}
