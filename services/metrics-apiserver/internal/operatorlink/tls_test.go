package operatorlink

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles/tlsfilestest"
)

// TestTLSRefused: a link whose peer fails mutual TLS is down, says why,
// and never calls.
func TestTLSRefused(t *testing.T) {
	p := newPKI(t, "ebb-ca")
	other := newPKI(t, "other-ca")
	tests := map[string]struct {
		serverFiles, clientFiles map[string][]byte
		want                     string
	}{
		"server certificate for another name": {
			serverFiles: tlsfilestest.Files(p.ca.Issue(t, "impostor", []string{"other.ebb-system.svc"}, tlsfilestest.LeafOptions{}), p.ca.PEM),
			want:        "TLS handshake: mtls: server certificate refused for \"" + serverName + "\": x509: certificate is valid for other.ebb-system.svc, not " + serverName,
		},
		"server certificate from an untrusted CA": {
			serverFiles: tlsfilestest.Files(other.server, p.ca.PEM),
			want:        "certificate signed by unknown authority",
		},
		"client certificate the operator does not trust": {
			clientFiles: tlsfilestest.Files(other.client, p.ca.PEM),
			// TLS 1.3: the client learns of the refusal after its
			// handshake, on its first read.
			want: "remote error: tls:",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.serverFiles == nil {
				tc.serverFiles = tlsfilestest.Files(p.server, p.ca.PEM)
			}
			if tc.clientFiles == nil {
				tc.clientFiles = tlsfilestest.Files(p.client, p.ca.PEM)
			}
			srvSrc, _ := source(t, tc.serverFiles)
			cliSrc, _ := source(t, tc.clientFiles)
			op := startOperator(t, "op-0", srvSrc, "127.0.0.1:0")
			l := startLink(t, Config{Targets: []string{op.addr}, ServerName: serverName, TLS: cliSrc})
			waitFor(t, detectBound, "the TLS error", func() bool {
				err := l.Check(context.Background())
				return err != nil && strings.Contains(err.Error(), tc.want)
			})
			start := time.Now()
			_, err := l.call()
			if d := time.Since(start); d > failFastBound || !errors.Is(err, ErrLinkDown) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("GetMetrics() = %v after %v, want ErrLinkDown with %q at once", err, d, tc.want)
			}
			t.Logf("Error: %v", err)
			if n := op.calls.Load(); n != 0 {
				t.Errorf("The operator got %d calls over a refused link", n)
			}
		})
	}
}

// TestCertificateRotation moves the operator and then the link to a new
// CA, on disk only: the link must pick up its new CA, certificate and key
// without a restart.
func TestCertificateRotation(t *testing.T) {
	p1 := newPKI(t, "ebb-ca-1")
	p2 := newPKI(t, "ebb-ca-2")
	srvSrc, srvDir := source(t, tlsfilestest.Files(p1.server, p1.ca.PEM))
	cliSrc, cliDir := source(t, tlsfilestest.Files(p1.client, p1.ca.PEM))
	op := startOperator(t, "op-0", srvSrc, "127.0.0.1:0")
	l := startLink(t, Config{Targets: []string{op.addr}, ServerName: serverName, TLS: cliSrc})
	l.waitUp(t, reconnectBound)
	if _, err := l.call(); err != nil {
		t.Fatal(err)
	}
	if s := op.clientSerial.Load(); s.Cmp(p1.client.Cert.SerialNumber) != 0 {
		t.Fatalf("Client certificate %v, want %v", s, p1.client.Cert.SerialNumber)
	}

	// The operator moves to CA 2 first (trusting clients of both), and
	// restarts: the link, trusting CA 1 only, must refuse it.
	update := func(src interface{ Generation() uint64 }, dir string, files map[string][]byte) {
		t.Helper()
		gen := src.Generation()
		tlsfilestest.WriteAtomic(t, dir, files)
		waitFor(t, 5*time.Second, "a reload of "+dir, func() bool { return src.Generation() > gen })
	}
	update(srvSrc, srvDir, tlsfilestest.Files(p2.server, p1.ca.PEM, p2.ca.PEM))
	op.restart(t)
	waitFor(t, detectBound, "the link to refuse the new server certificate", func() bool {
		err := l.Check(context.Background())
		return err != nil && strings.Contains(err.Error(), "certificate signed by unknown authority")
	})

	// The link's files move to CA 2: new certificate, new key, new CA.
	// The next connection attempt must use them.
	update(cliSrc, cliDir, tlsfilestest.Files(p2.client, p2.ca.PEM))
	took := l.waitUp(t, reconnectBound)
	t.Logf("Link up %v after its files were renewed", took)
	if _, err := l.call(); err != nil {
		t.Fatal(err)
	}
	if s := op.clientSerial.Load(); s.Cmp(p2.client.Cert.SerialNumber) != 0 {
		t.Errorf("Client certificate %v after the rotation, want the new one %v", s, p2.client.Cert.SerialNumber)
	}
}
