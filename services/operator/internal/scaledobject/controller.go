package scaledobject

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	autoscalingv2informers "k8s.io/client-go/informers/autoscaling/v2"
	"k8s.io/client-go/kubernetes"
	autoscalingv2listers "k8s.io/client-go/listers/autoscaling/v2"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned"
	kedainformers "github.com/ebb-autoscaler/ebb/pkg/client/informers/externalversions/keda/v1alpha1"
	kedalisters "github.com/ebb-autoscaler/ebb/pkg/client/listers/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/formula"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaleloop"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/triggers"
)

// FieldManager names ebb's operator in managedFields of everything it
// writes.
const FieldManager = "ebb-operator"

// controllerName names the work queue (and its metrics).
const controllerName = "scaledobject"

// TriggerMetrics returns the HPA metrics of a ScaledObject's triggers, in
// trigger order.
type TriggerMetrics interface {
	MetricSpecs(ctx context.Context, so *v1alpha1.ScaledObject) ([]autoscalingv2.MetricSpec, error)
}

// ScaleLoop is the part of the scale loop the controller drives: it tracks
// ScaledObjects whose HPA is in place and reports their triggers' activity.
type ScaleLoop interface {
	Track(so *v1alpha1.ScaledObject)
	Untrack(key cache.ObjectName)
	Activity(key cache.ObjectName) scaleloop.Activity
}

// Controller reconciles ScaledObjects: it resolves the scale target, owns
// the HPA (creating, updating, adopting and, on deletion, releasing it),
// keeps the finalizer, and writes the status.
type Controller struct {
	kubeClient  kubernetes.Interface
	kedaClient  versioned.Interface
	scaleClient scale.ScalesGetter
	mapper      meta.RESTMapper
	recorder    record.EventRecorder
	metrics     TriggerMetrics
	loop        ScaleLoop
	health      MetricsHealth
	// trigs holds the triggers' live scalers, resolved with their
	// authentication; nil until SetTriggerCache.
	trigs *triggers.Cache
	// formula compiles a ScaledObject's scaling modifiers formula: through
	// the trigger cache (once per generation) once it is set.
	formula func(so *v1alpha1.ScaledObject) (*formula.Program, error)

	// replicas reads scale targets' replicas; through /scale until
	// SetReplicas gives it informer caches.
	replicas ReplicaReader
	// written holds, per ScaledObject, the object the controller's last
	// write returned, until the informer's cache has caught up with it:
	// a sync that starts from an older cached copy (an HPA event can
	// overtake the ScaledObject's own) uses it instead, and writes nothing
	// it has already written, instead of a write doomed to a conflict.
	writtenMu sync.Mutex
	written   map[cache.ObjectName]*v1alpha1.ScaledObject

	soLister  kedalisters.ScaledObjectLister
	hpaLister autoscalingv2listers.HorizontalPodAutoscalerLister
	synced    []cache.InformerSynced

	queue  workqueue.TypedRateLimitingInterface[cache.ObjectName]
	logger klog.Logger
}

// NewController returns a controller fed by the given informers. Run starts
// it.
func NewController(logger klog.Logger, kubeClient kubernetes.Interface, kedaClient versioned.Interface, scaleClient scale.ScalesGetter, mapper meta.RESTMapper,
	soInformer kedainformers.ScaledObjectInformer, hpaInformer autoscalingv2informers.HorizontalPodAutoscalerInformer, recorder record.EventRecorder) *Controller {
	c := &Controller{
		kubeClient:  kubeClient,
		kedaClient:  kedaClient,
		scaleClient: scaleClient,
		replicas:    scaleloop.ScaleReplicas{Client: scaleClient},
		written:     map[cache.ObjectName]*v1alpha1.ScaledObject{},
		mapper:      mapper,
		recorder:    recorder,
		metrics:     scalerMetrics{},
		formula:     compileFormula,
		soLister:    soInformer.Lister(),
		hpaLister:   hpaInformer.Lister(),
		synced:      []cache.InformerSynced{soInformer.Informer().HasSynced, hpaInformer.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedMaxOfRateLimiter(
				// Per object: 50 ms doubling to 5 min, so a broken object
				// does not spin; overall: no burst of retries beyond 50/s.
				workqueue.NewTypedItemExponentialFailureRateLimiter[cache.ObjectName](50*time.Millisecond, 5*time.Minute),
				&workqueue.TypedBucketRateLimiter[cache.ObjectName]{Limiter: rate.NewLimiter(rate.Limit(50), 300)},
			),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: controllerName},
		),
		logger: logger.WithName(controllerName),
	}

	_, _ = soInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueue,
		UpdateFunc: func(oldObj, newObj interface{}) {
			if needsSync(oldObj, newObj) {
				c.enqueue(newObj)
			}
		},
		DeleteFunc: c.enqueue,
	})
	_, _ = hpaInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueueHPAOwner,
		UpdateFunc: func(oldObj, newObj interface{}) {
			if hpaNeedsSync(oldObj, newObj) {
				c.enqueueHPAOwner(newObj)
			}
		},
		DeleteFunc: c.enqueueHPAOwner,
	})
	return c
}

// SetTriggerCache gives the controller the triggers' live scalers, which
// define the HPA metric of external triggers; call it before Run.
func (c *Controller) SetTriggerCache(cache *triggers.Cache) {
	c.metrics = scalerMetrics{cache: cache}
	c.formula = cache.Formula
	c.trigs = cache
}

// compileFormula compiles so's scaling modifiers formula as the trigger
// cache does, for a controller without one.
func compileFormula(so *v1alpha1.ScaledObject) (*formula.Program, error) {
	p, err := formula.Compile(so.Spec.Advanced.ScalingModifiers.Formula, formula.Variables(so.Spec.Triggers))
	if err != nil {
		return nil, fmt.Errorf("spec.advanced.scalingModifiers.formula: %w", err)
	}
	return p, nil
}

// ReplicaReader reads a scale target's desired replicas (spec.replicas of
// its /scale); NotFound when the target does not exist.
type ReplicaReader interface {
	Get(ctx context.Context, namespace string, gr schema.GroupResource, name string) (int32, error)
}

// SetReplicas makes the controller read targets' replicas through r (the
// scale loop's informer-backed reader, so a reconcile costs no request),
// whose caches Run waits for with synced; call it before Run.
func (c *Controller) SetReplicas(r ReplicaReader, synced ...cache.InformerSynced) {
	c.replicas = r
	c.synced = append(c.synced, synced...)
}

// SetScaleLoop connects the scale loop; call it before Run.
func (c *Controller) SetScaleLoop(loop ScaleLoop) { c.loop = loop }

// Enqueue asks for a reconcile of key, as the scale loop does when a
// ScaledObject's activity changes and the MetricsService when its metrics'
// health does.
func (c *Controller) Enqueue(key cache.ObjectName) { c.queue.Add(key) }

// hpaNeedsSync reports whether an HPA update matters to its ScaledObject:
// its spec, labels, annotations or owners changed, or whether it can read
// its metrics (ScalingActive). The HPA controller rewrites the status
// every sync; reconciling on each of those would cost a /scale read per
// ScaledObject every 15 s.
func hpaNeedsSync(oldObj, newObj interface{}) bool {
	o, ok1 := oldObj.(*autoscalingv2.HorizontalPodAutoscaler)
	n, ok2 := newObj.(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok1 || !ok2 {
		return true
	}
	return o.Generation != n.Generation ||
		!maps.Equal(o.Labels, n.Labels) ||
		!maps.Equal(o.Annotations, n.Annotations) ||
		len(o.OwnerReferences) != len(n.OwnerReferences) ||
		scalingActive(o) != scalingActive(n)
}

// scalingActive summarises the HPA's ScalingActive condition.
func scalingActive(h *autoscalingv2.HorizontalPodAutoscaler) string {
	for _, c := range h.Status.Conditions {
		if c.Type == autoscalingv2.ScalingActive {
			return string(c.Status) + "/" + c.Reason
		}
	}
	return ""
}

// needsSync reports whether a ScaledObject update changes anything the
// controller acts on: the spec (generation), labels, annotations,
// finalizers or deletion. The controller's own status writes do not.
func needsSync(oldObj, newObj interface{}) bool {
	o, ok1 := oldObj.(*v1alpha1.ScaledObject)
	n, ok2 := newObj.(*v1alpha1.ScaledObject)
	if !ok1 || !ok2 {
		return true
	}
	// ebb's finalizer added (by this controller, whose sync goes on with
	// the object it wrote) needs no sync; removed by someone else, it must
	// come back.
	return o.Generation != n.Generation ||
		!maps.Equal(o.Labels, n.Labels) ||
		!maps.Equal(o.Annotations, n.Annotations) ||
		(slices.Contains(o.Finalizers, v1alpha1.Finalizer) && !slices.Contains(n.Finalizers, v1alpha1.Finalizer)) ||
		(o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil)
}

func (c *Controller) enqueue(obj interface{}) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	key, err := cache.ObjectToName(obj)
	if err != nil {
		utilruntime.HandleErrorWithLogger(c.logger, err, "Cannot key object", "object", obj)
		return
	}
	c.queue.Add(key)
}

// enqueueHPAOwner enqueues the ScaledObject an HPA belongs to: its
// controller owner, or the ScaledObject its scaledobject.keda.sh/name label
// names (an HPA to adopt, or one deleted from under a ScaledObject).
func (c *Controller) enqueueHPAOwner(obj interface{}) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	hpa, ok := obj.(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok {
		return
	}
	for _, ref := range hpa.OwnerReferences {
		if ref.Kind == v1alpha1.ScaledObjectKind && isKedaAPIVersion(ref.APIVersion) {
			c.queue.Add(cache.NewObjectName(hpa.Namespace, ref.Name))
			return
		}
	}
	if name := hpa.Labels[v1alpha1.ScaledObjectNameLabel]; name != "" {
		c.queue.Add(cache.NewObjectName(hpa.Namespace, name))
	}
}

// HasSynced reports whether the controller's informers have synced.
func (c *Controller) HasSynced() bool {
	for _, synced := range c.synced {
		if !synced() {
			return false
		}
	}
	return true
}

// Run waits for the informers to sync, runs workers until ctx is done,
// then shuts the queue down and waits for the workers to finish.
func (c *Controller) Run(ctx context.Context, workers int) error {
	defer utilruntime.HandleCrashWithContext(ctx)
	logger := klog.FromContext(ctx).WithName(controllerName)
	ctx = klog.NewContext(ctx, logger)

	logger.Info("Waiting for informer caches to sync")
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.synced...) {
		c.queue.ShutDown()
		return errors.New("scaledobject controller: informer caches did not sync")
	}
	logger.Info("Starting workers", "count", workers)
	done := make(chan struct{})
	for i := 0; i < workers; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			wait.UntilWithContext(ctx, c.runWorker, time.Second)
		}()
	}
	<-ctx.Done()
	logger.Info("Shutting down workers")
	c.queue.ShutDown()
	for i := 0; i < workers; i++ {
		<-done
	}
	return nil
}

func (c *Controller) runWorker(ctx context.Context) {
	for c.processNextItem(ctx) {
	}
}

func (c *Controller) processNextItem(ctx context.Context) bool {
	key, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(key)

	start := time.Now()
	err := c.sync(ctx, key)
	reconcileDuration.Observe(time.Since(start).Seconds())
	if err == nil {
		reconcileTotal.WithLabelValues("success").Inc()
		c.queue.Forget(key)
		return true
	}
	reconcileTotal.WithLabelValues("error").Inc()
	klog.FromContext(ctx).Error(err, "Reconcile failed; retrying with backoff", "scaledObject", key, "retries", c.queue.NumRequeues(key))
	c.queue.AddRateLimited(key)
	return true
}

// Prometheus metrics of the controller.
var (
	reconcileTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "ebb", Subsystem: "scaledobject", Name: "reconcile_total",
		Help: "ScaledObject reconciles by result (success, error).",
	}, []string{"result"})
	reconcileDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "ebb", Subsystem: "scaledobject", Name: "reconcile_duration_seconds",
		Help:    "Time taken by one ScaledObject reconcile.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
	})
)

// RegisterMetrics registers the controller's metrics with reg.
func RegisterMetrics(reg prometheus.Registerer) {
	reg.MustRegister(reconcileTotal, reconcileDuration)
}

func isKedaAPIVersion(apiVersion string) bool {
	return apiVersion == v1alpha1.SchemeGroupVersion.String()
}
