package health

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2/ktesting"
)

const (
	serving    = healthpb.HealthCheckResponse_SERVING
	notServing = healthpb.HealthCheckResponse_NOT_SERVING
)

// toggle is a check whose result the test sets.
type toggle struct{ failing atomic.Bool }

func (c *toggle) check(context.Context) error {
	if c.failing.Load() {
		return errors.New("toggled off")
	}
	return nil
}

// start serves s on a loopback port until the test ends and returns a
// health client.
func start(t *testing.T, s *Server) (healthpb.HealthClient, context.Context) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, lis) }()
	conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve() = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve() did not return after cancel")
		}
	})
	return healthpb.NewHealthClient(conn), ctx
}

func get(ctx context.Context, c healthpb.HealthClient, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN, err
	}
	return resp.GetStatus(), nil
}

// waitStatuses polls until every service has its wanted status.
func waitStatuses(ctx context.Context, t *testing.T, c healthpb.HealthClient, want map[string]healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mismatch := ""
		for service, w := range want {
			got, err := get(ctx, c, service)
			if err != nil {
				t.Fatalf("Check(%q): %v", service, err)
			}
			if got != w {
				mismatch = service + " is " + got.String() + ", want " + w.String()
				break
			}
		}
		if mismatch == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Timed out: %s", mismatch)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStatuses(t *testing.T) {
	cache, link, live := &toggle{}, &toggle{}, &toggle{}
	s := NewServer(WithInterval(10 * time.Millisecond))
	s.AddReadiness("caches", cache.check)
	s.AddReadiness("operator-link", link.check)
	s.AddLiveness("main-loop", live.check)
	c, ctx := start(t, s)

	// Steps run in order against one server.
	steps := []struct {
		name                    string
		cacheOK, linkOK, liveOK bool
		want                    map[string]healthpb.HealthCheckResponse_ServingStatus
	}{
		{"all pass", true, true, true, map[string]healthpb.HealthCheckResponse_ServingStatus{
			"": serving, "readiness": serving, "liveness": serving, "caches": serving, "operator-link": serving}},
		{"one readiness check fails", true, false, true, map[string]healthpb.HealthCheckResponse_ServingStatus{
			"": notServing, "readiness": notServing, "liveness": serving, "caches": serving, "operator-link": notServing}},
		{"recovers", true, true, true, map[string]healthpb.HealthCheckResponse_ServingStatus{
			"": serving, "readiness": serving, "liveness": serving, "operator-link": serving}},
		{"liveness fails", true, true, false, map[string]healthpb.HealthCheckResponse_ServingStatus{
			"": notServing, "readiness": notServing, "liveness": notServing, "caches": serving, "operator-link": serving}},
		{"everything fails", false, false, false, map[string]healthpb.HealthCheckResponse_ServingStatus{
			"": notServing, "liveness": notServing, "caches": notServing, "operator-link": notServing}},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			cache.failing.Store(!step.cacheOK)
			link.failing.Store(!step.linkOK)
			live.failing.Store(!step.liveOK)
			waitStatuses(ctx, t, c, step.want)
		})
	}

	if _, err := get(ctx, c, "no-such-service"); status.Code(err) != codes.NotFound {
		t.Errorf("Check(unknown service) error = %v, want NotFound", err)
	}
}

// TestOwnStatus checks that a status-only check reports under its own
// name and leaves the overall status alone.
func TestOwnStatus(t *testing.T) {
	cache, link := &toggle{}, &toggle{}
	s := NewServer(WithInterval(10 * time.Millisecond))
	s.AddReadiness("caches", cache.check)
	s.AddStatus("operator-link", link.check)
	c, ctx := start(t, s)

	link.failing.Store(true)
	waitStatuses(ctx, t, c, map[string]healthpb.HealthCheckResponse_ServingStatus{
		"": serving, "readiness": serving, "caches": serving, "operator-link": notServing})
	link.failing.Store(false)
	cache.failing.Store(true)
	waitStatuses(ctx, t, c, map[string]healthpb.HealthCheckResponse_ServingStatus{
		"": notServing, "readiness": notServing, "caches": notServing, "operator-link": serving})

	for _, name := range []string{"", "readiness", "liveness"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("AddStatus(%q) did not panic", name)
				}
			}()
			s.AddStatus(name, link.check)
		}()
	}
}

// TestHungCheck checks that checks that never return, or panic, count as
// failing within the timeout, that the endpoint keeps answering quickly,
// and that a hung check is not started again while it hangs.
func TestHungCheck(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	tests := map[string]struct {
		liveness bool
		hangs    bool
		check    func(calls *atomic.Int32) Checker
		want     map[string]healthpb.HealthCheckResponse_ServingStatus
	}{
		"readiness check ignores its context": {
			hangs: true,
			check: func(calls *atomic.Int32) Checker {
				return func(context.Context) error { calls.Add(1); <-release; return nil }
			},
			want: map[string]healthpb.HealthCheckResponse_ServingStatus{"": notServing, "stuck": notServing, "liveness": serving},
		},
		"liveness check ignores its context": {
			liveness: true,
			hangs:    true,
			check: func(calls *atomic.Int32) Checker {
				return func(context.Context) error { calls.Add(1); <-release; return nil }
			},
			want: map[string]healthpb.HealthCheckResponse_ServingStatus{"": notServing, "liveness": notServing},
		},
		"readiness check panics": {
			check: func(calls *atomic.Int32) Checker {
				return func(context.Context) error { calls.Add(1); panic("boom") }
			},
			want: map[string]healthpb.HealthCheckResponse_ServingStatus{"": notServing, "stuck": notServing},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var calls atomic.Int32
			s := NewServer(WithInterval(10*time.Millisecond), WithCheckTimeout(50*time.Millisecond))
			if tc.liveness {
				s.AddLiveness("stuck", tc.check(&calls))
			} else {
				s.AddReadiness("stuck", tc.check(&calls))
			}
			c, ctx := start(t, s)
			waitStatuses(ctx, t, c, tc.want)
			if tc.hangs {
				time.Sleep(100 * time.Millisecond)
				if n := calls.Load(); n != 1 {
					t.Errorf("The hung check was started %d times, want 1", n)
				}
			}
		})
	}
}

func TestWatch(t *testing.T) {
	ready := &toggle{}
	ready.failing.Store(true)
	s := NewServer(WithInterval(10 * time.Millisecond))
	s.AddReadiness("", ready.check)
	c, ctx := start(t, s)

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Watch(wctx, &healthpb.HealthCheckRequest{Service: ""})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []healthpb.HealthCheckResponse_ServingStatus{notServing, serving, notServing, serving} {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("Update %d: %v", i, err)
		}
		if resp.GetStatus() != want {
			t.Fatalf("Update %d: %v, want %v", i, resp.GetStatus(), want)
		}
		ready.failing.Store(want == serving)
	}
}

// TestShutdown checks that cancelling the context reports NOT_SERVING to
// watchers and makes Serve return even with a Watch stream open.
func TestShutdown(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := NewServer(WithInterval(10 * time.Millisecond))
	s.AddReadiness("", func(context.Context) error { return nil })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, lis) }()
	conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	c := healthpb.NewHealthClient(conn)
	waitStatuses(context.Background(), t, c, map[string]healthpb.HealthCheckResponse_ServingStatus{"": serving})
	stream, err := c.Watch(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := stream.Recv(); err != nil || resp.GetStatus() != serving {
		t.Fatalf("First update: %v, %v", resp, err)
	}

	cancel()
	if resp, err := stream.Recv(); err == nil && resp.GetStatus() != notServing {
		t.Errorf("Update after shutdown: %v, want NOT_SERVING or the end of the stream", resp.GetStatus())
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve() = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve() did not return after cancel")
	}
}

func TestHeartbeat(t *testing.T) {
	now := time.Unix(1000, 0)
	h := NewHeartbeat(time.Minute)
	h.now = func() time.Time { return now }
	h.Beat()
	tests := []struct {
		advance time.Duration
		beat    bool
		wantErr bool
	}{
		{advance: 30 * time.Second},
		{advance: 30 * time.Second},
		{advance: time.Second, wantErr: true},
		{beat: true},
		{advance: 59 * time.Second},
	}
	for i, tc := range tests {
		now = now.Add(tc.advance)
		if tc.beat {
			h.Beat()
		}
		if err := h.Check(context.Background()); (err != nil) != tc.wantErr {
			t.Errorf("Step %d: Check() = %v, want error %v", i, err, tc.wantErr)
		}
	}
}

func TestAddReadinessReservedName(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("AddReadiness(\"liveness\") did not panic")
		}
	}()
	NewServer().AddReadiness(LivenessService, func(context.Context) error { return nil })
}
