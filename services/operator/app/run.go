package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/util/flowcontrol"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	kedav1alpha1 "github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned"
	kedascheme "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned/scheme"
	kedainformers "github.com/ebb-autoscaler/ebb/pkg/client/informers/externalversions"
	"github.com/ebb-autoscaler/ebb/pkg/health"
	"github.com/ebb-autoscaler/ebb/pkg/mtls"
	"github.com/ebb-autoscaler/ebb/pkg/promserve"
	"github.com/ebb-autoscaler/ebb/pkg/restmapper"
	"github.com/ebb-autoscaler/ebb/pkg/rpc/metricsv1"
	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles"
	"github.com/ebb-autoscaler/ebb/pkg/version"
	"github.com/ebb-autoscaler/ebb/services/operator/app/options"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/metricsserver"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/poller"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaledjob"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaledobject"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaleloop"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/triggerauth"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/triggers"
)

const (
	// componentName names the operator in events and as the event
	// reporting controller.
	componentName = "ebb-operator"

	// informerResync re-delivers every cached object to the controllers
	// this often, a safety net for a missed or mishandled event. At
	// 10,000 ScaledObjects a short period would keep the queue full of
	// no-op syncs, so it is long.
	informerResync = 10 * time.Hour

	// readHeaderTimeout bounds how long an HTTP client may take to send its
	// request headers (slowloris).
	readHeaderTimeout = 10 * time.Second
	// shutdownTimeout bounds how long each server waits for requests in
	// flight to finish at shutdown.
	shutdownTimeout = 10 * time.Second

	// leaderHealthTimeout is how long past the expiry of its own Lease the
	// leader may go without renewing it before the liveness check fails:
	// a leader that can neither renew nor notice that it lost the Lease is
	// stuck, and a restart is the way out.
	leaderHealthTimeout = 20 * time.Second

	// grpcMaxConnectionAge bounds the life of a gRPC connection, so that a
	// CA dropped from ca.crt stops being trusted within that time:
	// established connections are not re-verified after a reload. Clients
	// reconnect transparently.
	grpcMaxConnectionAge      = 15 * time.Minute
	grpcMaxConnectionAgeGrace = 30 * time.Second
	// grpcKeepaliveMinTime is the shortest interval between a client's
	// keepalive pings that the server accepts: below the metrics-apiserver's
	// 10 s.
	grpcKeepaliveMinTime = 5 * time.Second
)

// metricsServiceName is the MetricsService's name on the mTLS health
// service, the name clients' health checks ask about.
var metricsServiceName = metricsv1.MetricsService_ServiceDesc.ServiceName

// Run validates opts, applies the logging configuration and runs the
// operator until ctx is done, then shuts down in order: the controllers
// stop, the Lease is released, the servers drain, the informers stop. It
// returns an error if the options are invalid, if a client or server
// cannot be set up, if a server fails, or if leadership is lost, so that
// the process exits non-zero and a fresh start competes for the Lease.
func Run(ctx context.Context, opts *options.Options) error {
	if errs := opts.Validate(); len(errs) > 0 {
		return fmt.Errorf("invalid options:\n%w", errors.Join(errs...))
	}
	// The logging flags are validated above; no feature gate is passed, so
	// logging features keep their defaults (contextual logging on, JSON
	// available).
	if err := logsapi.ValidateAndApply(opts.Logging, nil); err != nil {
		return fmt.Errorf("applying the logging flags: %w", err)
	}
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	setGCPercent()
	return run(ctx, cfg)
}

// defaultGCPercent is the operator's GOGC when the environment sets none:
// the Go heap grows to 1.5 times the live data between collections
// instead of twice. Most of the operator's live data are its informer
// caches, which scale with the number of ScaledObjects; at 10,000 of them
// this keeps ~60 MiB of resident memory that the default would hold
// (see docs/benchmarks.md), for a collector that runs twice as often on a
// heap that allocates little in steady state.
const defaultGCPercent = 50

// setGCPercent applies defaultGCPercent unless GOGC is set.
func setGCPercent() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
}

func run(ctx context.Context, cfg *options.Config) (runErr error) {
	logger := klog.FromContext(ctx)
	ctx = klog.NewContext(ctx, logger)
	logger.Info("Starting ebb-operator", "version", version.Get().String(), "identity", cfg.Identity,
		"leaderElection", cfg.LeaderElection.Enabled, "watchNamespace", cfg.WatchNamespace)

	// Metrics come first: the workqueue metrics provider must be in place
	// before the controllers create their queues.
	reg, err := promserve.NewRegistry()
	if err != nil {
		return fmt.Errorf("registering process metrics: %w", err)
	}
	if err := errors.Join(registerWorkqueueMetrics(reg), restmapper.RegisterMetrics(reg), triggers.RegisterMetrics(reg),
		scaledjob.RegisterMetrics(reg)); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	scaledobject.RegisterMetrics(reg)

	// Clients. All of them share one rate limiter, so --kube-api-qps and
	// --kube-api-burst bound the operator as a whole, not each client.
	// Leader election gets a client of its own, outside that limiter: a
	// Lease renewal must never queue behind a burst of HPA writes.
	workCfg := rest.CopyConfig(cfg.Kube)
	workCfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(cfg.Kube.QPS, cfg.Kube.Burst)
	kubeClient, err := kubernetes.NewForConfig(workCfg)
	if err != nil {
		return fmt.Errorf("creating the Kubernetes client: %w", err)
	}
	kedaClient, err := versioned.NewForConfig(workCfg)
	if err != nil {
		return fmt.Errorf("creating the keda.sh client: %w", err)
	}
	metadataClient, err := metadata.NewForConfig(workCfg)
	if err != nil {
		return fmt.Errorf("creating the metadata client: %w", err)
	}
	// A plain, uncached discovery client: the mapper keeps its own cache
	// and re-discovers through this one.
	discoveryClient, err := discovery.NewDiscoveryClientForConfig(workCfg)
	if err != nil {
		return fmt.Errorf("creating the discovery client: %w", err)
	}
	mapper := restmapper.New(discoveryClient, restmapper.WithLogger(logger))
	scaleClient, err := scale.NewForConfig(workCfg, mapper, dynamic.LegacyAPIPathResolverFunc,
		scale.NewDiscoveryScaleKindResolver(discoveryClient))
	if err != nil {
		return fmt.Errorf("creating the scale client: %w", err)
	}

	// Informers. Dropping managedFields keeps the caches small at 10,000
	// ScaledObjects and HPAs: the controllers never read them, and they are
	// often the largest part of an object.
	kubeFactory := informers.NewSharedInformerFactoryWithOptions(kubeClient, informerResync,
		informers.WithNamespace(cfg.WatchNamespace), informers.WithTransform(slimKubeObject))
	kedaFactory := kedainformers.NewSharedInformerFactoryWithOptions(kedaClient, informerResync,
		kedainformers.WithNamespace(cfg.WatchNamespace), kedainformers.WithTransform(dropManagedFields))
	// CustomResourceDefinitions are cluster-scoped and watched for their
	// names only; see restmapper.WatchCRDs.
	metadataFactory := metadatainformer.NewSharedInformerFactoryWithOptions(metadataClient, 0,
		metadatainformer.WithTransform(dropManagedFields))
	hpaInformer := kubeFactory.Autoscaling().V2().HorizontalPodAutoscalers()
	soInformer := kedaFactory.Keda().V1alpha1().ScaledObjects()
	sjInformer := kedaFactory.Keda().V1alpha1().ScaledJobs()
	taInformer := kedaFactory.Keda().V1alpha1().TriggerAuthentications()
	ctaInformer := kedaFactory.Keda().V1alpha1().ClusterTriggerAuthentications()
	// The Secrets and ConfigMaps that triggers' resolutions read are
	// watched for changes through metadata-only informers, slimmed to
	// their identity and resourceVersion: ebb never caches Secret data (nor
	// an annotation such as kubectl's last-applied-configuration, which
	// can hold it).
	refInformers := newRefInformers(metadataClient, refNamespaces(cfg))
	// The Jobs and Pods of ScaledJobs, and only those (label-filtered by
	// the API server), slimmed to what the ScaledJob loop counts.
	jobFactory := informers.NewSharedInformerFactoryWithOptions(kubeClient, informerResync,
		informers.WithNamespace(cfg.WatchNamespace), informers.WithTweakListOptions(scaledjob.ListOptions),
		informers.WithTransform(scaledjob.SlimObject))
	jobInformer := jobFactory.Batch().V1().Jobs()
	podInformer := jobFactory.Core().V1().Pods()

	// Events go through the events/v1 broadcaster; see eventsV1Recorder.
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), kedascheme.AddToScheme(scheme)); err != nil {
		return fmt.Errorf("building the event scheme: %w", err)
	}
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: kubeClient.EventsV1()})
	recorder := eventsV1Recorder{rec: broadcaster.NewRecorder(scheme, componentName)}
	// The informers and the event broadcaster run on backgroundCtx, which
	// outlives the errgroup: they stop last, once the controllers and the
	// servers are done with them.
	backgroundCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		// Last, on every return path: the informers and the event
		// broadcaster.
		stopBackground()
		refInformers.wait()
		kubeFactory.Shutdown()
		kedaFactory.Shutdown()
		jobFactory.Shutdown()
		metadataFactory.Shutdown()
		broadcaster.Shutdown()
	}()

	soController := scaledobject.NewController(logger, kubeClient, kedaClient, scaleClient, mapper,
		soInformer, hpaInformer, recorder)

	// The triggers' live scalers, shared by the scale loop and the
	// MetricsService, and the scale loop, which takes targets to and from
	// zero and tells the controller when a ScaledObject's activity changes.
	// Triggers are resolved with their (Cluster)TriggerAuthentication and
	// the target's environment when their scalers are built, once per
	// ScaledObject generation, Secrets and ConfigMaps by direct reads (no
	// cache of Secret data), authentication objects from their informers.
	// A change to anything a resolution read invalidates the triggers
	// built from it (see the handlers below).
	authSynced := func() bool { return taInformer.Informer().HasSynced() && ctaInformer.Informer().HasSynced() }
	authResolver := triggers.NewAuthResolver(kubeClient, kedaClient, cfg.ClusterObjectNamespace,
		triggers.WithAuthListers(taInformer.Lister(), ctaInformer.Lister(), authSynced),
		triggers.WithFilePathRoot(cfg.FilePathAuthRootPath))
	pods := podCounter{client: kubeClient}
	triggerCache := triggers.NewCache(scaler.Deps{Logger: logger.WithName("scaler"), Pods: pods, Kube: kubeClient},
		triggers.WithAuthResolver(authResolver))
	defer triggerCache.Close()
	// go-redis logs through klog, like everything else.
	routeRedisLogs(logger)
	// The loop (and the MetricsService's fallback) read targets' replicas
	// from slim informer caches (no API request per poll): typed ones for
	// Deployments and StatefulSets, a dynamic one per other resource that
	// ScaledObjects target; writes go through /scale.
	replicas := targetReplicas(kubeFactory, scaleClient, pods)
	if replicas.Others, err = otherTargetReplicas(backgroundCtx, workCfg, cfg.WatchNamespace, soInformer.Informer(), pods); err != nil {
		return err
	}
	defer replicas.Others.Shutdown()
	soController.SetReplicas(replicas, kubeFactory.Apps().V1().Deployments().Informer().HasSynced,
		kubeFactory.Apps().V1().StatefulSets().Informer().HasSynced)
	loop := scaleloop.New(soInformer.Lister(), triggerCache, replicas, recorder,
		soController.Enqueue, clock.RealClock{},
		scaleloop.WithPollTimeout(triggers.DefaultPollTimeout),
		scaleloop.WithPollerOptions(poller.WithLogger(logger.WithName("scaleloop"))))
	if err := loop.Poller().RegisterMetrics(reg); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	soController.SetScaleLoop(loop)
	soController.SetTriggerCache(triggerCache)

	// The ScaledJob controller: it polls each ScaledJob's triggers through
	// the same trigger cache (its scalers apart from the ScaledObjects'),
	// resolved against its Job template, and creates its Jobs.
	sjController, err := scaledjob.NewController(logger, kubeClient, kedaClient, sjInformer, jobInformer, podInformer,
		triggerCache, recorder, scaledjob.WithVersion(version.Get().GitVersion),
		scaledjob.WithPollTimeout(triggers.DefaultPollTimeout))
	if err != nil {
		return err
	}

	// The status lists of (Cluster)TriggerAuthentications.
	taController, err := triggerauth.NewController(logger, kedaClient, taInformer, ctaInformer, soInformer, sjInformer)
	if err != nil {
		return err
	}

	// A change to a Secret, ConfigMap or authentication object that a
	// trigger's resolution read invalidates those triggers: their scalers
	// are closed and built again with the new values on next use, and the
	// ScaledObject or ScaledJob is reconciled, so its status tells the new
	// state.
	triggerCache.SetInvalidationHandler(func(o triggers.Owner) {
		logger.V(2).Info("An object a trigger read changed; its scalers are built again", "kind", o.Kind, "object", o.ObjectName)
		switch o.Kind {
		case kedav1alpha1.ScaledObjectKind:
			soController.Enqueue(o.ObjectName)
		case kedav1alpha1.ScaledJobKind:
			sjController.Enqueue(o.ObjectName)
		}
	})
	for _, h := range []struct {
		informer cache.SharedIndexInformer
		kind     triggers.RefKind
	}{
		{taInformer.Informer(), triggers.RefTriggerAuthentication},
		{ctaInformer.Informer(), triggers.RefClusterTriggerAuthentication},
	} {
		if _, err := h.informer.AddEventHandler(triggerCache.EventHandler(h.kind)); err != nil {
			return fmt.Errorf("watching %ss: %w", h.kind, err)
		}
	}
	if err := refInformers.addHandlers(triggerCache); err != nil {
		return err
	}
	// A deleted ScaledObject's scalers are closed at once, so their
	// connections to event sources do not outlive it.
	if _, err := soInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj interface{}) {
			if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tombstone.Obj
			}
			if so, ok := obj.(*kedav1alpha1.ScaledObject); ok {
				triggerCache.Forget(cache.NewObjectName(so.Namespace, so.Name))
			}
		},
	}); err != nil {
		return fmt.Errorf("watching ScaledObject deletions: %w", err)
	}

	crdRegistration, err := restmapper.WatchCRDs(backgroundCtx, metadataFactory, mapper)
	if err != nil {
		return err
	}

	// Leader election.
	watchdog := leaderelection.NewLeaderHealthzAdaptor(leaderHealthTimeout)
	var elector *leaderelection.LeaderElector
	// elected receives the leader's context once this replica is elected;
	// the context is cancelled when leadership ends.
	elected := make(chan context.Context, 1)
	if cfg.LeaderElection.Enabled {
		elector, err = newElector(cfg, recorder, watchdog, elected, logger)
		if err != nil {
			return err
		}
	}
	isLeader := func() bool { return elector == nil || elector.IsLeader() }
	if err := reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "ebb",
		Subsystem: "operator",
		Name:      "leader",
		Help:      "1 while this replica is the leader and runs the controllers (always 1 with leader election off), else 0.",
	}, func() float64 {
		if isLeader() {
			return 1
		}
		return 0
	})); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}

	// canServe reports why this replica cannot answer the MetricsService:
	// its caches are not synced, or it is not the leader (the leader holds
	// the scalers); nil when it can.
	canServe := func() error {
		if !soController.HasSynced() {
			return errors.New("the operator's caches are not synced yet")
		}
		if !isLeader() {
			return errors.New("this operator replica is not the leader")
		}
		return nil
	}

	// The mTLS gRPC server.
	var grpcServer *grpc.Server
	var grpcHealth *grpchealth.Server
	var metricsService *metricsserver.Server
	var tlsSource *tlsfiles.Source
	if cfg.GRPCBindAddress != options.Disabled {
		// Leaf verification rejects a certificate and a CA bundle that do
		// not belong together, such as a half-applied update: ebb's
		// certificates are issued by the CA its ca.crt holds.
		tlsSource, err = tlsfiles.New(cfg.CertDir, tlsfiles.WithLeafVerification(), tlsfiles.WithName("grpc"))
		if err != nil {
			return fmt.Errorf("loading the gRPC server certificate from --cert-dir: %w", err)
		}
		if err := tlsSource.RegisterMetrics(reg); err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
		grpcServer = grpc.NewServer(
			grpc.Creds(mtls.ServerCredentials(tlsSource, mtls.WithLogger(logger.WithName("grpc")))),
			grpc.KeepaliveParams(keepalive.ServerParameters{
				MaxConnectionAge:      grpcMaxConnectionAge,
				MaxConnectionAgeGrace: grpcMaxConnectionAgeGrace,
			}),
			// The metrics-apiserver pings every 10 s (gRPC's floor), even
			// between calls, to find a dead link; without this policy the
			// server would answer its pings with GOAWAY "too_many_pings".
			grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
				MinTime:             grpcKeepaliveMinTime,
				PermitWithoutStream: true,
			}),
		)
		// Health over the mTLS link. Beside the overall status (""), the
		// MetricsService's own status is SERVING exactly while this
		// replica can answer it (caches synced and leader; see
		// reportServing), so a client with client-side health checking on
		// that name (the metrics-apiserver) calls only the leader.
		grpcHealth = grpchealth.NewServer()
		grpcHealth.SetServingStatus(metricsServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
		healthpb.RegisterHealthServer(grpcServer, grpcHealth)
		// The MetricsService: the leader answers the metrics-apiserver by
		// polling the trigger's live scaler; a standby or a replica whose
		// caches are not synced answers Unavailable, so the client retries
		// elsewhere. It tells the controller when a ScaledObject's metric
		// health changes in a way its status shows, so status.health and
		// the Fallback condition are written on transitions only.
		metricsService = metricsserver.New(soInformer.Lister(), triggerCache, canServe,
			metricsServiceOptions(replicas, soController.Enqueue)...)
		soController.SetMetricsHealth(metricsService)
		if err := metricsserver.RegisterMetrics(reg); err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
		metricsv1.RegisterMetricsServiceServer(grpcServer, metricsService)
		// A deleted ScaledObject's metric health goes with it.
		if _, err := soInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			DeleteFunc: func(obj interface{}) {
				if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
					obj = tombstone.Obj
				}
				if so, ok := obj.(*kedav1alpha1.ScaledObject); ok {
					metricsService.Forget(so.UID)
				}
			},
		}); err != nil {
			return fmt.Errorf("watching ScaledObject deletions: %w", err)
		}
	}

	// The plaintext health server for kubelet probes. Readiness: the
	// caches are synced and this replica is the leader, so that only the
	// leader, which holds the scalers, receives metric requests.
	// Liveness: the leader still renews its Lease.
	healthServer := health.NewServer()
	healthServer.AddReadiness("informers", func(context.Context) error {
		if !soController.HasSynced() || !sjController.HasSynced() || !taController.HasSynced() || !crdRegistration.HasSynced() {
			return errors.New("informer caches not synced yet")
		}
		return nil
	})
	if elector != nil {
		healthServer.AddReadiness("leader-election", func(context.Context) error {
			if !elector.IsLeader() {
				if leader := elector.GetLeader(); leader != "" {
					return fmt.Errorf("not the leader; %s leads", leader)
				}
				return errors.New("not the leader; no leader observed yet")
			}
			return nil
		})
		// The adaptor's Check ignores its request.
		healthServer.AddLiveness("leader-election", func(context.Context) error { return watchdog.Check(nil) })
	}

	metricsServer := &http.Server{
		Handler:           promserve.Handler(reg, logger.WithName("metrics"), promserve.WithProfiling(cfg.Profiling)),
		ReadHeaderTimeout: readHeaderTimeout,
	}

	// Bind every port before starting anything, so that a port in use
	// fails the start with a clear error.
	var grpcLis, healthLis, metricsLis net.Listener
	var listeners []net.Listener
	listen := func(name, addr string) (net.Listener, error) {
		if addr == options.Disabled {
			return nil, nil
		}
		lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listening for the %s server: %w", name, err)
		}
		listeners = append(listeners, lis)
		return lis, nil
	}
	closeListeners := func() {
		for _, lis := range listeners {
			_ = lis.Close()
		}
	}
	if grpcLis, err = listen("gRPC", cfg.GRPCBindAddress); err != nil {
		closeListeners()
		return err
	}
	if healthLis, err = listen("health", cfg.HealthBindAddress); err != nil {
		closeListeners()
		return err
	}
	if metricsLis, err = listen("metrics", cfg.MetricsBindAddress); err != nil {
		closeListeners()
		return err
	}

	// Start. From here on, one errgroup: the first error cancels gctx and
	// everything shuts down in order.
	if err := broadcaster.StartRecordingToSinkWithContext(backgroundCtx); err != nil {
		closeListeners()
		return fmt.Errorf("starting the event broadcaster: %w", err)
	}
	kubeFactory.StartWithContext(backgroundCtx)
	kedaFactory.StartWithContext(backgroundCtx)
	jobFactory.StartWithContext(backgroundCtx)
	// The metadata factory's interface lacks StartWithContext, which its
	// implementation has; with it, the informer logs through ctx's logger.
	if f, ok := metadataFactory.(interface{ StartWithContext(context.Context) }); ok {
		f.StartWithContext(backgroundCtx)
	} else {
		metadataFactory.Start(backgroundCtx.Done())
	}
	refInformers.start(backgroundCtx)

	g, gctx := errgroup.WithContext(ctx)
	defer func() { logger.Info("Stopped ebb-operator", "err", runErr) }()

	// The controllers: at once without leader election, else once elected,
	// until gctx is done or leadership ends.
	controllersDone := make(chan struct{})
	g.Go(func() error {
		defer close(controllersDone)
		runCtx := gctx
		if elector != nil {
			logger.Info("Waiting for leadership before starting the controllers", "lease", klog.KRef(cfg.LeaderElection.Namespace, cfg.LeaderElection.ID))
			select {
			case <-gctx.Done():
				return nil
			case leaderCtx := <-elected:
				c, cancel := context.WithCancel(leaderCtx)
				defer cancel()
				stop := context.AfterFunc(gctx, cancel)
				defer stop()
				runCtx = c
			}
		}
		logger.Info("Starting controllers", "workers", cfg.Workers)
		loopDone := make(chan error, 1)
		go func() { loopDone <- loop.Run(runCtx) }()
		sjDone := make(chan error, 1)
		go func() { sjDone <- sjController.Run(runCtx, cfg.Workers) }()
		// Few writes, rarely: two workers.
		taDone := make(chan error, 1)
		go func() { taDone <- taController.Run(runCtx, 2) }()
		// The filePath files in use, checked for changes.
		filesDone := make(chan struct{})
		go func() {
			defer close(filesDone)
			triggers.WatchFiles(runCtx, triggerCache, authResolver, triggers.DefaultFileCheckPeriod)
		}()
		err := soController.Run(runCtx, cfg.Workers)
		if loopErr := <-loopDone; err == nil && runCtx.Err() == nil {
			err = loopErr
		}
		if err != nil {
			err = fmt.Errorf("scaledobject controller: %w", err)
		}
		if sjErr := <-sjDone; err == nil && sjErr != nil {
			err = fmt.Errorf("scaledjob controller: %w", sjErr)
		}
		if taErr := <-taDone; err == nil && taErr != nil {
			err = fmt.Errorf("triggerauth controller: %w", taErr)
		}
		<-filesDone
		logger.Info("Controllers stopped")
		if err != nil && runCtx.Err() == nil {
			return err
		}
		return nil
	})

	// afterControllers waits until shutdown has begun and the controllers
	// have stopped: the servers keep answering until then.
	afterControllers := func() {
		<-gctx.Done()
		<-controllersDone
	}

	if elector != nil {
		// The elector runs on its own context, cancelled only once the
		// controllers have stopped, so that the Lease is released
		// (ReleaseOnCancel) only when nothing acts as leader any more.
		electorCtx, stopElector := context.WithCancel(context.WithoutCancel(ctx))
		g.Go(func() error {
			defer stopElector()
			go func() {
				<-controllersDone
				stopElector()
			}()
			elector.Run(electorCtx)
			if electorCtx.Err() == nil {
				return errors.New("leader election lost")
			}
			return nil
		})
	}

	if tlsSource != nil {
		g.Go(func() error { return tlsSource.Run(gctx) })
	}

	if grpcLis != nil {
		g.Go(func() error {
			reportServing(gctx, grpcHealth, metricsServiceName, canServe, servingStatusPeriod)
			return nil
		})
		g.Go(func() error {
			logger.Info("Serving gRPC with mutual TLS", "addr", grpcLis.Addr().String())
			// ErrServerStopped: shutdown came before Serve; the listener
			// is closed all the same.
			if err := grpcServer.Serve(grpcLis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				return fmt.Errorf("gRPC server: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			afterControllers()
			grpcHealth.Shutdown()
			stopped := make(chan struct{})
			go func() {
				grpcServer.GracefulStop()
				close(stopped)
			}()
			t := time.NewTimer(shutdownTimeout)
			defer t.Stop()
			select {
			case <-stopped:
			case <-t.C:
				logger.Info("gRPC requests still running at the shutdown timeout, closing their connections", "timeout", shutdownTimeout)
				grpcServer.Stop()
				<-stopped
			}
			return nil
		})
	}

	if healthLis != nil {
		healthCtx, stopHealth := context.WithCancel(context.WithoutCancel(ctx))
		g.Go(func() error {
			defer stopHealth()
			return healthServer.Serve(healthCtx, healthLis)
		})
		g.Go(func() error {
			afterControllers()
			stopHealth()
			return nil
		})
	}

	if metricsLis != nil {
		g.Go(func() error {
			logger.Info("Serving Prometheus metrics", "addr", metricsLis.Addr().String())
			if err := metricsServer.Serve(metricsLis); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("metrics server: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			afterControllers()
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

// newElector builds the Lease-based leader elector. It reports election
// through elected and its health through watchdog.
func newElector(cfg *options.Config, recorder resourcelock.EventRecorder, watchdog *leaderelection.HealthzAdaptor,
	elected chan<- context.Context, logger klog.Logger) (*leaderelection.LeaderElector, error) {
	le := cfg.LeaderElection
	leCfg := rest.CopyConfig(cfg.Kube)
	leCfg.UserAgent += " leader-election"
	leClient, err := kubernetes.NewForConfig(leCfg)
	if err != nil {
		return nil, fmt.Errorf("creating the leader election client: %w", err)
	}
	lease := klog.KRef(le.Namespace, le.ID)
	var leading atomic.Bool
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta: metav1.ObjectMeta{Namespace: le.Namespace, Name: le.ID},
			Client:    leClient.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{
				Identity:      cfg.Identity,
				EventRecorder: recorder,
			},
		},
		LeaseDuration:   le.LeaseDuration,
		RenewDeadline:   le.RenewDeadline,
		RetryPeriod:     le.RetryPeriod,
		ReleaseOnCancel: true,
		WatchDog:        watchdog,
		Name:            le.ID,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				leading.Store(true)
				logger.Info("Became the leader", "lease", lease, "identity", cfg.Identity)
				elected <- ctx
			},
			OnStoppedLeading: func() {
				if leading.Load() {
					logger.Info("No longer the leader", "lease", lease, "identity", cfg.Identity)
				}
			},
			OnNewLeader: func(identity string) {
				if identity != cfg.Identity {
					logger.Info("Another replica leads", "lease", lease, "leader", identity)
				}
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("setting up leader election: %w", err)
	}
	return elector, nil
}

// slimKubeObject is the transform of the Kubernetes informers: workloads
// keep only their identity and replicas (the scale loop's needs), and
// every object loses its managedFields.
func slimKubeObject(obj any) (any, error) {
	obj, err := scaleloop.SlimWorkload(obj)
	if err != nil {
		return nil, err
	}
	return dropManagedFields(obj)
}

// dropManagedFields is an informer transform that removes managedFields
// before an object enters the cache.
func dropManagedFields(obj any) (any, error) {
	if accessor, err := meta.Accessor(obj); err == nil {
		accessor.SetManagedFields(nil)
	}
	return obj, nil
}
