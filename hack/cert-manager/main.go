// Command cert-manager runs cert-manager's certificate controllers and its
// CA injector in one process against a kubeconfig, for ebb's local e2e
// cluster (e2e/cluster), where no container runtime is available to run
// cert-manager's images.
//
// It runs the controllers needed for the selfSigned and CA issuers
// (Issuers, ClusterIssuers, CertificateRequest approval and signing, the
// Certificate lifecycle) and the CA injector for
// Validating/MutatingWebhookConfigurations, APIServices and
// CustomResourceDefinitions. ACME, Vault, Venafi, the ingress/gateway shims
// and cert-manager's admission webhook are not run. Leader election is off,
// and no metrics or health port is opened.
//
// Flags:
//
//	--kubeconfig PATH      kubeconfig of the cluster (required)
//	--namespace NAME       cluster resource namespace: where the Secrets of
//	                       ClusterIssuers live (default "cert-manager")
//	--ready-file PATH      written (containing "ready\n") once every
//	                       controller and the CA injector run with synced
//	                       caches; removed at exit
//	--workers N            workers per controller (default 5)
//	--certificate-request-minimum-backoff, --certificate-request-maximum-backoff
//	                       backoff after a failed CertificateRequest
//	                       (default 5s and 1m; cert-manager's are 1h and 32h)
//	plus klog's flags (-v, ...)
//
// It exits 0 after SIGTERM or SIGINT once everything has stopped, and
// non-zero with an "error: ..." line if anything fails to start or a
// controller fails.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	kscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	apiregv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	cmscheme "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned/scheme"
	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	"github.com/cert-manager/cert-manager/pkg/controller/cainjector"
	"github.com/cert-manager/cert-manager/pkg/util"

	// Controllers register themselves with controllerpkg.Known in init.
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	// Issuer implementations register themselves with pkg/issuer in init;
	// without them the issuers controllers never make an Issuer Ready.
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// controllers are the cert-manager controllers run, by registered name.
var controllers = []string{
	"issuers",
	"clusterissuers",
	"certificaterequests-approver",
	"certificaterequests-issuer-ca",
	"certificaterequests-issuer-selfsigned",
	"certificates-trigger",
	"certificates-issuing",
	"certificates-key-manager",
	"certificates-request-manager",
	"certificates-readiness",
	"certificates-revision-manager",
}

type options struct {
	kubeconfig string
	namespace  string
	readyFile  string
	workers    int
	minBackoff time.Duration
	maxBackoff time.Duration
}

func main() {
	var o options
	fs := flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (required)")
	fs.StringVar(&o.namespace, "namespace", "cert-manager", "cluster resource namespace (where ClusterIssuers' Secrets live)")
	fs.StringVar(&o.readyFile, "ready-file", "", "file written once all controllers and the CA injector run with synced caches")
	fs.IntVar(&o.workers, "workers", 5, "workers per controller")
	fs.DurationVar(&o.minBackoff, "certificate-request-minimum-backoff", 5*time.Second, "minimum backoff after a failed CertificateRequest")
	fs.DurationVar(&o.maxBackoff, "certificate-request-maximum-backoff", time.Minute, "maximum backoff after failed CertificateRequests")
	klog.InitFlags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		fail(err)
	}
	if fs.NArg() > 0 {
		fail(fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if o.kubeconfig == "" {
		// cert-manager would fall back to the in-cluster config, which a
		// host process does not have.
		fail(errors.New("--kubeconfig is required"))
	}
	if o.workers < 1 || o.minBackoff <= 0 || o.maxBackoff < o.minBackoff {
		fail(fmt.Errorf("invalid --workers %d or backoff %s..%s", o.workers, o.minBackoff, o.maxBackoff))
	}
	ctrl.SetLogger(klog.Background())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := run(ctx, o)
	if o.readyFile != "" {
		_ = os.Remove(o.readyFile)
	}
	if err != nil {
		fail(err)
	}
	klog.Info("stopped")
	klog.Flush()
}

func fail(err error) {
	klog.Flush()
	fmt.Fprintf(os.Stderr, "error: %v\n", err)
	os.Exit(1)
}

// run starts everything, writes the ready file and returns once ctx is done
// and everything has stopped, or at the first failure.
func run(ctx context.Context, o options) error {
	// A failure of any part cancels the others; on return everything is
	// stopped (cancel first, then wait: the other order never returns).
	ctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	var shutdowns []func()
	defer func() {
		cancel(nil)
		wg.Wait()
		for _, shutdown := range shutdowns {
			shutdown()
		}
	}()
	// goRun runs fn in the background; an error from it stops everything.
	goRun := func(name string, fn func(context.Context) error) {
		wg.Go(func() {
			if err := fn(ctx); err != nil {
				cancel(fmt.Errorf("%s: %w", name, err))
			}
		})
	}
	// cause is the failure that stopped everything, nil on a signal.
	cause := func() error {
		if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	}

	// --- controllers ---------------------------------------------------
	factory, err := controllerpkg.NewContextFactory(ctx, controllerpkg.ContextOptions{
		Kubeconfig: o.kubeconfig,
		IssuerOptions: controllerpkg.IssuerOptions{
			ClusterResourceNamespace: o.namespace,
		},
		CertificateOptions: controllerpkg.CertificateOptions{
			CertificateRequestMinimumBackoffDuration: o.minBackoff,
			CertificateRequestMaximumBackoffDuration: o.maxBackoff,
		},
	})
	if err != nil {
		return fmt.Errorf("building the controller context factory: %w", err)
	}
	cmctx, err := factory.Build("cert-manager")
	if err != nil {
		return fmt.Errorf("building the controller context: %w", err)
	}
	known := controllerpkg.Known()
	for _, name := range controllers {
		construct, ok := known[name]
		if !ok {
			return fmt.Errorf("controller %s is not registered", name)
		}
		c, err := construct(factory)
		if err != nil {
			return fmt.Errorf("constructing controller %s: %w", name, err)
		}
		goRun("controller "+name, func(ctx context.Context) error { return c.Run(o.workers, ctx) })
		klog.InfoS("started controller", "controller", name)
	}
	// The controllers created their informers while being constructed;
	// only now do the factories know what to start.
	cmctx.SharedInformerFactory.Start(ctx.Done())
	cmctx.KubeSharedInformerFactory.Start(ctx.Done())
	cmctx.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())
	shutdowns = append(shutdowns,
		cmctx.SharedInformerFactory.Shutdown,
		cmctx.KubeSharedInformerFactory.Shutdown,
		cmctx.HTTP01ResourceMetadataInformersFactory.Shutdown)

	// --- CA injector -------------------------------------------------------
	restConfig, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("loading %s: %w", o.kubeconfig, err)
	}
	restConfig = util.RestConfigWithUserAgent(restConfig, "cainjector")
	scheme := runtime.NewScheme()
	utilruntime.Must(kscheme.AddToScheme(scheme))
	utilruntime.Must(cmscheme.AddToScheme(scheme))
	utilruntime.Must(apiextv1.AddToScheme(scheme))
	utilruntime.Must(apiregv1.AddToScheme(scheme))
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme: scheme,
		Cache:  cache.Options{ReaderFailOnMissingInformer: true},
		// As cert-manager's cainjector: Secrets are read directly, and
		// watched as metadata only.
		Client:                 client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		LeaderElection:         false,
	})
	if err != nil {
		return fmt.Errorf("creating the CA injector's manager: %w", err)
	}
	if err := cainjector.RegisterAllInjectors(ctx, mgr, cainjector.SetupOptions{
		EnableCertificatesDataSource: true,
		EnabledReconcilersFor: map[string]bool{
			cainjector.MutatingWebhookConfigurationName:   true,
			cainjector.ValidatingWebhookConfigurationName: true,
			cainjector.APIServiceName:                     true,
			cainjector.CustomResourceDefinitionName:       true,
		},
	}); err != nil {
		return fmt.Errorf("registering the CA injectors: %w", err)
	}
	goRun("CA injector", mgr.Start)

	// --- ready ---------------------------------------------------------
	for typ, ok := range cmctx.SharedInformerFactory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if err := cause(); err != nil {
				return err
			}
			return fmt.Errorf("cache of %v did not sync", typ)
		}
	}
	for typ, ok := range cmctx.KubeSharedInformerFactory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if err := cause(); err != nil {
				return err
			}
			return fmt.Errorf("cache of %s did not sync", typ)
		}
	}
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		if err := cause(); err != nil {
			return err
		}
		return errors.New("the CA injector's cache did not sync")
	}
	if contextDone(ctx) {
		return cause()
	}
	if o.readyFile != "" {
		if err := writeFileAtomic(o.readyFile, []byte("ready\n")); err != nil {
			return fmt.Errorf("writing the ready file: %w", err)
		}
	}
	klog.InfoS("cert-manager is ready", "controllers", len(controllers), "clusterResourceNamespace", o.namespace)

	<-ctx.Done()
	klog.InfoS("stopping", "cause", context.Cause(ctx))
	return cause()
}

func contextDone(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

// writeFileAtomic writes data to path through a rename, so a reader never
// sees a partial file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ready-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
