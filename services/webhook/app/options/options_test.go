package options

import (
	"github.com/ebb-autoscaler/ebb/pkg/cmdutil"

	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// flagSet gathers all sections of o's flags into one flag set, as the
// command does.
func flagSet(o *Options) *pflag.FlagSet {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	for _, name := range o.Flags().Order {
		fs.AddFlagSet(o.Flags().FlagSets[name])
	}
	return fs
}

// certDir returns a directory holding empty certificate files.
func certDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range cmdutil.CertFiles {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDefaults(t *testing.T) {
	o := NewOptions()
	if o.BindAddress != ":9443" || o.HealthBindAddress != ":8081" || o.MetricsBindAddress != ":8080" ||
		o.CertDir != "/etc/ebb/certs" || o.KubeAPIQPS != 300 || o.KubeAPIBurst != 600 || o.Logging == nil {
		t.Errorf("NewOptions = %+v", o)
	}
}

func TestFlags(t *testing.T) {
	o := NewOptions()
	err := flagSet(o).Parse([]string{
		"--kubeconfig=/k", "--cert-dir=/c", "--bind-address=:10250", "--health-bind-address=0",
		"--metrics-bind-address=127.0.0.1:9090", "--kube-api-qps=50", "--kube-api-burst=70", "--v=3", "--logging-format=json",
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.Kubeconfig != "/k" || o.CertDir != "/c" || o.BindAddress != ":10250" || o.HealthBindAddress != "0" ||
		o.MetricsBindAddress != "127.0.0.1:9090" || o.KubeAPIQPS != 50 || o.KubeAPIBurst != 70 ||
		o.Logging.Verbosity != 3 || o.Logging.Format != "json" {
		t.Errorf("parsed options = %+v", o)
	}
}

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		mod  func(o *Options)
		want []string
	}{
		"defaults with certificates": {},
		"servers off":                {mod: func(o *Options) { o.HealthBindAddress, o.MetricsBindAddress = Disabled, Disabled }},
		"admission server off": {
			mod:  func(o *Options) { o.BindAddress = Disabled },
			want: []string{"--bind-address cannot be turned off"},
		},
		"bad addresses": {
			mod: func(o *Options) {
				o.BindAddress, o.HealthBindAddress, o.MetricsBindAddress = "9443", ":http", "bad_host!:80"
			},
			want: []string{`--bind-address "9443" is not a host:port address`, `--health-bind-address ":http": port "http"`, `--metrics-bind-address "bad_host!:80": host`},
		},
		"no cert dir": {
			mod:  func(o *Options) { o.CertDir = "" },
			want: []string{"--cert-dir must not be empty"},
		},
		"cert dir without files": {
			mod:  func(o *Options) { o.CertDir = t.TempDir() },
			want: []string{"tls.crt", "tls.key", "ca.crt"},
		},
		"client limits": {
			mod:  func(o *Options) { o.KubeAPIQPS, o.KubeAPIBurst = 0, 0 },
			want: []string{"--kube-api-qps must be greater than 0", "--kube-api-burst must be at least 1"},
		},
		"logging": {
			mod:  func(o *Options) { o.Logging.Format = "yaml" },
			want: []string{"logging flags"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := NewOptions()
			o.CertDir = certDir(t)
			if tc.mod != nil {
				tc.mod(o)
			}
			errs := o.Validate()
			var msgs []string
			for _, e := range errs {
				msgs = append(msgs, e.Error())
			}
			if len(errs) != len(tc.want) {
				t.Fatalf("Validate = %q, want %d errors about %q", msgs, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(msgs[i], w) {
					t.Errorf("error %d = %q, want it to contain %q", i, msgs[i], w)
				}
			}
		})
	}
}

func TestConfig(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://apiserver.example:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	o := NewOptions()
	o.Kubeconfig = kubeconfig
	o.KubeAPIQPS, o.KubeAPIBurst = 42, 84
	cfg, err := o.Config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kube.Host != "https://apiserver.example:6443" || cfg.Kube.QPS != 42 || cfg.Kube.Burst != 84 ||
		!strings.HasPrefix(cfg.Kube.UserAgent, "ebb-webhook/") {
		t.Errorf("Config().Kube = host %q qps %v burst %d user agent %q", cfg.Kube.Host, cfg.Kube.QPS, cfg.Kube.Burst, cfg.Kube.UserAgent)
	}
	if cfg.BindAddress != o.BindAddress || cfg.CertDir != o.CertDir {
		t.Errorf("Config() = %+v", cfg)
	}

	o.Kubeconfig = filepath.Join(t.TempDir(), "missing")
	if _, err := o.Config(); err == nil || !strings.Contains(err.Error(), "--kubeconfig") {
		t.Errorf("Config with a missing kubeconfig: %v", err)
	}
}
