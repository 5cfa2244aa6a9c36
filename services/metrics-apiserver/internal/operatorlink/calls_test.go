package operatorlink

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ebb-autoscaler/ebb/pkg/rpc/metricsv1"
	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles/tlsfilestest"
)

// linkAndOperator starts an operator and a link to it, up.
func linkAndOperator(t *testing.T, cfg Config) (*testLink, *operator) {
	t.Helper()
	p := newPKI(t, "ebb-ca")
	srvSrc, _ := source(t, tlsfilestest.Files(p.server, p.ca.PEM))
	cliSrc, _ := source(t, tlsfilestest.Files(p.client, p.ca.PEM))
	op := startOperator(t, "op-0", srvSrc, "127.0.0.1:0")
	cfg.Targets, cfg.ServerName, cfg.TLS = []string{op.addr}, serverName, cliSrc
	l := startLink(t, cfg)
	l.waitUp(t, reconnectBound)
	return l, op
}

func TestRetries(t *testing.T) {
	l, op := linkAndOperator(t, Config{})
	tests := map[string]struct {
		// failures are the codes of the operator's first answers; then it
		// answers with a value.
		failures []codes.Code
		deadline time.Duration
		wantCode codes.Code
		// wantAttempts is the number of attempts; 0 means at least one,
		// as many as the deadline allows.
		wantAttempts int64
		wantMax      time.Duration
	}{
		"value": {
			wantCode: codes.OK, wantAttempts: 1,
		},
		"unavailable twice, then a value": {
			failures: []codes.Code{codes.Unavailable, codes.Unavailable},
			wantCode: codes.OK, wantAttempts: 3,
		},
		"always unavailable: four attempts": {
			failures: []codes.Code{codes.Unavailable, codes.Unavailable, codes.Unavailable, codes.Unavailable, codes.Unavailable},
			wantCode: codes.Unavailable, wantAttempts: 4,
			// Backoff 50-100 ms, 100-200 ms, 200-400 ms.
			wantMax: 2 * time.Second,
		},
		"unavailable until the deadline: the operator's answer, not a timeout": {
			failures: []codes.Code{codes.Unavailable, codes.Unavailable, codes.Unavailable, codes.Unavailable},
			deadline: 150 * time.Millisecond,
			wantCode: codes.Unavailable,
			wantMax:  150 * time.Millisecond,
		},
		"not found is not retried": {
			failures: []codes.Code{codes.NotFound},
			wantCode: codes.NotFound, wantAttempts: 1,
		},
		"invalid argument is not retried": {
			failures: []codes.Code{codes.InvalidArgument},
			wantCode: codes.InvalidArgument, wantAttempts: 1,
		},
		"internal is not retried": {
			failures: []codes.Code{codes.Internal},
			wantCode: codes.Internal, wantAttempts: 1,
		},
		"deadline exceeded is not retried": {
			failures: []codes.Code{codes.DeadlineExceeded},
			wantCode: codes.DeadlineExceeded, wantAttempts: 1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var attempts atomic.Int64
			op.setHandler(func(_ context.Context, req *metricsv1.GetMetricsRequest) (*metricsv1.GetMetricsResponse, error) {
				n := attempts.Add(1)
				if int(n) <= len(tc.failures) {
					return nil, status.Errorf(tc.failures[n-1], "answer %d of the operator", n)
				}
				return response("op-0", req), nil
			})
			retriesBefore := testutil.ToFloat64(l.metrics.retries)
			ctx := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			start := time.Now()
			_, err := l.GetMetrics(ctx, testRequest)
			took := time.Since(start)
			if got := status.Code(err); got != tc.wantCode {
				t.Fatalf("GetMetrics() error = %v, want code %v", err, tc.wantCode)
			}
			if err != nil && errors.Is(err, ErrLinkDown) {
				t.Errorf("GetMetrics() error = %v, want the operator's error, not a link error", err)
			}
			if err != nil && !strings.Contains(err.Error(), "of the operator") {
				t.Errorf("GetMetrics() error = %v, want the operator's message", err)
			}
			got := attempts.Load()
			if got != tc.wantAttempts && (tc.wantAttempts != 0 || got == 0) {
				t.Errorf("The operator got %d attempts, want %d", got, tc.wantAttempts)
			}
			if retries := testutil.ToFloat64(l.metrics.retries) - retriesBefore; retries != float64(got-1) {
				t.Errorf("ebb_operator_link_call_retries_total grew by %v, want %d", retries, got-1)
			}
			if tc.wantMax > 0 && took > tc.wantMax {
				t.Errorf("GetMetrics() took %v, want at most %v", took, tc.wantMax)
			}
		})
	}
	if n := l.histogramCount(t, "Unavailable"); n < 4 {
		t.Errorf("Attempts with code Unavailable = %d, want every attempt counted", n)
	}
}

func TestDeadlines(t *testing.T) {
	tests := map[string]struct {
		callTimeout time.Duration
		ctxTimeout  time.Duration // 0: no deadline
		cancelAfter time.Duration
		wantCode    codes.Code
		want        time.Duration // the deadline the operator sees, and the call's duration
	}{
		"the caller's deadline": {
			ctxTimeout: 300 * time.Millisecond,
			wantCode:   codes.DeadlineExceeded, want: 300 * time.Millisecond,
		},
		"CallTimeout without a caller's deadline": {
			callTimeout: 400 * time.Millisecond,
			wantCode:    codes.DeadlineExceeded, want: 400 * time.Millisecond,
		},
		"CallTimeout caps a longer deadline": {
			callTimeout: 400 * time.Millisecond, ctxTimeout: 5 * time.Second,
			wantCode: codes.DeadlineExceeded, want: 400 * time.Millisecond,
		},
		"the caller's deadline under CallTimeout": {
			callTimeout: 2 * time.Second, ctxTimeout: 300 * time.Millisecond,
			wantCode: codes.DeadlineExceeded, want: 300 * time.Millisecond,
		},
		"the caller gives up": {
			ctxTimeout: 5 * time.Second, cancelAfter: 200 * time.Millisecond,
			wantCode: codes.Canceled,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			l, op := linkAndOperator(t, Config{CallTimeout: tc.callTimeout})
			var seen atomic.Int64 // the time left the operator saw
			op.setHandler(func(ctx context.Context, _ *metricsv1.GetMetricsRequest) (*metricsv1.GetMetricsResponse, error) {
				if d, ok := ctx.Deadline(); ok {
					seen.Store(int64(time.Until(d)))
				}
				<-ctx.Done()
				return nil, status.FromContextError(ctx.Err()).Err()
			})
			ctx := context.Background()
			if tc.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
				defer cancel()
			}
			if tc.cancelAfter > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				time.AfterFunc(tc.cancelAfter, cancel)
			}
			start := time.Now()
			_, err := l.GetMetrics(ctx, testRequest)
			took := time.Since(start)
			if got := status.Code(err); got != tc.wantCode {
				t.Fatalf("GetMetrics() error = %v, want code %v", err, tc.wantCode)
			}
			if tc.want == 0 {
				return
			}
			// The operator got the deadline, less the time on the wire.
			if s := time.Duration(seen.Load()); s > tc.want || s < tc.want-200*time.Millisecond {
				t.Errorf("The operator saw %v left, want about %v", s, tc.want)
			}
			if took < tc.want || took > tc.want+500*time.Millisecond {
				t.Errorf("GetMetrics() took %v, want about %v", took, tc.want)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	p := newPKI(t, "ebb-ca")
	srvSrc, _ := source(t, tlsfilestest.Files(p.server, p.ca.PEM))
	cliSrc, _ := source(t, tlsfilestest.Files(p.client, p.ca.PEM))
	op := startOperator(t, "op-0", srvSrc, "127.0.0.1:0")
	cfg := Config{Targets: []string{op.addr}, ServerName: serverName, TLS: cliSrc}

	t.Run("not run", func(t *testing.T) {
		l, err := New(cfg, (&logSink{}).logger())
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "operator link down: the link is not running") {
			t.Errorf("Check() before Run = %v, want the link down, not running", err)
		}
		start := time.Now()
		_, err = l.GetMetrics(context.Background(), testRequest)
		if !errors.Is(err, ErrLinkDown) || time.Since(start) > failFastBound {
			t.Errorf("GetMetrics() before Run = %v after %v, want ErrLinkDown at once", err, time.Since(start))
		}
		if op.calls.Load() != 0 {
			t.Error("A link that was never run called the operator")
		}
		if err := l.Close(); err != nil {
			t.Errorf("Close() error = %v", err)
		}
		if err := l.Close(); err != nil {
			t.Errorf("Close() again: error = %v", err)
		}
		if err := l.Run(context.Background()); err == nil {
			t.Error("Run() after Close(): no error")
		}
	})

	t.Run("run, then stopped", func(t *testing.T) {
		l := startLink(t, cfg)
		l.waitUp(t, reconnectBound)
		if err := l.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "twice") {
			t.Errorf("Run() a second time: error = %v, want one", err)
		}
		l.stop()
		if err := l.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "the link is closed") {
			t.Errorf("Check() after Run returned = %v, want the link closed", err)
		}
		start := time.Now()
		_, err := l.call()
		if status.Code(err) != codes.Unavailable || time.Since(start) > failFastBound {
			t.Errorf("GetMetrics() after Run returned = %v after %v, want Unavailable at once", err, time.Since(start))
		}
		if got := testutil.ToFloat64(l.metrics.up); got != 0 {
			t.Errorf("ebb_operator_link_up = %v after Run returned, want 0", got)
		}
		if n := l.logs.count("Stopped the operator link"); n != 1 {
			t.Errorf("%d \"Stopped the operator link\" lines, want 1", n)
		}
	})
}
