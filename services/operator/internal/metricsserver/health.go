package metricsserver

import (
	"slices"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/triggers"
)

// objectHealth is what the server knows of the reads of one ScaledObject's
// metrics since the operator started.
type objectHealth struct {
	// generation is the newest ScaledObject generation seen; metrics of
	// triggers an older generation had are dropped when it grows.
	generation int64
	metrics    map[string]*metricHealth
}

// metricHealth is one metric's state, keyed by its external metric name.
type metricHealth struct {
	// failures counts consecutive failed reads.
	failures int32
	// fallback is true while the metric's failures are answered with (or,
	// with a formula, handled by) the ScaledObject's fallback.
	fallback bool
}

func (o *objectHealth) inFallback() bool {
	for _, m := range o.metrics {
		if m.fallback {
			return true
		}
	}
	return false
}

// update runs fn on so's health under the lock, creating it on first use,
// and keeps the fallback gauge right. It returns what fn returns: whether
// the change is one a status would show.
func (s *Server) update(so *v1alpha1.ScaledObject, fn func(o *objectHealth) bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.health[so.UID]
	if o == nil {
		o = &objectHealth{generation: so.Generation, metrics: map[string]*metricHealth{}}
		s.health[so.UID] = o
	}
	before := o.inFallback()
	changed := fn(o)
	s.countFallbackLocked(before, o.inFallback())
	return changed
}

// notifyIf tells the notifier about so when changed and so has a fallback
// (only then does its status show health). Call it without s.mu held.
func (s *Server) notifyIf(so *v1alpha1.ScaledObject, changed bool) {
	if changed && so.Spec.Fallback != nil && s.notify != nil {
		s.notify(cache.NewObjectName(so.Namespace, so.Name))
	}
}

// countFallbackLocked updates the count of ScaledObjects in fallback when
// one goes from before to after. s.mu must be held.
func (s *Server) countFallbackLocked(before, after bool) {
	switch {
	case !before && after:
		s.inFallback++
		fallbackObjects.Inc()
	case before && !after:
		s.inFallback--
		fallbackObjects.Dec()
	}
}

// metric returns the state of name, creating it; created reports whether
// it is new.
func (o *objectHealth) metric(name string) (m *metricHealth, created bool) {
	if m = o.metrics[name]; m == nil {
		m = &metricHealth{}
		o.metrics[name] = m
		created = true
	}
	return m, created
}

// prune drops, once per new generation of so, the state of metrics that
// none of its triggers has any more, so a removed trigger's failures do
// not linger in status.health.
func (s *Server) prune(so *v1alpha1.ScaledObject, trs []triggers.Trigger) {
	s.mu.Lock()
	o := s.health[so.UID]
	stale := o != nil && so.Generation > o.generation
	s.mu.Unlock()
	if !stale {
		return
	}
	changed := s.update(so, func(o *objectHealth) bool {
		if so.Generation <= o.generation {
			return false // another call pruned first
		}
		o.generation = so.Generation
		changed := false
		for name := range o.metrics {
			if !slices.ContainsFunc(trs, func(t triggers.Trigger) bool { return keeps(t, name) }) {
				delete(o.metrics, name)
				changed = true
			}
		}
		return changed
	})
	s.notifyIf(so, changed)
}

// keeps reports whether the health kept under name may belong to t: its
// key, or, for a trigger whose scaler names its metric, any "s<index>-"
// name (the new generation's scaler has not named it yet, and will most
// likely give the same name).
func keeps(t triggers.Trigger, name string) bool {
	if healthKey(t) == name {
		return true
	}
	if !t.ScalerDefinesMetric() || t.ExternalMetricName() != "" {
		return false
	}
	i, ok := metricIndex(name)
	return ok && i == t.Index
}

// dropPlaceholder drops the health kept under t's placeholder key (see
// placeholderKey) once t's scaler has named its metric, whose name is the
// key from then on. It reports whether a status would show the change.
func (s *Server) dropPlaceholder(so *v1alpha1.ScaledObject, t triggers.Trigger) bool {
	if !t.ScalerDefinesMetric() || t.ExternalMetricName() == "" {
		return false
	}
	key := placeholderKey(t)
	s.mu.Lock()
	stale := false
	if o := s.health[so.UID]; o != nil {
		_, stale = o.metrics[key]
	}
	s.mu.Unlock()
	if !stale {
		return false
	}
	return s.update(so, func(o *objectHealth) bool {
		if _, ok := o.metrics[key]; !ok {
			return false
		}
		delete(o.metrics, key)
		return true
	})
}

// recordSuccess resets the consecutive failures of one metric and ends its
// fallback. It reports whether a status would show the change.
func (s *Server) recordSuccess(so *v1alpha1.ScaledObject, metricName string) bool {
	return s.update(so, func(o *objectHealth) bool {
		m, created := o.metric(metricName)
		changed := created || m.failures > 0 || m.fallback
		m.failures, m.fallback = 0, false
		return changed
	})
}

// recordFailure counts one more consecutive failure of one metric and
// returns the count, and whether a status would show the change: only the
// first failure (Happy to Failing) is one; the fallback's start is
// reported by setFallback.
func (s *Server) recordFailure(so *v1alpha1.ScaledObject, metricName string) (n int32, changed bool) {
	changed = s.update(so, func(o *objectHealth) bool {
		m, created := o.metric(metricName)
		changed := created || m.failures == 0
		if m.failures < 1<<30 {
			m.failures++
		}
		n = m.failures
		return changed
	})
	return n, changed
}

// setFallback records, for each metric named in flags, whether its
// failures are being answered with the fallback, and reports whether that
// changed.
func (s *Server) setFallback(so *v1alpha1.ScaledObject, flags map[string]bool) bool {
	if len(flags) == 0 {
		return false
	}
	return s.update(so, func(o *objectHealth) bool {
		changed := false
		for name, on := range flags {
			m, created := o.metric(name)
			if created || m.fallback != on {
				changed = true
			}
			m.fallback = on
		}
		return changed
	})
}

// Health returns, per external metric name, the consecutive failed reads
// seen while serving the ScaledObject uid, in the form of status.health:
// Happy with 0 failures after a success, Failing with the count otherwise.
// Metrics never read are absent; nil means no metric of uid was read since
// the operator started, so the status it had before still stands. The map
// is a copy.
func (s *Server) Health(uid types.UID) map[string]v1alpha1.HealthStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.health[uid]
	if o == nil || len(o.metrics) == 0 {
		return nil
	}
	out := make(map[string]v1alpha1.HealthStatus, len(o.metrics))
	for name, m := range o.metrics {
		st := v1alpha1.HealthStatusHappy
		if m.failures > 0 {
			st = v1alpha1.HealthStatusFailing
		}
		out[name] = v1alpha1.HealthStatus{NumberOfFailures: ptr.To(m.failures), Status: st}
	}
	return out
}

// FallbackMetrics returns, sorted, the external metric names of uid whose
// failures are being answered with (or, with a formula, handled by) its
// fallback; empty when none is.
func (s *Server) FallbackMetrics(uid types.UID) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.health[uid]
	if o == nil {
		return nil
	}
	var out []string
	for name, m := range o.metrics {
		if m.fallback {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Forget drops the health of the ScaledObject uid, for when it is deleted.
func (s *Server) Forget(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.health[uid]; o != nil {
		s.countFallbackLocked(o.inFallback(), false)
		delete(s.health, uid)
	}
}
