package delegate

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// adapter is a stand-in external metrics adapter over HTTPS.
func adapter(t *testing.T) (*httptest.Server, *http.Request) {
	t.Helper()
	var last http.Request
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		last = *r
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/apis/external.metrics.k8s.io/v1beta1":
			_ = json.NewEncoder(w).Encode(metav1.APIResourceList{
				TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
				GroupVersion: "external.metrics.k8s.io/v1beta1",
				APIResources: []metav1.APIResource{{Name: "queue_depth", Namespaced: true}, {Name: "a_metric", Namespaced: true}},
			})
		case "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/queue_depth":
			if r.Header.Get("Authorization") != "Bearer s3cret" {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","code":401,"reason":"Unauthorized","message":"Unauthorized"}`))
				return
			}
			_, _ = w.Write([]byte(`{"kind":"ExternalMetricValueList","apiVersion":"external.metrics.k8s.io/v1beta1","metadata":{},"items":[{"metricName":"queue_depth","metricLabels":{"q":"a"},"timestamp":"2026-11-22T07:00:00Z","value":"12500m"}]}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","code":404,"reason":"NotFound","message":"the server could not find the metric"}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &last
}

func files(t *testing.T, srv *httptest.Server, token string) (caFile, tokenFile string) {
	t.Helper()
	dir := t.TempDir()
	caFile = filepath.Join(dir, "ca.crt")
	tokenFile = filepath.Join(dir, "token")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, tokenFile
}

func TestGetExternalMetric(t *testing.T) {
	srv, last := adapter(t)
	caFile, tokenFile := files(t, srv, "s3cret")
	d, err := New(Config{URL: srv.URL, CAFile: caFile, TokenFile: tokenFile})
	if err != nil {
		t.Fatal(err)
	}
	sel := labels.SelectorFromSet(labels.Set{"q": "a"})
	list, err := d.GetExternalMetric(context.Background(), "ns", sel, "queue_depth")
	if err != nil {
		t.Fatalf("GetExternalMetric: %v", err)
	}
	if len(list.Items) != 1 || list.Items[0].Value.String() != "12500m" || list.Items[0].MetricLabels["q"] != "a" {
		t.Errorf("items = %+v", list.Items)
	}
	if got := last.URL.Query().Get("labelSelector"); got != "q=a" {
		t.Errorf("labelSelector = %q, want q=a", got)
	}

	// The adapter's API errors are passed on.
	_, err = d.GetExternalMetric(context.Background(), "ns", sel, "nope")
	if !apierrors.IsNotFound(err) {
		t.Errorf("unknown metric: %v, want NotFound", err)
	}
}

func TestWrongToken(t *testing.T) {
	srv, _ := adapter(t)
	caFile, tokenFile := files(t, srv, "wrong")
	d, err := New(Config{URL: srv.URL, CAFile: caFile, TokenFile: tokenFile})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.GetExternalMetric(context.Background(), "ns", labels.Everything(), "queue_depth")
	if !apierrors.IsUnauthorized(err) {
		t.Errorf("err = %v, want Unauthorized", err)
	}
}

func TestUnreachable(t *testing.T) {
	srv, _ := adapter(t)
	caFile, _ := files(t, srv, "")
	url := srv.URL
	srv.Close()
	d, err := New(Config{URL: url, CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.GetExternalMetric(context.Background(), "ns", labels.Everything(), "queue_depth")
	if !apierrors.IsServiceUnavailable(err) || !strings.Contains(err.Error(), "delegate") {
		t.Errorf("err = %v, want a 503 naming the delegate", err)
	}
}

func TestUntrustedServer(t *testing.T) {
	srv, _ := adapter(t)
	other := httptest.NewTLSServer(http.NotFoundHandler())
	defer other.Close()
	caFile, _ := files(t, other, "")
	d, err := New(Config{URL: srv.URL, CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetExternalMetric(context.Background(), "ns", labels.Everything(), "queue_depth"); err == nil {
		t.Error("a server outside the CA was trusted")
	}
}

func TestRefresh(t *testing.T) {
	srv, _ := adapter(t)
	caFile, _ := files(t, srv, "")
	d, err := New(Config{URL: srv.URL, CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.ListAllExternalMetrics(); len(got) != 0 {
		t.Errorf("before the first refresh: %v", got)
	}
	if err := d.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := d.ListAllExternalMetrics()
	if len(got) != 2 || got[0].Metric != "a_metric" || got[1].Metric != "queue_depth" {
		t.Errorf("metrics = %v", got)
	}
}

func TestNewRejects(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "http://adapter:443"},
		{URL: "adapter:443"},
		{URL: "https://"},
		{URL: "https://adapter", CertFile: "c"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) = nil error", cfg)
		}
	}
}
