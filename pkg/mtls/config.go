package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles"
)

// ServerConfig returns a TLS server configuration that, for every
// handshake, serves the certificate current in src and requires a client
// certificate issued by a CA current in src. TLS 1.2 is the minimum; TLS 1.3
// is chosen whenever the client offers it.
//
// The per-handshake configuration takes its NextProtos from the returned
// configuration at handshake time; wrappers that clone the configuration and
// add protocols to their copy (net/http does) do not reach it, so set
// NextProtos on the returned configuration yourself outside gRPC.
// ServerCredentials needs nothing more.
func ServerConfig(src *tlsfiles.Source) *tls.Config {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAndVerifyClientCert,
	}
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		b := src.Current()
		return &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{*b.Certificate},
			ClientCAs:    b.CAPool,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			NextProtos:   cfg.NextProtos,
			// A resumed session would skip verifying the client against
			// the current pool; links are long-lived, full handshakes are
			// cheap enough.
			SessionTicketsDisabled: true,
		}, nil
	}
	return cfg
}

// ClientConfig returns a TLS client configuration that presents the
// certificate current in src and accepts a server only if its certificate
// is issued by a CA current in src and is valid for serverName. If
// serverName is empty, the name the handshake was made for is verified
// (gRPC fills it in from the target's authority); a handshake with no name
// at all fails.
func ClientConfig(src *tlsfiles.Source, serverName string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: serverName,
		// RootCAs is fixed when the configuration is built and cannot
		// follow a reload, so the built-in verification is replaced by
		// VerifyConnection below, which checks the chain and the name
		// against the pool current at handshake time.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return src.Certificate(), nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyServer(src.CAPool(), serverName, cs)
		},
	}
}

func verifyServer(roots *x509.CertPool, serverName string, cs tls.ConnectionState) error {
	name := serverName
	if name == "" {
		name = cs.ServerName
	}
	if name == "" {
		return errors.New("mtls: no server name to verify the server certificate against")
	}
	if len(cs.PeerCertificates) == 0 {
		return errors.New("mtls: the server presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		DNSName:       name,
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return fmt.Errorf("mtls: server certificate refused for %q: %w", name, err)
	}
	return nil
}
