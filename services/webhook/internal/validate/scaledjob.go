package validate

import (
	"context"
	"slices"
	"strconv"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/services/webhook/internal/admission"
)

// ScaledJob validates ScaledJobs.
type ScaledJob struct {
	reader Reader
}

var _ admission.Validator = (*ScaledJob)(nil)

// NewScaledJob returns the ScaledJob validator; reader is used to read
// the triggers' authentication objects.
func NewScaledJob(reader Reader) *ScaledJob {
	return &ScaledJob{reader: reader}
}

// Validate implements admission.Validator.
func (v *ScaledJob) Validate(ctx context.Context, req *admissionv1.AdmissionRequest) ([]string, error) {
	var sj v1alpha1.ScaledJob
	if err := admission.Decode(req.Object, "the object", &sj); err != nil {
		return nil, err
	}
	if sj.Namespace == "" {
		sj.Namespace = req.Namespace
	}
	if sj.Name == "" {
		sj.Name = req.Name
	}
	if req.Operation == admissionv1.Update {
		var old v1alpha1.ScaledJob
		if err := admission.Decode(req.OldObject, "the old object", &old); err != nil {
			return nil, err
		}
		if sj.DeletionTimestamp != nil || equality.Semantic.DeepEqual(old.Spec, sj.Spec) {
			return nil, nil
		}
	}

	r := &report{}
	checkScaledJobStatic(&sj, r)
	if err := checkTriggerMetadata(ctx, v.reader, owner{namespace: sj.Namespace, name: sj.Name}, sj.Spec.Triggers, r); err != nil {
		return r.warnings, err
	}
	return r.result(v1alpha1.ScaledJobKind, sj.Name)
}

func checkScaledJobStatic(sj *v1alpha1.ScaledJob, r *report) {
	if n := len(sj.Name); n > maxLabelValue {
		r.deny("metadata.name", "%q is %d characters long; a ScaledJob's name is the value of the label %s on its Jobs, so it may have at most %d",
			sj.Name, n, v1alpha1.ScaledJobNameLabel, maxLabelValue)
	}

	jt := sj.Spec.JobTargetRef
	if jt == nil {
		r.deny("spec.jobTargetRef", "the spec of the Jobs to run is required")
	} else {
		containers := jt.Template.Spec.Containers
		if len(containers) == 0 {
			r.deny("spec.jobTargetRef.template.spec.containers", "the Jobs need at least one container")
		}
		if name := sj.Spec.EnvSourceContainerName; name != "" && len(containers) > 0 &&
			!slices.ContainsFunc(containers, func(c corev1.Container) bool { return c.Name == name }) {
			r.warn("spec.envSourceContainerName", "the Job template has no container %q; trigger values read from the environment cannot be resolved", name)
		}
	}

	maxReplicas := v1alpha1.DefaultScaledJobMaxReplicas
	if sj.Spec.MaxReplicaCount != nil {
		maxReplicas = *sj.Spec.MaxReplicaCount
	}
	if m := sj.Spec.MinReplicaCount; m != nil && *m > maxReplicas {
		r.warn("spec.minReplicaCount", "%d is greater than maxReplicaCount %d: no more than %d Jobs run at once", *m, maxReplicas, maxReplicas)
	}

	if s := sj.Spec.ScalingStrategy; s != nil && s.CustomScalingRunningJobPercentage != "" {
		if _, err := strconv.ParseFloat(s.CustomScalingRunningJobPercentage, 64); err != nil {
			r.deny("spec.scalingStrategy.customScalingRunningJobPercentage", "%q is not a number (write a decimal such as \"0.5\")", s.CustomScalingRunningJobPercentage)
		}
	}
	//lint:ignore SA1019 the deprecated field is read to warn about it
	if old := sj.Spec.RolloutStrategy; old != "" {
		if ro := sj.Spec.Rollout; ro != nil && ro.Strategy != "" && ro.Strategy != old {
			r.warn("spec.rolloutStrategy", "is deprecated and disagrees with spec.rollout.strategy %q, which wins; remove it", ro.Strategy)
		} else {
			r.warn("spec.rolloutStrategy", "is deprecated: use spec.rollout.strategy")
		}
	}

	checkTriggerList(sj.Spec.Triggers, r)
}
