package triggers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
)

// scriptedScaler answers Poll with poll.
type scriptedScaler struct {
	poll func(ctx context.Context) (scaler.Reading, error)
}

func (s scriptedScaler) Poll(ctx context.Context) (scaler.Reading, error) { return s.poll(ctx) }
func (s scriptedScaler) Close() error                                     { return nil }

func TestFormula(t *testing.T) {
	withFormula := func(formula string, gen int64) *v1alpha1.ScaledObject {
		a, b := metricsAPI("1"), metricsAPI("2")
		a.Name, b.Name = "a", "b"
		so := testSO(gen, a, b, v1alpha1.ScaleTrigger{Type: "cpu", Name: "load", Metadata: map[string]string{"value": "50"}})
		so.Spec.Advanced = &v1alpha1.AdvancedConfig{ScalingModifiers: &v1alpha1.ScalingModifiers{Formula: formula, Target: "1"}}
		return so
	}
	tests := map[string]struct {
		so      *v1alpha1.ScaledObject
		wantNil bool
		wantErr string
		values  map[string]float64
		want    float64
	}{
		"no formula":            {so: testSO(1, metricsAPI("1")), wantNil: true},
		"empty modifiers":       {so: withFormula("", 1), wantNil: true},
		"valid":                 {so: withFormula("(a + b) / 2", 1), values: map[string]float64{"a": 1, "b": 4}, want: 2.5},
		"unknown name":          {so: withFormula("a + c", 1), wantErr: "spec.advanced.scalingModifiers.formula: formula \"a + c\" does not compile: unknown name c"},
		"cpu trigger not a var": {so: withFormula("a + load", 1), wantErr: "unknown name load"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, _ := newTestCache()
			defer c.Close()
			p, err := c.Formula(tc.so)
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Formula() = %v, %v; want an error containing %q", p, err, tc.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			case tc.wantNil:
				if p != nil {
					t.Fatalf("Formula() = %v, want nil", p)
				}
				return
			}
			got, err := p.Eval(tc.values)
			if err != nil || got != tc.want {
				t.Errorf("Eval() = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestFormulaOncePerGeneration(t *testing.T) {
	c, _ := newTestCache()
	defer c.Close()
	so := func(gen int64) *v1alpha1.ScaledObject {
		a := metricsAPI("1")
		a.Name = "a"
		s := testSO(gen, a)
		s.Spec.Advanced = &v1alpha1.AdvancedConfig{ScalingModifiers: &v1alpha1.ScalingModifiers{Formula: "a * 2", Target: "1"}}
		return s
	}
	first, err := c.Formula(so(1))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := c.Formula(so(1))
	if first != again {
		t.Error("the formula was compiled twice for one generation")
	}
	next, _ := c.Formula(so(2))
	if next == first || next == nil {
		t.Error("a new generation did not get its own compiled formula")
	}
	c.Close()
	if _, err := c.Formula(so(2)); !errors.Is(err, ErrClosed) {
		t.Errorf("Formula after Close: %v, want ErrClosed", err)
	}
}

func TestPollMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	boom := &scaler.Error{Type: "redis", Kind: scaler.ErrUnreachable, Detail: "boom"}
	tests := map[string]struct {
		poll       func(ctx context.Context) (scaler.Reading, error)
		op         Operation
		timeout    time.Duration
		cancelled  bool
		wantErr    bool
		wantErrors float64
	}{
		"success":                {poll: func(context.Context) (scaler.Reading, error) { return scaler.Reading{Active: true}, nil }, op: OpIsActive},
		"failure is counted":     {poll: func(context.Context) (scaler.Reading, error) { return scaler.Reading{}, boom }, op: OpGetMetrics, wantErr: true, wantErrors: 1},
		"own timeout is counted": {timeout: 10 * time.Millisecond, op: OpGetMetrics, wantErr: true, wantErrors: 1},
		"caller gone is not":     {cancelled: true, op: OpIsActive, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			poll := tc.poll
			if poll == nil {
				poll = func(ctx context.Context) (scaler.Reading, error) {
					<-ctx.Done()
					return scaler.Reading{}, &scaler.Error{Type: "redis", Kind: scaler.ErrTimeout}
				}
			}
			tr := Trigger{Type: "redis", Scaler: scriptedScaler{poll: poll}}
			ctx, cancel := context.WithCancel(context.Background())
			if tc.cancelled {
				cancel()
			}
			defer cancel()
			errs := callErrors.WithLabelValues("redis", string(tc.op))
			errsBefore := testutil.ToFloat64(errs)
			countBefore := histogramCount(t, reg, "redis", tc.op)
			_, err := tr.Poll(ctx, tc.op, tc.timeout)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Poll() err = %v, want error %v", err, tc.wantErr)
			}
			if d := testutil.ToFloat64(errs) - errsBefore; d != tc.wantErrors {
				t.Errorf("errors counted: %v, want %v", d, tc.wantErrors)
			}
			if d := histogramCount(t, reg, "redis", tc.op) - countBefore; d != 1 {
				t.Errorf("latency observations: %d, want 1", d)
			}
		})
	}

	// No scaler: the build error, and no call measured.
	built := errors.New("bad metadata")
	if _, err := (Trigger{Type: "redis", Err: built}).Poll(context.Background(), OpIsActive, 0); !errors.Is(err, built) {
		t.Errorf("Poll without a scaler = %v, want one wrapping the build error", err)
	}
}

// histogramCount returns the sample count of the call duration histogram
// for one label pair, 0 before its first observation.
func histogramCount(t *testing.T, reg *prometheus.Registry, typ string, op Operation) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ebb_scaler_call_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["type"] == typ && labels["operation"] == string(op) {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}

func TestRememberAndCached(t *testing.T) {
	c, _ := newTestCache()
	defer c.Close()
	cachedTrigger := metricsAPI("1")
	cachedTrigger.UseCachedMetrics = true
	trs, err := c.Scalers(testSO(1, cachedTrigger, metricsAPI("1")))
	if err != nil {
		t.Fatal(err)
	}
	withCache, without := trs[0], trs[1]
	if !withCache.UseCachedMetrics || without.UseCachedMetrics {
		t.Fatalf("UseCachedMetrics = %v, %v; want true, false", withCache.UseCachedMetrics, without.UseCachedMetrics)
	}
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

	if _, ok := withCache.Cached(); ok {
		t.Fatal("a cached reading before any poll")
	}
	withCache.Remember(scaler.Reading{Value: resource.MustParse("5"), Active: true}, nil, at)
	without.Remember(scaler.Reading{Value: resource.MustParse("5")}, nil, at)
	if _, ok := without.Cached(); ok {
		t.Error("a trigger without useCachedMetrics kept a reading")
	}
	// The copy held by another reader of the same generation sees it.
	again, _ := c.Scalers(testSO(1, cachedTrigger, metricsAPI("1")))
	got, ok := again[0].Cached()
	if !ok || got.Reading.Value.String() != "5" || !got.Reading.Active || got.Err != nil || !got.At.Equal(at) {
		t.Fatalf("Cached() = %+v, %v", got, ok)
	}
	// An older poll finishing late does not replace a newer one; a newer
	// failure does.
	withCache.Remember(scaler.Reading{Value: resource.MustParse("1")}, nil, at.Add(-time.Second))
	if got, _ := withCache.Cached(); got.Reading.Value.String() != "5" {
		t.Errorf("an older poll replaced the cached value: %v", got.Reading.Value.String())
	}
	boom := errors.New("boom")
	withCache.Remember(scaler.Reading{}, boom, at.Add(time.Second))
	if got, _ := withCache.Cached(); !errors.Is(got.Err, boom) {
		t.Errorf("cached error = %v, want boom", got.Err)
	}
	// A new generation starts without a cached reading.
	next, _ := c.Scalers(testSO(2, cachedTrigger))
	if _, ok := next[0].Cached(); ok {
		t.Error("a new generation inherited the old one's cached reading")
	}
}
