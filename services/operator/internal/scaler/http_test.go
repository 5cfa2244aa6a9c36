package scaler

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// recorder is an HTTP server answering a fixed status and body and
// remembering the last request.
type recorder struct {
	mu     sync.Mutex
	last   *http.Request
	status int
	body   string
	ctype  string
	delay  time.Duration
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.last = r.Clone(r.Context())
	status, body, ctype, delay := rec.status, rec.body, rec.ctype, rec.delay
	rec.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if ctype != "" {
		w.Header().Set("Content-Type", ctype)
	}
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = fmt.Fprint(w, body)
}

func (rec *recorder) request() *http.Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.last
}

func newRecorder(t *testing.T, status int, body string) (*recorder, *httptest.Server) {
	rec := &recorder{status: status, body: body}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return rec, srv
}

// closedAddress is a loopback address nothing listens on.
func closedAddress(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestMetricsAPIPoll(t *testing.T) {
	const promText = `# HELP queue_depth Items waiting.
# TYPE queue_depth gauge
queue_depth{queue="a"} 3
queue_depth{queue="b"} 12
other 1`
	tests := map[string]struct {
		meta       map[string]string
		status     int
		body       string
		wantValue  string
		wantActive bool
		wantErr    error
	}{
		"json integer": {
			meta: map[string]string{"valueLocation": "components.worker.tasks"},
			body: `{"components":{"worker":{"tasks":12}}}`, wantValue: "12", wantActive: true,
		},
		"json big integer stays exact": {
			meta: map[string]string{"valueLocation": "n"},
			body: `{"n":9007199254740993}`, wantValue: "9007199254740993", wantActive: true,
		},
		"json float": {
			meta: map[string]string{"valueLocation": "v"},
			body: `{"v":0.25}`, wantValue: "250m", wantActive: true,
		},
		"json quantity string": {
			meta: map[string]string{"valueLocation": "v"},
			body: `{"v":"1500m"}`, wantValue: "1500m", wantActive: true,
		},
		"json gjson array index": {
			meta: map[string]string{"valueLocation": "items.1.count"},
			body: `{"items":[{"count":1},{"count":4}]}`, wantValue: "4", wantActive: true,
		},
		"json gjson query": {
			meta: map[string]string{"valueLocation": `queues.#(name=="b").depth`},
			body: `{"queues":[{"name":"a","depth":1},{"name":"b","depth":9}]}`, wantValue: "9", wantActive: true,
		},
		"json zero is inactive": {
			meta: map[string]string{"valueLocation": "v"},
			body: `{"v":0}`, wantValue: "0", wantActive: false,
		},
		"json at activation is inactive": {
			meta: map[string]string{"valueLocation": "v", "activationTargetValue": "5"},
			body: `{"v":5}`, wantValue: "5", wantActive: false,
		},
		"json above activation is active": {
			meta: map[string]string{"valueLocation": "v", "activationTargetValue": "5"},
			body: `{"v":5.5}`, wantValue: "5500m", wantActive: true,
		},
		"yaml": {
			meta: map[string]string{"valueLocation": "components.worker.tasks", "format": "yaml"},
			body: "components:\n  worker:\n    tasks: 7\n", wantValue: "7", wantActive: true,
		},
		"yaml quantity": {
			meta: map[string]string{"valueLocation": "a.b", "format": "yaml"},
			body: "a:\n  b: 2k\n", wantValue: "2k", wantActive: true,
		},
		"xml with root": {
			meta: map[string]string{"valueLocation": "components.worker.tasks", "format": "xml"},
			body: `<?xml version="1.0"?><components><worker><tasks>8</tasks></worker></components>`, wantValue: "8", wantActive: true,
		},
		"xml below root": {
			meta: map[string]string{"valueLocation": "worker.tasks", "format": "xml"},
			body: `<components><worker><tasks> 9 </tasks></worker></components>`, wantValue: "9", wantActive: true,
		},
		"prometheus text with labels": {
			meta: map[string]string{"valueLocation": `queue_depth{queue="b"}`, "format": "prometheus"},
			body: promText, wantValue: "12", wantActive: true,
		},
		"prometheus text by name": {
			meta: map[string]string{"valueLocation": "other", "format": "prometheus"},
			body: promText, wantValue: "1", wantActive: true,
		},
		"prometheus text, no such sample": {
			meta: map[string]string{"valueLocation": `queue_depth{queue="z"}`, "format": "prometheus"},
			body: promText, wantErr: ErrBadResponse,
		},
		"http 500": {
			meta:   map[string]string{"valueLocation": "v"},
			status: 500, body: "boom", wantErr: ErrBadResponse,
		},
		"http 404": {
			meta:   map[string]string{"valueLocation": "v"},
			status: 404, wantErr: ErrBadResponse,
		},
		"bad json": {
			meta: map[string]string{"valueLocation": "v"},
			body: `{"v":`, wantErr: ErrBadResponse,
		},
		"missing value": {
			meta: map[string]string{"valueLocation": "w"},
			body: `{"v":1}`, wantErr: ErrBadResponse,
		},
		"value is an array": {
			meta: map[string]string{"valueLocation": "v"},
			body: `{"v":[1,2]}`, wantErr: ErrBadResponse,
		},
		"value is not a quantity": {
			meta: map[string]string{"valueLocation": "v"},
			body: `{"v":"lots"}`, wantErr: ErrBadResponse,
		},
		"bad yaml": {
			meta: map[string]string{"valueLocation": "v", "format": "yaml"},
			body: "v: [", wantErr: ErrBadResponse,
		},
		"bad xml": {
			meta: map[string]string{"valueLocation": "v", "format": "xml"},
			body: "<v>1", wantErr: ErrBadResponse,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, srv := newRecorder(t, tc.status, tc.body)
			meta := map[string]string{"url": srv.URL + "/stats", "targetValue": "10"}
			for k, v := range tc.meta {
				meta[k] = v
			}
			s := build(t, "metrics-api", meta, nil, Deps{})
			r, err := s.Poll(t.Context())
			checkKind(t, err, tc.wantErr)
			if tc.wantErr != nil {
				if !strings.Contains(err.Error(), "metrics-api trigger ("+srv.URL+"/stats)") {
					t.Errorf("error %q does not name the trigger type and source", err)
				}
				return
			}
			if got := r.Value.String(); got != tc.wantValue || r.Active != tc.wantActive {
				t.Errorf("got value=%s active=%v, want value=%s active=%v", got, r.Active, tc.wantValue, tc.wantActive)
			}
		})
	}
}

func TestMetricsAPIAuth(t *testing.T) {
	tests := map[string]struct {
		meta  map[string]string
		auth  map[string]string
		check func(t *testing.T, r *http.Request)
	}{
		"apiKey header default name": {
			meta: map[string]string{"authMode": "apiKey"}, auth: map[string]string{"apiKey": "k3y"},
			check: func(t *testing.T, r *http.Request) {
				if got := r.Header.Get("X-API-KEY"); got != "k3y" {
					t.Errorf("X-API-KEY = %q", got)
				}
			},
		},
		"apiKey header custom name": {
			meta: map[string]string{"authMode": "apiKey", "keyParamName": "X-Token"}, auth: map[string]string{"apiKey": "k3y"},
			check: func(t *testing.T, r *http.Request) {
				if got := r.Header.Get("X-Token"); got != "k3y" {
					t.Errorf("X-Token = %q", got)
				}
			},
		},
		"apiKey query default name, existing query kept": {
			meta: map[string]string{"authMode": "apiKey", "method": "query"}, auth: map[string]string{"apiKey": "k3y"},
			check: func(t *testing.T, r *http.Request) {
				if got := r.URL.Query().Get("api_key"); got != "k3y" {
					t.Errorf("api_key = %q", got)
				}
				if got := r.URL.Query().Get("scope"); got != "all" {
					t.Errorf("scope = %q", got)
				}
			},
		},
		"basic": {
			meta: map[string]string{"authMode": "basic"}, auth: map[string]string{"username": "u", "password": "p4ss"},
			check: func(t *testing.T, r *http.Request) {
				if u, p, ok := r.BasicAuth(); !ok || u != "u" || p != "p4ss" {
					t.Errorf("basic auth = %q %q %v", u, p, ok)
				}
			},
		},
		"bearer": {
			meta: map[string]string{"authModes": "bearer"}, auth: map[string]string{"bearerToken": "t0k"},
			check: func(t *testing.T, r *http.Request) {
				if got := r.Header.Get("Authorization"); got != "Bearer t0k" {
					t.Errorf("Authorization = %q", got)
				}
			},
		},
		"custom header": {
			meta: map[string]string{"authModes": "custom"}, auth: map[string]string{"customAuthHeader": "X-Secret", "customAuthValue": "v4l"},
			check: func(t *testing.T, r *http.Request) {
				if got := r.Header.Get("X-Secret"); got != "v4l" {
					t.Errorf("X-Secret = %q", got)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rec, srv := newRecorder(t, 200, `{"v":1}`)
			meta := map[string]string{"url": srv.URL + "/stats?scope=all", "targetValue": "10", "valueLocation": "v"}
			for k, v := range tc.meta {
				meta[k] = v
			}
			s := build(t, "metrics-api", meta, tc.auth, Deps{})
			if _, err := s.Poll(t.Context()); err != nil {
				t.Fatal(err)
			}
			r := rec.request()
			if r.Method != http.MethodGet {
				t.Errorf("method %s, want GET", r.Method)
			}
			tc.check(t, r)
		})
	}
}

func TestHTTPUnreachableAndTimeout(t *testing.T) {
	slow := &recorder{body: `{"v":1}`, delay: 2 * time.Second}
	slowSrv := httptest.NewServer(slow)
	t.Cleanup(slowSrv.Close)
	dead := "http://" + closedAddress(t)

	tests := map[string]struct {
		typ  string
		meta map[string]string
		deps Deps
		want error
	}{
		"metrics-api unreachable": {
			typ: "metrics-api", meta: map[string]string{"url": dead + "/stats", "valueLocation": "v", "targetValue": "1"}, want: ErrUnreachable,
		},
		"metrics-api timeout (global HTTP timeout)": {
			typ: "metrics-api", meta: map[string]string{"url": slowSrv.URL, "valueLocation": "v", "targetValue": "1"},
			deps: Deps{HTTPClient: &http.Client{Timeout: 100 * time.Millisecond}}, want: ErrTimeout,
		},
		"prometheus unreachable": {
			typ: "prometheus", meta: map[string]string{"serverAddress": dead, "query": "up", "threshold": "1"}, want: ErrUnreachable,
		},
		"prometheus timeout (timeout metadata)": {
			typ: "prometheus", meta: map[string]string{"serverAddress": slowSrv.URL, "query": "up", "threshold": "1", "timeout": "100"}, want: ErrTimeout,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := build(t, tc.typ, tc.meta, nil, tc.deps)
			start := time.Now()
			_, err := s.Poll(t.Context())
			checkKind(t, err, tc.want)
			if !errorsIsUnreachable(err) {
				t.Errorf("%v: want ErrUnreachable too", err)
			}
			if time.Since(start) > time.Second {
				t.Errorf("poll took %s", time.Since(start))
			}
		})
	}
}

func errorsIsUnreachable(err error) bool {
	e, ok := err.(*Error)
	return ok && (e.Kind == ErrUnreachable || e.Kind == ErrTimeout)
}

func TestPrometheusPoll(t *testing.T) {
	vec := func(values ...string) string {
		var parts []string
		for i, v := range values {
			parts = append(parts, fmt.Sprintf(`{"metric":{"i":"%d"},"value":[1700000000.123,%q]}`, i, v))
		}
		return `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(parts, ",") + `]}}`
	}
	tests := map[string]struct {
		meta       map[string]string
		status     int
		body       string
		wantValue  string
		wantActive bool
		wantErr    error
	}{
		"one series":              {body: vec("42"), wantValue: "42", wantActive: true},
		"decimal kept exact":      {body: vec("0.125"), wantValue: "125m", wantActive: true},
		"at activation":           {meta: map[string]string{"activationThreshold": "42"}, body: vec("42"), wantValue: "42", wantActive: false},
		"above activation":        {meta: map[string]string{"activationThreshold": "41.5"}, body: vec("42"), wantValue: "42", wantActive: true},
		"zero":                    {body: vec("0"), wantValue: "0", wantActive: false},
		"empty, ignoreNullValues": {body: vec(), wantValue: "0", wantActive: false},
		"empty, not ignored":      {meta: map[string]string{"ignoreNullValues": "false"}, body: vec(), wantErr: ErrBadResponse},
		"multiple series":         {body: vec("1", "2"), wantErr: ErrBadResponse},
		"+Inf ignored":            {body: vec("+Inf"), wantValue: "0", wantActive: false},
		"+Inf not ignored":        {meta: map[string]string{"ignoreNullValues": "false"}, body: vec("+Inf"), wantErr: ErrBadResponse},
		"scalar":                  {body: `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3"]}}`, wantValue: "3", wantActive: true},
		"matrix refused":          {body: `{"status":"success","data":{"resultType":"matrix","result":[]}}`, wantErr: ErrBadResponse},
		"query error 400":         {status: 400, body: `{"status":"error","errorType":"bad_data","error":"parse error"}`, wantErr: ErrBadResponse},
		"500":                     {status: 500, body: "oops", wantErr: ErrBadResponse},
		"bad json":                {body: "<html>", wantErr: ErrBadResponse},
		"value not a number":      {body: vec("many"), wantErr: ErrBadResponse},
	}
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, srv := newRecorder(t, tc.status, tc.body)
			meta := map[string]string{"serverAddress": srv.URL, "query": "sum(q)", "threshold": "10"}
			for k, v := range tc.meta {
				meta[k] = v
			}
			s := build(t, "prometheus", meta, nil, Deps{Clock: clocktesting.NewFakePassiveClock(now)})
			r, err := s.Poll(t.Context())
			checkKind(t, err, tc.wantErr)
			if tc.wantErr != nil {
				if !strings.Contains(err.Error(), "prometheus trigger ("+srv.URL+")") {
					t.Errorf("error %q does not name the trigger type and source", err)
				}
				return
			}
			if got := r.Value.String(); got != tc.wantValue || r.Active != tc.wantActive {
				t.Errorf("got value=%s active=%v, want value=%s active=%v", got, r.Active, tc.wantValue, tc.wantActive)
			}
		})
	}
}

func TestPrometheusRequest(t *testing.T) {
	rec, srv := newRecorder(t, 200, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	s := build(t, "prometheus", map[string]string{
		"serverAddress":   srv.URL + "/",
		"query":           `sum(rate(http_requests_total{app="a b"}[2m]))`,
		"threshold":       "10",
		"namespace":       "team-a",
		"queryParameters": "dedup=false,partial_response=true",
		"customHeaders":   "X-Scope-OrgID=tenant1",
		"authModes":       "bearer",
	}, map[string]string{"bearerToken": "t0k"}, Deps{Clock: clocktesting.NewFakePassiveClock(now)})
	if _, err := s.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := rec.request()
	if r.URL.Path != "/api/v1/query" {
		t.Errorf("path %q", r.URL.Path)
	}
	want := url.Values{
		"query":            {`sum(rate(http_requests_total{app="a b"}[2m]))`},
		"time":             {"2026-03-02T12:00:00Z"},
		"namespace":        {"team-a"},
		"dedup":            {"false"},
		"partial_response": {"true"},
	}
	if got := r.URL.Query(); got.Encode() != want.Encode() {
		t.Errorf("query %v, want %v", got, want)
	}
	if got := r.Header.Get("X-Scope-OrgID"); got != "tenant1" {
		t.Errorf("X-Scope-OrgID = %q", got)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer t0k" {
		t.Errorf("Authorization = %q", got)
	}
}

func TestPollAfterClose(t *testing.T) {
	_, srv := newRecorder(t, 200, `{"v":1}`)
	s := build(t, "metrics-api", map[string]string{"url": srv.URL, "valueLocation": "v", "targetValue": "1"}, nil, Deps{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Poll(t.Context())
	checkKind(t, err, ErrClosed)
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestNewNotImplemented(t *testing.T) {
	// Without a pod counter in Deps, kubernetes-workload cannot count.
	_, err := tryBuild("kubernetes-workload", map[string]string{"podSelector": "app=x", "value": "1"}, nil, Deps{})
	checkKind(t, err, ErrInvalidConfig)
	if !strings.Contains(err.Error(), "kubernetes-workload") || !strings.Contains(err.Error(), "pod counter") {
		t.Errorf("error %q does not name the type and the missing counter", err)
	}
	_, err = tryBuild("metrics-api", map[string]string{"url": "http://svc.ns:8080/m", "valueLocation": "v", "targetValue": "1", "aggregateFromKubeServiceEndpoints": "true"}, nil, Deps{})
	checkKind(t, err, ErrNotImplemented)
}

func TestHTTPPollTimeout(t *testing.T) {
	api := map[string]string{"url": "http://source.example/stats", "valueLocation": "v", "targetValue": "1"}
	prom := func(timeout string) map[string]string {
		m := map[string]string{"serverAddress": "http://prometheus.example", "query": "up", "threshold": "1"}
		if timeout != "" {
			m["timeout"] = timeout
		}
		return m
	}
	tests := map[string]struct {
		typ  string
		meta map[string]string
		deps Deps
		want time.Duration
	}{
		"metrics-api: the default HTTP timeout":  {typ: "metrics-api", meta: api, want: DefaultHTTPTimeout},
		"metrics-api: the shared client's":       {typ: "metrics-api", meta: api, deps: Deps{HTTPClient: &http.Client{Timeout: time.Second}}, want: time.Second},
		"metrics-api: no timeout at all":         {typ: "metrics-api", meta: api, deps: Deps{HTTPClient: &http.Client{}}, want: 0},
		"prometheus: timeout metadata shorter":   {typ: "prometheus", meta: prom("1500"), want: 1500 * time.Millisecond},
		"prometheus: client's timeout shorter":   {typ: "prometheus", meta: prom("10000"), want: DefaultHTTPTimeout},
		"prometheus: timeout metadata, no other": {typ: "prometheus", meta: prom("7000"), deps: Deps{HTTPClient: &http.Client{}}, want: 7 * time.Second},
		"prometheus: no timeout metadata":        {typ: "prometheus", meta: prom(""), want: DefaultHTTPTimeout},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := build(t, tc.typ, tc.meta, nil, tc.deps)
			ts, ok := s.(TimeoutSource)
			if !ok {
				t.Fatalf("%T is not a TimeoutSource", s)
			}
			if got := ts.PollTimeout(); got != tc.want {
				t.Errorf("PollTimeout() = %s, want %s", got, tc.want)
			}
		})
	}
}
