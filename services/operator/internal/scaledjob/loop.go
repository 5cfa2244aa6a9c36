package scaledjob

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/triggers"
)

// createdExpiry is how long a created Job that the Job cache has not shown
// yet still counts as running: long past any watch delay, short enough
// that a Job deleted before the cache ever saw it is not counted for long.
const createdExpiry = 2 * time.Minute

// Event reasons of the loop; the Jobs ones are KEDA's.
const (
	reasonJobsCreated     = "KEDAJobsCreated"
	reasonJobCreateFailed = "KEDAJobCreateFailed"
	reasonJobsRolledOut   = "JobsRolledOut"
	reasonJobDeleteFailed = "JobDeleteFailed"
)

// Reasons a Job is deleted, the label of ebb_scaledjob_jobs_deleted_total.
const (
	deleteReasonHistory = "history"
	deleteReasonRollout = "rollout"
)

// reading is what one poll read from a ScaledJob's triggers.
type reading struct {
	metrics         []TriggerMetrics
	polled, failing int
	firstErr        error
	// triggers is each trigger's own activity by metric name (a failing
	// trigger is not active); names are the known metric names in order.
	triggers map[string]bool
	names    []string
}

// poll reads key's triggers once, creates the Jobs they call for, rolls
// out and cleans up, and records what the status shows.
func (c *Controller) poll(ctx context.Context, key cache.ObjectName) {
	start := c.clock.Now()
	defer func() { pollDuration.Observe(c.clock.Since(start).Seconds()) }()
	logger := klog.FromContext(ctx).WithValues("scaledJob", key)
	ctx = klog.NewContext(ctx, logger)

	sj, err := c.sjLister.ScaledJobs(key.Namespace).Get(key.Name)
	if err != nil || sj.DeletionTimestamp != nil || paused(sj) || validate(sj) != "" {
		return // the reconciler untracks it
	}
	trigs, err := c.triggers.JobScalers(sj)
	if err != nil {
		return
	}
	r := c.readTriggers(ctx, sj, trigs)
	if ctx.Err() != nil {
		return // cut short (leadership lost, shutdown): this poll tells nothing
	}
	active, scaleTo, maxScale := Combine(r.metrics, multipleScalersCalculation(&sj.Spec), MinReplicaCount(&sj.Spec), MaxReplicaCount(&sj.Spec))

	jobs := c.jobsOf(sj)
	if RolloutStrategy(&sj.Spec) == v1alpha1.RolloutStrategyImmediate {
		c.rollout(ctx, sj, jobs)
	}
	running, pending := c.count(key, sj, jobs)
	d := Decide(&sj.Spec, active, scaleTo, maxScale, running, pending)
	logger.V(4).Info("Polled ScaledJob", "active", d.Active, "queueLength", d.ScaleTo, "maxScale", d.MaxScale,
		"running", d.Running, "pending", d.Pending, "effectiveMax", d.EffectiveMax, "create", d.Create,
		"strategy", StrategyName(sj.Spec.ScalingStrategy), "failingTriggers", r.failing)
	if d.Create > 0 {
		c.createJobs(ctx, sj, d)
	}
	c.cleanUpHistory(ctx, sj, jobs)
	c.record(key, r, d.Active)
}

// readTriggers polls each trigger that has a scaler and an External
// metric, within the poll timeout, and turns its value and its metric's
// target into TriggerMetrics. cpu and memory triggers have neither and
// are skipped, as KEDA skips them for ScaledJobs.
func (c *Controller) readTriggers(ctx context.Context, sj *v1alpha1.ScaledJob, trigs []triggers.Trigger) reading {
	logger := klog.FromContext(ctx)
	maxReplicas := MaxReplicaCount(&sj.Spec)
	r := reading{triggers: map[string]bool{}}
	for _, t := range trigs {
		if t.Scaler == nil {
			continue
		}
		spec, err := t.ResolveMetric(ctx, c.pollTimeout)
		if err == nil && spec.External == nil {
			continue
		}
		r.polled++
		var target float64
		if err == nil && spec.External.Target.AverageValue != nil {
			target = spec.External.Target.AverageValue.AsApproximateFloat64()
		}
		var value float64
		active := false
		if err == nil {
			var rd scaler.Reading
			rd, err = t.Poll(ctx, triggers.OpScaledJob, c.pollTimeout)
			value, active = rd.Value.AsApproximateFloat64(), rd.Active
		}
		name := t.ExternalMetricName()
		if name != "" {
			r.names = append(r.names, name)
		}
		if err != nil {
			r.failing++
			if r.firstErr == nil {
				r.firstErr = fmt.Errorf("trigger %d (%s): %w", t.Index, t.Type, err)
			}
			if name != "" {
				r.triggers[name] = false
			}
			logger.V(2).Info("Trigger poll failed", "trigger", t.Index, "type", t.Type, "err", err)
			continue
		}
		if name != "" {
			r.triggers[name] = active
		}
		r.metrics = append(r.metrics, NewTriggerMetrics(value, target, active, maxReplicas))
	}
	return r
}

// jobsOf returns sj's Jobs from the Job cache: those with its label that
// it controls (a Job of an earlier ScaledJob of the same name, or one
// someone else labelled, is not counted nor touched).
func (c *Controller) jobsOf(sj *v1alpha1.ScaledJob) []*batchv1.Job {
	objs, err := c.jobIndexer.ByIndex(byScaledJob, sj.Namespace+"/"+sj.Name)
	if err != nil {
		return nil
	}
	jobs := make([]*batchv1.Job, 0, len(objs))
	for _, o := range objs {
		if j, ok := o.(*batchv1.Job); ok && ownedBy(j, sj.UID) {
			jobs = append(jobs, j)
		}
	}
	return jobs
}

// count returns how many of jobs are running (unfinished) and, of those,
// pending (no pod started; see podStarted), with the Jobs this loop
// created that the cache does not show yet counted as both.
func (c *Controller) count(key cache.ObjectName, sj *v1alpha1.ScaledJob, jobs []*batchv1.Job) (running, pending int64) {
	conditions := pendingPodConditions(&sj.Spec)
	seen := make(map[string]bool, len(jobs))
	for _, j := range jobs {
		seen[string(j.UID)] = true
		if finished(j) != "" {
			continue
		}
		running++
		if !c.started(j, conditions) {
			pending++
		}
	}
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.states[key]; st != nil {
		for uid, at := range st.created {
			if seen[uid] || now.Sub(at) > createdExpiry {
				delete(st.created, uid)
				continue
			}
			running++
			pending++
		}
	}
	return running, pending
}

// started reports whether a pod of Job j has started (see podStarted).
func (c *Controller) started(j *batchv1.Job, conditions []string) bool {
	pods, err := c.podIndexer.ByIndex(byOwner, string(j.UID))
	if err != nil {
		return false
	}
	for _, o := range pods {
		if p, ok := o.(*corev1.Pod); ok && podStarted(p, conditions) {
			return true
		}
	}
	return false
}

// createJobs creates d.Create Jobs from sj's template, one after the
// other; the first failure stops the poll's creations (a quota or an
// invalid template fails them all alike) with a Warning event.
func (c *Controller) createJobs(ctx context.Context, sj *v1alpha1.ScaledJob, d Decision) {
	logger := klog.FromContext(ctx)
	key := cache.NewObjectName(sj.Namespace, sj.Name)
	created := 0
	for i := int64(0); i < d.Create; i++ {
		job, err := c.kubeClient.BatchV1().Jobs(sj.Namespace).Create(ctx, newJob(sj, c.version), metav1.CreateOptions{FieldManager: FieldManager})
		if err != nil {
			jobCreateErrors.Inc()
			if ctx.Err() == nil {
				logger.Error(err, "Creating a Job failed", "created", created, "wanted", d.Create)
				c.recorder.Eventf(sj, corev1.EventTypeWarning, reasonJobCreateFailed, "Failed to create a Job (%d of %d created): %v", created, d.Create, err)
			}
			break
		}
		created++
		jobsCreated.Inc()
		c.mu.Lock()
		if st := c.states[key]; st != nil {
			if st.created == nil {
				st.created = map[string]time.Time{}
			}
			st.created[string(job.UID)] = c.clock.Now()
		}
		c.mu.Unlock()
		logger.V(4).Info("Created Job", "job", klog.KObj(job))
	}
	if created > 0 {
		logger.Info("Created Jobs", "count", created, "queueLength", d.ScaleTo, "maxScale", d.MaxScale,
			"running", d.Running, "pending", d.Pending, "strategy", StrategyName(sj.Spec.ScalingStrategy))
		c.recorder.Eventf(sj, corev1.EventTypeNormal, reasonJobsCreated, "Created %d jobs", created)
	}
}

// rollout deletes sj's running Jobs created from another generation of
// it (or carrying none), for an immediate rollout: a changed ScaledJob
// replaces the work in flight. Finished Jobs stay, for the history
// limits to prune.
func (c *Controller) rollout(ctx context.Context, sj *v1alpha1.ScaledJob, jobs []*batchv1.Job) {
	var stale []*batchv1.Job
	for _, j := range jobs {
		if j.DeletionTimestamp != nil || finished(j) != "" {
			continue
		}
		if g, ok := generationOf(j); !ok || g != sj.Generation {
			stale = append(stale, j)
		}
	}
	if len(stale) == 0 {
		return
	}
	n := c.deleteJobs(ctx, sj, stale, rolloutPropagation(&sj.Spec), deleteReasonRollout)
	if n > 0 {
		klog.FromContext(ctx).Info("Deleted running Jobs of an older generation (rollout immediate)", "count", n,
			"generation", sj.Generation, "propagationPolicy", rolloutPropagation(&sj.Spec))
		c.recorder.Eventf(sj, corev1.EventTypeNormal, reasonJobsRolledOut, "Deleted %d running Jobs of an older generation of the ScaledJob", n)
	}
}

// cleanUpHistory deletes sj's finished Jobs beyond its history limits,
// oldest first.
func (c *Controller) cleanUpHistory(ctx context.Context, sj *v1alpha1.ScaledJob, jobs []*batchv1.Job) {
	successful, failed := historyLimits(&sj.Spec)
	excess := historyToDelete(jobs, successful, failed)
	if len(excess) == 0 {
		return
	}
	if n := c.deleteJobs(ctx, sj, excess, metav1.DeletePropagationBackground, deleteReasonHistory); n > 0 {
		klog.FromContext(ctx).V(2).Info("Deleted finished Jobs beyond the history limits", "count", n,
			"successfulJobsHistoryLimit", successful, "failedJobsHistoryLimit", failed)
	}
}

// deleteJobs deletes jobs with propagation, each only if it is still the
// Job seen (UID precondition), and returns how many it deleted. A Job
// already gone does not count; the first other failure stops it with a
// Warning event.
func (c *Controller) deleteJobs(ctx context.Context, sj *v1alpha1.ScaledJob, jobs []*batchv1.Job, propagation metav1.DeletionPropagation, reason string) int {
	n := 0
	for _, j := range jobs {
		uid := j.UID
		err := c.kubeClient.BatchV1().Jobs(j.Namespace).Delete(ctx, j.Name, metav1.DeleteOptions{
			PropagationPolicy: &propagation,
			Preconditions:     &metav1.Preconditions{UID: &uid},
		})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			continue // gone already, or another Job of that name now
		}
		if err != nil {
			if ctx.Err() == nil {
				klog.FromContext(ctx).Error(err, "Deleting a Job failed", "job", klog.KObj(j), "reason", reason)
				c.recorder.Eventf(sj, corev1.EventTypeWarning, reasonJobDeleteFailed, "Failed to delete Job %s (%s): %v", j.Name, reason, err)
			}
			return n
		}
		n++
		jobsDeleted.WithLabelValues(reason).Inc()
	}
	return n
}

// record keeps what the poll learnt and asks the reconciler to write the
// status when something it shows changed: the activity, whether triggers
// fail (none, some, all), a trigger's activity or the metric names.
// Never for a poll that changed none of that.
func (c *Controller) record(key cache.ObjectName, r reading, active bool) {
	now := c.clock.Now()
	c.mu.Lock()
	st := c.states[key]
	if st == nil {
		c.mu.Unlock()
		return // untracked meanwhile
	}
	changed := !st.known || st.active != active ||
		errorState(st.failing, st.active) != errorState(r.failing, active) ||
		!maps.Equal(st.triggers, r.triggers) || !slices.Equal(st.names, r.names)
	st.known, st.active = true, active
	if active {
		st.lastActive = now
	}
	st.polled, st.failing = r.polled, r.failing
	if r.firstErr != nil {
		st.errMsg = r.firstErr.Error()
	} else {
		st.errMsg = ""
	}
	st.triggers, st.names = r.triggers, r.names
	c.mu.Unlock()
	if changed {
		c.queue.Add(key)
	}
}

// errorState sums up the triggers' failures as the Ready condition shows
// them: none, some (the ScaledJob still active), or all that count.
func errorState(failing int, active bool) string {
	switch {
	case failing == 0:
		return ""
	case active:
		return "partial"
	default:
		return "failing"
	}
}
