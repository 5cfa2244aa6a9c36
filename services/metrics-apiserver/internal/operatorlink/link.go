package operatorlink

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	// Registers gRPC's client-side health checking, which the service
	// config below turns on.
	_ "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"

	"github.com/ebb-autoscaler/ebb/pkg/mtls"
	"github.com/ebb-autoscaler/ebb/pkg/rpc/metricsv1"
	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles"
)

// HealthService is the service name whose health the link checks on every
// operator replica: only a replica that reports it SERVING (the leader,
// once its caches are synced) receives calls.
const HealthService = "ebb.metrics.v1.MetricsService"

// Defaults of Config.
const (
	DefaultCallTimeout   = 10 * time.Second
	DefaultProbeInterval = time.Second
	DefaultProbeTimeout  = 1500 * time.Millisecond
)

// Connection management. See doc.go for why each value is what it is.
const (
	// KeepaliveTime is how long a connection may be silent before the link
	// pings the operator; 10 s is the shortest gRPC allows (it raises
	// anything shorter to 10 s). The operator's keepalive enforcement
	// policy must allow it: MinTime at most KeepaliveTime and
	// PermitWithoutStream true.
	KeepaliveTime = 10 * time.Second
	// KeepaliveTimeout is how long the link waits for a ping's answer
	// before it closes the connection. gRPC also sets it as the socket's
	// TCP_USER_TIMEOUT, so data left unacknowledged that long closes the
	// connection too.
	KeepaliveTimeout = 3 * time.Second

	connectBaseDelay  = 500 * time.Millisecond
	connectMaxDelay   = 2 * time.Second
	minConnectTimeout = 2 * time.Second
	minDialInterval   = 500 * time.Millisecond

	// readyWait is how long a call waits for a link that is reconnecting
	// (as after the operator closes a connection at its maximum age)
	// before it fails.
	readyWait = 500 * time.Millisecond
	// downGrace is how long the link may be reconnecting before it counts
	// as down, so that a routine reconnection is not logged and reported
	// as an outage. A failed connection attempt counts at once, and so
	// does a connection closed for an unanswered probe.
	downGrace = time.Second

	maxAttempts    = 4
	retryBaseDelay = 100 * time.Millisecond
	retryMaxDelay  = time.Second
)

// serviceConfig balances calls round robin over every resolved operator
// address and sends them only to those that report HealthService SERVING.
const serviceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "healthCheckConfig": {"serviceName": "` + HealthService + `"}
}`

// Config configures a Link.
type Config struct {
	// Targets are the operator's addresses, each host:port. A host that is
	// a name is resolved to all its addresses (a headless Service's name
	// gives every operator pod), again every 30 s and, at most once a
	// second, whenever a connection fails. Required.
	Targets []string
	// ServerName is the name the operator's certificate must be valid for,
	// such as ebb-operator.ebb-system.svc. It defaults to the host of the
	// single target when that is a name; it is required otherwise.
	ServerName string
	// TLS holds the client certificate, its key and the CA that issued the
	// operator's certificate. The caller runs it (tlsfiles.Source.Run), so
	// that renewed files apply to the next connection. Required.
	TLS *tlsfiles.Source
	// CallTimeout bounds one GetMetrics call, retries included; the
	// deadline of the caller's context applies when it is sooner. Zero
	// means DefaultCallTimeout.
	CallTimeout time.Duration
	// ProbeInterval is how often the link sends a health probe on its
	// connection while it is up; a probe that gets no answer within
	// ProbeTimeout closes the connection it was sent on, so an operator
	// that vanished without closing its connections is found within
	// ProbeInterval+ProbeTimeout, not only by keepalive (KeepaliveTime +
	// KeepaliveTimeout). Zero means DefaultProbeInterval and
	// DefaultProbeTimeout; a negative ProbeInterval turns probing off.
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration

	// lookupHost replaces net.DefaultResolver.LookupHost, for tests.
	lookupHost lookupFunc
}

// Link is the metrics-apiserver's gRPC client to the operator's
// MetricsService. Its methods are safe for concurrent use.
type Link struct {
	cfg     Config
	logger  klog.Logger
	conn    *grpc.ClientConn
	client  metricsv1.MetricsServiceClient
	health  healthpb.HealthClient
	conns   *conns
	addrs   addrState
	metrics *metrics

	// probeKilledAt is when a probe last closed a connection (Unix
	// nanoseconds): reconnecting right after that is no routine
	// reconnection, and counts as down at once.
	probeKilledAt atomic.Int64

	started   atomic.Bool
	running   atomic.Bool
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	// mu guards the declared state of the link.
	mu    sync.Mutex
	known bool // a state was declared
	up    bool
	since time.Time
}

// New checks cfg and returns a Link. It does not connect: Run does.
func New(cfg Config, logger klog.Logger) (*Link, error) {
	targets, err := parseTargets(cfg.Targets)
	if err != nil {
		return nil, fmt.Errorf("operatorlink: %w", err)
	}
	if cfg.TLS == nil {
		return nil, errors.New("operatorlink: no TLS source")
	}
	if cfg.ServerName == "" {
		if len(targets) != 1 || targets[0].ip {
			return nil, errors.New("operatorlink: a server name is required unless the operator target is a single host name")
		}
		cfg.ServerName = targets[0].host
	}
	switch {
	case cfg.CallTimeout < 0:
		return nil, fmt.Errorf("operatorlink: negative call timeout %v", cfg.CallTimeout)
	case cfg.CallTimeout == 0:
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	switch {
	case cfg.ProbeTimeout < 0:
		return nil, fmt.Errorf("operatorlink: negative probe timeout %v", cfg.ProbeTimeout)
	case cfg.ProbeTimeout == 0:
		cfg.ProbeTimeout = DefaultProbeTimeout
	}
	if cfg.lookupHost == nil {
		cfg.lookupHost = net.DefaultResolver.LookupHost
	}

	l := &Link{
		cfg:     cfg,
		logger:  logger,
		conns:   newConns(minDialInterval),
		metrics: newMetrics(),
	}
	rb := &resolverBuilder{
		targets: targets,
		lookup:  cfg.lookupHost,
		logger:  logger,
		observe: func(addrs []string, err error) {
			l.addrs.set(addrs, err)
			if len(addrs) > 0 {
				l.conns.forget(addrs)
			}
		},
	}
	conn, err := grpc.NewClient(resolverScheme+":///"+cfg.ServerName,
		grpc.WithResolvers(rb),
		grpc.WithTransportCredentials(l.conns.wrap(mtls.ClientCredentials(cfg.TLS, cfg.ServerName))),
		grpc.WithContextDialer(l.conns.dial),
		// The service config is ebb's, never the resolver's.
		grpc.WithDisableServiceConfig(),
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                KeepaliveTime,
			Timeout:             KeepaliveTimeout,
			PermitWithoutStream: true,
		}),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  connectBaseDelay,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   connectMaxDelay,
			},
			MinConnectTimeout: minConnectTimeout,
		}),
		// Never go idle: an idle link would look down, and would connect
		// only when a call comes.
		grpc.WithIdleTimeout(0),
	)
	if err != nil {
		return nil, fmt.Errorf("operatorlink: %w", err)
	}
	l.conn = conn
	l.client = metricsv1.NewMetricsServiceClient(conn)
	l.health = healthpb.NewHealthClient(conn)
	return l, nil
}

// Run connects to the operator and keeps the link's state current until ctx
// is done; then it closes the link and returns nil. Check and GetMetrics
// report the link down until Run runs. Run may be called once.
func (l *Link) Run(ctx context.Context) error {
	if !l.started.CompareAndSwap(false, true) {
		return errors.New("operatorlink: Run called twice")
	}
	if l.closed.Load() {
		return errors.New("operatorlink: the link is closed")
	}
	l.logger.Info("Starting the operator link", "targets", l.cfg.Targets, "serverName", l.cfg.ServerName)
	l.running.Store(true)
	defer func() {
		_ = l.Close()
		l.metrics.up.Set(0)
		l.logger.Info("Stopped the operator link")
	}()

	l.conn.Connect()
	var wg sync.WaitGroup
	defer wg.Wait()
	states := make(chan connectivity.State)
	wg.Go(func() { l.watch(ctx, states) })
	if l.cfg.ProbeInterval > 0 {
		wg.Go(func() { l.probeLoop(ctx) })
	}

	grace := time.NewTimer(downGrace)
	grace.Stop()
	defer grace.Stop()
	var graceC <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-states:
			l.logger.V(4).Info("Operator link connectivity", "state", s.String())
			switch s {
			case connectivity.Ready:
				grace.Stop()
				graceC = nil
				l.declare(true)
			case connectivity.TransientFailure, connectivity.Shutdown:
				grace.Stop()
				graceC = nil
				l.declare(false)
			default: // Idle, Connecting: reconnecting.
				if time.Since(time.Unix(0, l.probeKilledAt.Load())) < 2*downGrace {
					grace.Stop()
					graceC = nil
					l.declare(false)
				} else if l.isUp() && graceC == nil {
					grace.Reset(downGrace)
					graceC = grace.C
				}
			}
		case <-graceC:
			graceC = nil
			if l.conn.GetState() != connectivity.Ready {
				l.declare(false)
			}
		}
	}
}

// watch sends the connectivity state of the link's ClientConn to out
// whenever it changes, until ctx is done.
func (l *Link) watch(ctx context.Context, out chan<- connectivity.State) {
	s := l.conn.GetState()
	for {
		select {
		case out <- s:
		case <-ctx.Done():
			return
		}
		if !l.conn.WaitForStateChange(ctx, s) {
			return
		}
		s = l.conn.GetState()
	}
}

func (l *Link) isUp() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.up
}

// isDown reports whether the link was declared down (and not merely not up
// yet, connecting for the first time).
func (l *Link) isDown() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.known && !l.up
}

// declare sets the state of the link, and logs it and updates the gauge
// when it changes.
func (l *Link) declare(up bool) {
	l.mu.Lock()
	if l.known && l.up == up {
		l.mu.Unlock()
		return
	}
	wasKnown, last := l.known, l.since
	l.known, l.up, l.since = true, up, time.Now()
	l.mu.Unlock()

	addrs, _ := l.addrs.get()
	if up {
		l.metrics.up.Set(1)
		kv := []any{"addresses", addrs}
		if wasKnown {
			kv = append(kv, "downFor", time.Since(last).Round(time.Millisecond))
		}
		l.logger.Info("Operator link up", kv...)
		return
	}
	l.metrics.up.Set(0)
	kv := []any{"addresses", addrs}
	if wasKnown {
		kv = append(kv, "upFor", time.Since(last).Round(time.Millisecond))
	}
	l.logger.Error(errors.New(l.reason()), "Operator link down", kv...)
}

// probeLoop sends a health probe every ProbeInterval while the link is
// up, until ctx is done.
func (l *Link) probeLoop(ctx context.Context) {
	t := time.NewTicker(l.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if l.conn.GetState() == connectivity.Ready {
			l.probe(ctx)
		}
	}
}

// probe sends one health probe. If it gets no answer in time, the
// replica it went to is not reading its connection (its network is gone,
// or it is frozen) while the connection looks open; the probe closes the
// connection so that gRPC stops sending calls there and reconnects.
func (l *Link) probe(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, l.cfg.ProbeTimeout)
	defer cancel()
	var p peer.Peer
	_, err := l.health.Check(pctx, &healthpb.HealthCheckRequest{Service: HealthService}, grpc.Peer(&p))
	if status.Code(err) != codes.DeadlineExceeded || ctx.Err() != nil {
		// Any answer, even NOT_SERVING, shows the replica is there;
		// health checking moves calls away from one that is not serving.
		return
	}
	if p.Addr == nil {
		// The probe never reached a connection.
		l.logger.V(2).Info("A health probe was not sent in time", "timeout", l.cfg.ProbeTimeout)
		return
	}
	addr := p.Addr.String()
	l.metrics.probeKills.Inc()
	l.probeKilledAt.Store(time.Now().UnixNano())
	n := l.conns.closeTo(addr, fmt.Errorf("no answer to a health probe within %v", l.cfg.ProbeTimeout))
	l.logger.Info("The operator did not answer a health probe in time, closing the connection",
		"addr", addr, "timeout", l.cfg.ProbeTimeout, "connections", n)
}

// Check reports whether the link is up: connected to an operator replica
// that reports HealthService SERVING. It returns nil if so, else an error
// that says why, which GetMetrics would fail with too. It is a
// health.Checker; it answers from the link's state, without a call.
func (l *Link) Check(context.Context) error {
	if l.running.Load() && !l.closed.Load() && l.isUp() {
		return nil
	}
	return &LinkDownError{Reason: l.reason()}
}

// reason says why the link is down.
func (l *Link) reason() string {
	if l.closed.Load() {
		return "the link is closed"
	}
	if !l.running.Load() {
		return "the link is not running"
	}
	addrs, resolveErr := l.addrs.get()
	if len(addrs) == 0 {
		if resolveErr != nil {
			return "cannot resolve the operator's address: " + resolveErr.Error()
		}
		return "resolving the operator's address"
	}
	var msg string
	errs := l.conns.errors(addrs)
	switch n := l.conns.established(); {
	case n > 0:
		msg = fmt.Sprintf("no operator replica is serving %s (connected to %d, none reports SERVING: standbys, or not ready)", HealthService, n)
		if len(errs) > 0 {
			msg += "; unreachable: " + describeErrors(errs)
		}
	case len(errs) > 0:
		msg = "cannot connect to any operator replica: " + describeErrors(errs)
	default:
		msg = "connecting to the operator at " + strings.Join(addrs, ", ") + ", no answer yet"
	}
	if resolveErr != nil {
		// The addresses are those of the last resolution that worked.
		msg += "; " + resolveErr.Error()
	}
	return msg
}

// ErrLinkDown matches (errors.Is) the errors of GetMetrics calls that were
// refused without calling the operator because the link is down, and the
// errors of Check.
var ErrLinkDown = errors.New("operator link down")

// LinkDownError is the error of a GetMetrics call refused because the
// link is down, and of Check. It is a gRPC status error with code
// UNAVAILABLE (status.Code and status.FromError see it) and matches
// ErrLinkDown.
type LinkDownError struct {
	// Reason says why the link is down.
	Reason string
}

func (e *LinkDownError) Error() string { return ErrLinkDown.Error() + ": " + e.Reason }

// GRPCStatus returns the error as a status with code UNAVAILABLE.
func (e *LinkDownError) GRPCStatus() *status.Status {
	return status.New(codes.Unavailable, e.Error())
}

// Is reports whether target is ErrLinkDown.
func (e *LinkDownError) Is(target error) bool { return target == ErrLinkDown }

// GetMetrics calls the operator's MetricsService.GetMetrics.
//
// The call's deadline is the deadline of ctx or CallTimeout from now,
// whichever is sooner. An UNAVAILABLE answer is retried, with exponential
// backoff from 100 ms to 1 s, up to four attempts, while the deadline
// allows; no other code is retried. When the link is down the call fails
// at once with a *LinkDownError (code UNAVAILABLE); when it is connecting
// or reconnecting the call waits for it 500 ms at most. The link's state
// is what decides, so a dead link never makes a caller wait for its
// deadline.
//
// Errors are gRPC status errors: the operator's, or UNAVAILABLE for the
// link, or DEADLINE_EXCEEDED and CANCELED for ctx.
func (l *Link) GetMetrics(ctx context.Context, req *metricsv1.GetMetricsRequest) (*metricsv1.GetMetricsResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.CallTimeout)
	defer cancel()
	delay := retryBaseDelay
	for attempt := 1; ; attempt++ {
		if err := l.awaitReady(ctx); err != nil {
			return nil, err
		}
		start := time.Now()
		resp, err := l.client.GetMetrics(ctx, req)
		code := status.Code(err)
		l.metrics.callDuration.WithLabelValues(code.String()).Observe(time.Since(start).Seconds())
		if err == nil {
			return resp, nil
		}
		if code != codes.Unavailable || attempt == maxAttempts || ctx.Err() != nil {
			return nil, err
		}
		// Full jitter over the upper half, so that callers that failed
		// together do not come back together.
		wait := delay/2 + rand.N(delay/2+1)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= wait {
			return nil, err
		}
		l.logger.V(4).Info("Operator answered UNAVAILABLE, retrying", "attempt", attempt, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		l.metrics.retries.Inc()
		delay = min(2*delay, retryMaxDelay)
	}
}

// awaitReady returns nil once the link is ready for a call: at once when it
// is, within readyWait when it is connecting or reconnecting, never when it
// is down.
func (l *Link) awaitReady(ctx context.Context) error {
	s := l.conn.GetState()
	if s == connectivity.Ready && l.running.Load() {
		return nil
	}
	if !l.running.Load() || l.closed.Load() || l.isDown() {
		return l.failFast()
	}
	wctx, cancel := context.WithTimeout(ctx, readyWait)
	defer cancel()
	for s != connectivity.Ready {
		if s == connectivity.TransientFailure || s == connectivity.Shutdown {
			return l.failFast()
		}
		if !l.conn.WaitForStateChange(wctx, s) {
			if err := ctx.Err(); err != nil {
				return status.FromContextError(err).Err()
			}
			return l.failFast()
		}
		s = l.conn.GetState()
	}
	return nil
}

func (l *Link) failFast() error {
	l.metrics.failedFast.Inc()
	return &LinkDownError{Reason: l.reason()}
}

// Close closes the link's connections. Run calls it when it returns; call
// it to release a Link that was never run. Calls fail afterwards.
func (l *Link) Close() error {
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		l.closeErr = l.conn.Close()
	})
	return l.closeErr
}
