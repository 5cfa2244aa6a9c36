package metricsserver

import (
	"context"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
)

func named(name, location string) v1alpha1.ScaleTrigger {
	t := trigger(location, "5", "")
	t.Name = name
	return t
}

// reads says what each source (by valueLocation) answers in one step: a
// value, or "fail".
type reads map[string]string

type compositeStep struct {
	reads    reads
	wantCode codes.Code
	want     string // the value when OK
	wantMsg  string // part of the message otherwise
	// wantFallback lists the metrics the fallback answers for after the
	// step.
	wantFallback []string
}

func TestGetMetricsComposite(t *testing.T) {
	readyAt := func(current, ready int32) ReplicasFunc {
		return func(context.Context, *v1alpha1.ScaledObject) (int32, int32, error) { return current, ready, nil }
	}
	fb := func(threshold, replicas int32, behavior string) *v1alpha1.Fallback {
		return &v1alpha1.Fallback{FailureThreshold: threshold, Replicas: replicas, Behavior: behavior}
	}
	unavailable := func(msg string) compositeStep {
		return compositeStep{wantCode: codes.Unavailable, wantMsg: msg}
	}
	tests := map[string]struct {
		formula    string
		target     string
		metricType autoscalingv2.MetricTargetType
		fallback   *v1alpha1.Fallback
		replicas   ReplicasFunc
		steps      []compositeStep
	}{
		"large result": {
			formula: "a * 1e21",
			steps:   []compositeStep{{reads: reads{"a": "2", "b": "0"}, want: "2e21"}},
		},
		"sum": {
			formula: "a + b",
			steps:   []compositeStep{{reads: reads{"a": "2", "b": "0.75"}, want: "2750m"}},
		},
		"exact result, rounded up to nanos": {
			formula: "(a + b) / 3",
			steps:   []compositeStep{{reads: reads{"a": "1", "b": "0"}, want: "333333334n"}},
		},
		"small result is not truncated to zero": {
			formula: "a / 1000000",
			steps:   []compositeStep{{reads: reads{"a": "3", "b": "0"}, want: "3u"}},
		},
		"ternary": {
			formula: "a > 5 ? 10 : b",
			steps: []compositeStep{
				{reads: reads{"a": "6", "b": "1"}, want: "10"},
				{reads: reads{"a": "4", "b": "1"}, want: "1"},
			},
		},
		"unnamed trigger not read": {
			formula: "a",
			steps:   []compositeStep{{reads: reads{"a": "2", "b": "1", "other": "fail"}, want: "2"}},
		},
		"invalid formula": {
			formula: "a + c",
			steps:   []compositeStep{{reads: reads{"a": "1", "b": "1"}, wantCode: codes.FailedPrecondition, wantMsg: "unknown name c"}},
		},
		"result not finite": {
			formula: "a / b",
			steps:   []compositeStep{{reads: reads{"a": "1", "b": "0"}, wantCode: codes.FailedPrecondition, wantMsg: "not a finite number"}},
		},
		"failing trigger is nil, the formula copes": {
			formula: "b ?? 5",
			steps:   []compositeStep{{reads: reads{"a": "1", "b": "fail"}, want: "5"}},
		},
		"failing trigger the formula needs, no fallback": {
			formula: "a + b",
			steps: []compositeStep{
				unavailable("trigger 1 (metrics-api) of ns/so"),
				unavailable("the formula cannot do without it"),
			},
		},
		"static fallback past the threshold, reset by success": {
			formula: "a + b", target: "2", fallback: fb(1, 4, ""),
			steps: []compositeStep{
				{reads: reads{"a": "1", "b": "fail"}, wantCode: codes.Unavailable},
				{reads: reads{"a": "1", "b": "fail"}, want: "8", wantFallback: []string{"s1-metric-api-b"}},
				{reads: reads{"a": "fail", "b": "fail"}, want: "8", wantFallback: []string{"s1-metric-api-b"}},
				{reads: reads{"a": "1", "b": "2"}, want: "3"},
			},
		},
		"static fallback even when the formula could cope": {
			formula: "b ?? a", target: "1.5", fallback: fb(0, 4, v1alpha1.FallbackBehaviorStatic),
			steps: []compositeStep{{reads: reads{"a": "1", "b": "fail"}, want: "6", wantFallback: []string{"s1-metric-api-b"}}},
		},
		"fallback on a Value target divides by ready replicas": {
			formula: "a + b", target: "3", metricType: autoscalingv2.ValueMetricType,
			fallback: fb(0, 4, ""), replicas: readyAt(5, 2),
			steps: []compositeStep{{reads: reads{"a": "fail", "b": "1"}, want: "6", wantFallback: []string{"s0-metric-api-a"}}},
		},
		"currentReplicasIfHigher": {
			formula: "a + b", target: "2", fallback: fb(0, 4, v1alpha1.FallbackBehaviorCurrentReplicasIfHigher), replicas: readyAt(7, 7),
			steps: []compositeStep{{reads: reads{"a": "fail", "b": "1"}, want: "14", wantFallback: []string{"s0-metric-api-a"}}},
		},
		"fallback that cannot apply returns the error": {
			formula: "a + b", target: "2", metricType: autoscalingv2.ValueMetricType, fallback: fb(0, 4, ""),
			steps: []compositeStep{unavailable("trigger 1 (metrics-api)")},
		},
		"scalingModifiers behavior: the formula decides": {
			formula: "b ?? a", target: "2", fallback: fb(0, 4, v1alpha1.FallbackBehaviorScalingModifiers),
			steps: []compositeStep{{reads: reads{"a": "3", "b": "fail"}, want: "3", wantFallback: []string{"s1-metric-api-b"}}},
		},
		"scalingModifiers behavior: no value gives replicas × target": {
			formula: "a ?? b", target: "2", fallback: fb(1, 4, v1alpha1.FallbackBehaviorScalingModifiers),
			steps: []compositeStep{
				{reads: reads{"a": "fail", "b": "fail"}, wantCode: codes.Unavailable},
				{reads: reads{"a": "fail", "b": "fail"}, want: "8", wantFallback: []string{"s0-metric-api-a", "s1-metric-api-b"}},
				{reads: reads{"a": "fail", "b": "5"}, want: "5", wantFallback: []string{"s0-metric-api-a"}},
			},
		},
		"scalingModifiers behavior: a formula that fails on nil fails": {
			formula: "a + b", target: "2", fallback: fb(0, 4, v1alpha1.FallbackBehaviorScalingModifiers),
			steps: []compositeStep{unavailable("the formula cannot do without it")},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var opts []Option
			if tc.replicas != nil {
				opts = append(opts, WithReplicas(tc.replicas))
			}
			f := newFixture(t, opts...)
			target := tc.target
			if target == "" {
				target = "1"
			}
			so := f.addSO(t, func(so *v1alpha1.ScaledObject) {
				so.Spec.Advanced = &v1alpha1.AdvancedConfig{ScalingModifiers: &v1alpha1.ScalingModifiers{Formula: tc.formula, Target: target, MetricType: tc.metricType}}
				so.Spec.Fallback = tc.fallback
			}, named("a", "a"), named("b", "b"), trigger("other", "1", ""))
			for i, st := range tc.steps {
				if st.reads == nil {
					st.reads = reads{"a": "1", "b": "fail"}
				}
				for loc, v := range st.reads {
					if v == "fail" {
						f.scaler(t, loc).set(fail(scaler.ErrUnreachable))
					} else {
						f.scaler(t, loc).set(value(v))
					}
				}
				resp, err := f.server.GetMetrics(context.Background(), request(v1alpha1.CompositeMetricName))
				if got := status.Code(err); got != st.wantCode {
					t.Fatalf("step %d: code = %v (%v), want %v", i, got, err, st.wantCode)
				}
				if err != nil {
					if msg := status.Convert(err).Message(); !strings.Contains(msg, st.wantMsg) {
						t.Fatalf("step %d: message %q does not contain %q", i, msg, st.wantMsg)
					}
				} else {
					v := resp.GetValues()[0]
					if v.GetMetricName() != v1alpha1.CompositeMetricName || v.GetValue().GetValue() != st.want {
						t.Fatalf("step %d: %s = %q, want %q", i, v.GetMetricName(), v.GetValue().GetValue(), st.want)
					}
				}
				if got := f.server.FallbackMetrics(so.UID); !slices.Equal(got, st.wantFallback) {
					t.Fatalf("step %d: fallback metrics = %q, want %q", i, got, st.wantFallback)
				}
			}
		})
	}
}

func TestGetMetricsCompositeHealth(t *testing.T) {
	f := newFixture(t)
	so := f.addSO(t, func(so *v1alpha1.ScaledObject) {
		so.Spec.Advanced = &v1alpha1.AdvancedConfig{ScalingModifiers: &v1alpha1.ScalingModifiers{Formula: "a ?? b", Target: "1"}}
	}, named("a", "a"), named("b", "b"))
	f.scaler(t, "a").set(fail(scaler.ErrUnreachable))
	for range 2 {
		if _, err := f.server.GetMetrics(context.Background(), request(v1alpha1.CompositeMetricName)); err != nil {
			t.Fatal(err)
		}
	}
	h := f.server.Health(so.UID)
	if a := h["s0-metric-api-a"]; a.Status != v1alpha1.HealthStatusFailing || *a.NumberOfFailures != 2 {
		t.Errorf("health of a = %s %d, want Failing 2", a.Status, *a.NumberOfFailures)
	}
	if b := h["s1-metric-api-b"]; b.Status != v1alpha1.HealthStatusHappy || *b.NumberOfFailures != 0 {
		t.Errorf("health of b = %s %d, want Happy 0", b.Status, *b.NumberOfFailures)
	}
	if _, ok := h[v1alpha1.CompositeMetricName]; ok || len(h) != 2 {
		t.Errorf("health = %v, want only the triggers' metrics", h)
	}
}
