package scaleloop

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	created := metav1.NewTime(now.Add(-time.Hour))
	so := func(mutate ...func(*v1alpha1.ScaledObject)) *v1alpha1.ScaledObject {
		s := &v1alpha1.ScaledObject{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: created}}
		s.Spec.CooldownPeriod = ptr.To[int32](60)
		for _, m := range mutate {
			m(s)
		}
		return s
	}
	min := func(n int32) func(*v1alpha1.ScaledObject) {
		return func(s *v1alpha1.ScaledObject) { s.Spec.MinReplicaCount = ptr.To(n) }
	}
	idle := func(n int32) func(*v1alpha1.ScaledObject) {
		return func(s *v1alpha1.ScaledObject) { s.Spec.IdleReplicaCount = ptr.To(n) }
	}
	active := Activity{Known: true, Active: true, LastActive: now}
	recent := Activity{Known: true, LastActive: now.Add(-30 * time.Second)}
	cooled := Activity{Known: true, LastActive: now.Add(-2 * time.Minute)}
	never := Activity{Known: true}

	tests := map[string]struct {
		so         *v1alpha1.ScaledObject
		current    int32
		activity   Activity
		want       int32
		wantReason string
	}{
		"active at zero goes to one":                {so: so(), current: 0, activity: active, want: 1, wantReason: "Activated"},
		"active at zero goes to the minimum":        {so: so(min(3)), current: 0, activity: active, want: 3, wantReason: "Activated"},
		"active at idle goes to the minimum":        {so: so(min(2), idle(0)), current: 0, activity: active, want: 2, wantReason: "Activated"},
		"active above zero is the HPA's business":   {so: so(), current: 4, activity: active, want: 4},
		"inactive within the cooldown stays":        {so: so(), current: 2, activity: recent, want: 2},
		"inactive past the cooldown goes to zero":   {so: so(), current: 2, activity: cooled, want: 0, wantReason: "Deactivated"},
		"never active goes to zero":                 {so: so(), current: 1, activity: never, want: 0, wantReason: "Deactivated"},
		"inactive goes to idle replicas":            {so: so(min(3), idle(1)), current: 5, activity: cooled, want: 1, wantReason: "Deactivated"},
		"a minimum without idle is the HPA's floor": {so: so(min(2)), current: 5, activity: cooled, want: 5},
		"already at zero stays":                     {so: so(), current: 0, activity: cooled, want: 0},
		"default cooldown is 300 s": {
			so:      so(func(s *v1alpha1.ScaledObject) { s.Spec.CooldownPeriod = nil }),
			current: 1, activity: cooled, want: 1,
		},
		"initial cooldown holds a new object": {
			so: so(func(s *v1alpha1.ScaledObject) {
				s.Spec.InitialCooldownPeriod = ptr.To[int32](7200)
			}),
			current: 1, activity: never, want: 1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, reason := Decide(tc.so, tc.current, tc.activity, now)
			if got != tc.want || reason != tc.wantReason {
				t.Errorf("Decide() = %d %q, want %d %q", got, reason, tc.want, tc.wantReason)
			}
		})
	}
}
