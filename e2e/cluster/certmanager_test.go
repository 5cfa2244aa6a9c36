package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
)

// cmTimeout bounds each wait for cert-manager (seconds in practice).
const cmTimeout = 60 * time.Second

// TestCertManager runs real cert-manager in the cluster: a selfSigned
// Issuer signs a CA Certificate, a CA Issuer built on it signs a serving
// Certificate, the CA injector fills a webhook configuration's caBundle,
// and a manually triggered renewal replaces the serving certificate.
func TestCertManager(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Minute)
	defer cancel()

	start := time.Now()
	c, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("cluster ready in %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if err := c.StartCertManager(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("cert-manager CRDs installed and controllers ready in %s", time.Since(start).Round(time.Millisecond))

	cm, err := cmclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	const ns = "cm-test"
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	issuers := cm.CertmanagerV1().Issuers(ns)
	certs := cm.CertmanagerV1().Certificates(ns)
	secrets := c.Client.CoreV1().Secrets(ns)

	// selfSigned Issuer → CA Certificate → CA Issuer → serving Certificate.
	start = time.Now()
	cmMust(t, func() error {
		_, err := issuers.Create(ctx, &cmapi.Issuer{
			ObjectMeta: metav1.ObjectMeta{Name: "selfsigned"},
			Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{SelfSigned: &cmapi.SelfSignedIssuer{}}},
		}, metav1.CreateOptions{})
		return err
	})
	cmMust(t, func() error {
		_, err := certs.Create(ctx, &cmapi.Certificate{
			ObjectMeta: metav1.ObjectMeta{Name: "ca"},
			Spec: cmapi.CertificateSpec{
				IsCA:       true,
				CommonName: "ebb e2e CA",
				SecretName: "ca",
				PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
				IssuerRef:  cmmeta.IssuerReference{Name: "selfsigned", Kind: cmapi.IssuerKind},
			},
		}, metav1.CreateOptions{})
		return err
	})
	cmMust(t, func() error {
		_, err := issuers.Create(ctx, &cmapi.Issuer{
			ObjectMeta: metav1.ObjectMeta{Name: "ca"},
			Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: "ca"}}},
		}, metav1.CreateOptions{})
		return err
	})
	dnsNames := []string{"web", "web." + ns + ".svc", "web." + ns + ".svc.cluster.local"}
	cmMust(t, func() error {
		_, err := certs.Create(ctx, &cmapi.Certificate{
			ObjectMeta: metav1.ObjectMeta{Name: "serving"},
			Spec: cmapi.CertificateSpec{
				DNSNames:   dnsNames,
				SecretName: "serving",
				PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256, RotationPolicy: cmapi.RotationPolicyAlways},
				Usages:     []cmapi.KeyUsage{cmapi.UsageServerAuth, cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment},
				IssuerRef:  cmmeta.IssuerReference{Name: "ca", Kind: cmapi.IssuerKind},
			},
		}, metav1.CreateOptions{})
		return err
	})

	waitCertReady := func(name string) *corev1.Secret {
		t.Helper()
		var last string
		var secret *corev1.Secret
		err := cmPoll(ctx, func(ctx context.Context) (bool, error) {
			cert, err := certs.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			last = fmt.Sprintf("conditions %+v", cert.Status.Conditions)
			if !cmCertReady(cert) {
				return false, nil
			}
			secret, err = secrets.Get(ctx, cert.Spec.SecretName, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			if err != nil {
				return false, err
			}
			for _, key := range []string{"tls.crt", "tls.key", "ca.crt"} {
				if len(secret.Data[key]) == 0 {
					last = fmt.Sprintf("secret %s has no %s", secret.Name, key)
					return false, nil
				}
			}
			return true, nil
		})
		if err != nil {
			t.Fatalf("Certificate %s not Ready with a complete Secret: %v; last: %s; see %s/cert-manager.log", name, err, last, c.LogDir)
		}
		return secret
	}
	caSecret := waitCertReady("ca")
	servingSecret := waitCertReady("serving")
	t.Logf("CA and serving Certificates Ready in %s", time.Since(start).Round(time.Millisecond))

	caPEM := caSecret.Data["tls.crt"]
	if !bytes.Equal(servingSecret.Data["ca.crt"], caPEM) {
		t.Fatalf("serving Secret's ca.crt is not the CA certificate:\n%s\nwant\n%s", servingSecret.Data["ca.crt"], caPEM)
	}
	cmVerifyServing(t, servingSecret, caPEM, dnsNames)

	// The CA injector fills the caBundle of an annotated webhook
	// configuration with the serving Certificate's CA.
	start = time.Now()
	failurePolicy := admissionregistrationv1.Ignore
	webhookPath := "/validate"
	sideEffects := admissionregistrationv1.SideEffectClassNone
	vwcName := "ebb-e2e-cainjector-" + c.Name
	vwcs := c.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	cmMust(t, func() error {
		_, err := vwcs.Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{
				Name:        vwcName,
				Annotations: map[string]string{cmapi.WantInjectAnnotation: ns + "/serving"},
			},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{
				Name: "nothing.e2e.ebb.example.com",
				ClientConfig: admissionregistrationv1.WebhookClientConfig{
					Service: &admissionregistrationv1.ServiceReference{Namespace: ns, Name: "web", Path: &webhookPath},
				},
				// Matches a resource that does not exist.
				Rules: []admissionregistrationv1.RuleWithOperations{{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule: admissionregistrationv1.Rule{
						APIGroups:   []string{"e2e.ebb.example.com"},
						APIVersions: []string{"v1"},
						Resources:   []string{"nothings"},
					},
				}},
				FailurePolicy:           &failurePolicy,
				SideEffects:             &sideEffects,
				AdmissionReviewVersions: []string{"v1"},
			}},
		}, metav1.CreateOptions{})
		return err
	})
	t.Cleanup(func() { _ = vwcs.Delete(context.Background(), vwcName, metav1.DeleteOptions{}) })
	if err := cmPoll(ctx, func(ctx context.Context) (bool, error) {
		vwc, err := vwcs.Get(ctx, vwcName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return bytes.Equal(vwc.Webhooks[0].ClientConfig.CABundle, caPEM), nil
	}); err != nil {
		t.Fatalf("caBundle of %s not injected: %v; see %s/cert-manager.log", vwcName, err, c.LogDir)
	}
	t.Logf("caBundle injected in %s", time.Since(start).Round(time.Millisecond))

	// A manual renewal, as `cmctl renew` does it: the Issuing condition.
	start = time.Now()
	oldCrt := servingSecret.Data["tls.crt"]
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cert, err := certs.Get(ctx, "serving", metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		cert.Status.Conditions = append(cert.Status.Conditions, cmapi.CertificateCondition{
			Type:               cmapi.CertificateConditionIssuing,
			Status:             cmmeta.ConditionTrue,
			Reason:             "ManuallyTriggered",
			Message:            "Certificate re-issuance manually triggered by the ebb e2e test",
			LastTransitionTime: &now,
			ObservedGeneration: cert.Generation,
		})
		_, err = certs.UpdateStatus(ctx, cert, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var renewed *corev1.Secret
	if err := cmPoll(ctx, func(ctx context.Context) (bool, error) {
		s, err := secrets.Get(ctx, "serving", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if bytes.Equal(s.Data["tls.crt"], oldCrt) {
			return false, nil
		}
		renewed = s
		return true, nil
	}); err != nil {
		t.Fatalf("serving certificate not renewed: %v; see %s/cert-manager.log", err, c.LogDir)
	}
	t.Logf("renewal: new tls.crt in %s", time.Since(start).Round(time.Millisecond))
	cmVerifyServing(t, renewed, caPEM, dnsNames)
	if bytes.Equal(renewed.Data["tls.key"], servingSecret.Data["tls.key"]) {
		t.Error("renewal kept the private key despite rotationPolicy Always")
	}
	waitCertReady("serving")
	cert, err := certs.Get(ctx, "serving", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cert.Status.Revision == nil || *cert.Status.Revision < 2 {
		t.Errorf("serving Certificate revision %v after renewal, want >= 2", cert.Status.Revision)
	}
	t.Logf("renewal: Ready again (revision %d) in %s", *cert.Status.Revision, time.Since(start).Round(time.Millisecond))
}

// cmVerifyServing checks that the Secret's key pair matches and that its
// certificate chains to caPEM for every DNS name, for server auth.
func cmVerifyServing(t *testing.T, secret *corev1.Secret, caPEM []byte, dnsNames []string) {
	t.Helper()
	if _, err := tls.X509KeyPair(secret.Data["tls.crt"], secret.Data["tls.key"]); err != nil {
		t.Fatalf("Secret %s: key pair: %v", secret.Name, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate in the CA Secret")
	}
	block, _ := pem.Decode(secret.Data["tls.crt"])
	if block == nil {
		t.Fatalf("Secret %s: no PEM in tls.crt", secret.Name)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range dnsNames {
		if _, err := leaf.Verify(x509.VerifyOptions{
			DNSName:   name,
			Roots:     roots,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			t.Errorf("Secret %s: certificate for %s: %v", secret.Name, name, err)
		}
	}
	ca, _ := pem.Decode(caPEM)
	caCert, err := x509.ParseCertificate(ca.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !caCert.IsCA || leaf.IsCA {
		t.Errorf("IsCA: CA %v, serving %v", caCert.IsCA, leaf.IsCA)
	}
}

func cmCertReady(cert *cmapi.Certificate) bool {
	for _, cond := range cert.Status.Conditions {
		if cond.Type == cmapi.CertificateConditionReady {
			return cond.Status == cmmeta.ConditionTrue && cond.ObservedGeneration == cert.Generation
		}
	}
	return false
}

func cmPoll(ctx context.Context, cond wait.ConditionWithContextFunc) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, cmTimeout, true, cond)
}

func cmMust(t *testing.T, create func() error) {
	t.Helper()
	if err := create(); err != nil {
		t.Fatal(err)
	}
}
