package metricsserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/formula"
	"github.com/ebb-autoscaler/ebb/pkg/rpc/metricsv1"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/triggers"
)

// input is one trigger the formula reads and the outcome of its read.
type input struct {
	trigger  triggers.Trigger
	key      string // its status.health key
	reading  scaler.Reading
	err      error
	failures int32 // consecutive failures, once counted
}

// composite answers the composite metric of so, whose scaling modifiers
// formula folds its named triggers into one value, as KEDA does:
//
//   - every trigger the formula names is read (concurrently; each with
//     useCachedMetrics honoured), and its health counted under its own
//     metric name, as for a metric of its own;
//   - a failing trigger is nil in the formula, so "a ?? b" or "b ?? 5"
//     decide without it, while "a + b" fails and the read fails with the
//     trigger's error;
//   - once a failing trigger is past fallback.failureThreshold, the
//     fallback answers for the composite metric: its value is computed from
//     scalingModifiers.target and metricType like any metric's fallback
//     (R × target), except with the scalingModifiers behavior, where the
//     formula still runs with the failing triggers nil and only a nil
//     result gives fallback.replicas × target.
func (s *Server) composite(ctx context.Context, so *v1alpha1.ScaledObject, trs []triggers.Trigger, ref cache.ObjectName) (*metricsv1.GetMetricsResponse, error) {
	prog, err := s.triggers.Formula(so)
	if err == nil && prog == nil {
		err = errors.New("spec.advanced.scalingModifiers.formula is not compiled")
	}
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "ScaledObject %s: %v", ref, err)
	}
	vars := prog.Variables()
	var inputs []*input
	for _, t := range trs {
		if t.Name == "" || !slices.Contains(vars, t.Name) {
			continue
		}
		if t.Scaler == nil {
			return nil, noScalerError(t, ref)
		}
		inputs = append(inputs, &input{trigger: t})
	}

	var wg sync.WaitGroup
	for _, in := range inputs {
		wg.Go(func() { in.reading, in.err = s.read(ctx, so, in.trigger) })
	}
	wg.Wait()
	// The caller gave up: not the sources' fault, not failures to count.
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, status.FromContextError(ctxErr).Err()
	}

	// The controller hears of a health change once per read, at the end.
	changed := false
	defer func() { s.notifyIf(so, changed) }()
	// Each trigger's health is kept under its external metric name, as for
	// a metric of its own; an external scaler names its metric at its
	// first successful read (until then it is kept under a placeholder).
	for _, in := range inputs {
		in.key = healthKey(in.trigger)
		if s.dropPlaceholder(so, in.trigger) {
			changed = true
		}
	}
	values := make(map[string]float64, len(inputs))
	var failed []*input
	var worst int32 // the most consecutive failures of a failing trigger
	for _, in := range inputs {
		if in.err == nil {
			if s.recordSuccess(so, in.key) {
				changed = true
			}
			values[in.trigger.Name] = in.reading.Value.AsApproximateFloat64()
			continue
		}
		scalerErrors.WithLabelValues(in.trigger.Type).Inc()
		var c bool
		in.failures, c = s.recordFailure(so, in.key)
		changed = changed || c
		worst = max(worst, in.failures)
		failed = append(failed, in)
	}
	fb := so.Spec.Fallback
	pastThreshold := fb != nil && len(failed) > 0 && worst > fb.FailureThreshold
	// setFallback records which failing triggers the fallback answers for:
	// with on, those past the threshold.
	setFallback := func(on bool) {
		m := make(map[string]bool, len(failed))
		for _, in := range failed {
			m[in.key] = on && in.failures > fb.FailureThreshold
		}
		if s.setFallback(so, m) {
			changed = true
		}
	}
	logger := klog.FromContext(ctx).WithValues("scaledObject", klog.KObj(so), "metricName", v1alpha1.CompositeMetricName)

	if pastThreshold && fb.Behavior != v1alpha1.FallbackBehaviorScalingModifiers {
		if q, ok, why := s.compositeFallback(ctx, so, worst); ok {
			setFallback(true)
			fallbacks.WithLabelValues(compositeLabel).Inc()
			logger.V(2).Info("Serving the fallback value", "failures", worst, "value", q.String(), "err", failed[0].err)
			return s.response(v1alpha1.CompositeMetricName, metricsv1.QuantityToProto(q)), nil
		} else if why != "" {
			logger.V(2).Info("Fallback does not apply", "reason", why)
		}
		setFallback(false)
		return nil, pollError(failed[0].trigger, ref, failed[0].err)
	}

	v, evalErr := prog.Eval(values)
	if evalErr == nil {
		q, err := floatQuantity(v)
		if err != nil {
			setFallback(false)
			return nil, status.Errorf(codes.FailedPrecondition, "ScaledObject %s: spec.advanced.scalingModifiers.formula gave %v: %v", ref, v, err)
		}
		// With the scalingModifiers behavior, the formula itself handled
		// the triggers past the threshold: that is the fallback at work.
		setFallback(pastThreshold)
		return s.response(v1alpha1.CompositeMetricName, metricsv1.QuantityToProto(q)), nil
	}
	if pastThreshold && errors.Is(evalErr, formula.ErrNoValue) {
		if q, ok, why := s.compositeFallback(ctx, so, worst); ok {
			setFallback(true)
			fallbacks.WithLabelValues(compositeLabel).Inc()
			logger.V(2).Info("Serving the fallback value: the formula gave no value", "failures", worst, "value", q.String())
			return s.response(v1alpha1.CompositeMetricName, metricsv1.QuantityToProto(q)), nil
		} else if why != "" {
			logger.V(2).Info("Fallback does not apply", "reason", why)
		}
	}
	setFallback(false)
	if len(failed) > 0 {
		in := failed[0]
		return nil, status.Errorf(pollErrorCode(in.err), "trigger %d (%s) of %s: %v (the formula cannot do without it: %v)", in.trigger.Index, in.trigger.Type, ref, in.err, evalErr)
	}
	return nil, status.Errorf(codes.FailedPrecondition, "ScaledObject %s: spec.advanced.scalingModifiers.formula: %v", ref, evalErr)
}

// compositeLabel is the type label of the composite metric's fallbacks.
const compositeLabel = "composite"

// compositeFallback is fallbackValue for the composite metric, whose
// target comes from spec.advanced.scalingModifiers.
func (s *Server) compositeFallback(ctx context.Context, so *v1alpha1.ScaledObject, failures int32) (resource.Quantity, bool, string) {
	target, err := compositeTarget(so)
	if err != nil {
		return resource.Quantity{}, false, err.Error()
	}
	return s.fallbackValue(ctx, so, target, failures, true)
}

// floatQuantity is the formula's result as a quantity: the shortest
// decimal that reads back as v, rounded up to whole nanos (the finest a
// quantity holds). KEDA truncates to thousandths instead, which turns a
// small result into zero.
func floatQuantity(v float64) (resource.Quantity, error) {
	q, err := resource.ParseQuantity(strconv.FormatFloat(v, 'g', -1, 64))
	if err != nil {
		return resource.Quantity{}, fmt.Errorf("not representable as a quantity: %w", err)
	}
	// Shown with SI suffixes (3u, not 3e-6) like every other metric value.
	q.Format = resource.DecimalSI
	return q, nil
}
