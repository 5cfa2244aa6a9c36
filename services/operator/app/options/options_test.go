package options

import (
	"github.com/ebb-autoscaler/ebb/pkg/cmdutil"

	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/spf13/pflag"
	logsapi "k8s.io/component-base/logs/api/v1"
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

func withoutPodNamespace(t *testing.T) {
	t.Helper()
	t.Setenv(podNamespaceEnv, "")
	old := serviceAccountNamespaceFile
	serviceAccountNamespaceFile = filepath.Join(t.TempDir(), "absent")
	t.Cleanup(func() { serviceAccountNamespaceFile = old })
}

func TestNewOptionsDefaults(t *testing.T) {
	withoutPodNamespace(t)
	got := NewOptions()
	want := &Options{
		LeaderElection: LeaderElection{
			Enabled:       true,
			LeaseDuration: 15 * time.Second,
			RenewDeadline: 10 * time.Second,
			RetryPeriod:   2 * time.Second,
			Namespace:     "ebb-system",
			ID:            "ebb-operator",
		},
		GRPCBindAddress:    ":9443",
		HealthBindAddress:  ":8081",
		MetricsBindAddress: ":8080",
		CertDir:            "/etc/ebb/certs",
		// The pod's namespace, like the Lease's.
		ClusterObjectNamespace: "ebb-system",
		KubeAPIQPS:             500,
		KubeAPIBurst:           1000,
		Workers:                10,
		Logging:                logsapi.NewLoggingConfiguration(),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NewOptions() mismatch (-want +got):\n%s", diff)
	}
}

func TestDefaultLeaderElectionNamespace(t *testing.T) {
	tests := map[string]struct {
		env, file string
		want      string
	}{
		"environment wins":        {env: "from-env", file: "from-file\n", want: "from-env"},
		"service account file":    {file: "from-file\n", want: "from-file"},
		"blank file is ignored":   {file: " \n", want: DefaultLeaderElectionNamespace},
		"nothing: the default ns": {want: DefaultLeaderElectionNamespace},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			withoutPodNamespace(t)
			t.Setenv(podNamespaceEnv, tc.env)
			if tc.file != "" {
				serviceAccountNamespaceFile = filepath.Join(t.TempDir(), "namespace")
				if err := os.WriteFile(serviceAccountNamespaceFile, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if got := NewOptions().LeaderElection.Namespace; got != tc.want {
				t.Errorf("leader election namespace = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	withoutPodNamespace(t)
	tests := map[string]struct {
		args   []string
		modify func(*Options)
	}{
		"no flags keeps the defaults": {},
		"every flag": {
			args: []string{
				"--kubeconfig=/tmp/kubeconfig",
				"--leader-elect=false",
				"--leader-elect-lease-duration=30s",
				"--leader-elect-renew-deadline=20s",
				"--leader-elect-retry-period=5s",
				"--leader-elect-namespace=ops",
				"--leader-elect-id=ebb-operator-blue",
				"--grpc-bind-address=127.0.0.1:10443",
				"--health-bind-address=:10081",
				"--metrics-bind-address=0",
				"--cert-dir=/certs",
				"--watch-namespace=team-a",
				"--kube-api-qps=50.5",
				"--kube-api-burst=75",
				"--workers=3",
				"--cluster-object-namespace=auth",
				"--filepath-auth-root-path=/etc/ebb/filepath-auth",
				"-v=4",
				"--logging-format=json",
			},
			modify: func(o *Options) {
				o.Kubeconfig = "/tmp/kubeconfig"
				o.LeaderElection = LeaderElection{
					LeaseDuration: 30 * time.Second,
					RenewDeadline: 20 * time.Second,
					RetryPeriod:   5 * time.Second,
					Namespace:     "ops",
					ID:            "ebb-operator-blue",
				}
				o.GRPCBindAddress = "127.0.0.1:10443"
				o.HealthBindAddress = ":10081"
				o.MetricsBindAddress = "0"
				o.CertDir = "/certs"
				o.WatchNamespace = "team-a"
				o.KubeAPIQPS = 50.5
				o.KubeAPIBurst = 75
				o.Workers = 3
				o.ClusterObjectNamespace = "auth"
				o.FilePathAuthRootPath = "/etc/ebb/filepath-auth"
				o.Logging.Verbosity = 4
				o.Logging.Format = "json"
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := NewOptions()
			if err := flagSet(got).Parse(tc.args); err != nil {
				t.Fatalf("Parse(%q): %v", tc.args, err)
			}
			want := NewOptions()
			if tc.modify != nil {
				tc.modify(want)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("options after parsing (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFlagSections(t *testing.T) {
	fss := NewOptions().Flags()
	want := []string{"kubernetes client", "controllers", "serving", "leader election", "logging"}
	if diff := cmp.Diff(want, fss.Order); diff != "" {
		t.Errorf("flag sections (-want +got):\n%s", diff)
	}
	// The help of the client rate limits explains the higher defaults.
	for _, name := range []string{"kube-api-qps", "kube-api-burst"} {
		f := fss.FlagSets["kubernetes client"].Lookup(name)
		if f == nil {
			t.Fatalf("flag --%s is missing", name)
		}
		if !strings.Contains(f.Usage, "client-go's default") {
			t.Errorf("help of --%s does not say why it differs from client-go's default: %q", name, f.Usage)
		}
	}
}

func TestValidate(t *testing.T) {
	withoutPodNamespace(t)
	dir := certDir(t)
	partial := t.TempDir()
	if err := os.WriteFile(filepath.Join(partial, "tls.crt"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := map[string]struct {
		modify func(*Options)
		// want holds one substring per expected error, in order.
		want []string
	}{
		"defaults with a cert dir": {},
		"gRPC off needs no cert dir": {
			modify: func(o *Options) { o.GRPCBindAddress = "0"; o.CertDir = "/does/not/exist" },
		},
		"leader election off skips its checks": {
			modify: func(o *Options) { o.LeaderElection = LeaderElection{} },
		},
		"host names and IPv6 addresses": {
			modify: func(o *Options) {
				o.GRPCBindAddress = "[::1]:9443"
				o.HealthBindAddress = "localhost:0"
				o.MetricsBindAddress = "ebb-operator.ebb-system.svc:8080"
			},
		},
		"address without port": {
			modify: func(o *Options) { o.GRPCBindAddress = "9443" },
			want:   []string{`--grpc-bind-address "9443" is not a host:port address`},
		},
		"port out of range": {
			modify: func(o *Options) { o.HealthBindAddress = ":70000" },
			want:   []string{`--health-bind-address ":70000": port "70000" is not a number from 0 to 65535`},
		},
		"port not a number": {
			modify: func(o *Options) { o.MetricsBindAddress = ":http" },
			want:   []string{`--metrics-bind-address ":http": port "http" is not a number`},
		},
		"bad host": {
			modify: func(o *Options) { o.MetricsBindAddress = "not_a_host:8080" },
			want:   []string{`host "not_a_host" is neither an IP address nor a host name`},
		},
		"cert dir missing": {
			modify: func(o *Options) { o.CertDir = filepath.Join(dir, "absent") },
			want:   []string{"tls.crt", "tls.key", "ca.crt"},
		},
		"cert dir without key and CA": {
			modify: func(o *Options) { o.CertDir = partial },
			want:   []string{"cannot read " + filepath.Join(partial, "tls.key"), "cannot read " + filepath.Join(partial, "ca.crt")},
		},
		"cert dir empty": {
			modify: func(o *Options) { o.CertDir = "" },
			want:   []string{"--cert-dir must not be empty"},
		},
		"zero QPS": {
			modify: func(o *Options) { o.KubeAPIQPS = 0 },
			want:   []string{"--kube-api-qps must be greater than 0"},
		},
		"negative QPS": {
			modify: func(o *Options) { o.KubeAPIQPS = -1 },
			want:   []string{"--kube-api-qps must be greater than 0"},
		},
		"zero burst": {
			modify: func(o *Options) { o.KubeAPIBurst = 0 },
			want:   []string{"--kube-api-burst must be at least 1"},
		},
		"no workers": {
			modify: func(o *Options) { o.Workers = 0 },
			want:   []string{"--workers must be at least 1, got 0"},
		},
		"bad watch namespace": {
			modify: func(o *Options) { o.WatchNamespace = "Team_A" },
			want:   []string{`--watch-namespace "Team_A" is not a valid namespace`},
		},
		"bad cluster object namespace": {
			modify: func(o *Options) { o.ClusterObjectNamespace = "" },
			want:   []string{`--cluster-object-namespace "" is not a valid namespace`},
		},
		"relative filePath root": {
			modify: func(o *Options) { o.FilePathAuthRootPath = "creds" },
			want:   []string{`--filepath-auth-root-path "creds" must be an absolute path`},
		},
		"non-positive durations": {
			modify: func(o *Options) {
				o.LeaderElection.LeaseDuration = 0
				o.LeaderElection.RenewDeadline = -time.Second
				o.LeaderElection.RetryPeriod = 0
			},
			want: []string{
				"--leader-elect-lease-duration must be greater than 0",
				"--leader-elect-renew-deadline must be greater than 0",
				"--leader-elect-retry-period must be greater than 0",
			},
		},
		"renew deadline equal to lease": {
			modify: func(o *Options) { o.LeaderElection.RenewDeadline = o.LeaderElection.LeaseDuration },
			want:   []string{"--leader-elect-renew-deadline (15s) must be shorter than --leader-elect-lease-duration (15s)"},
		},
		"renew deadline longer than lease": {
			modify: func(o *Options) { o.LeaderElection.RenewDeadline = time.Minute },
			want:   []string{"must be shorter than --leader-elect-lease-duration"},
		},
		"retry period too long for the renew deadline": {
			modify: func(o *Options) { o.LeaderElection.RetryPeriod = 9 * time.Second },
			want:   []string{"must be longer than 1.2 × --leader-elect-retry-period (9s)"},
		},
		"empty lease namespace and name": {
			modify: func(o *Options) { o.LeaderElection.Namespace = ""; o.LeaderElection.ID = "" },
			want:   []string{"--leader-elect-namespace must not be empty", "--leader-elect-id must not be empty"},
		},
		"bad lease name": {
			modify: func(o *Options) { o.LeaderElection.ID = "Ebb Operator" },
			want:   []string{`--leader-elect-id "Ebb Operator" is not a valid Lease name`},
		},
		"unknown log format": {
			modify: func(o *Options) { o.Logging.Format = "xml" },
			want:   []string{`logging flags: format: Invalid value: "xml": Unsupported log format`},
		},
		"every error is reported": {
			modify: func(o *Options) {
				o.GRPCBindAddress = "nope"
				o.Workers = -1
				o.KubeAPIQPS = 0
			},
			want: []string{"--grpc-bind-address", "--kube-api-qps", "--workers"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := NewOptions()
			o.CertDir = dir
			if tc.modify != nil {
				tc.modify(o)
			}
			errs := o.Validate()
			var got []string
			for _, err := range errs {
				got = append(got, err.Error())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Validate() returned %d errors, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("error %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

func TestConfig(t *testing.T) {
	withoutPodNamespace(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://203.0.113.1:6443"}
users:
- name: u
  user: {token: secret}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
`), 0o600); err != nil {
		t.Fatal(err)
	}

	o := NewOptions()
	o.Kubeconfig = kubeconfig
	o.KubeAPIQPS = 42
	o.KubeAPIBurst = 84
	o.WatchNamespace = "team-a"
	o.FilePathAuthRootPath = "/etc/ebb/filepath-auth"
	cfg, err := o.Config()
	if err != nil {
		t.Fatalf("Config(): %v", err)
	}
	if cfg.Kube.Host != "https://203.0.113.1:6443" || cfg.Kube.QPS != 42 || cfg.Kube.Burst != 84 {
		t.Errorf("client config host=%q qps=%v burst=%d, want the kubeconfig's server, 42 and 84", cfg.Kube.Host, cfg.Kube.QPS, cfg.Kube.Burst)
	}
	if !strings.HasPrefix(cfg.Kube.UserAgent, "ebb-operator/") {
		t.Errorf("user agent = %q, want ebb-operator/<version>", cfg.Kube.UserAgent)
	}
	host, _ := os.Hostname()
	if !strings.HasPrefix(cfg.Identity, host+"_") || len(cfg.Identity) <= len(host)+1 {
		t.Errorf("identity = %q, want %q followed by a random suffix", cfg.Identity, host+"_")
	}
	if again, _ := o.Config(); again.Identity == cfg.Identity {
		t.Errorf("two Configs share the identity %q", cfg.Identity)
	}
	want := &Config{
		LeaderElection:         o.LeaderElection,
		GRPCBindAddress:        o.GRPCBindAddress,
		HealthBindAddress:      o.HealthBindAddress,
		MetricsBindAddress:     o.MetricsBindAddress,
		CertDir:                o.CertDir,
		WatchNamespace:         "team-a",
		Workers:                o.Workers,
		ClusterObjectNamespace: o.ClusterObjectNamespace,
		FilePathAuthRootPath:   "/etc/ebb/filepath-auth",
	}
	if diff := cmp.Diff(want, cfg, cmpopts.IgnoreFields(Config{}, "Kube", "Identity")); diff != "" {
		t.Errorf("Config() mismatch (-want +got):\n%s", diff)
	}
}

func TestConfigUnreadableKubeconfig(t *testing.T) {
	o := NewOptions()
	o.Kubeconfig = filepath.Join(t.TempDir(), "absent")
	_, err := o.Config()
	if err == nil || !strings.Contains(err.Error(), "loading --kubeconfig "+o.Kubeconfig) {
		t.Fatalf("Config() error = %v, want one naming --kubeconfig %s", err, o.Kubeconfig)
	}
}
