package options

import (
	"errors"
	"fmt"

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
	DefaultBindAddress        = ":9443"
	DefaultHealthBindAddress  = ":8081"
	DefaultMetricsBindAddress = ":8080"
	DefaultCertDir            = "/etc/ebb/certs"

	// Every admission makes a handful of reads (the target's kind and
	// /scale, the ScaledObjects on the same target, the namespace's HPAs),
	// and the API server calls the webhook as fast as clients write
	// keda.sh objects: client-go's default of 5 requests per second would
	// make a Helm install of a few dozen ScaledObjects time out in the
	// limiter. The API server's priority and fairness still protects it.
	DefaultKubeAPIQPS   float32 = 300
	DefaultKubeAPIBurst int     = 600

	// Disabled, given as the health or metrics bind address, turns that
	// server off.
	Disabled = cmdutil.Disabled

	// UserAgentName is the first part of the webhook's User-Agent.
	UserAgentName = "ebb-webhook"
)

// Options are the command-line options of ebb-webhook.
type Options struct {
	Kubeconfig string

	// BindAddress serves the HTTPS admission endpoints.
	BindAddress string
	// HealthBindAddress serves plaintext grpc.health.v1.Health for
	// kubelet probes.
	HealthBindAddress string
	// MetricsBindAddress serves Prometheus /metrics.
	MetricsBindAddress string
	// CertDir holds the serving certificate: tls.crt, tls.key, ca.crt.
	CertDir string

	KubeAPIQPS   float32
	KubeAPIBurst int

	Logging *logsapi.LoggingConfiguration
}

// NewOptions returns Options holding the defaults.
func NewOptions() *Options {
	return &Options{
		BindAddress:        DefaultBindAddress,
		HealthBindAddress:  DefaultHealthBindAddress,
		MetricsBindAddress: DefaultMetricsBindAddress,
		CertDir:            DefaultCertDir,
		KubeAPIQPS:         DefaultKubeAPIQPS,
		KubeAPIBurst:       DefaultKubeAPIBurst,
		Logging:            logsapi.NewLoggingConfiguration(),
	}
}

// Flags returns the flags of the options, by section.
func (o *Options) Flags() cliflag.NamedFlagSets {
	var fss cliflag.NamedFlagSets

	fs := fss.FlagSet("kubernetes client")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig,
		"Path to a kubeconfig file. Empty: the KUBECONFIG environment variable, then the in-cluster configuration of the pod's service account.")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS,
		"Sustained requests per second to the Kubernetes API server. Every admission reads the cluster directly (no cache), a few requests each, "+
			"so this is far above client-go's default of 5.")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst,
		"Requests allowed in a burst above --kube-api-qps, for a Helm install or a GitOps sync that creates many objects at once.")

	fs = fss.FlagSet("serving")
	fs.StringVar(&o.BindAddress, "bind-address", o.BindAddress,
		"Address of the HTTPS server of the admission endpoints, which the API server calls.")
	fs.StringVar(&o.CertDir, "cert-dir", o.CertDir,
		"Directory holding tls.crt, tls.key and ca.crt, such as a mounted cert-manager Secret. tls.crt and tls.key are the serving certificate; "+
			"ca.crt must have issued tls.crt. The files are reloaded when they change, without a restart.")
	fs.StringVar(&o.HealthBindAddress, "health-bind-address", o.HealthBindAddress,
		"Address of the plaintext gRPC health server (grpc.health.v1.Health) for kubelet probes. \"0\" turns it off.")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress,
		"Address of the HTTP server of Prometheus metrics at /metrics. \"0\" turns it off.")

	logsapi.AddFlags(o.Logging, fss.FlagSet("logging"))
	return fss
}

// Validate checks the options and returns every problem found.
func (o *Options) Validate() []error {
	var errs []error
	if o.BindAddress == Disabled {
		errs = append(errs, errors.New("--bind-address cannot be turned off: the admission server is what the webhook is for"))
	} else {
		errs = append(errs, cmdutil.ValidateBindAddress("--bind-address", o.BindAddress)...)
	}
	errs = append(errs, cmdutil.ValidateBindAddress("--health-bind-address", o.HealthBindAddress)...)
	errs = append(errs, cmdutil.ValidateBindAddress("--metrics-bind-address", o.MetricsBindAddress)...)
	errs = append(errs, cmdutil.ValidateCertDir(o.CertDir, "the API server calls webhooks over HTTPS only")...)

	if o.KubeAPIQPS <= 0 {
		errs = append(errs, fmt.Errorf("--kube-api-qps must be greater than 0, got %v", o.KubeAPIQPS))
	}
	if o.KubeAPIBurst < 1 {
		errs = append(errs, fmt.Errorf("--kube-api-burst must be at least 1, got %d", o.KubeAPIBurst))
	}

	if o.Logging == nil {
		errs = append(errs, errors.New("logging configuration is missing"))
	} else if fieldErrs := logsapi.Validate(o.Logging, nil, nil); len(fieldErrs) > 0 {
		errs = append(errs, fmt.Errorf("logging flags: %w", fieldErrs.ToAggregate()))
	}
	return errs
}

// Config is the completed configuration of ebb-webhook.
type Config struct {
	// Kube is the configuration of every client to the API server.
	Kube *rest.Config

	BindAddress        string
	HealthBindAddress  string
	MetricsBindAddress string
	CertDir            string
}

// Config completes validated options into a Config: it loads the client
// configuration.
func (o *Options) Config() (*Config, error) {
	kube, err := cmdutil.KubeConfig(o.Kubeconfig, o.KubeAPIQPS, o.KubeAPIBurst, UserAgent())
	if err != nil {
		return nil, err
	}
	return &Config{
		Kube:               kube,
		BindAddress:        o.BindAddress,
		HealthBindAddress:  o.HealthBindAddress,
		MetricsBindAddress: o.MetricsBindAddress,
		CertDir:            o.CertDir,
	}, nil
}

// UserAgent is the User-Agent of ebb-webhook's requests:
// ebb-webhook/<version>.
func UserAgent() string {
	return UserAgentName + "/" + version.Get().GitVersion
}
