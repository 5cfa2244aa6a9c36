package scaleloop

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
)

// DefaultInformerRetry is how long DynamicReplicas waits before it tries
// again to start the informer of a resource that could not be watched.
const DefaultInformerRetry = 5 * time.Minute

// crdResource is where the /scale paths of custom resources are read.
var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// workloadPaths are where built-in workloads keep their replicas. The API
// server defaults spec.replicas to 1 and omits a zero
// status.readyReplicas.
var workloadPaths = scalePaths{
	spec:      []string{"spec", "replicas"},
	status:    []string{"status", "replicas"},
	unsetSpec: 1,
	builtin:   true,
}

// builtinScalePaths are the built-in scalable kinds that DynamicReplicas
// watches (Deployments and StatefulSets have typed informers). Every
// other resource is a custom resource whose CRD tells its paths.
var builtinScalePaths = map[schema.GroupResource]scalePaths{
	{Group: "apps", Resource: "replicasets"}: workloadPaths,
	{Resource: "replicationcontrollers"}:     workloadPaths,
}

// readyPath is where workloads, built-in or not (Argo Rollouts), keep
// their ready replicas. A CRD's /scale has no ready replicas.
var readyPath = []string{"status", "readyReplicas"}

// scalePaths tells where a resource's objects keep the values of their
// /scale subresource.
type scalePaths struct {
	// spec, status and selector are the specReplicasPath,
	// statusReplicasPath and labelSelectorPath (selector empty: none).
	spec, status, selector []string
	// unsetSpec is the replicas of an object without a value at spec: 1
	// for built-in kinds (the API server's default), 0 for custom
	// resources (as their /scale reports them).
	unsetSpec int32
	// builtin reports a built-in kind, whose status.readyReplicas, absent
	// when zero, is its ready replicas.
	builtin bool
}

// scaleTarget is a scale target as the dynamic informers cache it: its
// identity and its replica values, a few hundred bytes whatever the
// object's size.
type scaleTarget struct {
	metav1.ObjectMeta
	// Spec is the desired replicas (the /scale's spec.replicas).
	Spec int32
	// Status is the /scale's status.replicas.
	Status int32
	// Ready is status.readyReplicas, when HasReady.
	Ready    int32
	HasReady bool
	// Selector is the value at the labelSelectorPath ("" without one).
	Selector string
	// Unreadable is set when a value is not a replica count: the object
	// is read through /scale, which tells what is wrong.
	Unreadable bool
}

// GetObjectKind implements runtime.Object.
func (t *scaleTarget) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject implements runtime.Object.
func (t *scaleTarget) DeepCopyObject() runtime.Object {
	c := *t
	t.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	return &c
}

// slim is the transform of a resource's informer: it keeps what the scale
// loop reads. Transforms must be idempotent: an object that is not
// Unstructured (slimmed already) is returned as it is.
func (p scalePaths) slim(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil
	}
	t := &scaleTarget{ObjectMeta: metav1.ObjectMeta{Name: u.GetName(), Namespace: u.GetNamespace(), UID: u.GetUID(),
		ResourceVersion: u.GetResourceVersion(), Generation: u.GetGeneration()}}
	spec, found, ok1 := nestedInt32(u.Object, p.spec)
	if t.Spec = spec; !found {
		t.Spec = p.unsetSpec
	}
	var ok2, ok3 bool
	t.Status, _, ok2 = nestedInt32(u.Object, p.status)
	t.Ready, t.HasReady, ok3 = nestedInt32(u.Object, readyPath)
	t.HasReady = t.HasReady || p.builtin
	if len(p.selector) > 0 {
		s, _, err := unstructured.NestedString(u.Object, p.selector...)
		t.Selector, t.Unreadable = s, err != nil
	}
	t.Unreadable = t.Unreadable || !ok1 || !ok2 || !ok3
	return t, nil
}

// nestedInt32 returns the integer at path in obj; found is false when
// there is none, ok false when the value is not an int32.
func nestedInt32(obj map[string]any, path []string) (v int32, found, ok bool) {
	raw, found, err := unstructured.NestedFieldNoCopy(obj, path...)
	if err != nil {
		return 0, false, false
	}
	if !found || raw == nil {
		return 0, false, true
	}
	var i int64
	switch n := raw.(type) {
	case int64:
		i = n
	case int32:
		i = int64(n)
	case int:
		i = int64(n)
	case float64:
		if n != math.Trunc(n) || math.IsInf(n, 0) {
			return 0, true, false
		}
		i = int64(n)
	default:
		return 0, true, false
	}
	if i < math.MinInt32 || i > math.MaxInt32 {
		return 0, true, false
	}
	return int32(i), true, true
}

// DynamicReplicas caches the replicas of the scale targets that are
// neither Deployments nor StatefulSets (ReplicaSets, ReplicationControllers
// and any custom resource with a /scale subresource, such as Argo
// Rollouts), so that reading them costs no API request. It runs one
// dynamic informer per GroupVersionResource that some tracked ScaledObject
// targets, started when the first one does and stopped when the last one
// no longer does (Track, Untrack, EventHandler), each slimmed to the
// objects' identity and replica values. Where the values are comes from
// the resource's CRD (its /scale's specReplicasPath, statusReplicasPath and
// labelSelectorPath; status.readyReplicas when the object has one), or is
// known for built-in kinds.
//
// A resource whose paths cannot be learnt (no CRD, no /scale in the CRD's
// version) or that cannot be listed and watched (RBAC) is read through
// /scale as before, said once in the log, and tried again after the
// retry period (DefaultInformerRetry). Objects are read through /scale
// too until the resource's cache has synced, and when they are not in it.
type DynamicReplicas struct {
	client    dynamic.Interface
	namespace string
	readyPods func(ctx context.Context, namespace string, selector labels.Selector) (int32, error)
	retry     time.Duration
	clock     clock.Clock

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.RWMutex
	stopped  bool
	targets  map[cache.ObjectName]schema.GroupVersionResource
	watching map[schema.GroupVersionResource]*resourceInformer
}

// resourceInformer is the informer of one GroupVersionResource.
type resourceInformer struct {
	// refs counts the ScaledObjects that target the resource.
	refs   int
	cancel context.CancelFunc
	// informer is the running informer, nil while it is starting or
	// waiting to be tried again. Guarded by DynamicReplicas.mu.
	informer cache.SharedIndexInformer
}

// DynamicOption configures DynamicReplicas.
type DynamicOption func(*DynamicReplicas)

// WithReadyPods counts the running and ready pods a selector selects: the
// ready replicas of a custom resource without status.readyReplicas (see
// Counts). Without it, such a target's ready replicas are its /scale's
// status.replicas.
func WithReadyPods(f func(ctx context.Context, namespace string, selector labels.Selector) (int32, error)) DynamicOption {
	return func(d *DynamicReplicas) { d.readyPods = f }
}

// WithInformerRetry sets how long after a failure a resource's informer
// is tried again (DefaultInformerRetry by default).
func WithInformerRetry(retry time.Duration) DynamicOption {
	return func(d *DynamicReplicas) { d.retry = retry }
}

// WithInformerClock sets the clock of the retries.
func WithInformerClock(c clock.Clock) DynamicOption { return func(d *DynamicReplicas) { d.clock = c } }

// NewDynamicReplicas returns a DynamicReplicas that watches the objects of
// namespace ("" for all) through client. Its informers run on ctx, which
// also gives their logger, until ctx is done or Shutdown.
func NewDynamicReplicas(ctx context.Context, client dynamic.Interface, namespace string, opts ...DynamicOption) *DynamicReplicas {
	d := &DynamicReplicas{
		client:    client,
		namespace: namespace,
		retry:     DefaultInformerRetry,
		clock:     clock.RealClock{},
		targets:   map[cache.ObjectName]schema.GroupVersionResource{},
		watching:  map[schema.GroupVersionResource]*resourceInformer{},
	}
	for _, o := range opts {
		o(d)
	}
	d.ctx, d.cancel = context.WithCancel(ctx)
	return d
}

// Shutdown stops every informer and waits for them.
func (d *DynamicReplicas) Shutdown() {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
	d.cancel()
	d.wg.Wait()
}

// EventHandler keeps the tracked targets in step with a ScaledObject
// informer: each ScaledObject tracks the resource its
// status.scaleTargetGVKR names, once the controller resolved it.
func (d *DynamicReplicas) EventHandler() cache.ResourceEventHandler {
	track := func(obj any) {
		if so, ok := obj.(*v1alpha1.ScaledObject); ok {
			d.TrackScaledObject(so)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    track,
		UpdateFunc: func(_, obj any) { track(obj) },
		DeleteFunc: func(obj any) {
			if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tombstone.Obj
			}
			if so, ok := obj.(*v1alpha1.ScaledObject); ok {
				d.Untrack(cache.NewObjectName(so.Namespace, so.Name))
			}
		},
	}
}

// TrackScaledObject tracks the resource so's status.scaleTargetGVKR names,
// or untracks so while it names none.
func (d *DynamicReplicas) TrackScaledObject(so *v1alpha1.ScaledObject) {
	key := cache.NewObjectName(so.Namespace, so.Name)
	g := so.Status.ScaleTargetGVKR
	if g == nil {
		d.Untrack(key)
		return
	}
	d.Track(key, schema.GroupVersionResource{Group: g.Group, Version: g.Version, Resource: g.Resource})
}

// Track records that the ScaledObject key targets gvr (instead of what it
// targeted before), starting gvr's informer if key is the first. Deployments
// and StatefulSets, which have typed informers, are not watched here.
func (d *DynamicReplicas) Track(key cache.ObjectName, gvr schema.GroupVersionResource) {
	if gr := gvr.GroupResource(); gr == deployments || gr == statefulSets {
		d.Untrack(key)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	old, had := d.targets[key]
	if had && old == gvr {
		return
	}
	if had {
		d.releaseLocked(old)
	}
	d.targets[key] = gvr
	e := d.watching[gvr]
	if e == nil {
		if d.stopped {
			return
		}
		ctx, cancel := context.WithCancel(d.ctx)
		e = &resourceInformer{cancel: cancel}
		d.watching[gvr] = e
		d.wg.Add(1)
		go d.run(ctx, gvr, e)
	}
	e.refs++
}

// Untrack forgets the ScaledObject key, stopping the informer of the
// resource it targeted if no other ScaledObject targets it.
func (d *DynamicReplicas) Untrack(key cache.ObjectName) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if gvr, ok := d.targets[key]; ok {
		delete(d.targets, key)
		d.releaseLocked(gvr)
	}
}

func (d *DynamicReplicas) releaseLocked(gvr schema.GroupVersionResource) {
	e := d.watching[gvr]
	if e == nil {
		return
	}
	if e.refs--; e.refs <= 0 {
		e.cancel()
		delete(d.watching, gvr)
	}
}

// Watching returns the resources whose informers run or are being
// started, for tests and debugging.
func (d *DynamicReplicas) Watching() []schema.GroupVersionResource {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]schema.GroupVersionResource, 0, len(d.watching))
	for gvr := range d.watching {
		out = append(out, gvr)
	}
	return out
}

// run keeps gvr's informer running until ctx is done, trying again
// after the retry period when it cannot.
func (d *DynamicReplicas) run(ctx context.Context, gvr schema.GroupVersionResource, e *resourceInformer) {
	defer d.wg.Done()
	logger := klog.FromContext(ctx).WithValues("resource", gvr.String())
	ctx = klog.NewContext(ctx, logger)
	logger.V(2).Info("Watching the replicas of a scale target resource")
	defer logger.V(2).Info("Stopped watching the replicas of a scale target resource")
	told := false
	for {
		err := d.watch(ctx, gvr, e)
		if ctx.Err() != nil {
			return
		}
		if !told {
			// Once per resource, not per poll: the targets keep working,
			// each poll costing a request.
			msg := "The replicas of this resource's objects are read through /scale on every poll: it cannot be watched"
			if apierrors.IsForbidden(err) {
				msg += "; grant the operator list and watch on it (the ebb-operator chart's rbac.extraTargetResources)"
			}
			logger.Info(msg, "err", err, "retryAfter", d.retry)
			told = true
		} else {
			logger.V(4).Info("The resource still cannot be watched", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-d.clock.After(d.retry):
		}
	}
}

// watch runs gvr's informer until ctx is done (nil) or the resource
// cannot be watched (why).
func (d *DynamicReplicas) watch(ctx context.Context, gvr schema.GroupVersionResource, e *resourceInformer) error {
	paths, err := d.paths(ctx, gvr)
	if err != nil {
		return err
	}
	inf := dynamicinformer.NewFilteredDynamicInformer(d.client, gvr, d.namespace, 0, cache.Indexers{}, nil).Informer()
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	if err := inf.SetTransform(paths.slim); err != nil {
		return err
	}
	// Errors that retrying cannot cure stop the informer; others are
	// logged and retried by the reflector as usual.
	if err := inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
		if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
			stop(err)
			return
		}
		cache.DefaultWatchErrorHandler(ctx, r, err)
	}); err != nil {
		return err
	}
	d.mu.Lock()
	e.informer = inf
	d.mu.Unlock()
	inf.RunWithContext(runCtx)
	d.mu.Lock()
	e.informer = nil
	d.mu.Unlock()
	return context.Cause(runCtx)
}

// paths returns where gvr's objects keep their replicas: known for
// built-in kinds, from the CRD's /scale subresource for custom resources.
func (d *DynamicReplicas) paths(ctx context.Context, gvr schema.GroupVersionResource) (scalePaths, error) {
	if p, ok := builtinScalePaths[gvr.GroupResource()]; ok {
		return p, nil
	}
	name := gvr.Resource + "." + gvr.Group
	crd, err := d.client.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return scalePaths{}, fmt.Errorf("reading CustomResourceDefinition %s, which tells where the replicas are: %w", name, err)
	}
	return crdScalePaths(crd, gvr.Version)
}

// crdScalePaths reads the /scale paths of version of crd.
func crdScalePaths(crd *unstructured.Unstructured, version string) (scalePaths, error) {
	versions, _, err := unstructured.NestedSlice(crd.Object, "spec", "versions")
	if err != nil {
		return scalePaths{}, fmt.Errorf("CustomResourceDefinition %s: %w", crd.GetName(), err)
	}
	for _, v := range versions {
		m, ok := v.(map[string]any)
		if !ok || m["name"] != version {
			continue
		}
		scale, found, err := unstructured.NestedMap(m, "subresources", "scale")
		if err != nil || !found {
			return scalePaths{}, fmt.Errorf("version %s of CustomResourceDefinition %s has no /scale subresource", version, crd.GetName())
		}
		var p scalePaths
		for _, f := range []struct {
			field    string
			into     *[]string
			required bool
		}{
			{"specReplicasPath", &p.spec, true},
			{"statusReplicasPath", &p.status, true},
			{"labelSelectorPath", &p.selector, false},
		} {
			s, _, _ := unstructured.NestedString(scale, f.field)
			if s == "" && !f.required {
				continue
			}
			if *f.into, err = fieldPath(s); err != nil {
				return scalePaths{}, fmt.Errorf("the %s of version %s of CustomResourceDefinition %s: %w", f.field, version, crd.GetName(), err)
			}
		}
		return p, nil
	}
	return scalePaths{}, fmt.Errorf("CustomResourceDefinition %s has no version %s", crd.GetName(), version)
}

// fieldPath splits a /scale path (".spec.replicas"; the API server allows
// no array notation in them) into its fields.
func fieldPath(s string) ([]string, error) {
	fields := strings.Split(strings.TrimPrefix(s, "."), ".")
	if !strings.HasPrefix(s, ".") || strings.ContainsAny(s, "[]") || len(fields) < 2 {
		return nil, fmt.Errorf("%q is not a path of fields such as .spec.replicas", s)
	}
	for _, f := range fields {
		if f == "" {
			return nil, fmt.Errorf("%q is not a path of fields such as .spec.replicas", s)
		}
	}
	return fields, nil
}

// lookup returns the cached object namespace/name of gr, if a synced
// informer of gr has it and its values are readable. A nil d has none.
func (d *DynamicReplicas) lookup(namespace string, gr schema.GroupResource, name string) (*scaleTarget, bool) {
	if d == nil {
		return nil, false
	}
	key := cache.NewObjectName(namespace, name).String()
	d.mu.RLock()
	defer d.mu.RUnlock()
	for gvr, e := range d.watching {
		if gvr.GroupResource() != gr || e.informer == nil || !e.informer.HasSynced() {
			continue
		}
		obj, exists, err := e.informer.GetIndexer().GetByKey(key)
		if err != nil || !exists {
			continue
		}
		if t, ok := obj.(*scaleTarget); ok && !t.Unreadable {
			return t, true
		}
	}
	return nil, false
}

// ready returns t's ready replicas: its status.readyReplicas when it has
// one (a built-in kind always has, absent meaning 0), else the running
// and ready pods its selector selects (as the /scale reader counts them),
// else, without a selector or pod counter, its /scale's status.replicas.
func (d *DynamicReplicas) ready(ctx context.Context, namespace string, gr schema.GroupResource, t *scaleTarget) (int32, error) {
	if t.HasReady {
		return t.Ready, nil
	}
	if d.readyPods == nil || t.Selector == "" {
		return t.Status, nil
	}
	sel, err := labels.Parse(t.Selector)
	if err != nil {
		return 0, fmt.Errorf("%s %s/%s has an unparsable selector %q: %w", gr, namespace, t.Name, t.Selector, err)
	}
	n, err := d.readyPods(ctx, namespace, sel)
	if err != nil {
		return 0, fmt.Errorf("counting the ready pods of %s %s/%s: %w", gr, namespace, t.Name, err)
	}
	return n, nil
}
