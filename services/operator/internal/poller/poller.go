package poller

import (
	"container/heap"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Key identifies what is polled: a ScaledObject's namespace and name.
type Key = cache.ObjectName

// PollFunc polls one key. It is never called concurrently for the same key.
// ctx is cancelled when the Poller stops; a PollFunc must bound its own
// duration (a hung PollFunc holds a worker, and a Poller whose workers are
// all hung stops reporting progress, see LastProgress).
type PollFunc func(ctx context.Context, key Key)

const (
	// DefaultWorkers is the number of workers when WithWorkers is not given.
	DefaultWorkers = 16
	// DefaultJitter is the jitter fraction when WithJitter is not given.
	DefaultJitter = 0.1
	// HeartbeatPeriod is the longest time the dispatcher waits between two
	// turns, even with nothing due, so LastProgress stays fresh on an idle
	// Poller. A liveness check should allow several of these.
	HeartbeatPeriod = 5 * time.Second
	// MinInterval is the shortest polling interval; shorter ones are raised
	// to it.
	MinInterval = 10 * time.Millisecond
	// maxFirstJitter bounds the delay of the first poll of a new key.
	maxFirstJitter = time.Second
)

// Option configures a Poller.
type Option func(*Poller)

// WithClock sets the clock (a fake one in tests). The default is the real
// clock.
func WithClock(c clock.Clock) Option { return func(p *Poller) { p.clock = c } }

// WithWorkers sets how many polls may run at once (at least 1, default
// DefaultWorkers).
func WithWorkers(n int) Option { return func(p *Poller) { p.workers = max(n, 1) } }

// WithJitter sets the jitter as a fraction of a key's interval (clamped to
// [0, 1], default DefaultJitter). Every schedule adds a random delay in
// [0, fraction×interval) to the cadence point, so keys created together
// spread out while each key's average interval stays its interval. The first
// poll of a new key is delayed by at most min(fraction×interval, 1s).
func WithJitter(fraction float64) Option {
	return func(p *Poller) { p.jitter = min(max(fraction, 0), 1) }
}

// WithLogger sets the logger. By default Run uses the logger of its context.
func WithLogger(logger klog.Logger) Option {
	return func(p *Poller) { p.logger = &logger }
}

// Poller calls a PollFunc for every registered key at the key's interval,
// with a bounded number of polls in flight. Its methods are safe for
// concurrent use; Set, Remove and Trigger may be called before Run.
type Poller struct {
	poll    PollFunc
	clock   clock.Clock
	workers int
	jitter  float64
	logger  *klog.Logger
	metrics *metrics

	// work hands entries to the workers. Its capacity is the number of
	// workers and the dispatcher only sends while busy < workers, so a send
	// never blocks.
	work chan *entry
	// wake asks the dispatcher for a turn.
	wake chan struct{}

	started      atomic.Bool
	lastProgress atomic.Int64 // UnixNano

	mu      sync.Mutex
	entries map[Key]*entry
	queue   queue
	live    int // keys in entries that are not removed
	busy    int // entries handed to workers and not finished

	// gen counts changes of the schedule; seenGen is the gen that the
	// dispatcher's last turn saw and wakeAt the time its timer is set for.
	// Tests use them to know when the Poller has settled.
	gen, seenGen uint64
	wakeAt       time.Time
}

// New returns a Poller that calls poll. Start it with Run.
func New(poll PollFunc, opts ...Option) *Poller {
	p := &Poller{
		poll:    poll,
		clock:   clock.RealClock{},
		workers: DefaultWorkers,
		jitter:  DefaultJitter,
		metrics: newMetrics(),
		wake:    make(chan struct{}, 1),
		entries: map[Key]*entry{},
	}
	for _, o := range opts {
		o(p)
	}
	p.work = make(chan *entry, p.workers)
	p.lastProgress.Store(p.clock.Now().UnixNano())
	return p
}

// Set adds key with the given polling interval, or changes its interval.
// The first poll of a new key is due at once (plus a small jitter). A
// changed interval moves the next poll to the earlier of now+interval and
// the time it was due.
func (p *Poller) Set(key Key, interval time.Duration) {
	interval = max(interval, MinInterval)
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	e, ok := p.entries[key]
	switch {
	case !ok:
		e = &entry{key: key, interval: interval, nominal: now, index: -1}
		e.due = now.Add(p.randomDelay(interval, maxFirstJitter))
		p.entries[key] = e
		heap.Push(&p.queue, e)
		p.live++
	case e.removed:
		// Removed while its poll is in flight, and back: poll it again as
		// soon as that poll ends, as a new key, without overlapping it.
		e.removed = false
		e.interval = interval
		e.nominal = now
		e.pendingTrigger = true
		p.live++
	case e.interval == interval:
		return
	default:
		e.interval = interval
		nominal := now.Add(interval)
		due := nominal.Add(p.randomDelay(interval, 0))
		switch {
		case e.triggered:
			// The cadence resumes at regularDue after the triggered poll.
			if due.Before(e.regularDue) {
				e.nominal, e.regularDue = nominal, due
			}
		case e.running:
			// Rescheduled from nominal with the new interval when the
			// poll ends.
		case due.Before(e.due):
			e.nominal, e.due = nominal, due
			heap.Fix(&p.queue, e.index)
		}
	}
	p.changedLocked()
}

// Remove removes key. A poll of key in flight completes, but key is not
// polled again.
func (p *Poller) Remove(key Key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.entries[key]
	if !ok || e.removed {
		return
	}
	p.live--
	if e.running {
		e.removed = true
		e.pendingTrigger = false
	} else {
		heap.Remove(&p.queue, e.index)
		delete(p.entries, key)
	}
	p.changedLocked()
}

// Trigger polls key as soon as a worker is free (or, if key is being
// polled, once more as soon as that poll ends), without changing its
// cadence: the next regular poll stays when it was due. Unknown keys are
// ignored.
func (p *Poller) Trigger(key Key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.entries[key]
	if !ok || e.removed {
		return
	}
	if e.running {
		e.pendingTrigger = true
		p.changedLocked()
		return
	}
	now := p.clock.Now()
	if e.triggered || !e.due.After(now) {
		return // already due
	}
	e.triggered = true
	e.regularDue = e.due
	e.due = now
	heap.Fix(&p.queue, e.index)
	p.changedLocked()
}

// Len returns the number of keys.
func (p *Poller) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.live
}

// LastProgress returns when the dispatcher last made progress: a turn of
// its loop that found nothing overdue or handed out a poll. The dispatcher
// turns at least every HeartbeatPeriod, so a LastProgress much older than
// that means the Poller is stuck (not running, or all workers hung while
// polls are overdue).
func (p *Poller) LastProgress() time.Time {
	return time.Unix(0, p.lastProgress.Load())
}

// Run starts the workers and dispatches polls until ctx is done; then it
// stops handing out polls, waits for the polls in flight (their context is
// ctx, so they see the cancellation) and returns nil. Run may be called
// only once.
func (p *Poller) Run(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("poller: Run called more than once")
	}
	logger := klog.FromContext(ctx)
	if p.logger != nil {
		logger = *p.logger
	}
	logger.Info("Starting poller", "workers", p.workers)
	defer logger.Info("Stopped poller")

	var wg sync.WaitGroup
	for range p.workers {
		wg.Go(func() { p.worker(ctx) })
	}
	timer := p.clock.NewTimer(HeartbeatPeriod)
	defer timer.Stop()
	for {
		p.dispatch(timer, logger)
		select {
		case <-ctx.Done():
			close(p.work)
			wg.Wait()
			return nil
		case <-p.wake:
		case <-timer.C():
		}
	}
}

// dispatch is one turn of the dispatcher: it hands every due key to a
// worker while workers are free, and sets the timer for the next due time.
func (p *Poller) dispatch(timer clock.Timer, logger klog.Logger) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	dispatched := false
	for p.busy < p.workers && len(p.queue) > 0 && !p.queue[0].due.After(now) {
		e := heap.Pop(&p.queue).(*entry)
		e.running = true
		p.busy++
		lag := now.Sub(e.due)
		p.metrics.lag.Observe(lag.Seconds())
		if lag > e.interval {
			if l := logger.V(4); l.Enabled() {
				l.Info("Poll lagging", "key", e.key, "lag", lag, "interval", e.interval)
			}
		}
		p.work <- e
		dispatched = true
	}
	if dispatched {
		p.metrics.busy.Set(float64(p.busy))
	}

	next := now.Add(HeartbeatPeriod)
	overdue := false
	if len(p.queue) > 0 {
		// Overdue here means every worker is busy: the next turn comes
		// from a finished poll (wake) or the heartbeat.
		if d := p.queue[0].due; !d.After(now) {
			overdue = true
		} else if d.Before(next) {
			next = d
		}
	}
	if dispatched || !overdue {
		p.lastProgress.Store(now.UnixNano())
	}
	// Reset under the lock so that wakeAt and the timer agree for anyone
	// who observes the state (tests stepping a fake clock).
	timer.Reset(next.Sub(now))
	p.wakeAt = next
	p.seenGen = p.gen
}

func (p *Poller) worker(ctx context.Context) {
	for e := range p.work {
		if ctx.Err() != nil {
			p.requeue(e)
			continue
		}
		start := p.clock.Now()
		p.poll(ctx, e.key)
		end := p.clock.Now()
		p.metrics.duration.Observe(end.Sub(start).Seconds())
		p.finish(e, end)
	}
}

// finish reschedules e after its poll ended at now.
func (p *Poller) finish(e *entry, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.doneLocked(e) {
		return
	}
	if e.triggered {
		e.triggered = false
		e.due = e.regularDue
	} else {
		e.nominal = e.nominal.Add(e.interval)
		e.due = e.nominal.Add(p.randomDelay(e.interval, 0))
	}
	if !e.due.After(now) {
		// The poll ran long or waited for a worker: one catch-up poll now,
		// and the cadence continues from here.
		e.nominal, e.due = now, now
	}
	if e.pendingTrigger {
		e.pendingTrigger = false
		if e.due.After(now) {
			e.triggered = true
			e.regularDue = e.due
			e.due = now
		}
	}
	heap.Push(&p.queue, e)
}

// requeue puts back an entry handed out but not polled because Run is
// stopping.
func (p *Poller) requeue(e *entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.doneLocked(e) {
		heap.Push(&p.queue, e)
	}
}

// doneLocked marks e as no longer in flight. If e was removed meanwhile, it
// drops it and returns true.
func (p *Poller) doneLocked(e *entry) (removed bool) {
	e.running = false
	p.busy--
	p.metrics.busy.Set(float64(p.busy))
	p.gen++
	p.notify()
	if !e.removed {
		return false
	}
	if p.entries[e.key] == e {
		delete(p.entries, e.key)
	}
	return true
}

func (p *Poller) changedLocked() {
	p.metrics.scheduled.Set(float64(p.live))
	p.gen++
	p.notify()
}

// notify asks the dispatcher for a turn without blocking.
func (p *Poller) notify() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// randomDelay returns a random delay in [0, jitter×interval), bounded by
// limit when limit > 0.
func (p *Poller) randomDelay(interval, limit time.Duration) time.Duration {
	n := time.Duration(p.jitter * float64(interval))
	if limit > 0 {
		n = min(n, limit)
	}
	if n <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(n)))
}

// settled reports whether the dispatcher has seen every change, no poll is
// in flight beyond busy, and its timer is set for after now: nothing
// happens until the clock passes now or the schedule changes.
func (p *Poller) settled(now time.Time, busy int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seenGen == p.gen && p.busy == busy && p.wakeAt.After(now)
}
