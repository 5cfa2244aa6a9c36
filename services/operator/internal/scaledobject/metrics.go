package scaledobject

import (
	"context"
	"errors"
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/scalers"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/triggers"
)

// scalerMetrics builds the HPA metrics of a ScaledObject's triggers from
// their metadata with the shared scaler parsers, resolving each trigger as
// the MetricsService's scaler cache does.
type scalerMetrics struct{}

// MetricSpecs returns one HPA metric per trigger, in trigger order.
func (scalerMetrics) MetricSpecs(_ context.Context, so *v1alpha1.ScaledObject) ([]autoscalingv2.MetricSpec, error) {
	out := make([]autoscalingv2.MetricSpec, 0, len(so.Spec.Triggers))
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
			return nil, fmt.Errorf("trigger %d (%s): the HPA metric of an external scaler comes from its GetMetricSpec, which the controller does not call yet", i, t.Type)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, spec)
	}
	return out, nil
}
