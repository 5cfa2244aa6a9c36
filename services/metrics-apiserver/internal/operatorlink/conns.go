package operatorlink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/credentials"
)

// conns dials the operator's addresses for gRPC and watches the
// connections it makes: it spaces the dials to each address, records why
// each address last failed (dial, TLS handshake or a broken connection), and
// knows which connections are established, so the link can explain why it
// is down and close a connection whose peer stopped answering.
//
// gRPC calls dial through a grpc.WithContextDialer and hands the connection
// to the credentials returned by wrap, whose handshake registers it.
type conns struct {
	dialer          net.Dialer
	minDialInterval time.Duration
	now             func() time.Time

	mu sync.Mutex
	// nextDial is the earliest start of the next dial, per address.
	nextDial map[string]time.Time
	// lastErr is why the address last failed, cleared by a handshake that
	// succeeds.
	lastErr map[string]error
	// open holds the established (handshake done) connections.
	open map[*trackedConn]struct{}

	// dials counts dial attempts, for tests.
	dials atomic.Int64
}

func newConns(minDialInterval time.Duration) *conns {
	return &conns{
		minDialInterval: minDialInterval,
		now:             time.Now,
		nextDial:        map[string]time.Time{},
		lastErr:         map[string]error{},
		open:            map[*trackedConn]struct{}{},
	}
}

// dial opens a TCP connection to addr. Dials to one address start at least
// minDialInterval apart: gRPC backs off after failed attempts, but
// reconnects at once after an established connection closes, which would
// spin if the operator (or something in between) accepted connections and
// closed them right away. The connection is returned as is, a
// *net.TCPConn, so that gRPC can set TCP_USER_TIMEOUT on it.
func (c *conns) dial(ctx context.Context, addr string) (net.Conn, error) {
	c.mu.Lock()
	now := c.now()
	start := now
	if next := c.nextDial[addr]; next.After(now) {
		start = next
	}
	c.nextDial[addr] = start.Add(c.minDialInterval)
	c.mu.Unlock()
	if wait := start.Sub(now); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	c.dials.Add(1)
	conn, err := c.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		c.failed(addr, err)
		return nil, err
	}
	return conn, nil
}

// failed records err as the latest reason addr failed.
func (c *conns) failed(addr string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastErr[addr] = err
}

// established returns how many connections completed their handshake and
// are still open.
func (c *conns) established() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.open)
}

// errors returns why each of addrs last failed, as "addr: error" in the
// order of addrs; addresses without a recorded failure are left out.
func (c *conns) errors(addrs []string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, a := range addrs {
		if err := c.lastErr[a]; err != nil {
			out = append(out, a+": "+err.Error())
		}
	}
	return out
}

// forget drops what is known about addresses not in addrs, so that the
// state of a replica that went away does not linger.
func (c *conns) forget(addrs []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for a := range c.lastErr {
		if !slices.Contains(addrs, a) {
			delete(c.lastErr, a)
		}
	}
	for a := range c.nextDial {
		if !slices.Contains(addrs, a) {
			delete(c.nextDial, a)
		}
	}
}

// closeTo closes every established connection to addr, with err as the
// reason recorded for it, and returns how many it closed. It closes the TCP
// connection under TLS, so a peer that stopped reading cannot hold it up.
func (c *conns) closeTo(addr string, reason error) int {
	c.mu.Lock()
	var victims []*trackedConn
	for tc := range c.open {
		if tc.addr == addr {
			victims = append(victims, tc)
		}
	}
	if len(victims) > 0 {
		c.lastErr[addr] = reason
	}
	c.mu.Unlock()
	for _, tc := range victims {
		tc.closedLocally.Store(true)
		_ = tc.raw.Close()
	}
	return len(victims)
}

// wrap returns creds that register every connection whose handshake
// succeeds, and record every handshake that fails.
func (c *conns) wrap(creds credentials.TransportCredentials) credentials.TransportCredentials {
	return &trackingCreds{TransportCredentials: creds, conns: c}
}

type trackingCreds struct {
	credentials.TransportCredentials
	conns *conns
}

func (t *trackingCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	addr := raw.RemoteAddr().String()
	conn, info, err := t.TransportCredentials.ClientHandshake(ctx, authority, raw)
	if err != nil {
		t.conns.failed(addr, fmt.Errorf("TLS handshake: %w", err))
		return nil, nil, err
	}
	tc := &trackedConn{Conn: conn, raw: raw, addr: addr, conns: t.conns}
	t.conns.mu.Lock()
	t.conns.open[tc] = struct{}{}
	delete(t.conns.lastErr, addr)
	t.conns.mu.Unlock()
	return tc, info, nil
}

func (t *trackingCreds) Clone() credentials.TransportCredentials {
	return &trackingCreds{TransportCredentials: t.TransportCredentials.Clone(), conns: t.conns}
}

// trackedConn is an established connection. A read error that the link did
// not cause is recorded as the reason the address failed: with TLS 1.3 the
// operator refuses a client certificate after the client's handshake is
// done, so that refusal only shows up here.
type trackedConn struct {
	net.Conn
	raw   net.Conn
	addr  string
	conns *conns

	closedLocally atomic.Bool
	readOK        atomic.Bool
	closeOnce     sync.Once
}

func (tc *trackedConn) Read(b []byte) (int, error) {
	n, err := tc.Conn.Read(b)
	if n > 0 {
		tc.readOK.Store(true)
	}
	if err != nil && !tc.closedLocally.Load() && !errors.Is(err, net.ErrClosed) {
		var reason error
		switch {
		case !tc.readOK.Load():
			reason = fmt.Errorf("refused after the TLS handshake: %w", err)
		case errors.Is(err, io.EOF):
			reason = errors.New("the operator closed the connection")
		default:
			reason = fmt.Errorf("connection broke: %w", err)
		}
		tc.conns.failed(tc.addr, reason)
	}
	return n, err
}

func (tc *trackedConn) Close() error {
	tc.closedLocally.Store(true)
	tc.closeOnce.Do(func() {
		tc.conns.mu.Lock()
		delete(tc.conns.open, tc)
		tc.conns.mu.Unlock()
	})
	return tc.Conn.Close()
}

// describeErrors joins errors returned by conns.errors.
func describeErrors(errs []string) string {
	return strings.Join(errs, "; ")
}
