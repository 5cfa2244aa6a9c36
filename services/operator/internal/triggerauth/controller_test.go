package triggerauth

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedafake "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned/fake"
	kedainformers "github.com/ebb-autoscaler/ebb/pkg/client/informers/externalversions"
)

type fixture struct {
	keda       *kedafake.Clientset
	controller *Controller
	stores     map[string]cache.Indexer
}

// newFixture fills the informers' indexers directly with objs (no watch)
// and the fake clientset with the authentication objects.
func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	t.Helper()
	var auths []runtime.Object
	for _, o := range objs {
		switch o.(type) {
		case *v1alpha1.TriggerAuthentication, *v1alpha1.ClusterTriggerAuthentication:
			auths = append(auths, o)
		}
	}
	f := &fixture{keda: kedafake.NewSimpleClientset(auths...)}
	factory := kedainformers.NewSharedInformerFactory(f.keda, 0)
	ta, cta := factory.Keda().V1alpha1().TriggerAuthentications(), factory.Keda().V1alpha1().ClusterTriggerAuthentications()
	so, sj := factory.Keda().V1alpha1().ScaledObjects(), factory.Keda().V1alpha1().ScaledJobs()
	_, ctx := ktesting.NewTestContext(t)
	c, err := NewController(klog.FromContext(ctx), f.keda, ta, cta, so, sj)
	if err != nil {
		t.Fatal(err)
	}
	f.controller = c
	f.stores = map[string]cache.Indexer{
		"ta": ta.Informer().GetIndexer(), "cta": cta.Informer().GetIndexer(),
		"so": so.Informer().GetIndexer(), "sj": sj.Informer().GetIndexer(),
	}
	for _, o := range objs {
		var store cache.Indexer
		switch o.(type) {
		case *v1alpha1.TriggerAuthentication:
			store = f.stores["ta"]
		case *v1alpha1.ClusterTriggerAuthentication:
			store = f.stores["cta"]
		case *v1alpha1.ScaledObject:
			store = f.stores["so"]
		case *v1alpha1.ScaledJob:
			store = f.stores["sj"]
		}
		if err := store.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func taObj(ns, name, sos, sjs string) *v1alpha1.TriggerAuthentication {
	return &v1alpha1.TriggerAuthentication{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Status:     v1alpha1.TriggerAuthenticationStatus{ScaledObjects: sos, ScaledJobs: sjs},
	}
}

func ctaObj(name, sos, sjs string) *v1alpha1.ClusterTriggerAuthentication {
	return &v1alpha1.ClusterTriggerAuthentication{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status:     v1alpha1.TriggerAuthenticationStatus{ScaledObjects: sos, ScaledJobs: sjs},
	}
}

func refs(refs ...*v1alpha1.AuthenticationRef) []v1alpha1.ScaleTrigger {
	var ts []v1alpha1.ScaleTrigger
	for _, r := range refs {
		ts = append(ts, v1alpha1.ScaleTrigger{Type: "redis", AuthenticationRef: r})
	}
	return ts
}

func soObj(ns, name string, triggers []v1alpha1.ScaleTrigger) *v1alpha1.ScaledObject {
	return &v1alpha1.ScaledObject{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.ScaledObjectSpec{Triggers: triggers}}
}

func sjObj(ns, name string, triggers []v1alpha1.ScaleTrigger) *v1alpha1.ScaledJob {
	return &v1alpha1.ScaledJob{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.ScaledJobSpec{Triggers: triggers}}
}

var (
	toTA   = &v1alpha1.AuthenticationRef{Name: "auth"}
	toTAk  = &v1alpha1.AuthenticationRef{Name: "auth", Kind: v1alpha1.TriggerAuthenticationKind}
	toCTA  = &v1alpha1.AuthenticationRef{Name: "auth", Kind: v1alpha1.ClusterTriggerAuthenticationKind}
	toElse = &v1alpha1.AuthenticationRef{Name: "other"}
)

func TestSync(t *testing.T) {
	deleting := soObj("apps", "going", refs(toTA))
	deleting.DeletionTimestamp = &metav1.Time{}
	tests := map[string]struct {
		objs []runtime.Object
		key  cache.ObjectName
		// want is the status written ("" fields included); nil: no write.
		want *v1alpha1.TriggerAuthenticationStatus
	}{
		"the lists of a TriggerAuthentication, sorted, each once": {
			objs: []runtime.Object{
				taObj("apps", "auth", "", ""),
				soObj("apps", "b", refs(toTA, toTA)), soObj("apps", "a", refs(toElse, toTAk)), soObj("apps", "c", refs(toElse)),
				soObj("other", "d", refs(toTA)), soObj("apps", "e", refs(toCTA)),
				sjObj("apps", "job", refs(toTA)), deleting,
			},
			key:  cache.NewObjectName("apps", "auth"),
			want: &v1alpha1.TriggerAuthenticationStatus{ScaledObjects: "a,b", ScaledJobs: "job"},
		},
		"unchanged: no write": {
			objs: []runtime.Object{taObj("apps", "auth", "a,b", "job"), soObj("apps", "a", refs(toTA)), soObj("apps", "b", refs(toTA)), sjObj("apps", "job", refs(toTA))},
			key:  cache.NewObjectName("apps", "auth"),
		},
		"no longer referenced: left out": {
			objs: []runtime.Object{taObj("apps", "auth", "a,old", "gone"), soObj("apps", "a", refs(toTA)), soObj("apps", "old", refs(toElse))},
			key:  cache.NewObjectName("apps", "auth"),
			want: &v1alpha1.TriggerAuthenticationStatus{ScaledObjects: "a"},
		},
		"being deleted: left out": {
			objs: []runtime.Object{taObj("apps", "auth", "going", ""), deleting},
			key:  cache.NewObjectName("apps", "auth"),
			want: &v1alpha1.TriggerAuthenticationStatus{},
		},
		"a ClusterTriggerAuthentication: names from every namespace, as KEDA writes them": {
			objs: []runtime.Object{
				ctaObj("auth", "", ""),
				soObj("team-a", "worker", refs(toCTA)), soObj("team-b", "worker", refs(toCTA)), soObj("team-b", "api", refs(toCTA)),
				soObj("team-a", "ta-only", refs(toTA)), sjObj("team-c", "batch", refs(toCTA)),
			},
			key:  cache.NewObjectName("", "auth"),
			want: &v1alpha1.TriggerAuthenticationStatus{ScaledObjects: "api,worker", ScaledJobs: "batch"},
		},
		"a ClusterTriggerAuthentication unchanged": {
			objs: []runtime.Object{ctaObj("auth", "worker", ""), soObj("team-a", "worker", refs(toCTA))},
			key:  cache.NewObjectName("", "auth"),
		},
		"a missing TriggerAuthentication": {
			objs: []runtime.Object{soObj("apps", "a", refs(toTA))},
			key:  cache.NewObjectName("apps", "auth"),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, tc.objs...)
			_, ctx := ktesting.NewTestContext(t)
			if err := f.controller.sync(ctx, tc.key); err != nil {
				t.Fatal(err)
			}
			var writes []core.Action
			for _, a := range f.keda.Actions() {
				if a.GetVerb() != "get" && a.GetVerb() != "list" && a.GetVerb() != "watch" {
					writes = append(writes, a)
				}
			}
			if tc.want == nil {
				if len(writes) != 0 {
					t.Errorf("writes = %v, want none", writes)
				}
				return
			}
			if len(writes) != 1 || writes[0].GetVerb() != "update" || writes[0].GetSubresource() != "status" {
				t.Fatalf("writes = %v, want one status update", writes)
			}
			var got v1alpha1.TriggerAuthenticationStatus
			switch o := writes[0].(core.UpdateAction).GetObject().(type) {
			case *v1alpha1.TriggerAuthentication:
				got = o.Status
			case *v1alpha1.ClusterTriggerAuthentication:
				got = o.Status
			}
			if got != *tc.want {
				t.Errorf("status = %+v, want %+v", got, *tc.want)
			}
		})
	}
}

// TestEvents checks which changes of ScaledObjects and ScaledJobs queue
// which authentication objects.
func TestEvents(t *testing.T) {
	f := newFixture(t)
	h := f.controller
	a := soObj("apps", "a", refs(toTA))
	drain := func() []string {
		var keys []string
		for h.queue.Len() > 0 {
			k, _ := h.queue.Get()
			keys = append(keys, k.String())
			h.queue.Done(k)
			h.queue.Forget(k)
		}
		slices.Sort(keys)
		return keys
	}
	update := h.scalableUpdated

	h.enqueueRefs(a)
	if got := drain(); !slices.Equal(got, []string{"apps/auth"}) {
		t.Errorf("add: queued %v", got)
	}
	statusOnly := a.DeepCopy()
	statusOnly.Status.HpaName = "keda-hpa-a"
	update(a, statusOnly)
	if got := drain(); len(got) != 0 {
		t.Errorf("status update: queued %v, want nothing", got)
	}
	moved := soObj("apps", "a", refs(toElse, toCTA))
	update(a, moved)
	if got := drain(); !slices.Equal(got, []string{"apps/auth", "apps/other", "auth"}) {
		t.Errorf("new references: queued %v, want the old and the new ones", got)
	}
	deleting := moved.DeepCopy()
	deleting.DeletionTimestamp = &metav1.Time{}
	update(moved, deleting)
	if got := drain(); !slices.Equal(got, []string{"apps/other", "auth"}) {
		t.Errorf("deletion started: queued %v", got)
	}
	h.enqueueRefs(cache.DeletedFinalStateUnknown{Key: "apps/a", Obj: sjObj("apps", "j", refs(toTA))})
	if got := drain(); !slices.Equal(got, []string{"apps/auth"}) {
		t.Errorf("tombstone: queued %v", got)
	}
}
