package tlsfiles

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/klog/v2/ktesting"

	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles/tlsfilestest"
)

const waitTimeout = 10 * time.Second

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("Timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func writePlain(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func trusts(pool *x509.CertPool, leaf *x509.Certificate) bool {
	_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}

func TestNew(t *testing.T) {
	ca := tlsfilestest.NewCA(t, "ca")
	other := tlsfilestest.NewCA(t, "other")
	kp := ca.Issue(t, "svc", []string{"svc.ebb.svc"}, tlsfilestest.LeafOptions{})
	kp2 := ca.Issue(t, "svc2", []string{"svc.ebb.svc"}, tlsfilestest.LeafOptions{})

	tests := map[string]struct {
		files   map[string][]byte
		opts    []Option
		wantErr string
	}{
		"valid": {
			files: tlsfilestest.Files(kp, ca.PEM),
		},
		"valid with a CA bundle": {
			files: tlsfilestest.Files(kp, ca.PEM, other.PEM),
		},
		"custom file names": {
			files: map[string][]byte{"cert.pem": kp.CertPEM, "key.pem": kp.KeyPEM, "ca.pem": ca.PEM},
			opts:  []Option{WithFileNames("cert.pem", "key.pem", "ca.pem")},
		},
		"missing tls.crt": {
			files:   map[string][]byte{"tls.key": kp.KeyPEM, "ca.crt": ca.PEM},
			wantErr: "reading tls.crt",
		},
		"missing tls.key": {
			files:   map[string][]byte{"tls.crt": kp.CertPEM, "ca.crt": ca.PEM},
			wantErr: "reading tls.key",
		},
		"missing ca.crt": {
			files:   map[string][]byte{"tls.crt": kp.CertPEM, "tls.key": kp.KeyPEM},
			wantErr: "reading ca.crt",
		},
		"key does not match certificate": {
			files:   map[string][]byte{"tls.crt": kp.CertPEM, "tls.key": kp2.KeyPEM, "ca.crt": ca.PEM},
			wantErr: "tls.crt and tls.key do not form a key pair",
		},
		"ca.crt without certificates": {
			files:   map[string][]byte{"tls.crt": kp.CertPEM, "tls.key": kp.KeyPEM, "ca.crt": []byte("\n")},
			wantErr: "ca.crt: no PEM CERTIFICATE block found",
		},
		"ca.crt not parseable": {
			files: map[string][]byte{"tls.crt": kp.CertPEM, "tls.key": kp.KeyPEM,
				"ca.crt": []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")},
			wantErr: "ca.crt: certificate 1",
		},
		"ca.crt truncated": {
			files:   map[string][]byte{"tls.crt": kp.CertPEM, "tls.key": kp.KeyPEM, "ca.crt": ca.PEM[:len(ca.PEM)/2]},
			wantErr: "ca.crt: trailing data that is not PEM",
		},
		"tls.crt truncated": {
			files:   map[string][]byte{"tls.crt": kp.CertPEM[:len(kp.CertPEM)-30], "tls.key": kp.KeyPEM, "ca.crt": ca.PEM},
			wantErr: "tls.crt: trailing data that is not PEM",
		},
		"leaf not issued by the CA, verification on": {
			files:   tlsfilestest.Files(kp, other.PEM),
			opts:    []Option{WithLeafVerification()},
			wantErr: "tls.crt is not issued by a CA in ca.crt",
		},
		"leaf not issued by the CA, verification off": {
			files: tlsfilestest.Files(kp, other.PEM),
		},
		"leaf issued by the CA, verification on": {
			files: tlsfilestest.Files(kp, ca.PEM),
			opts:  []Option{WithLeafVerification()},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			tlsfilestest.WriteAtomic(t, dir, tc.files)
			s, err := New(dir, tc.opts...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New() error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New() error = %v", err)
			}
			if s.Generation() != 1 {
				t.Errorf("Generation() = %d, want 1", s.Generation())
			}
			if got := s.Certificate().Leaf.SerialNumber; got.Cmp(kp.Cert.SerialNumber) != 0 {
				t.Errorf("Certificate() serial = %v, want %v", got, kp.Cert.SerialNumber)
			}
			if !s.NotAfter().Equal(kp.Cert.NotAfter) {
				t.Errorf("NotAfter() = %v, want %v", s.NotAfter(), kp.Cert.NotAfter)
			}
			if !trusts(s.CAPool(), kp.Cert) && !strings.Contains(name, "verification off") {
				t.Errorf("CAPool() does not trust a certificate of the CA")
			}
		})
	}
}

// TestRotation rotates the files as the kubelet does and as a plain writer
// does, with and without fsnotify, and checks that Run picks the new set up.
func TestRotation(t *testing.T) {
	tests := map[string]struct {
		kubelet bool
		opts    []Option
	}{
		"kubelet symlink swap, fsnotify only": {
			kubelet: true,
			opts:    []Option{WithResyncInterval(0)},
		},
		"plain files, fsnotify only": {
			opts: []Option{WithResyncInterval(0)},
		},
		"kubelet symlink swap, periodic re-read only": {
			kubelet: true,
			opts:    []Option{WithoutWatcher(), WithResyncInterval(20 * time.Millisecond)},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			ca := tlsfilestest.NewCA(t, "ca")
			dir := t.TempDir()
			write := func(files map[string][]byte) {
				if tc.kubelet {
					tlsfilestest.WriteAtomic(t, dir, files)
				} else {
					writePlain(t, dir, files)
				}
			}
			write(tlsfilestest.Files(ca.Issue(t, "v1", nil, tlsfilestest.LeafOptions{}), ca.PEM))
			s, err := New(dir, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error)
			ctx, cancel := context.WithCancel(ctx)
			go func() { done <- s.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run() = %v", err)
				}
			}()

			for i := 2; i <= 4; i++ {
				changed := s.Changed()
				kp := ca.Issue(t, "next", nil, tlsfilestest.LeafOptions{})
				write(tlsfilestest.Files(kp, ca.PEM))
				select {
				case <-changed:
				case <-time.After(waitTimeout):
					t.Fatalf("Rotation %d not picked up", i)
				}
				waitFor(t, "the new certificate", func() bool {
					return s.Certificate().Leaf.SerialNumber.Cmp(kp.Cert.SerialNumber) == 0
				})
				if got := s.Generation(); got != uint64(i) {
					t.Errorf("Generation() = %d, want %d", got, i)
				}
			}
		})
	}
}

// TestRejectBadSet checks that a set that does not validate is rejected,
// the previous set stays in use, the rejection is counted once, and a later
// good set is picked up.
func TestRejectBadSet(t *testing.T) {
	ca := tlsfilestest.NewCA(t, "ca")
	good := ca.Issue(t, "good", nil, tlsfilestest.LeafOptions{})
	tests := map[string]struct {
		kubelet bool
		// bad is written first, then fixed.
		bad, fix map[string][]byte
	}{
		"kubelet swap to a mismatched pair": {
			kubelet: true,
			bad: func() map[string][]byte {
				a := ca.Issue(t, "a", nil, tlsfilestest.LeafOptions{})
				b := ca.Issue(t, "b", nil, tlsfilestest.LeafOptions{})
				return map[string][]byte{"tls.crt": a.CertPEM, "tls.key": b.KeyPEM, "ca.crt": ca.PEM}
			}(),
		},
		"half-written: new certificate, old key": {
			bad: map[string][]byte{"tls.crt": ca.Issue(t, "half", nil, tlsfilestest.LeafOptions{}).CertPEM},
		},
		"half-written: truncated CA": {
			bad: map[string][]byte{"ca.crt": ca.PEM[:len(ca.PEM)-40]},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			dir := t.TempDir()
			write := func(files map[string][]byte) {
				if tc.kubelet {
					tlsfilestest.WriteAtomic(t, dir, files)
				} else {
					writePlain(t, dir, files)
				}
			}
			write(tlsfilestest.Files(good, ca.PEM))
			s, err := New(dir, WithResyncInterval(20*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			reg := prometheus.NewPedanticRegistry()
			if err := s.RegisterMetrics(reg); err != nil {
				t.Fatal(err)
			}
			go func() { _ = s.Run(ctx) }()

			write(tc.bad)
			errors := s.metrics.reloads.WithLabelValues(resultError)
			waitFor(t, "the bad set to be rejected", func() bool { return testutil.ToFloat64(errors) >= 1 })
			// A plain writer may be caught twice (mid-write, then complete),
			// but re-reads of the same bad set are not counted again.
			time.Sleep(100 * time.Millisecond)
			n := testutil.ToFloat64(errors)
			time.Sleep(100 * time.Millisecond)
			if got := testutil.ToFloat64(errors); got != n || (tc.kubelet && got != 1) {
				t.Errorf("reloads_total{result=error} = %v after more re-reads of the same set, was %v", got, n)
			}
			if s.Generation() != 1 || s.Certificate().Leaf.SerialNumber.Cmp(good.Cert.SerialNumber) != 0 {
				t.Fatalf("The previous set was not kept: generation %d", s.Generation())
			}

			next := ca.Issue(t, "next", nil, tlsfilestest.LeafOptions{})
			write(tlsfilestest.Files(next, ca.PEM))
			waitFor(t, "the good set", func() bool {
				return s.Certificate().Leaf.SerialNumber.Cmp(next.Cert.SerialNumber) == 0
			})
			if got := testutil.ToFloat64(s.metrics.reloads.WithLabelValues(resultSuccess)); got != 1 {
				t.Errorf("reloads_total{result=success} = %v, want 1", got)
			}
		})
	}
}

// TestCARotation checks that the pool follows ca.crt exactly: a CA added to
// the bundle is trusted, a CA removed from it is no longer trusted.
func TestCARotation(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	oldCA := tlsfilestest.NewCA(t, "old")
	newCA := tlsfilestest.NewCA(t, "new")
	oldLeaf := oldCA.Issue(t, "svc", nil, tlsfilestest.LeafOptions{})
	newLeaf := newCA.Issue(t, "svc", nil, tlsfilestest.LeafOptions{})
	dir := t.TempDir()
	tlsfilestest.WriteAtomic(t, dir, tlsfilestest.Files(oldLeaf, oldCA.PEM))
	s, err := New(dir, WithResyncInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Run(ctx) }()

	steps := []struct {
		files              map[string][]byte
		trustOld, trustNew bool
	}{
		{tlsfilestest.Files(oldLeaf, oldCA.PEM, newCA.PEM), true, true},
		{tlsfilestest.Files(newLeaf, oldCA.PEM, newCA.PEM), true, true},
		{tlsfilestest.Files(newLeaf, newCA.PEM), false, true},
	}
	for i, step := range steps {
		gen := s.Generation()
		tlsfilestest.WriteAtomic(t, dir, step.files)
		waitFor(t, "the next set", func() bool { return s.Generation() > gen })
		b := s.Current()
		if got := trusts(b.CAPool, oldLeaf.Cert); got != step.trustOld {
			t.Errorf("Step %d: trusts old CA = %v, want %v", i, got, step.trustOld)
		}
		if got := trusts(b.CAPool, newLeaf.Cert); got != step.trustNew {
			t.Errorf("Step %d: trusts new CA = %v, want %v", i, got, step.trustNew)
		}
		wantCAs := 2
		if !step.trustOld {
			wantCAs = 1
		}
		if len(b.CACerts) != wantCAs {
			t.Errorf("Step %d: %d CAs, want %d", i, len(b.CACerts), wantCAs)
		}
	}
}

func TestMetrics(t *testing.T) {
	ca := tlsfilestest.NewCA(t, "ca")
	kp := ca.Issue(t, "svc", nil, tlsfilestest.LeafOptions{NotAfter: time.Unix(2000000000, 0)})
	dir := t.TempDir()
	tlsfilestest.WriteAtomic(t, dir, tlsfilestest.Files(kp, ca.PEM))
	s, err := New(dir, WithName("server"))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := New(dir, WithName("client"))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := s.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if err := s2.RegisterMetrics(reg); err != nil {
		t.Fatalf("Registering a second Source: %v", err)
	}
	if _, err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP ebb_tlsfiles_certificate_expiry_timestamp_seconds Expiry time (Unix seconds) of the certificate in use.
# TYPE ebb_tlsfiles_certificate_expiry_timestamp_seconds gauge
ebb_tlsfiles_certificate_expiry_timestamp_seconds{source="client"} 2e+09
ebb_tlsfiles_certificate_expiry_timestamp_seconds{source="server"} 2e+09
# HELP ebb_tlsfiles_reloads_total Re-reads of TLS files that found a changed set, by result: success (the new set is in use) or error (rejected, the previous set stays in use).
# TYPE ebb_tlsfiles_reloads_total counter
ebb_tlsfiles_reloads_total{result="error",source="client"} 0
ebb_tlsfiles_reloads_total{result="error",source="server"} 0
ebb_tlsfiles_reloads_total{result="success",source="client"} 0
ebb_tlsfiles_reloads_total{result="success",source="server"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"ebb_tlsfiles_certificate_expiry_timestamp_seconds", "ebb_tlsfiles_reloads_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "ebb_tlsfiles_ca_expiry_timestamp_seconds"); err != nil || n != 2 {
		t.Errorf("ca_expiry series = %d, %v; want 2", n, err)
	}
}
