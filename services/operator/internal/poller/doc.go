// Package poller is the scheduling core of ebb's scale loop: it calls a
// PollFunc for every registered key (a ScaledObject) at that key's polling
// interval.
//
// It is built for many thousands of keys on one operator: one dispatcher
// goroutine keeps a min-heap of next-due times driven by a single timer and
// hands due keys to a fixed pool of workers, so there is no goroutine per
// key, and steady-state polling allocates nothing (heap entries are reused).
//
// Guarantees: a key is never polled concurrently with itself; a poll that
// outlasts its interval is followed by exactly one catch-up poll, not a
// pile-up; the cadence of a key is kept from its due times (a late poll does
// not shift the following ones) unless the next due time has already passed,
// in which case the cadence restarts from now. Lateness is reported as the
// ebb_poller_lag_seconds histogram.
package poller
