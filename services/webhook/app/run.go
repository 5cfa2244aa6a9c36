package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned"
	"github.com/ebb-autoscaler/ebb/pkg/health"
	"github.com/ebb-autoscaler/ebb/pkg/promserve"
	"github.com/ebb-autoscaler/ebb/pkg/restmapper"
	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles"
	"github.com/ebb-autoscaler/ebb/pkg/uncached"
	"github.com/ebb-autoscaler/ebb/pkg/version"
	"github.com/ebb-autoscaler/ebb/services/webhook/app/options"
	"github.com/ebb-autoscaler/ebb/services/webhook/internal/admission"
	"github.com/ebb-autoscaler/ebb/services/webhook/internal/validate"
)

const (
	// readHeaderTimeout bounds how long a client may take to send its
	// request headers (slowloris).
	readHeaderTimeout = 10 * time.Second
	// readTimeout bounds reading a whole admission request.
	readTimeout = 30 * time.Second
	// writeTimeout bounds a whole exchange: an admission never takes
	// longer than admission.MaxTimeout.
	writeTimeout = admission.MaxTimeout + 5*time.Second
	// idleTimeout closes keep-alive connections the API server left idle.
	idleTimeout = 90 * time.Second
	// shutdownTimeout bounds how long each server waits for requests in
	// flight to finish at shutdown.
	shutdownTimeout = 10 * time.Second

	// protobuf is the content type of the core API's clients: the
	// namespace's HPAs are listed on every admission, and protobuf
	// decodes several times faster than JSON. keda.sh (a CRD) speaks JSON
	// only and has a client of its own.
	protobuf = "application/vnd.kubernetes.protobuf"

	// Health service names.
	tlsHealthService       = "tls"
	apiServerHealthService = "apiserver"
)

// Run validates opts, applies the logging configuration and serves until
// ctx is done.
func Run(ctx context.Context, opts *options.Options) error {
	if errs := opts.Validate(); len(errs) > 0 {
		return fmt.Errorf("invalid options:\n%w", errors.Join(errs...))
	}
	if err := logsapi.ValidateAndApply(opts.Logging, nil); err != nil {
		return fmt.Errorf("applying the logging flags: %w", err)
	}
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	return run(ctx, cfg)
}

// run serves the admission endpoints over HTTPS, health and metrics until
// ctx is done, then drains every server and returns nil; it returns early
// with an error if a server fails.
func run(ctx context.Context, cfg *options.Config) (runErr error) {
	logger := klog.FromContext(ctx)
	ctx = klog.NewContext(ctx, logger)
	logger.Info("Starting ebb-webhook", "version", version.Get().String(), "bindAddress", cfg.BindAddress, "certDir", cfg.CertDir)
	defer func() { logger.Info("Stopped ebb-webhook", "err", runErr) }()

	reg, err := promserve.NewRegistry()
	if err != nil {
		return fmt.Errorf("registering process metrics: %w", err)
	}

	// The serving certificate, re-read when cert-manager renews it. Leaf
	// verification rejects a tls.crt and a ca.crt from different updates:
	// the API server trusts ca.crt (the caBundle cainjector copied).
	tlsSource, err := tlsfiles.New(cfg.CertDir, tlsfiles.WithLeafVerification(), tlsfiles.WithName("webhook"))
	if err != nil {
		return fmt.Errorf("loading the serving certificate from --cert-dir: %w", err)
	}

	reader, err := newReader(cfg.Kube, logger)
	if err != nil {
		return err
	}
	admissionMetrics := admission.NewMetrics()
	if err := errors.Join(
		restmapper.RegisterMetrics(reg),
		tlsSource.RegisterMetrics(reg),
		reader.RegisterMetrics(reg),
		admissionMetrics.RegisterMetrics(reg),
	); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}

	// Health. Readiness: the serving certificate is loaded and valid, and
	// the API server, which every admission reads, answers. The check has
	// a client of its own, outside the admissions' rate limiter.
	probe, err := kubernetes.NewForConfig(rest.CopyConfig(cfg.Kube))
	if err != nil {
		return fmt.Errorf("creating the health check client: %w", err)
	}
	healthServer := health.NewServer()
	healthServer.AddReadiness(tlsHealthService, certificateValid(tlsSource))
	healthServer.AddReadiness(apiServerHealthService, func(ctx context.Context) error {
		_, err := probe.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	})

	// Listen on everything before serving anything, so a port in use is
	// reported at once.
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close() // already closed when served; harmless
		}
	}()
	listen := func(name, addr string) (net.Listener, error) {
		if addr == options.Disabled {
			return nil, nil
		}
		lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listening for the %s server on %s: %w", name, addr, err)
		}
		listeners = append(listeners, lis)
		return lis, nil
	}
	admissionLis, err := listen("admission", cfg.BindAddress)
	if err != nil {
		return err
	}
	healthLis, err := listen("health", cfg.HealthBindAddress)
	if err != nil {
		return err
	}
	metricsLis, err := listen("metrics", cfg.MetricsBindAddress)
	if err != nil {
		return err
	}

	admissionServer := newAdmissionServer(NewHandler(reader, admissionMetrics, logger.WithName("admission")), tlsSource, logger)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return tlsSource.Run(gctx) })
	serveHTTP(gctx, g, "admission", admissionServer, func() error {
		logger.Info("Serving admission requests over HTTPS", "addr", admissionLis.Addr().String())
		return admissionServer.ServeTLS(admissionLis, "", "")
	}, logger)
	if healthLis != nil {
		g.Go(func() error { return healthServer.Serve(gctx, healthLis) })
	}
	if metricsLis != nil {
		metricsServer := &http.Server{
			Handler:           promserve.Handler(reg, logger.WithName("metrics")),
			ReadHeaderTimeout: readHeaderTimeout,
			ErrorLog:          serverErrorLog(logger.WithName("metrics")),
		}
		serveHTTP(gctx, g, "metrics", metricsServer, func() error {
			logger.Info("Serving Prometheus metrics", "addr", metricsLis.Addr().String())
			return metricsServer.Serve(metricsLis)
		}, logger)
	}
	return g.Wait()
}

// serveHTTP runs serve in g, and shuts srv down, draining requests in
// flight for at most shutdownTimeout, once ctx is done.
func serveHTTP(ctx context.Context, g *errgroup.Group, name string, srv *http.Server, serve func() error, logger klog.Logger) {
	g.Go(func() error {
		if err := serve(); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("%s server: %w", name, err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
			return fmt.Errorf("shutting down the %s server: %w", name, err)
		}
		logger.V(2).Info("Server stopped", "server", name)
		return nil
	})
}

// newReader builds the uncached reader and its clients. All of them share
// one rate limiter, so --kube-api-qps and --kube-api-burst bound the
// webhook as a whole.
func newReader(kube *rest.Config, logger klog.Logger) (*uncached.Reader, error) {
	workCfg := rest.CopyConfig(kube)
	workCfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(kube.QPS, kube.Burst)
	coreCfg := rest.CopyConfig(workCfg)
	coreCfg.ContentType = protobuf
	coreCfg.AcceptContentTypes = protobuf + ",application/json"

	kubeClient, err := kubernetes.NewForConfig(coreCfg)
	if err != nil {
		return nil, fmt.Errorf("creating the Kubernetes client: %w", err)
	}
	kedaClient, err := versioned.NewForConfig(workCfg)
	if err != nil {
		return nil, fmt.Errorf("creating the keda.sh client: %w", err)
	}
	dynamicClient, err := dynamic.NewForConfig(workCfg)
	if err != nil {
		return nil, fmt.Errorf("creating the dynamic client: %w", err)
	}
	// A plain, uncached discovery client: the mapper keeps its own cache
	// of kinds (never of objects), and the /scale question is asked anew
	// on every admission.
	discoveryClient, err := discovery.NewDiscoveryClientForConfig(workCfg)
	if err != nil {
		return nil, fmt.Errorf("creating the discovery client: %w", err)
	}
	// Every miss re-discovers its group (concurrent misses share one
	// discovery): a kind installed a moment before an admission that
	// needs it must be found, and the webhook runs no CRD informer to
	// learn about it otherwise.
	mapper := restmapper.New(discoveryClient, restmapper.WithLogger(logger), restmapper.WithMinInterval(0))
	return uncached.New(uncached.Config{
		Mapper:    mapper,
		Discovery: discoveryClient,
		Dynamic:   dynamicClient,
		Kube:      kubeClient,
		Keda:      kedaClient,
	})
}

// NewHandler returns the admission handler with the validators of the four
// keda.sh kinds, at KEDA's paths, reading the cluster through reader.
func NewHandler(reader validate.Reader, m *admission.Metrics, logger klog.Logger) http.Handler {
	resource := func(r string) schema.GroupResource { return schema.GroupResource{Group: "keda.sh", Resource: r} }
	return admission.NewHandler([]admission.Route{
		{Path: admission.ScaledObjectPath, Kind: v1alpha1.ScaledObjectKind, Resource: resource("scaledobjects"),
			Validator: validate.NewScaledObject(reader)},
		{Path: admission.ScaledJobPath, Kind: v1alpha1.ScaledJobKind, Resource: resource("scaledjobs"),
			Validator: validate.NewScaledJob(reader)},
		{Path: admission.TriggerAuthenticationPath, Kind: v1alpha1.TriggerAuthenticationKind, Resource: resource("triggerauthentications"),
			Validator: validate.TriggerAuthentication{}},
		{Path: admission.ClusterTriggerAuthenticationPath, Kind: v1alpha1.ClusterTriggerAuthenticationKind, Resource: resource("clustertriggerauthentications"),
			Validator: validate.TriggerAuthentication{Cluster: true}},
	}, m, logger)
}

// newAdmissionServer returns the HTTPS server of the admission endpoints.
// Its certificate is whatever src holds at each handshake, so a renewal
// takes effect on the next connection without a restart. The webhook asks
// for no client certificate: the API server is its only caller, and what
// it is told is checked against the cluster anyway.
func newAdmissionServer(handler http.Handler, src *tlsfiles.Source, logger klog.Logger) *http.Server {
	return &http.Server{
		Handler:           handler,
		TLSConfig:         tlsConfig(src),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          serverErrorLog(logger.WithName("admission")),
	}
}

// tlsConfig serves src's current certificate.
func tlsConfig(src *tlsfiles.Source) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return src.Certificate(), nil
		},
	}
}

// certificateValid is the readiness check of the serving certificate: it
// is loaded (tlsfiles keeps the last good one) and has not expired.
func certificateValid(src *tlsfiles.Source) health.Checker {
	return func(context.Context) error {
		b := src.Current()
		if b == nil || b.Certificate == nil {
			return errors.New("no serving certificate loaded")
		}
		if now := time.Now(); now.After(b.NotAfter()) {
			return fmt.Errorf("the serving certificate expired at %s; is cert-manager renewing it into %s?", b.NotAfter().UTC().Format(time.RFC3339), src.Dir())
		}
		return nil
	}
}

// serverErrorLog sends net/http's own errors (TLS handshake failures, bad
// requests) to logger at verbosity 2: they are the caller's problem and
// would otherwise go to stderr unstructured.
func serverErrorLog(logger klog.Logger) *log.Logger {
	return log.New(logWriter{logger.V(2)}, "", 0)
}

type logWriter struct{ logger klog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.logger.Info("HTTP server", "message", strings.TrimSpace(string(p)))
	return len(p), nil
}
