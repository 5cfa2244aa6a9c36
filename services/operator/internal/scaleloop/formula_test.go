package scaleloop

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// listSource answers for one Redis list: a value, its own activity, or an
// error.
type listSource struct {
	mu     sync.Mutex
	value  string
	active bool
	err    error
	polls  int
}

func (s *listSource) Poll(context.Context) (scaler.Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polls++
	if s.err != nil {
		return scaler.Reading{}, s.err
	}
	return scaler.Reading{Value: resource.MustParse(s.value), Active: s.active}, nil
}
func (s *listSource) Close() error { return nil }

func redisTrigger(name, list string) v1alpha1.ScaleTrigger {
	return v1alpha1.ScaleTrigger{Type: "redis", Name: name, Metadata: map[string]string{"address": "redis:6379", "listName": list}}
}

// source is one trigger's answer in a test: a value ("fail" for an error)
// and the scaler's own activity, which a formula overrides.
type source struct {
	value  string
	active bool
}

func TestPollWithFormula(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		formula, activationTarget string
		sources                   map[string]source // by list name
		start                     int32             // the target's replicas
		want                      int32
		wantKnown, wantActive     bool
	}{
		"above the activation target activates": {
			formula: "a + b", activationTarget: "5",
			sources: map[string]source{"a": {value: "3"}, "b": {value: "3"}},
			start:   0, want: 1, wantKnown: true, wantActive: true,
		},
		"the scalers' own activity does not count": {
			formula: "a + b", activationTarget: "5",
			sources: map[string]source{"a": {value: "2", active: true}, "b": {value: "3", active: true}},
			start:   1, want: 0, wantKnown: true,
		},
		"equal to the target is not active": {
			formula: "a * b", activationTarget: "6",
			sources: map[string]source{"a": {value: "2"}, "b": {value: "3"}},
			start:   0, want: 0, wantKnown: true,
		},
		"activation target defaults to 0": {
			formula: "a - b",
			sources: map[string]source{"a": {value: "2"}, "b": {value: "1"}},
			start:   0, want: 1, wantKnown: true, wantActive: true,
		},
		"a failing trigger is nil, the formula copes": {
			formula: "b ?? a", activationTarget: "1",
			sources: map[string]source{"a": {value: "4"}, "b": {value: "fail"}},
			start:   0, want: 1, wantKnown: true, wantActive: true,
		},
		"a formula that needs the failing trigger holds the replicas": {
			formula: "a + b",
			sources: map[string]source{"a": {value: "4"}, "b": {value: "fail"}},
			start:   3, want: 3,
		},
		"an invalid formula holds the replicas": {
			formula: "a + nope",
			sources: map[string]source{"a": {value: "4"}, "b": {value: "4"}},
			start:   3, want: 3,
		},
		"an unreadable activation target holds the replicas": {
			formula: "a", activationTarget: "lots",
			sources: map[string]source{"a": {value: "4"}, "b": {value: "4"}},
			start:   0, want: 0,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			so := &v1alpha1.ScaledObject{
				ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: "queue", UID: "uid", Generation: 1, CreationTimestamp: metav1.NewTime(now.Add(-time.Hour))},
				Spec: v1alpha1.ScaledObjectSpec{
					ScaleTargetRef: &v1alpha1.ScaleTarget{Name: "worker"},
					CooldownPeriod: ptr.To[int32](0),
					Triggers:       []v1alpha1.ScaleTrigger{redisTrigger("a", "a"), redisTrigger("b", "b")},
					Advanced: &v1alpha1.AdvancedConfig{ScalingModifiers: &v1alpha1.ScalingModifiers{
						Formula: tc.formula, Target: "2", ActivationTarget: tc.activationTarget,
					}},
				},
				Status: v1alpha1.ScaledObjectStatus{ScaleTargetGVKR: &v1alpha1.GroupVersionKindResource{Group: "apps", Version: "v1", Kind: "Deployment", Resource: "deployments"}},
			}
			factory := kedainformers.NewSharedInformerFactory(kedafake.NewSimpleClientset(), 0)
			informer := factory.Keda().V1alpha1().ScaledObjects()
			if err := informer.Informer().GetIndexer().Add(so); err != nil {
				t.Fatal(err)
			}
			sources := map[string]*listSource{}
			for list, s := range tc.sources {
				src := &listSource{value: s.value, active: s.active}
				if s.value == "fail" {
					src.err = errors.New("source down")
				}
				sources[list] = src
			}
			trigs := triggers.NewCache(scaler.Deps{}, triggers.WithScalerConstructor(func(cfg scalers.Config, _ scaler.Deps) (scaler.Scaler, error) {
				return sources[cfg.(*scalers.RedisConfig).ListName], nil
			}))
			defer trigs.Close()
			replicas := &fakeReplicas{n: tc.start}
			loop := New(informer.Lister(), trigs, replicas, record.NewFakeRecorder(10), nil, clocktesting.NewFakeClock(now))
			_, ctx := ktesting.NewTestContext(t)
			key := cache.NewObjectName("queue", "worker")
			loop.poll(ctx, key)

			if replicas.n != tc.want {
				t.Errorf("replicas = %d, want %d", replicas.n, tc.want)
			}
			if a := loop.Activity(key); a.Known != tc.wantKnown || a.Active != tc.wantActive {
				t.Errorf("activity = %+v, want known %v, active %v", a, tc.wantKnown, tc.wantActive)
			}
			for list, s := range sources {
				if s.polls != 1 {
					t.Errorf("source %s polled %d times, want 1", list, s.polls)
				}
			}
		})
	}
}

func TestPollRemembersForCachedMetrics(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	cached := redisTrigger("a", "a")
	cached.UseCachedMetrics = true
	so := &v1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: "queue", UID: "uid", Generation: 1},
		Spec: v1alpha1.ScaledObjectSpec{
			ScaleTargetRef: &v1alpha1.ScaleTarget{Name: "worker"},
			Triggers:       []v1alpha1.ScaleTrigger{cached, redisTrigger("b", "b")},
		},
		Status: v1alpha1.ScaledObjectStatus{ScaleTargetGVKR: &v1alpha1.GroupVersionKindResource{Group: "apps", Version: "v1", Kind: "Deployment", Resource: "deployments"}},
	}
	factory := kedainformers.NewSharedInformerFactory(kedafake.NewSimpleClientset(), 0)
	informer := factory.Keda().V1alpha1().ScaledObjects()
	if err := informer.Informer().GetIndexer().Add(so); err != nil {
		t.Fatal(err)
	}
	sources := map[string]*listSource{"a": {value: "7", active: true}, "b": {value: "1"}}
	trigs := triggers.NewCache(scaler.Deps{}, triggers.WithScalerConstructor(func(cfg scalers.Config, _ scaler.Deps) (scaler.Scaler, error) {
		return sources[cfg.(*scalers.RedisConfig).ListName], nil
	}))
	defer trigs.Close()
	clk := clocktesting.NewFakeClock(now)
	loop := New(informer.Lister(), trigs, &fakeReplicas{n: 1}, record.NewFakeRecorder(10), nil, clk)
	_, ctx := ktesting.NewTestContext(t)
	loop.poll(ctx, cache.NewObjectName("queue", "worker"))

	trs, err := trigs.Scalers(so)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := trs[0].Cached()
	if !ok || got.Reading.Value.String() != "7" || !got.At.Equal(now) || got.Err != nil {
		t.Errorf("cached reading of a = %+v, %v; want 7 at %v", got, ok, now)
	}
	if _, ok := trs[1].Cached(); ok {
		t.Error("b, without useCachedMetrics, has a cached reading")
	}

	sources["a"].mu.Lock()
	sources["a"].err = errors.New("source down")
	sources["a"].mu.Unlock()
	clk.Step(time.Second)
	loop.poll(ctx, cache.NewObjectName("queue", "worker"))
	if got, _ := trs[0].Cached(); got.Err == nil || !got.At.Equal(now.Add(time.Second)) {
		t.Errorf("cached reading after a failed poll = %+v, want the error", got)
	}
}
