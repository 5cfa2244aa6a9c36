package scaleloop

import (
	"context"
	"errors"
	"maps"
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

// hungSource records the deadline of each poll and, when block is set,
// answers only when the poll's context ends, like a source that never
// replies.
type hungSource struct {
	block     bool
	mu        sync.Mutex
	deadlines []time.Duration // from the poll's start; -1 for none
}

func (h *hungSource) Poll(ctx context.Context) (scaler.Reading, error) {
	d := time.Duration(-1)
	if dl, ok := ctx.Deadline(); ok {
		d = time.Until(dl)
	}
	h.mu.Lock()
	h.deadlines = append(h.deadlines, d)
	h.mu.Unlock()
	if !h.block {
		return scaler.Reading{Active: true}, nil
	}
	<-ctx.Done()
	return scaler.Reading{}, &scaler.Error{Type: "redis", Kind: scaler.ErrTimeout, Detail: ctx.Err().Error()}
}
func (h *hungSource) Close() error { return nil }

func TestPollIsBounded(t *testing.T) {
	redis := v1alpha1.ScaleTrigger{Type: "redis", Metadata: map[string]string{"address": "redis:6379", "listName": "jobs"}}
	tests := map[string]struct {
		opts        []Option
		block       bool
		triggers    int
		wantBound   time.Duration
		wantFailing int
	}{
		"the default bound: the MetricsService's": {triggers: 1, wantBound: triggers.DefaultPollTimeout},
		"a hung source is cut off at the bound": {
			opts: []Option{WithPollTimeout(50 * time.Millisecond)}, block: true, triggers: 1,
			wantBound: 50 * time.Millisecond, wantFailing: 1,
		},
		"each hung trigger is bounded": {
			opts: []Option{WithPollTimeout(50 * time.Millisecond)}, block: true, triggers: 2,
			wantBound: 50 * time.Millisecond, wantFailing: 2,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			so := &v1alpha1.ScaledObject{
				ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: "queue", UID: "uid", Generation: 1},
				Spec:       v1alpha1.ScaledObjectSpec{ScaleTargetRef: &v1alpha1.ScaleTarget{Name: "worker"}},
				Status:     v1alpha1.ScaledObjectStatus{ScaleTargetGVKR: &v1alpha1.GroupVersionKindResource{Group: "apps", Version: "v1", Kind: "Deployment", Resource: "deployments"}},
			}
			for range tc.triggers {
				so.Spec.Triggers = append(so.Spec.Triggers, redis)
			}
			factory := kedainformers.NewSharedInformerFactory(kedafake.NewSimpleClientset(), 0)
			informer := factory.Keda().V1alpha1().ScaledObjects()
			if err := informer.Informer().GetIndexer().Add(so); err != nil {
				t.Fatal(err)
			}
			source := &hungSource{block: tc.block}
			trigs := triggers.NewCache(scaler.Deps{}, triggers.WithScalerConstructor(func(scalers.Config, scaler.Deps) (scaler.Scaler, error) { return source, nil }))
			defer trigs.Close()
			loop := New(informer.Lister(), trigs, &fakeReplicas{}, record.NewFakeRecorder(10), nil, clocktesting.NewFakeClock(time.Now()), tc.opts...)
			_, ctx := ktesting.NewTestContext(t)
			key := cache.NewObjectName("queue", "worker")

			done := make(chan struct{})
			go func() {
				defer close(done)
				loop.poll(ctx, key) // ctx has no deadline: only the loop's bound ends a hung poll
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the poll of a hung source did not end")
			}
			source.mu.Lock()
			defer source.mu.Unlock()
			if len(source.deadlines) != tc.triggers {
				t.Fatalf("%d polls, want %d", len(source.deadlines), tc.triggers)
			}
			for i, d := range source.deadlines {
				if d < 0 || d > tc.wantBound || d < tc.wantBound-time.Second/2 {
					t.Errorf("poll %d: deadline in %s, want about %s", i, d, tc.wantBound)
				}
			}
			if got := loop.Activity(key).Failing; got != tc.wantFailing {
				t.Errorf("failing triggers = %d, want %d", got, tc.wantFailing)
			}
		})
	}
}

func TestPollTriggersActivity(t *testing.T) {
	type source struct {
		active bool
		err    bool
	}
	type step struct {
		a, b       source
		want       map[string]bool
		wantChange bool
	}
	on, off, down := source{active: true}, source{}, source{err: true}
	tests := map[string][]step{
		"transitions only": {
			{a: off, b: off, want: map[string]bool{"s0-redis-a": false, "s1-redis-b": false}, wantChange: true},
			{a: off, b: off, want: map[string]bool{"s0-redis-a": false, "s1-redis-b": false}},
			{a: on, b: off, want: map[string]bool{"s0-redis-a": true, "s1-redis-b": false}, wantChange: true},
			{a: on, b: off, want: map[string]bool{"s0-redis-a": true, "s1-redis-b": false}},
			// b turns active while a keeps the ScaledObject active: the
			// ScaledObject's activity is the same, a trigger's is not.
			{a: on, b: on, want: map[string]bool{"s0-redis-a": true, "s1-redis-b": true}, wantChange: true},
		},
		"a failing trigger is not active": {
			{a: on, b: on, want: map[string]bool{"s0-redis-a": true, "s1-redis-b": true}, wantChange: true},
			{a: down, b: on, want: map[string]bool{"s0-redis-a": false, "s1-redis-b": true}, wantChange: true},
			{a: down, b: on, want: map[string]bool{"s0-redis-a": false, "s1-redis-b": true}},
			{a: on, b: on, want: map[string]bool{"s0-redis-a": true, "s1-redis-b": true}, wantChange: true},
		},
		"every trigger failing: as it was": {
			{a: on, b: off, want: map[string]bool{"s0-redis-a": true, "s1-redis-b": false}, wantChange: true},
			{a: down, b: down, want: map[string]bool{"s0-redis-a": true, "s1-redis-b": false}},
			{a: down, b: down, want: map[string]bool{"s0-redis-a": true, "s1-redis-b": false}},
		},
		"nothing known before a trigger answers": {
			{a: down, b: down, want: nil, wantChange: true}, // the first poll: the activity is not known yet
			{a: down, b: on, want: map[string]bool{"s0-redis-a": false, "s1-redis-b": true}, wantChange: true},
		},
	}
	for name, steps := range tests {
		t.Run(name, func(t *testing.T) {
			so := &v1alpha1.ScaledObject{
				ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: "queue", UID: "uid", Generation: 1},
				Spec: v1alpha1.ScaledObjectSpec{
					ScaleTargetRef:  &v1alpha1.ScaleTarget{Name: "worker"},
					MinReplicaCount: ptr.To[int32](1),
					Triggers: []v1alpha1.ScaleTrigger{
						{Type: "redis", Metadata: map[string]string{"address": "redis:6379", "listName": "a"}},
						{Type: "redis", Metadata: map[string]string{"address": "redis:6379", "listName": "b"}},
					},
				},
				Status: v1alpha1.ScaledObjectStatus{ScaleTargetGVKR: &v1alpha1.GroupVersionKindResource{Group: "apps", Version: "v1", Kind: "Deployment", Resource: "deployments"}},
			}
			factory := kedainformers.NewSharedInformerFactory(kedafake.NewSimpleClientset(), 0)
			informer := factory.Keda().V1alpha1().ScaledObjects()
			if err := informer.Informer().GetIndexer().Add(so); err != nil {
				t.Fatal(err)
			}
			sources := map[string]*fakeSource{"a": {}, "b": {}}
			trigs := triggers.NewCache(scaler.Deps{}, triggers.WithScalerConstructor(func(cfg scalers.Config, _ scaler.Deps) (scaler.Scaler, error) {
				return sources[cfg.(*scalers.RedisConfig).ListName], nil
			}))
			defer trigs.Close()
			changes := 0
			loop := New(informer.Lister(), trigs, &fakeReplicas{n: 1}, record.NewFakeRecorder(10), func(cache.ObjectName) { changes++ }, clocktesting.NewFakeClock(time.Now()))
			_, ctx := ktesting.NewTestContext(t)
			key := cache.NewObjectName("queue", "worker")
			set := func(s *fakeSource, src source) {
				var err error
				if src.err {
					err = errors.New("source down")
				}
				s.set(src.active, err)
			}
			for i, st := range steps {
				set(sources["a"], st.a)
				set(sources["b"], st.b)
				before := changes
				loop.poll(ctx, key)
				got := loop.Activity(key).Triggers
				if !maps.Equal(got, st.want) {
					t.Errorf("step %d: Triggers = %v, want %v", i, got, st.want)
				}
				if changed := changes > before; changed != st.wantChange {
					t.Errorf("step %d: change notified %v, want %v", i, changed, st.wantChange)
				}
			}
			// Activity's map is a copy.
			loop.Activity(key).Triggers["s0-redis-a"] = !loop.Activity(key).Triggers["s0-redis-a"]
			if got := loop.Activity(key).Triggers; !maps.Equal(got, steps[len(steps)-1].want) {
				t.Errorf("the loop's state was changed through Activity(): %v", got)
			}
		})
	}
}
