package health

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// Heartbeat is a liveness check fed by a loop that must keep running. The
// loop calls Beat every time it makes progress; Check fails once no beat
// came for longer than the allowed age. A Heartbeat counts as beating when
// it is created.
type Heartbeat struct {
	maxAge time.Duration
	last   atomic.Int64 // Unix nanoseconds
	now    func() time.Time
}

// NewHeartbeat returns a Heartbeat whose Check fails after maxAge without a
// beat. Choose maxAge well above the loop's longest normal pause.
func NewHeartbeat(maxAge time.Duration) *Heartbeat {
	h := &Heartbeat{maxAge: maxAge, now: time.Now}
	h.Beat()
	return h
}

// Beat records progress.
func (h *Heartbeat) Beat() { h.last.Store(h.now().UnixNano()) }

// Check is a Checker: it fails if the last beat is older than maxAge.
func (h *Heartbeat) Check(context.Context) error {
	last := time.Unix(0, h.last.Load())
	if age := h.now().Sub(last); age > h.maxAge {
		return fmt.Errorf("no heartbeat for %v (limit %v)", age.Round(time.Millisecond), h.maxAge)
	}
	return nil
}
