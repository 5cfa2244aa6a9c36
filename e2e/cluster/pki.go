package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// PKI is the throw-away public key infrastructure of one cluster run. Every
// file lives in Dir.
type PKI struct {
	Dir string
	// CACertPEM is the cluster CA: it signs the API server's serving
	// certificate and the client certificates, and is the root CA handed to
	// service accounts.
	CACertPEM []byte
	ca        *authority
	frontCA   *authority
}

// authority is a certificate authority with its key.
type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// File names inside PKI.Dir.
const (
	caCertFile           = "ca.crt"
	caKeyFile            = "ca.key"
	apiserverCertFile    = "apiserver.crt"
	apiserverKeyFile     = "apiserver.key"
	frontProxyCAFile     = "front-proxy-ca.crt"
	frontProxyClientCert = "front-proxy-client.crt"
	frontProxyClientKey  = "front-proxy-client.key"
	saKeyFile            = "sa.key"
	saPubFile            = "sa.pub"
	adminCertFile        = "admin.crt"
	adminKeyFile         = "admin.key"
	// frontProxyClientName is the CN the API server presents to aggregated
	// API servers; they accept request headers only from it.
	frontProxyClientName = "front-proxy-client"
)

// Path returns the path of a file of the PKI.
func (p *PKI) Path(name string) string { return filepath.Join(p.Dir, name) }

// newPKI creates the cluster CA, the front-proxy CA and client, the API
// server's serving certificate for ips and dnsNames, the service-account key
// pair and the admin client certificate.
func newPKI(dir string, ips []net.IP, dnsNames []string) (*PKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &PKI{Dir: dir}
	var err error
	if p.ca, err = newAuthority("ebb-local-cluster-ca"); err != nil {
		return nil, err
	}
	if p.frontCA, err = newAuthority("ebb-local-front-proxy-ca"); err != nil {
		return nil, err
	}
	p.CACertPEM = encodeCert(p.ca.cert)
	if err := writeFiles(dir, map[string][]byte{
		caCertFile:       p.CACertPEM,
		caKeyFile:        mustEncodeKey(p.ca.key),
		frontProxyCAFile: encodeCert(p.frontCA.cert),
	}); err != nil {
		return nil, err
	}

	serving := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		IPAddresses: ips,
		DNSNames:    dnsNames,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if err := p.issueTo(p.ca, serving, apiserverCertFile, apiserverKeyFile); err != nil {
		return nil, err
	}
	front := &x509.Certificate{
		Subject:     pkix.Name{CommonName: frontProxyClientName},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if err := p.issueTo(p.frontCA, front, frontProxyClientCert, frontProxyClientKey); err != nil {
		return nil, err
	}
	admin := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "ebb-admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if err := p.issueTo(p.ca, admin, adminCertFile, adminKeyFile); err != nil {
		return nil, err
	}

	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	saPub, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, err
	}
	if err := writeFiles(dir, map[string][]byte{
		saKeyFile: mustEncodeKey(saKey),
		saPubFile: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}),
	}); err != nil {
		return nil, err
	}
	return p, nil
}

// IssueClientCert returns a client certificate and key (PEM) for user cn in
// groups, signed by the cluster CA, so the API server authenticates it.
func (p *PKI) IssueClientCert(cn string, groups ...string) (certPEM, keyPEM []byte, err error) {
	return p.issue(p.ca, &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: groups},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (p *PKI) issueTo(ca *authority, template *x509.Certificate, certFile, keyFile string) error {
	certPEM, keyPEM, err := p.issue(ca, template)
	if err != nil {
		return err
	}
	return writeFiles(p.Dir, map[string][]byte{certFile: certPEM, keyFile: keyPEM})
}

func (p *PKI) issue(ca *authority, template *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	template.SerialNumber, err = randomSerial()
	if err != nil {
		return nil, nil, err
	}
	template.NotBefore = time.Now().Add(-time.Hour)
	template.NotAfter = time.Now().Add(7 * 24 * time.Hour)
	template.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, template, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing %s: %w", template.Subject.CommonName, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), mustEncodeKey(key), nil
}

func newAuthority(cn string) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key}, nil
}

func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func encodeCert(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

func mustEncodeKey(key crypto.Signer) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(fmt.Sprintf("encoding a freshly generated key: %v", err)) // cannot happen for ECDSA keys
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func writeFiles(dir string, files map[string][]byte) error {
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}
