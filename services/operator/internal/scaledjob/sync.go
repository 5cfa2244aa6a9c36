package scaledjob

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/scalers"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/triggers"
)

// Reasons and messages of conditions and events, KEDA's.
const (
	reasonReady          = "ScaledJobReady"
	messageReady         = "ScaledJob is defined correctly and is ready for scaling"
	messagePausedReady   = "ScaledJob is paused, skipping reconcile loop"
	reasonCheckFailed    = "ScaledJobCheckFailed"
	reasonPartialError   = "PartialTriggerError"
	messagePartialError  = "Some triggers defined in ScaledJob are not working correctly"
	reasonTriggerError   = "TriggerError"
	messageTriggerError  = "Triggers defined in ScaledJob are not working correctly"
	reasonScalerFailed   = "KEDAScalerFailed"
	reasonActive         = "ScalerActive"
	messageActive        = "Scaling is performed because triggers are active"
	reasonNotActive      = "ScalerNotActive"
	messageNotActive     = "Scaling is not performed because triggers are not active"
	reasonUnknownState   = "UnknownState"
	messageCheckFailed   = "ScaledJob check failed"
	eventReasonActive    = "ScaledJobActive"
	eventReasonInactive  = "ScaledJobInactive"
	eventReasonDeleted   = "ScaledJobDeleted"
	messageScaledJobGone = "ScaledJob was deleted"
	eventReasonPaused    = "ScaledJobPaused"
	eventReasonUnpaused  = "ScaledJobUnpaused"
)

// sync reconciles one ScaledJob. It reads the ScaledJob only from the
// informer that delivered its event: NotFound means it is gone.
func (c *Controller) sync(ctx context.Context, key cache.ObjectName) error {
	logger := klog.FromContext(ctx).WithValues("scaledJob", key)
	ctx = klog.NewContext(ctx, logger)

	cached, err := c.sjLister.ScaledJobs(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		logger.V(4).Info("ScaledJob is gone")
		c.untrack(key)
		return nil
	}
	if err != nil {
		return err
	}
	sj := cached.DeepCopy()

	if sj.DeletionTimestamp != nil {
		c.untrack(key)
		return c.finalize(ctx, sj)
	}
	if !slices.Contains(sj.Finalizers, v1alpha1.Finalizer) {
		sj.Finalizers = append(sj.Finalizers, v1alpha1.Finalizer)
		updated, err := c.kedaClient.KedaV1alpha1().ScaledJobs(sj.Namespace).Update(ctx, sj, metav1.UpdateOptions{FieldManager: FieldManager})
		if err != nil {
			return fmt.Errorf("adding the finalizer: %w", err)
		}
		sj = updated
	}

	status := sj.Status.DeepCopy()
	if !status.Conditions.AreInitialized() {
		for _, cond := range v1alpha1.InitialConditions() {
			if _, ok := status.Conditions.Get(cond.Type); !ok {
				status.Conditions.Set(cond.Type, cond.Status, cond.Reason, cond.Message)
			}
		}
	}
	err = c.reconcile(ctx, sj, status)
	if writeErr := c.writeStatus(ctx, sj, status); writeErr != nil && err == nil {
		err = writeErr
	}
	return err
}

// reconcile checks sj, hands it to the loop (or takes it away) and
// records the outcome and the loop's findings in status. Errors worth
// retrying are returned; problems only a change to the ScaledJob fixes are
// recorded (condition and event) and return nil: that change requeues.
func (c *Controller) reconcile(ctx context.Context, sj *v1alpha1.ScaledJob, status *v1alpha1.ScaledJobStatus) error {
	logger := klog.FromContext(ctx)
	key := cache.NewObjectName(sj.Namespace, sj.Name)
	triggerTypes, authTypes := triggersAndAuthentications(sj.Spec.Triggers)
	status.TriggersTypes, status.AuthenticationsTypes = &triggerTypes, &authTypes

	if paused(sj) {
		c.untrack(key)
		status.Paused = "true"
		if status.Conditions.Set(v1alpha1.ConditionPaused, metav1.ConditionTrue, v1alpha1.ScaledJobPausedReason, v1alpha1.ScaledJobPausedMessage) {
			logger.Info("ScaledJob is paused; no Jobs are created while it is")
			c.recorder.Event(sj, corev1.EventTypeNormal, eventReasonPaused, v1alpha1.ScaledJobPausedMessage)
		}
		status.Conditions.Set(v1alpha1.ConditionReady, metav1.ConditionTrue, reasonReady, messagePausedReady)
		return nil
	}
	status.Paused = ""
	if status.Conditions.Paused().IsTrue() {
		status.Conditions.Set(v1alpha1.ConditionPaused, metav1.ConditionFalse, v1alpha1.ScaledJobUnpausedReason, v1alpha1.ScaledJobUnpausedMessage)
		logger.Info("ScaledJob is unpaused")
		c.recorder.Event(sj, corev1.EventTypeNormal, eventReasonUnpaused, v1alpha1.ScaledJobUnpausedMessage)
	}

	if problem := validate(sj); problem != "" {
		c.untrack(key)
		c.checkFailed(sj, status, problem)
		return nil
	}
	trigs, err := c.triggers.JobScalers(sj)
	if err != nil {
		return err // the cache is closed: shutting down
	}
	if err := triggerError(trigs); err != nil {
		c.checkFailed(sj, status, err.Error())
		if retriable(err) {
			c.untrack(key) // also drops the scalers, so the retry resolves them again
			return err     // the API server could not be read, the Job template lacks a variable: retry with backoff
		}
		// The triggers stay in the cache, unpolled: a change to the
		// TriggerAuthentication, Secret, ConfigMap or file at fault
		// invalidates them and requeues the ScaledJob; a new spec
		// replaces them.
		c.stopPolling(key)
		return nil
	}

	c.track(sj)
	c.fromLoop(sj, status, c.activity(key), trigs)
	return nil
}

// fromLoop records in status what the loop found: Ready (the triggers
// work, some fail, all fail), Active and lastActiveTime on transitions,
// the triggers' activity and metric names. Each transition has its event.
func (c *Controller) fromLoop(sj *v1alpha1.ScaledJob, status *v1alpha1.ScaledJobStatus, a activity, trigs []triggers.Trigger) {
	wasReady := status.Conditions.Ready()
	switch errorState(a.failing, a.active) {
	case "partial":
		if status.Conditions.Set(v1alpha1.ConditionReady, metav1.ConditionUnknown, reasonPartialError, messagePartialError) {
			c.recorder.Event(sj, corev1.EventTypeWarning, reasonScalerFailed, a.errMsg)
		}
	case "failing":
		if status.Conditions.Set(v1alpha1.ConditionReady, metav1.ConditionFalse, reasonTriggerError, messageTriggerError) {
			c.recorder.Event(sj, corev1.EventTypeWarning, reasonScalerFailed, a.errMsg)
		}
	default:
		status.Conditions.Set(v1alpha1.ConditionReady, metav1.ConditionTrue, reasonReady, messageReady)
		if !wasReady.IsTrue() {
			c.recorder.Event(sj, corev1.EventTypeNormal, reasonReady, messageReady)
		}
	}

	names := a.names
	if !a.known {
		// Before the first poll: the names the metadata gives.
		for _, t := range trigs {
			if n := t.ExternalMetricName(); n != "" {
				names = append(names, n)
			}
		}
	}
	status.ExternalMetricNames = names
	if a.triggers != nil {
		activity := make(map[string]v1alpha1.TriggerActivityStatus, len(a.triggers))
		for name, active := range a.triggers {
			activity[name] = v1alpha1.TriggerActivityStatus{IsActive: active}
		}
		status.TriggersActivity = activity
	}

	if !a.known {
		return
	}
	was := status.Conditions.Active()
	switch {
	case a.active && !was.IsTrue():
		status.Conditions.Set(v1alpha1.ConditionActive, metav1.ConditionTrue, reasonActive, messageActive)
		c.recorder.Event(sj, corev1.EventTypeNormal, eventReasonActive, messageActive)
	case !a.active && !was.IsFalse():
		status.Conditions.Set(v1alpha1.ConditionActive, metav1.ConditionFalse, reasonNotActive, messageNotActive)
		c.recorder.Event(sj, corev1.EventTypeNormal, eventReasonInactive, messageNotActive)
	default:
		return
	}
	// lastActiveTime changes with Active only: when the ScaledJob becomes
	// active, and when it stops being active (the last poll that found it
	// active). Never per poll.
	if !a.lastActive.IsZero() {
		t := metav1.NewTime(a.lastActive)
		status.LastActiveTime = &t
	}
}

// checkFailed records a spec the loop cannot run: Ready False, Active
// Unknown, and a Warning event.
func (c *Controller) checkFailed(sj *v1alpha1.ScaledJob, status *v1alpha1.ScaledJobStatus, message string) {
	if status.Conditions.Set(v1alpha1.ConditionReady, metav1.ConditionFalse, reasonCheckFailed, message) {
		c.recorder.Event(sj, corev1.EventTypeWarning, reasonCheckFailed, message)
	}
	status.Conditions.Set(v1alpha1.ConditionActive, metav1.ConditionUnknown, reasonUnknownState, messageCheckFailed)
}

// validate returns what makes sj impossible to run, as KEDA's controller
// checks it: no jobTargetRef (or no container in it, which every Job
// creation would fail on), triggers with a metricType (ScaledJobs have no
// HPA), duplicate trigger names, useCachedMetrics where unsupported. ""
// when there is nothing wrong.
func validate(sj *v1alpha1.ScaledJob) string {
	if sj.Spec.JobTargetRef == nil {
		return "ScaledJob.spec.jobTargetRef not found"
	}
	if len(sj.Spec.JobTargetRef.Template.Spec.Containers) == 0 {
		return "ScaledJob.spec.jobTargetRef.template.spec.containers is empty: the Jobs need at least one container"
	}
	if len(sj.Spec.Triggers) == 0 {
		return "ScaledJob.spec.triggers is empty"
	}
	seen := map[string]int{}
	for i, t := range sj.Spec.Triggers {
		if t.MetricType != "" {
			return fmt.Sprintf("spec.triggers[%d]: metricType cannot be set in ScaledJob triggers", i)
		}
		if t.Name != "" {
			if j, dup := seen[t.Name]; dup {
				return fmt.Sprintf("spec.triggers[%d]: trigger name %q is already used by spec.triggers[%d]; trigger names must be unique", i, t.Name, j)
			}
			seen[t.Name] = i
		}
		if t.UseCachedMetrics && (t.Type == "cpu" || t.Type == "memory" || t.Type == "cron") {
			return fmt.Sprintf("spec.triggers[%d]: useCachedMetrics is not supported for %s triggers", i, t.Type)
		}
	}
	return ""
}

// triggerError returns the first trigger that cannot be polled: its
// metadata does not parse, its authentication or environment cannot be
// resolved, or ebb has no scaler for its type. cpu and memory triggers,
// which have no scaler, are not errors (the loop skips them, as KEDA
// does).
func triggerError(trigs []triggers.Trigger) error {
	for _, t := range trigs {
		if t.Err == nil {
			continue
		}
		if _, ok := t.Config.(*scalers.CPUMemoryConfig); ok && t.Scaler == nil {
			continue
		}
		prefix := fmt.Sprintf("trigger %d (%s): ", t.Index, t.Type)
		if strings.HasPrefix(t.Err.Error(), prefix) {
			return t.Err // named already (a resolution or metadata error)
		}
		return fmt.Errorf("%s%w", prefix, t.Err)
	}
	return nil
}

// retriable reports whether a trigger error may go away without a change
// to the ScaledJob or to an object the trigger cache watches: an
// authentication or environment error says so itself
// (triggers.ResolveError.Retry); otherwise anything but a metadata error
// or a type or setting ebb does not support.
func retriable(err error) bool {
	var resolve *triggers.ResolveError
	if errors.As(err, &resolve) {
		return resolve.Retry
	}
	var metadata *scalers.Error
	return !errors.As(err, &metadata) &&
		!errors.Is(err, scaler.ErrNotImplemented) && !errors.Is(err, scaler.ErrInvalidConfig) &&
		!errors.Is(err, triggers.ErrAuthSourceNotSupported)
}

// paused reports whether sj's autoscaling.keda.sh/paused annotation
// pauses it: any value but one that parses as false, as KEDA reads it.
func paused(sj *v1alpha1.ScaledJob) bool {
	v, ok := sj.Annotations[v1alpha1.PausedAnnotation]
	if !ok {
		return false
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	return err != nil || b
}

// triggersAndAuthentications returns the triggers' types and their
// authentication objects' names, each once, comma-separated.
func triggersAndAuthentications(ts []v1alpha1.ScaleTrigger) (types, auths string) {
	var tl, al []string
	for _, t := range ts {
		if !slices.Contains(tl, t.Type) {
			tl = append(tl, t.Type)
		}
		if ref := t.AuthenticationRef; ref != nil && ref.Name != "" && !slices.Contains(al, ref.Name) {
			al = append(al, ref.Name)
		}
	}
	return strings.Join(tl, ","), strings.Join(al, ",")
}

// finalize runs when the ScaledJob is being deleted: the loop has
// stopped; its Jobs go with it through the garbage collector (they are
// owned by it). It removes the finalizer.
func (c *Controller) finalize(ctx context.Context, sj *v1alpha1.ScaledJob) error {
	if !slices.Contains(sj.Finalizers, v1alpha1.Finalizer) {
		return nil
	}
	sj.Finalizers = slices.DeleteFunc(sj.Finalizers, func(f string) bool { return f == v1alpha1.Finalizer })
	if _, err := c.kedaClient.KedaV1alpha1().ScaledJobs(sj.Namespace).Update(ctx, sj, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("removing the finalizer: %w", err)
	}
	klog.FromContext(ctx).Info("ScaledJob finalized; the garbage collector deletes its Jobs")
	c.recorder.Event(sj, corev1.EventTypeNormal, eventReasonDeleted, messageScaledJobGone)
	return nil
}

// writeStatus writes status when it differs from what the API server has.
func (c *Controller) writeStatus(ctx context.Context, sj *v1alpha1.ScaledJob, status *v1alpha1.ScaledJobStatus) error {
	if equality.Semantic.DeepEqual(&sj.Status, status) {
		return nil
	}
	updated := sj.DeepCopy()
	updated.Status = *status
	_, err := c.kedaClient.KedaV1alpha1().ScaledJobs(sj.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("writing the status: %w", err)
	}
	return nil
}
