package triggerauth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/api/meta"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned"
	kedainformers "github.com/ebb-autoscaler/ebb/pkg/client/informers/externalversions/keda/v1alpha1"
	kedalisters "github.com/ebb-autoscaler/ebb/pkg/client/listers/keda/v1alpha1"
)

// FieldManager names ebb's operator in managedFields of everything it
// writes.
const FieldManager = "ebb-operator"

// controllerName names the work queue (and its metrics) and the logger.
const controllerName = "triggerauth"

// AuthRefIndex indexes ScaledObjects and ScaledJobs by the authentication
// objects their triggers reference: a TriggerAuthentication as
// "<namespace>/<name>", a ClusterTriggerAuthentication as "<name>" (the
// cache.ObjectName of each; a name holds no "/").
const AuthRefIndex = "ebb.dev/authentication-ref"

// Controller writes the status lists of TriggerAuthentications and
// ClusterTriggerAuthentications. Its queue holds authentication objects:
// a ClusterTriggerAuthentication's key has no namespace.
type Controller struct {
	kedaClient versioned.Interface
	taLister   kedalisters.TriggerAuthenticationLister
	ctaLister  kedalisters.ClusterTriggerAuthenticationLister
	soIndexer  cache.Indexer
	sjIndexer  cache.Indexer
	synced     []cache.InformerSynced

	queue  workqueue.TypedRateLimitingInterface[cache.ObjectName]
	logger klog.Logger
}

// NewController returns a controller fed by the given informers. Call it
// before the informers start: it adds AuthRefIndex to the ScaledObject and
// ScaledJob informers. Run starts it.
func NewController(logger klog.Logger, kedaClient versioned.Interface,
	taInformer kedainformers.TriggerAuthenticationInformer, ctaInformer kedainformers.ClusterTriggerAuthenticationInformer,
	soInformer kedainformers.ScaledObjectInformer, sjInformer kedainformers.ScaledJobInformer) (*Controller, error) {
	c := &Controller{
		kedaClient: kedaClient,
		taLister:   taInformer.Lister(),
		ctaLister:  ctaInformer.Lister(),
		soIndexer:  soInformer.Informer().GetIndexer(),
		sjIndexer:  sjInformer.Informer().GetIndexer(),
		synced: []cache.InformerSynced{taInformer.Informer().HasSynced, ctaInformer.Informer().HasSynced,
			soInformer.Informer().HasSynced, sjInformer.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedMaxOfRateLimiter(
				workqueue.NewTypedItemExponentialFailureRateLimiter[cache.ObjectName](50*time.Millisecond, 5*time.Minute),
				&workqueue.TypedBucketRateLimiter[cache.ObjectName]{Limiter: rate.NewLimiter(rate.Limit(50), 300)},
			),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: controllerName},
		),
		logger: logger.WithName(controllerName),
	}

	for _, inf := range []cache.SharedIndexInformer{soInformer.Informer(), sjInformer.Informer()} {
		if err := inf.AddIndexers(cache.Indexers{AuthRefIndex: indexAuthRefs}); err != nil {
			return nil, fmt.Errorf("indexing by authentication reference: %w", err)
		}
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueueRefs,
			UpdateFunc: c.scalableUpdated,
			DeleteFunc: c.enqueueRefs,
		}); err != nil {
			return nil, fmt.Errorf("watching scalable objects: %w", err)
		}
	}
	for _, inf := range []cache.SharedIndexInformer{taInformer.Informer(), ctaInformer.Informer()} {
		// An authentication object's own add or update (a restart, a
		// status someone else wrote): its list is checked, and written
		// only if it differs. Our own writes come back as no-op syncs.
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueue,
			UpdateFunc: func(_, newObj any) { c.enqueue(newObj) },
		}); err != nil {
			return nil, fmt.Errorf("watching authentication objects: %w", err)
		}
	}
	return c, nil
}

// indexAuthRefs is the AuthRefIndex function of ScaledObjects and
// ScaledJobs.
func indexAuthRefs(obj any) ([]string, error) {
	keys, _ := refsOf(obj)
	return keys, nil
}

// refsOf returns the index keys of the authentication objects obj's
// triggers reference, sorted and each once, and whether obj is live (not
// being deleted).
func refsOf(obj any) (keys []string, live bool) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	var (
		namespace string
		triggers  []v1alpha1.ScaleTrigger
	)
	switch o := obj.(type) {
	case *v1alpha1.ScaledObject:
		namespace, triggers, live = o.Namespace, o.Spec.Triggers, o.DeletionTimestamp == nil
	case *v1alpha1.ScaledJob:
		namespace, triggers, live = o.Namespace, o.Spec.Triggers, o.DeletionTimestamp == nil
	default:
		return nil, false
	}
	for _, t := range triggers {
		ref := t.AuthenticationRef
		if ref == nil || ref.Name == "" {
			continue
		}
		var key cache.ObjectName
		switch ref.Kind {
		case "", v1alpha1.TriggerAuthenticationKind:
			key = cache.NewObjectName(namespace, ref.Name)
		case v1alpha1.ClusterTriggerAuthenticationKind:
			key = cache.NewObjectName("", ref.Name)
		default:
			continue
		}
		keys = append(keys, key.String())
	}
	slices.Sort(keys)
	return slices.Compact(keys), live
}

// scalableUpdated enqueues the authentication objects a ScaledObject or
// ScaledJob referenced before and after an update that changed its
// references or started its deletion; status writes and other spec changes
// queue nothing.
func (c *Controller) scalableUpdated(oldObj, newObj any) {
	oldKeys, oldLive := refsOf(oldObj)
	newKeys, newLive := refsOf(newObj)
	if oldLive == newLive && slices.Equal(oldKeys, newKeys) {
		return
	}
	c.enqueueRefs(oldObj)
	c.enqueueRefs(newObj)
}

// enqueueRefs enqueues the authentication objects obj references.
func (c *Controller) enqueueRefs(obj any) {
	keys, _ := refsOf(obj)
	for _, k := range keys {
		key, err := cache.ParseObjectName(k)
		if err != nil {
			continue
		}
		c.queue.Add(key)
	}
}

func (c *Controller) enqueue(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	c.queue.Add(cache.NewObjectName(m.GetNamespace(), m.GetName()))
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
		return errors.New("triggerauth controller: informer caches did not sync")
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
	if err := c.sync(ctx, key); err != nil {
		klog.FromContext(ctx).V(2).Info("Writing the status failed; retrying with backoff", "authentication", key, "err", err)
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}
