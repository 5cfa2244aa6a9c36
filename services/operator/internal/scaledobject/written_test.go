package scaledobject

import (
	"context"
	"slices"
	"strconv"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	apitypes "k8s.io/apimachinery/pkg/types"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
)

// bumpResourceVersions makes the fake keda clientset give every written
// ScaledObject a new resourceVersion, as the API server does.
func (f *fixture) bumpResourceVersions(from int) {
	next := from
	f.keda.PrependReactor("update", "scaledobjects", func(action core.Action) (bool, runtime.Object, error) {
		next++
		action.(core.UpdateAction).GetObject().(metav1.Object).SetResourceVersion(strconv.Itoa(next))
		return false, nil, nil
	})
}

// TestSyncFromStaleCacheAfterOwnWrite: an HPA event can bring a sync
// before the informer holds the ScaledObject the controller just wrote.
// That sync must start from what was written, not write it again (a write
// doomed to a conflict on the cached resourceVersion).
func TestSyncFromStaleCacheAfterOwnWrite(t *testing.T) {
	so := newScaledObject(func(so *v1alpha1.ScaledObject) {
		so.Finalizers = nil
		so.ResourceVersion = "5"
		so.Spec.Advanced = &v1alpha1.AdvancedConfig{RestoreToOriginalReplicaCount: true} // a finalizer to add
	})
	f := newFixture(t, []*v1alpha1.ScaledObject{so}, nil, map[string]int32{"worker": 3})
	f.bumpResourceVersions(5)
	if err := f.sync("jobs"); err != nil {
		t.Fatal(err)
	}
	want := []string{"create horizontalpodautoscalers keda-hpa-jobs", "update scaledobjects jobs", "update scaledobjects/status jobs"}
	if got := f.writes(); !slices.Equal(got, want) {
		t.Fatalf("first sync: writes = %v, want %v", got, want)
	}
	// The HPA's add event arrives; the ScaledObject cache still holds
	// resourceVersion 5.
	if err := f.hpaStore.Add(f.hpa("keda-hpa-jobs")); err != nil {
		t.Fatal(err)
	}
	f.keda.ClearActions()
	f.kube.ClearActions()
	if err := f.sync("jobs"); err != nil {
		t.Fatal(err)
	}
	if got := f.writes(); len(got) != 0 {
		t.Errorf("sync from the stale cache: writes = %v, want none", got)
	}

	// The cache catches up: the written copy is dropped.
	if err := f.soStore.Update(f.scaledObject("jobs")); err != nil {
		t.Fatal(err)
	}
	if err := f.sync("jobs"); err != nil {
		t.Fatal(err)
	}
	if got := f.writes(); len(got) != 0 {
		t.Errorf("sync from the caught-up cache: writes = %v, want none", got)
	}
	if n := len(f.controller.written); n != 0 {
		t.Errorf("%d written copies kept after the cache caught up, want 0", n)
	}
}

func TestFreshest(t *testing.T) {
	key := cache.NewObjectName("shop", "jobs")
	at := func(rv string, uid string) *v1alpha1.ScaledObject {
		return newScaledObject(func(so *v1alpha1.ScaledObject) {
			so.ResourceVersion = rv
			so.UID = apitypes.UID("uid-" + uid)
		})
	}
	tests := map[string]struct {
		written, cached *v1alpha1.ScaledObject
		wantRV          string
		wantKept        bool
	}{
		"nothing written":            {cached: at("7", "a"), wantRV: "7"},
		"cache older than the write": {written: at("9", "a"), cached: at("7", "a"), wantRV: "9", wantKept: true},
		"cache caught up":            {written: at("9", "a"), cached: at("9", "a"), wantRV: "9"},
		"cache newer":                {written: at("9", "a"), cached: at("12", "a"), wantRV: "12"},
		"re-created object":          {written: at("9", "a"), cached: at("7", "b"), wantRV: "7"},
		"incomparable versions":      {written: at("x9", "a"), cached: at("7", "a"), wantRV: "7"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, nil, nil, nil)
			c := f.controller
			if tc.written != nil {
				c.remember(tc.written)
			}
			if got := c.freshest(key, tc.cached); got.ResourceVersion != tc.wantRV {
				t.Errorf("freshest = resourceVersion %s, want %s", got.ResourceVersion, tc.wantRV)
			}
			if _, kept := c.written[key]; kept != tc.wantKept {
				t.Errorf("written copy kept = %v, want %v", kept, tc.wantKept)
			}
		})
	}
}

// TestNeedsSyncFinalizer: ebb's own finalizer being added needs no sync;
// its removal by someone else does.
func TestNeedsSyncFinalizer(t *testing.T) {
	without := newScaledObject(func(so *v1alpha1.ScaledObject) { so.Finalizers = nil })
	with := newScaledObject()
	other := newScaledObject(func(so *v1alpha1.ScaledObject) { so.Finalizers = append(so.Finalizers, "example.com/other") })
	if needsSync(without, with) {
		t.Error("adding ebb's finalizer asks for a sync")
	}
	if !needsSync(with, without) {
		t.Error("removing ebb's finalizer does not ask for a sync")
	}
	if needsSync(with, other) {
		t.Error("another finalizer added asks for a sync")
	}
}

// countingReplicas is a ReplicaReader that counts its reads.
type countingReplicas struct {
	replicas int32
	reads    int
}

func (r *countingReplicas) Get(context.Context, string, schema.GroupResource, string) (int32, error) {
	r.reads++
	return r.replicas, nil
}

// TestSyncReadsReplicasFromReader: with an informer-backed reader, a sync
// sends no /scale request.
func TestSyncReadsReplicasFromReader(t *testing.T) {
	f := newFixture(t, []*v1alpha1.ScaledObject{newScaledObject()}, nil, map[string]int32{"worker": 3})
	r := &countingReplicas{replicas: 4}
	f.controller.SetReplicas(r)
	if err := f.sync("jobs"); err != nil {
		t.Fatal(err)
	}
	if n := len(f.scales.Actions()); n != 0 {
		t.Errorf("%d /scale requests, want 0: %v", n, f.scales.Actions())
	}
	if r.reads != 1 {
		t.Errorf("%d replica reads, want 1", r.reads)
	}
	if got := f.scaledObject("jobs").Status.OriginalReplicaCount; got == nil || *got != 4 {
		t.Errorf("originalReplicaCount = %v, want 4 (from the reader)", got)
	}
}

// TestFinalizerOnlyWhenNeeded: ebb's finalizer is added only to
// ScaledObjects whose deletion takes work from ebb, and an existing one is
// kept.
func TestFinalizerOnlyWhenNeeded(t *testing.T) {
	tests := map[string]struct {
		mutate func(*v1alpha1.ScaledObject)
		want   bool
	}{
		"plain": {mutate: func(*v1alpha1.ScaledObject) {}},
		"restoreToOriginalReplicaCount": {mutate: func(so *v1alpha1.ScaledObject) {
			so.Spec.Advanced = &v1alpha1.AdvancedConfig{RestoreToOriginalReplicaCount: true}
		}, want: true},
		"keep-hpa-on-delete": {mutate: func(so *v1alpha1.ScaledObject) {
			so.Annotations = map[string]string{KeepHPAOnDeleteAnnotation: "true"}
		}, want: true},
		"transfer-hpa-ownership": {mutate: func(so *v1alpha1.ScaledObject) {
			so.Annotations = map[string]string{v1alpha1.TransferHPAOwnershipAnnotation: "true"}
		}, want: true},
		"existing finalizer kept": {mutate: func(so *v1alpha1.ScaledObject) {
			so.Finalizers = []string{v1alpha1.Finalizer}
		}, want: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			so := newScaledObject(func(so *v1alpha1.ScaledObject) { so.Finalizers = nil }, tc.mutate)
			f := newFixture(t, []*v1alpha1.ScaledObject{so}, nil, map[string]int32{"worker": 3})
			if err := f.sync("jobs"); err != nil {
				t.Fatal(err)
			}
			if got := slices.Contains(f.scaledObject("jobs").Finalizers, v1alpha1.Finalizer); got != tc.want {
				t.Errorf("finalizer present = %v, want %v", got, tc.want)
			}
		})
	}
}
