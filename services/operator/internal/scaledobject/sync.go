package scaledobject

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/resourceversion"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/hpa"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/triggers"
)

// Annotations of ebb's own, beside KEDA's.
const (
	// KeepHPAOnDeleteAnnotation, "true" on a ScaledObject, keeps its HPA
	// when the ScaledObject is deleted: the operator removes its
	// ownerReference first, so the garbage collector leaves it. An HPA the
	// ScaledObject adopted is always kept this way.
	KeepHPAOnDeleteAnnotation = "scaledobject.keda.sh/keep-hpa-on-delete"
	// PreAdoptionAnnotation holds, on an adopted HPA, the labels,
	// annotations and spec it had before adoption, restored when the
	// ScaledObject releases it.
	PreAdoptionAnnotation = "autoscaling.ebb.dev/pre-adoption-hpa"
)

// Reasons of conditions and events.
const (
	reasonTargetNotFound   = "ScaleTargetNotFound"
	reasonTargetNoScale    = "ScaleTargetNotScalable"
	reasonTriggerError     = "TriggerError"
	reasonAuthFailed       = "TriggerAuthenticationFailed"
	reasonHPAConflict      = "HPAOwnedByOther"
	reasonHPACreated       = "HPACreated"
	reasonHPAUpdated       = "HPAUpdated"
	reasonHPAAdopted       = "HPAAdopted"
	reasonHPAReleased      = "HPAReleased"
	reasonHPADeleted       = "HPADeleted"
	reasonReplicasRestored = "ReplicasRestored"
	reasonPausedReplicas   = "PausedAtReplicas"
)

// preAdoption is what an HPA was before a ScaledObject adopted it.
type preAdoption struct {
	Labels      map[string]string                         `json:"labels,omitempty"`
	Annotations map[string]string                         `json:"annotations,omitempty"`
	Spec        autoscalingv2.HorizontalPodAutoscalerSpec `json:"spec"`
}

// sync reconciles one ScaledObject. It reads the ScaledObject only from
// the informer that delivered its event: NotFound means it is gone and
// there is nothing to do.
func (c *Controller) sync(ctx context.Context, key cache.ObjectName) error {
	logger := klog.FromContext(ctx).WithValues("scaledObject", key)
	ctx = klog.NewContext(ctx, logger)

	cached, err := c.soLister.ScaledObjects(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		logger.V(4).Info("ScaledObject is gone")
		c.forgetWritten(key)
		c.untrack(key)
		return nil
	}
	if err != nil {
		return err
	}
	so := c.freshest(key, cached).DeepCopy()

	if so.DeletionTimestamp != nil {
		c.untrack(key)
		return c.finalize(ctx, so)
	}
	if needsFinalizer(so) && !slices.Contains(so.Finalizers, v1alpha1.Finalizer) {
		so.Finalizers = append(so.Finalizers, v1alpha1.Finalizer)
		updated, err := c.kedaClient.KedaV1alpha1().ScaledObjects(so.Namespace).Update(ctx, so, metav1.UpdateOptions{FieldManager: FieldManager})
		if err != nil {
			return fmt.Errorf("adding the finalizer: %w", err)
		}
		c.remember(updated)
		so = updated
	}

	status := so.Status.DeepCopy()
	if !status.Conditions.AreInitialized() {
		for _, cond := range v1alpha1.InitialConditions() {
			if _, ok := status.Conditions.Get(cond.Type); !ok {
				status.Conditions.Set(cond.Type, cond.Status, cond.Reason, cond.Message)
			}
		}
	}
	err = c.reconcile(ctx, so, status)
	c.recordHealth(so, status)
	if writeErr := c.writeStatus(ctx, so, status); writeErr != nil && err == nil {
		err = writeErr
	}
	return err
}

// needsFinalizer reports whether deleting so takes work from ebb, which
// its finalizer waits for: restoring the target's original replica count,
// or keeping its HPA (the keep annotation, or an HPA adopted with
// transfer-hpa-ownership, which is given back as it was). Other
// ScaledObjects get no finalizer: the garbage collector deletes their HPA,
// the scale loop forgets them on the delete event, and they are never
// left stuck in deletion when ebb is not running or uninstalled. It saves
// a write per ScaledObject created and deleted. Once added, the finalizer
// stays until deletion (an HPA adopted earlier is still given back after
// the annotation is removed); an existing one (a ScaledObject KEDA or an
// earlier ebb created) is honoured the same way.
func needsFinalizer(so *v1alpha1.ScaledObject) bool {
	return (so.Spec.Advanced != nil && so.Spec.Advanced.RestoreToOriginalReplicaCount) ||
		v1alpha1.IsAnnotationTrue(so.Annotations, KeepHPAOnDeleteAnnotation) ||
		v1alpha1.IsAnnotationTrue(so.Annotations, v1alpha1.TransferHPAOwnershipAnnotation)
}

// reconcile brings the target and the HPA to what so asks for and records
// the outcome in status. Errors worth retrying are returned; permanent
// problems are recorded (condition and event) and return nil, since only a
// change to an object fixes them and that change requeues.
func (c *Controller) reconcile(ctx context.Context, so *v1alpha1.ScaledObject, status *v1alpha1.ScaledObjectStatus) error {
	status.HpaName = so.HPAName()
	triggerTypes := make([]string, 0, len(so.Spec.Triggers))
	for _, t := range so.Spec.Triggers {
		if !slices.Contains(triggerTypes, t.Type) {
			triggerTypes = append(triggerTypes, t.Type)
		}
	}
	joined := strings.Join(triggerTypes, ",")
	status.TriggersTypes = &joined

	// The scale target, through its /scale subresource, whatever its kind.
	gvk, err := so.ScaleTargetGVK()
	if err != nil {
		c.notReady(so, status, reasonTargetNotFound, fmt.Sprintf("spec.scaleTargetRef.apiVersion: %v", err))
		return nil
	}
	mapping, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		// The mapper re-discovers on a miss (rate-limited), so a CRD
		// installed later is found on a retry.
		c.notReady(so, status, reasonTargetNotFound, fmt.Sprintf("kind %s is not served by the API server (is its CRD installed?)", gvk))
		return fmt.Errorf("resolving %s: %w", gvk, err)
	}
	if err != nil {
		return fmt.Errorf("resolving %s: %w", gvk, err)
	}
	gr := mapping.Resource.GroupResource()
	status.ScaleTargetKind = gvk.GroupVersion().String() + "." + gvk.Kind
	status.ScaleTargetGVKR = &v1alpha1.GroupVersionKindResource{
		Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Resource: mapping.Resource.Resource,
	}
	target := so.Spec.ScaleTargetRef.Name
	// From the informer caches for Deployments and StatefulSets (no
	// request), through /scale for other kinds.
	current, err := c.replicas.Get(ctx, so.Namespace, gr, target)
	if apierrors.IsNotFound(err) {
		c.notReady(so, status, reasonTargetNotFound, fmt.Sprintf("%s %s/%s not found, or it has no /scale subresource", gvk.Kind, so.Namespace, target))
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the scale of %s %s: %w", gvk.Kind, target, err)
	}
	if status.OriginalReplicaCount == nil {
		status.OriginalReplicaCount = &current
	}

	// Paused: no HPA; with paused-replicas the target is held at N.
	if paused, replicas, err := so.PausedState(); err != nil {
		c.notReady(so, status, "InvalidPausedReplicas", err.Error())
		return nil
	} else if paused {
		c.untrack(cache.NewObjectName(so.Namespace, so.Name))
		return c.pause(ctx, so, status, gr, current, replicas)
	}
	status.PausedReplicaCount = nil
	status.Conditions.Set(v1alpha1.ConditionPaused, metav1.ConditionFalse, "", "")

	// An invalid formula gets no HPA, as in KEDA: its composite metric
	// could never be served.
	if so.HasScalingModifiersFormula() {
		if _, err := c.formula(so); err != nil {
			c.notReady(so, status, reasonTriggerError, err.Error())
			return nil
		}
	}
	metrics, err := c.metrics.MetricSpecs(ctx, so)
	if err != nil {
		c.notReady(so, status, reasonTriggerError, err.Error())
		if errors.Is(err, scaler.ErrUnreachable) {
			return err // an external scaler that may come back: retry with backoff
		}
		return nil
	}
	want, err := hpa.Build(so, metrics)
	if err != nil {
		c.notReady(so, status, reasonTriggerError, err.Error())
		return nil
	}
	status.ExternalMetricNames, status.ResourceMetricNames = metricNames(want)

	live, err := c.ensureHPA(ctx, so, status, want)
	if err != nil || live == nil {
		return err
	}
	c.readyFromHPA(status, live)
	c.trackActivity(so, status)
	return c.checkResolution(ctx, so, status)
}

// checkResolution reports, with Ready False (reason
// TriggerAuthenticationFailed) and a Warning event, a trigger whose
// authentication or environment cannot be resolved: a missing Secret,
// ConfigMap, key, authentication object or filePath file, named with the
// key at fault, never a value. The HPA stays: it reads the trigger's metric
// again once the object is fixed, and the object's change (watched by the
// trigger cache) brings the ScaledObject back here. An error no watched
// change fixes (the API server could not be read, the target's environment
// lacks a variable) is retried with backoff, each retry resolving the
// triggers again.
func (c *Controller) checkResolution(ctx context.Context, so *v1alpha1.ScaledObject, status *v1alpha1.ScaledObjectStatus) error {
	if c.trigs == nil {
		return nil
	}
	key := cache.NewObjectName(so.Namespace, so.Name)
	failed := func() (triggers.Trigger, *triggers.ResolveError, error) {
		trigs, err := c.trigs.Scalers(so)
		if err != nil {
			return triggers.Trigger{}, nil, err // closed: shutting down
		}
		for _, t := range trigs {
			var re *triggers.ResolveError
			if errors.As(t.Err, &re) {
				return t, re, nil
			}
		}
		return triggers.Trigger{}, nil, nil
	}
	t, re, err := failed()
	if err != nil {
		return nil
	}
	if re != nil && re.Retry {
		// Resolved earlier (by this reconcile's previous attempt, the
		// scale loop or a metric read) with an error worth retrying: this
		// attempt resolves again.
		c.trigs.Forget(key)
		if t, re, err = failed(); err != nil {
			return nil
		}
	}
	if re == nil {
		return nil
	}
	msg := t.Err.Error()
	status.Conditions.Set(v1alpha1.ConditionReady, metav1.ConditionFalse, reasonAuthFailed, msg)
	// One event per change of what the status says, compared with the
	// stored status: readyFromHPA has just set Ready from the HPA.
	if was := so.Status.Conditions.Ready(); !was.IsFalse() || was.Reason != reasonAuthFailed || was.Message != msg {
		c.recorder.Event(so, corev1.EventTypeWarning, reasonAuthFailed, msg)
	}
	if re.Retry {
		return fmt.Errorf("resolving trigger %d: %w", t.Index, t.Err)
	}
	klog.FromContext(ctx).V(2).Info("A trigger cannot be resolved; waiting for the object at fault to change", "trigger", t.Index, "err", t.Err)
	return nil
}

// trackActivity hands so to the scale loop and records its triggers'
// activity. lastActiveTime is written only when Active changes, never per
// poll: the scale loop keeps it in memory and reads it back after a
// restart, so the cooldown survives one. status.triggersActivity holds
// each trigger's own activity by external metric name, as KEDA writes it;
// the loop asks for a sync only when one changes, and the status is
// written only when it differs.
func (c *Controller) trackActivity(so *v1alpha1.ScaledObject, status *v1alpha1.ScaledObjectStatus) {
	if c.loop == nil {
		return
	}
	key := cache.NewObjectName(so.Namespace, so.Name)
	c.loop.Track(so)
	a := c.loop.Activity(key)
	if a.Triggers != nil {
		activity := make(map[string]v1alpha1.TriggerActivityStatus, len(a.Triggers))
		for name, active := range a.Triggers {
			activity[name] = v1alpha1.TriggerActivityStatus{IsActive: active}
		}
		status.TriggersActivity = activity
	}
	if !a.Known {
		return
	}
	was := status.Conditions.Active()
	if a.Active && !was.IsTrue() {
		status.Conditions.Set(v1alpha1.ConditionActive, metav1.ConditionTrue, "ScalerActive", "Scaling is performed because triggers are active")
	} else if !a.Active && !was.IsFalse() {
		status.Conditions.Set(v1alpha1.ConditionActive, metav1.ConditionFalse, "ScalerNotActive", "Scaling is not performed because triggers are not active")
	} else {
		return
	}
	if !a.LastActive.IsZero() {
		t := metav1.NewTime(a.LastActive)
		status.LastActiveTime = &t
	}
}

// untrack stops the scale loop's polling of key.
func (c *Controller) untrack(key cache.ObjectName) {
	if c.loop != nil {
		c.loop.Untrack(key)
	}
}

// ensureHPA creates, updates or adopts the HPA. It returns the HPA as the
// API server has it, or nil (with the condition set) when it may not touch
// the HPA.
func (c *Controller) ensureHPA(ctx context.Context, so *v1alpha1.ScaledObject, status *v1alpha1.ScaledObjectStatus, want *autoscalingv2.HorizontalPodAutoscaler) (*autoscalingv2.HorizontalPodAutoscaler, error) {
	hpas := c.kubeClient.AutoscalingV2().HorizontalPodAutoscalers(so.Namespace)
	live, err := c.hpaLister.HorizontalPodAutoscalers(so.Namespace).Get(want.Name)
	if apierrors.IsNotFound(err) {
		created, err := hpas.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager})
		if apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("HPA %s exists but is not in the cache yet: %w", want.Name, err)
		}
		if err != nil {
			return nil, fmt.Errorf("creating HPA %s: %w", want.Name, err)
		}
		c.recorder.Eventf(so, corev1.EventTypeNormal, reasonHPACreated, "Created HPA %s", want.Name)
		return created, nil
	}
	if err != nil {
		return nil, err
	}

	if owner := metav1.GetControllerOf(live); owner == nil || owner.UID != so.UID {
		if !v1alpha1.IsAnnotationTrue(so.Annotations, v1alpha1.TransferHPAOwnershipAnnotation) {
			msg := fmt.Sprintf("HPA %s already exists and is not owned by this ScaledObject; set %s: \"true\" to adopt it", live.Name, v1alpha1.TransferHPAOwnershipAnnotation)
			if owner != nil {
				msg = fmt.Sprintf("HPA %s is owned by %s %s", live.Name, owner.Kind, owner.Name)
			}
			c.notReady(so, status, reasonHPAConflict, msg)
			return nil, nil
		}
		// Adopt: remember what the HPA was, so releasing it restores it.
		record, err := json.Marshal(preAdoption{Labels: live.Labels, Annotations: live.Annotations, Spec: live.Spec})
		if err != nil {
			return nil, err
		}
		if want.Annotations == nil {
			want.Annotations = map[string]string{}
		}
		if prev, ok := live.Annotations[PreAdoptionAnnotation]; ok {
			record = []byte(prev) // adopted before: keep the first record
		}
		want.Annotations[PreAdoptionAnnotation] = string(record)
		keepPreAdoptionMetadata(ctx, want, string(record))
		adopted := live.DeepCopy()
		adopted.Labels, adopted.Annotations, adopted.Spec = want.Labels, want.Annotations, want.Spec
		adopted.OwnerReferences = append(withoutController(live.OwnerReferences), want.OwnerReferences...)
		updated, err := hpas.Update(ctx, adopted, metav1.UpdateOptions{FieldManager: FieldManager})
		if err != nil {
			return nil, fmt.Errorf("adopting HPA %s: %w", live.Name, err)
		}
		c.recorder.Eventf(so, corev1.EventTypeNormal, reasonHPAAdopted, "Adopted HPA %s", live.Name)
		return updated, nil
	}

	// Ours: keep the adoption record across updates.
	if prev, ok := live.Annotations[PreAdoptionAnnotation]; ok {
		if want.Annotations == nil {
			want.Annotations = map[string]string{}
		}
		want.Annotations[PreAdoptionAnnotation] = prev
		keepPreAdoptionMetadata(ctx, want, prev)
	}
	if equality.Semantic.DeepEqual(live.Spec, want.Spec) && maps.Equal(live.Labels, want.Labels) && maps.Equal(live.Annotations, want.Annotations) {
		return live, nil
	}
	updated := live.DeepCopy()
	updated.Labels, updated.Annotations, updated.Spec = want.Labels, want.Annotations, want.Spec
	result, err := hpas.Update(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager})
	if err != nil {
		return nil, fmt.Errorf("updating HPA %s: %w", live.Name, err)
	}
	c.recorder.Eventf(so, corev1.EventTypeNormal, reasonHPAUpdated, "Updated HPA %s", live.Name)
	return result, nil
}

// keepPreAdoptionMetadata keeps, on an adopted HPA, the labels and
// annotations it had before adoption (from record), under the ones the
// ScaledObject gives it: what other tools put there stays while ebb owns
// the HPA. Helm, for one, reads helm.sh/resource-policy: keep from the live
// HPA when an upgrade stops rendering it (the move from a plain HPA to a
// ScaledObject); dropping it on adoption, which can come first, gets the
// HPA deleted.
func keepPreAdoptionMetadata(ctx context.Context, want *autoscalingv2.HorizontalPodAutoscaler, record string) {
	var before preAdoption
	if err := json.Unmarshal([]byte(record), &before); err != nil {
		klog.FromContext(ctx).Error(err, "Cannot read the pre-adoption record; the HPA gets the ScaledObject's labels and annotations only", "hpa", want.Name)
		return
	}
	want.Labels = under(before.Labels, want.Labels)
	want.Annotations = under(before.Annotations, want.Annotations)
}

// under returns base with over's entries set over it.
func under(base, over map[string]string) map[string]string {
	if len(base) == 0 {
		return over
	}
	out := maps.Clone(base)
	maps.Copy(out, over)
	return out
}

// readyFromHPA sets Ready from the HPA's own view: Ready is not True while
// the HPA cannot read its metrics.
func (c *Controller) readyFromHPA(status *v1alpha1.ScaledObjectStatus, live *autoscalingv2.HorizontalPodAutoscaler) {
	for _, cond := range live.Status.Conditions {
		if cond.Type != autoscalingv2.ScalingActive {
			continue
		}
		// ScalingDisabled is the HPA's word for a target at zero
		// replicas, which is ebb's business, not a failure.
		if cond.Status == corev1.ConditionFalse && cond.Reason != "ScalingDisabled" {
			status.Conditions.Set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.HPAMetricsUnavailableReason,
				fmt.Sprintf("HPA %s cannot scale: %s: %s", live.Name, cond.Reason, cond.Message))
			return
		}
		status.Conditions.Set(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ScaledObjectReadyReason, v1alpha1.ScaledObjectReadyMessage)
		return
	}
	// The HPA controller has not read the metrics yet (its first sync of
	// a new HPA comes one sync period later): ebb's part is done, so the
	// ScaledObject is Ready, as in KEDA; the first failed reading turns it
	// False.
	status.Conditions.Set(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ScaledObjectReadyReason, v1alpha1.ScaledObjectReadyMessage)
}

// pause deletes the HPA and, with paused-replicas, scales the target to
// that count.
func (c *Controller) pause(ctx context.Context, so *v1alpha1.ScaledObject, status *v1alpha1.ScaledObjectStatus, gr schema.GroupResource, current int32, replicas *int32) error {
	if err := c.deleteOwnedHPA(ctx, so); err != nil {
		return err
	}
	msg := v1alpha1.ScaledObjectPausedMessage
	if replicas != nil {
		if current != *replicas {
			// The write carries the /scale's resourceVersion, read now.
			scales := c.scaleClient.Scales(so.Namespace)
			scaled, err := scales.Get(ctx, gr, so.Spec.ScaleTargetRef.Name, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("reading the scale of %s: %w", so.Spec.ScaleTargetRef.Name, err)
			}
			from := scaled.Spec.Replicas
			if from != *replicas {
				scaled.Spec.Replicas = *replicas
				if _, err := scales.Update(ctx, gr, scaled, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
					return fmt.Errorf("scaling %s to the paused replica count %d: %w", so.Spec.ScaleTargetRef.Name, *replicas, err)
				}
				c.recorder.Eventf(so, corev1.EventTypeNormal, reasonPausedReplicas, "Scaled %s from %d to the paused replica count %d", so.Spec.ScaleTargetRef.Name, from, *replicas)
			}
		}
		msg = fmt.Sprintf("ScaledObject is paused at %d replicas", *replicas)
	}
	status.PausedReplicaCount = replicas
	status.Conditions.Set(v1alpha1.ConditionPaused, metav1.ConditionTrue, v1alpha1.ScaledObjectPausedReason, msg)
	status.Conditions.Set(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ScaledObjectPausedReason, msg)
	return nil
}

// finalize runs when the ScaledObject is being deleted: it releases a kept
// HPA (so the garbage collector leaves it), restores the original replica
// count if asked, and removes the finalizer.
func (c *Controller) finalize(ctx context.Context, so *v1alpha1.ScaledObject) error {
	if !slices.Contains(so.Finalizers, v1alpha1.Finalizer) {
		return nil
	}
	if err := c.releaseHPA(ctx, so); err != nil {
		return err
	}
	if so.Spec.Advanced != nil && so.Spec.Advanced.RestoreToOriginalReplicaCount && so.Status.OriginalReplicaCount != nil {
		if err := c.restoreReplicas(ctx, so, *so.Status.OriginalReplicaCount); err != nil {
			return err
		}
	}
	so.Finalizers = slices.DeleteFunc(so.Finalizers, func(f string) bool { return f == v1alpha1.Finalizer })
	if _, err := c.kedaClient.KedaV1alpha1().ScaledObjects(so.Namespace).Update(ctx, so, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing the finalizer: %w", err)
	}
	return nil
}

// releaseHPA removes the ScaledObject's ownerReference from an HPA to keep
// (an adopted one, or any with the keep annotation), restoring what an
// adopted HPA was. An HPA not to keep is left to the garbage collector.
func (c *Controller) releaseHPA(ctx context.Context, so *v1alpha1.ScaledObject) error {
	live, err := c.hpaLister.HorizontalPodAutoscalers(so.Namespace).Get(so.HPAName())
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	owner := metav1.GetControllerOf(live)
	if owner == nil || owner.UID != so.UID {
		return nil
	}
	record, adopted := live.Annotations[PreAdoptionAnnotation]
	if !adopted && !v1alpha1.IsAnnotationTrue(so.Annotations, KeepHPAOnDeleteAnnotation) {
		return nil // the garbage collector deletes it with the ScaledObject
	}
	released := live.DeepCopy()
	released.OwnerReferences = withoutController(live.OwnerReferences)
	delete(released.Annotations, PreAdoptionAnnotation)
	if adopted {
		var before preAdoption
		if err := json.Unmarshal([]byte(record), &before); err != nil {
			klog.FromContext(ctx).Error(err, "Cannot read the pre-adoption record; releasing the HPA as it is", "hpa", live.Name)
		} else {
			released.Labels, released.Annotations, released.Spec = before.Labels, before.Annotations, before.Spec
		}
	}
	updated, err := c.kubeClient.AutoscalingV2().HorizontalPodAutoscalers(so.Namespace).Update(ctx, released, metav1.UpdateOptions{FieldManager: FieldManager})
	if err != nil {
		return fmt.Errorf("releasing HPA %s: %w", live.Name, err)
	}
	c.recorder.Eventf(so, corev1.EventTypeNormal, reasonHPAReleased, "Released HPA %s: it stays after the ScaledObject is deleted", live.Name)
	c.dropManagedFields(ctx, updated)
	return nil
}

// dropManagedFields removes the operator's entries from the managedFields
// of an HPA it released. The fields it wrote while it owned the HPA (the
// metrics, the replica bounds, and the same fields again when the release
// set them back) are otherwise still the operator's, and a server-side
// apply of the HPA by its owner, which is how helm 4 upgrades it, fails on
// a conflict with a controller that no longer manages it. An update that
// changes nothing but managedFields adds no entry of its own. Best
// effort: a failure is logged, and the HPA is released all the same.
func (c *Controller) dropManagedFields(ctx context.Context, h *autoscalingv2.HorizontalPodAutoscaler) {
	keep := slices.DeleteFunc(slices.Clone(h.ManagedFields), func(e metav1.ManagedFieldsEntry) bool { return e.Manager == FieldManager })
	if len(keep) == len(h.ManagedFields) {
		return
	}
	if len(keep) == 0 {
		keep = []metav1.ManagedFieldsEntry{{}} // an empty list leaves managedFields as they are; [{}] clears them
	}
	stripped := h.DeepCopy()
	stripped.ManagedFields = keep
	if _, err := c.kubeClient.AutoscalingV2().HorizontalPodAutoscalers(h.Namespace).Update(ctx, stripped, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		klog.FromContext(ctx).Error(err, "Cannot drop the operator's managed fields from the released HPA; a server-side apply that changes them will conflict", "hpa", h.Name)
	}
}

func (c *Controller) restoreReplicas(ctx context.Context, so *v1alpha1.ScaledObject, replicas int32) error {
	gvk, err := so.ScaleTargetGVK()
	if err != nil {
		return nil // nothing was ever scaled
	}
	mapping, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("resolving %s to restore its replicas: %w", gvk, err)
	}
	scales := c.scaleClient.Scales(so.Namespace)
	current, err := scales.Get(ctx, mapping.Resource.GroupResource(), so.Spec.ScaleTargetRef.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if current.Spec.Replicas == replicas {
		return nil
	}
	current.Spec.Replicas = replicas
	if _, err := scales.Update(ctx, mapping.Resource.GroupResource(), current, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("restoring %s to %d replicas: %w", so.Spec.ScaleTargetRef.Name, replicas, err)
	}
	c.recorder.Eventf(so, corev1.EventTypeNormal, reasonReplicasRestored, "Restored %s to its original %d replicas", so.Spec.ScaleTargetRef.Name, replicas)
	return nil
}

func (c *Controller) deleteOwnedHPA(ctx context.Context, so *v1alpha1.ScaledObject) error {
	live, err := c.hpaLister.HorizontalPodAutoscalers(so.Namespace).Get(so.HPAName())
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if owner := metav1.GetControllerOf(live); owner == nil || owner.UID != so.UID {
		return nil
	}
	uid := live.UID
	err = c.kubeClient.AutoscalingV2().HorizontalPodAutoscalers(so.Namespace).Delete(ctx, live.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting HPA %s: %w", live.Name, err)
	}
	c.recorder.Eventf(so, corev1.EventTypeNormal, reasonHPADeleted, "Deleted HPA %s while the ScaledObject is paused", live.Name)
	return nil
}

// notReady records a problem the user must fix: Ready False and a warning
// event.
func (c *Controller) notReady(so *v1alpha1.ScaledObject, status *v1alpha1.ScaledObjectStatus, reason, message string) {
	if status.Conditions.Set(v1alpha1.ConditionReady, metav1.ConditionFalse, reason, message) {
		c.recorder.Event(so, corev1.EventTypeWarning, reason, message)
	}
}

// writeStatus writes status when it differs from what the API server has.
func (c *Controller) writeStatus(ctx context.Context, so *v1alpha1.ScaledObject, status *v1alpha1.ScaledObjectStatus) error {
	if equality.Semantic.DeepEqual(&so.Status, status) {
		return nil
	}
	updated := so.DeepCopy()
	updated.Status = *status
	written, err := c.kedaClient.KedaV1alpha1().ScaledObjects(so.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("writing the status: %w", err)
	}
	c.remember(written)
	return nil
}

// remember keeps so, just returned by a write, for the syncs that start
// before the informer's cache holds it (see Controller.written).
func (c *Controller) remember(so *v1alpha1.ScaledObject) {
	c.writtenMu.Lock()
	defer c.writtenMu.Unlock()
	c.written[cache.NewObjectName(so.Namespace, so.Name)] = so
}

func (c *Controller) forgetWritten(key cache.ObjectName) {
	c.writtenMu.Lock()
	defer c.writtenMu.Unlock()
	delete(c.written, key)
}

// freshest returns the newer of the cached ScaledObject and the one the
// controller last wrote, by resourceVersion; once the cache has caught up
// (or the versions cannot be compared, or the object was re-created), the
// written copy is dropped and the cached one used.
func (c *Controller) freshest(key cache.ObjectName, cached *v1alpha1.ScaledObject) *v1alpha1.ScaledObject {
	c.writtenMu.Lock()
	defer c.writtenMu.Unlock()
	w, ok := c.written[key]
	if !ok {
		return cached
	}
	if w.UID == cached.UID {
		if cmp, err := resourceversion.CompareResourceVersion(cached.ResourceVersion, w.ResourceVersion); err == nil && cmp < 0 {
			return w
		}
	}
	delete(c.written, key)
	return cached
}

// metricNames lists the HPA's External and Resource metric names.
func metricNames(h *autoscalingv2.HorizontalPodAutoscaler) (external, resource []string) {
	for _, m := range h.Spec.Metrics {
		switch {
		case m.External != nil:
			external = append(external, m.External.Metric.Name)
		case m.Resource != nil:
			resource = append(resource, string(m.Resource.Name))
		case m.ContainerResource != nil:
			resource = append(resource, string(m.ContainerResource.Name))
		}
	}
	return external, resource
}

// withoutController returns refs without the controller reference.
func withoutController(refs []metav1.OwnerReference) []metav1.OwnerReference {
	out := make([]metav1.OwnerReference, 0, len(refs))
	for _, r := range refs {
		if r.Controller == nil || !*r.Controller {
			out = append(out, r)
		}
	}
	return out
}
