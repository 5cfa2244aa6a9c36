package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2/ktesting"
)

var scaledObjects = schema.GroupResource{Group: "keda.sh", Resource: "scaledobjects"}

// review returns an AdmissionReview for a ScaledObject.
func review(op admissionv1.Operation, object string) admissionv1.AdmissionReview {
	var raw []byte
	if object != "" {
		raw = []byte(object)
	}
	return admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID("0a1b2c"),
			Kind:      metav1.GroupVersionKind{Group: "keda.sh", Version: "v1alpha1", Kind: "ScaledObject"},
			Resource:  metav1.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledobjects"},
			Namespace: "team-a",
			Name:      "web",
			Operation: op,
			Object:    runtime.RawExtension{Raw: raw},
		},
	}
}

func encode(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type call struct {
	method      string
	contentType string
	body        string
}

func TestHandler(t *testing.T) {
	denial := &Denial{Kind: "ScaledObject", Name: "web", Problems: []Problem{
		{Field: "spec.triggers", Message: "at least one trigger is required"},
		{Field: "spec.minReplicaCount", Message: "5 is greater than maxReplicaCount 3"},
	}}
	okReview := encode(t, review(admissionv1.Create, `{"metadata":{"name":"web"}}`))

	tests := map[string]struct {
		call      call
		validator ValidatorFunc
		// wantHTTP is the HTTP status; 200 means an AdmissionReview.
		wantHTTP     int
		wantBody     string // substring of a plain-text answer
		wantAllowed  bool
		wantCode     int32
		wantMessage  string // substring of the response's message
		wantWarnings []string
		wantCalled   bool
		wantResult   string
		wantOp       string
	}{
		"allowed with warnings": {
			call: call{body: okReview},
			validator: func(context.Context, *admissionv1.AdmissionRequest) ([]string, error) {
				return []string{"spec.scaleTargetRef: Deployment team-a/web does not exist yet"}, nil
			},
			wantHTTP: 200, wantAllowed: true, wantCalled: true,
			wantWarnings: []string{"spec.scaleTargetRef: Deployment team-a/web does not exist yet"},
			wantResult:   resultAllowed, wantOp: "CREATE",
		},
		"denied lists every problem": {
			call: call{body: okReview},
			validator: func(context.Context, *admissionv1.AdmissionRequest) ([]string, error) {
				return []string{"a warning"}, denial
			},
			wantHTTP: 200, wantCode: 422, wantCalled: true,
			wantMessage:  `ScaledObject "web" is invalid: spec.triggers: at least one trigger is required; spec.minReplicaCount: 5 is greater than maxReplicaCount 3`,
			wantWarnings: []string{"a warning"},
			wantResult:   resultDenied, wantOp: "CREATE",
		},
		"object that does not decode": {
			call: call{body: okReview},
			validator: func(context.Context, *admissionv1.AdmissionRequest) ([]string, error) {
				return nil, &BadObjectError{What: "the object", Err: errors.New("json: cannot unmarshal string")}
			},
			wantHTTP: 200, wantCode: 400, wantCalled: true,
			wantMessage: "the object in the AdmissionReview cannot be decoded",
			wantResult:  resultBadRequest, wantOp: "CREATE",
		},
		"cluster read failed": {
			call: call{body: okReview},
			validator: func(context.Context, *admissionv1.AdmissionRequest) ([]string, error) {
				return nil, errors.New("listing HorizontalPodAutoscalers: connection refused")
			},
			wantHTTP: 200, wantCode: 500, wantCalled: true,
			wantMessage: `could not validate ScaledObject "web", try again: listing HorizontalPodAutoscalers: connection refused`,
			wantResult:  resultError, wantOp: "CREATE",
		},
		"validator panic is an internal error": {
			call: call{body: okReview},
			validator: func(context.Context, *admissionv1.AdmissionRequest) ([]string, error) {
				panic("boom")
			},
			wantHTTP: 200, wantCode: 500, wantCalled: true,
			wantMessage: "bug in ebb's webhook",
			wantResult:  resultError, wantOp: "CREATE",
		},
		"delete is admitted without validation": {
			call:     call{body: encode(t, review(admissionv1.Delete, ""))},
			wantHTTP: 200, wantAllowed: true,
			wantResult: resultAllowed, wantOp: "DELETE",
		},
		"status subresource is admitted without validation": {
			call: call{body: func() string {
				r := review(admissionv1.Update, `{}`)
				r.Request.SubResource = "status"
				return encode(t, r)
			}()},
			wantHTTP: 200, wantAllowed: true,
			wantResult: resultAllowed, wantOp: "UPDATE",
		},
		"request for another resource": {
			call: call{body: func() string {
				r := review(admissionv1.Create, `{}`)
				r.Request.Resource.Resource = "scaledjobs"
				return encode(t, r)
			}()},
			wantHTTP: 200, wantCode: 400,
			wantMessage: "validates scaledobjects.keda.sh, not scaledjobs.keda.sh",
			wantResult:  resultBadRequest, wantOp: "CREATE",
		},
		"GET": {
			call:     call{method: http.MethodGet},
			wantHTTP: 405, wantBody: "admission requests are POSTed", wantResult: resultBadRequest,
		},
		"wrong content type": {
			call:     call{contentType: "text/plain", body: okReview},
			wantHTTP: 415, wantBody: "application/json", wantResult: resultBadRequest,
		},
		"garbage body": {
			call:     call{body: "\x00\x01garbage{"},
			wantHTTP: 400, wantBody: "not a JSON AdmissionReview", wantResult: resultBadRequest,
		},
		"empty body": {
			call:     call{body: ""},
			wantHTTP: 400, wantBody: "not a JSON AdmissionReview", wantResult: resultBadRequest,
		},
		"JSON of the wrong shape": {
			call:     call{body: `{"request": "yes"}`},
			wantHTTP: 400, wantBody: "not a JSON AdmissionReview", wantResult: resultBadRequest,
		},
		"v1beta1 review": {
			call: call{body: func() string {
				r := review(admissionv1.Create, `{}`)
				r.APIVersion = "admission.k8s.io/v1beta1"
				return encode(t, r)
			}()},
			wantHTTP: 400, wantBody: "admissionReviewVersions [v1] only", wantResult: resultBadRequest,
		},
		"no request": {
			call:     call{body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`},
			wantHTTP: 400, wantBody: "has no request", wantResult: resultBadRequest,
		},
		"no uid": {
			call: call{body: func() string {
				r := review(admissionv1.Create, `{}`)
				r.Request.UID = ""
				return encode(t, r)
			}()},
			wantHTTP: 400, wantBody: "has no uid", wantResult: resultBadRequest,
		},
		"body too large": {
			call:     call{body: `{"apiVersion":"` + strings.Repeat("x", MaxRequestBytes) + `"}`},
			wantHTTP: 413, wantBody: "larger than", wantResult: resultBadRequest,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			logger, _ := ktesting.NewTestContext(t)
			called := false
			v := ValidatorFunc(func(ctx context.Context, req *admissionv1.AdmissionRequest) ([]string, error) {
				called = true
				if tc.validator == nil {
					t.Error("the validator must not be called")
					return nil, nil
				}
				return tc.validator(ctx, req)
			})
			m := NewMetrics()
			h := NewHandler([]Route{{Path: ScaledObjectPath, Kind: "ScaledObject", Resource: scaledObjects, Validator: v}}, m, logger)

			c := tc.call
			if c.method == "" {
				c.method = http.MethodPost
			}
			if c.contentType == "" {
				c.contentType = "application/json"
			}
			req := httptest.NewRequest(c.method, ScaledObjectPath+"?timeout=10s", strings.NewReader(c.body))
			req.Header.Set("Content-Type", c.contentType)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != tc.wantHTTP {
				t.Fatalf("HTTP status = %d, want %d; body %q", rec.Code, tc.wantHTTP, rec.Body.String())
			}
			if called != tc.wantCalled {
				t.Errorf("validator called = %v, want %v", called, tc.wantCalled)
			}
			if got := testutil.ToFloat64(m.requests.WithLabelValues("ScaledObject", tc.wantOp, tc.wantResult)); got != 1 {
				t.Errorf("ebb_webhook_admissions_total{operation=%q,result=%q} = %v, want 1", tc.wantOp, tc.wantResult, got)
			}
			if tc.wantHTTP != 200 {
				if !strings.Contains(rec.Body.String(), tc.wantBody) {
					t.Errorf("body = %q, want it to contain %q", rec.Body.String(), tc.wantBody)
				}
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatalf("response is not an AdmissionReview: %v", err)
			}
			if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil {
				t.Fatalf("response = %+v, want an admission.k8s.io/v1 AdmissionReview with a response", out)
			}
			resp := out.Response
			if resp.UID != "0a1b2c" {
				t.Errorf("uid = %q, want the request's 0a1b2c", resp.UID)
			}
			if resp.Allowed != tc.wantAllowed {
				t.Errorf("allowed = %v, want %v (result %+v)", resp.Allowed, tc.wantAllowed, resp.Result)
			}
			if !tc.wantAllowed {
				if resp.Result == nil || resp.Result.Code != tc.wantCode || !strings.Contains(resp.Result.Message, tc.wantMessage) {
					t.Errorf("result = %+v, want code %d and a message containing %q", resp.Result, tc.wantCode, tc.wantMessage)
				}
			}
			if strings.Join(resp.Warnings, "|") != strings.Join(tc.wantWarnings, "|") {
				t.Errorf("warnings = %q, want %q", resp.Warnings, tc.wantWarnings)
			}
		})
	}
}

func TestDenialCauses(t *testing.T) {
	d := Invalid("ScaledObject", "web", []Problem{{Field: "spec.triggers[0].name", Message: `trigger name "a" is used twice`}})
	var denial *Denial
	if !errors.As(d, &denial) {
		t.Fatalf("Invalid = %v, want a *Denial", d)
	}
	st := denial.status("keda.sh")
	if st.Reason != metav1.StatusReasonInvalid || st.Details == nil || len(st.Details.Causes) != 1 ||
		st.Details.Causes[0].Field != "spec.triggers[0].name" || st.Details.Kind != "ScaledObject" {
		t.Errorf("status = %+v, want Invalid with one cause for spec.triggers[0].name", st)
	}
	if Invalid("ScaledObject", "web", nil) != nil {
		t.Error("Invalid without problems must be nil")
	}
}

func TestRequestTimeout(t *testing.T) {
	tests := map[string]struct {
		query string
		want  time.Duration
	}{
		"API server timeout":  {query: "?timeout=3s", want: 3 * time.Second},
		"none":                {query: "", want: DefaultTimeout},
		"garbage":             {query: "?timeout=soon", want: DefaultTimeout},
		"negative":            {query: "?timeout=-1s", want: DefaultTimeout},
		"longer than the cap": {query: "?timeout=5m", want: MaxTimeout},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/x"+tc.query, nil)
			if got := requestTimeout(r); got != tc.want {
				t.Errorf("requestTimeout = %v, want %v", got, tc.want)
			}
		})
	}
}

// The Validator's context carries the API server's deadline.
func TestValidatorGetsDeadline(t *testing.T) {
	logger, _ := ktesting.NewTestContext(t)
	var remaining time.Duration
	v := ValidatorFunc(func(ctx context.Context, _ *admissionv1.AdmissionRequest) ([]string, error) {
		d, ok := ctx.Deadline()
		if !ok {
			t.Error("no deadline")
		}
		remaining = time.Until(d)
		return nil, nil
	})
	h := NewHandler([]Route{{Path: ScaledObjectPath, Kind: "ScaledObject", Resource: scaledObjects, Validator: v}}, nil, logger)
	req := httptest.NewRequest(http.MethodPost, ScaledObjectPath+"?timeout=2s", strings.NewReader(encode(t, review(admissionv1.Create, "{}"))))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
	}
	if remaining <= 0 || remaining > 2*time.Second {
		t.Errorf("remaining time = %v, want within the 2s the API server gave", remaining)
	}
}

func TestUnknownPath(t *testing.T) {
	logger, _ := ktesting.NewTestContext(t)
	h := NewHandler(nil, nil, logger)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/validate-something-else", bytes.NewReader(nil)))
	if rec.Code != http.StatusNotFound {
		t.Errorf("status = %d, want 404", rec.Code)
	}
}

func TestMetricsRegister(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics()
	if err := m.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterMetrics(reg); err == nil {
		t.Error("registering twice must fail")
	}
}

// FuzzHandler: whatever the body, the handler answers and does not panic.
func FuzzHandler(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","operation":"CREATE","resource":{"group":"keda.sh","resource":"scaledobjects"},"object":{"spec":7}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","object":null}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		logger, _ := ktesting.NewTestContext(t)
		v := ValidatorFunc(func(_ context.Context, req *admissionv1.AdmissionRequest) ([]string, error) {
			var obj map[string]any
			return nil, Decode(req.Object, "the object", &obj)
		})
		h := NewHandler([]Route{{Path: ScaledObjectPath, Kind: "ScaledObject", Resource: scaledObjects, Validator: v}}, NewMetrics(), logger)
		req := httptest.NewRequest(http.MethodPost, ScaledObjectPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 && rec.Code != 400 {
			t.Errorf("status %d for body %q", rec.Code, body)
		}
	})
}
