package validate

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"
	admissionv1 "k8s.io/api/admission/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/formula"
	"github.com/ebb-autoscaler/ebb/services/webhook/internal/admission"
)

// maxLabelValue is the longest label value, and DNS label, Kubernetes
// allows. A ScaledObject's name is the value of the label
// scaledobject.keda.sh/name on its HPA and in its metrics' selectors.
const maxLabelValue = validation.LabelValueMaxLength

// kedaGroup is the API group of the ScaledObject owner references.
const kedaGroup = "keda.sh"

// ScaledObject validates ScaledObjects.
type ScaledObject struct {
	reader Reader
}

var _ admission.Validator = (*ScaledObject)(nil)

// NewScaledObject returns the ScaledObject validator, reading the cluster
// through reader.
func NewScaledObject(reader Reader) *ScaledObject {
	return &ScaledObject{reader: reader}
}

// Validate implements admission.Validator.
func (v *ScaledObject) Validate(ctx context.Context, req *admissionv1.AdmissionRequest) ([]string, error) {
	var so v1alpha1.ScaledObject
	if err := admission.Decode(req.Object, "the object", &so); err != nil {
		return nil, err
	}
	if so.Namespace == "" {
		so.Namespace = req.Namespace
	}
	if so.Name == "" {
		so.Name = req.Name
	}
	if req.Operation == admissionv1.Update {
		var old v1alpha1.ScaledObject
		if err := admission.Decode(req.OldObject, "the old object", &old); err != nil {
			return nil, err
		}
		if so.DeletionTimestamp != nil {
			return nil, nil
		}
		if scaledObjectUnchanged(&old, &so) {
			// Nothing a rule denies changed; the annotations' warnings
			// cost no read.
			r := &report{}
			warnAnnotations(&so, r)
			return r.warnings, nil
		}
	}

	r := &report{}
	checkScaledObjectStatic(&so, r)
	if err := checkTriggerMetadata(ctx, v.reader, owner{namespace: so.Namespace, name: so.Name, asMetricSource: so.HasScalingModifiersFormula()}, so.Spec.Triggers, r); err != nil {
		return r.warnings, err
	}
	if len(r.problems) > 0 {
		return r.result(v1alpha1.ScaledObjectKind, so.Name)
	}
	if err := v.checkCluster(ctx, &so, r); err != nil {
		return r.warnings, err
	}
	return r.result(v1alpha1.ScaledObjectKind, so.Name)
}

// scaledObjectUnchanged reports whether an update leaves what the rules
// that deny check as it was: the spec, and the transfer-hpa-ownership
// annotation. Adding or removing a finalizer, labels, other annotations
// (pausing included) pass unchecked.
func scaledObjectUnchanged(old, cur *v1alpha1.ScaledObject) bool {
	a := v1alpha1.TransferHPAOwnershipAnnotation
	return old.Annotations[a] == cur.Annotations[a] && equality.Semantic.DeepEqual(old.Spec, cur.Spec)
}

// checkScaledObjectStatic checks the rules that need nothing but the
// object.
func checkScaledObjectStatic(so *v1alpha1.ScaledObject, r *report) {
	// Names.
	if n := len(so.Name); n > maxLabelValue {
		r.deny("metadata.name", "%q is %d characters long; a ScaledObject's name is the value of the label %s on its HPA, so it may have at most %d",
			so.Name, n, v1alpha1.ScaledObjectNameLabel, maxLabelValue)
	}
	hpaName := so.HPAName()
	custom := hpaName != v1alpha1.HPANamePrefix+so.Name
	switch {
	case custom && len(hpaName) > maxLabelValue:
		r.deny("spec.advanced.horizontalPodAutoscalerConfig.name", "%q is %d characters long; an HPA name may have at most %d", hpaName, len(hpaName), maxLabelValue)
	case custom:
		for _, msg := range validation.IsDNS1123Subdomain(hpaName) {
			r.deny("spec.advanced.horizontalPodAutoscalerConfig.name", "%q is not a valid HPA name: %s", hpaName, msg)
		}
	case len(so.Name) <= maxLabelValue && len(hpaName) > maxLabelValue:
		r.deny("metadata.name", "the HPA name derived from it, %q, is %d characters long, more than %d; shorten the ScaledObject's name or set spec.advanced.horizontalPodAutoscalerConfig.name",
			hpaName, len(hpaName), maxLabelValue)
	}

	// The target.
	if ref := so.Spec.ScaleTargetRef; ref == nil || ref.Name == "" {
		r.deny("spec.scaleTargetRef.name", "the name of the workload to scale is required")
	} else if _, err := so.ScaleTargetGVK(); err != nil {
		r.deny("spec.scaleTargetRef.apiVersion", "%q is not an API version: %v", ref.APIVersion, err)
	}

	// Replica counts, as KEDA compares them: an unset minReplicaCount is
	// 0, a set 0 counts as 1 (the HPA's minimum), maxReplicaCount defaults
	// to 100.
	maxReplicas := v1alpha1.DefaultMaxReplicaCount
	if so.Spec.MaxReplicaCount != nil {
		maxReplicas = *so.Spec.MaxReplicaCount
	}
	minReplicas, minDesc := int32(0), "not set, so 0"
	if m := so.Spec.MinReplicaCount; m != nil {
		minReplicas, minDesc = max(*m, 1), strconv.Itoa(int(*m))
		if *m == 0 {
			minDesc = "0, which counts as 1 here"
		}
	}
	if minReplicas > maxReplicas {
		r.deny("spec.minReplicaCount", "%d is greater than maxReplicaCount %d", minReplicas, maxReplicas)
	}
	if idle := so.Spec.IdleReplicaCount; idle != nil && *idle >= minReplicas {
		r.deny("spec.idleReplicaCount", "%d must be less than minReplicaCount (%s)", *idle, minDesc)
	}

	// Triggers.
	checkTriggerList(so.Spec.Triggers, r)
	resourceOnly := len(so.Spec.Triggers) > 0
	for _, t := range so.Spec.Triggers {
		if !isResourceTrigger(t.Type) {
			resourceOnly = false
		}
	}
	if resourceOnly && (so.Spec.MinReplicaCount == nil || *so.Spec.MinReplicaCount < 1) {
		r.deny("spec.minReplicaCount", "must be at least 1 when every trigger is cpu or memory: the HPA measures those on running pods, so the workload cannot scale to or from zero on them")
	}

	checkFallback(so, resourceOnly, r)
	checkScalingModifiers(so, r)

	warnAnnotations(so, r)
}

// warnAnnotations warns about annotations the operator reads that cannot
// work as written.
func warnAnnotations(so *v1alpha1.ScaledObject, r *report) {
	custom := so.HPAName() != v1alpha1.HPANamePrefix+so.Name
	if _, _, err := so.PausedState(); err != nil {
		r.warn("metadata.annotations", "%v; the operator reports the ScaledObject not Ready until it is fixed", err)
	}
	if v1alpha1.IsAnnotationTrue(so.Annotations, v1alpha1.TransferHPAOwnershipAnnotation) && !custom {
		r.warn("metadata.annotations", "%s has no effect without spec.advanced.horizontalPodAutoscalerConfig.name naming the HPA to adopt",
			v1alpha1.TransferHPAOwnershipAnnotation)
	}
}

func checkFallback(so *v1alpha1.ScaledObject, resourceOnly bool, r *report) {
	fb := so.Spec.Fallback
	if fb == nil {
		return
	}
	if fb.FailureThreshold < 0 {
		r.deny("spec.fallback.failureThreshold", "%d must not be negative", fb.FailureThreshold)
	}
	if fb.Replicas < 0 {
		r.deny("spec.fallback.replicas", "%d must not be negative", fb.Replicas)
	}
	if resourceOnly && !so.HasScalingModifiersFormula() {
		r.deny("spec.fallback", "a fallback applies to the metrics of triggers other than cpu and memory (or to a scalingModifiers formula), and this ScaledObject has none; remove the fallback or add such a trigger")
	}
	switch fb.Behavior {
	case "", v1alpha1.FallbackBehaviorStatic, v1alpha1.FallbackBehaviorCurrentReplicas,
		v1alpha1.FallbackBehaviorCurrentReplicasIfHigher, v1alpha1.FallbackBehaviorCurrentReplicasIfLower:
	case v1alpha1.FallbackBehaviorScalingModifiers:
		if !so.HasScalingModifiersFormula() {
			r.deny("spec.fallback.behavior", "%s needs spec.advanced.scalingModifiers.formula", fb.Behavior)
		}
	default:
		r.deny("spec.fallback.behavior", "%q is not a fallback behavior: use %s, %s, %s, %s or %s", fb.Behavior,
			v1alpha1.FallbackBehaviorStatic, v1alpha1.FallbackBehaviorCurrentReplicas, v1alpha1.FallbackBehaviorCurrentReplicasIfHigher,
			v1alpha1.FallbackBehaviorCurrentReplicasIfLower, v1alpha1.FallbackBehaviorScalingModifiers)
	}
}

func checkScalingModifiers(so *v1alpha1.ScaledObject, r *report) {
	a := so.Spec.Advanced
	if a == nil || a.ScalingModifiers == nil || reflect.ValueOf(*a.ScalingModifiers).IsZero() {
		return // an empty object, as KEDA writes back, means none
	}
	sm := a.ScalingModifiers
	const field = "spec.advanced.scalingModifiers"
	if strings.TrimSpace(sm.Formula) == "" {
		r.deny(field+".formula", "a formula is required when scalingModifiers is set")
		return
	}
	if sm.Target == "" {
		r.deny(field+".target", "a target is required with a formula: the composite metric's HPA target")
	} else if f, err := strconv.ParseFloat(sm.Target, 64); err != nil || !(f > 0) {
		r.deny(field+".target", "%q must be a number greater than 0", sm.Target)
	}
	if sm.ActivationTarget != "" {
		if _, err := strconv.ParseFloat(sm.ActivationTarget, 64); err != nil {
			r.deny(field+".activationTarget", "%q is not a number", sm.ActivationTarget)
		}
	}
	switch sm.MetricType {
	case "", autoscalingv2.AverageValueMetricType, autoscalingv2.ValueMetricType:
	default:
		r.deny(field+".metricType", "%q is not supported: the composite metric is an external metric, use AverageValue or Value", sm.MetricType)
	}
	names := formula.Variables(so.Spec.Triggers)
	if _, err := formula.Compile(sm.Formula, names); err != nil {
		usable := "none: name the triggers (cpu and memory excepted) to use them"
		if len(names) > 0 {
			usable = strings.Join(names, ", ")
		}
		// expr's errors draw the formula and a caret on further lines; the
		// first line says what is wrong and where.
		msg, _, _ := strings.Cut(err.Error(), "\n")
		r.deny(field+".formula", "%s (the trigger names it may use: %s)", msg, usable)
	}
}

// checkCluster checks the rules that read the cluster: the target, the
// other ScaledObjects, the HPAs. The three run concurrently; their
// findings are reported in that order.
func (v *ScaledObject) checkCluster(ctx context.Context, so *v1alpha1.ScaledObject, r *report) error {
	gvk, err := so.ScaleTargetGVK()
	if err != nil {
		return fmt.Errorf("spec.scaleTargetRef: %w", err) // checked before; not reachable
	}
	var target, others, hpas report
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return v.checkTarget(gctx, so, gvk, &target) })
	g.Go(func() error { return v.checkOtherScaledObjects(gctx, so, gvk, &others) })
	g.Go(func() error { return v.checkHPAs(gctx, so, gvk, &hpas) })
	if err := g.Wait(); err != nil {
		return err
	}
	r.merge(&target)
	r.merge(&others)
	r.merge(&hpas)
	return nil
}

// checkTarget checks that the target's kind has a /scale subresource and,
// for cpu and memory triggers, that the target exists and its containers
// set requests or limits for the resource. For other triggers a target
// that does not exist yet is admitted with a warning: GitOps tools apply
// objects in any order, and the operator reports it in a condition.
func (v *ScaledObject) checkTarget(ctx context.Context, so *v1alpha1.ScaledObject, gvk schema.GroupVersionKind, r *report) error {
	ref := so.Spec.ScaleTargetRef
	var resourceTriggers []int
	for i, t := range so.Spec.Triggers {
		if isResourceTrigger(t.Type) {
			resourceTriggers = append(resourceTriggers, i)
		}
	}
	needed := len(resourceTriggers) > 0
	desc := describe(gvk, so.Namespace, ref.Name)
	const field = "spec.scaleTargetRef"

	target, err := v.reader.ScaleTarget(ctx, so.Namespace, ref.Name, gvk, needed)
	if meta.IsNoMatchError(err) {
		if needed {
			r.deny(field, "the API server does not serve kind %s (is its CRD installed? are apiVersion and kind right?); cpu and memory triggers need the target to exist", gvkString(gvk))
		} else {
			r.warn(field, "the API server does not serve kind %s yet (is its CRD installed? are apiVersion and kind right?); the ScaledObject is not Ready until it does", gvkString(gvk))
		}
		return nil
	}
	if err != nil {
		return err
	}
	if !target.Scalable {
		r.deny(field, "kind %s has no /scale subresource, so ebb cannot scale it; target a Deployment, a StatefulSet, or a custom resource whose CRD enables the scale subresource", gvkString(gvk))
		return nil
	}
	if !target.Exists {
		if needed {
			r.deny(field, "%s does not exist; its %s trigger needs it, to check the containers' requests, so create it first", desc, so.Spec.Triggers[resourceTriggers[0]].Type)
		} else {
			r.warn(field, "%s does not exist yet; the ScaledObject is not Ready until it does", desc)
		}
		return nil
	}
	if !needed {
		return nil
	}
	tmpl := target.Template
	if tmpl == nil {
		r.warn(field, "%s has no spec.template, so the cpu and memory requests of its containers cannot be checked", desc)
		return nil
	}
	var limitRanges []corev1.LimitRange
	limitRangesRead := false
	for _, i := range resourceTriggers {
		t := so.Spec.Triggers[i]
		res := corev1.ResourceName(t.Type)
		containerName := t.Metadata["containerName"]
		matched := false
		for _, c := range tmpl.Spec.Containers {
			if containerName != "" && c.Name != containerName {
				continue
			}
			matched = true
			if hasResource(c.Resources, res) {
				continue
			}
			if !limitRangesRead {
				if limitRanges, err = v.reader.LimitRanges(ctx, so.Namespace); err != nil {
					return err
				}
				limitRangesRead = true
			}
			if limitRangeDefault(limitRanges, res) {
				continue
			}
			r.deny(fmt.Sprintf("spec.triggers[%d]", i),
				"container %q of %s sets no %s request or limit, and no LimitRange of namespace %s gives containers a default; the HPA needs it to scale on %s: set resources.requests.%s on the container",
				c.Name, desc, res, so.Namespace, res, res)
		}
		if containerName != "" && !matched {
			r.warn(fmt.Sprintf("spec.triggers[%d].metadata.containerName", i), "%s has no container %q; the HPA cannot measure its %s", desc, containerName, res)
		}
	}
	return nil
}

// checkOtherScaledObjects denies a target another ScaledObject scales and
// an HPA name another ScaledObject uses.
func (v *ScaledObject) checkOtherScaledObjects(ctx context.Context, so *v1alpha1.ScaledObject, gvk schema.GroupVersionKind, r *report) error {
	ref := so.Spec.ScaleTargetRef
	others, _, err := v.reader.ScaledObjectsForTarget(ctx, so.Namespace, ref.Name, func(o *v1alpha1.ScaledObject) bool {
		ogvk, err := o.ScaleTargetGVK()
		return o.Name != so.Name && err == nil && ogvk.GroupKind() == gvk.GroupKind()
	})
	if err != nil {
		return err
	}
	for _, o := range others {
		deleting := ""
		if o.DeletionTimestamp != nil {
			deleting = " (it is being deleted: try again once it is gone)"
		}
		r.deny("spec.scaleTargetRef", "%s is already scaled by ScaledObject %q%s; a workload can have only one ScaledObject",
			describe(gvk, so.Namespace, ref.Name), o.Name, deleting)
	}

	// A custom HPA name may collide with any ScaledObject's: list them.
	// The derived name keda-hpa-<name> is unique among derived names; a
	// custom name equal to it is caught through the HPA it owns (see
	// checkHPAs).
	hpaName := so.HPAName()
	if hpaName == v1alpha1.HPANamePrefix+so.Name {
		return nil
	}
	sames, err := v.reader.ScaledObjects(ctx, so.Namespace, func(o *v1alpha1.ScaledObject) bool {
		return o.Name != so.Name && o.HPAName() == hpaName
	})
	if err != nil {
		return err
	}
	for _, o := range sames {
		r.deny("spec.advanced.horizontalPodAutoscalerConfig.name", "the HPA name %q is already used by ScaledObject %q; each ScaledObject needs its own HPA", hpaName, o.Name)
	}
	return nil
}

// checkHPAs denies an existing HPA on the same target that this
// ScaledObject does not own, unless the ScaledObject adopts it
// (transfer-hpa-ownership with the HPA's name) or the HPA opts out of the
// check (validations.keda.sh/hpa-ownership: "false"); and an HPA of this
// ScaledObject's HPA name that belongs to another ScaledObject.
func (v *ScaledObject) checkHPAs(ctx context.Context, so *v1alpha1.ScaledObject, gvk schema.GroupVersionKind, r *report) error {
	ref := so.Spec.ScaleTargetRef
	hpaName := so.HPAName()
	onTarget := func(h *autoscalingv2.HorizontalPodAutoscaler) bool {
		t := h.Spec.ScaleTargetRef
		gv, err := schema.ParseGroupVersion(t.APIVersion)
		return err == nil && t.Name == ref.Name && gv.WithKind(t.Kind).GroupKind() == gvk.GroupKind()
	}
	// Two reads whose answers do not grow with the namespace's
	// ScaledObjects: the HPA of this ScaledObject's name, and the HPAs no
	// ScaledObject wrote (the operator labels every HPA it writes with
	// scaledobject.keda.sh/name; a ScaledObject's HPA on the same target
	// means a second ScaledObject on it, which checkOtherScaledObjects
	// denies), filtered by the API server. The GET is not redundant with
	// the LIST: the HPA of this ScaledObject's name is labelled when
	// another ScaledObject wrote it, or kept it on delete, so the LIST
	// does not return it.
	var (
		named   *autoscalingv2.HorizontalPodAutoscaler
		foreign []autoscalingv2.HorizontalPodAutoscaler
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		named, err = v.reader.HPA(gctx, so.Namespace, hpaName)
		return err
	})
	g.Go(func() (err error) {
		foreign, err = v.reader.HPAs(gctx, so.Namespace, "!"+v1alpha1.ScaledObjectNameLabel, func(h *autoscalingv2.HorizontalPodAutoscaler) bool {
			return h.Name != hpaName && onTarget(h)
		})
		return err
	})
	if err := g.Wait(); err != nil {
		return err
	}
	hpas := foreign
	if named != nil {
		hpas = append(hpas, *named)
	}
	slices.SortFunc(hpas, func(a, b autoscalingv2.HorizontalPodAutoscaler) int { return strings.Compare(a.Name, b.Name) })
	desc := describe(gvk, so.Namespace, ref.Name)
	transfer := v1alpha1.IsAnnotationTrue(so.Annotations, v1alpha1.TransferHPAOwnershipAnnotation)
	for i := range hpas {
		h := &hpas[i]
		owner := scaledObjectOwner(h)
		if owner == so.Name {
			continue
		}
		if !onTarget(h) {
			// Same name, another workload.
			if owner != "" {
				r.deny("spec.advanced.horizontalPodAutoscalerConfig.name", "the HPA name %q is already used by ScaledObject %q; each ScaledObject needs its own HPA", h.Name, owner)
			} else {
				r.warn("", "an HPA named %q already exists and scales %s %s; the operator cannot create this ScaledObject's HPA until it is gone or renamed",
					h.Name, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name)
			}
			continue
		}
		if strings.EqualFold(h.Annotations[v1alpha1.HPAOwnershipValidationAnnotation], "false") {
			continue
		}
		switch {
		case transfer && h.Name == hpaName:
			r.warn("", "this ScaledObject adopts the existing HPA %q (%s)", h.Name, v1alpha1.TransferHPAOwnershipAnnotation)
		case transfer:
			r.deny("spec.advanced.horizontalPodAutoscalerConfig.name", "HPA %q already scales %s; to adopt it with %s, set spec.advanced.horizontalPodAutoscalerConfig.name to %q",
				h.Name, desc, v1alpha1.TransferHPAOwnershipAnnotation, h.Name)
		case owner != "":
			r.deny("spec.scaleTargetRef", "HPA %q of ScaledObject %q already scales %s", h.Name, owner, desc)
		default:
			r.deny("spec.scaleTargetRef", "HPA %q already scales %s and this ScaledObject does not own it. Delete the HPA, or adopt it: annotate the ScaledObject %s: \"true\" and set spec.advanced.horizontalPodAutoscalerConfig.name to %q (or annotate the HPA %s: \"false\" to skip this check)",
				h.Name, desc, v1alpha1.TransferHPAOwnershipAnnotation, h.Name, v1alpha1.HPAOwnershipValidationAnnotation)
		}
	}
	return nil
}

// scaledObjectOwner returns the name of the ScaledObject that owns h
// (a keda.sh ScaledObject owner reference), or "".
func scaledObjectOwner(h *autoscalingv2.HorizontalPodAutoscaler) string {
	for _, o := range h.OwnerReferences {
		gv, err := schema.ParseGroupVersion(o.APIVersion)
		if err == nil && gv.Group == kedaGroup && o.Kind == v1alpha1.ScaledObjectKind {
			return o.Name
		}
	}
	return ""
}

// hasResource reports whether rr requests or limits res above zero.
func hasResource(rr corev1.ResourceRequirements, res corev1.ResourceName) bool {
	if q, ok := rr.Requests[res]; ok && q.Sign() > 0 {
		return true
	}
	q, ok := rr.Limits[res]
	return ok && q.Sign() > 0
}

// limitRangeDefault reports whether a LimitRange gives containers a
// default request or limit of res above zero.
func limitRangeDefault(lrs []corev1.LimitRange, res corev1.ResourceName) bool {
	for _, lr := range lrs {
		for _, item := range lr.Spec.Limits {
			if item.Type != corev1.LimitTypeContainer {
				continue
			}
			if q, ok := item.DefaultRequest[res]; ok && q.Sign() > 0 {
				return true
			}
			if q, ok := item.Default[res]; ok && q.Sign() > 0 {
				return true
			}
		}
	}
	return false
}

// describe names a workload for messages: "Deployment team-a/web",
// "Widget.example.com team-a/w1".
func describe(gvk schema.GroupVersionKind, namespace, name string) string {
	kind := gvk.Kind
	if gvk.Group != "" && gvk.Group != "apps" {
		kind += "." + gvk.Group
	}
	return fmt.Sprintf("%s %s/%s", kind, namespace, name)
}

// gvkString names a kind for messages: "apps/v1 Deployment".
func gvkString(gvk schema.GroupVersionKind) string {
	return strings.TrimPrefix(gvk.GroupVersion().String()+" "+gvk.Kind, " ")
}
