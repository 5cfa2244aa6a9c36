package metricsserver

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
)

// notifications records the keys the server reports.
type notifications struct {
	mu   sync.Mutex
	keys []string
}

func (n *notifications) add(k cache.ObjectName) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.keys = append(n.keys, k.String())
}

func (n *notifications) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.keys)
}

func TestHealthNotifications(t *testing.T) {
	ok, bad := false, true
	tests := map[string]struct {
		fallback *v1alpha1.Fallback
		// reads are the outcomes of successive reads of the metric (true:
		// failed); notified says after which reads the controller is told.
		reads    []bool
		notified []bool
	}{
		"fallback set: first read, flips and fallback start and end only": {
			fallback: &v1alpha1.Fallback{FailureThreshold: 2, Replicas: 3},
			reads:    []bool{ok, ok, bad, bad, bad, bad, ok, ok},
			//         first  -   fail  -    fb   -    back  -
			notified: []bool{true, false, true, false, true, false, true, false},
		},
		"fallback set, first read a failure": {
			fallback: &v1alpha1.Fallback{FailureThreshold: 0, Replicas: 3},
			reads:    []bool{bad, bad, ok},
			notified: []bool{true, false, true},
		},
		"no fallback: never, its status shows no health": {
			reads:    []bool{ok, bad, bad, ok},
			notified: []bool{false, false, false, false},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			n := &notifications{}
			f := newFixture(t, WithHealthNotifier(n.add))
			so := f.addSO(t, func(so *v1alpha1.ScaledObject) { so.Spec.Fallback = tc.fallback }, trigger("a", "1", ""))
			for i, failed := range tc.reads {
				if failed {
					f.scaler(t, "a").set(fail(scaler.ErrUnreachable))
				} else {
					f.scaler(t, "a").set(value("1"))
				}
				before := n.count()
				_, _ = f.server.GetMetrics(context.Background(), request("s0-metric-api-a"))
				if got := n.count() - before; got > 1 || (got == 1) != tc.notified[i] {
					t.Fatalf("read %d: %d notifications, want notified %v", i, got, tc.notified[i])
				}
			}
			for _, k := range n.keys {
				if k != "ns/so" {
					t.Errorf("notified %q, want ns/so", k)
				}
			}
			f.server.Forget(so.UID)
		})
	}
}

func TestFallbackMetricsAndGauge(t *testing.T) {
	f := newFixture(t)
	base := testutil.ToFloat64(fallbackObjects)
	so := f.addSO(t, func(so *v1alpha1.ScaledObject) {
		so.Spec.Fallback = &v1alpha1.Fallback{FailureThreshold: 0, Replicas: 2}
	}, trigger("a", "1", ""), trigger("b", "1", ""))
	read := func(metric string) {
		t.Helper()
		if _, err := f.server.GetMetrics(context.Background(), request(metric)); err != nil {
			t.Fatal(err)
		}
	}
	f.scaler(t, "a").set(fail(scaler.ErrUnreachable))
	f.scaler(t, "b").set(fail(scaler.ErrUnreachable))
	read("s1-metric-api-b")
	read("s0-metric-api-a")
	if got := f.server.FallbackMetrics(so.UID); !slices.Equal(got, []string{"s0-metric-api-a", "s1-metric-api-b"}) {
		t.Fatalf("FallbackMetrics = %q", got)
	}
	if d := testutil.ToFloat64(fallbackObjects) - base; d != 1 {
		t.Fatalf("gauge grew by %v with one object in fallback, want 1", d)
	}
	f.scaler(t, "a").set(value("1"))
	read("s0-metric-api-a")
	if got := f.server.FallbackMetrics(so.UID); !slices.Equal(got, []string{"s1-metric-api-b"}) {
		t.Fatalf("FallbackMetrics after a recovered = %q", got)
	}
	if d := testutil.ToFloat64(fallbackObjects) - base; d != 1 {
		t.Fatalf("gauge = base+%v while b is still in fallback, want base+1", d)
	}
	f.server.Forget(so.UID)
	if d := testutil.ToFloat64(fallbackObjects) - base; d != 0 {
		t.Fatalf("gauge = base+%v after Forget, want base", d)
	}
	if got := f.server.FallbackMetrics(so.UID); got != nil {
		t.Errorf("FallbackMetrics after Forget = %q", got)
	}
}

func TestHealthPrunedOnNewGeneration(t *testing.T) {
	n := &notifications{}
	f := newFixture(t, WithHealthNotifier(n.add))
	so := f.addSO(t, func(so *v1alpha1.ScaledObject) {
		so.Spec.Fallback = &v1alpha1.Fallback{FailureThreshold: 0, Replicas: 2}
	}, trigger("a", "1", ""), trigger("b", "1", ""))
	f.scaler(t, "b").set(fail(scaler.ErrUnreachable))
	for _, m := range []string{"s0-metric-api-a", "s1-metric-api-b"} {
		_, _ = f.server.GetMetrics(context.Background(), request(m))
	}
	if got := len(f.server.FallbackMetrics(so.UID)); got != 1 {
		t.Fatalf("%d metrics in fallback, want 1", got)
	}

	// Generation 2 drops trigger b.
	next := so.DeepCopy()
	next.Generation = 2
	next.Spec.Triggers = next.Spec.Triggers[:1]
	if err := f.indexer.Update(next); err != nil {
		t.Fatal(err)
	}
	before := n.count()
	if _, err := f.server.GetMetrics(context.Background(), request("s0-metric-api-a")); err != nil {
		t.Fatal(err)
	}
	h := f.server.Health(so.UID)
	if _, ok := h["s1-metric-api-b"]; ok || len(h) != 1 {
		t.Errorf("health after the trigger went = %v, want only s0-metric-api-a", h)
	}
	if fb := f.server.FallbackMetrics(so.UID); len(fb) != 0 {
		t.Errorf("fallback metrics = %q, want none", fb)
	}
	if n.count() == before {
		t.Error("the controller was not told the fallback ended with the trigger's removal")
	}
}

func TestUseCachedMetrics(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(now)
	f := newFixture(t, WithClock(clk))
	cached := trigger("a", "1", "")
	cached.UseCachedMetrics = true
	so := f.addSO(t, func(so *v1alpha1.ScaledObject) {
		so.Spec.PollingInterval = ptr.To[int32](10)
	}, cached, trigger("b", "1", ""))
	trs, err := f.server.triggers.Scalers(so)
	if err != nil {
		t.Fatal(err)
	}
	sa, sb := f.scaler(t, "a"), f.scaler(t, "b")
	sa.set(value("7"))
	sb.set(value("7"))
	get := func(metric string) (string, error) {
		t.Helper()
		resp, err := f.server.GetMetrics(context.Background(), request(metric))
		if err != nil {
			return "", err
		}
		return resp.GetValues()[0].GetValue().GetValue(), nil
	}

	// No scale-loop poll yet: the source is polled.
	if v, err := get("s0-metric-api-a"); err != nil || v != "7" || sa.polls.Load() != 1 {
		t.Fatalf("no cached value: %q, %v, %d polls; want 7 from one poll", v, err, sa.polls.Load())
	}
	// The scale loop's poll is served, without polling the source.
	trs[0].Remember(scaler.Reading{Value: resource.MustParse("3")}, nil, now)
	trs[1].Remember(scaler.Reading{Value: resource.MustParse("3")}, nil, now)
	clk.SetTime(now.Add(15 * time.Second))
	if v, err := get("s0-metric-api-a"); err != nil || v != "3" || sa.polls.Load() != 1 {
		t.Fatalf("cached value: %q, %v, %d polls; want 3 and still one poll", v, err, sa.polls.Load())
	}
	// A trigger without useCachedMetrics is always polled.
	if v, err := get("s1-metric-api-b"); err != nil || v != "7" || sb.polls.Load() != 1 {
		t.Fatalf("uncached trigger: %q, %v, %d polls", v, err, sb.polls.Load())
	}
	// A cached failure is served as a failure, and counted.
	trs[0].Remember(scaler.Reading{}, &scaler.Error{Type: "metrics-api", Kind: scaler.ErrUnreachable, Detail: "cached boom"}, now.Add(15*time.Second))
	if _, err := get("s0-metric-api-a"); status.Code(err) != codes.Unavailable || sa.polls.Load() != 1 {
		t.Fatalf("cached failure: %v, %d polls; want Unavailable without a poll", err, sa.polls.Load())
	}
	if n := *f.server.Health(so.UID)["s0-metric-api-a"].NumberOfFailures; n != 1 {
		t.Errorf("failures after a cached failure = %d, want 1", n)
	}
	// More than two polling intervals old: the scale loop is not polling
	// it any more, so the source is read.
	clk.SetTime(now.Add(15*time.Second + 21*time.Second))
	if v, err := get("s0-metric-api-a"); err != nil || v != "7" || sa.polls.Load() != 2 {
		t.Fatalf("stale cache: %q, %v, %d polls; want 7 from a second poll", v, err, sa.polls.Load())
	}
	if cr := testutil.ToFloat64(cachedReads); cr < 2 {
		t.Errorf("cached reads counter = %v, want at least 2", cr)
	}
}
