package scaleloop

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	scalefake "k8s.io/client-go/scale/fake"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
)

var (
	widgetsV1      = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	gadgetsV1      = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "gadgets"}
	replicaSetsV1  = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}
	controllersV1  = schema.GroupVersionResource{Version: "v1", Resource: "replicationcontrollers"}
	deploymentsV1  = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	scaleTargetsNS = "shop"
)

// crd is a CustomResourceDefinition of example.com/v1 resource (kind
// kind), with scale as its /scale subresource (none when nil).
func crd(resource, kind string, scale map[string]any) *unstructured.Unstructured {
	version := map[string]any{"name": "v1", "served": true, "storage": true}
	if scale != nil {
		version["subresources"] = map[string]any{"scale": scale}
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": resource + ".example.com"},
		"spec": map[string]any{
			"group": "example.com", "scope": "Namespaced",
			"names":    map[string]any{"plural": resource, "kind": kind},
			"versions": []any{version},
		},
	}}
}

// object is a namespaced object of apiVersion and kind with the given
// content (spec, status).
func object(apiVersion, kind, name string, content map[string]any) *unstructured.Unstructured {
	o := map[string]any{
		"apiVersion": apiVersion, "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": scaleTargetsNS, "uid": "uid-" + name, "resourceVersion": "7",
			"annotations": map[string]any{"big": strings.Repeat("x", 4096)}},
	}
	for k, v := range content {
		o[k] = v
	}
	return &unstructured.Unstructured{Object: o}
}

// newDynamicClient is a fake dynamic client serving objs.
func newDynamicClient(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		widgetsV1:     "WidgetList",
		gadgetsV1:     "GadgetList",
		replicaSetsV1: "ReplicaSetList",
		controllersV1: "ReplicationControllerList",
		crdResource:   "CustomResourceDefinitionList",
	}, objs...)
}

// newScaleClient is a /scale client that answers every GET with 7 desired
// and 6 current replicas, and records its requests.
func newScaleClient() *scalefake.FakeScaleClient {
	c := &scalefake.FakeScaleClient{}
	c.AddReactor("get", "*", func(action core.Action) (bool, runtime.Object, error) {
		return true, &autoscalingv1.Scale{
			ObjectMeta: metav1.ObjectMeta{Name: action.(core.GetAction).GetName(), Namespace: action.GetNamespace()},
			Spec:       autoscalingv1.ScaleSpec{Replicas: 7},
			Status:     autoscalingv1.ScaleStatus{Replicas: 6},
		}, nil
	})
	return c
}

// informerOf returns gvr's running informer, nil if none.
func informerOf(d *DynamicReplicas, gvr schema.GroupVersionResource) cache.SharedIndexInformer {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if e := d.watching[gvr]; e != nil {
		return e.informer
	}
	return nil
}

// eventually polls cond every 5 ms until it holds, failing after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("Timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitSynced waits until gvr's informer runs and has synced.
func waitSynced(t *testing.T, d *DynamicReplicas, gvr schema.GroupVersionResource) cache.SharedIndexInformer {
	t.Helper()
	var inf cache.SharedIndexInformer
	eventually(t, gvr.String()+" informer synced", func() bool {
		inf = informerOf(d, gvr)
		return inf != nil && inf.HasSynced()
	})
	return inf
}

// newTestDynamicReplicas returns a DynamicReplicas over client, logging to
// the returned logger's buffer, shut down at the end of the test.
func newTestDynamicReplicas(t *testing.T, client *dynamicfake.FakeDynamicClient, opts ...DynamicOption) (*DynamicReplicas, klog.Logger) {
	t.Helper()
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true), ktesting.Verbosity(2)))
	ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), logger))
	d := NewDynamicReplicas(ctx, client, "", opts...)
	t.Cleanup(func() {
		d.Shutdown()
		cancel()
	})
	return d, logger
}

func logged(logger klog.Logger) string {
	return logger.GetSink().(ktesting.Underlier).GetBuffer().String()
}

func TestDynamicReplicasKinds(t *testing.T) {
	widgetScale := map[string]any{"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size", "labelSelectorPath": ".status.labels"}
	widget := func(content map[string]any) *unstructured.Unstructured {
		return object("example.com/v1", "Widget", "w", content)
	}
	readyPods := func(_ context.Context, ns string, sel labels.Selector) (int32, error) {
		if ns != scaleTargetsNS || sel.String() != "app=w" {
			return 0, errors.New("counted " + sel.String() + " in " + ns)
		}
		return 2, nil
	}
	tests := map[string]struct {
		objs        []runtime.Object
		gvr         schema.GroupVersionResource
		name        string
		wantCurrent int32
		wantReady   int32
		wantScale   bool // read through /scale
	}{
		"ReplicaSet: spec.replicas, status.readyReplicas": {
			objs: []runtime.Object{object("apps/v1", "ReplicaSet", "rs", map[string]any{
				"spec": map[string]any{"replicas": int64(3), "template": map[string]any{"spec": map[string]any{}}}, "status": map[string]any{"replicas": int64(3), "readyReplicas": int64(2)},
			})},
			gvr: replicaSetsV1, name: "rs", wantCurrent: 3, wantReady: 2,
		},
		"ReplicaSet without readyReplicas: none ready": {
			objs: []runtime.Object{object("apps/v1", "ReplicaSet", "rs", map[string]any{
				"spec": map[string]any{"replicas": int64(3)}, "status": map[string]any{"replicas": int64(3)},
			})},
			gvr: replicaSetsV1, name: "rs", wantCurrent: 3, wantReady: 0,
		},
		"ReplicationController without spec.replicas: 1": {
			objs: []runtime.Object{object("v1", "ReplicationController", "rc", map[string]any{
				"status": map[string]any{"replicas": int64(1), "readyReplicas": int64(1)},
			})},
			gvr: controllersV1, name: "rc", wantCurrent: 1, wantReady: 1,
		},
		"custom resource at its CRD's paths, with status.readyReplicas": {
			objs: []runtime.Object{crd("widgets", "Widget", widgetScale), widget(map[string]any{
				"spec": map[string]any{"size": int64(4), "replicas": int64(99)}, "status": map[string]any{"size": int64(4), "readyReplicas": int64(3), "labels": "app=w"},
			})},
			gvr: widgetsV1, name: "w", wantCurrent: 4, wantReady: 3,
		},
		"custom resource without readyReplicas: the ready pods of its selector": {
			objs: []runtime.Object{crd("widgets", "Widget", widgetScale), widget(map[string]any{
				"spec": map[string]any{"size": int64(4)}, "status": map[string]any{"size": int64(4), "labels": "app=w"},
			})},
			gvr: widgetsV1, name: "w", wantCurrent: 4, wantReady: 2,
		},
		"custom resource without selector: its status replicas": {
			objs: []runtime.Object{crd("widgets", "Widget", map[string]any{"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}), widget(map[string]any{
				"spec": map[string]any{"size": int64(4)}, "status": map[string]any{"size": int64(1), "labels": "app=w"},
			})},
			gvr: widgetsV1, name: "w", wantCurrent: 4, wantReady: 1,
		},
		"custom resource without a spec value: 0, as its /scale": {
			objs: []runtime.Object{crd("widgets", "Widget", widgetScale), widget(nil)},
			gvr:  widgetsV1, name: "w", wantCurrent: 0, wantReady: 0,
		},
		"custom resource with a value that is no count: through /scale": {
			objs: []runtime.Object{crd("widgets", "Widget", widgetScale), widget(map[string]any{"spec": map[string]any{"size": "many"}})},
			gvr:  widgetsV1, name: "w", wantCurrent: 7, wantReady: 6, wantScale: true,
		},
		"not in the cache: through /scale": {
			objs: []runtime.Object{crd("widgets", "Widget", widgetScale)},
			gvr:  widgetsV1, name: "w", wantCurrent: 7, wantReady: 6, wantScale: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d, _ := newTestDynamicReplicas(t, newDynamicClient(tc.objs...), WithReadyPods(readyPods))
			scales := newScaleClient()
			r := InformerReplicas{Others: d, Fallback: ScaleReplicas{Client: scales}}
			d.Track(cache.NewObjectName(scaleTargetsNS, "so"), tc.gvr)
			waitSynced(t, d, tc.gvr)

			ctx := context.Background()
			got, err := r.Get(ctx, scaleTargetsNS, tc.gvr.GroupResource(), tc.name)
			if err != nil || got != tc.wantCurrent {
				t.Errorf("Get() = %d, %v; want %d", got, err, tc.wantCurrent)
			}
			current, ready, err := r.Counts(ctx, scaleTargetsNS, tc.gvr.GroupResource(), tc.name)
			if err != nil || current != tc.wantCurrent || ready != tc.wantReady {
				t.Errorf("Counts() = %d, %d, %v; want %d, %d", current, ready, err, tc.wantCurrent, tc.wantReady)
			}
			if gets := len(scales.Actions()); (gets > 0) != tc.wantScale {
				t.Errorf("%d reads through /scale, want any: %v", gets, tc.wantScale)
			}
			// Writes go through /scale.
			if err := r.Set(ctx, scaleTargetsNS, tc.gvr.GroupResource(), tc.name, 0); err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(scales.Actions(), func(a core.Action) bool { return a.GetVerb() == "update" }) {
				t.Errorf("Set did not update the /scale: %v", scales.Actions())
			}
		})
	}
}

func TestDynamicReplicasSlim(t *testing.T) {
	paths := scalePaths{spec: []string{"spec", "size"}, status: []string{"status", "size"}, selector: []string{"status", "labels"}}
	u := object("example.com/v1", "Widget", "w", map[string]any{
		"spec":   map[string]any{"size": int64(4), "template": map[string]any{"big": strings.Repeat("y", 4096)}},
		"status": map[string]any{"size": int64(2), "readyReplicas": int64(1), "labels": "app=w"},
	})
	u.SetGeneration(3)
	obj, err := paths.slim(u)
	if err != nil {
		t.Fatal(err)
	}
	want := &scaleTarget{
		ObjectMeta: metav1.ObjectMeta{Name: "w", Namespace: scaleTargetsNS, UID: "uid-w", ResourceVersion: "7", Generation: 3},
		Spec:       4, Status: 2, Ready: 1, HasReady: true, Selector: "app=w",
	}
	got, ok := obj.(*scaleTarget)
	if !ok || !equality.Semantic.DeepEqual(got, want) {
		t.Fatalf("slim() = %#v, want %#v", obj, want)
	}
	// Transforms must be idempotent.
	if again, err := paths.slim(got); err != nil || again != any(got) {
		t.Errorf("slim(slimmed) = %v, %v; want it unchanged", again, err)
	}
	if c := got.DeepCopyObject().(*scaleTarget); c == got || !equality.Semantic.DeepEqual(c, got) {
		t.Errorf("DeepCopyObject() = %#v, want an equal copy", c)
	}
}

func TestCRDScalePaths(t *testing.T) {
	tests := map[string]struct {
		scale   map[string]any
		version string
		want    scalePaths
		wantErr string
	}{
		"spec, status and selector": {
			scale: map[string]any{"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".status.selector"},
			want:  scalePaths{spec: []string{"spec", "replicas"}, status: []string{"status", "replicas"}, selector: []string{"status", "selector"}},
		},
		"nested, without selector": {
			scale: map[string]any{"specReplicasPath": ".spec.workers.count", "statusReplicasPath": ".status.count"},
			want:  scalePaths{spec: []string{"spec", "workers", "count"}, status: []string{"status", "count"}},
		},
		"no /scale":            {wantErr: "no /scale subresource"},
		"another version":      {scale: map[string]any{}, version: "v2", wantErr: "has no version v2"},
		"array notation":       {scale: map[string]any{"specReplicasPath": ".spec.replicas[0]", "statusReplicasPath": ".status.replicas"}, wantErr: "specReplicasPath"},
		"no status path":       {scale: map[string]any{"specReplicasPath": ".spec.replicas"}, wantErr: "statusReplicasPath"},
		"not a path of fields": {scale: map[string]any{"specReplicasPath": "spec..replicas", "statusReplicasPath": ".status.replicas"}, wantErr: "specReplicasPath"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			version := tc.version
			if version == "" {
				version = "v1"
			}
			got, err := crdScalePaths(crd("widgets", "Widget", tc.scale), version)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("crdScalePaths() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got.spec, tc.want.spec) || !slices.Equal(got.status, tc.want.status) ||
				!slices.Equal(got.selector, tc.want.selector) || got.unsetSpec != 0 || got.builtin {
				t.Errorf("crdScalePaths() = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestDynamicReplicasReferenceCounting checks that a resource's informer
// runs while some ScaledObject targets it, and only then.
func TestDynamicReplicasReferenceCounting(t *testing.T) {
	scale := map[string]any{"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}
	client := newDynamicClient(crd("widgets", "Widget", scale), crd("gadgets", "Gadget", scale))
	d, _ := newTestDynamicReplicas(t, client)
	key := func(name string) cache.ObjectName { return cache.NewObjectName(scaleTargetsNS, name) }
	watching := func(want ...schema.GroupVersionResource) {
		t.Helper()
		got := d.Watching()
		key := func(g schema.GroupVersionResource) string { return g.String() }
		if !slices.Equal(sortedBy(got, key), sortedBy(want, key)) {
			t.Fatalf("Watching() = %v, want %v", got, want)
		}
	}

	d.Track(key("a"), widgetsV1)
	d.Track(key("b"), widgetsV1)
	d.Track(key("c"), replicaSetsV1)
	d.Track(key("d"), deploymentsV1) // typed informers: not watched here
	watching(widgetsV1, replicaSetsV1)
	widgets := waitSynced(t, d, widgetsV1)
	rs := waitSynced(t, d, replicaSetsV1)

	d.Untrack(key("a"))
	d.Track(key("b"), widgetsV1) // again: no second reference
	watching(widgetsV1, replicaSetsV1)
	d.Track(key("b"), gadgetsV1) // retargeted: widgets has no ScaledObject left
	watching(gadgetsV1, replicaSetsV1)
	eventually(t, "the widgets informer to stop", widgets.IsStopped)
	waitSynced(t, d, gadgetsV1)
	if rs.IsStopped() {
		t.Fatal("The replicasets informer stopped while a ScaledObject targets ReplicaSets")
	}

	// Through a ScaledObject informer's events.
	h := d.EventHandler()
	so := &v1alpha1.ScaledObject{ObjectMeta: metav1.ObjectMeta{Name: "e", Namespace: scaleTargetsNS}}
	h.OnAdd(so, true) // not resolved yet
	watching(gadgetsV1, replicaSetsV1)
	resolved := so.DeepCopy()
	resolved.Status.ScaleTargetGVKR = &v1alpha1.GroupVersionKindResource{Group: "example.com", Version: "v1", Kind: "Widget", Resource: "widgets"}
	h.OnUpdate(so, resolved)
	watching(widgetsV1, gadgetsV1, replicaSetsV1)
	widgets = waitSynced(t, d, widgetsV1)
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "shop/e", Obj: resolved})
	watching(gadgetsV1, replicaSetsV1)
	eventually(t, "the widgets informer to stop", widgets.IsStopped)

	d.Untrack(key("b"))
	d.Untrack(key("c"))
	d.Untrack(key("d"))
	watching()
	eventually(t, "the replicasets informer to stop", rs.IsStopped)

	// Nothing starts after Shutdown.
	d.Shutdown()
	d.Track(key("a"), widgetsV1)
	watching()
}

func sortedBy[T any](s []T, key func(T) string) []string {
	out := make([]string, 0, len(s))
	for _, v := range s {
		out = append(out, key(v))
	}
	slices.Sort(out)
	return out
}

// TestDynamicReplicasFallback checks that a resource that cannot be
// watched is read through /scale, said once in the log, and watched once
// it can be.
func TestDynamicReplicasFallback(t *testing.T) {
	scale := map[string]any{"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}
	widget := object("example.com/v1", "Widget", "w", map[string]any{"spec": map[string]any{"replicas": int64(2)}})
	const said = "read through /scale on every poll"
	tests := map[string]struct {
		objs    []runtime.Object
		forbid  bool // list and watch of widgets are forbidden until allowed
		wantLog string
	}{
		"list and watch forbidden": {
			objs: []runtime.Object{crd("widgets", "Widget", scale), widget}, forbid: true,
			wantLog: "rbac.extraTargetResources",
		},
		"no CRD": {
			objs: []runtime.Object{widget}, wantLog: "reading CustomResourceDefinition widgets.example.com",
		},
		"no /scale in the CRD": {
			objs: []runtime.Object{crd("widgets", "Widget", nil), widget}, wantLog: "has no /scale subresource",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			client := newDynamicClient(tc.objs...)
			var forbidden atomic.Bool
			forbidden.Store(tc.forbid)
			var lists atomic.Int32
			client.PrependReactor("list", "widgets", func(core.Action) (bool, runtime.Object, error) {
				lists.Add(1)
				if forbidden.Load() {
					return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "example.com", Resource: "widgets"}, "", errors.New("RBAC: not allowed"))
				}
				return false, nil, nil
			})
			clk := testingclock.NewFakeClock(time.Now())
			d, logger := newTestDynamicReplicas(t, client, WithInformerClock(clk), WithInformerRetry(time.Minute))
			scales := newScaleClient()
			r := InformerReplicas{Others: d, Fallback: ScaleReplicas{Client: scales}}
			d.Track(cache.NewObjectName(scaleTargetsNS, "so"), widgetsV1)

			// Waiting to try again, read through /scale.
			eventually(t, "the first failure", clk.HasWaiters)
			for range 3 {
				if got, err := r.Get(context.Background(), scaleTargetsNS, widgetsV1.GroupResource(), "w"); err != nil || got != 7 {
					t.Fatalf("Get() = %d, %v; want 7 through /scale", got, err)
				}
			}
			if n := len(scales.Actions()); n != 3 {
				t.Errorf("%d reads through /scale, want 3", n)
			}
			// A second failure is not told again.
			listsBefore := lists.Load()
			clk.Step(time.Minute)
			eventually(t, "the second failure", func() bool { return clk.HasWaiters() && (!tc.forbid || lists.Load() > listsBefore) })
			log := logged(logger)
			if n := strings.Count(log, said); n != 1 || !strings.Contains(log, tc.wantLog) {
				t.Errorf("The log tells %d times that replicas are %s, want once, with %q:\n%s", n, said, tc.wantLog, log)
			}
			if !tc.forbid {
				return
			}
			// Allowed now: watched at the next try, read from the cache.
			forbidden.Store(false)
			clk.Step(time.Minute)
			waitSynced(t, d, widgetsV1)
			if got, err := r.Get(context.Background(), scaleTargetsNS, widgetsV1.GroupResource(), "w"); err != nil || got != 2 {
				t.Errorf("Get() = %d, %v; want 2 from the cache", got, err)
			}
			if n := len(scales.Actions()); n != 3 {
				t.Errorf("%d reads through /scale, want still 3", n)
			}
		})
	}
}
