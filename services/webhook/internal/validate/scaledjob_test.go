package validate

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
)

func newSJ(mods ...func(*v1alpha1.ScaledJob)) *v1alpha1.ScaledJob {
	sj := &v1alpha1.ScaledJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledJob"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "worker"},
		Spec: v1alpha1.ScaledJobSpec{
			JobTargetRef: &batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Containers:    []corev1.Container{{Name: "work", Image: "worker"}},
				RestartPolicy: corev1.RestartPolicyNever,
			}}},
			Triggers: []v1alpha1.ScaleTrigger{redisTrigger("")},
		},
	}
	for _, m := range mods {
		m(sj)
	}
	return sj
}

func TestScaledJob(t *testing.T) {
	tests := map[string]struct {
		sj      *v1alpha1.ScaledJob
		cluster cluster
		want    outcome
	}{
		"valid": {
			sj:   newSJ(),
			want: outcome{noWarnings: true},
		},
		"name longer than 63": {
			sj:   newSJ(func(sj *v1alpha1.ScaledJob) { sj.Name = strings.Repeat("w", 64) }),
			want: outcome{denied: []string{"metadata.name: \"" + strings.Repeat("w", 64) + "\" is 64 characters long; a ScaledJob's name is the value of the label scaledjob.keda.sh/name"}},
		},
		"no jobTargetRef": {
			sj:   newSJ(func(sj *v1alpha1.ScaledJob) { sj.Spec.JobTargetRef = nil }),
			want: outcome{denied: []string{"spec.jobTargetRef: the spec of the Jobs to run is required"}},
		},
		"a Job template without containers": {
			sj:   newSJ(func(sj *v1alpha1.ScaledJob) { sj.Spec.JobTargetRef.Template.Spec.Containers = nil }),
			want: outcome{denied: []string{"spec.jobTargetRef.template.spec.containers: the Jobs need at least one container"}},
		},
		"no triggers": {
			sj:   newSJ(func(sj *v1alpha1.ScaledJob) { sj.Spec.Triggers = nil }),
			want: outcome{denied: []string{"spec.triggers: at least one trigger is required"}},
		},
		"duplicate trigger names": {
			sj: newSJ(func(sj *v1alpha1.ScaledJob) {
				sj.Spec.Triggers = []v1alpha1.ScaleTrigger{redisTrigger("q"), redisTrigger("q")}
			}),
			want: outcome{denied: []string{`spec.triggers[1].name: trigger name "q" is already used by spec.triggers[0]`}},
		},
		"useCachedMetrics on cron": {
			sj: newSJ(func(sj *v1alpha1.ScaledJob) {
				t := cronTrigger("")
				t.UseCachedMetrics = true
				sj.Spec.Triggers = []v1alpha1.ScaleTrigger{t}
			}),
			want: outcome{denied: []string{"spec.triggers[0].useCachedMetrics: useCachedMetrics is not supported for cron triggers"}},
		},
		"unknown trigger type": {
			sj:   newSJ(func(sj *v1alpha1.ScaledJob) { sj.Spec.Triggers = []v1alpha1.ScaleTrigger{{Type: "no-such-type"}} }),
			want: outcome{denied: []string{`spec.triggers[0].type: trigger 0 (no-such-type): unsupported trigger type "no-such-type"`}},
		},
		"bad trigger metadata": {
			sj: newSJ(func(sj *v1alpha1.ScaledJob) {
				sj.Spec.Triggers = []v1alpha1.ScaleTrigger{{Type: "redis", Metadata: map[string]string{"listName": "q"}}}
			}),
			want: outcome{denied: []string{"spec.triggers[0].metadata: trigger 0 (redis): address (host:port), or host and port, is required"}},
		},
		"trigger values from a TriggerAuthentication": {
			sj: newSJ(func(sj *v1alpha1.ScaledJob) {
				sj.Spec.Triggers = []v1alpha1.ScaleTrigger{{Type: "redis", Metadata: map[string]string{"listName": "q"},
					AuthenticationRef: &v1alpha1.AuthenticationRef{Name: "r"}}}
			}),
			cluster: cluster{keda: []runtime.Object{triggerAuth("r", "address", "password")}},
			want:    outcome{noWarnings: true},
		},
		"min greater than max": {
			sj: newSJ(func(sj *v1alpha1.ScaledJob) {
				sj.Spec.MinReplicaCount = ptr(int32(5))
				sj.Spec.MaxReplicaCount = ptr(int32(2))
			}),
			want: outcome{warnings: []string{"spec.minReplicaCount: 5 is greater than maxReplicaCount 2"}},
		},
		"running job percentage that is no number": {
			sj: newSJ(func(sj *v1alpha1.ScaledJob) {
				sj.Spec.ScalingStrategy = &v1alpha1.ScalingStrategy{Strategy: "custom", CustomScalingRunningJobPercentage: "half"}
			}),
			want: outcome{denied: []string{`spec.scalingStrategy.customScalingRunningJobPercentage: "half" is not a number`}},
		},
		"deprecated rolloutStrategy": {
			sj: newSJ(func(sj *v1alpha1.ScaledJob) {
				//lint:ignore SA1019 the deprecated field is what is tested
				sj.Spec.RolloutStrategy = "gradual"
			}),
			want: outcome{warnings: []string{"spec.rolloutStrategy: is deprecated: use spec.rollout.strategy"}},
		},
		"envSourceContainerName not in the template": {
			sj:   newSJ(func(sj *v1alpha1.ScaledJob) { sj.Spec.EnvSourceContainerName = "main" }),
			want: outcome{warnings: []string{`spec.envSourceContainerName: the Job template has no container "main"`}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			reader, _ := newReader(t, tc.cluster)
			warnings, err := validate(t, NewScaledJob(reader), request(t, "scaledjobs", tc.sj, nil))
			check(t, tc.want, warnings, err)
		})
	}
}

func TestScaledJobUpdate(t *testing.T) {
	broken := newSJ(func(sj *v1alpha1.ScaledJob) { sj.Spec.Triggers = []v1alpha1.ScaleTrigger{{Type: "no-such-type"}} })
	tests := map[string]struct {
		old, cur *v1alpha1.ScaledJob
		want     outcome
	}{
		"finalizer removed": {
			old: newSJ(func(sj *v1alpha1.ScaledJob) {
				sj.Spec.Triggers = broken.Spec.Triggers
				sj.Finalizers = []string{v1alpha1.Finalizer}
			}),
			cur:  broken,
			want: outcome{noWarnings: true},
		},
		"spec changed": {
			old:  newSJ(),
			cur:  broken,
			want: outcome{denied: []string{"unsupported trigger type"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			reader, _ := newReader(t, cluster{})
			warnings, err := validate(t, NewScaledJob(reader), request(t, "scaledjobs", tc.cur, tc.old))
			check(t, tc.want, warnings, err)
		})
	}
}
