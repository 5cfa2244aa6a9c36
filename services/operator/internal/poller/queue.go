package poller

import "time"

// entry is the scheduling state of one key. It is allocated once, when the
// key is first Set, and reused for every poll of that key.
type entry struct {
	key      Key
	interval time.Duration

	// nominal is the cadence point (before jitter) of the next regular poll.
	nominal time.Time
	// due is when the key is next to be polled; it orders the heap.
	due time.Time
	// regularDue holds the due time of the next regular poll while a
	// triggered poll is pending or running, so the cadence survives it.
	regularDue time.Time

	// index is the position in the heap, -1 while not in it (while polling).
	index int
	// running is set while a worker polls the key.
	running bool
	// triggered marks the pending or running poll as one asked for by
	// Trigger rather than one of the cadence.
	triggered bool
	// pendingTrigger records a Trigger that arrived while the key was polled.
	pendingTrigger bool
	// removed marks a key removed while its poll was in flight.
	removed bool
}

// queue is a min-heap of entries by due time (container/heap).
type queue []*entry

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }

func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index = i
	q[j].index = j
}

func (q *queue) Push(x any) {
	e := x.(*entry)
	e.index = len(*q)
	*q = append(*q, e)
}

func (q *queue) Pop() any {
	old := *q
	n := len(old) - 1
	e := old[n]
	old[n] = nil
	e.index = -1
	*q = old[:n]
	return e
}
