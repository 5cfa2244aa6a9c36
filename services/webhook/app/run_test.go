package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	admissionv1 "k8s.io/api/admission/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2/ktesting"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles/tlsfilestest"
	"github.com/ebb-autoscaler/ebb/services/webhook/app/options"
)

// fakeAPIServer answers the few requests the webhook makes: discovery,
// /readyz, the /scale of Deployment team-a/web, and empty lists of
// ScaledObjects and HPAs. It records the ScaledObject field selectors.
type fakeAPIServer struct {
	mu        sync.Mutex
	selectors []string
}

func (f *fakeAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reply := func(code int, body string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
	resources := func(gv string, rs ...string) string {
		var list []string
		for _, r := range rs {
			name, kind, _ := strings.Cut(r, ":")
			list = append(list, fmt.Sprintf(`{"name":%q,"singularName":"","namespaced":true,"kind":%q,"verbs":["get","list"]}`, name, kind))
		}
		return fmt.Sprintf(`{"kind":"APIResourceList","apiVersion":"v1","groupVersion":%q,"resources":[%s]}`, gv, strings.Join(list, ","))
	}
	group := func(name, version string) string {
		return fmt.Sprintf(`{"name":%q,"versions":[{"groupVersion":"%s/%s","version":%q}],"preferredVersion":{"groupVersion":"%s/%s","version":%q}}`,
			name, name, version, version, name, version, version)
	}
	switch r.URL.Path {
	case "/readyz":
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "ok")
	case "/api":
		reply(200, `{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[]}`)
	case "/apis":
		reply(200, `{"kind":"APIGroupList","apiVersion":"v1","groups":[`+group("apps", "v1")+`,`+group("autoscaling", "v2")+`,`+group("keda.sh", "v1alpha1")+`]}`)
	case "/api/v1":
		reply(200, resources("v1", "limitranges:LimitRange"))
	case "/apis/apps/v1":
		reply(200, resources("apps/v1", "deployments:Deployment", "deployments/scale:Scale"))
	case "/apis/autoscaling/v2":
		reply(200, resources("autoscaling/v2", "horizontalpodautoscalers:HorizontalPodAutoscaler"))
	case "/apis/keda.sh/v1alpha1":
		reply(200, resources("keda.sh/v1alpha1", "scaledobjects:ScaledObject", "triggerauthentications:TriggerAuthentication"))
	case "/apis/apps/v1/namespaces/team-a/deployments/web/scale":
		reply(200, `{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"web","namespace":"team-a"},"spec":{"replicas":1}}`)
	case "/apis/keda.sh/v1alpha1/namespaces/team-a/scaledobjects":
		f.mu.Lock()
		f.selectors = append(f.selectors, r.URL.Query().Get("fieldSelector"))
		f.mu.Unlock()
		reply(200, `{"kind":"ScaledObjectList","apiVersion":"keda.sh/v1alpha1","metadata":{},"items":[]}`)
	case "/apis/autoscaling/v2/namespaces/team-a/horizontalpodautoscalers":
		reply(200, `{"kind":"HorizontalPodAutoscalerList","apiVersion":"autoscaling/v2","metadata":{},"items":[]}`)
	default:
		reply(404, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"not found"}`)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func scaledObjectReview(t *testing.T, uid, target, trigger string) []byte {
	t.Helper()
	so := v1alpha1.ScaledObject{
		TypeMeta:   metav1.TypeMeta{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledObject"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: uid},
		Spec: v1alpha1.ScaledObjectSpec{
			ScaleTargetRef:  &v1alpha1.ScaleTarget{Name: target},
			MinReplicaCount: func() *int32 { n := int32(1); return &n }(),
		},
	}
	switch trigger {
	case "cron":
		so.Spec.Triggers = []v1alpha1.ScaleTrigger{{Type: "cron", Metadata: map[string]string{
			"timezone": "Etc/UTC", "start": "0 8 * * *", "end": "0 9 * * *", "desiredReplicas": "2"}}}
	case "cpu":
		so.Spec.Triggers = []v1alpha1.ScaleTrigger{{Type: "cpu", MetricType: autoscalingv2.UtilizationMetricType, Metadata: map[string]string{"value": "50"}}}
	}
	obj, err := json.Marshal(so)
	if err != nil {
		t.Fatal(err)
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID("uid-x" + uid),
			Resource:  metav1.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledobjects"},
			Namespace: "team-a", Name: uid, Operation: admissionv1.Create,
			Object: runtime.RawExtension{Raw: obj},
		},
	}
	b, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRun starts the webhook against a fake API server and checks what
// the API server, the kubelet and Prometheus see: admissions over HTTPS,
// certificate reload, gRPC health, metrics, and a clean shutdown.
func TestRun(t *testing.T) {
	logger, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	api := &fakeAPIServer{}
	apiServer := httptest.NewServer(api)
	defer apiServer.Close()

	ca := tlsfilestest.NewCA(t, "ebb-test-ca")
	certDir := t.TempDir()
	first := ca.Issue(t, "ebb-webhook", []string{"ebb-webhook.ebb-system.svc", "localhost"}, tlsfilestest.LeafOptions{})
	tlsfilestest.WriteAtomic(t, certDir, tlsfilestest.Files(first, ca.PEM))

	cfg := &options.Config{
		Kube:               &rest.Config{Host: apiServer.URL, QPS: 100, Burst: 100},
		BindAddress:        freeAddr(t),
		HealthBindAddress:  freeAddr(t),
		MetricsBindAddress: freeAddr(t),
		CertDir:            certDir,
	}
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg) }()

	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	var served *x509.Certificate
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, ServerName: "ebb-webhook.ebb-system.svc",
		VerifyConnection: func(cs tls.ConnectionState) error { served = cs.PeerCertificates[0]; return nil },
	}, DisableKeepAlives: true}}
	post := func(body []byte) (*admissionv1.AdmissionResponse, error) {
		resp, err := client.Post("https://"+cfg.BindAddress+"/validate-keda-sh-v1alpha1-scaledobject?timeout=5s", "application/json", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			return nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		var out admissionv1.AdmissionReview
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return nil, err
		}
		return out.Response, nil
	}

	// Admissions over HTTPS.
	var resp *admissionv1.AdmissionResponse
	eventually(t, "admitting a ScaledObject on an existing Deployment", func() (err error) {
		resp, err = post(scaledObjectReview(t, "a", "web", "cron"))
		return err
	})
	if !resp.Allowed || resp.UID != "uid-xa" || len(resp.Warnings) != 0 {
		t.Errorf("cron on web: %+v", resp)
	}
	if resp, err := post(scaledObjectReview(t, "b", "nope", "cron")); err != nil || !resp.Allowed || len(resp.Warnings) != 1 {
		t.Errorf("cron on a missing Deployment: want admitted with a warning, got %+v, %v", resp, err)
	}
	if resp, err := post(scaledObjectReview(t, "c", "nope", "cpu")); err != nil || resp.Allowed || resp.Result.Code != 422 ||
		!strings.Contains(resp.Result.Message, "Deployment team-a/nope does not exist") {
		t.Errorf("cpu on a missing Deployment: want denied, got %+v, %v", resp, err)
	}
	if resp, err := client.Post("https://"+cfg.BindAddress+"/validate-keda-sh-v1alpha1-scaledobject", "application/json", strings.NewReader("garbage")); err != nil || resp.StatusCode != 400 {
		t.Errorf("garbage: want 400, got %v, %v", resp, err)
	}
	api.mu.Lock()
	if len(api.selectors) == 0 || api.selectors[0] != "spec.scaleTargetRef.name=web" {
		t.Errorf("ScaledObject LIST field selectors = %q, want spec.scaleTargetRef.name=web", api.selectors)
	}
	api.mu.Unlock()
	if served == nil || served.SerialNumber.Cmp(first.Cert.SerialNumber) != 0 {
		t.Fatalf("served certificate is not the first one")
	}

	// A renewed certificate is served without a restart.
	second := ca.Issue(t, "ebb-webhook", []string{"ebb-webhook.ebb-system.svc"}, tlsfilestest.LeafOptions{})
	tlsfilestest.WriteAtomic(t, certDir, tlsfilestest.Files(second, ca.PEM))
	eventually(t, "serving the renewed certificate", func() error {
		if _, err := post(scaledObjectReview(t, "d", "web", "cron")); err != nil {
			return err
		}
		if served.SerialNumber.Cmp(second.Cert.SerialNumber) != 0 {
			return fmt.Errorf("still serving serial %v", served.SerialNumber)
		}
		return nil
	})

	// gRPC health: ready once the certificate and the API server are.
	conn, err := grpc.NewClient(cfg.HealthBindAddress, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	healthClient := healthpb.NewHealthClient(conn)
	for _, service := range []string{"", "tls", "apiserver"} {
		eventually(t, fmt.Sprintf("health %q SERVING", service), func() error {
			r, err := healthClient.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
			if err != nil {
				return err
			}
			if r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				return fmt.Errorf("status %v", r.GetStatus())
			}
			return nil
		})
	}

	// Metrics.
	mresp, err := http.Get("http://" + cfg.MetricsBindAddress + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	_ = mresp.Body.Close()
	for _, want := range []string{
		`ebb_webhook_admissions_total{kind="ScaledObject",operation="CREATE",result="allowed"}`,
		`ebb_webhook_admissions_total{kind="ScaledObject",operation="CREATE",result="denied"} 1`,
		`ebb_webhook_admissions_total{kind="ScaledObject",operation="",result="bad_request"} 1`,
		`ebb_webhook_admission_duration_seconds_count{kind="ScaledObject",operation="CREATE"}`,
		`ebb_uncached_read_duration_seconds_count{operation="get_scale",result="not_found"}`,
		`ebb_uncached_read_duration_seconds_count{operation="list_scaledobjects_by_target",result="success"}`,
		`ebb_tlsfiles_reloads_total{result="success",source="webhook"}`,
		`ebb_restmapper_discoveries_total`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Shutdown.
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run returned %v, want nil after cancellation", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after cancellation")
	}
	logger.Info("Done")
}

func TestRunFailsOnBadCertDir(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	cfg := &options.Config{Kube: &rest.Config{Host: "http://127.0.0.1:1"}, BindAddress: freeAddr(t), HealthBindAddress: "0", MetricsBindAddress: "0", CertDir: t.TempDir()}
	if err := run(ctx, cfg); err == nil || !strings.Contains(err.Error(), "--cert-dir") {
		t.Errorf("run with an empty cert dir: %v", err)
	}
}

func TestRunFailsOnPortInUse(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ca := tlsfilestest.NewCA(t, "ca")
	certDir := t.TempDir()
	tlsfilestest.WriteAtomic(t, certDir, tlsfilestest.Files(ca.Issue(t, "w", []string{"w"}, tlsfilestest.LeafOptions{}), ca.PEM))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = busy.Close() }()
	cfg := &options.Config{Kube: &rest.Config{Host: "http://127.0.0.1:1"}, BindAddress: busy.Addr().String(), HealthBindAddress: "0", MetricsBindAddress: "0", CertDir: certDir}
	if err := run(ctx, cfg); err == nil || !strings.Contains(err.Error(), "listening for the admission server") {
		t.Errorf("run on a port in use: %v", err)
	}
}
