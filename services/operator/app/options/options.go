package options

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	cliflag "k8s.io/component-base/cli/flag"
	logsapi "k8s.io/component-base/logs/api/v1"

	"github.com/ebb-autoscaler/ebb/pkg/cmdutil"
	"github.com/ebb-autoscaler/ebb/pkg/version"

	// Make --logging-format=json available.
	_ "k8s.io/component-base/logs/json/register"
)

// Defaults of the flags.
const (
	DefaultLeaderElectionLeaseDuration = 15 * time.Second
	DefaultLeaderElectionRenewDeadline = 10 * time.Second
	DefaultLeaderElectionRetryPeriod   = 2 * time.Second
	DefaultLeaderElectionID            = "ebb-operator"
	// DefaultLeaderElectionNamespace is the namespace of the Lease when
	// the pod's own namespace cannot be found.
	DefaultLeaderElectionNamespace = "ebb-system"

	DefaultGRPCBindAddress    = ":9443"
	DefaultHealthBindAddress  = ":8081"
	DefaultMetricsBindAddress = ":8080"
	DefaultCertDir            = "/etc/ebb/certs"

	DefaultKubeAPIQPS   float32 = 500
	DefaultKubeAPIBurst int     = 1000
	DefaultWorkers      int     = 10

	// Disabled, given as a bind address, turns that server off.
	Disabled = cmdutil.Disabled

	// UserAgentName is the first part of the operator's User-Agent.
	UserAgentName = "ebb-operator"
)

// Where the pod's namespace is found; variables so that tests can point
// them elsewhere.
var (
	serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
	podNamespaceEnv             = "POD_NAMESPACE"
)

// LeaderElection holds the leader election options.
type LeaderElection struct {
	// Enabled turns leader election on. With it off, the controllers start
	// at once; run a single replica then.
	Enabled       bool
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	// Namespace and ID name the Lease.
	Namespace string
	ID        string
}

// Options are the command-line options of ebb-operator.
type Options struct {
	Kubeconfig     string
	LeaderElection LeaderElection

	// GRPCBindAddress serves the mTLS MetricsService.
	GRPCBindAddress string
	// HealthBindAddress serves plaintext grpc.health.v1.Health for kubelet
	// probes.
	HealthBindAddress string
	// MetricsBindAddress serves Prometheus /metrics.
	MetricsBindAddress string
	// Profiling also serves Go's runtime profiles at /debug/pprof/ on
	// MetricsBindAddress.
	Profiling bool
	// CertDir holds tls.crt, tls.key and ca.crt for the gRPC server.
	CertDir string

	// WatchNamespace limits the operator to one namespace; empty means all.
	WatchNamespace string
	// ClusterObjectNamespace holds the Secrets and ConfigMaps that
	// ClusterTriggerAuthentications refer to.
	ClusterObjectNamespace string
	// FilePathAuthRootPath is the directory under which a
	// ClusterTriggerAuthentication's filePath is read; empty refuses
	// filePath.
	FilePathAuthRootPath string
	KubeAPIQPS           float32
	KubeAPIBurst         int
	Workers              int

	Logging *logsapi.LoggingConfiguration
}

// NewOptions returns Options holding the defaults.
func NewOptions() *Options {
	return &Options{
		LeaderElection: LeaderElection{
			Enabled:       true,
			LeaseDuration: DefaultLeaderElectionLeaseDuration,
			RenewDeadline: DefaultLeaderElectionRenewDeadline,
			RetryPeriod:   DefaultLeaderElectionRetryPeriod,
			Namespace:     defaultLeaderElectionNamespace(),
			ID:            DefaultLeaderElectionID,
		},
		GRPCBindAddress:        DefaultGRPCBindAddress,
		HealthBindAddress:      DefaultHealthBindAddress,
		MetricsBindAddress:     DefaultMetricsBindAddress,
		CertDir:                DefaultCertDir,
		ClusterObjectNamespace: defaultLeaderElectionNamespace(),
		KubeAPIQPS:             DefaultKubeAPIQPS,
		KubeAPIBurst:           DefaultKubeAPIBurst,
		Workers:                DefaultWorkers,
		Logging:                logsapi.NewLoggingConfiguration(),
	}
}

// defaultLeaderElectionNamespace is the namespace the pod runs in: the
// POD_NAMESPACE environment variable (set through the downward API) if set,
// else the namespace file of the mounted service account token, else
// DefaultLeaderElectionNamespace. client-go finds its in-cluster namespace
// in the same order.
func defaultLeaderElectionNamespace() string {
	if ns := strings.TrimSpace(os.Getenv(podNamespaceEnv)); ns != "" {
		return ns
	}
	if b, err := os.ReadFile(serviceAccountNamespaceFile); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return DefaultLeaderElectionNamespace
}

// Flags returns the flags of the options, by section.
func (o *Options) Flags() cliflag.NamedFlagSets {
	var fss cliflag.NamedFlagSets

	fs := fss.FlagSet("kubernetes client")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig,
		"Path to a kubeconfig file. Empty: the KUBECONFIG environment variable, then the in-cluster configuration of the pod's service account.")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS,
		"Sustained requests per second to the Kubernetes API server: a ceiling for bursts, since in steady state the operator sends only its Lease renewals. "+
			"Higher than client-go's default of 5 because ebb is sized for 10,000 ScaledObjects: creating one costs about three requests (its HPA, its status, an event), "+
			"so 10,000 created at once take a minute at 500 requests per second and 100 minutes at 5.")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst,
		"Requests allowed in a burst above --kube-api-qps. Higher than client-go's default of 10 for the same reason: "+
			"after a restart or a leadership change every ScaledObject is reconciled at once.")

	fs = fss.FlagSet("controllers")
	fs.StringVar(&o.WatchNamespace, "watch-namespace", o.WatchNamespace,
		"Only watch ScaledObjects and HorizontalPodAutoscalers in this namespace. Empty: all namespaces.")
	fs.IntVar(&o.Workers, "workers", o.Workers,
		"Number of ScaledObjects reconciled concurrently.")
	fs.StringVar(&o.ClusterObjectNamespace, "cluster-object-namespace", o.ClusterObjectNamespace,
		"Namespace of the Secrets and ConfigMaps that ClusterTriggerAuthentications refer to. Defaults to the pod's namespace.")
	fs.StringVar(&o.FilePathAuthRootPath, "filepath-auth-root-path", o.FilePathAuthRootPath,
		"Absolute path of the directory (a mounted Secret, for example) under which a ClusterTriggerAuthentication's filePath is read: "+
			"a file holding a JSON object of string parameters. A filePath that leads outside it (.., an absolute path, a symbolic link) is refused. "+
			"Files in use are checked for changes every few seconds. Empty: filePath is refused. KEDA's flag of the same name.")

	fs = fss.FlagSet("serving")
	fs.StringVar(&o.GRPCBindAddress, "grpc-bind-address", o.GRPCBindAddress,
		"Address of the mutual TLS gRPC server that serves metric values to ebb's metrics-apiserver. \"0\" turns it off.")
	fs.StringVar(&o.HealthBindAddress, "health-bind-address", o.HealthBindAddress,
		"Address of the plaintext gRPC health server (grpc.health.v1.Health) for kubelet probes. \"0\" turns it off.")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress,
		"Address of the HTTP server of Prometheus metrics at /metrics. \"0\" turns it off.")
	fs.BoolVar(&o.Profiling, "profiling", o.Profiling,
		"Also serve Go's runtime profiles (pprof) at /debug/pprof/ on --metrics-bind-address. Off by default: a profile costs CPU and shows the process's internals.")
	fs.StringVar(&o.CertDir, "cert-dir", o.CertDir,
		"Directory holding tls.crt, tls.key and ca.crt for the gRPC server, such as a mounted cert-manager Secret. "+
			"The files are reloaded when they change. The CA verifies client certificates.")

	fs = fss.FlagSet("leader election")
	fs.BoolVar(&o.LeaderElection.Enabled, "leader-elect", o.LeaderElection.Enabled,
		"Elect a leader through a Lease before starting the controllers, so that only one replica acts at a time. Turn it off only with a single replica.")
	fs.DurationVar(&o.LeaderElection.LeaseDuration, "leader-elect-lease-duration", o.LeaderElection.LeaseDuration,
		"How long a standby waits after the last renewal of the Lease before it takes leadership.")
	fs.DurationVar(&o.LeaderElection.RenewDeadline, "leader-elect-renew-deadline", o.LeaderElection.RenewDeadline,
		"How long the leader keeps trying to renew the Lease before it gives up leadership and exits. Shorter than the lease duration.")
	fs.DurationVar(&o.LeaderElection.RetryPeriod, "leader-elect-retry-period", o.LeaderElection.RetryPeriod,
		"How long to wait between attempts to acquire or renew the Lease.")
	fs.StringVar(&o.LeaderElection.Namespace, "leader-elect-namespace", o.LeaderElection.Namespace,
		"Namespace of the Lease. Defaults to the pod's namespace (POD_NAMESPACE, or the service account's namespace file), else "+DefaultLeaderElectionNamespace+".")
	fs.StringVar(&o.LeaderElection.ID, "leader-elect-id", o.LeaderElection.ID,
		"Name of the Lease.")

	logsapi.AddFlags(o.Logging, fss.FlagSet("logging"))
	return fss
}

// Validate checks the options and returns every problem found.
func (o *Options) Validate() []error {
	var errs []error

	errs = append(errs, cmdutil.ValidateBindAddress("--grpc-bind-address", o.GRPCBindAddress)...)
	errs = append(errs, cmdutil.ValidateBindAddress("--health-bind-address", o.HealthBindAddress)...)
	errs = append(errs, cmdutil.ValidateBindAddress("--metrics-bind-address", o.MetricsBindAddress)...)
	if o.GRPCBindAddress != Disabled {
		errs = append(errs, cmdutil.ValidateCertDir(o.CertDir, "the gRPC server needs it (--grpc-bind-address=0 turns it off)")...)
	}

	if o.KubeAPIQPS <= 0 {
		errs = append(errs, fmt.Errorf("--kube-api-qps must be greater than 0, got %v", o.KubeAPIQPS))
	}
	if o.KubeAPIBurst < 1 {
		errs = append(errs, fmt.Errorf("--kube-api-burst must be at least 1, got %d", o.KubeAPIBurst))
	}
	if o.Workers < 1 {
		errs = append(errs, fmt.Errorf("--workers must be at least 1, got %d", o.Workers))
	}
	if o.WatchNamespace != "" {
		for _, msg := range validation.IsDNS1123Label(o.WatchNamespace) {
			errs = append(errs, fmt.Errorf("--watch-namespace %q is not a valid namespace: %s", o.WatchNamespace, msg))
		}
	}

	for _, msg := range validation.IsDNS1123Label(o.ClusterObjectNamespace) {
		errs = append(errs, fmt.Errorf("--cluster-object-namespace %q is not a valid namespace: %s", o.ClusterObjectNamespace, msg))
	}
	if p := o.FilePathAuthRootPath; p != "" && !filepath.IsAbs(p) {
		errs = append(errs, fmt.Errorf("--filepath-auth-root-path %q must be an absolute path", p))
	}

	if o.LeaderElection.Enabled {
		errs = append(errs, o.LeaderElection.validate()...)
	}

	if o.Logging == nil {
		errs = append(errs, errors.New("logging configuration is missing"))
	} else if fieldErrs := logsapi.Validate(o.Logging, nil, nil); len(fieldErrs) > 0 {
		errs = append(errs, fmt.Errorf("logging flags: %w", fieldErrs.ToAggregate()))
	}
	return errs
}

func (le *LeaderElection) validate() []error {
	var errs []error
	positive := []struct {
		flag string
		d    time.Duration
	}{
		{"--leader-elect-lease-duration", le.LeaseDuration},
		{"--leader-elect-renew-deadline", le.RenewDeadline},
		{"--leader-elect-retry-period", le.RetryPeriod},
	}
	allPositive := true
	for _, p := range positive {
		if p.d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be greater than 0, got %v", p.flag, p.d))
			allPositive = false
		}
	}
	if allPositive {
		if le.RenewDeadline >= le.LeaseDuration {
			errs = append(errs, fmt.Errorf("--leader-elect-renew-deadline (%v) must be shorter than --leader-elect-lease-duration (%v)",
				le.RenewDeadline, le.LeaseDuration))
		}
		// client-go refuses a renew deadline that does not leave room for
		// more than one jittered retry (its JitterFactor is 1.2).
		if float64(le.RenewDeadline) <= 1.2*float64(le.RetryPeriod) {
			errs = append(errs, fmt.Errorf("--leader-elect-renew-deadline (%v) must be longer than 1.2 × --leader-elect-retry-period (%v)",
				le.RenewDeadline, le.RetryPeriod))
		}
	}
	if le.Namespace == "" {
		errs = append(errs, errors.New("--leader-elect-namespace must not be empty"))
	} else {
		for _, msg := range validation.IsDNS1123Label(le.Namespace) {
			errs = append(errs, fmt.Errorf("--leader-elect-namespace %q is not a valid namespace: %s", le.Namespace, msg))
		}
	}
	if le.ID == "" {
		errs = append(errs, errors.New("--leader-elect-id must not be empty"))
	} else {
		for _, msg := range validation.IsDNS1123Subdomain(le.ID) {
			errs = append(errs, fmt.Errorf("--leader-elect-id %q is not a valid Lease name: %s", le.ID, msg))
		}
	}
	return errs
}

// Config is the completed configuration of ebb-operator.
type Config struct {
	// Kube is the configuration of every client to the API server.
	Kube *rest.Config

	LeaderElection LeaderElection
	// Identity names this replica in the Lease: host name and a random
	// suffix, so that a restarted pod never mistakes the Lease of its
	// previous life for its own.
	Identity string

	GRPCBindAddress    string
	HealthBindAddress  string
	MetricsBindAddress string
	Profiling          bool
	CertDir            string
	WatchNamespace     string
	Workers            int
	// ClusterObjectNamespace and FilePathAuthRootPath: see Options.
	ClusterObjectNamespace string
	FilePathAuthRootPath   string
}

// Config completes validated options into a Config: it loads the client
// configuration and picks this replica's identity.
func (o *Options) Config() (*Config, error) {
	kube, err := cmdutil.KubeConfig(o.Kubeconfig, o.KubeAPIQPS, o.KubeAPIBurst, UserAgent())
	if err != nil {
		return nil, err
	}

	hostname, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("getting the host name for the leader election identity: %w", err)
	}

	return &Config{
		Kube:                   kube,
		LeaderElection:         o.LeaderElection,
		Identity:               hostname + "_" + string(uuid.NewUUID()),
		GRPCBindAddress:        o.GRPCBindAddress,
		HealthBindAddress:      o.HealthBindAddress,
		MetricsBindAddress:     o.MetricsBindAddress,
		Profiling:              o.Profiling,
		CertDir:                o.CertDir,
		WatchNamespace:         o.WatchNamespace,
		Workers:                o.Workers,
		ClusterObjectNamespace: o.ClusterObjectNamespace,
		FilePathAuthRootPath:   o.FilePathAuthRootPath,
	}, nil
}

// UserAgent is the User-Agent of ebb-operator's requests:
// ebb-operator/<version>.
func UserAgent() string {
	return UserAgentName + "/" + version.Get().GitVersion
}
