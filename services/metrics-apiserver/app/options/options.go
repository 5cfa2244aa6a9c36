// Package options holds the command-line options of ebb-metrics-apiserver.
package options

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	cliflag "k8s.io/component-base/cli/flag"
	logsapi "k8s.io/component-base/logs/api/v1"
	cmoptions "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd/options"

	"github.com/ebb-autoscaler/ebb/pkg/cmdutil"

	// Make --logging-format=json available.
	_ "k8s.io/component-base/logs/json/register"
)

// Defaults of the flags.
const (
	DefaultSecurePort         = 6443
	DefaultCertDir            = "/etc/ebb/certs"
	DefaultOperatorAddress    = "ebb-operator.ebb-system.svc:9443"
	DefaultHealthBindAddress  = ":8081"
	DefaultMetricsBindAddress = ":8080"
	DefaultRequestTimeout     = 10 * time.Second
	// DefaultHTTP2MaxStreamsPerConnection is what k8s.io/apiserver's
	// RecommendedOptions give aggregated API servers; the
	// custom-metrics-apiserver library leaves the generic 100. The
	// aggregator sends every read of every HPA over one HTTP/2
	// connection: once 100 handlers are busy (a stall, or reads whose
	// callers gave up still being answered) further requests queue,
	// beyond 4 × the limit the connection is closed (ENHANCE_YOUR_CALM),
	// and the aggregator reconnects, a TLS handshake each time, which
	// makes an overloaded server slower still.
	DefaultHTTP2MaxStreamsPerConnection = 1000

	// Disabled, given as a bind address, turns that server off.
	Disabled = cmdutil.Disabled
)

// Options are the command-line options of ebb-metrics-apiserver.
type Options struct {
	// Adapter holds the aggregated API server's options: secure serving,
	// delegated authentication and authorization, audit.
	Adapter *cmoptions.CustomMetricsAdapterServerOptions

	Kubeconfig string

	// OperatorAddresses are the operator's gRPC endpoints (host:port); one
	// DNS name is resolved to all its addresses.
	OperatorAddresses []string
	// OperatorServerName is the name the operator's certificate must be
	// valid for; empty: the host of the first address.
	OperatorServerName string
	// RequestTimeout bounds one external metric request, retries
	// included.
	RequestTimeout time.Duration
	// ReadinessFollowsOperatorLink makes the pod unready while the
	// operator link is down.
	ReadinessFollowsOperatorLink bool

	HealthBindAddress  string
	MetricsBindAddress string

	Delegate Delegate

	Logging *logsapi.LoggingConfiguration
}

// Delegate holds the options of the delegate external metrics adapter.
type Delegate struct {
	URL       string
	CAFile    string
	CertFile  string
	KeyFile   string
	TokenFile string
}

// NewOptions returns Options holding the defaults.
func NewOptions() *Options {
	adapter := cmoptions.NewCustomMetricsAdapterServerOptions()
	adapter.SecureServing.BindPort = DefaultSecurePort
	// cert-manager's file names in cert-manager's mount point. The files
	// are set explicitly in Complete, so that a missing certificate is an
	// error and never a self-signed stand-in.
	adapter.SecureServing.ServerCert.CertDirectory = DefaultCertDir
	adapter.SecureServing.ServerCert.PairName = "tls"
	adapter.SecureServing.HTTP2MaxStreamsPerConnection = DefaultHTTP2MaxStreamsPerConnection
	return &Options{
		Adapter:            adapter,
		OperatorAddresses:  []string{DefaultOperatorAddress},
		RequestTimeout:     DefaultRequestTimeout,
		HealthBindAddress:  DefaultHealthBindAddress,
		MetricsBindAddress: DefaultMetricsBindAddress,
		Logging:            logsapi.NewLoggingConfiguration(),
	}
}

// Flags returns the flags of the options, by section.
func (o *Options) Flags() cliflag.NamedFlagSets {
	var fss cliflag.NamedFlagSets

	fs := fss.FlagSet("kubernetes client")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig,
		"Path to a kubeconfig file, used for delegated authentication and authorization unless "+
			"--authentication-kubeconfig or --authorization-kubeconfig say otherwise. Empty: the KUBECONFIG environment variable, "+
			"then the in-cluster configuration of the pod's service account.")

	fs = fss.FlagSet("operator link")
	fs.StringSliceVar(&o.OperatorAddresses, "operator-address", o.OperatorAddresses,
		"The operator's mutual TLS gRPC endpoints, host:port, comma-separated. A DNS name is resolved to all its addresses "+
			"(a headless Service lists every operator replica) and calls go only to the replica whose MetricsService reports SERVING, the leader.")
	fs.StringVar(&o.OperatorServerName, "operator-server-name", o.OperatorServerName,
		"Name the operator's certificate must be valid for. Empty: the host of the first --operator-address.")
	fs.DurationVar(&o.RequestTimeout, "request-timeout", o.RequestTimeout,
		"Bound of one external metric request, retries against the operator included.")
	fs.BoolVar(&o.ReadinessFollowsOperatorLink, "readiness-follows-operator-link", o.ReadinessFollowsOperatorLink,
		"Report the pod unready while the operator link is down. Off by default: an unready pod makes the APIService unavailable, "+
			"and an unavailable aggregated API breaks discovery for every client in the cluster (namespace deletion hangs). "+
			"Turn it on with several replicas that should fail over. The link's own health status, operator-link, is reported either way.")

	fs = fss.FlagSet("delegate adapter")
	fs.StringVar(&o.Delegate.URL, "delegate-url", o.Delegate.URL,
		"https:// base URL of another external metrics adapter. Requests whose label selector names no ScaledObject, or whose metric "+
			"name is not one of ebb's, are forwarded to it, so ebb and that adapter can serve one cluster. Empty: such requests are refused with 400.")
	fs.StringVar(&o.Delegate.CAFile, "delegate-ca-file", o.Delegate.CAFile,
		"CA bundle that verifies the delegate adapter's serving certificate. Empty: the system roots.")
	fs.StringVar(&o.Delegate.CertFile, "delegate-client-cert-file", o.Delegate.CertFile,
		"Client certificate for the delegate adapter, if it wants one.")
	fs.StringVar(&o.Delegate.KeyFile, "delegate-client-key-file", o.Delegate.KeyFile,
		"Key of --delegate-client-cert-file.")
	fs.StringVar(&o.Delegate.TokenFile, "delegate-token-file", o.Delegate.TokenFile,
		"File holding a bearer token for the delegate adapter, re-read when it changes.")

	fs = fss.FlagSet("serving")
	o.Adapter.AddFlags(fs)
	if f := fs.Lookup("cert-dir"); f != nil {
		f.Usage = "Directory holding tls.crt, tls.key and ca.crt, such as a mounted cert-manager Secret: the serving certificate of the " +
			"aggregated API (unless --tls-cert-file says otherwise), which is also the client certificate of the operator link, and the CA " +
			"that verifies the operator. The files are reloaded when they change."
	}
	fs.StringVar(&o.HealthBindAddress, "health-bind-address", o.HealthBindAddress,
		"Address of the plaintext gRPC health server (grpc.health.v1.Health) for kubelet probes. \"0\" turns it off.")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress,
		"Address of the HTTP server of Prometheus metrics at /metrics. \"0\" turns it off.")

	logsapi.AddFlags(o.Logging, fss.FlagSet("logging"))
	return fss
}

// CertDir is the directory of the certificate files.
func (o *Options) CertDir() string { return o.Adapter.SecureServing.ServerCert.CertDirectory }

// Complete fills in what the flags leave to be derived: the serving
// certificate files from --cert-dir, the kubeconfig of delegated
// authentication and authorization, the operator's server name.
func (o *Options) Complete() {
	sc := &o.Adapter.SecureServing.ServerCert
	if sc.CertKey.CertFile == "" && sc.CertKey.KeyFile == "" && sc.CertDirectory != "" {
		sc.CertKey.CertFile = filepath.Join(sc.CertDirectory, "tls.crt")
		sc.CertKey.KeyFile = filepath.Join(sc.CertDirectory, "tls.key")
	}
	if o.Kubeconfig == "" {
		o.Kubeconfig = os.Getenv("KUBECONFIG")
	}
	if o.Kubeconfig != "" {
		if o.Adapter.Authentication.RemoteKubeConfigFile == "" {
			o.Adapter.Authentication.RemoteKubeConfigFile = o.Kubeconfig
		}
		if o.Adapter.Authorization.RemoteKubeConfigFile == "" {
			o.Adapter.Authorization.RemoteKubeConfigFile = o.Kubeconfig
		}
	}
	if o.OperatorServerName == "" && len(o.OperatorAddresses) > 0 {
		if host, _, err := net.SplitHostPort(o.OperatorAddresses[0]); err == nil && net.ParseIP(host) == nil {
			o.OperatorServerName = host
		}
	}
}

// Validate checks the completed options and returns every problem found.
func (o *Options) Validate() []error {
	var errs []error
	errs = append(errs, o.Adapter.Validate()...)
	errs = append(errs, cmdutil.ValidateBindAddress("--health-bind-address", o.HealthBindAddress)...)
	errs = append(errs, cmdutil.ValidateBindAddress("--metrics-bind-address", o.MetricsBindAddress)...)
	errs = append(errs, cmdutil.ValidateCertDir(o.CertDir(), "the aggregated API serves HTTPS and the operator link uses mutual TLS")...)

	if len(o.OperatorAddresses) == 0 {
		errs = append(errs, errors.New("--operator-address must name at least one endpoint"))
	}
	for _, addr := range o.OperatorAddresses {
		if addr == Disabled {
			errs = append(errs, errors.New("--operator-address cannot be turned off: every request is answered by the operator"))
			continue
		}
		errs = append(errs, cmdutil.ValidateHostPort("--operator-address", addr)...)
	}
	if o.OperatorServerName == "" {
		errs = append(errs, errors.New("--operator-server-name is required when --operator-address is an IP address: the operator's certificate is verified against it"))
	}
	if o.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--request-timeout must be greater than 0, got %v", o.RequestTimeout))
	}
	if o.Delegate.URL == "" && (o.Delegate.CAFile != "" || o.Delegate.CertFile != "" || o.Delegate.KeyFile != "" || o.Delegate.TokenFile != "") {
		errs = append(errs, errors.New("the --delegate-* flags need --delegate-url"))
	}
	if o.Logging == nil {
		errs = append(errs, errors.New("logging configuration is missing"))
	} else if fieldErrs := logsapi.Validate(o.Logging, nil, nil); len(fieldErrs) > 0 {
		errs = append(errs, fmt.Errorf("logging flags: %w", fieldErrs.ToAggregate()))
	}
	return errs
}
