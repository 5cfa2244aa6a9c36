package metricsserver

import (
	"context"
	"fmt"

	"gopkg.in/inf.v0"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/triggers"
)

// countsLocked returns uid's consecutive failure counts by metric name,
// creating them on first use. s.mu must be held.
func (s *Server) countsLocked(uid types.UID) map[string]int32 {
	m := s.failures[uid]
	if m == nil {
		m = map[string]int32{}
		s.failures[uid] = m
	}
	return m
}

// recordSuccess resets the consecutive failures of one metric.
func (s *Server) recordSuccess(uid types.UID, metricName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.countsLocked(uid)
	m[metricName] = 0
}

// recordFailure counts one more consecutive failure of one metric and
// returns the count.
func (s *Server) recordFailure(uid types.UID, metricName string) int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.countsLocked(uid)
	if m[metricName] < 1<<30 {
		m[metricName]++
	}
	return m[metricName]
}

// Health returns, per external metric name, the consecutive failed reads
// seen while serving the ScaledObject uid, in the form of status.health:
// Happy with 0 failures after a success, Failing with the count otherwise.
// Metrics never read are absent. The map is a copy.
func (s *Server) Health(uid types.UID) map[string]v1alpha1.HealthStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.failures[uid]
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]v1alpha1.HealthStatus, len(m))
	for name, n := range m {
		st := v1alpha1.HealthStatusHappy
		if n > 0 {
			st = v1alpha1.HealthStatusFailing
		}
		out[name] = v1alpha1.HealthStatus{NumberOfFailures: ptr.To(n), Status: st}
	}
	return out
}

// Forget drops the failure counts of the ScaledObject uid, for when it is
// deleted.
func (s *Server) Forget(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.failures, uid)
}

// fallbackValue returns the value to serve instead of an error for tr of
// so after failures consecutive failed reads, following KEDA:
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
//   - the scalingModifiers behavior (a formula's nil handling) does not
//     apply here, as formulas are not evaluated yet.
//
// Unlike KEDA, which goes through float64 and truncates to thousandths,
// AverageValue fallbacks are computed exactly; Value fallbacks are
// truncated to thousandths like KEDA's, which keeps the HPA at or below R.
// When the fallback does not apply, why says why (empty when no fallback
// is configured or the threshold is not reached).
func (s *Server) fallbackValue(ctx context.Context, so *v1alpha1.ScaledObject, tr triggers.Trigger, failures int32) (q resource.Quantity, ok bool, why string) {
	fb := so.Spec.Fallback
	if fb == nil || failures <= fb.FailureThreshold {
		return q, false, ""
	}
	if fb.FailureThreshold < 0 || fb.Replicas < 0 {
		return q, false, "fallback.failureThreshold and fallback.replicas must not be negative"
	}
	ext := tr.MetricSpec.External
	if ext == nil {
		return q, false, "the trigger has no external metric"
	}

	replicas := int64(fb.Replicas)
	var current, ready int32
	needReplicas := ext.Target.Type == autoscalingv2.ValueMetricType
	switch fb.Behavior {
	case "", v1alpha1.FallbackBehaviorStatic:
	case v1alpha1.FallbackBehaviorCurrentReplicas, v1alpha1.FallbackBehaviorCurrentReplicasIfHigher, v1alpha1.FallbackBehaviorCurrentReplicasIfLower:
		needReplicas = true
	case v1alpha1.FallbackBehaviorScalingModifiers:
		return q, false, "the scalingModifiers fallback behavior needs a formula, which is not evaluated yet"
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
	switch ext.Target.Type {
	case autoscalingv2.AverageValueMetricType:
		target = ext.Target.AverageValue
	case autoscalingv2.ValueMetricType:
		target = ext.Target.Value
	}
	if target == nil {
		return q, false, fmt.Sprintf("the metric's %s target has no value", ext.Target.Type)
	}

	t := target.DeepCopy()
	v := new(inf.Dec).Mul(t.AsDec(), inf.NewDec(replicas, 0))
	if ext.Target.Type == autoscalingv2.ValueMetricType {
		if ready <= 0 {
			return q, false, "the scale target has no ready replicas, which a Value target's fallback divides by"
		}
		v = new(inf.Dec).QuoRound(v, inf.NewDec(int64(ready), 0), 3, inf.RoundDown)
	}
	return *resource.NewDecimalQuantity(*v, resource.DecimalSI), true, ""
}
