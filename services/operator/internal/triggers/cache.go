package triggers

import (
	"errors"
	"fmt"
	"sync"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/formula"
	"github.com/ebb-autoscaler/ebb/pkg/scalers"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
)

// ErrClosed is returned by Scalers after Close.
var ErrClosed = errors.New("trigger cache closed")

// Trigger is one trigger of a ScaledObject with its live scaler.
type Trigger struct {
	// Index is the trigger's position in spec.triggers.
	Index int
	// Type and Name are the trigger's type and (optional) name.
	Type, Name string
	// MetricName is the trigger's external metric name (s<i>-...) from its
	// metadata; empty for cpu and memory triggers, for external scalers
	// (whose metric name comes from the scaler: see ExternalMetricName)
	// and when the trigger could not be parsed.
	MetricName string
	// Config is the parsed trigger; nil when parsing failed (see Err).
	Config scalers.Config
	// Scaler reads the trigger's event source. It is nil for cpu and memory
	// triggers (the HPA reads Resource metrics itself) and when the
	// scaler could not be built (see Err). It is owned by the Cache: callers
	// must not close it.
	Scaler scaler.Scaler
	// MetricSpec is the trigger's HPA metric from its metadata, without
	// the External metric's selector; zero when it could not be built and
	// for triggers whose scaler defines their metric (see Metric).
	MetricSpec autoscalingv2.MetricSpec
	// Err is why Config or Scaler is missing for a trigger that needs one:
	// a metadata error from scalers.Parse, an error wrapping
	// scaler.ErrNotImplemented for types ebb has no scaler for yet, and the
	// like. Other triggers of the ScaledObject are unaffected.
	Err error
	// UseCachedMetrics is the trigger's useCachedMetrics: the HPA's reads
	// are answered from the scale loop's last poll (see Remember, Cached).
	UseCachedMetrics bool

	// last is the scale loop's last poll, kept for UseCachedMetrics; nil
	// for other triggers. It lives and dies with the generation's entry.
	last *memo
	// fromScaler holds, for a trigger whose scaler defines its HPA metric
	// (external, external-push), that metric once the scaler gave it; nil
	// for other triggers. It lives and dies with the generation's entry.
	fromScaler *specMemo
}

// Resolver turns trigger index of so into the input of scalers.Parse,
// resolving <key>FromEnv values and the trigger's authentication. The
// result's secrets are never logged.
type Resolver func(so *v1alpha1.ScaledObject, index int) (scalers.Trigger, error)

// JobResolver is Resolver for the triggers of a ScaledJob.
type JobResolver func(sj *v1alpha1.ScaledJob, index int) (scalers.Trigger, error)

// Option configures a Cache.
type Option func(*Cache)

// WithResolver sets how triggers are resolved before parsing. The default
// uses the trigger's metadata as written, without authentication.
func WithResolver(r Resolver) Option {
	return func(c *Cache) { c.resolve = r }
}

// WithJobResolver sets how the triggers of ScaledJobs are resolved before
// parsing. The default uses the trigger's metadata as written, without
// authentication.
func WithJobResolver(r JobResolver) Option {
	return func(c *Cache) { c.resolveJob = r }
}

// WithAuthResolver resolves the triggers of ScaledObjects and ScaledJobs
// with r (its Resolve and ResolveJob), and indexes what each resolution
// read (Secrets, ConfigMaps, authentication objects, filePath files), so
// that a change to one of them invalidates the triggers built from it (see
// Changed). It replaces WithResolver and WithJobResolver.
func WithAuthResolver(r *AuthResolver) Option {
	return func(c *Cache) { c.auth = r }
}

// WithScalerConstructor replaces scaler.New, for tests of the cache's
// users.
func WithScalerConstructor(f func(scalers.Config, scaler.Deps) (scaler.Scaler, error)) Option {
	return func(c *Cache) { c.newScaler = f }
}

// Cache holds the live scalers of each ScaledObject and ScaledJob, keyed
// by kind, namespace and name. It is safe for concurrent use. Scalers are
// built outside the cache lock, so one object's build never blocks readers
// of another, and concurrent first calls for one generation build once.
type Cache struct {
	deps       scaler.Deps
	resolve    Resolver
	resolveJob JobResolver
	auth       *AuthResolver
	newScaler  func(scalers.Config, scaler.Deps) (scaler.Scaler, error)

	mu      sync.Mutex
	entries map[Owner]*entry
	// refs indexes the entries by what their resolution read: an object
	// changed → the entries built from it (see Changed).
	refs         map[Ref]map[*entry]struct{}
	onInvalidate func(Owner)
	closed       bool
}

// entry is the scalers of one ScaledObject generation. triggers, formula
// and formulaErr are written once, before ready is closed, and only read
// after. reads, built, dirty and stale are guarded by the Cache's mu.
type entry struct {
	owner      Owner
	uid        types.UID
	generation int64
	ready      chan struct{}
	triggers   []Trigger
	formula    *formula.Program
	formulaErr error

	// reads are the objects the build read, with their versions.
	reads map[Ref]*read
	// built is set when the build has finished.
	built bool
	// dirty: an object the build read changed while it ran.
	dirty bool
	// stale: built from an object that has changed since; the next use
	// builds anew. Set from dirty when the build ends.
	stale bool
}

// NewCache returns an empty Cache whose scalers get deps.
func NewCache(deps scaler.Deps, opts ...Option) *Cache {
	c := &Cache{
		deps:       deps,
		resolve:    DefaultResolver,
		resolveJob: DefaultJobResolver,
		newScaler:  scaler.New,
		entries:    map[Owner]*entry{},
		refs:       map[Ref]map[*entry]struct{}{},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// DefaultResolver builds the scalers.Trigger of trigger index of so from
// its metadata as written. The ScaledObject controller builds the HPA's
// metrics from the same triggers.
// It resolves no authentication.
func DefaultResolver(so *v1alpha1.ScaledObject, index int) (scalers.Trigger, error) {
	if index < 0 || index >= len(so.Spec.Triggers) {
		return scalers.Trigger{}, fmt.Errorf("no trigger %d", index)
	}
	t := so.Spec.Triggers[index]
	return scalers.Trigger{
		Index:            index,
		Type:             t.Type,
		Name:             t.Name,
		Metadata:         t.Metadata,
		MetricType:       t.MetricType,
		Namespace:        so.Namespace,
		ScaledObjectName: so.Name,
		AsMetricSource:   so.HasScalingModifiersFormula(),
	}, nil
}

// DefaultJobResolver is DefaultResolver for trigger index of a ScaledJob.
// ScaledJob triggers have no scaling modifiers formula.
func DefaultJobResolver(sj *v1alpha1.ScaledJob, index int) (scalers.Trigger, error) {
	if index < 0 || index >= len(sj.Spec.Triggers) {
		return scalers.Trigger{}, fmt.Errorf("no trigger %d", index)
	}
	t := sj.Spec.Triggers[index]
	return scalers.Trigger{
		Index:            index,
		Type:             t.Type,
		Name:             t.Name,
		Metadata:         t.Metadata,
		MetricType:       t.MetricType,
		Namespace:        sj.Namespace,
		ScaledObjectName: sj.Name,
	}, nil
}

// Scalers returns the triggers of so, in trigger order, with their scalers.
// They are built on the first call for a ScaledObject generation (UID and
// metadata.generation), and again after an object their resolution read
// changed (see Changed), and reused in between; a newer generation (or a new UID
// under the same name) replaces them, and the old scalers are closed. A
// call with an older generation than the cached one gets the cached, newer
// triggers. Per-trigger build failures are in Trigger.Err; the error is
// non-nil only after Close. The returned slice is shared: do not modify it.
func (c *Cache) Scalers(so *v1alpha1.ScaledObject) ([]Trigger, error) {
	e, err := c.soEntry(so)
	if err != nil {
		return nil, err
	}
	return e.triggers, nil
}

// JobScalers is Scalers for a ScaledJob: its triggers, built once per
// ScaledJob generation with the JobResolver, reused and closed as
// Scalers' are. They are kept apart from those of a ScaledObject of the
// same name. The returned slice is shared: do not modify it.
func (c *Cache) JobScalers(sj *v1alpha1.ScaledJob) ([]Trigger, error) {
	key := Owner{Kind: v1alpha1.ScaledJobKind, ObjectName: cache.ObjectName{Namespace: sj.Namespace, Name: sj.Name}}
	e, err := c.entry(key, sj.UID, sj.Generation, func(e *entry) {
		track := c.tracker(e)
		e.triggers = c.build(sj.Spec.Triggers, func(i int) (scalers.Trigger, error) {
			if c.auth != nil {
				return c.auth.resolveJobTracked(sj, i, track)
			}
			return c.resolveJob(sj, i)
		})
	})
	if err != nil {
		return nil, err
	}
	return e.triggers, nil
}

// Formula returns the compiled spec.advanced.scalingModifiers.formula of
// so, compiled once per generation like the scalers (see Scalers), over
// the variables formula.Variables gives. It returns nil and no error when
// so has no formula, and the compile error when the formula is invalid.
func (c *Cache) Formula(so *v1alpha1.ScaledObject) (*formula.Program, error) {
	e, err := c.soEntry(so)
	if err != nil {
		return nil, err
	}
	return e.formula, e.formulaErr
}

// soEntry returns the built entry of so's generation, building it on
// first use.
func (c *Cache) soEntry(so *v1alpha1.ScaledObject) (*entry, error) {
	key := Owner{Kind: v1alpha1.ScaledObjectKind, ObjectName: cache.ObjectName{Namespace: so.Namespace, Name: so.Name}}
	return c.entry(key, so.UID, so.Generation, func(e *entry) {
		track := c.tracker(e)
		e.triggers = c.build(so.Spec.Triggers, func(i int) (scalers.Trigger, error) {
			if c.auth != nil {
				return c.auth.resolveTracked(so, i, track)
			}
			return c.resolve(so, i)
		})
		if so.HasScalingModifiersFormula() {
			e.formula, e.formulaErr = formula.Compile(so.Spec.Advanced.ScalingModifiers.Formula, formula.Variables(so.Spec.Triggers))
			if e.formulaErr != nil {
				e.formulaErr = fmt.Errorf("spec.advanced.scalingModifiers.formula: %w", e.formulaErr)
			}
		}
	})
}

// entry returns the built entry of key's generation (uid and generation),
// building it with build on first use, or when the entry is stale (built
// from an object that has changed since).
func (c *Cache) entry(key Owner, uid types.UID, generation int64, build func(*entry)) (*entry, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	e := c.entries[key]
	if e != nil && e.uid == uid && (e.generation > generation || (e.generation == generation && !e.stale)) {
		// The cached generation, or a newer one than the caller's (even
		// stale: a caller with the newer object rebuilds it).
		c.mu.Unlock()
		<-e.ready
		return e, nil
	}
	old := e
	if old != nil {
		c.dropRefs(old)
	}
	e = &entry{owner: key, uid: uid, generation: generation, ready: make(chan struct{})}
	c.entries[key] = e
	c.mu.Unlock()

	// Build outside the lock; others asking for this generation wait on
	// ready, others asking for other keys are not held up.
	build(e)

	c.mu.Lock()
	e.built = true
	// An object the build read changed while it ran: what it read may be
	// stale. Callers waiting for this build get it; the next use builds
	// anew, and the owner's controller hears of it.
	stale := e.dirty && c.entries[key] == e
	e.stale = stale
	notify := c.onInvalidate
	c.mu.Unlock()
	close(e.ready)
	if old != nil {
		closeEntry(old)
	}
	if stale && notify != nil {
		notify(key)
	}
	return e, nil
}

// build makes the triggers ts, resolving trigger i with resolve.
// scaler.New does no I/O, so this is fast.
func (c *Cache) build(ts []v1alpha1.ScaleTrigger, resolve func(i int) (scalers.Trigger, error)) []Trigger {
	out := make([]Trigger, len(ts))
	for i, st := range ts {
		t := &out[i]
		t.Index, t.Type, t.Name = i, st.Type, st.Name
		t.UseCachedMetrics = st.UseCachedMetrics
		if st.UseCachedMetrics {
			t.last = &memo{}
		}

		in, err := resolve(i)
		if err != nil {
			t.Err = fmt.Errorf("trigger %d (%s): %w", i, st.Type, err)
			continue
		}
		cfg, _, err := scalers.Parse(in)
		if err != nil {
			t.Err = err
			continue
		}
		t.Config = cfg

		spec, specErr := cfg.MetricSpec()
		if specErr == nil {
			t.MetricSpec = spec
			if spec.External != nil {
				t.MetricName = spec.External.Metric.Name
			}
		} else if errors.Is(specErr, scalers.ErrMetricSpecFromScaler) {
			t.fromScaler = &specMemo{}
		}
		if _, ok := cfg.(*scalers.CPUMemoryConfig); ok {
			// The HPA reads Resource metrics itself: no scaler.
			t.Err = specErr
			continue
		}
		s, err := c.newScaler(cfg, c.deps)
		switch {
		case err != nil:
			t.Err = err
		case specErr != nil && !errors.Is(specErr, scalers.ErrMetricSpecFromScaler):
			t.Err = specErr
			_ = s.Close()
		default:
			t.Scaler = s
		}
	}
	return out
}

// closeEntry waits for e's build to finish and closes its scalers.
func closeEntry(e *entry) {
	<-e.ready
	for _, t := range e.triggers {
		if t.Scaler != nil {
			_ = t.Scaler.Close()
		}
	}
}

// Forget closes and drops the scalers of the ScaledObject key, for when it
// is deleted.
func (c *Cache) Forget(key cache.ObjectName) {
	c.forget(Owner{Kind: v1alpha1.ScaledObjectKind, ObjectName: key})
}

// ForgetJob closes and drops the scalers of the ScaledJob key, for when it
// is deleted (or paused).
func (c *Cache) ForgetJob(key cache.ObjectName) {
	c.forget(Owner{Kind: v1alpha1.ScaledJobKind, ObjectName: key})
}

func (c *Cache) forget(key Owner) {
	c.mu.Lock()
	e := c.entries[key]
	delete(c.entries, key)
	if e != nil {
		c.dropRefs(e)
	}
	c.mu.Unlock()
	if e != nil {
		closeEntry(e)
	}
}

// Close closes every scaler and makes later Scalers calls fail with
// ErrClosed. It is idempotent.
func (c *Cache) Close() {
	c.mu.Lock()
	entries := c.entries
	c.entries = map[Owner]*entry{}
	c.refs = map[Ref]map[*entry]struct{}{}
	c.closed = true
	c.mu.Unlock()
	for _, e := range entries {
		closeEntry(e)
	}
}

// Len returns the number of ScaledObjects and ScaledJobs with cached
// scalers.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
