package options

import (
	"github.com/ebb-autoscaler/ebb/pkg/cmdutil"

	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func certDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range cmdutil.CertFiles {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCompleteAndValidate(t *testing.T) {
	good := certDir(t)
	tests := map[string]struct {
		args     []string
		env      string
		wantErrs []string
		check    func(t *testing.T, o *Options)
	}{
		"defaults with a cert dir": {
			args: []string{"--cert-dir=" + good},
			check: func(t *testing.T, o *Options) {
				sc := o.Adapter.SecureServing.ServerCert
				if sc.CertKey.CertFile != filepath.Join(good, "tls.crt") || sc.CertKey.KeyFile != filepath.Join(good, "tls.key") {
					t.Errorf("serving files = %q, %q", sc.CertKey.CertFile, sc.CertKey.KeyFile)
				}
				if o.OperatorServerName != "ebb-operator.ebb-system.svc" {
					t.Errorf("server name = %q", o.OperatorServerName)
				}
				if o.Adapter.SecureServing.BindPort != DefaultSecurePort {
					t.Errorf("secure port = %d", o.Adapter.SecureServing.BindPort)
				}
				if n := o.Adapter.SecureServing.HTTP2MaxStreamsPerConnection; n != DefaultHTTP2MaxStreamsPerConnection {
					t.Errorf("HTTP/2 streams per connection = %d, want %d", n, DefaultHTTP2MaxStreamsPerConnection)
				}
			},
		},
		"kubeconfig from the environment feeds delegated auth": {
			args: []string{"--cert-dir=" + good},
			env:  "/k/config",
			check: func(t *testing.T, o *Options) {
				if o.Adapter.Authentication.RemoteKubeConfigFile != "/k/config" || o.Adapter.Authorization.RemoteKubeConfigFile != "/k/config" {
					t.Errorf("auth kubeconfigs = %q, %q", o.Adapter.Authentication.RemoteKubeConfigFile, o.Adapter.Authorization.RemoteKubeConfigFile)
				}
			},
		},
		"explicit serving files win": {
			args: []string{"--cert-dir=" + good, "--tls-cert-file=/a.crt", "--tls-private-key-file=/a.key"},
			check: func(t *testing.T, o *Options) {
				if o.Adapter.SecureServing.ServerCert.CertKey.CertFile != "/a.crt" {
					t.Errorf("cert file = %q", o.Adapter.SecureServing.ServerCert.CertKey.CertFile)
				}
			},
		},
		"HTTP/2 streams per connection from the flag": {
			args: []string{"--cert-dir=" + good, "--http2-max-streams-per-connection=250"},
			check: func(t *testing.T, o *Options) {
				if n := o.Adapter.SecureServing.HTTP2MaxStreamsPerConnection; n != 250 {
					t.Errorf("HTTP/2 streams per connection = %d, want 250", n)
				}
			},
		},
		"missing cert files": {
			args:     []string{"--cert-dir=" + t.TempDir()},
			wantErrs: []string{"cannot read", "tls.crt", "ca.crt"},
		},
		"IP address without a server name": {
			args:     []string{"--cert-dir=" + good, "--operator-address=10.0.0.1:9443"},
			wantErrs: []string{"--operator-server-name is required"},
		},
		"several addresses with a server name": {
			args: []string{"--cert-dir=" + good, "--operator-address=10.0.0.1:9443,10.0.0.2:9443", "--operator-server-name=ebb-operator.ebb-system.svc"},
		},
		"bad address": {
			args:     []string{"--cert-dir=" + good, "--operator-address=nope"},
			wantErrs: []string{"not a host:port"},
		},
		"bad timeout": {
			args:     []string{"--cert-dir=" + good, "--request-timeout=0s"},
			wantErrs: []string{"--request-timeout must be greater than 0"},
		},
		"delegate flags without a URL": {
			args:     []string{"--cert-dir=" + good, "--delegate-ca-file=/ca"},
			wantErrs: []string{"need --delegate-url"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", tc.env)
			o := NewOptions()
			fss := o.Flags()
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			for _, n := range fss.Order {
				fs.AddFlagSet(fss.FlagSets[n])
			}
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			o.Complete()
			errs := o.Validate()
			var msgs []string
			for _, err := range errs {
				msgs = append(msgs, err.Error())
			}
			all := strings.Join(msgs, "\n")
			if len(tc.wantErrs) == 0 && len(errs) > 0 {
				t.Fatalf("unexpected errors:\n%s", all)
			}
			for _, want := range tc.wantErrs {
				if !strings.Contains(all, want) {
					t.Errorf("errors lack %q:\n%s", want, all)
				}
			}
			if tc.check != nil {
				tc.check(t, o)
			}
		})
	}
}
