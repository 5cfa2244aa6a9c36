package scaledjob

import (
	"testing"

	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
)

func TestNewTriggerMetrics(t *testing.T) {
	for name, tc := range map[string]struct {
		queue, target float64
		maxReplicas   int64
		want          float64
	}{
		"queue over target":        {queue: 12, target: 5, maxReplicas: 100, want: 2.4},
		"capped at maxReplicas":    {queue: 500, target: 5, maxReplicas: 10, want: 10},
		"no target: no value":      {queue: 12, target: 0, maxReplicas: 100, want: 0},
		"fractional target":        {queue: 3, target: 0.5, maxReplicas: 100, want: 6},
		"empty queue":              {queue: 0, target: 5, maxReplicas: 100, want: 0},
		"queue equal to the limit": {queue: 50, target: 5, maxReplicas: 10, want: 10},
	} {
		t.Run(name, func(t *testing.T) {
			got := NewTriggerMetrics(tc.queue, tc.target, true, tc.maxReplicas)
			if got.MaxValue != tc.want || got.QueueLength != tc.queue || !got.Active {
				t.Errorf("NewTriggerMetrics(%v, %v, true, %d) = %+v, want MaxValue %v", tc.queue, tc.target, tc.maxReplicas, got, tc.want)
			}
		})
	}
}

// TestCombine checks multipleScalersCalculation against KEDA's
// IsScaledJobActive: inactive triggers are left out, the queue and value
// are rounded up, the value is capped at maxReplicaCount, and a
// minReplicaCount above zero makes the ScaledJob active.
func TestCombine(t *testing.T) {
	a := func(q, v float64) TriggerMetrics { return TriggerMetrics{QueueLength: q, MaxValue: v, Active: true} }
	i := func(q, v float64) TriggerMetrics { return TriggerMetrics{QueueLength: q, MaxValue: v} }
	for name, tc := range map[string]struct {
		metrics      []TriggerMetrics
		calc         string
		min, max     int64
		wantActive   bool
		wantScaleTo  int64
		wantMaxScale int64
	}{
		"no triggers":                      {max: 100},
		"no triggers, minReplicaCount":     {min: 2, max: 100, wantActive: true},
		"max (default) picks longest":      {metrics: []TriggerMetrics{a(3, 3), a(10, 2), a(7, 7)}, max: 100, wantActive: true, wantScaleTo: 10, wantMaxScale: 2},
		"max by name":                      {metrics: []TriggerMetrics{a(3, 3), a(10, 2)}, calc: "max", max: 100, wantActive: true, wantScaleTo: 10, wantMaxScale: 2},
		"max skips inactive":               {metrics: []TriggerMetrics{a(3, 3), i(10, 10)}, max: 100, wantActive: true, wantScaleTo: 3, wantMaxScale: 3},
		"max of empty active queues":       {metrics: []TriggerMetrics{a(0, 0)}, max: 100},
		"max all inactive":                 {metrics: []TriggerMetrics{i(5, 5)}, max: 100},
		"min picks shortest":               {metrics: []TriggerMetrics{a(10, 10), a(4, 2), a(7, 7)}, calc: "min", max: 100, wantActive: true, wantScaleTo: 4, wantMaxScale: 2},
		"min skips inactive":               {metrics: []TriggerMetrics{i(1, 1), a(4, 4)}, calc: "min", max: 100, wantActive: true, wantScaleTo: 4, wantMaxScale: 4},
		"min replaces an empty queue":      {metrics: []TriggerMetrics{a(0, 0), a(6, 3)}, calc: "min", max: 100, wantActive: true, wantScaleTo: 6, wantMaxScale: 3},
		"avg of active, rounded up":        {metrics: []TriggerMetrics{a(3, 3), a(4, 2), i(100, 100)}, calc: "avg", max: 100, wantActive: true, wantScaleTo: 4, wantMaxScale: 3},
		"avg none active":                  {metrics: []TriggerMetrics{i(3, 3)}, calc: "avg", max: 100},
		"sum of active":                    {metrics: []TriggerMetrics{a(3, 1.5), a(4, 2), i(100, 100)}, calc: "sum", max: 100, wantActive: true, wantScaleTo: 7, wantMaxScale: 4},
		"sum capped at maxReplicaCount":    {metrics: []TriggerMetrics{a(30, 6), a(40, 8)}, calc: "sum", max: 10, wantActive: true, wantScaleTo: 70, wantMaxScale: 10},
		"fractional value rounded up":      {metrics: []TriggerMetrics{a(12, 2.4)}, max: 100, wantActive: true, wantScaleTo: 12, wantMaxScale: 3},
		"unknown calculation is max":       {metrics: []TriggerMetrics{a(3, 3), a(10, 2)}, calc: "median", max: 100, wantActive: true, wantScaleTo: 10, wantMaxScale: 2},
		"inactive with minReplicaCount":    {metrics: []TriggerMetrics{i(5, 5)}, min: 1, max: 100, wantActive: true},
		"fractional queue rounded up":      {metrics: []TriggerMetrics{a(2.2, 0.44)}, max: 100, wantActive: true, wantScaleTo: 3, wantMaxScale: 1},
		"sum of empty active queues":       {metrics: []TriggerMetrics{a(0, 0), a(0, 0)}, calc: "sum", max: 100, wantActive: true},
		"max with a larger inactive value": {metrics: []TriggerMetrics{a(2, 2), i(9, 9)}, max: 5, wantActive: true, wantScaleTo: 2, wantMaxScale: 2},
	} {
		t.Run(name, func(t *testing.T) {
			active, scaleTo, maxScale := Combine(tc.metrics, tc.calc, tc.min, tc.max)
			if active != tc.wantActive || scaleTo != tc.wantScaleTo || maxScale != tc.wantMaxScale {
				t.Errorf("Combine() = %v, %d, %d; want %v, %d, %d", active, scaleTo, maxScale, tc.wantActive, tc.wantScaleTo, tc.wantMaxScale)
			}
		})
	}
}

// TestDecide checks each scaling strategy's arithmetic against KEDA's
// formulas (pkg/scaling/executor/scale_jobs.go), with maxScale, running,
// pending and maxReplicaCount chosen to take every branch.
func TestDecide(t *testing.T) {
	strategy := func(name string, mutate ...func(*v1alpha1.ScalingStrategy)) *v1alpha1.ScalingStrategy {
		s := &v1alpha1.ScalingStrategy{Strategy: name}
		for _, m := range mutate {
			m(s)
		}
		return s
	}
	custom := func(deduction *int32, pct string) *v1alpha1.ScalingStrategy {
		return strategy("custom", func(s *v1alpha1.ScalingStrategy) {
			s.CustomScalingQueueLengthDeduction, s.CustomScalingRunningJobPercentage = deduction, pct
		})
	}
	for name, tc := range map[string]struct {
		strategy                  *v1alpha1.ScalingStrategy
		min, max                  *int32
		inactive                  bool
		scaleTo, maxScale         int64
		running, pending          int64
		wantEffective, wantCreate int64
		wantStrategy              string
	}{
		// default: maxScale - running.
		"default, nothing running":           {scaleTo: 12, maxScale: 3, wantEffective: 3, wantCreate: 3, wantStrategy: "default"},
		"default, some running":              {scaleTo: 12, maxScale: 3, running: 2, wantEffective: 1, wantCreate: 1, wantStrategy: "default"},
		"default, enough running":            {scaleTo: 12, maxScale: 3, running: 3, wantStrategy: "default"},
		"default, more running than wanted":  {scaleTo: 12, maxScale: 3, running: 5, wantStrategy: "default"},
		"default, scaleTo below the maximum": {scaleTo: 2, maxScale: 5, wantEffective: 5, wantCreate: 2, wantStrategy: "default"},
		"default strategy by name":           {strategy: strategy("default"), scaleTo: 3, maxScale: 3, running: 2, wantEffective: 1, wantCreate: 1, wantStrategy: "default"},
		"unknown strategy is default":        {strategy: strategy("lazy"), scaleTo: 3, maxScale: 3, running: 2, wantEffective: 1, wantCreate: 1, wantStrategy: "default"},
		"not active: nothing created":        {inactive: true, scaleTo: 12, maxScale: 3, wantEffective: 3, wantStrategy: "default"},
		// custom: min(maxScale - deduction - ⌊running × pct⌋, maxReplicaCount).
		"custom":                             {strategy: custom(ptr.To[int32](1), "0.5"), max: ptr.To[int32](5), scaleTo: 3, maxScale: 3, running: 2, wantEffective: 1, wantCreate: 1, wantStrategy: "custom"},
		"custom, nothing running":            {strategy: custom(ptr.To[int32](1), "0.5"), max: ptr.To[int32](10), scaleTo: 10, maxScale: 10, wantEffective: 9, wantCreate: 9, wantStrategy: "custom"},
		"custom, percentage truncated":       {strategy: custom(ptr.To[int32](0), "0.5"), scaleTo: 10, maxScale: 10, running: 3, wantEffective: 9, wantCreate: 9, wantStrategy: "custom"},
		"custom, zero percentage":            {strategy: custom(ptr.To[int32](2), "0"), max: ptr.To[int32](5), scaleTo: 3, maxScale: 3, running: 2, wantEffective: 1, wantCreate: 1, wantStrategy: "custom"},
		"custom, negative deduction capped":  {strategy: custom(ptr.To[int32](-2), "0"), max: ptr.To[int32](4), scaleTo: 9, maxScale: 3, running: 2, wantEffective: 4, wantCreate: 4, wantStrategy: "custom"},
		"custom, no deduction":               {strategy: custom(nil, "0.5"), max: ptr.To[int32](5), scaleTo: 3, maxScale: 3, running: 2, wantEffective: 2, wantCreate: 2, wantStrategy: "custom"},
		"custom without percentage: default": {strategy: custom(ptr.To[int32](1), ""), max: ptr.To[int32](5), scaleTo: 3, maxScale: 3, running: 2, wantEffective: 1, wantCreate: 1, wantStrategy: "default"},
		"custom, bad percentage: default":    {strategy: custom(ptr.To[int32](1), "half"), scaleTo: 2, maxScale: 2, wantEffective: 2, wantCreate: 2, wantStrategy: "default"},
		// accurate: min(maxScale - pending, maxReplicaCount - running)
		// (KEDA's since kedacore/keda#7417; "all pending" gave 5 before).
		"accurate, below the maximum":     {strategy: strategy("accurate"), max: ptr.To[int32](5), scaleTo: 3, maxScale: 3, running: 2, wantEffective: 3, wantCreate: 3, wantStrategy: "accurate"},
		"accurate, at the maximum":        {strategy: strategy("accurate"), max: ptr.To[int32](5), scaleTo: 5, maxScale: 5, running: 2, wantEffective: 3, wantCreate: 3, wantStrategy: "accurate"},
		"accurate, pending deducted":      {strategy: strategy("accurate"), max: ptr.To[int32](10), scaleTo: 3, maxScale: 3, running: 4, pending: 2, wantEffective: 1, wantCreate: 1, wantStrategy: "accurate"},
		"accurate, over the maximum":      {strategy: strategy("accurate"), max: ptr.To[int32](5), scaleTo: 5, maxScale: 5, running: 4, pending: 2, wantEffective: 1, wantCreate: 1, wantStrategy: "accurate"},
		"accurate, all pending":           {strategy: strategy("accurate"), max: ptr.To[int32](20), scaleTo: 15, maxScale: 15, running: 15, pending: 15, wantStrategy: "accurate"},
		"accurate, partly pending":        {strategy: strategy("accurate"), max: ptr.To[int32](20), scaleTo: 20, maxScale: 20, running: 15, pending: 10, wantEffective: 5, wantCreate: 5, wantStrategy: "accurate"},
		"accurate, scaleTo below maximum": {strategy: strategy("accurate"), max: ptr.To[int32](20), scaleTo: 1, maxScale: 4, wantEffective: 4, wantCreate: 1, wantStrategy: "accurate"},
		// eager: min(maxReplicaCount - running - pending, maxScale), scaleTo = maxReplicaCount.
		"eager, running":               {strategy: strategy("eager"), max: ptr.To[int32](10), scaleTo: 1, maxScale: 4, running: 3, wantEffective: 4, wantCreate: 4, wantStrategy: "eager"},
		"eager, pending":               {strategy: strategy("eager"), max: ptr.To[int32](10), scaleTo: 1, maxScale: 4, pending: 3, wantEffective: 4, wantCreate: 4, wantStrategy: "eager"},
		"eager, near the maximum":      {strategy: strategy("eager"), max: ptr.To[int32](10), scaleTo: 1, maxScale: 4, running: 7, wantEffective: 3, wantCreate: 3, wantStrategy: "eager"},
		"eager, running and pending":   {strategy: strategy("eager"), max: ptr.To[int32](10), scaleTo: 1, maxScale: 4, running: 1, pending: 6, wantEffective: 3, wantCreate: 3, wantStrategy: "eager"},
		"eager, capped by the maximum": {strategy: strategy("eager"), max: ptr.To[int32](10), scaleTo: 15, maxScale: 15, wantEffective: 10, wantCreate: 10, wantStrategy: "eager"},
		// minReplicaCount: the missing ones first, then the strategy on the rest.
		"below minReplicaCount":             {min: ptr.To[int32](2), wantEffective: 2, wantCreate: 2, wantStrategy: "default"},
		"minReplicaCount partly running":    {min: ptr.To[int32](2), running: 1, wantEffective: 1, wantCreate: 1, wantStrategy: "default"},
		"minReplicaCount running, strategy": {min: ptr.To[int32](1), scaleTo: 2, maxScale: 2, running: 1, wantEffective: 2, wantCreate: 2, wantStrategy: "default"},
		"minReplicaCount over queue":        {min: ptr.To[int32](3), scaleTo: 1, maxScale: 1, running: 1, wantEffective: 2, wantCreate: 2, wantStrategy: "default"},
	} {
		t.Run(name, func(t *testing.T) {
			spec := &v1alpha1.ScaledJobSpec{ScalingStrategy: tc.strategy, MinReplicaCount: tc.min, MaxReplicaCount: tc.max}
			d := Decide(spec, !tc.inactive, tc.scaleTo, tc.maxScale, tc.running, tc.pending)
			if d.EffectiveMax != tc.wantEffective || d.Create != tc.wantCreate {
				t.Errorf("Decide(scaleTo %d, maxScale %d, running %d, pending %d) = effective %d, create %d; want %d, %d",
					tc.scaleTo, tc.maxScale, tc.running, tc.pending, d.EffectiveMax, d.Create, tc.wantEffective, tc.wantCreate)
			}
			if got := StrategyName(tc.strategy); got != tc.wantStrategy {
				t.Errorf("StrategyName() = %q, want %q", got, tc.wantStrategy)
			}
		})
	}
}

func TestReplicaCountDefaults(t *testing.T) {
	var spec v1alpha1.ScaledJobSpec
	if got := MinReplicaCount(&spec); got != 0 {
		t.Errorf("MinReplicaCount() = %d, want 0", got)
	}
	if got := MaxReplicaCount(&spec); got != 100 {
		t.Errorf("MaxReplicaCount() = %d, want 100", got)
	}
	spec.MinReplicaCount, spec.MaxReplicaCount = ptr.To[int32](3), ptr.To[int32](7)
	if MinReplicaCount(&spec) != 3 || MaxReplicaCount(&spec) != 7 {
		t.Errorf("MinReplicaCount(), MaxReplicaCount() = %d, %d; want 3, 7", MinReplicaCount(&spec), MaxReplicaCount(&spec))
	}
}
