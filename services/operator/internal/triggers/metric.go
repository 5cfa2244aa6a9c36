package triggers

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
)

// errNoMetricSource is returned by ResolveMetric for a trigger whose scaler
// should, but cannot, define its metric.
var errNoMetricSource = errors.New("its scaler cannot define its metric")

// specMemo holds the HPA metric a trigger's scaler defined, once it gave
// it. The first answer stands for the generation: KEDA's external scalers
// are asked once too.
type specMemo struct {
	spec atomic.Pointer[autoscalingv2.MetricSpec]
}

// ScalerDefinesMetric reports whether the trigger's HPA metric is defined
// by its scaler (external and external-push triggers, whose scaler answers
// GetMetricSpec) rather than by its metadata.
func (t Trigger) ScalerDefinesMetric() bool { return t.fromScaler != nil }

// Metric returns the trigger's HPA metric, without the External metric's
// selector: MetricSpec, or, for a trigger whose scaler defines its metric,
// the metric the scaler gave during this generation (see ResolveMetric).
// ok is false when it is not known: the trigger could not be parsed, or
// its scaler has not given its metric yet. The spec is shared: do not
// modify it.
func (t Trigger) Metric() (spec autoscalingv2.MetricSpec, ok bool) {
	if t.fromScaler != nil {
		if p := t.fromScaler.spec.Load(); p != nil {
			return *p, true
		}
		return autoscalingv2.MetricSpec{}, false
	}
	return t.MetricSpec, t.MetricSpec.Type != ""
}

// ExternalMetricName returns the name of the trigger's External HPA
// metric, the name the HPA asks the MetricsService for: MetricName, or the
// name its scaler gave during this generation. It is empty for cpu and
// memory triggers and while the metric is not known.
func (t Trigger) ExternalMetricName() string {
	if spec, ok := t.Metric(); ok && spec.External != nil {
		return spec.External.Metric.Name
	}
	return ""
}

// ResolveMetric returns the trigger's HPA metric (see Metric), asking the
// scaler, within timeout (none when 0), when the scaler defines it and has
// not given it yet during this generation. The answer is kept with the
// generation's scalers and shared by every copy of the Trigger, so the
// metric name the HPA asks for maps back to the trigger without another
// call. Errors of the scaler are *scaler.Error values.
func (t Trigger) ResolveMetric(ctx context.Context, timeout time.Duration) (autoscalingv2.MetricSpec, error) {
	if spec, ok := t.Metric(); ok {
		return spec, nil
	}
	if t.fromScaler == nil {
		if t.Err != nil {
			return autoscalingv2.MetricSpec{}, t.Err
		}
		return autoscalingv2.MetricSpec{}, errors.New("the trigger has no HPA metric")
	}
	if t.Scaler == nil {
		if t.Err != nil {
			return autoscalingv2.MetricSpec{}, fmt.Errorf("%w: %w", errNoScaler, t.Err)
		}
		return autoscalingv2.MetricSpec{}, errNoScaler
	}
	source, ok := t.Scaler.(scaler.MetricSpecSource)
	if !ok {
		return autoscalingv2.MetricSpec{}, errNoMetricSource
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	spec, err := source.MetricSpec(ctx)
	if err != nil {
		return autoscalingv2.MetricSpec{}, err
	}
	t.fromScaler.spec.CompareAndSwap(nil, &spec)
	return *t.fromScaler.spec.Load(), nil
}

// learnMetric records the metric of a trigger whose scaler defines it,
// after a successful poll: the scaler had to know its metric to answer,
// so asking is free (an external scaler keeps its GetMetricSpec answer).
// Errors are ignored; the metric stays unknown.
func (t Trigger) learnMetric(ctx context.Context) {
	if t.fromScaler == nil || t.fromScaler.spec.Load() != nil {
		return
	}
	_, _ = t.ResolveMetric(ctx, 0)
}
