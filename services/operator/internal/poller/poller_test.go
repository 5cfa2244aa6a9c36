package poller

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	testingclock "k8s.io/utils/clock/testing"
)

const deadline = 20 * time.Second

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type pollEvent struct {
	key Key
	at  time.Duration // since t0
}

// harness runs a Poller on a fake clock. Unless the test gives its own
// PollFunc, every poll is recorded on polls and returns at once.
type harness struct {
	t     *testing.T
	clk   *testingclock.FakeClock
	p     *Poller
	polls chan pollEvent
	done  chan error
	stop  context.CancelFunc
}

func newHarness(t *testing.T, poll PollFunc, opts ...Option) *harness {
	t.Helper()
	h := &harness{
		t:     t,
		clk:   testingclock.NewFakeClock(t0),
		polls: make(chan pollEvent, 40000),
		done:  make(chan error, 1),
	}
	if poll == nil {
		poll = func(_ context.Context, key Key) { h.record(key) }
	}
	h.p = New(poll, append([]Option{WithClock(h.clk)}, opts...)...)
	_, ctx := ktesting.NewTestContext(t)
	ctx, h.stop = context.WithCancel(ctx)
	go func() { h.done <- h.p.Run(ctx) }()
	t.Cleanup(func() {
		h.stop()
		select {
		case err := <-h.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(deadline):
			t.Errorf("Run did not return after cancel")
		}
	})
	return h
}

func (h *harness) record(key Key) {
	h.polls <- pollEvent{key: key, at: h.clk.Since(t0)}
}

func key(name string) Key { return Key{Namespace: "ns", Name: name} }

// settle waits until the Poller has nothing left to do before the clock
// moves, with busy polls in flight.
func (h *harness) settle(busy int) {
	h.t.Helper()
	end := time.Now().Add(deadline)
	for !h.p.settled(h.clk.Now(), busy) {
		if time.Now().After(end) {
			h.t.Fatalf("Poller did not settle with %d busy workers at %v", busy, h.clk.Since(t0))
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// step settles, then moves the fake clock.
func (h *harness) step(d time.Duration, busy int) {
	h.t.Helper()
	h.settle(busy)
	h.clk.Step(d)
}

// expect waits for n polls.
func (h *harness) expect(n int) []pollEvent {
	h.t.Helper()
	out := make([]pollEvent, 0, n)
	timeout := time.After(deadline)
	for len(out) < n {
		select {
		case ev := <-h.polls:
			out = append(out, ev)
		case <-timeout:
			h.t.Fatalf("got %d polls, want %d: %v", len(out), n, out)
		}
	}
	return out
}

// expectNone settles and checks that no poll was recorded.
func (h *harness) expectNone(busy int) {
	h.t.Helper()
	h.settle(busy)
	select {
	case ev := <-h.polls:
		h.t.Fatalf("unexpected poll %v", ev)
	default:
	}
}

// drain settles and returns the polls recorded so far.
func (h *harness) drain() []pollEvent {
	h.settle(0)
	var out []pollEvent
	for {
		select {
		case ev := <-h.polls:
			out = append(out, ev)
		default:
			return out
		}
	}
}

func TestSchedule(t *testing.T) {
	a, b := key("a"), key("b")
	s := time.Second
	tests := map[string]struct {
		// actions run at the given second, before the clock moves on.
		actions map[int]func(*Poller)
		horizon int
		want    []time.Duration // polls of key a
		wantLen int
	}{
		"new key polled at once, then every interval": {
			actions: map[int]func(*Poller){0: func(p *Poller) { p.Set(a, 10*s) }},
			horizon: 35, want: []time.Duration{0, 10 * s, 20 * s, 30 * s}, wantLen: 1,
		},
		"same interval changes nothing": {
			actions: map[int]func(*Poller){
				0: func(p *Poller) { p.Set(a, 10*s) },
				4: func(p *Poller) { p.Set(a, 10*s) },
			},
			horizon: 25, want: []time.Duration{0, 10 * s, 20 * s}, wantLen: 1,
		},
		"shorter interval reschedules at now+interval": {
			actions: map[int]func(*Poller){
				0: func(p *Poller) { p.Set(a, 10*s) },
				2: func(p *Poller) { p.Set(a, 5*s) },
			},
			horizon: 24, want: []time.Duration{0, 7 * s, 12 * s, 17 * s, 22 * s}, wantLen: 1,
		},
		"longer interval keeps the earlier due time": {
			actions: map[int]func(*Poller){
				0: func(p *Poller) { p.Set(a, 10*s) },
				2: func(p *Poller) { p.Set(a, 30*s) },
			},
			horizon: 45, want: []time.Duration{0, 10 * s, 40 * s}, wantLen: 1,
		},
		"remove stops polls": {
			actions: map[int]func(*Poller){
				0: func(p *Poller) { p.Set(a, 10*s); p.Set(b, 10*s) },
				5: func(p *Poller) { p.Remove(a); p.Remove(a) },
			},
			horizon: 30, want: []time.Duration{0}, wantLen: 1,
		},
		"removed and added again is a new key": {
			actions: map[int]func(*Poller){
				0: func(p *Poller) { p.Set(a, 10*s) },
				5: func(p *Poller) { p.Remove(a) },
				7: func(p *Poller) { p.Set(a, 10*s) },
			},
			horizon: 20, want: []time.Duration{0, 7 * s, 17 * s}, wantLen: 1,
		},
		"trigger polls early once and keeps the cadence": {
			actions: map[int]func(*Poller){
				0: func(p *Poller) { p.Set(a, 10*s) },
				3: func(p *Poller) { p.Trigger(a); p.Trigger(a) },
			},
			horizon: 25, want: []time.Duration{0, 3 * s, 10 * s, 20 * s}, wantLen: 1,
		},
		"trigger of an unknown key is ignored": {
			actions: map[int]func(*Poller){
				0: func(p *Poller) { p.Set(a, 10*s) },
				3: func(p *Poller) { p.Trigger(b) },
			},
			horizon: 15, want: []time.Duration{0, 10 * s}, wantLen: 1,
		},
		"interval change after a trigger moves the resumed cadence": {
			actions: map[int]func(*Poller){
				0: func(p *Poller) { p.Set(a, 10*s) },
				3: func(p *Poller) { p.Trigger(a); p.Set(a, 4*s) },
			},
			horizon: 12, want: []time.Duration{0, 3 * s, 7 * s, 11 * s}, wantLen: 1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil, WithJitter(0))
			var got []time.Duration
			for sec := 0; sec <= tc.horizon; sec++ {
				if f := tc.actions[sec]; f != nil {
					h.settle(0)
					f(h.p)
				}
				for _, ev := range h.drain() {
					if ev.key == a {
						got = append(got, ev.at)
					}
				}
				h.step(s, 0)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("polls of a (-want +got):\n%s", diff)
			}
			if n := h.p.Len(); n != tc.wantLen {
				t.Errorf("Len() = %d, want %d", n, tc.wantLen)
			}
		})
	}
}

func TestJitter(t *testing.T) {
	const (
		keys     = 20
		interval = 10 * time.Second
		step     = 100 * time.Millisecond
		horizon  = 36 * time.Second
	)
	tests := map[string]struct {
		jitter float64
	}{
		"none":    {jitter: 0},
		"default": {jitter: DefaultJitter},
		"half":    {jitter: 0.5},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil, WithJitter(tc.jitter))
			for i := range keys {
				h.p.Set(key(fmt.Sprint(i)), interval)
			}
			got := map[Key][]time.Duration{}
			for h.clk.Since(t0) <= horizon {
				for _, ev := range h.drain() {
					got[ev.key] = append(got[ev.key], ev.at)
				}
				h.step(step, 0)
			}
			spread := time.Duration(tc.jitter * float64(interval))
			firsts := map[time.Duration]bool{}
			for i := range keys {
				k := key(fmt.Sprint(i))
				polls := got[k]
				if len(polls) != 4 {
					t.Fatalf("%v polled at %v, want 4 polls", k, polls)
				}
				firsts[polls[0]] = true
				for n, at := range polls {
					lo := time.Duration(n) * interval
					hi := lo + spread
					if n == 0 {
						hi = lo + min(spread, maxFirstJitter)
					}
					// Polls start at the first step at or after their due time.
					if at < lo || at > hi+step {
						t.Errorf("%v poll %d at %v, want in [%v, %v]", k, n, at, lo, hi+step)
					}
				}
			}
			if tc.jitter > 0 && len(firsts) < 2 {
				t.Errorf("first polls of %d keys all at %v, want them spread", keys, firsts)
			}
		})
	}
}

// blocker is a PollFunc whose polls block until released, one release per
// poll, and which tracks polls in flight.
type blocker struct {
	h        *harness
	release  chan struct{}
	mu       sync.Mutex
	inFlight map[Key]int
	total    int
	maxTotal int
	maxKey   int
}

func newBlocker() *blocker {
	return &blocker{release: make(chan struct{}), inFlight: map[Key]int{}}
}

func (b *blocker) poll(_ context.Context, key Key) {
	b.mu.Lock()
	b.inFlight[key]++
	b.total++
	b.maxKey = max(b.maxKey, b.inFlight[key])
	b.maxTotal = max(b.maxTotal, b.total)
	b.mu.Unlock()
	b.h.record(key)
	<-b.release
	b.mu.Lock()
	b.inFlight[key]--
	b.total--
	b.mu.Unlock()
}

func (b *blocker) unblock(t *testing.T) {
	t.Helper()
	select {
	case b.release <- struct{}{}:
	case <-time.After(deadline):
		t.Fatal("no poll to release")
	}
}

func TestLongPoll(t *testing.T) {
	a := key("a")
	s := time.Second
	t.Run("no overlap and exactly one catch-up poll", func(t *testing.T) {
		b := newBlocker()
		h := newHarness(t, b.poll, WithJitter(0))
		b.h = h
		h.p.Set(a, 10*s)
		h.expect(1)
		for range 3 {
			h.step(10*s, 1)
			h.expectNone(1)
		}
		h.step(5*s, 1) // the poll ends at 35s
		b.unblock(t)
		if got := h.expect(1); got[0].at != 35*s {
			t.Errorf("catch-up poll at %v, want 35s", got[0].at)
		}
		b.unblock(t)
		h.expectNone(0)
		h.step(9*s, 0)
		h.expectNone(0)
		h.step(1*s, 0)
		if got := h.expect(1); got[0].at != 45*s {
			t.Errorf("next poll at %v, want 45s (cadence from the catch-up poll)", got[0].at)
		}
		b.unblock(t)
		h.expectNone(0)
		if b.maxKey != 1 {
			t.Errorf("max concurrent polls of one key = %d, want 1", b.maxKey)
		}
	})
	t.Run("a late poll keeps the cadence", func(t *testing.T) {
		b := newBlocker()
		h := newHarness(t, b.poll, WithJitter(0))
		b.h = h
		h.p.Set(a, 10*s)
		h.expect(1)
		h.step(4*s, 1)
		b.unblock(t)
		h.expectNone(0)
		h.step(6*s, 0)
		if got := h.expect(1); got[0].at != 10*s {
			t.Errorf("poll at %v, want 10s", got[0].at)
		}
		b.unblock(t)
		h.expectNone(0)
	})
	t.Run("trigger during a poll polls once more after it", func(t *testing.T) {
		b := newBlocker()
		h := newHarness(t, b.poll, WithJitter(0))
		b.h = h
		h.p.Set(a, 10*s)
		h.expect(1)
		h.step(2*s, 1)
		h.p.Trigger(a)
		h.p.Trigger(a)
		h.expectNone(1)
		b.unblock(t)
		if got := h.expect(1); got[0].at != 2*s {
			t.Errorf("triggered poll at %v, want 2s", got[0].at)
		}
		b.unblock(t)
		h.expectNone(0)
		h.step(8*s, 0)
		if got := h.expect(1); got[0].at != 10*s {
			t.Errorf("poll at %v, want 10s", got[0].at)
		}
		b.unblock(t)
		h.expectNone(0)
	})
	t.Run("remove during a poll", func(t *testing.T) {
		b := newBlocker()
		h := newHarness(t, b.poll, WithJitter(0))
		b.h = h
		h.p.Set(a, 10*s)
		h.expect(1)
		h.p.Remove(a)
		if n := h.p.Len(); n != 0 {
			t.Errorf("Len() = %d after Remove, want 0", n)
		}
		h.step(20*s, 1)
		b.unblock(t)
		h.expectNone(0)
		h.step(20*s, 0)
		h.expectNone(0)
	})
	t.Run("removed and added again during a poll", func(t *testing.T) {
		b := newBlocker()
		h := newHarness(t, b.poll, WithJitter(0))
		b.h = h
		h.p.Set(a, 10*s)
		h.expect(1)
		h.p.Remove(a)
		h.p.Set(a, 10*s)
		h.step(1*s, 1)
		h.expectNone(1)
		b.unblock(t)
		if got := h.expect(1); got[0].at != 1*s {
			t.Errorf("poll at %v, want 1s", got[0].at)
		}
		b.unblock(t)
		h.expectNone(0)
		if b.maxKey != 1 {
			t.Errorf("max concurrent polls of one key = %d, want 1", b.maxKey)
		}
	})
}

func TestWorkersBoundConcurrency(t *testing.T) {
	const keys = 10
	tests := map[string]struct {
		workers int
	}{
		"one":       {workers: 1},
		"three":     {workers: 3},
		"all":       {workers: keys},
		"more":      {workers: keys + 5},
		"zero is 1": {workers: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := newBlocker()
			h := newHarness(t, b.poll, WithJitter(0), WithWorkers(tc.workers))
			b.h = h
			for i := range keys {
				h.p.Set(key(fmt.Sprint(i)), time.Minute)
			}
			limit := min(max(tc.workers, 1), keys)
			seen := map[Key]bool{}
			for _, ev := range h.expect(limit) {
				seen[ev.key] = true
			}
			h.expectNone(limit)
			for len(seen) < keys {
				b.unblock(t)
				for _, ev := range h.expect(1) {
					seen[ev.key] = true
				}
			}
			for range limit {
				b.unblock(t)
			}
			h.expectNone(0)
			if b.maxTotal != limit {
				t.Errorf("max polls in flight = %d, want %d", b.maxTotal, limit)
			}
		})
	}
}

func TestRunStopsAfterInFlightPolls(t *testing.T) {
	clk := testingclock.NewFakeClock(t0)
	started := make(chan Key, 10)
	sawCancel := make(chan struct{}, 10)
	release := make(chan struct{})
	var polls atomic.Int32
	p := New(func(ctx context.Context, key Key) {
		polls.Add(1)
		started <- key
		<-ctx.Done()
		sawCancel <- struct{}{}
		<-release
	}, WithClock(clk), WithJitter(0), WithWorkers(3))
	p.Set(key("a"), time.Second)
	p.Set(key("b"), time.Hour)
	p.Set(key("c"), time.Hour)
	p.Remove(key("c"))

	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for range 2 {
		select {
		case <-started:
		case <-time.After(deadline):
			t.Fatal("poll did not start")
		}
	}
	cancel()
	// Both polls see the cancellation and still hold their workers.
	<-sawCancel
	<-sawCancel
	select {
	case err := <-done:
		t.Fatalf("Run returned %v with polls in flight", err)
	default:
	}
	// Nothing more is handed out, though a worker is free.
	p.Set(key("d"), time.Second)
	clk.Step(time.Minute)
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	case <-time.After(deadline):
		t.Fatal("Run did not return after the polls ended")
	}
	if n := polls.Load(); n != 2 {
		t.Errorf("%d polls, want 2", n)
	}
	if err := p.Run(context.Background()); err == nil {
		t.Error("second Run() = nil, want an error")
	}
	if n := p.Len(); n != 3 {
		t.Errorf("Len() = %d, want 3", n)
	}
}

func Test10kKeys(t *testing.T) {
	const (
		keys     = 10000
		interval = 10 * time.Second
	)
	index := make(map[Key]int, keys)
	for i := range keys {
		index[key(fmt.Sprint(i))] = i
	}
	counts := make([]atomic.Int32, keys)
	var total atomic.Int32
	h := newHarness(t, func(_ context.Context, k Key) {
		counts[index[k]].Add(1)
		total.Add(1)
	})
	for k := range index {
		h.p.Set(k, interval)
	}
	if n := h.p.Len(); n != keys {
		t.Fatalf("Len() = %d, want %d", n, keys)
	}
	// Default jitter: first polls within 1s, then each key once in every
	// [n×10s, n×10s+1s) window.
	for round := 1; round <= 3; round++ {
		h.step(time.Second, 0)
		h.settle(0)
		if n := int(total.Load()); n != round*keys {
			t.Fatalf("round %d: %d polls, want %d", round, n, round*keys)
		}
		for i := range counts {
			if c := int(counts[i].Load()); c != round {
				t.Fatalf("round %d: key %d polled %d times", round, i, c)
			}
		}
		h.step(interval-time.Second, 0)
		h.settle(0)
		if n := int(total.Load()); n != round*keys {
			t.Fatalf("round %d: %d polls before the next window, want %d", round, n, round*keys)
		}
	}
}

func TestMetricsAndProgress(t *testing.T) {
	var calls atomic.Int32
	var h *harness
	h = newHarness(t, func(_ context.Context, key Key) {
		if calls.Add(1) == 1 {
			h.clk.Step(2 * time.Second) // the first poll takes 2s
		}
		h.record(key)
	}, WithJitter(0), WithWorkers(1))
	reg := prometheus.NewPedanticRegistry()
	if err := h.p.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	h.p.Set(key("a"), time.Minute)
	h.p.Set(key("b"), time.Minute)
	h.expect(2)
	h.settle(0)

	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		switch {
		case m.GetGauge() != nil:
			got[mf.GetName()] = m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			got[mf.GetName()+"_count"] = float64(m.GetHistogram().GetSampleCount())
			got[mf.GetName()+"_sum"] = m.GetHistogram().GetSampleSum()
		}
	}
	want := map[string]float64{
		"ebb_poller_scheduled":                   2,
		"ebb_poller_busy_workers":                0,
		"ebb_poller_lag_seconds_count":           2,
		"ebb_poller_lag_seconds_sum":             2, // the second key waited 2s for the worker
		"ebb_poller_poll_duration_seconds_count": 2,
		"ebb_poller_poll_duration_seconds_sum":   2,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	if got, want := h.p.LastProgress(), h.clk.Now(); !got.Equal(want) {
		t.Errorf("LastProgress() = %v, want %v", got, want)
	}
	// Idle: the heartbeat keeps progress fresh.
	h.step(HeartbeatPeriod, 0)
	h.settle(0)
	if got, want := h.p.LastProgress(), h.clk.Now(); !got.Equal(want) {
		t.Errorf("idle LastProgress() = %v, want %v", got, want)
	}
}

func TestProgressStallsWhenWorkersHang(t *testing.T) {
	b := newBlocker()
	h := newHarness(t, b.poll, WithJitter(0), WithWorkers(1))
	b.h = h
	h.p.Set(key("a"), time.Minute)
	h.p.Set(key("b"), time.Minute)
	h.expect(1)
	h.settle(1)
	stuckSince := h.p.LastProgress()
	for range 3 {
		h.step(HeartbeatPeriod, 1)
	}
	h.settle(1)
	if got := h.p.LastProgress(); !got.Equal(stuckSince) {
		t.Errorf("LastProgress() = %v while every worker hangs, want %v", got, stuckSince)
	}
	b.unblock(t)
	h.expect(1)
	b.unblock(t)
	h.settle(0)
	if got, want := h.p.LastProgress(), h.clk.Now(); !got.Equal(want) {
		t.Errorf("LastProgress() = %v after the hang, want %v", got, want)
	}
}

// TestStopRequeuesUnstartedPolls covers polls handed out just before Run
// stops: the workers put them back unpolled.
func TestStopRequeuesUnstartedPolls(t *testing.T) {
	clk := testingclock.NewFakeClock(t0)
	var polls atomic.Int32
	p := New(func(context.Context, Key) { polls.Add(1) }, WithClock(clk), WithJitter(0), WithWorkers(2))
	p.Set(key("a"), time.Second)
	p.Set(key("b"), time.Second)
	_, ctx := ktesting.NewTestContext(t)
	p.dispatch(nopTimer{}, klog.FromContext(ctx))
	p.Remove(key("b")) // removed while handed out
	close(p.work)
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	p.worker(ctx)
	if n := polls.Load(); n != 0 {
		t.Errorf("%d polls after stop, want 0", n)
	}
	if p.busy != 0 || len(p.queue) != 1 || p.queue[0].key != key("a") || len(p.entries) != 1 || p.Len() != 1 {
		t.Errorf("busy=%d queue=%d entries=%d Len=%d, want 0, 1 (a), 1, 1", p.busy, len(p.queue), len(p.entries), p.Len())
	}
}
