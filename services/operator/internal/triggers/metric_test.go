package triggers

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/scalers"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
)

// specScaler is an external scaler: it defines its metric, and fails its
// polls and metric spec calls while down.
type specScaler struct {
	name  string
	down  atomic.Bool
	asked atomic.Int32
}

func (s *specScaler) Poll(context.Context) (scaler.Reading, error) {
	if s.down.Load() {
		return scaler.Reading{}, &scaler.Error{Type: "external", Kind: scaler.ErrUnreachable}
	}
	return scaler.Reading{Value: resource.MustParse("3")}, nil
}
func (s *specScaler) Close() error { return nil }
func (s *specScaler) MetricSpec(context.Context) (autoscalingv2.MetricSpec, error) {
	s.asked.Add(1)
	if s.down.Load() {
		return autoscalingv2.MetricSpec{}, &scaler.Error{Type: "external", Kind: scaler.ErrUnreachable}
	}
	q := resource.MustParse("10")
	return autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
		Metric: autoscalingv2.MetricIdentifier{Name: s.name},
		Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &q},
	}}, nil
}

// plainScaler is an external scaler's stand-in that cannot define its
// metric.
type plainScaler struct{}

func (plainScaler) Poll(context.Context) (scaler.Reading, error) { return scaler.Reading{}, nil }
func (plainScaler) Close() error                                 { return nil }

func TestTriggerMetric(t *testing.T) {
	external := v1alpha1.ScaleTrigger{Type: "external", Metadata: map[string]string{"scalerAddress": "ext.example:9090"}}
	tests := map[string]struct {
		trigger   v1alpha1.ScaleTrigger
		scaler    func() scaler.Scaler
		down      bool
		learnBy   string // "resolve", "poll" or ""
		wantName  string
		wantKnown bool
		wantErr   bool
		wantFrom  bool
	}{
		"metadata defines the metric": {
			trigger: metricsAPI("5"), scaler: func() scaler.Scaler { return plainScaler{} },
			wantName: "s0-metric-api-queue-depth", wantKnown: true,
		},
		"external: unknown until asked": {
			trigger: external, scaler: func() scaler.Scaler { return &specScaler{name: "s0-depth"} },
			wantFrom: true,
		},
		"external: resolved": {
			trigger: external, scaler: func() scaler.Scaler { return &specScaler{name: "s0-depth"} },
			learnBy: "resolve", wantName: "s0-depth", wantKnown: true, wantFrom: true,
		},
		"external: learnt from a successful poll": {
			trigger: external, scaler: func() scaler.Scaler { return &specScaler{name: "s0-depth"} },
			learnBy: "poll", wantName: "s0-depth", wantKnown: true, wantFrom: true,
		},
		"external: down, not learnt": {
			trigger: external, scaler: func() scaler.Scaler { return &specScaler{name: "s0-depth"} },
			down: true, learnBy: "resolve", wantErr: true, wantFrom: true,
		},
		"external: a scaler that cannot define it": {
			trigger: external, scaler: func() scaler.Scaler { return plainScaler{} },
			learnBy: "resolve", wantErr: true, wantFrom: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var built scaler.Scaler
			c := NewCache(scaler.Deps{}, WithScalerConstructor(func(scalers.Config, scaler.Deps) (scaler.Scaler, error) {
				built = tc.scaler()
				if s, ok := built.(*specScaler); ok {
					s.down.Store(tc.down)
				}
				return built, nil
			}))
			defer c.Close()
			trs, err := c.Scalers(testSO(1, tc.trigger))
			if err != nil {
				t.Fatal(err)
			}
			tr := trs[0]
			switch tc.learnBy {
			case "resolve":
				_, err = tr.ResolveMetric(context.Background(), time.Second)
			case "poll":
				_, err = tr.Poll(context.Background(), OpIsActive, time.Second)
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("error = %v, want error %v", err, tc.wantErr)
			}
			if tr.ScalerDefinesMetric() != tc.wantFrom {
				t.Errorf("ScalerDefinesMetric() = %v, want %v", tr.ScalerDefinesMetric(), tc.wantFrom)
			}
			// What one copy learnt, every copy of the generation knows.
			again, _ := c.Scalers(testSO(1, tc.trigger))
			if _, known := again[0].Metric(); known != tc.wantKnown {
				t.Errorf("Metric() known = %v, want %v", known, tc.wantKnown)
			}
			if got := again[0].ExternalMetricName(); got != tc.wantName {
				t.Errorf("ExternalMetricName() = %q, want %q", got, tc.wantName)
			}
			if s, ok := built.(*specScaler); ok && tc.wantKnown {
				asked := s.asked.Load()
				if _, err := again[0].ResolveMetric(context.Background(), time.Second); err != nil || s.asked.Load() != asked {
					t.Errorf("ResolveMetric of a known metric asked the scaler again (%v)", err)
				}
			}
			// A new generation asks its new scaler afresh.
			next, _ := c.Scalers(testSO(2, tc.trigger))
			if next[0].ScalerDefinesMetric() && next[0].ExternalMetricName() != "" {
				t.Errorf("a new generation knows the old one's metric %q", next[0].ExternalMetricName())
			}
		})
	}
}

// timedScaler has a poll timeout of its own and blocks until its poll's
// context ends, recording the deadline it was given.
type timedScaler struct {
	own      time.Duration
	deadline atomic.Pointer[time.Time]
}

func (s *timedScaler) PollTimeout() time.Duration { return s.own }
func (s *timedScaler) Close() error               { return nil }
func (s *timedScaler) Poll(ctx context.Context) (scaler.Reading, error) {
	if d, ok := ctx.Deadline(); ok {
		s.deadline.Store(&d)
	}
	<-ctx.Done()
	return scaler.Reading{}, &scaler.Error{Type: "metrics-api", Kind: scaler.ErrTimeout}
}

func TestPollTimeout(t *testing.T) {
	tests := map[string]struct {
		scaler scaler.Scaler
		limit  time.Duration
		want   time.Duration
	}{
		"no timeout of its own":            {scaler: plainScaler{}, limit: 5 * time.Second, want: 5 * time.Second},
		"its own is shorter: own + grace":  {scaler: &timedScaler{own: 3 * time.Second}, limit: 5 * time.Second, want: 4 * time.Second},
		"its own is longer: the limit":     {scaler: &timedScaler{own: 10 * time.Second}, limit: 5 * time.Second, want: 5 * time.Second},
		"own + grace beyond the limit":     {scaler: &timedScaler{own: 4500 * time.Millisecond}, limit: 5 * time.Second, want: 5 * time.Second},
		"its own is unbounded: the limit":  {scaler: &timedScaler{}, limit: 5 * time.Second, want: 5 * time.Second},
		"no limit: no bound":               {scaler: &timedScaler{own: time.Second}, limit: 0, want: 0},
		"no scaler: the limit":             {limit: 5 * time.Second, want: 5 * time.Second},
		"a short own timeout, short limit": {scaler: &timedScaler{own: 10 * time.Millisecond}, limit: 30 * time.Millisecond, want: 30 * time.Millisecond},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tr := Trigger{Type: "metrics-api", Scaler: tc.scaler}
			if got := tr.PollTimeout(tc.limit); got != tc.want {
				t.Errorf("PollTimeout(%s) = %s, want %s", tc.limit, got, tc.want)
			}
		})
	}

	// Poll applies it: a blocking source is cut off at the bound.
	s := &timedScaler{own: 10 * time.Second}
	tr := Trigger{Type: "metrics-api", Scaler: s}
	start := time.Now()
	_, err := tr.Poll(context.Background(), OpIsActive, 50*time.Millisecond)
	if !errors.Is(err, scaler.ErrTimeout) {
		t.Fatalf("Poll() error = %v, want a timeout", err)
	}
	if d := s.deadline.Load(); d == nil || d.Sub(start) > time.Second {
		t.Errorf("the poll's deadline was %v after its start, want about 50ms", d)
	}
}
