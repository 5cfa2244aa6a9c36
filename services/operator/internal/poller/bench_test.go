package poller

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/klog/v2"
	testingclock "k8s.io/utils/clock/testing"
)

const benchKeys = 10000

// BenchmarkPoller10k measures the end-to-end cost of one poll dispatch with
// 10,000 keys on the real clock and the default 16 workers: the interval is
// so short that every key is always due, so the Poller runs flat out
// (dispatcher, worker hand-off, rescheduling, metrics). One op is one poll.
func BenchmarkPoller10k(b *testing.B) {
	var n, target atomic.Int64
	target.Store(math.MaxInt64)
	done := make(chan struct{})
	var once sync.Once
	p := New(func(context.Context, Key) {
		if n.Add(1) >= target.Load() {
			once.Do(func() { close(done) })
		}
	}, WithLogger(klog.Background().V(10)))
	for i := range benchKeys {
		p.Set(Key{Namespace: "ns", Name: fmt.Sprint("so-", i)}, MinInterval)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error)
	go func() { stopped <- p.Run(ctx) }()
	// Warm up: every key polled twice, so the heap and its entries are in
	// their steady state.
	for n.Load() < 2*benchKeys {
		time.Sleep(time.Millisecond)
	}

	b.ReportAllocs()
	b.ResetTimer()
	target.Store(n.Load() + int64(b.N))
	<-done
	b.StopTimer()
	cancel()
	if err := <-stopped; err != nil {
		b.Fatal(err)
	}
}

// nopTimer is a clock.Timer that never fires.
type nopTimer struct{}

func (nopTimer) C() <-chan time.Time      { return nil }
func (nopTimer) Stop() bool               { return false }
func (nopTimer) Reset(time.Duration) bool { return false }

// BenchmarkSchedule10k measures the scheduling work per poll alone, without
// goroutines: 10,000 keys at a 10s interval with the default jitter, time
// jumping to each next due time; one op takes the due key off the heap,
// hands it out, and reschedules it.
func BenchmarkSchedule10k(b *testing.B) {
	clk := testingclock.NewFakeClock(t0)
	p := New(nil, WithClock(clk), WithWorkers(1))
	for i := range benchKeys {
		p.Set(Key{Namespace: "ns", Name: fmt.Sprint("so-", i)}, 10*time.Second)
	}
	logger := klog.Background().V(10)
	step := func() {
		if due := p.queue[0].due; due.After(clk.Now()) {
			clk.SetTime(due)
		}
		p.dispatch(nopTimer{}, logger)
		e := <-p.work
		p.finish(e, clk.Now())
	}
	for range 2 * benchKeys {
		step()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		step()
	}
}
