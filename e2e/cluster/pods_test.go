package cluster

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// selfSigned returns a self-signed serving certificate for dnsNames and its
// key, PEM encoded.
func selfSigned(t *testing.T, dnsNames ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: dnsNames[0]},
		DNSNames:     dnsNames,
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true,
		// Self-signed: it is its own CA in the clients' pools.
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// eventually polls cond every 100 ms until it returns nil or timeout
// passes, and fails the test with cond's last error.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s within %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// getHTTPS GETs url trusting only caPEM, as serverName.
func getHTTPS(ctx context.Context, url string, caPEM []byte, serverName string) (string, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: serverName}},
	}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return b.String(), err
}

func TestPodServesWithProjectedSecret(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	const ns, svc = "pod-test", "web"
	self, _ := helperCommand(t)

	// A pod started before the Service exists: its hosts file is updated
	// in place when the Service appears.
	client, err := c.RunPod(ctx, PodSpec{
		Namespace: ns, Name: "client", Path: self,
		Args: []string{"--"}, Env: []string{helperEnv + "=sleep"},
	})
	if err != nil {
		t.Fatal(err)
	}

	// Its kubeconfig authenticates as its ServiceAccount.
	config, err := clientcmd.BuildConfigFromFlags("", client.KubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	podClient, err := kubernetes.NewForConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	review, err := podClient.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "system:serviceaccount:" + ns + ":default"; review.Status.UserInfo.Username != want {
		t.Errorf("the pod's kubeconfig authenticates as %q, want %q", review.Status.UserInfo.Username, want)
	}

	// The web pod waits for its Secret, created after RunPod was called.
	tlsDir := filepath.Join(t.TempDir(), "tls")
	type result struct {
		pod *Pod
		err error
	}
	started := make(chan result, 1)
	go func() {
		pod, err := c.RunPod(ctx, PodSpec{
			Namespace: ns, Name: svc, ServiceAccount: "web", Path: self,
			Args:    []string{"--", ":8443", tlsDir},
			Env:     []string{helperEnv + "=https"},
			Secrets: []SecretVolume{{SecretName: "web-tls", Dir: tlsDir}},
			Ports:   []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromInt32(8443)}},
		})
		started <- result{pod, err}
	}()
	dnsNames := []string{svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc.cluster.local"}
	cert1, key1 := selfSigned(t, dnsNames...)
	secrets := c.Client.CoreV1().Secrets(ns)
	if _, err := secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "web-tls"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": cert1, "tls.key": key1},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var web *Pod
	select {
	case r := <-started:
		if r.err != nil {
			t.Fatal(r.err)
		}
		web = r.pod
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}

	// The Secret is projected as kubelet does it.
	if target, err := os.Readlink(filepath.Join(tlsDir, "tls.crt")); err != nil || target != "..data/tls.crt" {
		t.Errorf("tls.crt links to %q (%v), want ..data/tls.crt", target, err)
	}
	if got, _ := os.ReadFile(filepath.Join(tlsDir, "tls.crt")); !bytes.Equal(got, cert1) {
		t.Error("tls.crt does not hold the Secret's certificate")
	}

	// The host reaches the pod at its address.
	url := "https://" + netip.AddrPortFrom(web.Host.Addr, 8443).String() + "/"
	if body, err := getHTTPS(ctx, url, cert1, svc+"."+ns+".svc"); err != nil || body != "hello from ebb\n" {
		t.Fatalf("GET %s from the host: %q, %v", url, body, err)
	}

	// The API server reaches it through the Service (EndpointSlice and
	// Endpoints).
	eventually(t, 30*time.Second, "the service proxy reaches the pod", func() error {
		body, err := c.Client.CoreV1().Services(ns).ProxyGet("https", svc, "443", "/", nil).DoRaw(ctx)
		if err != nil {
			return err
		}
		if string(body) != "hello from ebb\n" {
			return fmt.Errorf("body %q", body)
		}
		return nil
	})

	// The earlier pod resolves the Service's names (and the API server's)
	// through its hosts file.
	hosts, err := os.ReadFile(client.Host.HostsPath())
	if err != nil {
		t.Fatal(err)
	}
	mapped := map[string]string{}
	for _, line := range strings.Split(string(hosts), "\n") {
		if f := strings.Fields(line); len(f) > 1 && !strings.HasPrefix(f[0], "#") {
			for _, name := range f[1:] {
				mapped[name] = f[0]
			}
		}
	}
	for _, name := range dnsNames {
		if mapped[name] != web.Host.Addr.String() {
			t.Errorf("the client's hosts file maps %s to %q, want %s:\n%s", name, mapped[name], web.Host.Addr, hosts)
		}
	}
	if gw := c.Network.Gateway.String(); mapped["kubernetes.default.svc"] != gw {
		t.Errorf("the client's hosts file maps kubernetes.default.svc to %q, want %s", mapped["kubernetes.default.svc"], gw)
	}
	caFile := filepath.Join(t.TempDir(), "web-ca.crt")
	if err := os.WriteFile(caFile, cert1, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runIn(t, client.Host.NetNS, "get", "https://"+svc+"."+ns+".svc:8443/", caFile); err != nil || out != "hello from ebb\n" {
		t.Errorf("GET https://%s.%s.svc:8443/ from the client pod: %q, %v", svc, ns, out, err)
	}
	apiURL := "https://kubernetes.default.svc:" + strconv.Itoa(int(c.APIServerAddr.Port())) + "/livez"
	if out, err := runIn(t, client.Host.NetNS, "get", apiURL, filepath.Join(client.Dir, "serviceaccount", "ca.crt")); err != nil || out != "ok" {
		t.Errorf("GET %s from the client pod: %q, %v", apiURL, out, err)
	}

	// An update of the Secret is projected within seconds, and served.
	cert2, key2 := selfSigned(t, dnsNames...)
	s, err := secrets.Get(ctx, "web-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Data = map[string][]byte{"tls.crt": cert2, "tls.key": key2}
	if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	updated := time.Now()
	eventually(t, 5*time.Second, "the updated Secret is projected", func() error {
		if got, _ := os.ReadFile(filepath.Join(tlsDir, "tls.crt")); !bytes.Equal(got, cert2) {
			return fmt.Errorf("tls.crt is not the new certificate")
		}
		return nil
	})
	t.Logf("Secret update projected after %s", time.Since(updated).Round(time.Millisecond))
	if body, err := getHTTPS(ctx, url, cert2, svc+"."+ns+".svc"); err != nil || body != "hello from ebb\n" {
		t.Errorf("GET %s with the new certificate: %q, %v", url, body, err)
	}
	if entries, _ := filepath.Glob(filepath.Join(tlsDir, "..20*")); len(entries) != 1 {
		t.Errorf("timestamped directories after the update: %v, want one", entries)
	}

	// A killed pod restarts in the same namespace, at the same address.
	web.Kill()
	if err := web.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if body, err := getHTTPS(ctx, url, cert2, svc+"."+ns+".svc"); err != nil || body != "hello from ebb\n" {
		t.Errorf("GET %s after a restart: %q, %v", url, body, err)
	}

	// Stop removes the namespace and the Service, and the name from the
	// other pods' hosts files.
	netns := web.Host.NetNS
	if err := web.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := client.Stop(); err != nil {
		t.Fatal(err)
	}
	var namespaces []struct {
		Name string `json:"name"`
	}
	if err := ipJSON(&namespaces, "netns", "list"); err != nil {
		t.Fatal(err)
	}
	for _, n := range namespaces {
		if n.Name == netns || n.Name == client.Host.NetNS {
			t.Errorf("network namespace %s remains after Stop", n.Name)
		}
	}
	if _, err := c.Client.CoreV1().Services(ns).Get(ctx, svc, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Service %s/%s after Stop: %v, want NotFound", ns, svc, err)
	}
}
