package restmapper

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	clientrestmapper "k8s.io/client-go/restmapper"
)

// discoveryTimeout bounds one discovery. A discovery runs detached from the
// context of the lookup that started it, because other lookups may be
// waiting for it; a lookup whose context ends stops waiting.
const discoveryTimeout = 30 * time.Second

// Results of a discovery, as counted by the discoveries metric.
const (
	resultSuccess  = "success"
	resultNotFound = "not_found"
	resultError    = "error"
)

// refresh runs a discovery of key (an API group or allGroups), or joins one
// in progress that started after key's last invalidation. A new discovery
// starts if key is stale, or else if the rate limit allows it. refresh
// reports whether a discovery ran or was joined, and its error.
func (m *Mapper) refresh(ctx context.Context, key string) (bool, error) {
	// Fast path for the common rate-limited miss, without the write lock.
	m.mu.RLock()
	idle := m.inflight[key] == nil && !m.staleLocked(key) && !m.allowedLocked(key, m.clock.Now())
	m.mu.RUnlock()
	if idle {
		return false, nil
	}

	m.mu.Lock()
	if f := m.inflight[key]; f != nil && f.seq >= m.invalidSeqLocked(key) {
		m.mu.Unlock()
		return true, f.wait(ctx)
	}
	now := m.clock.Now()
	if !m.staleLocked(key) && !m.allowedLocked(key, now) {
		m.mu.Unlock()
		return false, nil
	}
	m.seq++
	f := &flight{seq: m.seq, done: make(chan struct{})}
	st := m.stateLocked(key)
	st.lastAttempt, st.lastErr, st.attemptedSeq = now, nil, f.seq
	m.inflight[key] = f
	m.mu.Unlock()

	go m.discover(ctx, key, f)
	return true, f.wait(ctx)
}

// discover runs the discovery of flight f and applies its result to the
// cache before it lets f's waiters go.
func (m *Mapper) discover(parent context.Context, key string, f *flight) {
	defer close(f.done)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), discoveryTimeout)
	defer cancel()
	logger := m.loggerFor(parent)

	var result string
	if key == allGroups {
		result, f.err = m.discoverAll(ctx, f.seq)
	} else {
		result, f.err = m.discoverGroup(ctx, key, f.seq)
	}

	m.mu.Lock()
	if m.inflight[key] == f {
		delete(m.inflight, key)
	}
	if st := m.stateLocked(key); st.attemptedSeq == f.seq {
		st.lastErr = f.err
	}
	m.mu.Unlock()

	label := key
	if result == resultNotFound {
		// Keep the metric's cardinality bounded: a typo in a ScaledObject
		// must not create a time series.
		label = unservedGroupLabel
	}
	discoveries.WithLabelValues(label, result).Inc()

	switch {
	case f.err != nil:
		logger.Error(f.err, "API discovery failed", "group", key, "result", result)
	case result == resultNotFound:
		logger.V(2).Info("API group is not served", "group", key)
	default:
		logger.V(2).Info("Discovered API", "group", key)
	}
}

// discoverAll discovers every API group and replaces the cache with the
// result. Groups that failed to answer keep their previous data, if any,
// and heal on their next miss.
func (m *Mapper) discoverAll(ctx context.Context, seq uint64) (string, error) {
	groups, lists, err := m.client.ServerGroupsAndResourcesWithContext(ctx)
	if groups == nil {
		if err == nil {
			err = errors.New("the API server returned no API groups")
		}
		return resultError, fmt.Errorf("discovering all API groups: %w", err)
	}
	var failed map[schema.GroupVersion]error
	if partial := (*discovery.ErrGroupDiscoveryFailed)(nil); errors.As(err, &partial) {
		failed = partial.Groups
	} else if err != nil {
		return resultError, fmt.Errorf("discovering all API groups: %w", err)
	}
	byGV := make(map[string]*metav1.APIResourceList, len(lists))
	for _, list := range lists {
		if list != nil {
			byGV[list.GroupVersion] = list
		}
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	order := make([]string, 0, len(groups))
	for _, group := range groups {
		if group == nil {
			continue
		}
		order = append(order, group.Name)
		fresh := newGroupResources(*group)
		for _, v := range group.Versions {
			if _, ok := failed[schema.GroupVersion{Group: group.Name, Version: v.Version}]; ok {
				keepVersion(fresh, m.groups[group.Name], v.Version)
			} else if list, ok := byGV[v.GroupVersion]; ok {
				fresh.VersionedResources[v.Version] = list.APIResources
			}
		}
		m.applyGroupLocked(group.Name, fresh, seq)
	}
	for name := range m.groups {
		if !slices.Contains(order, name) {
			m.applyGroupLocked(name, nil, seq)
		}
	}
	m.applyOrderLocked(order, seq)
	m.loaded = true
	m.rebuildLocked()
	if failed != nil {
		return resultError, err
	}
	return resultSuccess, nil
}

// discoverGroup discovers one API group and replaces its cache entry: the
// group's versions from the group list, then the resources of each version.
// A group the server no longer lists is dropped from the cache.
func (m *Mapper) discoverGroup(ctx context.Context, name string, seq uint64) (string, error) {
	list, err := m.client.ServerGroupsWithContext(ctx)
	if err != nil {
		return resultError, fmt.Errorf("discovering API group %q: %w", name, err)
	}
	var group *metav1.APIGroup
	order := make([]string, 0, len(list.Groups))
	for i := range list.Groups {
		order = append(order, list.Groups[i].Name)
		if list.Groups[i].Name == name {
			group = &list.Groups[i]
		}
	}

	var fresh *clientrestmapper.APIGroupResources
	var errs []error
	if group != nil {
		m.mu.RLock()
		old := m.groups[name]
		m.mu.RUnlock()
		fresh = newGroupResources(*group)
		for _, v := range group.Versions {
			resources, err := m.client.ServerResourcesForGroupVersionWithContext(ctx, v.GroupVersion)
			switch {
			case err == nil:
				fresh.VersionedResources[v.Version] = resources.APIResources
			case apierrors.IsNotFound(err):
				// Removed since the group list was read.
			default:
				errs = append(errs, fmt.Errorf("discovering %s: %w", v.GroupVersion, err))
				keepVersion(fresh, old, v.Version)
			}
		}
	}

	m.mu.Lock()
	m.applyGroupLocked(name, fresh, seq)
	m.applyOrderLocked(order, seq)
	m.rebuildLocked()
	m.mu.Unlock()

	switch {
	case len(errs) > 0:
		return resultError, errors.Join(errs...)
	case group == nil:
		return resultNotFound, nil
	}
	return resultSuccess, nil
}

// newGroupResources returns an empty cache entry for group.
func newGroupResources(group metav1.APIGroup) *clientrestmapper.APIGroupResources {
	return &clientrestmapper.APIGroupResources{
		Group:              group,
		VersionedResources: make(map[string][]metav1.APIResource),
	}
}

// keepVersion copies the resources of version from old into fresh, for a
// version whose discovery failed.
func keepVersion(fresh, old *clientrestmapper.APIGroupResources, version string) {
	if old == nil {
		return
	}
	if resources, ok := old.VersionedResources[version]; ok {
		fresh.VersionedResources[version] = resources
	}
}

// applyGroupLocked stores the result of discovery seq for a group (nil: not
// served), unless a discovery that started later was applied already.
func (m *Mapper) applyGroupLocked(name string, fresh *clientrestmapper.APIGroupResources, seq uint64) {
	st := m.stateLocked(name)
	if seq <= st.appliedSeq {
		return
	}
	st.appliedSeq = seq
	if fresh == nil {
		delete(m.groups, name)
		return
	}
	m.groups[name] = fresh
}

// applyOrderLocked stores the group priority order of discovery seq, unless
// a discovery that started later was applied already.
func (m *Mapper) applyOrderLocked(order []string, seq uint64) {
	if seq <= m.orderSeq {
		return
	}
	m.order, m.orderSeq = order, seq
}

// rebuildLocked replaces the delegate with one built from the cache, in the
// server's group priority order. It does nothing before all groups were
// discovered once, so that lookups never see a partial view of the API.
func (m *Mapper) rebuildLocked() {
	if !m.loaded {
		return
	}
	ordered := make([]*clientrestmapper.APIGroupResources, 0, len(m.groups))
	seen := make(map[string]bool, len(m.groups))
	for _, name := range m.order {
		if g, ok := m.groups[name]; ok && !seen[name] {
			ordered = append(ordered, g)
			seen[name] = true
		}
	}
	var rest []string
	for name := range m.groups {
		if !seen[name] {
			rest = append(rest, name)
		}
	}
	slices.Sort(rest)
	for _, name := range rest {
		ordered = append(ordered, m.groups[name])
	}
	m.delegate = clientrestmapper.NewDiscoveryRESTMapperWithContext(ordered)
}

// loadError explains why no data is cached: the first discovery of all
// groups failed and the rate limit holds the next one back.
func (m *Mapper) loadError(ctx context.Context) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	last, err := m.lastAttemptLocked(allGroups)
	if err == nil {
		// Our own discovery was cancelled by ctx while another one runs.
		err = context.Cause(ctx)
	}
	if err == nil {
		err = errors.New("no result yet")
	}
	return fmt.Errorf("REST mapper has no API discovery data: discovery of all API groups at %s failed, next attempt after %s: %w",
		last.UTC().Format(time.RFC3339), last.Add(m.interval).UTC().Format(time.RFC3339), err)
}
