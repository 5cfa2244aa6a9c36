package app

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"k8s.io/klog/v2/ktesting"
)

func TestReportServing(t *testing.T) {
	const service = "ebb.metrics.v1.MetricsService"
	tests := map[string]struct {
		// readiness is the sequence ready returns; the status must follow.
		readiness []error
	}{
		"ready from the start":       {readiness: []error{nil}},
		"not ready, then ready":      {readiness: []error{errors.New("caches not synced"), nil}},
		"leader, then not":           {readiness: []error{nil, errors.New("not the leader")}},
		"flapping follows each step": {readiness: []error{nil, errors.New("x"), nil, errors.New("y")}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			ctx, cancel := context.WithCancel(ctx)
			h := grpchealth.NewServer()
			var mu sync.Mutex
			var readyErr error
			setReady := func(err error) {
				mu.Lock()
				defer mu.Unlock()
				readyErr = err
			}
			ready := func() error {
				mu.Lock()
				defer mu.Unlock()
				return readyErr
			}
			setReady(tc.readiness[0])
			done := make(chan struct{})
			go func() {
				defer close(done)
				reportServing(ctx, h, service, ready, 5*time.Millisecond)
			}()
			for i, r := range tc.readiness {
				setReady(r)
				want := healthpb.HealthCheckResponse_SERVING
				if r != nil {
					want = healthpb.HealthCheckResponse_NOT_SERVING
				}
				waitStatus(t, h, service, want, i)
			}
			// The overall status is not this function's business.
			if resp, err := h.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Errorf(`status of "" = %v, %v; want SERVING`, resp.GetStatus(), err)
			}
			setReady(nil)
			cancel()
			<-done
			waitStatus(t, h, service, healthpb.HealthCheckResponse_NOT_SERVING, len(tc.readiness))
		})
	}
}

// waitStatus waits up to a second (the promise made to clients) for the
// status of service to be want.
func waitStatus(t *testing.T, h *grpchealth.Server, service string, want healthpb.HealthCheckResponse_ServingStatus, step int) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	var got healthpb.HealthCheckResponse_ServingStatus
	for time.Now().Before(deadline) {
		resp, err := h.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
		if err == nil {
			got = resp.GetStatus()
			if got == want {
				return
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("step %d: status = %v, want %v within 1s", step, got, want)
}
