package app

import (
	"context"
	"strings"
	"sync"
	"testing"

	"k8s.io/klog/v2/ktesting"
)

func TestRedisLogger(t *testing.T) {
	tests := map[string]struct {
		verbosity int
		want      string // in the output; empty: no output
	}{
		"shown at verbosity 2": {verbosity: 2, want: `INFO Message from the Redis client message="redis: connection pool: failed to dial after 5 attempts: dial tcp: connection refused"`},
		"hidden below":         {verbosity: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.Verbosity(tc.verbosity), ktesting.BufferLogs(true)))
			redisLogger{logger: logger}.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %v\n", 5, "dial tcp: connection refused")
			out := logger.GetSink().(ktesting.Underlier).GetBuffer().String()
			if tc.want == "" && out != "" {
				t.Errorf("logged %q, want nothing", out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("logged %q, want it to contain %q", out, tc.want)
			}
		})
	}
}

func TestRouteRedisLogsOnce(t *testing.T) {
	var set []redisLogger
	oldSet := setRedisLogger
	setRedisLogger = func(l redisLogger) { set = append(set, l) }
	redisLogOnce = sync.Once{}
	t.Cleanup(func() { setRedisLogger = oldSet; redisLogOnce = sync.Once{} })

	first := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.Verbosity(2), ktesting.BufferLogs(true)))
	second := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.Verbosity(2), ktesting.BufferLogs(true)))
	routeRedisLogs(first)
	routeRedisLogs(second)
	if len(set) != 1 {
		t.Fatalf("go-redis's logger was set %d times, want once", len(set))
	}
	set[0].Printf(context.Background(), "sentinel: new master=%q", "mymaster")
	out := first.GetSink().(ktesting.Underlier).GetBuffer().String()
	if !strings.Contains(out, `INFO redis: Message from the Redis client message="sentinel: new master=\"mymaster\""`) {
		t.Errorf("first logger got %q, want the message under the name redis", out)
	}
	if out := second.GetSink().(ktesting.Underlier).GetBuffer().String(); out != "" {
		t.Errorf("second logger got %q, want nothing", out)
	}
}
