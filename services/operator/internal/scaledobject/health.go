package scaledobject

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
)

// MetricsHealth is what the MetricsService knows of the reads of a
// ScaledObject's metrics since the operator started.
type MetricsHealth interface {
	// Health returns status.health for the ScaledObject uid: per external
	// metric name, the consecutive failed reads and Happy or Failing. Nil
	// means no metric of uid was read since the operator started.
	Health(uid types.UID) map[string]v1alpha1.HealthStatus
	// FallbackMetrics returns, sorted, the metrics whose failures the
	// fallback answers for now.
	FallbackMetrics(uid types.UID) []string
}

// Reasons of the Fallback condition (KEDA's, so tooling that matches on
// them keeps working) and of the events that mark its transitions.
const (
	reasonFallbackExists      = "FallbackExists"
	reasonNoFallbackFound     = "NoFallbackFound"
	reasonFallbackActivated   = "FallbackActivated"
	reasonFallbackDeactivated = "FallbackDeactivated"
)

// SetMetricsHealth connects the MetricsService's record of metric reads,
// from which status.health and the Fallback condition are written; call it
// before Run. The MetricsService should enqueue a ScaledObject (Enqueue)
// when that record changes in a way the status shows.
func (c *Controller) SetMetricsHealth(h MetricsHealth) { c.health = h }

// recordHealth writes status.health and the Fallback condition from the
// MetricsService's record, as KEDA keeps them: only for a ScaledObject with
// spec.fallback (without one, health is not kept and Fallback is False).
// The record lives in memory: until a metric of so is read after a
// restart, the status keeps what it said. A Warning event marks the
// fallback's start and a Normal one its end.
//
// status.health is the record at the time of the write, which happens on
// transitions (Happy to Failing and back, fallback start and end), not on
// every failed read: numberOfFailures is not a live counter.
func (c *Controller) recordHealth(so *v1alpha1.ScaledObject, status *v1alpha1.ScaledObjectStatus) {
	if c.health == nil {
		return
	}
	if so.Spec.Fallback == nil {
		status.Health = nil
		c.setFallback(so, status, metav1.ConditionFalse, reasonNoFallbackFound, "No fallback is configured on this scaled object")
		return
	}
	h := c.health.Health(so.UID)
	if h == nil {
		return
	}
	status.Health = h
	if fb := c.health.FallbackMetrics(so.UID); len(fb) > 0 {
		c.setFallback(so, status, metav1.ConditionTrue, reasonFallbackExists,
			fmt.Sprintf("The fallback answers for %s: more than %d consecutive failed reads (spec.fallback.failureThreshold)",
				strings.Join(fb, ", "), so.Spec.Fallback.FailureThreshold))
		return
	}
	c.setFallback(so, status, metav1.ConditionFalse, reasonNoFallbackFound, "No fallbacks are active on this scaled object")
}

// setFallback sets the Fallback condition and emits an event when the
// fallback starts or ends.
func (c *Controller) setFallback(so *v1alpha1.ScaledObject, status *v1alpha1.ScaledObjectStatus, st metav1.ConditionStatus, reason, message string) {
	was := status.Conditions.Fallback().IsTrue()
	if !status.Conditions.Set(v1alpha1.ConditionFallback, st, reason, message) {
		return
	}
	switch now := st == metav1.ConditionTrue; {
	case now && !was:
		c.recorder.Event(so, corev1.EventTypeWarning, reasonFallbackActivated, message)
	case !now && was:
		c.recorder.Eventf(so, corev1.EventTypeNormal, reasonFallbackDeactivated, "The fallback no longer applies: %s", message)
	}
}
