package e2e

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebb-autoscaler/ebb/e2e/cluster"
	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedaclient "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned"
	"github.com/ebb-autoscaler/ebb/pkg/mtls"
	"github.com/ebb-autoscaler/ebb/pkg/rpc/metricsv1"
	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles"
	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles/tlsfilestest"
)

// operatorServerName is the operator Service's DNS name, which its
// certificate carries and its clients verify.
const operatorServerName = "ebb-operator.ebb-system.svc"

// TestOperatorMetricsServiceMTLS runs the operator as a pod with a
// certificate cert-manager issued, and reads metric values from its
// MetricsService over mutual TLS, as the metrics-apiserver does: values of
// real (cron) scalers come back exact; an unknown metric is NotFound; a
// plaintext client and a client whose certificate another CA issued are
// refused.
func TestOperatorMetricsServiceMTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := startCluster(ctx, t, cluster.Options{CertManager: true})
	createNamespace(ctx, t, c, operatorNamespace)
	issueCertificates(ctx, t, c)
	pod := startOperator(ctx, t, c, "ebb-operator-tls")

	// A ScaledObject with two cron triggers: one whose window spans the
	// year (active: desiredReplicas) and one on 1 January (inactive: 1).
	// The windows are chosen so the answer holds on any day but 31
	// December.
	const ns = "shop"
	createNamespace(ctx, t, c, ns)
	createDeployment(ctx, t, c, ns, "web", 1)
	keda, err := kedaclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	so := cronScaledObject("web", "web", func(so *v1alpha1.ScaledObject) {
		so.Spec.Triggers = []v1alpha1.ScaleTrigger{
			{Type: "cron", Metadata: map[string]string{"timezone": "UTC", "start": "0 0 1 1 *", "end": "0 0 31 12 *", "desiredReplicas": "5"}},
			{Type: "cron", Metadata: map[string]string{"timezone": "UTC", "start": "0 0 1 1 *", "end": "0 0 2 1 *", "desiredReplicas": "7"}},
		}
	})
	if _, err := keda.KedaV1alpha1().ScaledObjects(ns).Create(ctx, so, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	so = pollFor(ctx, t, "the ScaledObject's external metric names", time.Minute, func(ctx context.Context) (*v1alpha1.ScaledObject, error) {
		got, err := keda.KedaV1alpha1().ScaledObjects(ns).Get(ctx, "web", metav1.GetOptions{})
		if err == nil && len(got.Status.ExternalMetricNames) != 2 {
			err = apierrors.NewNotFound(v1alpha1.Resource("scaledobjects"), "web with two metric names")
		}
		return got, err
	})

	// The client's certificate from the same CA, as the metrics-apiserver
	// gets it.
	clientDir := secretToDir(ctx, t, c, operatorNamespace, "ebb-e2e-client-tls")
	src, err := tlsfiles.New(clientDir)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(pod.Host.Addr.String(), "9443")
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(mtls.ClientCredentials(src, operatorServerName)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := metricsv1.NewMetricsServiceClient(conn)

	get := func(ctx context.Context, metric string) (*metricsv1.GetMetricsResponse, error) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return client.GetMetrics(ctx, &metricsv1.GetMetricsRequest{
			Namespace: ns, ScaledObjectName: "web", MetricName: metric,
			LabelSelector: v1alpha1.ScaledObjectNameLabel + "=web",
		})
	}
	for i, want := range []string{"5", "1"} {
		metric := so.Status.ExternalMetricNames[i]
		// Until the operator is the leader with synced caches it answers
		// Unavailable; then the value.
		resp := pollFor(ctx, t, "a value of "+metric, time.Minute, func(ctx context.Context) (*metricsv1.GetMetricsResponse, error) {
			return get(ctx, metric)
		})
		if len(resp.Values) != 1 {
			t.Fatalf("%s: %d values, want 1", metric, len(resp.Values))
		}
		got, err := resp.Values[0].GetValue().ToQuantity()
		if err != nil {
			t.Fatalf("%s: %v", metric, err)
		}
		if got.Cmp(resource.MustParse(want)) != 0 || resp.Values[0].GetMetricName() != metric {
			t.Errorf("%s = %s (%q), want %s", metric, got.String(), resp.Values[0].GetMetricName(), want)
		}
	}
	if _, err := get(ctx, "s9-nothing"); status.Code(err) != codes.NotFound {
		t.Errorf("Unknown metric: %v, want NotFound", err)
	}

	// Refused: plaintext, and a certificate from another CA.
	plain, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	shortCtx, shortCancel := context.WithTimeout(ctx, 5*time.Second)
	defer shortCancel()
	if _, err := metricsv1.NewMetricsServiceClient(plain).GetMetrics(shortCtx, &metricsv1.GetMetricsRequest{Namespace: ns, ScaledObjectName: "web", MetricName: so.Status.ExternalMetricNames[0]}); err == nil {
		t.Errorf("A plaintext client got an answer")
	}
	foreignCA := tlsfilestest.NewCA(t, "not-ebb")
	foreignDir := t.TempDir()
	// It trusts the real CA, so only its own certificate can be refused.
	realCA, err := os.ReadFile(filepath.Join(clientDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	tlsfilestest.WriteAtomic(t, foreignDir, tlsfilestest.Files(foreignCA.Issue(t, "intruder", nil, tlsfilestest.LeafOptions{}), realCA))
	foreignSrc, err := tlsfiles.New(foreignDir)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := grpc.NewClient(addr, grpc.WithTransportCredentials(mtls.ClientCredentials(foreignSrc, operatorServerName)))
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Close()
	if _, err := metricsv1.NewMetricsServiceClient(foreign).GetMetrics(shortCtx, &metricsv1.GetMetricsRequest{Namespace: ns, ScaledObjectName: "web", MetricName: so.Status.ExternalMetricNames[0]}); err == nil {
		t.Errorf("A client with a certificate from another CA got an answer")
	}
}

// issueCertificates makes, in ebb-system, a CA from a selfSigned issuer, a
// CA issuer, the operator's and the metrics-apiserver's serving (and
// client) certificates for their Service names, and a client certificate
// for the test.
func issueCertificates(ctx context.Context, t *testing.T, c *cluster.Cluster) {
	t.Helper()
	cm, err := cmclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	issuers := cm.CertmanagerV1().Issuers(operatorNamespace)
	certificates := cm.CertmanagerV1().Certificates(operatorNamespace)
	both := []cmapi.KeyUsage{cmapi.UsageServerAuth, cmapi.UsageClientAuth, cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment}
	mustCreate(t, func() error {
		_, err := issuers.Create(ctx, &cmapi.Issuer{ObjectMeta: metav1.ObjectMeta{Name: "selfsigned"},
			Spec: cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{SelfSigned: &cmapi.SelfSignedIssuer{}}}}, metav1.CreateOptions{})
		return err
	})
	for _, cert := range []*cmapi.Certificate{
		{ObjectMeta: metav1.ObjectMeta{Name: "ebb-ca"}, Spec: cmapi.CertificateSpec{IsCA: true, CommonName: "ebb-ca", SecretName: "ebb-ca",
			IssuerRef: cmmeta.IssuerReference{Name: "selfsigned", Kind: "Issuer"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "ebb-operator-tls"}, Spec: cmapi.CertificateSpec{SecretName: "ebb-operator-tls", Usages: both,
			DNSNames:  []string{"ebb-operator", "ebb-operator.ebb-system", operatorServerName, operatorServerName + ".cluster.local"},
			IssuerRef: cmmeta.IssuerReference{Name: "ebb-ca", Kind: "Issuer"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: metricsAPIServerCert}, Spec: cmapi.CertificateSpec{SecretName: metricsAPIServerCert, Usages: both,
			DNSNames:  []string{"ebb-metrics-apiserver", "ebb-metrics-apiserver.ebb-system", "ebb-metrics-apiserver.ebb-system.svc", "ebb-metrics-apiserver.ebb-system.svc.cluster.local"},
			IssuerRef: cmmeta.IssuerReference{Name: "ebb-ca", Kind: "Issuer"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "ebb-e2e-client-tls"}, Spec: cmapi.CertificateSpec{SecretName: "ebb-e2e-client-tls", Usages: both,
			CommonName: "ebb-e2e-client", IssuerRef: cmmeta.IssuerReference{Name: "ebb-ca", Kind: "Issuer"}}},
	} {
		mustCreate(t, func() error { _, err := certificates.Create(ctx, cert, metav1.CreateOptions{}); return err })
	}
	mustCreate(t, func() error {
		_, err := issuers.Create(ctx, &cmapi.Issuer{ObjectMeta: metav1.ObjectMeta{Name: "ebb-ca"},
			Spec: cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: "ebb-ca"}}}}, metav1.CreateOptions{})
		return err
	})
}

// secretToDir waits for a cert-manager Secret with tls.crt, tls.key and
// ca.crt and writes them into a new directory.
func secretToDir(ctx context.Context, t *testing.T, c *cluster.Cluster, ns, name string) string {
	t.Helper()
	secret := pollFor(ctx, t, "Secret "+ns+"/"+name, time.Minute, func(ctx context.Context) (*corev1.Secret, error) {
		s, err := c.Client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && (len(s.Data["tls.crt"]) == 0 || len(s.Data["ca.crt"]) == 0) {
			err = apierrors.NewNotFound(corev1.Resource("secrets"), name+" with tls.crt and ca.crt ("+strconv.Itoa(len(s.Data))+" keys)")
		}
		return s, err
	})
	dir := t.TempDir()
	tlsfilestest.WriteAtomic(t, dir, map[string][]byte{"tls.crt": secret.Data["tls.crt"], "tls.key": secret.Data["tls.key"], "ca.crt": secret.Data["ca.crt"]})
	return dir
}
