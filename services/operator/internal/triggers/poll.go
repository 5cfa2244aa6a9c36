package triggers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
)

// Operation names why a trigger's scaler is polled, the operation label of
// the scaler call metrics.
type Operation string

// Operations, named after KEDA's scaler calls.
const (
	// OpIsActive is the scale loop's poll, which decides activation.
	OpIsActive Operation = "is_active"
	// OpGetMetrics is a poll that answers the HPA's metric read.
	OpGetMetrics Operation = "get_metrics"
	// OpScaledJob is the ScaledJob loop's poll, which reads a trigger's
	// pending work and activity to decide how many Jobs to create.
	OpScaledJob Operation = "scaled_job"
)

// DefaultPollTimeout is the bound the operator's readers of a trigger
// (the MetricsService and the scale loop) put on one poll of its source,
// unless told otherwise: no event source holds a reader longer.
const DefaultPollTimeout = 5 * time.Second

// ownTimeoutGrace is added to a scaler's own timeout when that bounds a
// poll (see PollTimeout), so the scaler gives up first and reports its own
// timeout, rather than being cut short by the caller's deadline.
const ownTimeoutGrace = time.Second

// errNoScaler is returned by Poll for a trigger without a scaler.
var errNoScaler = errors.New("the trigger has no scaler")

// PollTimeout returns the bound of one poll of the trigger for a caller
// whose own bound is limit: limit, or, when the scaler gives up sooner by
// itself (scaler.TimeoutSource, such as an HTTP scaler's timeout), that
// timeout plus a second's grace. A limit of 0 means no bound, and gives 0.
func (t Trigger) PollTimeout(limit time.Duration) time.Duration {
	if limit <= 0 {
		return 0
	}
	ts, ok := t.Scaler.(scaler.TimeoutSource)
	if !ok {
		return limit
	}
	if own := ts.PollTimeout(); own > 0 && own+ownTimeoutGrace < limit {
		return own + ownTimeoutGrace
	}
	return limit
}

// Poll reads the trigger's source once through its scaler, within
// PollTimeout(timeout) (no bound when timeout is 0), and records the
// call's latency and failure in the scaler call metrics under the
// trigger's type and op. A poll cut short because ctx itself ended is not
// counted as a failure: the caller went away, the source did not fail. A
// trigger without a scaler gives an error wrapping Err. A successful poll
// of a trigger whose scaler defines its metric records that metric (see
// Metric).
func (t Trigger) Poll(ctx context.Context, op Operation, timeout time.Duration) (scaler.Reading, error) {
	if t.Scaler == nil {
		if t.Err != nil {
			return scaler.Reading{}, fmt.Errorf("%w: %w", errNoScaler, t.Err)
		}
		return scaler.Reading{}, errNoScaler
	}
	pollCtx := ctx
	if timeout = t.PollTimeout(timeout); timeout > 0 {
		var cancel context.CancelFunc
		pollCtx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	start := time.Now()
	reading, err := t.Scaler.Poll(pollCtx)
	callDuration.WithLabelValues(t.Type, string(op)).Observe(time.Since(start).Seconds())
	if err != nil && ctx.Err() == nil {
		callErrors.WithLabelValues(t.Type, string(op)).Inc()
	}
	if err == nil {
		t.learnMetric(pollCtx)
	}
	return reading, err
}

// CachedReading is the outcome of a trigger's last scale-loop poll.
type CachedReading struct {
	// Reading is what the poll read; zero when it failed.
	Reading scaler.Reading
	// Err is the poll's error, served to the HPA as a failed read (KEDA
	// caches the scaler's error along with its value).
	Err error
	// At is when the poll ended.
	At time.Time
}

// memo holds a trigger's last scale-loop poll.
type memo struct {
	mu   sync.Mutex
	set  bool
	last CachedReading
}

// Remember keeps the outcome of a scale-loop poll that ended at at, for a
// trigger with UseCachedMetrics; for other triggers it does nothing. It is
// safe for concurrent use, and the memory is dropped with the ScaledObject
// generation's scalers.
func (t Trigger) Remember(reading scaler.Reading, err error, at time.Time) {
	if t.last == nil {
		return
	}
	reading.Value = reading.Value.DeepCopy()
	t.last.mu.Lock()
	defer t.last.mu.Unlock()
	if t.last.set && at.Before(t.last.last.At) {
		return // an older poll finishing late
	}
	t.last.set = true
	t.last.last = CachedReading{Reading: reading, Err: err, At: at}
}

// Cached returns the last poll kept by Remember, and false when there is
// none (no poll yet, or the trigger does not use cached metrics).
func (t Trigger) Cached() (CachedReading, bool) {
	if t.last == nil {
		return CachedReading{}, false
	}
	t.last.mu.Lock()
	defer t.last.mu.Unlock()
	if !t.last.set {
		return CachedReading{}, false
	}
	c := t.last.last
	c.Reading.Value = c.Reading.Value.DeepCopy()
	return c, true
}
