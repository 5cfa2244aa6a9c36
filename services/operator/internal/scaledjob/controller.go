package scaledjob

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	batchv1informers "k8s.io/client-go/informers/batch/v1"
	corev1informers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned"
	kedainformers "github.com/ebb-autoscaler/ebb/pkg/client/informers/externalversions/keda/v1alpha1"
	kedalisters "github.com/ebb-autoscaler/ebb/pkg/client/listers/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/poller"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/triggers"
)

// FieldManager names ebb's operator in managedFields of everything it
// writes.
const FieldManager = "ebb-operator"

// controllerName names the work queue (and its metrics) and the logger.
const controllerName = "scaledjob"

// Option configures a Controller.
type Option func(*Controller)

// WithClock sets the clock (a fake one in tests).
func WithClock(c clock.Clock) Option { return func(ctl *Controller) { ctl.clock = c } }

// WithPollTimeout bounds one poll of a trigger's source
// (triggers.DefaultPollTimeout by default; a scaler's own shorter timeout
// applies). A poll that runs out counts as the trigger failing.
func WithPollTimeout(d time.Duration) Option { return func(c *Controller) { c.pollTimeout = d } }

// WithPollerOptions passes options to the loop's poller.
func WithPollerOptions(opts ...poller.Option) Option {
	return func(c *Controller) { c.pollerOpts = append(c.pollerOpts, opts...) }
}

// WithVersion sets ebb's version, which Jobs carry in their
// app.kubernetes.io/version label.
func WithVersion(v string) Option { return func(c *Controller) { c.version = v } }

// Controller reconciles ScaledJobs and runs their loop (see the package
// documentation).
type Controller struct {
	kubeClient  kubernetes.Interface
	kedaClient  versioned.Interface
	recorder    record.EventRecorder
	triggers    *triggers.Cache
	clock       clock.Clock
	pollTimeout time.Duration
	pollerOpts  []poller.Option
	version     string

	sjLister   kedalisters.ScaledJobLister
	jobIndexer cache.Indexer
	podIndexer cache.Indexer
	synced     []cache.InformerSynced

	queue  workqueue.TypedRateLimitingInterface[cache.ObjectName]
	poller *poller.Poller
	logger klog.Logger

	mu     sync.Mutex
	states map[cache.ObjectName]*state
}

// state is what the loop knows of one ScaledJob, in memory. The reconciler
// persists what users see on transitions.
type state struct {
	// generation is the ScaledJob generation last handed to the loop.
	generation int64
	// known is false until the triggers were polled once.
	known bool
	// active is the ScaledJob's activity at the last poll (see Combine).
	active bool
	// lastActive is when it was last seen active; read from
	// status.lastActiveTime when the loop starts tracking it.
	lastActive time.Time
	// polled and failing count the triggers read and failed at the last
	// poll; errMsg is the first failure's error.
	polled, failing int
	errMsg          string
	// triggers is each trigger's own activity by its metric name (nil
	// until a poll); names are the triggers' metric names in order.
	triggers map[string]bool
	names    []string
	// created holds the Jobs created and not yet seen in the Job cache,
	// by UID, with when they were created: they count as running and
	// pending, so a cache that lags never makes a poll create them again.
	created map[string]time.Time
}

// activity is a copy of what the loop knows of a ScaledJob, for the
// reconciler.
type activity struct {
	tracked, known, active bool
	lastActive             time.Time
	polled, failing        int
	errMsg                 string
	triggers               map[string]bool
	names                  []string
}

// NewController returns a controller fed by the given informers: every
// ScaledJob, and the Jobs and Pods of ScaledJobs (label-filtered, see
// ListOptions and SlimObject). trigs holds the triggers' live scalers.
// Call it before the informers start (it adds indexers). Run starts it.
func NewController(logger klog.Logger, kubeClient kubernetes.Interface, kedaClient versioned.Interface,
	sjInformer kedainformers.ScaledJobInformer, jobInformer batchv1informers.JobInformer, podInformer corev1informers.PodInformer,
	trigs *triggers.Cache, recorder record.EventRecorder, opts ...Option) (*Controller, error) {
	c := &Controller{
		kubeClient:  kubeClient,
		kedaClient:  kedaClient,
		recorder:    recorder,
		triggers:    trigs,
		clock:       clock.RealClock{},
		pollTimeout: triggers.DefaultPollTimeout,
		sjLister:    sjInformer.Lister(),
		jobIndexer:  jobInformer.Informer().GetIndexer(),
		podIndexer:  podInformer.Informer().GetIndexer(),
		synced: []cache.InformerSynced{sjInformer.Informer().HasSynced, jobInformer.Informer().HasSynced,
			podInformer.Informer().HasSynced},
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
		states: map[cache.ObjectName]*state{},
	}
	for _, o := range opts {
		o(c)
	}
	c.poller = poller.New(c.poll, append([]poller.Option{poller.WithClock(c.clock)}, c.pollerOpts...)...)

	if err := jobInformer.Informer().AddIndexers(jobIndexers); err != nil {
		return nil, fmt.Errorf("indexing Jobs by ScaledJob: %w", err)
	}
	if err := podInformer.Informer().AddIndexers(podIndexers); err != nil {
		return nil, fmt.Errorf("indexing Pods by Job: %w", err)
	}
	if _, err := sjInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueue,
		UpdateFunc: func(oldObj, newObj any) {
			if needsSync(oldObj, newObj) {
				c.enqueue(newObj)
			}
		},
		DeleteFunc: c.enqueue,
	}); err != nil {
		return nil, fmt.Errorf("watching ScaledJobs: %w", err)
	}
	return c, nil
}

// needsSync reports whether a ScaledJob update changes anything the
// reconciler acts on: the spec (generation), labels, annotations,
// finalizers or deletion. Its own status writes do not.
func needsSync(oldObj, newObj any) bool {
	o, ok1 := oldObj.(*v1alpha1.ScaledJob)
	n, ok2 := newObj.(*v1alpha1.ScaledJob)
	if !ok1 || !ok2 {
		return true
	}
	return o.Generation != n.Generation ||
		!maps.Equal(o.Labels, n.Labels) ||
		!maps.Equal(o.Annotations, n.Annotations) ||
		len(o.Finalizers) != len(n.Finalizers) ||
		(o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil)
}

func (c *Controller) enqueue(obj any) {
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

// Enqueue asks for a reconcile of key.
func (c *Controller) Enqueue(key cache.ObjectName) { c.queue.Add(key) }

// HasSynced reports whether the controller's informers have synced.
func (c *Controller) HasSynced() bool {
	for _, synced := range c.synced {
		if !synced() {
			return false
		}
	}
	return true
}

// Run waits for the informers to sync, runs the loop and workers
// reconcilers until ctx is done, then shuts the queue down and waits for
// the workers and the loop to finish.
func (c *Controller) Run(ctx context.Context, workers int) error {
	defer utilruntime.HandleCrashWithContext(ctx)
	logger := klog.FromContext(ctx).WithName(controllerName)
	ctx = klog.NewContext(ctx, logger)

	logger.Info("Waiting for informer caches to sync")
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.synced...) {
		c.queue.ShutDown()
		return errors.New("scaledjob controller: informer caches did not sync")
	}
	logger.Info("Starting workers", "count", workers)
	loopCtx := klog.NewContext(ctx, logger.WithName("loop"))
	loopDone := make(chan error, 1)
	go func() { loopDone <- c.poller.Run(loopCtx) }()
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
	if err := <-loopDone; err != nil && ctx.Err() == nil {
		return err
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
	if apierrors.IsConflict(err) {
		// The cache was behind a write (the reconciler's own, most often:
		// the finalizer's event is handled before the status write's
		// arrives); the retry reads the newer object.
		klog.FromContext(ctx).V(2).Info("Reconcile conflicted with a newer ScaledJob; retrying", "scaledJob", key, "err", err)
	} else {
		klog.FromContext(ctx).Error(err, "Reconcile failed; retrying with backoff", "scaledJob", key, "retries", c.queue.NumRequeues(key))
	}
	c.queue.AddRateLimited(key)
	return true
}

// track hands sj to the loop: polled every pollingInterval (30 s by
// default), and at once when its generation changed.
func (c *Controller) track(sj *v1alpha1.ScaledJob) {
	key := cache.NewObjectName(sj.Namespace, sj.Name)
	interval := time.Duration(v1alpha1.DefaultPollingInterval) * time.Second
	if p := sj.Spec.PollingInterval; p != nil && *p > 0 {
		interval = time.Duration(*p) * time.Second
	}
	c.mu.Lock()
	st, ok := c.states[key]
	if !ok {
		st = &state{generation: sj.Generation}
		if t := sj.Status.LastActiveTime; t != nil {
			st.lastActive = t.Time // persisted across restarts
		}
		c.states[key] = st
	}
	changed := ok && st.generation != sj.Generation
	st.generation = sj.Generation
	c.mu.Unlock()

	c.poller.Set(key, interval)
	if changed {
		// A new spec: roll out and scale on it now, not a whole interval
		// later.
		c.poller.Trigger(key)
	}
	scheduled.Set(float64(c.poller.Len()))
}

// untrack stops polling key and forgets what the loop knew of it; the
// triggers' scalers are closed.
func (c *Controller) untrack(key cache.ObjectName) {
	c.stopPolling(key)
	c.triggers.ForgetJob(key)
}

// stopPolling stops polling key and forgets what the loop knew of it; its
// triggers stay in the cache.
func (c *Controller) stopPolling(key cache.ObjectName) {
	c.poller.Remove(key)
	c.mu.Lock()
	delete(c.states, key)
	c.mu.Unlock()
	scheduled.Set(float64(c.poller.Len()))
}

// activity returns a copy of what the loop knows of key.
func (c *Controller) activity(key cache.ObjectName) activity {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.states[key]
	if !ok {
		return activity{}
	}
	return activity{
		tracked: true, known: st.known, active: st.active, lastActive: st.lastActive,
		polled: st.polled, failing: st.failing, errMsg: st.errMsg,
		triggers: maps.Clone(st.triggers), names: append([]string(nil), st.names...),
	}
}
