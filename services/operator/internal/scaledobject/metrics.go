package scaledobject

import (
	"context"
	"errors"
	"fmt"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/scalers"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/triggers"
)

// metricSpecTimeout bounds asking an external scaler for its metric.
const metricSpecTimeout = 10 * time.Second

// scalerMetrics builds the HPA metrics of a ScaledObject's triggers from
// their metadata with the shared scaler parsers, resolving each trigger as
// the MetricsService's scaler cache does. An external trigger's metric is
// defined by the scaler itself: it is asked through the trigger's live
// scaler in cache (nil: such triggers are reported as not supported).
type scalerMetrics struct{ cache *triggers.Cache }

// MetricSpecs returns one HPA metric per trigger, in trigger order. Errors
// reaching an external scaler wrap scaler.ErrUnreachable, so the caller
// retries them.
func (m scalerMetrics) MetricSpecs(ctx context.Context, so *v1alpha1.ScaledObject) ([]autoscalingv2.MetricSpec, error) {
	out := make([]autoscalingv2.MetricSpec, 0, len(so.Spec.Triggers))
	var live []triggers.Trigger // the live scalers, fetched on first need
	for i, t := range so.Spec.Triggers {
		trigger, err := triggers.DefaultResolver(so, i)
		if err != nil {
			return nil, err
		}
		cfg, _, err := scalers.Parse(trigger)
		if err != nil {
			return nil, err
		}
		spec, err := cfg.MetricSpec()
		if errors.Is(err, scalers.ErrMetricSpecFromScaler) {
			if live == nil {
				if m.cache == nil {
					return nil, fmt.Errorf("trigger %d (%s): no scaler to ask for its metric", i, t.Type)
				}
				if live, err = m.cache.Scalers(so); err != nil {
					return nil, err
				}
			}
			spec, err = askScaler(ctx, live, i, t.Type)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, spec)
	}
	return out, nil
}

// askScaler asks trigger i's live scaler for its HPA metric. The answer
// is recorded with the trigger's scaler (see triggers.Trigger.Metric), so
// the MetricsService maps the metric name the HPA asks for back to the
// trigger.
func askScaler(ctx context.Context, live []triggers.Trigger, i int, typ string) (autoscalingv2.MetricSpec, error) {
	if i >= len(live) {
		return autoscalingv2.MetricSpec{}, fmt.Errorf("trigger %d (%s): no live scaler", i, typ)
	}
	if live[i].Scaler == nil && live[i].Err != nil {
		return autoscalingv2.MetricSpec{}, fmt.Errorf("trigger %d (%s): %w", i, typ, live[i].Err)
	}
	spec, err := live[i].ResolveMetric(ctx, metricSpecTimeout)
	if err != nil {
		return autoscalingv2.MetricSpec{}, fmt.Errorf("trigger %d (%s): asking the scaler for its metric: %w", i, typ, err)
	}
	return spec, nil
}
