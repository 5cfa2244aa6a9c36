package scaledobject

import (
	"context"
	"errors"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/scalers"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/triggers"
)

// externalScaler stands in for an external scaler's live client.
type externalScaler struct {
	spec autoscalingv2.MetricSpec
	err  error
}

func (s externalScaler) Poll(context.Context) (scaler.Reading, error) { return scaler.Reading{}, nil }
func (s externalScaler) Close() error                                 { return nil }
func (s externalScaler) MetricSpec(context.Context) (autoscalingv2.MetricSpec, error) {
	return s.spec, s.err
}

func TestScalerMetrics(t *testing.T) {
	so := &v1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: "jobs", Namespace: "shop", UID: "uid", Generation: 1},
		Spec: v1alpha1.ScaledObjectSpec{
			ScaleTargetRef: &v1alpha1.ScaleTarget{Name: "worker"},
			Triggers: []v1alpha1.ScaleTrigger{
				{Type: "redis", Metadata: map[string]string{"address": "redis:6379", "listName": "jobs"}},
				{Type: "external", Metadata: map[string]string{"scalerAddress": "ext:9090"}},
			},
		},
	}
	unreachable := &scaler.Error{Type: "external", Kind: scaler.ErrUnreachable, Detail: "connection refused"}
	tests := map[string]struct {
		cache     bool
		source    externalScaler
		wantNames []string
		wantRetry bool
		wantErr   string
	}{
		"the external scaler defines its metric": {
			cache:     true,
			source:    externalScaler{spec: externalMetric("s1-depth", "1500m")},
			wantNames: []string{"s0-redis-jobs", "s1-depth"},
		},
		"an unreachable external scaler is retried": {
			cache:     true,
			source:    externalScaler{err: unreachable},
			wantRetry: true,
			wantErr:   "trigger 1 (external): asking the scaler for its metric",
		},
		"no scaler cache": {wantErr: "trigger 1 (external): no scaler to ask for its metric"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := scalerMetrics{}
			if tc.cache {
				cache := triggers.NewCache(scaler.Deps{}, triggers.WithScalerConstructor(func(cfg scalers.Config, _ scaler.Deps) (scaler.Scaler, error) {
					if cfg.Type() == "external" {
						return tc.source, nil
					}
					return externalScaler{}, nil
				}))
				defer cache.Close()
				m.cache = cache
			}
			got, err := m.MetricSpecs(context.Background(), so)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("MetricSpecs() error = %v, want one containing %q", err, tc.wantErr)
				}
				if errors.Is(err, scaler.ErrUnreachable) != tc.wantRetry {
					t.Errorf("retryable = %v, want %v", !tc.wantRetry, tc.wantRetry)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range got {
				names = append(names, s.External.Metric.Name)
			}
			if strings.Join(names, ",") != strings.Join(tc.wantNames, ",") {
				t.Errorf("metric names = %v, want %v", names, tc.wantNames)
			}
			if q := got[1].External.Target.AverageValue; q == nil || q.Cmp(resource.MustParse("1500m")) != 0 {
				t.Errorf("external target = %v, want 1500m", q)
			}
		})
	}
}
