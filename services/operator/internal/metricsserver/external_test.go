package metricsserver

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/scalers"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
)

// fakeExternal is an external scaler: its metric is named by the scaler
// (GetMetricSpec), which fails while it is down.
type fakeExternal struct {
	*fakeScaler
	cfg   *scalers.ExternalConfig
	down  atomic.Bool
	asked atomic.Int32
}

func (f *fakeExternal) MetricSpec(context.Context) (autoscalingv2.MetricSpec, error) {
	f.asked.Add(1)
	if f.down.Load() {
		return autoscalingv2.MetricSpec{}, &scaler.Error{Type: "external", Source: "ext.example:9090", Kind: scaler.ErrUnreachable, Detail: "connection refused"}
	}
	md := f.cfg.ScalerMetadata()
	return f.cfg.MetricSpecFromScaler(md["metricName"], 10, 0), nil
}

// newExternal builds the fake of an external trigger, kept in f.scalers
// under "ext-<metricName metadata>".
func (f *fixture) newExternal(cfg *scalers.ExternalConfig) *fakeExternal {
	s := &fakeExternal{fakeScaler: &fakeScaler{poll: value("7")}, cfg: cfg}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.externals = append(f.externals, s)
	return s
}

func (f *fixture) external(t *testing.T, i int) *fakeExternal {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if i >= len(f.externals) {
		t.Fatalf("no external scaler %d built", i)
	}
	return f.externals[i]
}

func externalTrigger(name, metricName string) v1alpha1.ScaleTrigger {
	return v1alpha1.ScaleTrigger{Type: "external", Name: name, Metadata: map[string]string{"scalerAddress": "ext.example:9090", "metricName": metricName}}
}

func TestGetMetricsExternal(t *testing.T) {
	type step struct {
		metric   string
		down     bool // the scaler's GetMetricSpec and polls fail
		wantCode codes.Code
		want     string // the value when OK
		wantMsg  string
	}
	tests := map[string]struct {
		named    bool // the controller asked the scaler for its metric (it built the HPA)
		fallback *v1alpha1.Fallback
		steps    []step
		// wantAsked is how often the scaler was asked for its metric by
		// the server.
		wantAsked int32
		// wantHealth is the health kept, by metric name: failures.
		wantHealth map[string]int32
	}{
		"named when the HPA was built": {
			named:      true,
			steps:      []step{{metric: "s0-depth", want: "7"}, {metric: "s0-depth", want: "7"}},
			wantHealth: map[string]int32{"s0-depth": 0},
		},
		"after a restart the scaler is asked once": {
			steps:      []step{{metric: "s0-depth", want: "7"}, {metric: "s0-depth", want: "7"}},
			wantAsked:  1,
			wantHealth: map[string]int32{"s0-depth": 0},
		},
		"a name the scaler does not give": {
			named: true,
			steps: []step{{metric: "s0-other", wantCode: codes.NotFound, wantMsg: "its metrics are: s0-depth, s1-metric-api-a"}},
		},
		"a name the scaler does not give, asked": {
			steps:     []step{{metric: "s0-other", wantCode: codes.NotFound}},
			wantAsked: 1,
		},
		"the index of another kind of trigger": {
			steps: []step{{metric: "s1-depth", wantCode: codes.NotFound, wantMsg: "s0-<named by the external scaler, not known yet>"}},
		},
		"not a trigger's name": {
			steps: []step{{metric: "composite-metric", wantCode: codes.NotFound}, {metric: "s-depth", wantCode: codes.NotFound}, {metric: "s01-depth", wantCode: codes.NotFound}},
		},
		"down before naming its metric: a failed read, no fallback target": {
			fallback: &v1alpha1.Fallback{FailureThreshold: 0, Replicas: 4},
			steps: []step{
				{metric: "s0-depth", down: true, wantCode: codes.Unavailable, wantMsg: "trigger 0 (external) of ns/so: external trigger (ext.example:9090): source unreachable"},
				{metric: "s0-depth", down: true, wantCode: codes.Unavailable},
			},
			wantAsked:  2,
			wantHealth: map[string]int32{"s0-depth": 2},
		},
		"down after naming its metric: the fallback": {
			named:    true,
			fallback: &v1alpha1.Fallback{FailureThreshold: 1, Replicas: 4},
			steps: []step{
				{metric: "s0-depth", down: true, wantCode: codes.Unavailable},
				{metric: "s0-depth", down: true, want: "40"},
			},
			wantHealth: map[string]int32{"s0-depth": 2},
		},
		"back after failing before naming": {
			fallback: &v1alpha1.Fallback{FailureThreshold: 3, Replicas: 4},
			steps: []step{
				{metric: "s0-depth", down: true, wantCode: codes.Unavailable},
				{metric: "s0-depth", want: "7"},
			},
			wantAsked:  2,
			wantHealth: map[string]int32{"s0-depth": 0},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			so := f.addSO(t, func(so *v1alpha1.ScaledObject) { so.Spec.Fallback = tc.fallback }, externalTrigger("", "depth"), trigger("a", "5", ""))
			ext := f.external(t, 0)
			if tc.named {
				trs, _ := f.server.triggers.Scalers(so)
				if _, err := trs[0].ResolveMetric(context.Background(), time.Second); err != nil {
					t.Fatal(err)
				}
				ext.asked.Store(0)
			}
			for i, st := range tc.steps {
				ext.down.Store(st.down)
				if st.down {
					ext.set(fail(scaler.ErrUnreachable))
				} else {
					ext.set(value("7"))
				}
				resp, err := f.server.GetMetrics(context.Background(), request(st.metric))
				if got := status.Code(err); got != st.wantCode {
					t.Fatalf("step %d: code = %v (%v), want %v", i, got, err, st.wantCode)
				}
				if err != nil {
					if msg := status.Convert(err).Message(); !strings.Contains(msg, st.wantMsg) {
						t.Errorf("step %d: message %q does not contain %q", i, msg, st.wantMsg)
					}
					continue
				}
				v := resp.GetValues()[0]
				if v.GetMetricName() != st.metric || v.GetValue().GetValue() != st.want {
					t.Errorf("step %d: %s = %s, want %s = %s", i, v.GetMetricName(), v.GetValue().GetValue(), st.metric, st.want)
				}
			}
			if got := ext.asked.Load(); got != tc.wantAsked {
				t.Errorf("the scaler was asked for its metric %d times, want %d", got, tc.wantAsked)
			}
			h := f.server.Health(so.UID)
			got := map[string]int32{}
			for k, v := range h {
				got[k] = *v.NumberOfFailures
			}
			if len(got) != len(tc.wantHealth) {
				t.Errorf("health = %v, want %v", got, tc.wantHealth)
			}
			for k, n := range tc.wantHealth {
				if m, ok := got[k]; !ok || m != n {
					t.Errorf("health = %v, want %v", got, tc.wantHealth)
				}
			}
		})
	}
}

// TestCompositeExternalHealthKeys checks that a formula's external trigger
// is counted under the metric name its scaler gives, as it would be for a
// metric of its own, and under a placeholder only until the scaler named
// it.
func TestCompositeExternalHealthKeys(t *testing.T) {
	tests := map[string]struct {
		downFirst bool
		wantKeys  [][]string // after each of two reads
	}{
		"the scaler answers": {
			wantKeys: [][]string{{"s0-depth", "s1-metric-api-a"}, {"s0-depth", "s1-metric-api-a"}},
		},
		"the scaler is down at first": {
			downFirst: true,
			wantKeys:  [][]string{{"s0-external", "s1-metric-api-a"}, {"s0-depth", "s1-metric-api-a"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			so := f.addSO(t, func(so *v1alpha1.ScaledObject) {
				so.Spec.Fallback = &v1alpha1.Fallback{FailureThreshold: 5, Replicas: 1}
				so.Spec.Advanced = &v1alpha1.AdvancedConfig{ScalingModifiers: &v1alpha1.ScalingModifiers{Formula: "(ext ?? 0) + a", Target: "2"}}
			}, externalTrigger("ext", "depth"), named("a", "a"))
			ext := f.external(t, 0)
			for i, keys := range tc.wantKeys {
				down := tc.downFirst && i == 0
				ext.down.Store(down)
				if down {
					ext.set(fail(scaler.ErrUnreachable))
				} else {
					ext.set(value("7"))
				}
				resp, err := f.server.GetMetrics(context.Background(), request(v1alpha1.CompositeMetricName))
				if err != nil {
					t.Fatalf("read %d: %v", i, err)
				}
				want := "8"
				if down {
					want = "1"
				}
				if got := resp.GetValues()[0].GetValue().GetValue(); got != want {
					t.Errorf("read %d: value %s, want %s", i, got, want)
				}
				var got []string
				for k := range f.server.Health(so.UID) {
					got = append(got, k)
				}
				slices.Sort(got)
				if !slices.Equal(got, keys) {
					t.Errorf("read %d: health keys = %v, want %v", i, got, keys)
				}
			}
		})
	}
}
