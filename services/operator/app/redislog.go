package app

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
	"k8s.io/klog/v2"
)

// redisLogVerbosity is the klog verbosity of go-redis's messages. They are
// diagnostics of its connection pools and of Sentinel and Cluster
// topology changes: the failures they describe come back as errors of the
// redis scalers' polls too, which are logged and counted where they
// matter, so they stay out of the default output.
const redisLogVerbosity = 2

var (
	// redisLogOnce makes routeRedisLogs take effect once: go-redis has one
	// logger per process.
	redisLogOnce sync.Once
	// setRedisLogger is redis.SetLogger, replaced in tests.
	setRedisLogger = func(l redisLogger) { redis.SetLogger(l) }
)

// routeRedisLogs sends go-redis's log messages, which it prints to stderr
// by default, to logger (named "redis") as structured lines at
// redisLogVerbosity. Only the first call takes effect.
func routeRedisLogs(logger klog.Logger) {
	redisLogOnce.Do(func() { setRedisLogger(redisLogger{logger: logger.WithName("redis")}) })
}

// redisLogger is go-redis's logging interface (redis.SetLogger) over klog.
type redisLogger struct{ logger klog.Logger }

// Printf logs one go-redis message under the key message. It is formatted
// only when the verbosity is enabled.
func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	logger := l.logger.V(redisLogVerbosity)
	if !logger.Enabled() {
		return
	}
	logger.Info("Message from the Redis client", "message", strings.TrimSpace(fmt.Sprintf(format, v...)))
}
