package scaledobject

import (
	"slices"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
)

// fakeHealth is the MetricsService's record of one ScaledObject.
type fakeHealth struct {
	health   map[string]v1alpha1.HealthStatus
	fallback []string
}

func (f fakeHealth) Health(types.UID) map[string]v1alpha1.HealthStatus { return f.health }
func (f fakeHealth) FallbackMetrics(types.UID) []string                { return f.fallback }

func health(failures int32) v1alpha1.HealthStatus {
	st := v1alpha1.HealthStatusHappy
	if failures > 0 {
		st = v1alpha1.HealthStatusFailing
	}
	return v1alpha1.HealthStatus{NumberOfFailures: ptr.To(failures), Status: st}
}

func TestSyncHealthAndFallback(t *testing.T) {
	withFallback := func(so *v1alpha1.ScaledObject) {
		so.Spec.Fallback = &v1alpha1.Fallback{FailureThreshold: 3, Replicas: 2}
	}
	inFallback := func(so *v1alpha1.ScaledObject) {
		so.Status.Health = map[string]v1alpha1.HealthStatus{"s0-redis-jobs": health(4)}
		so.Status.Conditions = v1alpha1.InitialConditions()
		so.Status.Conditions.Set(v1alpha1.ConditionFallback, metav1.ConditionTrue, reasonFallbackExists, "old")
	}
	tests := map[string]struct {
		so           *v1alpha1.ScaledObject
		health       MetricsHealth // nil: not connected
		wantHealth   map[string]v1alpha1.HealthStatus
		wantFallback metav1.ConditionStatus
		wantReason   string
		wantMessage  string
		wantEvent    string // part of the one fallback event expected
	}{
		"not connected: left alone": {
			so:           newScaledObject(withFallback),
			wantFallback: metav1.ConditionUnknown,
		},
		"no spec.fallback: no health, Fallback False": {
			so:           newScaledObject(inFallback),
			health:       fakeHealth{health: map[string]v1alpha1.HealthStatus{"s0-redis-jobs": health(9)}, fallback: []string{"s0-redis-jobs"}},
			wantFallback: metav1.ConditionFalse, wantReason: reasonNoFallbackFound, wantMessage: "No fallback is configured",
			wantEvent: "Normal FallbackDeactivated",
		},
		"nothing read since the start: the status stands": {
			so:           newScaledObject(withFallback, inFallback),
			health:       fakeHealth{},
			wantHealth:   map[string]v1alpha1.HealthStatus{"s0-redis-jobs": health(4)},
			wantFallback: metav1.ConditionTrue, wantReason: reasonFallbackExists, wantMessage: "old",
		},
		"healthy": {
			so:           newScaledObject(withFallback),
			health:       fakeHealth{health: map[string]v1alpha1.HealthStatus{"s0-redis-jobs": health(0)}},
			wantHealth:   map[string]v1alpha1.HealthStatus{"s0-redis-jobs": health(0)},
			wantFallback: metav1.ConditionFalse, wantReason: reasonNoFallbackFound,
		},
		"failing below the threshold": {
			so:           newScaledObject(withFallback),
			health:       fakeHealth{health: map[string]v1alpha1.HealthStatus{"s0-redis-jobs": health(1)}},
			wantHealth:   map[string]v1alpha1.HealthStatus{"s0-redis-jobs": health(1)},
			wantFallback: metav1.ConditionFalse, wantReason: reasonNoFallbackFound,
		},
		"fallback starts": {
			so: newScaledObject(withFallback),
			health: fakeHealth{
				health:   map[string]v1alpha1.HealthStatus{"s0-redis-jobs": health(4), "s1-cron": health(0)},
				fallback: []string{"s0-redis-jobs"},
			},
			wantHealth:   map[string]v1alpha1.HealthStatus{"s0-redis-jobs": health(4), "s1-cron": health(0)},
			wantFallback: metav1.ConditionTrue, wantReason: reasonFallbackExists,
			wantMessage: "The fallback answers for s0-redis-jobs: more than 3 consecutive failed reads",
			wantEvent:   "Warning FallbackActivated The fallback answers for s0-redis-jobs",
		},
		"fallback ends": {
			so:           newScaledObject(withFallback, inFallback),
			health:       fakeHealth{health: map[string]v1alpha1.HealthStatus{"s0-redis-jobs": health(0)}},
			wantHealth:   map[string]v1alpha1.HealthStatus{"s0-redis-jobs": health(0)},
			wantFallback: metav1.ConditionFalse, wantReason: reasonNoFallbackFound,
			wantEvent: "Normal FallbackDeactivated The fallback no longer applies",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, []*v1alpha1.ScaledObject{tc.so}, nil, map[string]int32{"worker": 1})
			if tc.health != nil {
				f.controller.SetMetricsHealth(tc.health)
			}
			if err := f.sync("jobs"); err != nil {
				t.Fatal(err)
			}
			st := f.scaledObject("jobs").Status
			if !equality.Semantic.DeepEqual(st.Health, tc.wantHealth) {
				t.Errorf("health = %v, want %v", st.Health, tc.wantHealth)
			}
			c := st.Conditions.Fallback()
			if c.Status != tc.wantFallback || (tc.wantReason != "" && c.Reason != tc.wantReason) || !strings.Contains(c.Message, tc.wantMessage) {
				t.Errorf("Fallback = %+v, want %s %s %q", c, tc.wantFallback, tc.wantReason, tc.wantMessage)
			}
			var fallbackEvents []string
			for _, e := range f.events() {
				if strings.Contains(e, "Fallback") {
					fallbackEvents = append(fallbackEvents, e)
				}
			}
			if tc.wantEvent == "" && len(fallbackEvents) != 0 {
				t.Errorf("fallback events = %q, want none", fallbackEvents)
			}
			if tc.wantEvent != "" && (len(fallbackEvents) != 1 || !strings.HasPrefix(fallbackEvents[0], tc.wantEvent)) {
				t.Errorf("fallback events = %q, want one starting %q", fallbackEvents, tc.wantEvent)
			}
		})
	}
}

func TestSyncHealthWritesOnlyChanges(t *testing.T) {
	so := newScaledObject(func(so *v1alpha1.ScaledObject) {
		so.Spec.Fallback = &v1alpha1.Fallback{FailureThreshold: 3, Replicas: 2}
	})
	record := fakeHealth{health: map[string]v1alpha1.HealthStatus{"s0-redis-jobs": health(1)}}
	f0 := newFixture(t, []*v1alpha1.ScaledObject{so}, nil, map[string]int32{"worker": 1})
	f0.controller.SetMetricsHealth(record)
	if err := f0.sync("jobs"); err != nil {
		t.Fatal(err)
	}
	synced := f0.scaledObject("jobs")
	hpas := []*autoscalingv2.HorizontalPodAutoscaler{f0.hpa("keda-hpa-jobs")}

	// The same record: no write.
	f := newFixture(t, []*v1alpha1.ScaledObject{synced}, hpas, map[string]int32{"worker": 1})
	f.controller.SetMetricsHealth(fakeHealth{health: map[string]v1alpha1.HealthStatus{"s0-redis-jobs": health(1)}})
	if err := f.sync("jobs"); err != nil {
		t.Fatal(err)
	}
	if w := f.writes(); len(w) != 0 {
		t.Errorf("writes = %v, want none when the health is unchanged", w)
	}

	// Back to Happy: one status write.
	f = newFixture(t, []*v1alpha1.ScaledObject{synced}, hpas, map[string]int32{"worker": 1})
	f.controller.SetMetricsHealth(fakeHealth{health: map[string]v1alpha1.HealthStatus{"s0-redis-jobs": health(0)}})
	if err := f.sync("jobs"); err != nil {
		t.Fatal(err)
	}
	if w := f.writes(); !slices.Equal(w, []string{"update scaledobjects/status jobs"}) {
		t.Errorf("writes = %v, want one status write", w)
	}
}
