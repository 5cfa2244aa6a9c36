package scaledobject

import (
	"maps"
	"slices"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaleloop"
)

// fakeLoop is the scale loop's view of one ScaledObject.
type fakeLoop struct{ activity scaleloop.Activity }

func (l *fakeLoop) Track(*v1alpha1.ScaledObject)                 {}
func (l *fakeLoop) Untrack(cache.ObjectName)                     {}
func (l *fakeLoop) Activity(cache.ObjectName) scaleloop.Activity { return l.activity }

func TestSyncTriggersActivity(t *testing.T) {
	lastActive := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	active := func(m map[string]bool) scaleloop.Activity {
		a := scaleloop.Activity{Known: true, Triggers: m, LastActive: lastActive}
		for _, on := range m {
			a.Active = a.Active || on
		}
		return a
	}
	status := func(m map[string]bool) map[string]v1alpha1.TriggerActivityStatus {
		if m == nil {
			return nil
		}
		out := map[string]v1alpha1.TriggerActivityStatus{}
		for k, v := range m {
			out[k] = v1alpha1.TriggerActivityStatus{IsActive: v}
		}
		return out
	}
	tests := map[string]struct {
		before     map[string]bool // status.triggersActivity before the sync
		activity   scaleloop.Activity
		want       map[string]bool
		wantWrites bool
	}{
		"not polled yet: left alone": {
			before: map[string]bool{"s0-redis-jobs": true}, activity: scaleloop.Activity{},
			want: map[string]bool{"s0-redis-jobs": true},
		},
		"first poll": {
			activity: active(map[string]bool{"s0-redis-jobs": false}),
			want:     map[string]bool{"s0-redis-jobs": false}, wantWrites: true,
		},
		"unchanged: no write": {
			before: map[string]bool{"s0-redis-jobs": true}, activity: active(map[string]bool{"s0-redis-jobs": true}),
			want: map[string]bool{"s0-redis-jobs": true},
		},
		"a trigger turns active": {
			before: map[string]bool{"s0-redis-jobs": false}, activity: active(map[string]bool{"s0-redis-jobs": true}),
			want: map[string]bool{"s0-redis-jobs": true}, wantWrites: true,
		},
		"a removed trigger goes": {
			before: map[string]bool{"s0-redis-jobs": true, "s1-redis-old": true}, activity: active(map[string]bool{"s0-redis-jobs": true}),
			want: map[string]bool{"s0-redis-jobs": true}, wantWrites: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			// A ScaledObject synced once, its HPA in place, Active as the
			// loop last said.
			f0 := newFixture(t, []*v1alpha1.ScaledObject{newScaledObject()}, nil, map[string]int32{"worker": 1})
			if err := f0.sync("jobs"); err != nil {
				t.Fatal(err)
			}
			so := f0.scaledObject("jobs")
			so.Status.TriggersActivity = status(tc.before)
			if tc.activity.Known {
				reason, st := "ScalerNotActive", metav1.ConditionFalse
				if tc.activity.Active {
					reason, st = "ScalerActive", metav1.ConditionTrue
				}
				so.Status.Conditions.Set(v1alpha1.ConditionActive, st, reason, "")
			}
			f := newFixture(t, []*v1alpha1.ScaledObject{so}, []*autoscalingv2.HorizontalPodAutoscaler{f0.hpa("keda-hpa-jobs")}, map[string]int32{"worker": 1})
			f.controller.SetScaleLoop(&fakeLoop{activity: tc.activity})
			if err := f.sync("jobs"); err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for k, v := range f.scaledObject("jobs").Status.TriggersActivity {
				got[k] = v.IsActive
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("status.triggersActivity = %v, want %v", got, tc.want)
			}
			wantWrites := []string(nil)
			if tc.wantWrites {
				wantWrites = []string{"update scaledobjects/status jobs"}
			}
			if w := f.writes(); !slices.Equal(w, wantWrites) {
				t.Errorf("writes = %v, want %v", w, wantWrites)
			}
		})
	}
}
