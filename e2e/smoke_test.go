package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/e2e/cluster"
)

// smokeServerEnv makes the test binary, re-executed inside a pod's network
// namespace, serve the smoke test's aggregated API instead of running tests.
const (
	smokeServerEnv  = "EBB_E2E_SMOKE_SERVER"
	smokeCertDirEnv = "EBB_E2E_SMOKE_CERT_DIR"
	smokeGroup      = "smoke.e2e.ebb.dev"
	smokeVersion    = "v1alpha1"
)

func TestMain(m *testing.M) {
	if os.Getenv(smokeServerEnv) != "" {
		if err := serveSmokeAPI(os.Getenv(smokeCertDirEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "smoke server:", err)
			os.Exit(1)
		}
		return
	}
	if file := os.Getenv(metricsAPIValueFileEnv); file != "" {
		if err := serveMetricsAPI(file); err != nil {
			fmt.Fprintln(os.Stderr, "metrics API server:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// serveSmokeAPI serves a minimal aggregated API (discovery of an empty
// group version) over HTTPS on :8443 with the certificate projected into
// certDir, re-read on every handshake so a renewal is picked up.
func serveSmokeAPI(certDir string) error {
	discovery := map[string]any{
		"kind":         "APIResourceList",
		"apiVersion":   "v1",
		"groupVersion": smokeGroup + "/" + smokeVersion,
		"resources":    []any{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/apis/"+smokeGroup+"/"+smokeVersion, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(discovery)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	server := &http.Server{
		Addr:              ":8443",
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		TLSConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key"))
				return &cert, err
			},
		},
	}
	return server.ListenAndServeTLS("", "")
}

// TestClusterSmoke proves the harness end to end: cert-manager issues a
// serving certificate from a CA chain; a process in its own network
// namespace serves an aggregated API with it behind a Service; the CA
// injector fills the APIService's caBundle; `kubectl get --raw` through the
// API server reaches the process; the deployment controller creates a
// ReplicaSet; the garbage collector deletes it with its Deployment.
func TestClusterSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	c := startCluster(ctx, t, cluster.Options{CertManager: true})
	const ns = "smoke"
	createNamespace(ctx, t, c, ns)

	// A selfSigned issuer makes a CA; a CA issuer signs the serving
	// certificate of Service "smoke".
	cm, err := cmclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	issuers := cm.CertmanagerV1().Issuers(ns)
	certificates := cm.CertmanagerV1().Certificates(ns)
	mustCreate(t, func() error {
		_, err := issuers.Create(ctx, &cmapi.Issuer{
			ObjectMeta: metav1.ObjectMeta{Name: "selfsigned"},
			Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{SelfSigned: &cmapi.SelfSignedIssuer{}}},
		}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := certificates.Create(ctx, &cmapi.Certificate{
			ObjectMeta: metav1.ObjectMeta{Name: "smoke-ca"},
			Spec: cmapi.CertificateSpec{
				IsCA:       true,
				CommonName: "ebb-e2e-smoke-ca",
				SecretName: "smoke-ca",
				IssuerRef:  cmmeta.IssuerReference{Name: "selfsigned", Kind: "Issuer"},
			},
		}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := issuers.Create(ctx, &cmapi.Issuer{
			ObjectMeta: metav1.ObjectMeta{Name: "ca"},
			Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: "smoke-ca"}}},
		}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := certificates.Create(ctx, &cmapi.Certificate{
			ObjectMeta: metav1.ObjectMeta{Name: "smoke-serving"},
			Spec: cmapi.CertificateSpec{
				DNSNames:   []string{"smoke." + ns + ".svc", "smoke." + ns + ".svc.cluster.local"},
				SecretName: "smoke-tls",
				IssuerRef:  cmmeta.IssuerReference{Name: "ca", Kind: "Issuer"},
				Usages:     []cmapi.KeyUsage{cmapi.UsageServerAuth, cmapi.UsageDigitalSignature},
			},
		}, metav1.CreateOptions{})
		return err
	})

	// The server runs as a pod: its own netns, the Secret projected.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	certDir := filepath.Join(t.TempDir(), "tls")
	pod, err := c.RunPod(ctx, cluster.PodSpec{
		Namespace: ns,
		Name:      "smoke",
		Path:      exe,
		Env:       []string{smokeServerEnv + "=1", smokeCertDirEnv + "=" + certDir},
		Secrets:   []cluster.SecretVolume{{SecretName: "smoke-tls", Dir: certDir}},
		Ports:     []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromInt32(8443)}},
	})
	if err != nil {
		t.Fatalf("Running the smoke server: %v", err)
	}
	t.Logf("Smoke server running at %s (log: %s)", pod.Host.Addr, pod.Process.LogPath)

	// The APIService gets its caBundle from cainjector and becomes
	// Available through the real aggregator.
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	apiServices := dyn.Resource(schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"})
	apiServiceName := smokeVersion + "." + smokeGroup
	mustCreate(t, func() error {
		_, err := apiServices.Create(ctx, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiregistration.k8s.io/v1",
			"kind":       "APIService",
			"metadata": map[string]any{
				"name":        apiServiceName,
				"annotations": map[string]any{"cert-manager.io/inject-ca-from": ns + "/smoke-serving"},
			},
			"spec": map[string]any{
				"group":                smokeGroup,
				"version":              smokeVersion,
				"service":              map[string]any{"namespace": ns, "name": "smoke", "port": int64(443)},
				"groupPriorityMinimum": int64(1000),
				"versionPriority":      int64(15),
			},
		}}, metav1.CreateOptions{})
		return err
	})
	injected := time.Now()
	secret := pollFor(ctx, t, "the serving certificate's Secret", time.Minute, func(ctx context.Context) (*corev1.Secret, error) {
		return c.Client.CoreV1().Secrets(ns).Get(ctx, "smoke-tls", metav1.GetOptions{})
	})
	pollUntil(ctx, t, "the APIService's caBundle to be injected and the APIService Available", time.Minute, func(ctx context.Context) (bool, error) {
		obj, err := apiServices.Get(ctx, apiServiceName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		caBundle, _, _ := unstructured.NestedString(obj.Object, "spec", "caBundle")
		if caBundle == "" {
			return false, nil
		}
		conditions, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
		for _, cond := range conditions {
			m, _ := cond.(map[string]any)
			if m["type"] == "Available" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
	t.Logf("APIService Available with an injected caBundle %s after creation", time.Since(injected).Round(time.Millisecond))
	if len(secret.Data["ca.crt"]) == 0 {
		t.Errorf("The serving Secret has no ca.crt")
	}

	// kubectl, through the API server's aggregation layer, reaches the
	// process in the network namespace.
	var out, stderr bytes.Buffer
	kubectl := exec.CommandContext(ctx, c.Bins.Kubectl, "--kubeconfig", c.KubeconfigPath, "get", "--raw", "/apis/"+smokeGroup+"/"+smokeVersion)
	kubectl.Stdout, kubectl.Stderr = &out, &stderr
	if err := kubectl.Run(); err != nil {
		t.Fatalf("kubectl get --raw: %v\n%s", err, stderr.String())
	}
	var list metav1.APIResourceList
	if err := json.Unmarshal(out.Bytes(), &list); err != nil {
		t.Fatalf("kubectl get --raw returned %q: %v", out.String(), err)
	}
	if list.GroupVersion != smokeGroup+"/"+smokeVersion {
		t.Errorf("kubectl get --raw returned groupVersion %q, want %q", list.GroupVersion, smokeGroup+"/"+smokeVersion)
	}

	// The deployment controller makes a ReplicaSet; deleting the Deployment
	// lets the garbage collector delete it.
	deployment := createDeployment(ctx, t, c, ns, "web", 2)
	rs := pollFor(ctx, t, "the Deployment's ReplicaSet", time.Minute, func(ctx context.Context) (*appsv1.ReplicaSet, error) {
		list, err := c.Client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			if owner := metav1.GetControllerOf(&list.Items[i]); owner != nil && owner.UID == deployment.UID {
				return &list.Items[i], nil
			}
		}
		return nil, apierrors.NewNotFound(appsv1.Resource("replicasets"), "of web")
	})
	if err := c.Client.AppsV1().Deployments(ns).Delete(ctx, "web", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}); err != nil {
		t.Fatal(err)
	}
	pollUntil(ctx, t, "the garbage collector to delete ReplicaSet "+rs.Name, time.Minute, func(ctx context.Context) (bool, error) {
		_, err := c.Client.AppsV1().ReplicaSets(ns).Get(ctx, rs.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

func mustCreate(t *testing.T, create func() error) {
	t.Helper()
	if err := create(); err != nil {
		t.Fatal(err)
	}
}

// pollUntil polls cond every 100 ms until it is true; it fails the test
// after timeout, naming what it waited for and the last error.
func pollUntil(ctx context.Context, t *testing.T, what string, timeout time.Duration, cond func(context.Context) (bool, error)) {
	t.Helper()
	var last error
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if err != nil {
			last = err
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("Waiting %s for %s: %v", timeout, what, errors.Join(err, last))
	}
}

// pollFor polls get until it returns without error, and returns its result.
func pollFor[T any](ctx context.Context, t *testing.T, what string, timeout time.Duration, get func(context.Context) (T, error)) T {
	t.Helper()
	var result T
	pollUntil(ctx, t, what, timeout, func(ctx context.Context) (bool, error) {
		v, err := get(ctx)
		if err != nil {
			return false, err
		}
		result = v
		return true, nil
	})
	return result
}
