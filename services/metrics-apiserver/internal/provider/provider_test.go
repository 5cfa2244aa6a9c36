package provider

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/metrics/pkg/apis/external_metrics"
	clocktesting "k8s.io/utils/clock/testing"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/ebb-autoscaler/ebb/pkg/rpc/metricsv1"
)

// fakeClient answers with resp/err and records the request.
type fakeClient struct {
	resp     *metricsv1.GetMetricsResponse
	err      error
	got      *metricsv1.GetMetricsRequest
	deadline time.Duration
	calls    int
}

func (f *fakeClient) GetMetrics(ctx context.Context, req *metricsv1.GetMetricsRequest) (*metricsv1.GetMetricsResponse, error) {
	f.calls++
	f.got = req
	if d, ok := ctx.Deadline(); ok {
		f.deadline = time.Until(d)
	}
	return f.resp, f.err
}

// fakeDelegate answers every request with one value of 7.
type fakeDelegate struct{ calls int }

func (d *fakeDelegate) GetExternalMetric(_ context.Context, _ string, _ labels.Selector, metricName string) (*external_metrics.ExternalMetricValueList, error) {
	d.calls++
	return &external_metrics.ExternalMetricValueList{Items: []external_metrics.ExternalMetricValue{{MetricName: metricName, Value: resource.MustParse("7")}}}, nil
}

func (d *fakeDelegate) ListAllExternalMetrics() []cmprovider.ExternalMetricInfo {
	return []cmprovider.ExternalMetricInfo{{Metric: "queue_depth"}}
}

var observed = time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC)

func value(v string) *metricsv1.MetricValue {
	return &metricsv1.MetricValue{MetricName: "s0-redis-orders", Timestamp: timestamppb.New(observed), Value: &metricsv1.Quantity{Value: v}}
}

func TestGetExternalMetric(t *testing.T) {
	tests := map[string]struct {
		selector     string
		metric       string
		resp         *metricsv1.GetMetricsResponse
		err          error
		delegate     bool
		wantCode     int32 // 0: success
		wantMessage  string
		wantValues   []string
		wantWindow   *int64
		wantDelegate bool
		wantNoCall   bool
	}{
		"value passed through exactly": {
			selector:   "scaledobject.keda.sh/name=orders",
			resp:       &metricsv1.GetMetricsResponse{Values: []*metricsv1.MetricValue{value("12500m")}},
			wantValues: []string{"12500m"},
		},
		"a value beyond the SI suffixes keeps its exponent": {
			selector:   "scaledobject.keda.sh/name=orders",
			resp:       &metricsv1.GetMetricsResponse{Values: []*metricsv1.MetricValue{value("1e21")}},
			wantValues: []string{"1e21"},
		},
		"set-based selector with one value": {
			selector:   "scaledobject.keda.sh/name in (orders),team=a",
			resp:       &metricsv1.GetMetricsResponse{Values: []*metricsv1.MetricValue{value("3")}},
			wantValues: []string{"3"},
		},
		"window rounded up to whole seconds": {
			selector: "scaledobject.keda.sh/name=orders",
			resp: &metricsv1.GetMetricsResponse{Values: []*metricsv1.MetricValue{{
				Timestamp: timestamppb.New(observed), Window: durationpb.New(1500 * time.Millisecond), Value: &metricsv1.Quantity{Value: "1"},
			}}},
			wantValues: []string{"1"},
			wantWindow: ptr(int64(2)),
		},
		"no selector label": {
			selector: "app=orders", wantCode: http.StatusBadRequest,
			wantMessage: "names no ScaledObject", wantNoCall: true,
		},
		"empty selector": {
			selector: "", wantCode: http.StatusBadRequest,
			wantMessage: "names no ScaledObject", wantNoCall: true,
		},
		"selector naming two ScaledObjects": {
			selector: "scaledobject.keda.sh/name in (a,b)", wantCode: http.StatusBadRequest,
			wantMessage: "must name one ScaledObject", wantNoCall: true,
		},
		"selector excluding a ScaledObject": {
			selector: "scaledobject.keda.sh/name!=a", wantCode: http.StatusBadRequest,
			wantMessage: "must name one ScaledObject", wantNoCall: true,
		},
		"not found": {
			selector: "scaledobject.keda.sh/name=orders",
			err:      status.Error(codes.NotFound, "ScaledObject ns/orders not found"),
			wantCode: http.StatusNotFound, wantMessage: "ScaledObject ns/orders not found",
		},
		"invalid argument": {
			selector: "scaledobject.keda.sh/name=orders",
			err:      status.Error(codes.InvalidArgument, "metric_name is required"),
			wantCode: http.StatusBadRequest, wantMessage: "metric_name is required",
		},
		"operator link down": {
			selector: "scaledobject.keda.sh/name=orders",
			err:      status.Error(codes.Unavailable, "operator link down: connection refused"),
			wantCode: http.StatusServiceUnavailable, wantMessage: "operator link down: connection refused",
		},
		"operator not ready": {
			selector: "scaledobject.keda.sh/name=orders",
			err:      status.Error(codes.Unavailable, "caches not synced"),
			wantCode: http.StatusServiceUnavailable, wantMessage: "the operator cannot answer: caches not synced",
		},
		"deadline": {
			selector: "scaledobject.keda.sh/name=orders",
			err:      status.Error(codes.DeadlineExceeded, "context deadline exceeded"),
			wantCode: http.StatusGatewayTimeout, wantMessage: "did not answer in time",
		},
		"operator failure": {
			selector: "scaledobject.keda.sh/name=orders",
			err:      status.Error(codes.Internal, "boom"),
			wantCode: http.StatusInternalServerError, wantMessage: "boom",
		},
		"empty answer": {
			selector: "scaledobject.keda.sh/name=orders",
			resp:     &metricsv1.GetMetricsResponse{},
			wantCode: http.StatusInternalServerError, wantMessage: "no value",
		},
		"unparseable value": {
			selector: "scaledobject.keda.sh/name=orders",
			resp:     &metricsv1.GetMetricsResponse{Values: []*metricsv1.MetricValue{value("m")}},
			wantCode: http.StatusInternalServerError, wantMessage: "value 0",
		},
		"delegate: no selector label": {
			selector: "app=orders", metric: "queue_depth", delegate: true,
			wantValues: []string{"7"}, wantDelegate: true, wantNoCall: true,
		},
		"delegate: not an ebb metric name": {
			selector: "scaledobject.keda.sh/name=orders", metric: "queue_depth", delegate: true,
			wantValues: []string{"7"}, wantDelegate: true, wantNoCall: true,
		},
		"delegate: ebb's metric stays with the operator": {
			selector: "scaledobject.keda.sh/name=orders", delegate: true,
			resp:       &metricsv1.GetMetricsResponse{Values: []*metricsv1.MetricValue{value("5")}},
			wantValues: []string{"5"},
		},
		"delegate: a malformed ebb selector is not forwarded": {
			selector: "scaledobject.keda.sh/name in (a,b)", delegate: true,
			wantCode: http.StatusBadRequest, wantMessage: "must name one ScaledObject", wantNoCall: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sel, err := labels.Parse(tc.selector)
			if err != nil {
				t.Fatal(err)
			}
			metric := tc.metric
			if metric == "" {
				metric = "s0-redis-orders"
			}
			client := &fakeClient{resp: tc.resp, err: tc.err}
			d := &fakeDelegate{}
			opts := []Option{WithClock(clocktesting.NewFakePassiveClock(observed)), WithRequestTimeout(3 * time.Second)}
			if tc.delegate {
				opts = append(opts, WithDelegate(d))
			}
			p := New(client, opts...)

			list, err := p.GetExternalMetric(context.Background(), "ns", sel, cmprovider.ExternalMetricInfo{Metric: metric})

			if tc.wantNoCall != (client.calls == 0) {
				t.Errorf("operator calls = %d, want none: %v", client.calls, tc.wantNoCall)
			}
			if tc.wantDelegate != (d.calls > 0) {
				t.Errorf("delegate calls = %d, want some: %v", d.calls, tc.wantDelegate)
			}
			if tc.wantCode != 0 {
				var st apierrors.APIStatus
				if err == nil || !asAPIStatus(err, &st) {
					t.Fatalf("error = %v, want an API status %d", err, tc.wantCode)
				}
				if got := st.Status().Code; got != tc.wantCode {
					t.Errorf("code = %d, want %d (%v)", got, tc.wantCode, err)
				}
				if !strings.Contains(st.Status().Message, tc.wantMessage) {
					t.Errorf("message = %q, want it to contain %q", st.Status().Message, tc.wantMessage)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetExternalMetric: %v", err)
			}
			var got []string
			for _, it := range list.Items {
				got = append(got, it.Value.String())
				if it.MetricName != metric {
					t.Errorf("metric name = %q, want %q", it.MetricName, metric)
				}
				if !tc.wantDelegate && !it.Timestamp.Time.Equal(observed) {
					t.Errorf("timestamp = %v, want %v", it.Timestamp, observed)
				}
				if tc.wantWindow != nil && (it.WindowSeconds == nil || *it.WindowSeconds != *tc.wantWindow) {
					t.Errorf("window = %v, want %d", it.WindowSeconds, *tc.wantWindow)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.wantValues, ",") {
				t.Errorf("values = %v, want %v", got, tc.wantValues)
			}
			if !tc.wantNoCall {
				want := &metricsv1.GetMetricsRequest{Namespace: "ns", ScaledObjectName: "orders", MetricName: metric, LabelSelector: sel.String()}
				if client.got.String() != want.String() {
					t.Errorf("request = %v, want %v", client.got, want)
				}
				if client.deadline <= 0 || client.deadline > 3*time.Second {
					t.Errorf("deadline in %v, want within the 3s request timeout", client.deadline)
				}
			}
		})
	}
}

func TestExactQuantities(t *testing.T) {
	// Every value comes out equal to what the operator sent.
	for _, v := range []string{"0", "1", "-3", "750m", "1Ki", "123456789012345", "1n", "999999999999999999999m", "1e30"} {
		q := resource.MustParse(v)
		client := &fakeClient{resp: &metricsv1.GetMetricsResponse{Values: []*metricsv1.MetricValue{{
			Timestamp: timestamppb.New(observed), Value: metricsv1.QuantityToProto(q),
		}}}}
		list, err := New(client).GetExternalMetric(context.Background(), "ns", labels.SelectorFromSet(labels.Set{"scaledobject.keda.sh/name": "a"}), cmprovider.ExternalMetricInfo{Metric: "s0-x"})
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if got := list.Items[0].Value; got.Cmp(q) != 0 {
			t.Errorf("%s: got %s", v, got.String())
		}
	}
}

func TestListAllExternalMetrics(t *testing.T) {
	if got := New(&fakeClient{}).ListAllExternalMetrics(); len(got) != 0 {
		t.Errorf("without a delegate: %v, want none", got)
	}
	if got := New(&fakeClient{}, WithDelegate(&fakeDelegate{})).ListAllExternalMetrics(); len(got) != 1 || got[0].Metric != "queue_depth" {
		t.Errorf("with a delegate: %v, want the delegate's", got)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	requests.Reset()
	p := New(&fakeClient{err: status.Error(codes.Unavailable, "operator link down")})
	sel := labels.SelectorFromSet(labels.Set{"scaledobject.keda.sh/name": "a"})
	for range 2 {
		_, _ = p.GetExternalMetric(context.Background(), "ns", sel, cmprovider.ExternalMetricInfo{Metric: "s0-x"})
	}
	if got := testutil.ToFloat64(requests.WithLabelValues("operator", "503")); got != 2 {
		t.Errorf("requests{operator,503} = %v, want 2", got)
	}
}

func asAPIStatus(err error, st *apierrors.APIStatus) bool {
	s, ok := err.(apierrors.APIStatus)
	if ok {
		*st = s
	}
	return ok
}

func ptr[T any](v T) *T { return &v }
