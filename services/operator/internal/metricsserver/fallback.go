package metricsserver

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/inf.v0"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// fallbackValue returns the value to serve instead of an error for a
// metric of so with the given target after failures consecutive failed
// reads, following KEDA:
//
//   - spec.fallback must be set, with failureThreshold and replicas ≥ 0;
//   - it applies once failures > failureThreshold (KEDA increments the count
//     and then compares strictly: with failureThreshold 3 the fourth
//     consecutive failure is the first one served the fallback);
//   - the replica count R is fallback.replicas for the static behavior (the
//     default), the target's current replicas for currentReplicas, and the
//     higher or lower of the two for currentReplicasIfHigher / IfLower;
//   - for an AverageValue target the value is R × target, so the HPA
//     (desired = ceil(value / averageValue)) lands on R;
//   - for a Value target the value is R × target / readyReplicas, so the
//     HPA (desired = ceil(ready × value / target)) lands on R; with no ready
//     replica no fallback is possible;
//   - the scalingModifiers behavior only applies to the composite metric
//     (composite true), where the caller asks for a value once the formula
//     gave none: R is then fallback.replicas.
//
// Unlike KEDA, which goes through float64 and truncates to thousandths,
// AverageValue fallbacks are computed exactly; Value fallbacks are
// truncated to thousandths like KEDA's, which keeps the HPA at or below R.
// When the fallback does not apply, why says why (empty when no fallback
// is configured or the threshold is not reached).
func (s *Server) fallbackValue(ctx context.Context, so *v1alpha1.ScaledObject, metric autoscalingv2.MetricTarget, failures int32, composite bool) (q resource.Quantity, ok bool, why string) {
	fb := so.Spec.Fallback
	if fb == nil || failures <= fb.FailureThreshold {
		return q, false, ""
	}
	if fb.FailureThreshold < 0 || fb.Replicas < 0 {
		return q, false, "fallback.failureThreshold and fallback.replicas must not be negative"
	}

	replicas := int64(fb.Replicas)
	var current, ready int32
	needReplicas := metric.Type == autoscalingv2.ValueMetricType
	switch fb.Behavior {
	case "", v1alpha1.FallbackBehaviorStatic:
	case v1alpha1.FallbackBehaviorCurrentReplicas, v1alpha1.FallbackBehaviorCurrentReplicasIfHigher, v1alpha1.FallbackBehaviorCurrentReplicasIfLower:
		needReplicas = true
	case v1alpha1.FallbackBehaviorScalingModifiers:
		if !composite {
			return q, false, "the scalingModifiers fallback behavior applies to a formula's composite metric only"
		}
	default:
		// Unknown behaviors are refused by the CRD; treat them as static,
		// as KEDA does.
	}
	if needReplicas {
		if s.replicas == nil {
			return q, false, "the scale target's replica counts are not available to the metrics service"
		}
		var err error
		current, ready, err = s.replicas(ctx, so)
		if err != nil {
			return q, false, fmt.Sprintf("reading the scale target's replicas: %v", err)
		}
	}
	switch fb.Behavior {
	case v1alpha1.FallbackBehaviorCurrentReplicas:
		replicas = int64(current)
	case v1alpha1.FallbackBehaviorCurrentReplicasIfHigher:
		replicas = max(replicas, int64(current))
	case v1alpha1.FallbackBehaviorCurrentReplicasIfLower:
		replicas = min(replicas, int64(current))
	}

	var target *resource.Quantity
	switch metric.Type {
	case autoscalingv2.AverageValueMetricType:
		target = metric.AverageValue
	case autoscalingv2.ValueMetricType:
		target = metric.Value
	}
	if target == nil {
		return q, false, fmt.Sprintf("the metric's %s target has no value", metric.Type)
	}

	t := target.DeepCopy()
	v := new(inf.Dec).Mul(t.AsDec(), inf.NewDec(replicas, 0))
	if metric.Type == autoscalingv2.ValueMetricType {
		if ready <= 0 {
			return q, false, "the scale target has no ready replicas, which a Value target's fallback divides by"
		}
		v = new(inf.Dec).QuoRound(v, inf.NewDec(int64(ready), 0), 3, inf.RoundDown)
	}
	return *resource.NewDecimalQuantity(*v, resource.DecimalSI), true, ""
}

// compositeTarget is the HPA target of so's composite metric, from
// spec.advanced.scalingModifiers, as the HPA builder makes it.
func compositeTarget(so *v1alpha1.ScaledObject) (autoscalingv2.MetricTarget, error) {
	sm := so.Spec.Advanced.ScalingModifiers
	v, err := strconv.ParseFloat(strings.TrimSpace(sm.Target), 64)
	if err != nil || !(v > 0) || math.IsInf(v, 0) {
		return autoscalingv2.MetricTarget{}, fmt.Errorf("spec.advanced.scalingModifiers.target %q must be a number greater than 0", sm.Target)
	}
	q := scalers.FloatQuantity(v)
	switch sm.MetricType {
	case "", autoscalingv2.AverageValueMetricType:
		return autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &q}, nil
	case autoscalingv2.ValueMetricType:
		return autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: &q}, nil
	}
	return autoscalingv2.MetricTarget{}, fmt.Errorf("spec.advanced.scalingModifiers.metricType %q: must be AverageValue or Value", sm.MetricType)
}
