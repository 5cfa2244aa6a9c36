package scaleloop

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedafake "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned/fake"
	kedainformers "github.com/ebb-autoscaler/ebb/pkg/client/informers/externalversions"
	"github.com/ebb-autoscaler/ebb/pkg/scalers"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/triggers"
)

// fakeSource is every trigger's event source in a test.
type fakeSource struct {
	mu     sync.Mutex
	active bool
	err    error
}

func (f *fakeSource) Poll(context.Context) (scaler.Reading, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return scaler.Reading{Active: f.active}, f.err
}
func (f *fakeSource) Close() error { return nil }
func (f *fakeSource) set(active bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.active, f.err = active, err
}

// fakeReplicas is a target's replica count.
type fakeReplicas struct {
	mu     sync.Mutex
	n      int32
	writes []int32
}

func (f *fakeReplicas) Get(context.Context, string, schema.GroupResource, string) (int32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n, nil
}
func (f *fakeReplicas) Set(_ context.Context, _ string, _ schema.GroupResource, _ string, n int32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n = n
	f.writes = append(f.writes, n)
	return nil
}

func TestPoll(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	so := &v1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: "queue", UID: "uid", Generation: 1, CreationTimestamp: metav1.NewTime(now.Add(-time.Hour))},
		Spec: v1alpha1.ScaledObjectSpec{
			ScaleTargetRef: &v1alpha1.ScaleTarget{Name: "worker"},
			CooldownPeriod: ptr.To[int32](60),
			Triggers:       []v1alpha1.ScaleTrigger{{Type: "redis", Metadata: map[string]string{"address": "redis:6379", "listName": "jobs"}}},
		},
		Status: v1alpha1.ScaledObjectStatus{ScaleTargetGVKR: &v1alpha1.GroupVersionKindResource{Group: "apps", Version: "v1", Kind: "Deployment", Resource: "deployments"}},
	}
	paused := so.DeepCopy()
	paused.Name = "paused"
	paused.Annotations = map[string]string{v1alpha1.PausedAnnotation: "true"}

	factory := kedainformers.NewSharedInformerFactory(kedafake.NewSimpleClientset(), 0)
	informer := factory.Keda().V1alpha1().ScaledObjects()
	for _, o := range []*v1alpha1.ScaledObject{so, paused} {
		if err := informer.Informer().GetIndexer().Add(o); err != nil {
			t.Fatal(err)
		}
	}
	source := &fakeSource{}
	trigs := triggers.NewCache(scaler.Deps{}, triggers.WithScalerConstructor(func(scalers.Config, scaler.Deps) (scaler.Scaler, error) { return source, nil }))
	replicas := &fakeReplicas{}
	clk := clocktesting.NewFakeClock(now)
	var changes []string
	loop := New(informer.Lister(), trigs, replicas, record.NewFakeRecorder(10), func(k cache.ObjectName) { changes = append(changes, k.String()) }, clk)
	_, ctx := ktesting.NewTestContext(t)
	key := cache.NewObjectName("queue", "worker")
	step := func(d time.Duration) {
		clk.Step(d)
		loop.poll(ctx, key)
	}

	step(0) // inactive at zero: nothing to do, but the activity is now known
	if got := loop.Activity(key); !got.Known || got.Active || len(replicas.writes) != 0 || len(changes) != 1 {
		t.Fatalf("first poll: activity %+v, writes %v, changes %v; want known, inactive, no write, one change", got, replicas.writes, changes)
	}
	source.set(true, nil)
	step(time.Second) // activate
	if replicas.n != 1 || len(changes) != 2 || !loop.Activity(key).LastActive.Equal(clk.Now()) {
		t.Fatalf("activation: replicas %d, changes %v, activity %+v", replicas.n, changes, loop.Activity(key))
	}
	step(time.Second) // still active: no write, no change notification
	if len(replicas.writes) != 1 || len(changes) != 2 {
		t.Fatalf("steady active: writes %v, changes %v", replicas.writes, changes)
	}
	source.set(false, nil)
	step(30 * time.Second) // inactive within the cooldown
	if replicas.n != 1 || len(changes) != 3 {
		t.Fatalf("within the cooldown: replicas %d, changes %v", replicas.n, changes)
	}
	source.set(false, errors.New("source down"))
	step(time.Minute) // every trigger failing: replicas held, activity unchanged
	if replicas.n != 1 || len(changes) != 3 || loop.Activity(key).Failing != 1 {
		t.Fatalf("all triggers failing: replicas %d, changes %v, activity %+v", replicas.n, changes, loop.Activity(key))
	}
	source.set(false, nil)
	step(time.Second) // past the cooldown: back to zero
	if replicas.n != 0 {
		t.Fatalf("past the cooldown: replicas %d, want 0", replicas.n)
	}

	loop.poll(ctx, cache.NewObjectName("queue", "paused"))
	if len(replicas.writes) != 2 {
		t.Errorf("A paused ScaledObject was scaled: writes %v", replicas.writes)
	}
	loop.Untrack(key)
	if got := loop.Activity(key); got.Known {
		t.Errorf("Activity after Untrack = %+v, want unknown", got)
	}
}
