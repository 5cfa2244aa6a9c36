package triggers

import (
	"strconv"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
)

// RefKind is the kind of an object a trigger's resolution read.
type RefKind string

// The kinds of objects a resolution reads and the Cache watches.
const (
	RefSecret                       RefKind = "Secret"
	RefConfigMap                    RefKind = "ConfigMap"
	RefTriggerAuthentication        RefKind = v1alpha1.TriggerAuthenticationKind
	RefClusterTriggerAuthentication RefKind = v1alpha1.ClusterTriggerAuthenticationKind
	// RefFile is a ClusterTriggerAuthentication's filePath file; Name is
	// the path relative to the root directory, Namespace is empty.
	RefFile RefKind = "File"
)

// Ref names an object a trigger's resolution read: a Secret, ConfigMap,
// (Cluster)TriggerAuthentication or filePath file. Namespace is empty for
// cluster-scoped objects and files.
type Ref struct {
	Kind      RefKind
	Namespace string
	Name      string
}

func (r Ref) String() string {
	if r.Namespace == "" {
		return string(r.Kind) + " " + r.Name
	}
	return string(r.Kind) + " " + r.Namespace + "/" + r.Name
}

// Owner names a ScaledObject or ScaledJob whose triggers the Cache holds.
// Kind is v1alpha1.ScaledObjectKind or v1alpha1.ScaledJobKind: a
// ScaledObject and a ScaledJob of the same name are distinct.
type Owner struct {
	Kind string
	cache.ObjectName
}

// Versions a resolution records for what it read; a real version (a
// resourceVersion or a file's content hash) is never one of these.
const (
	// versionAbsent: the object did not exist.
	versionAbsent = ""
	// versionUnknown: the read failed; any later change is one.
	versionUnknown = "\x00unknown"
	// versionPresent: the object existed without a resourceVersion (only
	// fake clients return such objects).
	versionPresent = "\x00present"
)

// objectVersion is the version of m, an object of kind, that the index
// compares: the resourceVersion of a Secret or ConfigMap (any write may
// change its data), the UID and generation of an authentication object
// (its spec: writes of its status lists, which change its
// resourceVersion, must not rebuild the triggers that use it).
func objectVersion(kind RefKind, m metav1.Object) string {
	switch kind {
	case RefTriggerAuthentication, RefClusterTriggerAuthentication:
		return string(m.GetUID()) + "/" + strconv.FormatInt(m.GetGeneration(), 10)
	}
	if m.GetResourceVersion() == "" {
		return versionPresent // only fakes have no resourceVersion
	}
	return m.GetResourceVersion()
}

// trackFunc is how a resolution tells the Cache what it reads: it is
// called before ref is read, and the function it returns exactly once
// after, with the version read (versionAbsent, versionUnknown, or the
// object's resourceVersion or file hash). A nil trackFunc tracks nothing.
type trackFunc func(ref Ref) (done func(version string))

// read is what one build read of one Ref: reads in progress, and the
// version they saw.
type read struct {
	pending int
	seen    bool
	version string
}

// tracker returns the trackFunc of e's build: each Ref e reads is indexed
// under it before the read, so a change that lands while the read is in
// flight is not lost (the build is then marked dirty, and rebuilt).
func (c *Cache) tracker(e *entry) trackFunc {
	return func(ref Ref) func(string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.entries[e.owner] != e {
			// Replaced (or forgotten) while building: nothing to watch.
			return func(string) {}
		}
		rd := e.reads[ref]
		if rd == nil {
			rd = &read{}
			if e.reads == nil {
				e.reads = map[Ref]*read{}
			}
			e.reads[ref] = rd
			owners := c.refs[ref]
			if owners == nil {
				owners = map[*entry]struct{}{}
				c.refs[ref] = owners
			}
			owners[e] = struct{}{}
		}
		rd.pending++
		var once bool
		return func(version string) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if once {
				return
			}
			once = true
			rd.pending--
			if rd.seen && rd.version != version {
				// Two triggers of one build saw two versions: rebuild.
				e.dirty = true
			}
			rd.seen, rd.version = true, version
		}
	}
}

// dropRefs removes e from the index. Call it with c.mu held when e leaves
// c.entries.
func (c *Cache) dropRefs(e *entry) {
	for ref := range e.reads {
		if owners := c.refs[ref]; owners != nil {
			delete(owners, e)
			if len(owners) == 0 {
				delete(c.refs, ref)
			}
		}
	}
}

// Changed tells the Cache that the object ref now has version (its
// resourceVersion; an authentication object's UID and generation; a
// file's content hash), or is gone (version ""). The
// triggers of every ScaledObject and ScaledJob whose resolution read ref
// at another version are invalidated: their scalers are closed and built
// again, with the object as it is now, on their next use; the
// invalidation handler (SetInvalidationHandler) hears of each owner, so
// its controller reconciles it and its status shows the new state. A
// build in progress that read ref is built again on its next use. Objects
// no resolution read cost a map lookup.
func (c *Cache) Changed(ref Ref, version string) {
	c.mu.Lock()
	var dropped []*entry
	for e := range c.refs[ref] {
		rd := e.reads[ref]
		if rd.pending == 0 && rd.seen && rd.version == version {
			continue // what the build read: an informer's first list, or our own read's echo
		}
		if !e.built {
			e.dirty = true // decided when the build ends
			continue
		}
		if c.entries[e.owner] == e {
			delete(c.entries, e.owner)
		}
		c.dropRefs(e)
		dropped = append(dropped, e)
	}
	notify := c.onInvalidate
	c.mu.Unlock()

	for _, e := range dropped {
		invalidations.WithLabelValues(string(ref.Kind)).Inc()
		closeEntry(e)
		if notify != nil {
			notify(e.owner)
		}
	}
}

// Refs returns the objects of kind that some cached resolution read.
func (c *Cache) Refs(kind RefKind) []Ref {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Ref
	for ref := range c.refs {
		if ref.Kind == kind {
			out = append(out, ref)
		}
	}
	return out
}

// Owners returns the ScaledObjects and ScaledJobs whose cached resolution
// read ref.
func (c *Cache) Owners(ref Ref) []Owner {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Owner
	for e := range c.refs[ref] {
		out = append(out, e.owner)
	}
	return out
}

// SetInvalidationHandler sets the function told of each ScaledObject or
// ScaledJob whose triggers were invalidated by a change (see Changed);
// typically its controller's Enqueue. Set it before the informers that
// feed Changed start.
func (c *Cache) SetInvalidationHandler(f func(Owner)) {
	c.mu.Lock()
	c.onInvalidate = f
	c.mu.Unlock()
}

// EventHandler returns informer event handlers that feed Changed with the
// objects of kind (Secrets and ConfigMaps from metadata-only informers,
// TriggerAuthentications, ClusterTriggerAuthentications): an add, an
// update that changes the object's version (see objectVersion), and a
// deletion. A resync, or an update of an authentication object's status,
// is ignored.
func (c *Cache) EventHandler(kind RefKind) cache.ResourceEventHandler {
	changed := func(obj any, deleted bool) {
		if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tombstone.Obj
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			return
		}
		version := objectVersion(kind, m)
		if deleted {
			version = versionAbsent
		}
		c.Changed(Ref{Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName()}, version)
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { changed(obj, false) },
		UpdateFunc: func(oldObj, newObj any) {
			o, err1 := meta.Accessor(oldObj)
			n, err2 := meta.Accessor(newObj)
			if err1 == nil && err2 == nil && objectVersion(kind, o) == objectVersion(kind, n) {
				return
			}
			changed(newObj, false)
		},
		DeleteFunc: func(obj any) { changed(obj, true) },
	}
}
