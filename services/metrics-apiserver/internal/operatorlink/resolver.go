package operatorlink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc/resolver"
	"k8s.io/klog/v2"
)

// resolverScheme is the scheme of the link's gRPC target. The resolver is
// registered on the link's own ClientConn only (grpc.WithResolvers), not
// globally.
const resolverScheme = "ebb-operator-link"

const (
	// resolveInterval is how often host names are resolved again when
	// nothing asks sooner, to pick up operator replicas that were added.
	resolveInterval = 30 * time.Second
	// minResolveInterval spaces the resolutions gRPC asks for, which it
	// does on every failed connection attempt and every lost connection.
	// gRPC's own dns resolver waits 30 s between them; a replica replaced
	// by a new pod with a new address must be found within seconds.
	minResolveInterval = time.Second
	// lookupTimeout bounds one DNS lookup.
	lookupTimeout = 5 * time.Second
)

// lookupFunc resolves a host name to IP addresses, as net.Resolver.LookupHost.
type lookupFunc func(ctx context.Context, host string) ([]string, error)

// addrResolver turns the link's targets into the list of operator
// addresses: IP targets as they are, host names resolved to all their
// addresses (a headless Service's name gives every ready operator pod).
type addrResolver struct {
	targets []hostPort
	lookup  lookupFunc
	logger  klog.Logger
	cc      resolver.ClientConn
	// observe is told of every resolution: the addresses (nil if none
	// could be found) and the error, if any.
	observe func(addrs []string, err error)

	now    chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

type hostPort struct {
	host, port string
	ip         bool
}

// parseTargets checks that every target is host:port with a numeric port.
func parseTargets(targets []string) ([]hostPort, error) {
	if len(targets) == 0 {
		return nil, errors.New("no operator target given")
	}
	var out []hostPort
	for _, t := range targets {
		host, port, err := net.SplitHostPort(t)
		if err != nil {
			return nil, fmt.Errorf("operator target %q: %w", t, err)
		}
		if host == "" {
			return nil, fmt.Errorf("operator target %q: no host", t)
		}
		if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
			return nil, fmt.Errorf("operator target %q: the port must be a number from 1 to 65535", t)
		}
		_, ipErr := netip.ParseAddr(host)
		out = append(out, hostPort{host: host, port: port, ip: ipErr == nil})
	}
	return out, nil
}

// resolverBuilder builds the resolver of one link.
type resolverBuilder struct {
	targets []hostPort
	lookup  lookupFunc
	logger  klog.Logger
	observe func(addrs []string, err error)
}

func (b *resolverBuilder) Scheme() string { return resolverScheme }

func (b *resolverBuilder) Build(_ resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &addrResolver{
		targets: b.targets,
		lookup:  b.lookup,
		logger:  b.logger,
		cc:      cc,
		observe: b.observe,
		now:     make(chan struct{}, 1),
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	go r.run(ctx)
	return r, nil
}

// ResolveNow asks for a resolution soon; see minResolveInterval.
func (r *addrResolver) ResolveNow(resolver.ResolveNowOptions) {
	select {
	case r.now <- struct{}{}:
	default:
	}
}

func (r *addrResolver) Close() {
	r.cancel()
	<-r.done
}

func (r *addrResolver) hasNames() bool {
	return slices.ContainsFunc(r.targets, func(t hostPort) bool { return !t.ip })
}

func (r *addrResolver) run(ctx context.Context) {
	defer close(r.done)
	var last []string
	lastFailed := false
	// resolve resolves the targets and reports whether all resolved.
	resolve := func() bool {
		addrs, err := r.resolve(ctx)
		if ctx.Err() != nil {
			return true
		}
		r.observe(addrs, err)
		if len(addrs) == 0 {
			// gRPC keeps using the addresses it has, if any.
			r.cc.ReportError(err)
			last = nil
			if !lastFailed {
				r.logger.Error(err, "Cannot resolve the operator's address")
			}
			lastFailed = true
			return false
		}
		if err != nil && !lastFailed {
			r.logger.Error(err, "Cannot resolve some of the operator's targets, using the others", "addresses", addrs)
		}
		lastFailed = err != nil
		if slices.Equal(addrs, last) {
			return err == nil
		}
		if r.hasNames() {
			r.logger.Info("Resolved the operator's addresses", "addresses", addrs)
		}
		last = addrs
		endpoints := make([]resolver.Endpoint, 0, len(addrs))
		for _, a := range addrs {
			endpoints = append(endpoints, resolver.Endpoint{Addresses: []resolver.Address{{Addr: a}}})
		}
		if uerr := r.cc.UpdateState(resolver.State{Endpoints: endpoints}); uerr != nil {
			r.logger.V(2).Info("gRPC did not accept the operator's addresses", "addresses", addrs, "err", uerr)
		}
		return err == nil
	}

	failed := !resolve()
	if !r.hasNames() {
		// A fixed list of IP addresses never changes.
		<-ctx.Done()
		return
	}
	tick := time.NewTicker(resolveInterval)
	defer tick.Stop()
	// retry fires minResolveInterval after a failed resolution: gRPC does
	// not ask again after an error, and a headless Service's name has no
	// address while no operator pod is ready.
	retry := time.NewTimer(minResolveInterval)
	defer retry.Stop()
	if !failed {
		retry.Stop()
	}
	lastAt := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-retry.C:
		case <-r.now:
			if wait := minResolveInterval - time.Since(lastAt); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
		}
		lastAt = time.Now()
		if resolve() {
			retry.Stop()
		} else {
			retry.Reset(minResolveInterval)
		}
	}
}

// resolve returns the sorted, de-duplicated addresses of all targets, and
// the errors of the targets that could not be resolved.
func (r *addrResolver) resolve(ctx context.Context) ([]string, error) {
	var addrs []string
	var errs []error
	for _, t := range r.targets {
		if t.ip {
			addrs = append(addrs, net.JoinHostPort(t.host, t.port))
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		ips, err := r.lookup(lctx, t.host)
		cancel()
		if err == nil && len(ips) == 0 {
			err = errors.New("no addresses")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("resolving %s: %w", t.host, err))
			continue
		}
		for _, ip := range ips {
			addrs = append(addrs, net.JoinHostPort(ip, t.port))
		}
	}
	slices.Sort(addrs)
	return slices.Compact(addrs), errors.Join(errs...)
}

// addrState is what the link knows of the latest resolution.
type addrState struct {
	mu    sync.Mutex
	addrs []string
	err   error
}

func (s *addrState) set(addrs []string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(addrs) > 0 {
		s.addrs = addrs
	}
	s.err = err
}

func (s *addrState) get() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs, s.err
}
