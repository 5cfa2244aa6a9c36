package metricsserver

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedalisters "github.com/ebb-autoscaler/ebb/pkg/client/listers/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/rpc/metricsv1"
	"github.com/ebb-autoscaler/ebb/pkg/scalers"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/triggers"
)

var now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeScaler answers Poll from poll and counts the calls; safe for
// concurrent use.
type fakeScaler struct {
	mu    sync.Mutex
	poll  func(ctx context.Context) (scaler.Reading, error)
	polls atomic.Int32
}

func (f *fakeScaler) set(p func(ctx context.Context) (scaler.Reading, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.poll = p
}

func (f *fakeScaler) Poll(ctx context.Context) (scaler.Reading, error) {
	f.polls.Add(1)
	f.mu.Lock()
	p := f.poll
	f.mu.Unlock()
	return p(ctx)
}

func (f *fakeScaler) Close() error { return nil }

func value(s string) func(context.Context) (scaler.Reading, error) {
	return func(context.Context) (scaler.Reading, error) {
		return scaler.Reading{Value: resource.MustParse(s)}, nil
	}
}

func fail(kind error) func(context.Context) (scaler.Reading, error) {
	return func(context.Context) (scaler.Reading, error) {
		return scaler.Reading{}, &scaler.Error{Type: "metrics-api", Source: "http://source.example/metrics", Kind: kind, Detail: "boom"}
	}
}

// fixture is a Server over a fake lister and fake scalers, one per
// metrics-api valueLocation.
type fixture struct {
	server  *Server
	indexer cache.Indexer
	scalers map[string]*fakeScaler
	// externals are the external triggers' scalers, in build order.
	externals []*fakeExternal
	ready     error
	mu        sync.Mutex
}

func newFixture(t testing.TB, opts ...Option) *fixture {
	t.Helper()
	f := &fixture{
		indexer: cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{}),
		scalers: map[string]*fakeScaler{},
	}
	tc := triggers.NewCache(scaler.Deps{}, triggers.WithScalerConstructor(func(cfg scalers.Config, _ scaler.Deps) (scaler.Scaler, error) {
		if ext, ok := cfg.(*scalers.ExternalConfig); ok {
			return f.newExternal(ext), nil
		}
		c := cfg.(*scalers.MetricsAPIConfig)
		if c.ValueLocation == "unimplemented" {
			return nil, &scaler.Error{Type: cfg.Type(), Kind: scaler.ErrNotImplemented, Detail: "not yet"}
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		s := &fakeScaler{poll: value("1")}
		f.scalers[c.ValueLocation] = s
		return s, nil
	}))
	t.Cleanup(tc.Close)
	opts = append([]Option{WithClock(clocktesting.NewFakePassiveClock(now))}, opts...)
	f.server = New(kedalisters.NewScaledObjectLister(f.indexer), tc, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.ready
	}, opts...)
	return f
}

func (f *fixture) scaler(t testing.TB, location string) *fakeScaler {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.scalers[location]
	if s == nil {
		t.Fatalf("no scaler built for %q", location)
	}
	return s
}

func trigger(location, target string, mt autoscalingv2.MetricTargetType) v1alpha1.ScaleTrigger {
	return v1alpha1.ScaleTrigger{Type: "metrics-api", MetricType: mt, Metadata: map[string]string{
		"url": "http://source.example/metrics", "valueLocation": location, "targetValue": target,
	}}
}

func (f *fixture) addSO(t testing.TB, mutate func(*v1alpha1.ScaledObject), trs ...v1alpha1.ScaleTrigger) *v1alpha1.ScaledObject {
	t.Helper()
	so := &v1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "so", UID: "uid-so", Generation: 1},
		Spec: v1alpha1.ScaledObjectSpec{
			ScaleTargetRef: &v1alpha1.ScaleTarget{Name: "app"},
			Triggers:       trs,
		},
	}
	if mutate != nil {
		mutate(so)
	}
	if err := f.indexer.Add(so); err != nil {
		t.Fatal(err)
	}
	// Build the scalers now so tests can program them.
	if _, err := f.server.triggers.Scalers(so); err != nil {
		t.Fatal(err)
	}
	return so
}

func request(metric string) *metricsv1.GetMetricsRequest {
	return &metricsv1.GetMetricsRequest{
		Namespace: "ns", ScaledObjectName: "so", MetricName: metric,
		LabelSelector: v1alpha1.ScaledObjectNameLabel + "=so",
	}
}

func TestGetMetricsErrors(t *testing.T) {
	withReq := func(mut func(r *metricsv1.GetMetricsRequest)) *metricsv1.GetMetricsRequest {
		r := request("s0-metric-api-a")
		mut(r)
		return r
	}
	tests := map[string]struct {
		req      *metricsv1.GetMetricsRequest
		notReady error
		poll     func(context.Context) (scaler.Reading, error)
		wantCode codes.Code
		wantMsg  string
	}{
		"no namespace":         {req: withReq(func(r *metricsv1.GetMetricsRequest) { r.Namespace = "" }), wantCode: codes.InvalidArgument, wantMsg: "namespace"},
		"no fields":            {req: &metricsv1.GetMetricsRequest{}, wantCode: codes.InvalidArgument, wantMsg: "namespace, scaled_object_name, metric_name"},
		"no metric name":       {req: withReq(func(r *metricsv1.GetMetricsRequest) { r.MetricName = "" }), wantCode: codes.InvalidArgument, wantMsg: "metric_name"},
		"selector unparsable":  {req: withReq(func(r *metricsv1.GetMetricsRequest) { r.LabelSelector = "a in (" }), wantCode: codes.InvalidArgument, wantMsg: "does not parse"},
		"selector other name":  {req: withReq(func(r *metricsv1.GetMetricsRequest) { r.LabelSelector = v1alpha1.ScaledObjectNameLabel + "=other" }), wantCode: codes.InvalidArgument, wantMsg: `does not select ScaledObject "so"`},
		"selector excludes":    {req: withReq(func(r *metricsv1.GetMetricsRequest) { r.LabelSelector = v1alpha1.ScaledObjectNameLabel + "!=so" }), wantCode: codes.InvalidArgument, wantMsg: "does not select"},
		"not ready":            {req: request("s0-metric-api-a"), notReady: errors.New("caches not synced"), wantCode: codes.Unavailable, wantMsg: "caches not synced"},
		"no such object":       {req: withReq(func(r *metricsv1.GetMetricsRequest) { r.ScaledObjectName = "missing"; r.LabelSelector = "" }), wantCode: codes.NotFound, wantMsg: "ScaledObject ns/missing not found"},
		"no such metric":       {req: request("s9-nope"), wantCode: codes.NotFound, wantMsg: `has no metric "s9-nope"; its metrics are: s0-metric-api-a, s1-metric-api-unimplemented`},
		"no scaler yet":        {req: request("s1-metric-api-unimplemented"), wantCode: codes.Unimplemented, wantMsg: "trigger 1 (metrics-api) of ns/so"},
		"composite":            {req: request("composite-metric"), wantCode: codes.NotFound},
		"unreachable":          {req: request("s0-metric-api-a"), poll: fail(scaler.ErrUnreachable), wantCode: codes.Unavailable, wantMsg: "trigger 0 (metrics-api) of ns/so: metrics-api trigger (http://source.example/metrics): source unreachable: boom"},
		"timeout":              {req: request("s0-metric-api-a"), poll: fail(scaler.ErrTimeout), wantCode: codes.Unavailable, wantMsg: "timed out"},
		"bad response":         {req: request("s0-metric-api-a"), poll: fail(scaler.ErrBadResponse), wantCode: codes.Unavailable, wantMsg: "bad response"},
		"invalid config":       {req: request("s0-metric-api-a"), poll: fail(scaler.ErrInvalidConfig), wantCode: codes.FailedPrecondition},
		"closed during call":   {req: request("s0-metric-api-a"), poll: fail(scaler.ErrClosed), wantCode: codes.Unavailable},
		"unexpected error":     {req: request("s0-metric-api-a"), poll: func(context.Context) (scaler.Reading, error) { return scaler.Reading{}, errors.New("odd") }, wantCode: codes.Internal},
		"selector extra label": {req: withReq(func(r *metricsv1.GetMetricsRequest) { r.LabelSelector += ",team=a" }), wantCode: codes.OK},
		"selector set-based":   {req: withReq(func(r *metricsv1.GetMetricsRequest) { r.LabelSelector = v1alpha1.ScaledObjectNameLabel + " in (so,x)" }), wantCode: codes.OK},
		"empty selector":       {req: withReq(func(r *metricsv1.GetMetricsRequest) { r.LabelSelector = "" }), wantCode: codes.OK},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.addSO(t, nil, trigger("a", "5", ""), trigger("unimplemented", "5", ""))
			f.ready = tc.notReady
			if tc.poll != nil {
				f.scaler(t, "a").set(tc.poll)
			}
			_, err := f.server.GetMetrics(context.Background(), tc.req)
			if got := status.Code(err); got != tc.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, err, tc.wantCode)
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("message %q does not contain %q", msg, tc.wantMsg)
			}
		})
	}
}

func TestGetMetricsValue(t *testing.T) {
	f := newFixture(t)
	f.addSO(t, nil, trigger("a", "5", ""))
	f.scaler(t, "a").set(value("0.75"))

	resp, err := f.server.GetMetrics(context.Background(), request("s0-metric-api-a"))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetValues()) != 1 {
		t.Fatalf("got %d values, want 1", len(resp.GetValues()))
	}
	v := resp.GetValues()[0]
	if v.GetMetricName() != "s0-metric-api-a" {
		t.Errorf("metric name = %q", v.GetMetricName())
	}
	if v.GetValue().GetValue() != "750m" {
		t.Errorf("value = %q, want 750m", v.GetValue().GetValue())
	}
	q, err := v.GetValue().ToQuantity()
	if err != nil || q.Cmp(resource.MustParse("0.75")) != 0 {
		t.Errorf("round trip = %v, %v; want 0.75", q.String(), err)
	}
	if !v.GetTimestamp().AsTime().Equal(now) {
		t.Errorf("timestamp = %v, want %v", v.GetTimestamp().AsTime(), now)
	}
}

// TestGetMetricsNameCase: the HPA controller asks for a metric in lower
// case (client-go lowercases the resource segment of the request path),
// so "s0-metric-api-Depth" (or a cron trigger's "s0-cron-UTC-…") arrives
// as "s0-metric-api-depth". It is served, as KEDA serves it (names compared
// without regard to case), and counted under the trigger's real name.
func TestGetMetricsNameCase(t *testing.T) {
	f := newFixture(t)
	so := f.addSO(t, nil, trigger("Depth", "5", ""))
	f.scaler(t, "Depth").set(value("3"))

	for _, asked := range []string{"s0-metric-api-depth", "s0-metric-api-Depth", "S0-METRIC-API-DEPTH"} {
		resp, err := f.server.GetMetrics(context.Background(), request(asked))
		if err != nil {
			t.Fatalf("GetMetrics(%q): %v", asked, err)
		}
		if v := resp.GetValues()[0]; v.GetMetricName() != "s0-metric-api-Depth" || v.GetValue().GetValue() != "3" {
			t.Errorf("GetMetrics(%q) = %s %s, want s0-metric-api-Depth 3", asked, v.GetMetricName(), v.GetValue().GetValue())
		}
	}
	if h := f.server.Health(so.UID); len(h) != 1 || h["s0-metric-api-Depth"].Status != v1alpha1.HealthStatusHappy {
		t.Errorf("health = %v, want one Happy entry under s0-metric-api-Depth", h)
	}
	if _, err := f.server.GetMetrics(context.Background(), request("s0-metric-api-depth2")); status.Code(err) != codes.NotFound {
		t.Errorf("another name: %v, want NotFound", err)
	}
}

func TestGetMetricsPollTimeoutAndCallerCancel(t *testing.T) {
	f := newFixture(t, WithPollTimeout(20*time.Millisecond))
	so := f.addSO(t, nil, trigger("a", "5", ""))
	var deadline time.Time
	f.scaler(t, "a").set(func(ctx context.Context) (scaler.Reading, error) {
		deadline, _ = ctx.Deadline()
		<-ctx.Done()
		return scaler.Reading{}, &scaler.Error{Type: "metrics-api", Kind: scaler.ErrTimeout}
	})

	// The server's own bound: the source timed out, a counted failure.
	_, err := f.server.GetMetrics(context.Background(), request("s0-metric-api-a"))
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("err = %v, want Unavailable", err)
	}
	if deadline.IsZero() {
		t.Error("the poll had no deadline")
	}
	if n := *f.server.Health(so.UID)["s0-metric-api-a"].NumberOfFailures; n != 1 {
		t.Errorf("failures = %d, want 1", n)
	}

	// The caller gave up: its code, and not the source's failure.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = f.server.GetMetrics(ctx, request("s0-metric-api-a"))
	if status.Code(err) != codes.Canceled {
		t.Fatalf("err = %v, want Canceled", err)
	}
	if n := *f.server.Health(so.UID)["s0-metric-api-a"].NumberOfFailures; n != 1 {
		t.Errorf("failures after a cancelled call = %d, want still 1", n)
	}
}

func TestFallback(t *testing.T) {
	type step struct {
		fail     bool
		wantCode codes.Code
		want     string // value when OK
	}
	errStep := step{fail: true, wantCode: codes.Unavailable}
	okStep := step{want: "2"}
	tests := map[string]struct {
		target   string
		mt       autoscalingv2.MetricTargetType
		fallback *v1alpha1.Fallback
		replicas ReplicasFunc
		steps    []step
	}{
		"no fallback configured": {
			target: "0.75",
			steps:  []step{errStep, errStep, errStep, errStep, errStep},
		},
		"average value, after threshold, reset by success": {
			target: "0.75", fallback: &v1alpha1.Fallback{FailureThreshold: 2, Replicas: 4},
			steps: []step{
				errStep, errStep,
				{fail: true, want: "3"}, {fail: true, want: "3"},
				okStep,
				errStep, errStep, {fail: true, want: "3"},
			},
		},
		"threshold zero falls back at once": {
			target: "10", fallback: &v1alpha1.Fallback{FailureThreshold: 0, Replicas: 3},
			steps: []step{{fail: true, want: "30"}},
		},
		"value target divides by ready replicas": {
			target: "10", mt: autoscalingv2.ValueMetricType,
			fallback: &v1alpha1.Fallback{FailureThreshold: 1, Replicas: 4},
			replicas: func(context.Context, *v1alpha1.ScaledObject) (int32, int32, error) { return 5, 3, nil },
			steps:    []step{errStep, {fail: true, want: "13333m"}},
		},
		"value target without replica counts": {
			target: "10", mt: autoscalingv2.ValueMetricType,
			fallback: &v1alpha1.Fallback{FailureThreshold: 0, Replicas: 4},
			steps:    []step{errStep},
		},
		"value target with no ready replicas": {
			target: "10", mt: autoscalingv2.ValueMetricType,
			fallback: &v1alpha1.Fallback{FailureThreshold: 0, Replicas: 4},
			replicas: func(context.Context, *v1alpha1.ScaledObject) (int32, int32, error) { return 0, 0, nil },
			steps:    []step{errStep},
		},
		"current replicas if higher": {
			target: "2", fallback: &v1alpha1.Fallback{FailureThreshold: 0, Replicas: 4, Behavior: v1alpha1.FallbackBehaviorCurrentReplicasIfHigher},
			replicas: func(context.Context, *v1alpha1.ScaledObject) (int32, int32, error) { return 7, 7, nil },
			steps:    []step{{fail: true, want: "14"}},
		},
		"current replicas if lower": {
			target: "2", fallback: &v1alpha1.Fallback{FailureThreshold: 0, Replicas: 4, Behavior: v1alpha1.FallbackBehaviorCurrentReplicasIfLower},
			replicas: func(context.Context, *v1alpha1.ScaledObject) (int32, int32, error) { return 7, 7, nil },
			steps:    []step{{fail: true, want: "8"}},
		},
		"current replicas, unreadable": {
			target: "2", fallback: &v1alpha1.Fallback{FailureThreshold: 0, Replicas: 4, Behavior: v1alpha1.FallbackBehaviorCurrentReplicas},
			replicas: func(context.Context, *v1alpha1.ScaledObject) (int32, int32, error) {
				return 0, 0, errors.New("no informer")
			},
			steps: []step{errStep},
		},
		"scaling modifiers behavior": {
			target: "2", fallback: &v1alpha1.Fallback{FailureThreshold: 0, Replicas: 4, Behavior: v1alpha1.FallbackBehaviorScalingModifiers},
			steps: []step{errStep},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var opts []Option
			if tc.replicas != nil {
				opts = append(opts, WithReplicas(tc.replicas))
			}
			f := newFixture(t, opts...)
			so := f.addSO(t, func(so *v1alpha1.ScaledObject) { so.Spec.Fallback = tc.fallback }, trigger("a", tc.target, tc.mt))
			s := f.scaler(t, "a")
			var wantFailures int32
			for i, st := range tc.steps {
				if st.fail {
					s.set(fail(scaler.ErrUnreachable))
					wantFailures++
				} else {
					s.set(value("2"))
					wantFailures = 0
				}
				resp, err := f.server.GetMetrics(context.Background(), request("s0-metric-api-a"))
				if got := status.Code(err); got != st.wantCode {
					t.Fatalf("step %d: code = %v (%v), want %v", i, got, err, st.wantCode)
				}
				if err == nil {
					if got := resp.GetValues()[0].GetValue().GetValue(); got != st.want {
						t.Fatalf("step %d: value = %q, want %q", i, got, st.want)
					}
				}
				h := f.server.Health(so.UID)["s0-metric-api-a"]
				wantStatus := v1alpha1.HealthStatusHappy
				if wantFailures > 0 {
					wantStatus = v1alpha1.HealthStatusFailing
				}
				if *h.NumberOfFailures != wantFailures || h.Status != wantStatus {
					t.Fatalf("step %d: health = %d %s, want %d %s", i, *h.NumberOfFailures, h.Status, wantFailures, wantStatus)
				}
			}
			f.server.Forget(so.UID)
			if h := f.server.Health(so.UID); h != nil {
				t.Errorf("health after Forget = %v", h)
			}
		})
	}
}

func TestConcurrentGetMetrics(t *testing.T) {
	f := newFixture(t)
	so := f.addSO(t, func(so *v1alpha1.ScaledObject) {
		so.Spec.Fallback = &v1alpha1.Fallback{FailureThreshold: 3, Replicas: 2}
	}, trigger("ok", "1", ""), trigger("bad", "1", ""))
	f.scaler(t, "bad").set(fail(scaler.ErrUnreachable))

	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			metric := "s0-metric-api-ok"
			if i%2 == 1 {
				metric = "s1-metric-api-bad"
			}
			resp, err := f.server.GetMetrics(context.Background(), request(metric))
			if metric == "s0-metric-api-ok" && (err != nil || resp.GetValues()[0].GetValue().GetValue() != "1") {
				t.Errorf("ok metric: %v, %v", resp, err)
			}
			if metric == "s1-metric-api-bad" && err != nil && status.Code(err) != codes.Unavailable {
				t.Errorf("bad metric: %v", err)
			}
			_ = f.server.Health(so.UID)
		}()
	}
	wg.Wait()
	h := f.server.Health(so.UID)
	if n := *h["s1-metric-api-bad"].NumberOfFailures; n != 20 {
		t.Errorf("failures = %d, want 20", n)
	}
	if n := *h["s0-metric-api-ok"].NumberOfFailures; n != 0 {
		t.Errorf("ok failures = %d, want 0", n)
	}
}

func TestRegisterMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	f.addSO(t, nil, trigger("a", "5", ""))
	before := testutil.ToFloat64(requests.WithLabelValues(codes.NotFound.String()))
	errsBefore := testutil.ToFloat64(scalerErrors.WithLabelValues("metrics-api"))
	_, _ = f.server.GetMetrics(context.Background(), request("s5-missing"))
	f.scaler(t, "a").set(fail(scaler.ErrUnreachable))
	_, _ = f.server.GetMetrics(context.Background(), request("s0-metric-api-a"))
	if d := testutil.ToFloat64(requests.WithLabelValues(codes.NotFound.String())) - before; d != 1 {
		t.Errorf("NotFound requests grew by %v, want 1", d)
	}
	if d := testutil.ToFloat64(scalerErrors.WithLabelValues("metrics-api")) - errsBefore; d != 1 {
		t.Errorf("scaler errors grew by %v, want 1", d)
	}
	for _, name := range []string{
		"ebb_metrics_service_request_duration_seconds",
		"ebb_metrics_service_scaled_objects_in_fallback",
		"ebb_metrics_service_cached_reads_total",
	} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 1 {
			t.Errorf("%s: %d series, %v", name, n, err)
		}
	}
}

// TestValidateSelectorFastPath: validate answers the selectors it does
// not parse (see selectsOnlyByName) as it answers them by parsing.
func TestValidateSelectorFastPath(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := map[string]struct {
		name, selector string
		fast           bool
	}{
		"empty":                 {name: "so", selector: "", fast: true},
		"the HPA's selector":    {name: "so", selector: v1alpha1.ScaledObjectNameLabel + "=so", fast: true},
		"dots and dashes":       {name: "a.b-c_d", selector: v1alpha1.ScaledObjectNameLabel + "=a.b-c_d", fast: true},
		"63 characters":         {name: long[:63], selector: v1alpha1.ScaledObjectNameLabel + "=" + long[:63], fast: true},
		"64 characters":         {name: long, selector: v1alpha1.ScaledObjectNameLabel + "=" + long},
		"another name":          {name: "so", selector: v1alpha1.ScaledObjectNameLabel + "=other"},
		"a prefix of the name":  {name: "so", selector: v1alpha1.ScaledObjectNameLabel + "=s"},
		"double equals":         {name: "so", selector: v1alpha1.ScaledObjectNameLabel + "==so"},
		"spaces":                {name: "so", selector: v1alpha1.ScaledObjectNameLabel + " = so"},
		"another label too":     {name: "so", selector: v1alpha1.ScaledObjectNameLabel + "=so,team=a"},
		"not a label value":     {name: "a b", selector: v1alpha1.ScaledObjectNameLabel + "=a b"},
		"ends with a dash":      {name: "so-", selector: v1alpha1.ScaledObjectNameLabel + "=so-"},
		"another key":           {name: "so", selector: "app=so"},
		"set-based":             {name: "so", selector: v1alpha1.ScaledObjectNameLabel + " in (so)"},
		"does not parse":        {name: "so", selector: v1alpha1.ScaledObjectNameLabel + " in ("},
		"key prefix only":       {name: "so", selector: v1alpha1.ScaledObjectNameLabel},
		"key with equals, none": {name: "so", selector: v1alpha1.ScaledObjectNameLabel + "="},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := selectsOnlyByName(tc.selector, tc.name); got != tc.fast {
				t.Errorf("selectsOnlyByName(%q, %q) = %v, want %v", tc.selector, tc.name, got, tc.fast)
			}
			req := &metricsv1.GetMetricsRequest{Namespace: "ns", ScaledObjectName: tc.name, MetricName: "s0-x", LabelSelector: tc.selector}
			if got, want := status.Code(validate(req)), status.Code(parsedValidate(req)); got != want {
				t.Errorf("validate = %v, by parsing %v", got, want)
			}
		})
	}
}

// parsedValidate is validate's check of the selector, always by parsing.
func parsedValidate(req *metricsv1.GetMetricsRequest) error {
	sel, err := labels.Parse(req.GetLabelSelector())
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	reqs, _ := sel.Requirements()
	for _, r := range reqs {
		if r.Key() == v1alpha1.ScaledObjectNameLabel && !r.Matches(labels.Set{v1alpha1.ScaledObjectNameLabel: req.GetScaledObjectName()}) {
			return status.Error(codes.InvalidArgument, "does not select")
		}
	}
	return nil
}
