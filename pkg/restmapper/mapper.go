package restmapper

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	clientrestmapper "k8s.io/client-go/restmapper"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// DefaultMinInterval is the default minimum time between two re-discoveries
// of one API group caused by lookup misses.
const DefaultMinInterval = 5 * time.Second

// allGroups is the key under which a discovery of every API group is tracked.
// No API group can be called "*": group names are DNS subdomains.
const allGroups = "*"

// Option configures a Mapper built by New.
type Option func(*Mapper)

// WithMinInterval sets the minimum time between two re-discoveries of one API
// group caused by lookup misses (DefaultMinInterval if not set). A discovery
// of all groups counts as a discovery of each of them. Invalidate and Reset
// are not limited by it. A negative interval is treated as zero, which leaves
// only the coalescing of concurrent misses.
func WithMinInterval(d time.Duration) Option {
	return func(m *Mapper) {
		m.interval = max(d, 0)
	}
}

// WithClock sets the clock used for rate limiting and for the times reported
// in errors; tests pass a fake clock. The default is the real clock.
func WithClock(c clock.PassiveClock) Option {
	return func(m *Mapper) {
		m.clock = c
	}
}

// WithLogger sets the logger used when a lookup's context carries none. The
// default is klog.Background().
func WithLogger(logger klog.Logger) Option {
	return func(m *Mapper) {
		m.logger = logger
	}
}

// Mapper is a meta.RESTMapper over API discovery that re-discovers an API
// group when a lookup misses it (rate-limited per group, concurrent misses
// coalesced) and when told the group changed (Invalidate, Reset, WatchCRDs).
// Build it with New. All methods are safe for concurrent use.
//
// The first lookup discovers all API groups. A lookup that names an API group
// (RESTMapping, RESTMappings, and the resource lookups with a non-empty
// group) re-discovers only that group; a resource lookup without a group, and
// ResourceSingularizer, re-discover all groups.
//
// A lookup re-discovers before answering when its group was invalidated, or
// when it names a version that the group is not known to serve ahead of one
// it is known to serve; it re-discovers after answering, and answers again,
// when the answer is a no-match error. A lookup without a version is answered
// from the cache while the cache has an answer: it learns that a kind's
// preferred version changed only through Invalidate (WatchCRDs) or Reset.
type Mapper struct {
	client   discovery.DiscoveryInterfaceWithContext
	interval time.Duration
	clock    clock.PassiveClock
	logger   klog.Logger

	mu sync.RWMutex
	// delegate answers lookups; nil until a discovery of all groups has
	// succeeded. It is rebuilt, never changed, when the cache changes.
	delegate meta.RESTMapperWithContext
	// groups holds the cached discovery data by group name. Entries are
	// replaced, never changed, so the delegate may keep pointing at them.
	groups map[string]*clientrestmapper.APIGroupResources
	// loaded is set once a discovery of all groups has been applied.
	loaded bool
	// order lists the groups in the API server's priority order, as of the
	// discovery numbered orderSeq.
	order    []string
	orderSeq uint64
	// seq numbers the discoveries in the order they start.
	seq uint64
	// maxInvalidSeq is the highest invalidSeq set by Invalidate.
	maxInvalidSeq uint64
	state         map[string]*keyState
	inflight      map[string]*flight
}

// keyState is the discovery bookkeeping of one API group, or of allGroups.
type keyState struct {
	// lastAttempt is when the newest discovery of the key started.
	lastAttempt time.Time
	// lastErr is the error of the newest discovery of the key, once done.
	lastErr error
	// attemptedSeq is the number of the newest discovery of the key.
	attemptedSeq uint64
	// appliedSeq is the number of the discovery whose result the cache holds
	// for this group, so an older discovery that ends later is ignored.
	appliedSeq uint64
	// invalidSeq is set by Invalidate (Reset for allGroups): a discovery
	// numbered at least invalidSeq must start before the key is fresh again.
	invalidSeq uint64
}

// flight is one discovery in progress, shared by every lookup that needs it.
type flight struct {
	seq  uint64
	done chan struct{}
	err  error // set before done is closed
}

// wait returns the flight's error once it is done, or ctx's error if ctx is
// done first. The discovery itself goes on for the other waiters.
func (f *flight) wait(ctx context.Context) error {
	select {
	case <-f.done:
		return f.err
	default:
	}
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

var (
	_ meta.ResettableRESTMapper            = (*Mapper)(nil)
	_ meta.ResettableRESTMapperWithContext = (*Mapper)(nil)
)

// New returns a Mapper that discovers API groups through client, which must
// not be nil. Discovery happens lazily: New makes no call, the first lookup
// discovers all groups. client should not cache discovery itself (use the
// client of a clientset, not a memory-cached one), or re-discovery returns
// the same stale data.
func New(client discovery.DiscoveryInterface, opts ...Option) *Mapper {
	m := &Mapper{
		client:   discovery.ToDiscoveryInterfaceWithContext(client),
		interval: DefaultMinInterval,
		clock:    clock.RealClock{},
		logger:   klog.Background(),
		groups:   make(map[string]*clientrestmapper.APIGroupResources),
		state:    make(map[string]*keyState),
		inflight: make(map[string]*flight),
	}
	for _, opt := range opts {
		opt(m)
	}
	m.logger = m.logger.WithName("restmapper")
	// Nothing is cached yet: the first lookup must discover all groups
	// whatever the rate limit says.
	m.stateLocked(allGroups).invalidSeq = 1
	return m
}

// Invalidate marks an API group ("" for the core group) stale: the next
// lookup that names the group, or names no group, re-discovers first,
// regardless of the rate limit. A discovery already in progress does not
// count, as it may have read the old state. Invalidate never calls discovery
// and does not block, so it is safe in informer event handlers.
func (m *Mapper) Invalidate(group string) {
	m.mu.Lock()
	seq := m.seq + 1
	m.stateLocked(group).invalidSeq = seq
	m.maxInvalidSeq = seq
	m.mu.Unlock()
	m.logger.V(4).Info("Invalidated API group", "group", group)
}

// Reset marks every API group stale: the next lookup re-discovers all groups,
// regardless of the rate limit. Until that discovery succeeds lookups are
// answered from the previous data. Reset never calls discovery. As it is not
// rate-limited, callers should not call it on every miss: misses heal by
// themselves.
func (m *Mapper) Reset() {
	m.ResetWithContext(context.Background())
}

// ResetWithContext is Reset with a context for logging.
func (m *Mapper) ResetWithContext(ctx context.Context) {
	m.mu.Lock()
	m.stateLocked(allGroups).invalidSeq = m.seq + 1
	m.mu.Unlock()
	m.loggerFor(ctx).V(4).Info("Invalidated all API groups")
}

// KindFor takes a partial resource and returns the single matching kind.
func (m *Mapper) KindFor(resource schema.GroupVersionResource) (schema.GroupVersionKind, error) {
	return m.KindForWithContext(context.Background(), resource)
}

// KindForWithContext takes a partial resource and returns the single
// matching kind, re-discovering on a miss.
func (m *Mapper) KindForWithContext(ctx context.Context, resource schema.GroupVersionResource) (schema.GroupVersionKind, error) {
	var gvk schema.GroupVersionKind
	err := m.lookup(ctx, resourceTarget(resource), func(d meta.RESTMapperWithContext) (err error) {
		gvk, err = d.KindForWithContext(ctx, resource)
		return err
	})
	return gvk, err
}

// KindsFor takes a partial resource and returns the matching kinds in
// priority order.
func (m *Mapper) KindsFor(resource schema.GroupVersionResource) ([]schema.GroupVersionKind, error) {
	return m.KindsForWithContext(context.Background(), resource)
}

// KindsForWithContext takes a partial resource and returns the matching
// kinds in priority order, re-discovering on a miss.
func (m *Mapper) KindsForWithContext(ctx context.Context, resource schema.GroupVersionResource) ([]schema.GroupVersionKind, error) {
	var gvks []schema.GroupVersionKind
	err := m.lookup(ctx, resourceTarget(resource), func(d meta.RESTMapperWithContext) (err error) {
		gvks, err = d.KindsForWithContext(ctx, resource)
		return err
	})
	return gvks, err
}

// ResourceFor takes a partial resource and returns the single matching
// resource. k8s.io/client-go/scale resolves scale targets with it.
func (m *Mapper) ResourceFor(input schema.GroupVersionResource) (schema.GroupVersionResource, error) {
	return m.ResourceForWithContext(context.Background(), input)
}

// ResourceForWithContext takes a partial resource and returns the single
// matching resource, re-discovering on a miss.
func (m *Mapper) ResourceForWithContext(ctx context.Context, input schema.GroupVersionResource) (schema.GroupVersionResource, error) {
	var gvr schema.GroupVersionResource
	err := m.lookup(ctx, resourceTarget(input), func(d meta.RESTMapperWithContext) (err error) {
		gvr, err = d.ResourceForWithContext(ctx, input)
		return err
	})
	return gvr, err
}

// ResourcesFor takes a partial resource and returns the matching resources
// in priority order.
func (m *Mapper) ResourcesFor(input schema.GroupVersionResource) ([]schema.GroupVersionResource, error) {
	return m.ResourcesForWithContext(context.Background(), input)
}

// ResourcesForWithContext takes a partial resource and returns the matching
// resources in priority order, re-discovering on a miss.
func (m *Mapper) ResourcesForWithContext(ctx context.Context, input schema.GroupVersionResource) ([]schema.GroupVersionResource, error) {
	var gvrs []schema.GroupVersionResource
	err := m.lookup(ctx, resourceTarget(input), func(d meta.RESTMapperWithContext) (err error) {
		gvrs, err = d.ResourcesForWithContext(ctx, input)
		return err
	})
	return gvrs, err
}

// RESTMapping returns the preferred mapping of a group kind, in the first of
// versions that serves it, or in the group's preferred version if versions
// is empty.
func (m *Mapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	return m.RESTMappingWithContext(context.Background(), gk, versions...)
}

// RESTMappingWithContext returns the preferred mapping of a group kind,
// re-discovering on a miss.
func (m *Mapper) RESTMappingWithContext(ctx context.Context, gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	var mapping *meta.RESTMapping
	err := m.lookup(ctx, target{key: gk.Group, versions: versions}, func(d meta.RESTMapperWithContext) (err error) {
		mapping, err = d.RESTMappingWithContext(ctx, gk, versions...)
		return err
	})
	return mapping, err
}

// RESTMappings returns all mappings of a group kind if versions is empty,
// else the mapping in the first of versions that serves it.
func (m *Mapper) RESTMappings(gk schema.GroupKind, versions ...string) ([]*meta.RESTMapping, error) {
	return m.RESTMappingsWithContext(context.Background(), gk, versions...)
}

// RESTMappingsWithContext returns the mappings of a group kind,
// re-discovering on a miss.
func (m *Mapper) RESTMappingsWithContext(ctx context.Context, gk schema.GroupKind, versions ...string) ([]*meta.RESTMapping, error) {
	var mappings []*meta.RESTMapping
	err := m.lookup(ctx, target{key: gk.Group, versions: versions}, func(d meta.RESTMapperWithContext) (err error) {
		mappings, err = d.RESTMappingsWithContext(ctx, gk, versions...)
		return err
	})
	return mappings, err
}

// ResourceSingularizer returns the singular name of a plural resource name
// of any group.
func (m *Mapper) ResourceSingularizer(resource string) (string, error) {
	return m.ResourceSingularizerWithContext(context.Background(), resource)
}

// ResourceSingularizerWithContext returns the singular name of a plural
// resource name of any group, re-discovering all groups on a miss.
func (m *Mapper) ResourceSingularizerWithContext(ctx context.Context, resource string) (string, error) {
	singular := resource
	err := m.lookup(ctx, target{key: allGroups}, func(d meta.RESTMapperWithContext) (err error) {
		singular, err = d.ResourceSingularizerWithContext(ctx, resource)
		return err
	})
	return singular, err
}

// target is what a lookup may re-discover.
type target struct {
	// key is the API group to re-discover, or allGroups.
	key string
	// versions are the versions the caller asked for, in preference order.
	versions []string
}

// resourceTarget is the target of a partial resource: an empty group
// matches any group.
func resourceTarget(r schema.GroupVersionResource) target {
	if r.Group == "" {
		return target{key: allGroups}
	}
	return target{key: r.Group, versions: []string{r.Version}}
}

// lookup runs fn against the cache, re-discovering t.key before fn when it
// is stale or misses a requested version, and after fn, followed by a second
// run of fn, when fn reports no match.
func (m *Mapper) lookup(ctx context.Context, t target, fn func(meta.RESTMapperWithContext) error) error {
	d, err := m.prepare(ctx, t)
	if err != nil {
		return err
	}
	err = fn(d)
	if !meta.IsNoMatchError(err) {
		return err
	}
	if ran, _ := m.refresh(ctx, t.key); ran {
		if err = fn(m.current()); !meta.IsNoMatchError(err) {
			return err
		}
	}
	return m.noMatch(t.key, err)
}

// prepare returns the mapper to answer t from, after any re-discovery that
// must come first. A failed re-discovery is logged and the lookup answered
// from the previous data; only a failure to load any data is returned.
func (m *Mapper) prepare(ctx context.Context, t target) (meta.RESTMapperWithContext, error) {
	m.mu.RLock()
	d := m.delegate
	needAll := d == nil || m.resetPendingLocked() || (t.key == allGroups && m.staleLocked(allGroups))
	needGroup := t.key != allGroups && (m.staleLocked(t.key) || m.unknownVersionLocked(t.key, t.versions))
	m.mu.RUnlock()

	if needAll {
		_, _ = m.refresh(ctx, allGroups)
	}
	if needGroup {
		_, _ = m.refresh(ctx, t.key)
	}
	if d = m.current(); d == nil {
		return nil, m.loadError(ctx)
	}
	return d, nil
}

// current returns the mapper built from the newest cache, nil before the
// first successful discovery of all groups.
func (m *Mapper) current() meta.RESTMapperWithContext {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.delegate
}

// stateLocked returns the bookkeeping of key, creating it. m.mu must be
// held for writing, or for reading if key is known to exist.
func (m *Mapper) stateLocked(key string) *keyState {
	st, ok := m.state[key]
	if !ok {
		st = &keyState{}
		m.state[key] = st
	}
	return st
}

// peekLocked returns the bookkeeping of key without creating it.
func (m *Mapper) peekLocked(key string) keyState {
	if st, ok := m.state[key]; ok {
		return *st
	}
	return keyState{}
}

// invalidSeqLocked returns the number a discovery of key must have at least
// to satisfy the invalidations of key. A discovery of all groups answers the
// invalidation of any group.
func (m *Mapper) invalidSeqLocked(key string) uint64 {
	if key == allGroups {
		return max(m.peekLocked(allGroups).invalidSeq, m.maxInvalidSeq)
	}
	return m.peekLocked(key).invalidSeq
}

// attemptedSeqLocked returns the number of the newest discovery covering key.
func (m *Mapper) attemptedSeqLocked(key string) uint64 {
	all := m.peekLocked(allGroups).attemptedSeq
	if key == allGroups {
		return all
	}
	return max(m.peekLocked(key).attemptedSeq, all)
}

// staleLocked reports whether key was invalidated after its newest discovery
// started (for allGroups: whether any group was, or Reset was called).
func (m *Mapper) staleLocked(key string) bool {
	return m.invalidSeqLocked(key) > m.attemptedSeqLocked(key)
}

// resetPendingLocked reports whether Reset was called (or nothing was ever
// discovered) since the newest discovery of all groups started.
func (m *Mapper) resetPendingLocked() bool {
	st := m.peekLocked(allGroups)
	return st.invalidSeq > st.attemptedSeq
}

// lastAttemptLocked returns when the newest discovery covering key started,
// and its error.
func (m *Mapper) lastAttemptLocked(key string) (time.Time, error) {
	st := m.peekLocked(key)
	if key != allGroups {
		if all := m.peekLocked(allGroups); all.lastAttempt.After(st.lastAttempt) {
			return all.lastAttempt, all.lastErr
		}
	}
	return st.lastAttempt, st.lastErr
}

// allowedLocked reports whether the rate limit lets a miss re-discover key.
func (m *Mapper) allowedLocked(key string, now time.Time) bool {
	last, _ := m.lastAttemptLocked(key)
	return last.IsZero() || now.Sub(last) >= m.interval
}

// unknownVersionLocked reports whether versions (in preference order) name a
// version that group is not known to serve before one that it is: the
// answer could change after re-discovery.
func (m *Mapper) unknownVersionLocked(group string, versions []string) bool {
	cached := m.groups[group]
	for _, v := range versions {
		if v == "" || v == runtime.APIVersionInternal {
			continue
		}
		if cached != nil {
			if _, ok := cached.VersionedResources[v]; ok {
				return false
			}
		}
		return true
	}
	return false
}

// loggerFor returns the logger of ctx if it carries one, else m's logger.
func (m *Mapper) loggerFor(ctx context.Context) klog.Logger {
	if logger, err := logr.FromContext(ctx); err == nil {
		return logger.WithName("restmapper")
	}
	return m.logger
}
