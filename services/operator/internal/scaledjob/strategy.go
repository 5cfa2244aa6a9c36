package scaledjob

import (
	"math"
	"strconv"
	"strings"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
)

// TriggerMetrics is what one trigger's poll tells the ScaledJob loop.
type TriggerMetrics struct {
	// QueueLength is the trigger's metric value: the work waiting.
	QueueLength float64
	// MaxValue is the number of Jobs that work calls for:
	// QueueLength / target, at most maxReplicaCount; 0 when the target
	// is 0.
	MaxValue float64
	// Active is the trigger's own activity (its activation threshold).
	Active bool
}

// NewTriggerMetrics returns the metrics of a trigger that read queueLength
// against target (its metric's target average value), as KEDA computes
// them for a ScaledJob.
func NewTriggerMetrics(queueLength, target float64, active bool, maxReplicas int64) TriggerMetrics {
	m := TriggerMetrics{QueueLength: queueLength, Active: active}
	if target != 0 {
		m.MaxValue = math.Min(queueLength/target, float64(maxReplicas))
	}
	return m
}

// Combine folds the triggers' metrics into the ScaledJob's, as
// spec.scalingStrategy.multipleScalersCalculation says (KEDA's rules,
// inactive triggers left out):
//
//   - max (the default): the active trigger with the longest queue;
//   - min: the active trigger with the shortest queue (a queue of 0 is
//     replaced by any later active trigger's);
//   - avg: the means of the active triggers' queues and values;
//   - sum: their sums.
//
// The ScaledJob is active when a trigger it kept is, or always with a
// minReplicaCount above 0. scaleTo is the combined queue length and
// maxScale the combined value capped at maxReplicas, both rounded up.
func Combine(metrics []TriggerMetrics, calculation string, minReplicas, maxReplicas int64) (active bool, scaleTo, maxScale int64) {
	var queue, value float64
	switch calculation {
	case v1alpha1.MultipleScalersCalculationMin:
		for _, m := range metrics {
			if m.Active && (queue == 0 || m.QueueLength < queue) {
				queue, value, active = m.QueueLength, m.MaxValue, true
			}
		}
	case v1alpha1.MultipleScalersCalculationAvg:
		var n int
		var queues, values float64
		for _, m := range metrics {
			if m.Active {
				queues += m.QueueLength
				values += m.MaxValue
				active = true
				n++
			}
		}
		if n > 0 {
			queue, value = queues/float64(n), values/float64(n)
		}
	case v1alpha1.MultipleScalersCalculationSum:
		for _, m := range metrics {
			if m.Active {
				queue += m.QueueLength
				value += m.MaxValue
				active = true
			}
		}
	default: // max
		for _, m := range metrics {
			if m.Active && m.QueueLength > queue {
				queue, value, active = m.QueueLength, m.MaxValue, true
			}
		}
	}
	if minReplicas > 0 {
		active = true
	}
	value = math.Min(value, float64(maxReplicas))
	return active, ceil(queue), ceil(value)
}

func ceil(x float64) int64 { return int64(math.Ceil(x)) }

// Decision is how many Jobs one poll creates, and why.
type Decision struct {
	// Active, ScaleTo and MaxScale are the triggers' combined reading
	// (see Combine).
	Active            bool
	ScaleTo, MaxScale int64
	// Running counts the ScaledJob's unfinished Jobs, and Pending those of
	// them none of whose pods runs yet (or, with pendingPodConditions, none
	// of whose pods has all those conditions True).
	Running, Pending int64
	// EffectiveMax is the most Jobs the strategy lets this poll create.
	EffectiveMax int64
	// Create is the number of Jobs to create: min(ScaleTo, EffectiveMax)
	// as the strategy adjusts ScaleTo, 0 when not active.
	Create int64
}

// Decide returns how many Jobs to create for a ScaledJob with spec whose
// triggers read active, scaleTo and maxScale (from Combine) while running
// of its Jobs are unfinished, pending of them not started, exactly as
// KEDA decides it:
//
//   - below minReplicaCount running Jobs, the missing ones;
//   - else, with running counted above minReplicaCount and the strategy of
//     spec.scalingStrategy.strategy:
//   - default: maxScale - running;
//   - custom: min(maxScale - customScalingQueueLengthDeduction -
//     ⌊running × customScalingRunningJobPercentage⌋, maxReplicaCount)
//     (the default strategy when the percentage is not a number);
//   - accurate: maxScale - pending, at most maxReplicaCount - running;
//   - eager: min(maxReplicaCount - running - pending, maxScale), with
//     scaleTo raised to maxReplicaCount;
//
// and never more than scaleTo.
func Decide(spec *v1alpha1.ScaledJobSpec, active bool, scaleTo, maxScale, running, pending int64) Decision {
	d := Decision{Active: active, ScaleTo: scaleTo, MaxScale: maxScale, Running: running, Pending: pending}
	minReplicas, maxReplicas := MinReplicaCount(spec), MaxReplicaCount(spec)
	var effective int64
	if running < minReplicas {
		scaleTo = minReplicas - running
		effective = scaleTo
	} else {
		effective, scaleTo = strategyMax(spec.ScalingStrategy, maxScale, running-minReplicas, pending, maxReplicas, scaleTo)
	}
	d.EffectiveMax = max(effective, 0)
	if active && d.EffectiveMax > 0 {
		d.Create = max(min(scaleTo, d.EffectiveMax), 0)
	}
	return d
}

// strategyMax applies the scaling strategy: the most Jobs to create, and
// the scaleTo to cap by it.
func strategyMax(s *v1alpha1.ScalingStrategy, maxScale, running, pending, maxReplicas, scaleTo int64) (effective, newScaleTo int64) {
	switch StrategyName(s) {
	case v1alpha1.ScalingStrategyCustom:
		var deduction int64
		if s.CustomScalingQueueLengthDeduction != nil {
			deduction = int64(*s.CustomScalingQueueLengthDeduction)
		}
		pct, _ := customPercentage(s)
		return min(maxScale-deduction-int64(float64(running)*pct), maxReplicas), scaleTo
	case v1alpha1.ScalingStrategyAccurate:
		// The pending Jobs are deducted before the check against
		// maxReplicaCount too, as KEDA does since kedacore/keda#7417
		// (January 2026; before, 15 running and pending of 20 with 15
		// queued gave 5 more idle Jobs).
		return min(maxScale-pending, maxReplicas-running), scaleTo
	case v1alpha1.ScalingStrategyEager:
		return min(maxReplicas-running-pending, maxScale), maxReplicas
	default:
		return maxScale - running, scaleTo
	}
}

// StrategyName returns the scaling strategy in effect: the one s names,
// or default for an unknown name or a custom strategy whose
// customScalingRunningJobPercentage is not a number (as KEDA falls back).
func StrategyName(s *v1alpha1.ScalingStrategy) string {
	if s == nil {
		return v1alpha1.ScalingStrategyDefault
	}
	switch s.Strategy {
	case v1alpha1.ScalingStrategyCustom:
		if _, ok := customPercentage(s); ok {
			return v1alpha1.ScalingStrategyCustom
		}
	case v1alpha1.ScalingStrategyAccurate, v1alpha1.ScalingStrategyEager:
		return s.Strategy
	}
	return v1alpha1.ScalingStrategyDefault
}

func customPercentage(s *v1alpha1.ScalingStrategy) (float64, bool) {
	pct, err := strconv.ParseFloat(strings.TrimSpace(s.CustomScalingRunningJobPercentage), 64)
	if err != nil || math.IsNaN(pct) || math.IsInf(pct, 0) {
		return 0, false
	}
	return pct, true
}

// MinReplicaCount returns spec.minReplicaCount, 0 when unset.
func MinReplicaCount(spec *v1alpha1.ScaledJobSpec) int64 {
	if spec.MinReplicaCount != nil {
		return int64(*spec.MinReplicaCount)
	}
	return int64(v1alpha1.DefaultScaledJobMinReplicaCount)
}

// MaxReplicaCount returns spec.maxReplicaCount, 100 when unset.
func MaxReplicaCount(spec *v1alpha1.ScaledJobSpec) int64 {
	if spec.MaxReplicaCount != nil {
		return int64(*spec.MaxReplicaCount)
	}
	return int64(v1alpha1.DefaultScaledJobMaxReplicas)
}

// multipleScalersCalculation returns spec's calculation ("" is max).
func multipleScalersCalculation(spec *v1alpha1.ScaledJobSpec) string {
	if s := spec.ScalingStrategy; s != nil {
		return s.MultipleScalersCalculation
	}
	return ""
}

// pendingPodConditions returns spec's pendingPodConditions.
func pendingPodConditions(spec *v1alpha1.ScaledJobSpec) []string {
	if s := spec.ScalingStrategy; s != nil {
		return s.PendingPodConditions
	}
	return nil
}
