package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"

	"github.com/ebb-autoscaler/ebb/pkg/health"
	"github.com/ebb-autoscaler/ebb/pkg/promserve"
	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles"
	"github.com/ebb-autoscaler/ebb/pkg/version"
	"github.com/ebb-autoscaler/ebb/services/metrics-apiserver/app/options"
	"github.com/ebb-autoscaler/ebb/services/metrics-apiserver/internal/delegate"
	"github.com/ebb-autoscaler/ebb/services/metrics-apiserver/internal/operatorlink"
	"github.com/ebb-autoscaler/ebb/services/metrics-apiserver/internal/provider"
)

const (
	// readHeaderTimeout bounds the headers of a request to /metrics.
	readHeaderTimeout = 10 * time.Second
	// shutdownTimeout bounds the drain of the metrics server.
	shutdownTimeout = 10 * time.Second
	// linkHealthService is the health service name of the operator link.
	linkHealthService = "operator-link"
)

// Run completes and validates opts, applies the logging configuration and
// serves until ctx is done.
func Run(ctx context.Context, opts *options.Options) error {
	opts.Complete()
	if errs := opts.Validate(); len(errs) > 0 {
		return fmt.Errorf("invalid options:\n%w", errors.Join(errs...))
	}
	if err := logsapi.ValidateAndApply(opts.Logging, nil); err != nil {
		return fmt.Errorf("applying the logging flags: %w", err)
	}
	return run(ctx, opts)
}

func run(ctx context.Context, opts *options.Options) (runErr error) {
	logger := klog.FromContext(ctx)
	ctx = klog.NewContext(ctx, logger)
	logger.Info("Starting ebb-metrics-apiserver", "version", version.Get().String(),
		"operator", opts.OperatorAddresses, "operatorServerName", opts.OperatorServerName, "delegate", opts.Delegate.URL)
	defer func() { logger.Info("Stopped ebb-metrics-apiserver", "err", runErr) }()

	reg, err := promserve.NewRegistry()
	if err != nil {
		return fmt.Errorf("registering process metrics: %w", err)
	}

	// The operator link: the client certificate and the CA that verifies
	// the operator come from --cert-dir and are re-read when they change.
	tlsSource, err := tlsfiles.New(opts.CertDir(), tlsfiles.WithName("operator-link"))
	if err != nil {
		return fmt.Errorf("loading the operator link's certificates: %w", err)
	}
	link, err := operatorlink.New(operatorlink.Config{
		Targets:    opts.OperatorAddresses,
		ServerName: opts.OperatorServerName,
		TLS:        tlsSource,
	}, logger.WithName("operator-link"))
	if err != nil {
		return fmt.Errorf("setting up the operator link: %w", err)
	}
	defer func() { _ = link.Close() }()

	providerOpts := []provider.Option{provider.WithRequestTimeout(opts.RequestTimeout)}
	var del *delegate.Delegate
	if opts.Delegate.URL != "" {
		del, err = delegate.New(delegate.Config{
			URL:       opts.Delegate.URL,
			CAFile:    opts.Delegate.CAFile,
			CertFile:  opts.Delegate.CertFile,
			KeyFile:   opts.Delegate.KeyFile,
			TokenFile: opts.Delegate.TokenFile,
			Timeout:   opts.RequestTimeout,
		})
		if err != nil {
			return err
		}
		providerOpts = append(providerOpts, provider.WithDelegate(del))
	}
	if err := errors.Join(
		provider.RegisterMetrics(reg),
		link.RegisterMetrics(reg),
		tlsSource.RegisterMetrics(reg),
	); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}

	// The aggregated API server, from the custom-metrics-apiserver
	// library. Its flags are already parsed into opts.Adapter; the base
	// adds them again to a flag set of its own, which is never parsed.
	base := &basecmd.AdapterBase{
		Name:                              "ebb-metrics-apiserver",
		CustomMetricsAdapterServerOptions: opts.Adapter,
		RemoteKubeConfigFile:              opts.Kubeconfig,
		FlagSet:                           pflag.NewFlagSet("adapter", pflag.ContinueOnError),
	}
	base.WithExternalMetrics(provider.New(link, providerOpts...))
	cfg, err := base.Config()
	if err != nil {
		return fmt.Errorf("configuring the API server: %w", err)
	}
	server, err := base.Server()
	if err != nil {
		return fmt.Errorf("creating the API server: %w", err)
	}
	loopback, err := kubernetes.NewForConfig(cfg.GenericConfig.LoopbackClientConfig)
	if err != nil {
		return fmt.Errorf("creating the loopback client: %w", err)
	}

	// Health. Readiness: the API server answers its own /readyz, so
	// discovery works. The operator link has a status of its own; it
	// joins readiness only with --readiness-follows-operator-link (see the
	// flag's help for why it does not by default).
	healthServer := health.NewServer()
	healthServer.AddReadiness("apiserver", func(ctx context.Context) error {
		_, err := loopback.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	})
	if opts.ReadinessFollowsOperatorLink {
		healthServer.AddReadiness(linkHealthService, link.Check)
	} else {
		healthServer.AddStatus(linkHealthService, link.Check)
	}

	var healthLis, metricsLis net.Listener
	listen := func(name, addr string) (net.Listener, error) {
		if addr == options.Disabled {
			return nil, nil
		}
		lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listening for the %s server: %w", name, err)
		}
		return lis, nil
	}
	if healthLis, err = listen("health", opts.HealthBindAddress); err != nil {
		return err
	}
	if metricsLis, err = listen("metrics", opts.MetricsBindAddress); err != nil {
		if healthLis != nil {
			_ = healthLis.Close()
		}
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return tlsSource.Run(gctx) })
	g.Go(func() error { return link.Run(gctx) })
	if del != nil {
		g.Go(func() error {
			del.Run(gctx, delegate.DefaultDiscoveryInterval)
			return nil
		})
	}
	g.Go(func() error {
		if err := server.GenericAPIServer.PrepareRun().RunWithContext(gctx); err != nil {
			return fmt.Errorf("API server: %w", err)
		}
		return nil
	})
	if healthLis != nil {
		g.Go(func() error { return healthServer.Serve(gctx, healthLis) })
	}
	if metricsLis != nil {
		metricsServer := &http.Server{
			Handler:           promserve.Handler(reg, logger.WithName("metrics")),
			ReadHeaderTimeout: readHeaderTimeout,
		}
		g.Go(func() error {
			logger.Info("Serving Prometheus metrics", "addr", metricsLis.Addr().String())
			if err := metricsServer.Serve(metricsLis); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("metrics server: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
			defer cancel()
			if err := metricsServer.Shutdown(sctx); err != nil {
				_ = metricsServer.Close()
				return fmt.Errorf("shutting down the metrics server: %w", err)
			}
			return nil
		})
	}
	return g.Wait()
}
