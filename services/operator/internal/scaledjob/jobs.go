package scaledjob

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
)

// Labels KEDA puts on every Job of a ScaledJob, beside
// scaledjob.keda.sh/name, kept so selectors written for KEDA's Jobs match.
const (
	labelName      = "app.kubernetes.io/name"
	labelVersion   = "app.kubernetes.io/version"
	labelPartOf    = "app.kubernetes.io/part-of"
	labelManagedBy = "app.kubernetes.io/managed-by"
	// managedBy is the value of app.kubernetes.io/managed-by on ebb's Jobs.
	managedBy = "ebb-operator"
)

// lastAppliedAnnotation is kubectl's copy of the applied manifest; it is
// not copied from the ScaledJob onto its Jobs (it describes the ScaledJob,
// and can be as large as the whole object).
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// controllerKind is the ScaledJob's kind, for owner references.
var controllerKind = v1alpha1.SchemeGroupVersion.WithKind(v1alpha1.ScaledJobKind)

// newJob returns a Job to create for sj, as KEDA builds it: named
// <scaledjob>-<random suffix> (generateName), labelled
// scaledjob.keda.sh/name=<scaledjob> with KEDA's app.kubernetes.io labels
// and the ScaledJob's own labels (less those its
// scaledjob.keda.sh/job-excluded-labels annotation lists), annotated with
// the ScaledJob's generation and annotations, its pod template labelled
// scaledjob.keda.sh/name too, a restartPolicy of OnFailure when the
// template sets none (a Job may not restart Always), and controlled by sj
// so the garbage collector deletes it with sj. version is ebb's, for
// app.kubernetes.io/version.
func newJob(sj *v1alpha1.ScaledJob, version string) *batchv1.Job {
	labels := map[string]string{
		labelName:      sj.Name,
		labelPartOf:    sj.Name,
		labelManagedBy: managedBy,
	}
	if v := labelValue(version); v != "" {
		labels[labelVersion] = v
	}
	excluded := map[string]bool{}
	for _, l := range strings.Split(sj.Annotations[v1alpha1.JobExcludedLabelsAnnotation], ",") {
		if l = strings.TrimSpace(l); l != "" {
			excluded[l] = true
		}
	}
	for k, v := range sj.Labels {
		if !excluded[k] {
			labels[k] = v
		}
	}
	// Set last: the loop counts the ScaledJob's Jobs by this label.
	labels[v1alpha1.ScaledJobNameLabel] = sj.Name

	annotations := make(map[string]string, len(sj.Annotations)+1)
	for k, v := range sj.Annotations {
		if k != lastAppliedAnnotation {
			annotations[k] = v
		}
	}
	annotations[v1alpha1.ScaledJobGenerationAnnotation] = strconv.FormatInt(sj.Generation, 10)

	spec := sj.Spec.JobTargetRef.DeepCopy()
	if spec.Template.Labels == nil {
		spec.Template.Labels = map[string]string{}
	}
	spec.Template.Labels[v1alpha1.ScaledJobNameLabel] = sj.Name
	if spec.Template.Spec.RestartPolicy == "" {
		spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    sj.Name + "-",
			Namespace:       sj.Namespace,
			Labels:          labels,
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(sj, controllerKind)},
		},
		Spec: *spec,
	}
}

var labelInvalid = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// labelValue turns s into a valid label value (at most 63 characters of
// [A-Za-z0-9._-], alphanumeric at both ends); "" when nothing is left.
func labelValue(s string) string {
	s = labelInvalid.ReplaceAllString(s, "-")
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.TrimFunc(s, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9')
	})
}

// finished returns Complete or Failed for a Job that has finished that
// way (the condition True), and "" for a Job still running.
func finished(j *batchv1.Job) batchv1.JobConditionType {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type
		}
	}
	return ""
}

// finishedAt is when a finished Job finished: its completionTime (set
// for Jobs that complete), else when its Complete or Failed condition
// became True (Failed Jobs have no completionTime), else its creation.
func finishedAt(j *batchv1.Job) time.Time {
	if j.Status.CompletionTime != nil {
		return j.Status.CompletionTime.Time
	}
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue && !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time
		}
	}
	return j.CreationTimestamp.Time
}

// ownedBy reports whether uid is j's controller.
func ownedBy(j metav1.Object, uid types.UID) bool {
	ref := metav1.GetControllerOfNoCopy(j)
	return ref != nil && ref.UID == uid
}

// generationOf returns the ScaledJob generation a Job was created from,
// and false when it carries none.
func generationOf(j *batchv1.Job) (int64, bool) {
	v, ok := j.Annotations[v1alpha1.ScaledJobGenerationAnnotation]
	if !ok {
		return 0, false
	}
	g, err := strconv.ParseInt(v, 10, 64)
	return g, err == nil
}

// historyToDelete returns the finished Jobs beyond the history limits,
// oldest first: of jobs, the Complete ones but the successful newest
// successfulLimit and the Failed ones but the newest failedLimit, as KEDA
// keeps them. Jobs already being deleted are left out and do not count.
// Jobs are ordered by when they finished (see finishedAt), then by
// creation and name, so repeated calls over the same Jobs agree.
func historyToDelete(jobs []*batchv1.Job, successfulLimit, failedLimit int32) []*batchv1.Job {
	var complete, failed []*batchv1.Job
	for _, j := range jobs {
		if j.DeletionTimestamp != nil {
			continue
		}
		switch finished(j) {
		case batchv1.JobComplete:
			complete = append(complete, j)
		case batchv1.JobFailed:
			failed = append(failed, j)
		}
	}
	var out []*batchv1.Job
	for _, set := range []struct {
		jobs  []*batchv1.Job
		limit int32
	}{{complete, successfulLimit}, {failed, failedLimit}} {
		excess := len(set.jobs) - int(max(set.limit, 0))
		if excess <= 0 {
			continue
		}
		slices.SortFunc(set.jobs, byFinish)
		out = append(out, set.jobs[:excess]...)
	}
	return out
}

func byFinish(a, b *batchv1.Job) int {
	if c := finishedAt(a).Compare(finishedAt(b)); c != 0 {
		return c
	}
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

// historyLimits returns spec's successfulJobsHistoryLimit and
// failedJobsHistoryLimit, 100 each when unset.
func historyLimits(spec *v1alpha1.ScaledJobSpec) (successful, failed int32) {
	return ptr.Deref(spec.SuccessfulJobsHistoryLimit, v1alpha1.DefaultJobsHistoryLimit),
		ptr.Deref(spec.FailedJobsHistoryLimit, v1alpha1.DefaultJobsHistoryLimit)
}

// podStarted reports whether pod no longer counts as pending, as KEDA
// decides it: without conditions, when it is Running or Succeeded; with
// pendingPodConditions, when every one of them is True on it.
func podStarted(pod *corev1.Pod, conditions []string) bool {
	if len(conditions) == 0 {
		return pod.Status.Phase == corev1.PodRunning || pod.Status.Phase == corev1.PodSucceeded
	}
	for _, want := range conditions {
		if !slices.ContainsFunc(pod.Status.Conditions, func(c corev1.PodCondition) bool {
			return string(c.Type) == want && c.Status == corev1.ConditionTrue
		}) {
			return false
		}
	}
	return true
}

// RolloutStrategy returns the rollout strategy in effect for spec:
// gradual or immediate (the default). spec.rollout.strategy wins over the
// deprecated spec.rolloutStrategy when both are set (ebb's webhook warns
// about the disagreement).
func RolloutStrategy(spec *v1alpha1.ScaledJobSpec) string {
	s := ""
	if r := spec.Rollout; r != nil && r.Strategy != "" {
		s = r.Strategy
	} else {
		//lint:ignore SA1019 the deprecated field still applies when rollout.strategy is unset
		s = spec.RolloutStrategy
	}
	if s == v1alpha1.RolloutStrategyGradual {
		return v1alpha1.RolloutStrategyGradual
	}
	return v1alpha1.RolloutStrategyImmediate
}

// rolloutPropagation returns the deletion propagation of an immediate
// rollout: foreground when spec.rollout.propagationPolicy says so, else
// background.
func rolloutPropagation(spec *v1alpha1.ScaledJobSpec) metav1.DeletionPropagation {
	if r := spec.Rollout; r != nil && r.PropagationPolicy == v1alpha1.RolloutPropagationForeground {
		return metav1.DeletePropagationForeground
	}
	return metav1.DeletePropagationBackground
}
