package scaledjob

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
)

//lint:file-ignore SA1019 the tests set the deprecated spec.rolloutStrategy on purpose

func TestNewJob(t *testing.T) {
	sj := &v1alpha1.ScaledJob{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "work", Name: "render", UID: "sj-uid", Generation: 4,
			Labels: map[string]string{"team": "video", "secret-tier": "gold", v1alpha1.ScaledJobNameLabel: "spoofed"},
			Annotations: map[string]string{
				"note": "hello", lastAppliedAnnotation: "{...}",
				v1alpha1.JobExcludedLabelsAnnotation: "secret-tier, other",
			},
		},
		Spec: v1alpha1.ScaledJobSpec{JobTargetRef: &batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](2),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "render"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "render:1"}}},
			},
		}},
	}
	job := newJob(sj, "v1.2.3+dirty")

	want := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "render-",
			Namespace:    "work",
			Labels: map[string]string{
				"app.kubernetes.io/name":       "render",
				"app.kubernetes.io/part-of":    "render",
				"app.kubernetes.io/managed-by": "ebb-operator",
				"app.kubernetes.io/version":    "v1.2.3-dirty",
				"team":                         "video",
				v1alpha1.ScaledJobNameLabel:    "render",
			},
			Annotations: map[string]string{
				"note":                                 "hello",
				v1alpha1.JobExcludedLabelsAnnotation:   "secret-tier, other",
				v1alpha1.ScaledJobGenerationAnnotation: "4",
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "keda.sh/v1alpha1", Kind: "ScaledJob", Name: "render", UID: "sj-uid",
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](2),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "render", v1alpha1.ScaledJobNameLabel: "render"}},
				Spec: corev1.PodSpec{
					Containers:    []corev1.Container{{Name: "main", Image: "render:1"}},
					RestartPolicy: corev1.RestartPolicyOnFailure,
				},
			},
		},
	}
	if diff := cmp.Diff(want, job); diff != "" {
		t.Errorf("newJob() (-want +got):\n%s", diff)
	}
	// The template of the ScaledJob is not touched.
	if _, ok := sj.Spec.JobTargetRef.Template.Labels[v1alpha1.ScaledJobNameLabel]; ok || sj.Spec.JobTargetRef.Template.Spec.RestartPolicy != "" {
		t.Error("newJob modified the ScaledJob's template")
	}

	// A restartPolicy the template sets is kept.
	sj.Spec.JobTargetRef.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	if got := newJob(sj, "").Spec.Template.Spec.RestartPolicy; got != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy = %q, want Never", got)
	}
	if _, ok := newJob(sj, "").Labels["app.kubernetes.io/version"]; ok {
		t.Error("an empty version gave a version label")
	}
}

func TestLabelValue(t *testing.T) {
	for in, want := range map[string]string{
		"v0.0.0-dev":                          "v0.0.0-dev",
		"v1.2.3+dirty":                        "v1.2.3-dirty",
		"-x-":                                 "x",
		"+++":                                 "",
		"a/b c":                               "a-b-c",
		"v" + strings.Repeat("1234567890", 7): "v" + strings.Repeat("1234567890", 6) + "12",
	} {
		if got := labelValue(in); got != want {
			t.Errorf("labelValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func job(name string, mutate ...func(*batchv1.Job)) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "work", Name: name, UID: types.UID(name + "-uid"),
		CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}}
	for _, m := range mutate {
		m(j)
	}
	return j
}

func at(minute int) time.Time { return time.Date(2026, 1, 1, 10, minute, 0, 0, time.UTC) }

func completed(minute int) func(*batchv1.Job) {
	return func(j *batchv1.Job) {
		t := metav1.NewTime(at(minute))
		j.Status.CompletionTime = &t
		j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: t})
	}
}

// failed marks a Job Failed at minute, without completionTime, as the
// job controller leaves a failed Job.
func failed(minute int) func(*batchv1.Job) {
	return func(j *batchv1.Job) {
		j.Status.Conditions = append(j.Status.Conditions,
			batchv1.JobCondition{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(at(minute - 1))},
			batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(at(minute))})
	}
}

func deleting(j *batchv1.Job) { j.DeletionTimestamp = ptr.To(metav1.NewTime(at(59))) }

func TestHistoryToDelete(t *testing.T) {
	for name, tc := range map[string]struct {
		jobs               []*batchv1.Job
		successful, failed int32
		want               []string
	}{
		"within the limits": {
			jobs:       []*batchv1.Job{job("a", completed(1)), job("b", failed(2)), job("run")},
			successful: 1, failed: 1,
		},
		"oldest completed beyond the limit": {
			jobs:       []*batchv1.Job{job("c1", completed(37)), job("c2", completed(36)), job("c3", completed(38))},
			successful: 2, failed: 2,
			want: []string{"c2"},
		},
		"completed and failed apart, each oldest first": {
			jobs: []*batchv1.Job{
				job("s1", completed(37)), job("s2", completed(36)), job("s3", completed(35)),
				job("f1", failed(37)), job("f2", failed(36)), job("f3", failed(38)),
			},
			successful: 1, failed: 2,
			want: []string{"s3", "s2", "f2"},
		},
		"running Jobs are never history": {
			jobs:       []*batchv1.Job{job("run1"), job("run2"), job("done", completed(1))},
			successful: 0, failed: 0,
			want: []string{"done"},
		},
		"limit zero deletes every finished Job": {
			jobs:       []*batchv1.Job{job("s", completed(1)), job("f", failed(2))},
			successful: 0, failed: 0,
			want: []string{"s", "f"},
		},
		"Jobs being deleted neither count nor are deleted again": {
			jobs:       []*batchv1.Job{job("old", completed(1), deleting), job("mid", completed(2)), job("new", completed(3))},
			successful: 1, failed: 1,
			want: []string{"mid"},
		},
		"ties broken by creation then name": {
			jobs: []*batchv1.Job{
				job("b", completed(5)), job("a", completed(5)),
				job("z", completed(5), func(j *batchv1.Job) {
					j.CreationTimestamp = metav1.NewTime(time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC))
				}),
			},
			successful: 1, failed: 1,
			want: []string{"z", "a"},
		},
		"a failed Job that only reached FailureTarget is running": {
			jobs: []*batchv1.Job{job("f", func(j *batchv1.Job) {
				j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue}}
			})},
			successful: 0, failed: 0,
		},
	} {
		t.Run(name, func(t *testing.T) {
			var got []string
			for _, j := range historyToDelete(tc.jobs, tc.successful, tc.failed) {
				got = append(got, j.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("historyToDelete() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHistoryLimitsDefault(t *testing.T) {
	s, f := historyLimits(&v1alpha1.ScaledJobSpec{})
	if s != 100 || f != 100 {
		t.Errorf("historyLimits() = %d, %d; want 100, 100", s, f)
	}
	s, f = historyLimits(&v1alpha1.ScaledJobSpec{SuccessfulJobsHistoryLimit: ptr.To[int32](0), FailedJobsHistoryLimit: ptr.To[int32](3)})
	if s != 0 || f != 3 {
		t.Errorf("historyLimits() = %d, %d; want 0, 3", s, f)
	}
}

func TestPodStarted(t *testing.T) {
	cond := func(t corev1.PodConditionType, s corev1.ConditionStatus) corev1.PodCondition {
		return corev1.PodCondition{Type: t, Status: s}
	}
	for name, tc := range map[string]struct {
		status     corev1.PodStatus
		conditions []string
		want       bool
	}{
		"succeeded":                      {status: corev1.PodStatus{Phase: corev1.PodSucceeded}, want: true},
		"running":                        {status: corev1.PodStatus{Phase: corev1.PodRunning}, want: true},
		"failed":                         {status: corev1.PodStatus{Phase: corev1.PodFailed}},
		"pending":                        {status: corev1.PodStatus{Phase: corev1.PodPending}},
		"unknown":                        {status: corev1.PodStatus{Phase: corev1.PodUnknown}},
		"empty condition list: phase":    {status: corev1.PodStatus{Phase: corev1.PodRunning}, conditions: []string{}, want: true},
		"conditions: none":               {status: corev1.PodStatus{Phase: corev1.PodRunning}, conditions: []string{"Ready", "PodScheduled"}},
		"conditions: one of two":         {status: corev1.PodStatus{Conditions: []corev1.PodCondition{cond(corev1.PodReady, corev1.ConditionTrue)}}, conditions: []string{"Ready", "PodScheduled"}},
		"conditions: all True":           {status: corev1.PodStatus{Conditions: []corev1.PodCondition{cond(corev1.PodReady, corev1.ConditionTrue), cond(corev1.PodScheduled, corev1.ConditionTrue)}}, conditions: []string{"Ready", "PodScheduled"}, want: true},
		"conditions: one False":          {status: corev1.PodStatus{Conditions: []corev1.PodCondition{cond(corev1.PodReady, corev1.ConditionFalse), cond(corev1.PodScheduled, corev1.ConditionTrue)}}, conditions: []string{"Ready", "PodScheduled"}},
		"conditions: a custom condition": {status: corev1.PodStatus{Conditions: []corev1.PodCondition{cond("example.com/Warm", corev1.ConditionTrue)}}, conditions: []string{"example.com/Warm"}, want: true},
	} {
		t.Run(name, func(t *testing.T) {
			if got := podStarted(&corev1.Pod{Status: tc.status}, tc.conditions); got != tc.want {
				t.Errorf("podStarted() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRolloutStrategy(t *testing.T) {
	for name, tc := range map[string]struct {
		spec            v1alpha1.ScaledJobSpec
		want            string
		wantPropagation metav1.DeletionPropagation
	}{
		"default":                    {want: "immediate", wantPropagation: metav1.DeletePropagationBackground},
		"empty rollout":              {spec: v1alpha1.ScaledJobSpec{Rollout: &v1alpha1.Rollout{}}, want: "immediate", wantPropagation: metav1.DeletePropagationBackground},
		"gradual":                    {spec: v1alpha1.ScaledJobSpec{Rollout: &v1alpha1.Rollout{Strategy: "gradual"}}, want: "gradual", wantPropagation: metav1.DeletePropagationBackground},
		"deprecated gradual":         {spec: v1alpha1.ScaledJobSpec{RolloutStrategy: "gradual"}, want: "gradual", wantPropagation: metav1.DeletePropagationBackground},
		"rollout.strategy wins":      {spec: v1alpha1.ScaledJobSpec{RolloutStrategy: "gradual", Rollout: &v1alpha1.Rollout{Strategy: "immediate"}}, want: "immediate", wantPropagation: metav1.DeletePropagationBackground},
		"deprecated under empty one": {spec: v1alpha1.ScaledJobSpec{RolloutStrategy: "gradual", Rollout: &v1alpha1.Rollout{}}, want: "gradual", wantPropagation: metav1.DeletePropagationBackground},
		"KEDA's 'default' spelling":  {spec: v1alpha1.ScaledJobSpec{Rollout: &v1alpha1.Rollout{Strategy: "default"}}, want: "immediate", wantPropagation: metav1.DeletePropagationBackground},
		"foreground":                 {spec: v1alpha1.ScaledJobSpec{Rollout: &v1alpha1.Rollout{PropagationPolicy: "foreground"}}, want: "immediate", wantPropagation: metav1.DeletePropagationForeground},
	} {
		t.Run(name, func(t *testing.T) {
			if got := RolloutStrategy(&tc.spec); got != tc.want {
				t.Errorf("RolloutStrategy() = %q, want %q", got, tc.want)
			}
			if got := rolloutPropagation(&tc.spec); got != tc.wantPropagation {
				t.Errorf("rolloutPropagation() = %q, want %q", got, tc.wantPropagation)
			}
		})
	}
}

func TestSlimObject(t *testing.T) {
	full := job("j", completed(3), func(j *batchv1.Job) {
		j.Labels = map[string]string{v1alpha1.ScaledJobNameLabel: "render", "team": "video"}
		j.Annotations = map[string]string{v1alpha1.ScaledJobGenerationAnnotation: "2", "note": "big"}
		j.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "x"}}
		j.Spec.Template.Spec.Containers = []corev1.Container{{Name: "main"}}
		j.Status.Active = 1
	})
	got, err := SlimObject(full)
	if err != nil {
		t.Fatal(err)
	}
	slim := got.(*batchv1.Job)
	if slim.Labels[v1alpha1.ScaledJobNameLabel] != "render" || len(slim.Labels) != 1 ||
		slim.Annotations[v1alpha1.ScaledJobGenerationAnnotation] != "2" || len(slim.Annotations) != 1 ||
		slim.ManagedFields != nil || len(slim.Spec.Template.Spec.Containers) != 0 ||
		finished(slim) != batchv1.JobComplete || slim.Status.CompletionTime == nil || slim.Status.Active != 1 || slim.UID != full.UID {
		t.Errorf("SlimObject(Job) = %+v", slim)
	}

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "work", Labels: map[string]string{"a": "b"},
			OwnerReferences: []metav1.OwnerReference{{UID: "j-uid", Controller: ptr.To(true)}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "main"}}},
	}
	got, err = SlimObject(pod)
	if err != nil {
		t.Fatal(err)
	}
	sp := got.(*corev1.Pod)
	if sp.Status.Phase != corev1.PodRunning || len(sp.Status.Conditions) != 1 || sp.Status.ContainerStatuses != nil ||
		len(sp.Spec.Containers) != 0 || len(sp.OwnerReferences) != 1 {
		t.Errorf("SlimObject(Pod) = %+v", sp)
	}
	if other, _ := SlimObject("x"); other != "x" {
		t.Errorf("SlimObject(other) = %v", other)
	}
}
