package scaler

import (
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
	"net/http/httptest"
	"testing"
	"time"
)

// clientCert returns a self-signed client certificate and key in PEM.
func clientCert(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ebb-test-client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

func TestMetricsAPITLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 0
		if r.TLS != nil {
			n = len(r.TLS.PeerCertificates)
		}
		_, _ = fmt.Fprintf(w, `{"peerCerts":%d}`, n)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	cert, key := clientCert(t)
	base := map[string]string{"url": srv.URL, "valueLocation": "peerCerts", "targetValue": "1"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := map[string]struct {
		meta      map[string]string
		auth      map[string]string
		wantValue string
		wantErr   error
	}{
		"unknown CA refused":       {meta: base, wantErr: ErrUnreachable},
		"ca trusts the server":     {meta: base, auth: map[string]string{"ca": caPEM}, wantValue: "0"},
		"unsafeSsl skips checks":   {meta: with(map[string]string{"unsafeSsl": "true"}), wantValue: "0"},
		"client certificate sent":  {meta: with(map[string]string{"authMode": "tls"}), auth: map[string]string{"ca": caPEM, "cert": cert, "key": key}, wantValue: "1"},
		"bad ca is a config error": {meta: base, auth: map[string]string{"ca": "not pem"}, wantErr: ErrInvalidConfig},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := tryBuild("metrics-api", tc.meta, tc.auth, Deps{})
			if err == nil {
				t.Cleanup(func() { _ = s.Close() })
				var r Reading
				r, err = s.Poll(t.Context())
				if err == nil && r.Value.String() != tc.wantValue {
					t.Errorf("value %s, want %s", r.Value.String(), tc.wantValue)
				}
			}
			checkKind(t, err, tc.wantErr)
		})
	}
}
