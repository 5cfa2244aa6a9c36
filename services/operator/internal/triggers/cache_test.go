package triggers

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/scalers"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
)

type fakeScaler struct {
	closed atomic.Int32
}

func (f *fakeScaler) Poll(context.Context) (scaler.Reading, error) { return scaler.Reading{}, nil }
func (f *fakeScaler) Close() error                                 { f.closed.Add(1); return nil }

// counting wraps scaler.New: real errors for unsupported types, fake
// scalers otherwise, and a count of successful builds.
type counting struct {
	mu     sync.Mutex
	built  []*fakeScaler
	builds atomic.Int32
}

func (c *counting) new(cfg scalers.Config, deps scaler.Deps) (scaler.Scaler, error) {
	c.builds.Add(1)
	if _, err := scaler.New(cfg, deps); err != nil {
		return nil, err
	}
	f := &fakeScaler{}
	c.mu.Lock()
	c.built = append(c.built, f)
	c.mu.Unlock()
	return f, nil
}

func newTestCache() (*Cache, *counting) {
	c := NewCache(scaler.Deps{})
	cnt := &counting{}
	c.newScaler = cnt.new
	return c, cnt
}

func metricsAPI(target string) v1alpha1.ScaleTrigger {
	return v1alpha1.ScaleTrigger{Type: "metrics-api", Metadata: map[string]string{
		"url": "http://source.example/metrics", "valueLocation": "queue.depth", "targetValue": target,
	}}
}

func testSO(gen int64, triggers ...v1alpha1.ScaleTrigger) *v1alpha1.ScaledObject {
	return &v1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "so", UID: "uid-1", Generation: gen},
		Spec: v1alpha1.ScaledObjectSpec{
			ScaleTargetRef: &v1alpha1.ScaleTarget{Name: "app"},
			Triggers:       triggers,
		},
	}
}

func TestScalersTriggerKinds(t *testing.T) {
	c, _ := newTestCache()
	defer c.Close()
	so := testSO(1,
		metricsAPI("0.75"),
		v1alpha1.ScaleTrigger{Type: "cpu", MetricType: autoscalingv2.UtilizationMetricType, Metadata: map[string]string{"value": "60"}},
		v1alpha1.ScaleTrigger{Type: "external", Metadata: map[string]string{"scalerAddress": "ext.example:9090"}},
		v1alpha1.ScaleTrigger{Type: "metrics-api", Metadata: map[string]string{}},
		v1alpha1.ScaleTrigger{Type: "no-such-type"},
	)
	got, err := c.Scalers(so)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("got %d triggers, want 5", len(got))
	}
	tests := map[string]struct {
		index       int
		metricName  string
		wantScaler  bool
		wantErr     bool
		wantErrKind error
	}{
		"metrics-api":       {index: 0, metricName: "s0-metric-api-queue-depth", wantScaler: true},
		"cpu has no scaler": {index: 1},
		// Its metric name comes from the scaler's GetMetricSpec.
		"external":         {index: 2, wantScaler: true},
		"bad metadata":     {index: 3, wantErr: true},
		"unsupported type": {index: 4, wantErr: true, wantErrKind: scalers.ErrUnsupportedType},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tr := got[tc.index]
			if tr.Index != tc.index {
				t.Errorf("Index = %d, want %d", tr.Index, tc.index)
			}
			if tr.MetricName != tc.metricName {
				t.Errorf("MetricName = %q, want %q", tr.MetricName, tc.metricName)
			}
			if (tr.Scaler != nil) != tc.wantScaler {
				t.Errorf("Scaler = %v, want present %v", tr.Scaler, tc.wantScaler)
			}
			if (tr.Err != nil) != tc.wantErr {
				t.Errorf("Err = %v, want error %v", tr.Err, tc.wantErr)
			}
			if tc.wantErrKind != nil && !errors.Is(tr.Err, tc.wantErrKind) {
				t.Errorf("Err = %v, want one wrapping %v", tr.Err, tc.wantErrKind)
			}
		})
	}
	if got[1].MetricSpec.Type != autoscalingv2.ResourceMetricSourceType {
		t.Errorf("cpu MetricSpec type = %q, want Resource", got[1].MetricSpec.Type)
	}
	if q := got[0].MetricSpec.External.Target.AverageValue; q == nil || q.String() != "750m" {
		t.Errorf("metrics-api target = %v, want 750m", q)
	}
}

func TestScalersBuildOncePerGeneration(t *testing.T) {
	c, cnt := newTestCache()
	defer c.Close()

	first, _ := c.Scalers(testSO(1, metricsAPI("1"), metricsAPI("2")))
	again, _ := c.Scalers(testSO(1, metricsAPI("1"), metricsAPI("2")))
	if n := cnt.builds.Load(); n != 2 {
		t.Fatalf("builds after two calls for generation 1 = %d, want 2 (one per trigger)", n)
	}
	if first[0].Scaler != again[0].Scaler {
		t.Fatal("the scaler was not reused within a generation")
	}

	// An older generation (a stale reader) gets the cached triggers.
	if _, err := c.Scalers(testSO(0, metricsAPI("1"))); err != nil {
		t.Fatal(err)
	}
	if n := cnt.builds.Load(); n != 2 {
		t.Fatalf("an older generation rebuilt: %d builds", n)
	}

	// A new generation rebuilds and closes the old scalers.
	second, _ := c.Scalers(testSO(2, metricsAPI("3")))
	if n := cnt.builds.Load(); n != 3 {
		t.Fatalf("builds after generation 2 = %d, want 3", n)
	}
	if len(second) != 1 || second[0].Scaler == first[0].Scaler {
		t.Fatal("generation 2 did not get new scalers")
	}
	for i, tr := range first {
		if n := tr.Scaler.(*fakeScaler).closed.Load(); n != 1 {
			t.Errorf("old scaler %d closed %d times, want 1", i, n)
		}
	}
	if n := second[0].Scaler.(*fakeScaler).closed.Load(); n != 0 {
		t.Errorf("new scaler closed %d times", n)
	}

	// A new UID under the same name (deleted and recreated) rebuilds too.
	so := testSO(2, metricsAPI("3"))
	so.UID = types.UID("uid-2")
	third, _ := c.Scalers(so)
	if third[0].Scaler == second[0].Scaler {
		t.Fatal("a recreated ScaledObject reused the old object's scaler")
	}
	if n := second[0].Scaler.(*fakeScaler).closed.Load(); n != 1 {
		t.Errorf("scaler of the deleted object closed %d times, want 1", n)
	}
	if c.Len() != 1 {
		t.Errorf("Len = %d, want 1", c.Len())
	}
}

func TestForgetAndClose(t *testing.T) {
	c, _ := newTestCache()
	a := testSO(1, metricsAPI("1"))
	b := testSO(1, metricsAPI("1"))
	b.Name, b.UID = "other", "uid-b"
	ta, _ := c.Scalers(a)
	tb, _ := c.Scalers(b)
	if c.Len() != 2 {
		t.Fatalf("Len = %d, want 2", c.Len())
	}

	c.Forget(cache.ObjectName{Namespace: "ns", Name: "so"})
	if n := ta[0].Scaler.(*fakeScaler).closed.Load(); n != 1 {
		t.Errorf("forgotten scaler closed %d times, want 1", n)
	}
	if n := tb[0].Scaler.(*fakeScaler).closed.Load(); n != 0 {
		t.Errorf("other scaler closed %d times, want 0", n)
	}
	c.Forget(cache.ObjectName{Namespace: "ns", Name: "missing"}) // no-op
	if c.Len() != 1 {
		t.Fatalf("Len after Forget = %d, want 1", c.Len())
	}

	c.Close()
	c.Close()
	if n := tb[0].Scaler.(*fakeScaler).closed.Load(); n != 1 {
		t.Errorf("scaler closed %d times after Close, want 1", n)
	}
	if _, err := c.Scalers(a); !errors.Is(err, ErrClosed) {
		t.Errorf("Scalers after Close: err = %v, want ErrClosed", err)
	}
	if c.Len() != 0 {
		t.Errorf("Len after Close = %d", c.Len())
	}
}

func TestScalersConcurrent(t *testing.T) {
	c, cnt := newTestCache()
	defer c.Close()

	// Let builds for "so" block until released, to check that a slow build
	// of one key holds up neither other keys nor double-builds its own.
	release := make(chan struct{})
	inner := c.newScaler
	var blocked atomic.Int32
	c.newScaler = func(cfg scalers.Config, deps scaler.Deps) (scaler.Scaler, error) {
		if cfg.(*scalers.MetricsAPIConfig).TargetValue == 9 {
			blocked.Add(1)
			<-release
		}
		return inner(cfg, deps)
	}

	slow := testSO(1, metricsAPI("9"))
	var wg sync.WaitGroup
	results := make([][]Trigger, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _ = c.Scalers(slow)
		}()
	}

	// Another key builds while the slow one is held.
	other := testSO(1, metricsAPI("1"))
	other.Name, other.UID = "fast", "uid-fast"
	if tr, err := c.Scalers(other); err != nil || tr[0].Scaler == nil {
		t.Fatalf("other key: %v, %v", tr, err)
	}

	close(release)
	wg.Wait()
	if n := blocked.Load(); n != 1 {
		t.Fatalf("slow key built %d times, want 1", n)
	}
	for i := range results {
		if results[i][0].Scaler != results[0][0].Scaler {
			t.Fatalf("caller %d got a different scaler", i)
		}
	}

	// Generations racing: every caller gets a usable answer and only the
	// newest generation's scalers stay open.
	wg = sync.WaitGroup{}
	for g := int64(2); g < 10; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Scalers(testSO(g, metricsAPI("1"))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	final, _ := c.Scalers(testSO(9, metricsAPI("1")))
	cnt.mu.Lock()
	defer cnt.mu.Unlock()
	open := 0
	for _, f := range cnt.built {
		if f.closed.Load() == 0 {
			open++
		}
	}
	if open != 2 { // "fast" and the final generation of "so"
		t.Errorf("%d scalers left open, want 2", open)
	}
	if final[0].Scaler.(*fakeScaler).closed.Load() != 0 {
		t.Error("the newest generation's scaler was closed")
	}
}
