package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"k8s.io/klog/v2"
)

// Service names with a fixed meaning.
const (
	// OverallService is the status kubelet asks for when a probe names no
	// service: every readiness and liveness check passes.
	OverallService = ""
	// ReadinessService is the same as OverallService, by name.
	ReadinessService = "readiness"
	// LivenessService is SERVING when every liveness check passes.
	LivenessService = "liveness"
)

// Defaults for NewServer.
const (
	DefaultInterval     = time.Second
	DefaultCheckTimeout = 2 * time.Second
)

// shutdownGrace bounds how long Serve waits for open Watch streams.
const shutdownGrace = time.Second

// Checker reports whether one aspect of the service is healthy. It must
// return promptly when ctx is done; one that does not is counted as failing
// and is not started again until it returns.
type Checker func(ctx context.Context) error

// Option configures a Server.
type Option func(*Server)

// WithInterval sets how often the checks run.
func WithInterval(d time.Duration) Option {
	return func(s *Server) { s.interval = d }
}

// WithCheckTimeout sets how long one run of a check may take before it
// counts as failing.
func WithCheckTimeout(d time.Duration) Option {
	return func(s *Server) { s.timeout = d }
}

type check struct {
	service  string // readiness: the service name; liveness: a name for logs
	liveness bool
	// own: a status of its own only, left out of the overall status.
	own bool
	fn  Checker

	// Guarded by Server.mu.
	running bool
	checked bool
	err     error
}

// Server serves grpc.health.v1.Health from registered checks.
type Server struct {
	interval time.Duration
	timeout  time.Duration
	hs       *grpchealth.Server

	mu     sync.Mutex
	checks []*check
	status map[string]healthpb.HealthCheckResponse_ServingStatus
	logger klog.Logger
}

// NewServer returns a Server with no checks.
func NewServer(opts ...Option) *Server {
	s := &Server{
		interval: DefaultInterval,
		timeout:  DefaultCheckTimeout,
		hs:       grpchealth.NewServer(),
		status:   map[string]healthpb.HealthCheckResponse_ServingStatus{},
		logger:   klog.Background(),
	}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// AddReadiness registers a readiness check under service. The service
// names "" and "readiness" add the check to the overall status only; any
// other name also gets a status of its own. "liveness" is reserved and
// panics.
func (s *Server) AddReadiness(service string, fn Checker) {
	if service == LivenessService {
		panic("health: AddReadiness: the service name \"liveness\" is reserved for liveness checks")
	}
	if service == ReadinessService {
		service = OverallService
	}
	s.add(&check{service: service, fn: fn})
}

// AddLiveness registers a liveness check; name identifies it in logs.
func (s *Server) AddLiveness(name string, fn Checker) {
	s.add(&check{service: name, liveness: true, fn: fn})
}

// AddStatus registers a check that gives service a status of its own and
// leaves the overall status alone: for a dependency that clients and
// operators watch but that should not take the pod out of its Service.
// The reserved names "", "readiness" and "liveness" panic.
func (s *Server) AddStatus(service string, fn Checker) {
	switch service {
	case OverallService, ReadinessService, LivenessService:
		panic(fmt.Sprintf("health: AddStatus: the service name %q is reserved", service))
	}
	s.add(&check{service: service, own: true, fn: fn})
}

func (s *Server) add(c *check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks = append(s.checks, c)
}

// ListenAndServe listens on addr (host:port) and calls Serve.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	return s.Serve(ctx, lis)
}

// Serve runs the checks and serves plaintext gRPC health on lis until ctx
// is done; then it reports NOT_SERVING everywhere, stops the server and
// returns nil. It returns early with an error if serving fails. Call it
// once.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	logger := klog.LoggerWithName(klog.FromContext(ctx), "health")
	s.mu.Lock()
	s.logger = logger
	s.recompute()
	s.mu.Unlock()

	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, s.hs)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	logger.V(2).Info("Serving gRPC health", "addr", lis.Addr().String())

	ticker := time.NewTicker(s.interval)
	defer ticker.Stop()
	s.runChecks(ctx)
	for {
		select {
		case <-ctx.Done():
			s.hs.Shutdown()
			stopped := make(chan struct{})
			go func() {
				gs.GracefulStop()
				close(stopped)
			}()
			select {
			case <-stopped:
			case <-time.After(shutdownGrace):
				// Watch streams stay open until their clients leave.
				gs.Stop()
				<-stopped
			}
			<-served
			return nil
		case err := <-served:
			s.hs.Shutdown()
			return fmt.Errorf("health: serving: %w", err)
		case <-ticker.C:
			s.runChecks(ctx)
		}
	}
}

// runChecks starts every check that is not still running.
func (s *Server) runChecks(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.checks {
		if c.running {
			continue
		}
		c.running = true
		go s.run(ctx, c)
	}
}

func (s *Server) run(ctx context.Context, c *check) {
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	result := make(chan error, 1)
	go func() { result <- call(cctx, c.fn) }()
	select {
	case err := <-result:
		s.finish(c, err, true)
	case <-cctx.Done():
		s.finish(c, fmt.Errorf("check did not return within %v", s.timeout), false)
		// Keep it marked running until it returns, so a hung check is
		// not started again and again.
		<-result
		s.mu.Lock()
		c.running = false
		s.mu.Unlock()
	}
}

// call runs fn, turning a panic into an error.
func call(ctx context.Context, fn Checker) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("check panicked: %v", r)
		}
	}()
	return fn(ctx)
}

func (s *Server) finish(c *check, err error, returned bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kind := "readiness"
	switch {
	case c.liveness:
		kind = "liveness"
	case c.own:
		kind = "status"
	}
	wasFailing := c.checked && c.err != nil
	switch {
	case err != nil && !wasFailing:
		s.logger.Info("Health check failing", "check", c.service, "kind", kind, "err", err)
	case err == nil && wasFailing:
		s.logger.Info("Health check passing again", "check", c.service, "kind", kind)
	}
	c.err, c.checked = err, true
	if returned {
		c.running = false
	}
	s.recompute()
}

// recompute derives every status from the latest results and publishes the
// ones that changed. Callers hold s.mu.
func (s *Server) recompute() {
	next := map[string]healthpb.HealthCheckResponse_ServingStatus{}
	failing := map[string][]error{}
	fail := func(service string, err error) {
		failing[service] = append(failing[service], err)
	}
	for _, c := range s.checks {
		if c.liveness {
			// Until its first result, a liveness check counts as passing:
			// the process has only just started.
			if c.checked && c.err != nil {
				err := fmt.Errorf("liveness check %q: %w", c.service, c.err)
				fail(LivenessService, err)
				fail(OverallService, err)
			}
			continue
		}
		next[c.service] = healthpb.HealthCheckResponse_SERVING
		err := c.err
		if !c.checked {
			err = errors.New("not checked yet")
		}
		if err != nil {
			err = fmt.Errorf("readiness check %q: %w", c.service, err)
			fail(c.service, err)
			if !c.own {
				fail(OverallService, err)
			}
		}
	}
	next[OverallService] = healthpb.HealthCheckResponse_SERVING
	next[LivenessService] = healthpb.HealthCheckResponse_SERVING
	for service := range failing {
		next[service] = healthpb.HealthCheckResponse_NOT_SERVING
	}
	next[ReadinessService] = next[OverallService]
	failing[ReadinessService] = failing[OverallService]

	names := make([]string, 0, len(next))
	for name := range next {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		st := next[name]
		old, known := s.status[name]
		if known && old == st {
			continue
		}
		s.status[name] = st
		s.hs.SetServingStatus(name, st)
		switch {
		case !known:
			s.logger.V(2).Info("Health status initialised", "service", name, "status", st.String())
		case st == healthpb.HealthCheckResponse_SERVING:
			s.logger.V(1).Info("Health status changed", "service", name, "status", st.String())
		default:
			s.logger.Info("Health status changed", "service", name, "status", st.String(), "err", errors.Join(failing[name]...))
		}
	}
}
