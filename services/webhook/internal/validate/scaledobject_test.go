package validate

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/services/webhook/internal/admission"
)

func cronTrigger(name string) v1alpha1.ScaleTrigger {
	return v1alpha1.ScaleTrigger{Type: "cron", Name: name, Metadata: map[string]string{
		"timezone": "Etc/UTC", "start": "0 8 * * *", "end": "0 18 * * *", "desiredReplicas": "3",
	}}
}

func redisTrigger(name string) v1alpha1.ScaleTrigger {
	return v1alpha1.ScaleTrigger{Type: "redis", Name: name, Metadata: map[string]string{
		"address": "redis:6379", "listName": "jobs",
	}}
}

func resourceTrigger(typ string) v1alpha1.ScaleTrigger {
	return v1alpha1.ScaleTrigger{Type: typ, MetricType: autoscalingv2.UtilizationMetricType, Metadata: map[string]string{"value": "60"}}
}

func postgresTrigger(auth string, md map[string]string) v1alpha1.ScaleTrigger {
	t := v1alpha1.ScaleTrigger{Type: "postgresql", Metadata: map[string]string{"query": "SELECT 1", "targetQueryValue": "5"}}
	for k, v := range md {
		t.Metadata[k] = v
	}
	if auth != "" {
		t.AuthenticationRef = &v1alpha1.AuthenticationRef{Name: auth}
	}
	return t
}

// newSO returns a ScaledObject "web" on Deployment "web" with one cron
// trigger, changed by mods.
func newSO(mods ...func(*v1alpha1.ScaledObject)) *v1alpha1.ScaledObject {
	so := &v1alpha1.ScaledObject{
		TypeMeta:   metav1.TypeMeta{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledObject"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: v1alpha1.ScaledObjectSpec{
			ScaleTargetRef: &v1alpha1.ScaleTarget{Name: "web"},
			Triggers:       []v1alpha1.ScaleTrigger{cronTrigger("")},
		},
	}
	for _, m := range mods {
		m(so)
	}
	return so
}

func withTriggers(ts ...v1alpha1.ScaleTrigger) func(*v1alpha1.ScaledObject) {
	return func(so *v1alpha1.ScaledObject) { so.Spec.Triggers = ts }
}

func withMin(n int32) func(*v1alpha1.ScaledObject) {
	return func(so *v1alpha1.ScaledObject) { so.Spec.MinReplicaCount = &n }
}

func withName(name string) func(*v1alpha1.ScaledObject) {
	return func(so *v1alpha1.ScaledObject) { so.Name = name }
}

func withTarget(apiVersion, kind, name string) func(*v1alpha1.ScaledObject) {
	return func(so *v1alpha1.ScaledObject) {
		so.Spec.ScaleTargetRef = &v1alpha1.ScaleTarget{APIVersion: apiVersion, Kind: kind, Name: name}
	}
}

func withHPAName(name string) func(*v1alpha1.ScaledObject) {
	return func(so *v1alpha1.ScaledObject) {
		if so.Spec.Advanced == nil {
			so.Spec.Advanced = &v1alpha1.AdvancedConfig{}
		}
		so.Spec.Advanced.HorizontalPodAutoscalerConfig = &v1alpha1.HorizontalPodAutoscalerConfig{Name: name}
	}
}

func withModifiers(sm v1alpha1.ScalingModifiers) func(*v1alpha1.ScaledObject) {
	return func(so *v1alpha1.ScaledObject) {
		if so.Spec.Advanced == nil {
			so.Spec.Advanced = &v1alpha1.AdvancedConfig{}
		}
		so.Spec.Advanced.ScalingModifiers = &sm
	}
}

func withAnnotation(k, v string) func(*v1alpha1.ScaledObject) {
	return func(so *v1alpha1.ScaledObject) {
		if so.Annotations == nil {
			so.Annotations = map[string]string{}
		}
		so.Annotations[k] = v
	}
}

func withFallback(fb v1alpha1.Fallback) func(*v1alpha1.ScaledObject) {
	return func(so *v1alpha1.ScaledObject) { so.Spec.Fallback = &fb }
}

// otherSO is a ScaledObject named name on Deployment target.
func otherSO(name, target string, mods ...func(*v1alpha1.ScaledObject)) *v1alpha1.ScaledObject {
	return newSO(append([]func(*v1alpha1.ScaledObject){withName(name), withTarget("", "", target)}, mods...)...)
}

func annotated(h *autoscalingv2.HorizontalPodAutoscaler, k, v string) *autoscalingv2.HorizontalPodAutoscaler {
	h.Annotations = map[string]string{k: v}
	return h
}

// kept is h released by its ScaledObject: no ownerReference, its labels
// left as they were.
func kept(h *autoscalingv2.HorizontalPodAutoscaler) *autoscalingv2.HorizontalPodAutoscaler {
	h.OwnerReferences = nil
	return h
}

func TestScaledObjectCreate(t *testing.T) {
	web := deployment("web")
	webWithCPU := deployment("web", container("app", cpu("100m"), nil))
	long := strings.Repeat("a", 64)

	tests := map[string]struct {
		so      *v1alpha1.ScaledObject
		cluster cluster
		want    outcome
	}{
		// The seed: a Deployment created just before, read directly.
		"valid": {
			so:      newSO(),
			cluster: cluster{dyn: []runtime.Object{web}},
			want:    outcome{noWarnings: true},
		},

		// Names.
		"name longer than 63": {
			so:   newSO(withName(long)),
			want: outcome{denied: []string{"metadata.name: \"" + long + "\" is 64 characters long"}},
		},
		"derived HPA name longer than 63": {
			so:   newSO(withName(strings.Repeat("b", 55))),
			want: outcome{denied: []string{"the HPA name derived from it, \"keda-hpa-" + strings.Repeat("b", 55) + "\", is 64 characters long"}},
		},
		"custom HPA name longer than 63": {
			so:   newSO(withHPAName(long)),
			want: outcome{denied: []string{"spec.advanced.horizontalPodAutoscalerConfig.name: \"" + long + "\" is 64 characters long"}},
		},
		"custom HPA name that is no DNS name": {
			so:   newSO(withHPAName("Web_HPA")),
			want: outcome{denied: []string{"\"Web_HPA\" is not a valid HPA name"}},
		},
		"long name with a short custom HPA name": {
			so:      newSO(withName(strings.Repeat("c", 60)), withHPAName("short")),
			cluster: cluster{dyn: []runtime.Object{web}},
			want:    outcome{},
		},

		// The target reference.
		"no target name": {
			so:   newSO(withTarget("", "", "")),
			want: outcome{denied: []string{"spec.scaleTargetRef.name: the name of the workload to scale is required"}},
		},
		"target apiVersion that does not parse": {
			so:   newSO(withTarget("a/b/c", "Deployment", "web")),
			want: outcome{denied: []string{"spec.scaleTargetRef.apiVersion: \"a/b/c\" is not an API version"}},
		},

		// Replica counts.
		"min greater than max": {
			so:   newSO(withMin(5), func(so *v1alpha1.ScaledObject) { so.Spec.MaxReplicaCount = ptr(int32(3)) }),
			want: outcome{denied: []string{"spec.minReplicaCount: 5 is greater than maxReplicaCount 3"}},
		},
		"min greater than the default max": {
			so:   newSO(withMin(101)),
			want: outcome{denied: []string{"spec.minReplicaCount: 101 is greater than maxReplicaCount 100"}},
		},
		"idle 0 with min unset": {
			so:   newSO(func(so *v1alpha1.ScaledObject) { so.Spec.IdleReplicaCount = ptr(int32(0)) }),
			want: outcome{denied: []string{"spec.idleReplicaCount: 0 must be less than minReplicaCount (not set, so 0)"}},
		},
		"idle 0 with min 0 counts as 1": {
			so:      newSO(withMin(0), func(so *v1alpha1.ScaledObject) { so.Spec.IdleReplicaCount = ptr(int32(0)) }),
			cluster: cluster{dyn: []runtime.Object{web}},
			want:    outcome{},
		},
		"idle 1 with min 0": {
			so:   newSO(withMin(0), func(so *v1alpha1.ScaledObject) { so.Spec.IdleReplicaCount = ptr(int32(1)) }),
			want: outcome{denied: []string{"spec.idleReplicaCount: 1 must be less than minReplicaCount (0, which counts as 1 here)"}},
		},
		"idle below min": {
			so:      newSO(withMin(2), func(so *v1alpha1.ScaledObject) { so.Spec.IdleReplicaCount = ptr(int32(1)) }),
			cluster: cluster{dyn: []runtime.Object{web}},
			want:    outcome{},
		},

		// Triggers.
		"no triggers": {
			so:   newSO(withTriggers()),
			want: outcome{denied: []string{"spec.triggers: at least one trigger is required"}},
		},
		"duplicate trigger names": {
			so:   newSO(withTriggers(cronTrigger("a"), redisTrigger("a"))),
			want: outcome{denied: []string{"spec.triggers[1].name: trigger name \"a\" is already used by spec.triggers[0]"}},
		},
		"useCachedMetrics on cron": {
			so:   newSO(withTriggers(func() v1alpha1.ScaleTrigger { t := cronTrigger(""); t.UseCachedMetrics = true; return t }())),
			want: outcome{denied: []string{"spec.triggers[0].useCachedMetrics: useCachedMetrics is not supported for cron triggers"}},
		},
		"useCachedMetrics on cpu": {
			so:   newSO(withMin(1), withTriggers(func() v1alpha1.ScaleTrigger { t := resourceTrigger("cpu"); t.UseCachedMetrics = true; return t }())),
			want: outcome{denied: []string{"useCachedMetrics is not supported for cpu triggers"}},
		},
		"useCachedMetrics on redis": {
			so:      newSO(withTriggers(func() v1alpha1.ScaleTrigger { t := redisTrigger(""); t.UseCachedMetrics = true; return t }())),
			cluster: cluster{dyn: []runtime.Object{web}},
			want:    outcome{noWarnings: true},
		},
		"unknown trigger type": {
			so:   newSO(withTriggers(v1alpha1.ScaleTrigger{Type: "aws-sqs-queue", Metadata: map[string]string{"queueURL": "q"}})),
			want: outcome{denied: []string{"spec.triggers[0].type: trigger 0 (aws-sqs-queue): unsupported trigger type \"aws-sqs-queue\"; ebb supports "}},
		},
		"bad metadata is denied with the parser's message": {
			so:   newSO(withTriggers(v1alpha1.ScaleTrigger{Type: "redis", Metadata: map[string]string{"address": "redis:6379"}})),
			want: outcome{denied: []string{"spec.triggers[0].metadata: trigger 0 (redis): listName is required"}},
		},
		"every bad trigger is reported": {
			so: newSO(withTriggers(
				v1alpha1.ScaleTrigger{Type: "redis", Metadata: map[string]string{"address": "redis:6379", "listName": "q", "listLength": "many"}},
				v1alpha1.ScaleTrigger{Type: "cron", Metadata: map[string]string{"timezone": "Etc/UTC", "start": "0 8 * * *", "end": "0 9 * * *"}},
			)),
			want: outcome{denied: []string{
				"spec.triggers[0].metadata: trigger 0 (redis): listLength \"many\" is not an integer",
				"spec.triggers[1].metadata: trigger 1 (cron): desiredReplicas is required",
			}},
		},
		"parser warnings become admission warnings": {
			so: newSO(withTriggers(func() v1alpha1.ScaleTrigger {
				t := redisTrigger("")
				t.Metadata["listname"] = "typo"
				return t
			}())),
			cluster: cluster{dyn: []runtime.Object{web}},
			want:    outcome{warnings: []string{`trigger 0 (redis): unknown metadata key "listname" is ignored`}},
		},
		"Utilization on an external trigger": {
			so: newSO(withTriggers(func() v1alpha1.ScaleTrigger {
				t := redisTrigger("")
				t.MetricType = autoscalingv2.UtilizationMetricType
				return t
			}())),
			want: outcome{denied: []string{"spec.triggers[0].metricType: trigger 0 (redis): metricType Utilization is supported only by cpu and memory triggers"}},
		},
		"cpu trigger without metricType": {
			so:   newSO(withMin(1), withTriggers(v1alpha1.ScaleTrigger{Type: "cpu", Metadata: map[string]string{"value": "50"}})),
			want: outcome{denied: []string{"spec.triggers[0].metricType: trigger 0 (cpu): metricType is required for cpu triggers"}},
		},

		// cpu and memory.
		"cpu only with min unset": {
			so:   newSO(withTriggers(resourceTrigger("cpu"))),
			want: outcome{denied: []string{"spec.minReplicaCount: must be at least 1 when every trigger is cpu or memory"}},
		},
		"cpu and memory only with min 0": {
			so:   newSO(withMin(0), withTriggers(resourceTrigger("cpu"), resourceTrigger("memory"))),
			want: outcome{denied: []string{"spec.minReplicaCount: must be at least 1"}},
		},
		"cpu with a cron trigger may scale to zero": {
			so:      newSO(withTriggers(resourceTrigger("cpu"), cronTrigger(""))),
			cluster: cluster{dyn: []runtime.Object{webWithCPU}},
			want:    outcome{noWarnings: true},
		},
		"cpu with requests": {
			so:      newSO(withMin(1), withTriggers(resourceTrigger("cpu"))),
			cluster: cluster{dyn: []runtime.Object{webWithCPU}},
			want:    outcome{noWarnings: true},
		},
		"cpu with a limit only": {
			so:      newSO(withMin(1), withTriggers(resourceTrigger("cpu"))),
			cluster: cluster{dyn: []runtime.Object{deployment("web", container("app", nil, cpu("1")))}},
			want:    outcome{},
		},
		"cpu without requests": {
			so:      newSO(withMin(1), withTriggers(resourceTrigger("cpu"))),
			cluster: cluster{dyn: []runtime.Object{deployment("web", container("app", cpu("100m"), nil), container("sidecar", mem("64Mi"), nil))}},
			want:    outcome{denied: []string{`spec.triggers[0]: container "sidecar" of Deployment team-a/web sets no cpu request or limit, and no LimitRange of namespace team-a gives containers a default`}},
		},
		"cpu with a zero request": {
			so:      newSO(withMin(1), withTriggers(resourceTrigger("cpu"))),
			cluster: cluster{dyn: []runtime.Object{deployment("web", container("app", cpu("0"), nil))}},
			want:    outcome{denied: []string{`container "app" of Deployment team-a/web sets no cpu request or limit`}},
		},
		"cpu without requests but a LimitRange default": {
			so: newSO(withMin(1), withTriggers(resourceTrigger("cpu"))),
			cluster: cluster{
				dyn:  []runtime.Object{web},
				kube: []runtime.Object{limitRange(corev1.LimitTypeContainer, nil, cpu("200m"))},
			},
			want: outcome{},
		},
		"cpu without requests and a Pod LimitRange only": {
			so: newSO(withMin(1), withTriggers(resourceTrigger("cpu"))),
			cluster: cluster{
				dyn:  []runtime.Object{web},
				kube: []runtime.Object{limitRange(corev1.LimitTypePod, cpu("1"), nil)},
			},
			want: outcome{denied: []string{"sets no cpu request or limit"}},
		},
		"memory checks memory": {
			so:      newSO(withMin(1), withTriggers(resourceTrigger("memory"))),
			cluster: cluster{dyn: []runtime.Object{webWithCPU}},
			want:    outcome{denied: []string{`container "app" of Deployment team-a/web sets no memory request or limit`}},
		},
		"memory on one container": {
			so: newSO(withMin(1), withTriggers(func() v1alpha1.ScaleTrigger {
				t := resourceTrigger("memory")
				t.Metadata["containerName"] = "app"
				return t
			}())),
			cluster: cluster{dyn: []runtime.Object{deployment("web", container("app", mem("1Gi"), nil), container("sidecar", nil, nil))}},
			want:    outcome{noWarnings: true},
		},
		"memory on a container that does not exist": {
			so: newSO(withMin(1), withTriggers(func() v1alpha1.ScaleTrigger {
				t := resourceTrigger("memory")
				t.Metadata["containerName"] = "nope"
				return t
			}())),
			cluster: cluster{dyn: []runtime.Object{deployment("web", container("app", mem("1Gi"), nil))}},
			want:    outcome{warnings: []string{`spec.triggers[0].metadata.containerName: Deployment team-a/web has no container "nope"`}},
		},
		"cpu on a StatefulSet": {
			so:      newSO(withMin(1), withTarget("apps/v1", "StatefulSet", "db"), withTriggers(resourceTrigger("cpu"))),
			cluster: cluster{dyn: []runtime.Object{statefulSet("db")}},
			want:    outcome{noWarnings: true},
		},
		"cpu on a custom resource without a pod template": {
			so:      newSO(withMin(1), withTarget("example.com/v1", "Widget", "w1"), withTriggers(resourceTrigger("cpu"))),
			cluster: cluster{dyn: []runtime.Object{widget("w1")}},
			want:    outcome{warnings: []string{"Widget.example.com team-a/w1 has no spec.template"}},
		},

		// Target existence: never a false "not found".
		"cron on a missing target is admitted with a warning": {
			so:   newSO(),
			want: outcome{warnings: []string{"spec.scaleTargetRef: Deployment team-a/web does not exist yet"}},
		},
		"cpu on a missing target is denied": {
			so:   newSO(withMin(1), withTriggers(resourceTrigger("cpu"))),
			want: outcome{denied: []string{"spec.scaleTargetRef: Deployment team-a/web does not exist; its cpu trigger needs it"}},
		},
		"target that cannot be read is an internal error, not a denial": {
			so:      newSO(withMin(1), withTriggers(resourceTrigger("cpu"))),
			cluster: cluster{dyn: []runtime.Object{webWithCPU}, fail: []string{"deployments"}},
			want:    outcome{internal: true},
		},
		"kind without /scale": {
			so:      newSO(withTarget("apps/v1", "DaemonSet", "agent")),
			cluster: cluster{},
			want:    outcome{denied: []string{"spec.scaleTargetRef: kind apps/v1 DaemonSet has no /scale subresource"}},
		},
		"kind not served, cron": {
			so:   newSO(withTarget("rollouts.example/v1", "Rollout", "web")),
			want: outcome{warnings: []string{"the API server does not serve kind rollouts.example/v1 Rollout yet"}},
		},
		"kind not served, cpu": {
			so:   newSO(withMin(1), withTarget("rollouts.example/v1", "Rollout", "web"), withTriggers(resourceTrigger("cpu"))),
			want: outcome{denied: []string{"spec.scaleTargetRef: the API server does not serve kind rollouts.example/v1 Rollout"}},
		},
		"custom resource with /scale": {
			so:      newSO(withTarget("example.com/v1", "Widget", "w1")),
			cluster: cluster{dyn: []runtime.Object{widget("w1")}},
			want:    outcome{noWarnings: true},
		},

		// Other ScaledObjects.
		"another ScaledObject on the target": {
			so:      newSO(),
			cluster: cluster{dyn: []runtime.Object{web}, keda: []runtime.Object{otherSO("web-old", "web")}},
			want:    outcome{denied: []string{`spec.scaleTargetRef: Deployment team-a/web is already scaled by ScaledObject "web-old"; a workload can have only one ScaledObject`}},
		},
		"another ScaledObject on the target, being deleted": {
			so: newSO(),
			cluster: cluster{dyn: []runtime.Object{web}, keda: []runtime.Object{otherSO("web-old", "web", func(so *v1alpha1.ScaledObject) {
				so.DeletionTimestamp = &metav1.Time{}
				so.Finalizers = []string{v1alpha1.Finalizer}
			})}},
			want: outcome{denied: []string{`already scaled by ScaledObject "web-old" (it is being deleted: try again once it is gone)`}},
		},
		"another ScaledObject on a StatefulSet of the same name": {
			so:      newSO(),
			cluster: cluster{dyn: []runtime.Object{web}, keda: []runtime.Object{otherSO("db", "web", withTarget("apps/v1", "StatefulSet", "web"))}},
			want:    outcome{noWarnings: true},
		},
		"another ScaledObject on another workload": {
			so:      newSO(),
			cluster: cluster{dyn: []runtime.Object{web}, keda: []runtime.Object{otherSO("api", "api")}},
			want:    outcome{noWarnings: true},
		},
		"the ScaledObject itself is no conflict": {
			so:      newSO(),
			cluster: cluster{dyn: []runtime.Object{web}, keda: []runtime.Object{newSO()}},
			want:    outcome{noWarnings: true},
		},
		"custom HPA name used by another ScaledObject": {
			so:      newSO(withHPAName("shared")),
			cluster: cluster{dyn: []runtime.Object{web}, keda: []runtime.Object{otherSO("api", "api", withHPAName("shared"))}},
			want:    outcome{denied: []string{`spec.advanced.horizontalPodAutoscalerConfig.name: the HPA name "shared" is already used by ScaledObject "api"`}},
		},
		"custom HPA name equal to another's derived name": {
			so:      newSO(withHPAName("keda-hpa-api")),
			cluster: cluster{dyn: []runtime.Object{web}, keda: []runtime.Object{otherSO("api", "api")}},
			want:    outcome{denied: []string{`the HPA name "keda-hpa-api" is already used by ScaledObject "api"`}},
		},
		"derived HPA name owned by another ScaledObject": {
			so: newSO(),
			cluster: cluster{dyn: []runtime.Object{web},
				keda: []runtime.Object{otherSO("api", "api", withHPAName("keda-hpa-web"))},
				kube: []runtime.Object{hpa("keda-hpa-web", "api", "api")}},
			want: outcome{denied: []string{`spec.advanced.horizontalPodAutoscalerConfig.name: the HPA name "keda-hpa-web" is already used by ScaledObject "api"`}},
		},
		"derived HPA name taken by a plain HPA on another workload": {
			so:      newSO(),
			cluster: cluster{dyn: []runtime.Object{web}, kube: []runtime.Object{hpa("keda-hpa-web", "api", "")}},
			want:    outcome{warnings: []string{`an HPA named "keda-hpa-web" already exists and scales Deployment api`}},
		},

		// HPAs on the target.
		"an HPA on the target": {
			so:      newSO(),
			cluster: cluster{dyn: []runtime.Object{web}, kube: []runtime.Object{hpa("legacy", "web", "")}},
			want: outcome{denied: []string{`spec.scaleTargetRef: HPA "legacy" already scales Deployment team-a/web and this ScaledObject does not own it. ` +
				`Delete the HPA, or adopt it: annotate the ScaledObject scaledobject.keda.sh/transfer-hpa-ownership: "true" and set spec.advanced.horizontalPodAutoscalerConfig.name to "legacy"`}},
		},
		"an HPA on the target that opts out": {
			so:      newSO(),
			cluster: cluster{dyn: []runtime.Object{web}, kube: []runtime.Object{annotated(hpa("legacy", "web", ""), v1alpha1.HPAOwnershipValidationAnnotation, "false")}},
			want:    outcome{noWarnings: true},
		},
		"an HPA on the target, adopted": {
			so:      newSO(withAnnotation(v1alpha1.TransferHPAOwnershipAnnotation, "true"), withHPAName("legacy")),
			cluster: cluster{dyn: []runtime.Object{web}, kube: []runtime.Object{hpa("legacy", "web", "")}},
			want:    outcome{warnings: []string{`this ScaledObject adopts the existing HPA "legacy"`}},
		},
		"an HPA on the target, transfer without its name": {
			so:      newSO(withAnnotation(v1alpha1.TransferHPAOwnershipAnnotation, "true"), withHPAName("other")),
			cluster: cluster{dyn: []runtime.Object{web}, kube: []runtime.Object{hpa("legacy", "web", "")}},
			want:    outcome{denied: []string{`spec.advanced.horizontalPodAutoscalerConfig.name: HPA "legacy" already scales Deployment team-a/web; to adopt it with scaledobject.keda.sh/transfer-hpa-ownership, set spec.advanced.horizontalPodAutoscalerConfig.name to "legacy"`}},
		},
		"transfer annotation without an HPA name": {
			so:      newSO(withAnnotation(v1alpha1.TransferHPAOwnershipAnnotation, "true")),
			cluster: cluster{dyn: []runtime.Object{web}},
			want:    outcome{warnings: []string{"scaledobject.keda.sh/transfer-hpa-ownership has no effect without spec.advanced.horizontalPodAutoscalerConfig.name"}},
		},
		"the ScaledObject's own HPA": {
			so:      newSO(),
			cluster: cluster{dyn: []runtime.Object{web}, kube: []runtime.Object{hpa("keda-hpa-web", "web", "web")}},
			want:    outcome{noWarnings: true},
		},
		// A ScaledObject's HPA on the target means a second ScaledObject on
		// it, which the duplicate-target rule denies; the HPA check reads
		// only HPAs no ScaledObject wrote, so its cost does not grow with
		// the namespace's ScaledObjects. Left over from a deleted
		// ScaledObject (garbage collection pending), it is admitted here
		// and the operator reports the conflict in a condition.
		"another ScaledObject's HPA on the target": {
			so:      newSO(),
			cluster: cluster{dyn: []runtime.Object{web}, kube: []runtime.Object{hpa("keda-hpa-gone", "web", "gone")}},
			want:    outcome{noWarnings: true},
		},
		// Kept (scaledobject.keda.sh/keep-hpa-on-delete): the operator
		// removed its ownerReference and left its labels. Under this
		// ScaledObject's HPA name, the GET of that name finds it.
		"an HPA kept from a deleted ScaledObject, of this ScaledObject's HPA name": {
			so:      newSO(),
			cluster: cluster{dyn: []runtime.Object{web}, kube: []runtime.Object{kept(hpa("keda-hpa-web", "web", "web"))}},
			want:    outcome{denied: []string{`spec.scaleTargetRef: HPA "keda-hpa-web" already scales Deployment team-a/web and this ScaledObject does not own it`}},
		},
		"an HPA kept from a deleted ScaledObject, adopted": {
			so:      newSO(withAnnotation(v1alpha1.TransferHPAOwnershipAnnotation, "true"), withHPAName("keda-hpa-old")),
			cluster: cluster{dyn: []runtime.Object{web}, kube: []runtime.Object{kept(hpa("keda-hpa-old", "web", "old"))}},
			want:    outcome{warnings: []string{`this ScaledObject adopts the existing HPA "keda-hpa-old"`}},
		},
		// Under another name it still carries the label, so the read of
		// HPAs no ScaledObject wrote does not see it: admitted, and the
		// operator reports HPAOwnedByOther (docs/webhook.md, known gaps).
		"an HPA kept from a deleted ScaledObject, of another name": {
			so:      newSO(),
			cluster: cluster{dyn: []runtime.Object{web}, kube: []runtime.Object{kept(hpa("keda-hpa-old", "web", "old"))}},
			want:    outcome{noWarnings: true},
		},
		"another ScaledObject's HPA of this ScaledObject's HPA name": {
			so:      newSO(),
			cluster: cluster{dyn: []runtime.Object{web}, kube: []runtime.Object{hpa(newSO().HPAName(), "other", "other")}},
			want:    outcome{denied: []string{`the HPA name "` + newSO().HPAName() + `" is already used by ScaledObject "other"`}},
		},
		"an HPA on a StatefulSet of the same name": {
			so: newSO(),
			cluster: cluster{dyn: []runtime.Object{web}, kube: []runtime.Object{func() *autoscalingv2.HorizontalPodAutoscaler {
				h := hpa("db", "web", "")
				h.Spec.ScaleTargetRef.Kind = "StatefulSet"
				return h
			}()}},
			want: outcome{noWarnings: true},
		},

		// Reads that fail are internal errors.
		"HPAs cannot be listed": {
			so:      newSO(),
			cluster: cluster{dyn: []runtime.Object{web}, fail: []string{"horizontalpodautoscalers"}},
			want:    outcome{internal: true},
		},
		"ScaledObjects cannot be listed": {
			so:      newSO(),
			cluster: cluster{dyn: []runtime.Object{web}, fail: []string{"scaledobjects"}},
			want:    outcome{internal: true},
		},
		"LimitRanges cannot be listed": {
			so:      newSO(withMin(1), withTriggers(resourceTrigger("cpu"))),
			cluster: cluster{dyn: []runtime.Object{web}, fail: []string{"limitranges"}},
			want:    outcome{internal: true},
		},

		// Fallback.
		"fallback with an external trigger": {
			so:      newSO(withFallback(v1alpha1.Fallback{FailureThreshold: 3, Replicas: 2})),
			cluster: cluster{dyn: []runtime.Object{web}},
			want:    outcome{noWarnings: true},
		},
		"fallback with cpu only": {
			so:   newSO(withMin(1), withTriggers(resourceTrigger("cpu")), withFallback(v1alpha1.Fallback{FailureThreshold: 3, Replicas: 2})),
			want: outcome{denied: []string{"spec.fallback: a fallback applies to the metrics of triggers other than cpu and memory"}},
		},
		"fallback with negative numbers": {
			so:   newSO(withFallback(v1alpha1.Fallback{FailureThreshold: -1, Replicas: -2})),
			want: outcome{denied: []string{"spec.fallback.failureThreshold: -1 must not be negative", "spec.fallback.replicas: -2 must not be negative"}},
		},
		"fallback behavior scalingModifiers without a formula": {
			so:   newSO(withFallback(v1alpha1.Fallback{FailureThreshold: 3, Replicas: 2, Behavior: "scalingModifiers"})),
			want: outcome{denied: []string{"spec.fallback.behavior: scalingModifiers needs spec.advanced.scalingModifiers.formula"}},
		},
		"fallback behavior unknown": {
			so:   newSO(withFallback(v1alpha1.Fallback{FailureThreshold: 3, Replicas: 2, Behavior: "sometimes"})),
			want: outcome{denied: []string{`spec.fallback.behavior: "sometimes" is not a fallback behavior`}},
		},
		"fallback behavior scalingModifiers with a formula": {
			so: newSO(withTriggers(cronTrigger("a"), redisTrigger("b")),
				withModifiers(v1alpha1.ScalingModifiers{Formula: "a ?? b", Target: "5"}),
				withFallback(v1alpha1.Fallback{FailureThreshold: 3, Replicas: 2, Behavior: "scalingModifiers"})),
			cluster: cluster{dyn: []runtime.Object{web}},
			want:    outcome{noWarnings: true},
		},

		// Scaling modifiers.
		"formula over named triggers": {
			so:      newSO(withTriggers(cronTrigger("a"), redisTrigger("b")), withModifiers(v1alpha1.ScalingModifiers{Formula: "(a + b) / 2", Target: "2.5"})),
			cluster: cluster{dyn: []runtime.Object{web}},
			want:    outcome{noWarnings: true},
		},
		"formula naming a trigger that does not exist": {
			so:   newSO(withTriggers(cronTrigger("a"), redisTrigger("b")), withModifiers(v1alpha1.ScalingModifiers{Formula: "a + c", Target: "2"})),
			want: outcome{denied: []string{"spec.advanced.scalingModifiers.formula: formula \"a + c\" does not compile: unknown name c (1:5) (the trigger names it may use: a, b)"}},
		},
		"formula that does not parse": {
			so:   newSO(withTriggers(cronTrigger("a")), withModifiers(v1alpha1.ScalingModifiers{Formula: "a +", Target: "2"})),
			want: outcome{denied: []string{"spec.advanced.scalingModifiers.formula"}},
		},
		"formula without a target": {
			so:   newSO(withTriggers(cronTrigger("a")), withModifiers(v1alpha1.ScalingModifiers{Formula: "a"})),
			want: outcome{denied: []string{"spec.advanced.scalingModifiers.target: a target is required with a formula"}},
		},
		"formula with a zero target": {
			so:   newSO(withTriggers(cronTrigger("a")), withModifiers(v1alpha1.ScalingModifiers{Formula: "a", Target: "0"})),
			want: outcome{denied: []string{`spec.advanced.scalingModifiers.target: "0" must be a number greater than 0`}},
		},
		"formula with a bad activation target": {
			so:   newSO(withTriggers(cronTrigger("a")), withModifiers(v1alpha1.ScalingModifiers{Formula: "a", Target: "1", ActivationTarget: "x"})),
			want: outcome{denied: []string{`spec.advanced.scalingModifiers.activationTarget: "x" is not a number`}},
		},
		"formula with metricType Utilization": {
			so:   newSO(withTriggers(cronTrigger("a")), withModifiers(v1alpha1.ScalingModifiers{Formula: "a", Target: "1", MetricType: autoscalingv2.UtilizationMetricType})),
			want: outcome{denied: []string{`spec.advanced.scalingModifiers.metricType: "Utilization" is not supported`}},
		},
		"scalingModifiers without a formula": {
			so:   newSO(withModifiers(v1alpha1.ScalingModifiers{Target: "1"})),
			want: outcome{denied: []string{"spec.advanced.scalingModifiers.formula: a formula is required when scalingModifiers is set"}},
		},
		"empty scalingModifiers means none": {
			so:      newSO(withModifiers(v1alpha1.ScalingModifiers{})),
			cluster: cluster{dyn: []runtime.Object{web}},
			want:    outcome{noWarnings: true},
		},
		"formula cannot use a cpu trigger": {
			so: newSO(withTriggers(func() v1alpha1.ScaleTrigger { t := resourceTrigger("cpu"); t.Name = "c"; return t }(), cronTrigger("a")),
				withModifiers(v1alpha1.ScalingModifiers{Formula: "a + c", Target: "1"})),
			want: outcome{denied: []string{"(the trigger names it may use: a)"}},
		},

		// Annotations.
		"paused-replicas that is not a count": {
			so:      newSO(withAnnotation(v1alpha1.PausedReplicasAnnotation, "three")),
			cluster: cluster{dyn: []runtime.Object{web}},
			want:    outcome{warnings: []string{`metadata.annotations: annotation autoscaling.keda.sh/paused-replicas: "three" is not a replica count`}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			reader, _ := newReader(t, tc.cluster)
			warnings, err := validate(t, NewScaledObject(reader), request(t, "scaledobjects", tc.so, nil))
			check(t, tc.want, warnings, err)
		})
	}
}

// What one admission reads, and how: every LIST is a consistent read
// (neither resourceVersion nor resourceVersionMatch set), whose answer is
// taken as it is, with no second LIST of ScaledObjects and no GET of
// each HPA it selects. The one HPA read by GET is the one of this
// ScaledObject's HPA name, which the LIST of unlabelled HPAs cannot
// return when another ScaledObject wrote it.
func TestScaledObjectReads(t *testing.T) {
	so := newSO(withTriggers(resourceTrigger("cpu")), withMin(1), withHPAName("custom-hpa"))
	reader, f := newReader(t, cluster{
		dyn: []runtime.Object{deployment("web", container("app", nil, nil))},
		kube: []runtime.Object{
			hpa("legacy", "web", ""),
			limitRange(corev1.LimitTypeContainer, nil, cpu("100m")),
		},
		keda: []runtime.Object{otherSO("web-old", "web")},
	})
	warnings, err := validate(t, NewScaledObject(reader), request(t, "scaledobjects", so, nil))
	// The conflicts the LISTs found count as they are.
	check(t, outcome{denied: []string{`already scaled by ScaledObject "web-old"`, `HPA "legacy" already scales Deployment team-a/web`}}, warnings, err)

	var reads []string
	for _, a := range slices.Concat(f.kube.Actions(), f.keda.Actions(), f.dyn.Actions()) {
		if r := a.GetResource().Resource; r == "group" || r == "resource" {
			continue // discovery
		}
		switch a := a.(type) {
		case clienttesting.ListActionImpl:
			o := a.ListOptions
			reads = append(reads, fmt.Sprintf("list %s labels=%q fields=%q limit=%d resourceVersion=%q match=%q",
				a.GetResource().Resource, o.LabelSelector, o.FieldSelector, o.Limit, o.ResourceVersion, o.ResourceVersionMatch))
		case clienttesting.GetActionImpl:
			reads = append(reads, strings.TrimSpace(fmt.Sprintf("get %s %s %s", a.GetResource().Resource, a.GetName(), a.GetSubresource())))
		default:
			reads = append(reads, a.GetVerb()+" "+a.GetResource().Resource)
		}
	}
	slices.Sort(reads)
	want := []string{
		"get deployments web",
		"get horizontalpodautoscalers custom-hpa",
		`list horizontalpodautoscalers labels="!scaledobject.keda.sh/name" fields="" limit=500 resourceVersion="" match=""`,
		`list limitranges labels="" fields="" limit=0 resourceVersion="" match=""`,
		`list scaledobjects labels="" fields="" limit=500 resourceVersion="" match=""`,
		`list scaledobjects labels="" fields="spec.scaleTargetRef.name=web" limit=0 resourceVersion="" match=""`,
	}
	if !slices.Equal(reads, want) {
		t.Errorf("reads:\n  %s\nwant:\n  %s", strings.Join(reads, "\n  "), strings.Join(want, "\n  "))
	}
}

// Triggers whose values come from a TriggerAuthentication or the
// environment, which the webhook cannot see.
func TestScaledObjectTriggerAuthentication(t *testing.T) {
	web := deployment("web")
	tests := map[string]struct {
		trigger v1alpha1.ScaleTrigger
		cluster cluster
		want    outcome
	}{
		"connection from the TriggerAuthentication": {
			trigger: postgresTrigger("pg", nil),
			cluster: cluster{keda: []runtime.Object{triggerAuth("pg", "connection")}},
			want:    outcome{noWarnings: true},
		},
		"separate settings from the TriggerAuthentication": {
			trigger: postgresTrigger("pg", map[string]string{"sslmode": "disable"}),
			cluster: cluster{keda: []runtime.Object{triggerAuth("pg", "host", "port", "userName", "dbName", "password")}},
			want:    outcome{noWarnings: true},
		},
		"the TriggerAuthentication lacks what the trigger needs": {
			trigger: postgresTrigger("pg", nil),
			cluster: cluster{keda: []runtime.Object{triggerAuth("pg", "password")}},
			want: outcome{denied: []string{
				"trigger 0 (postgresql): host is required when no connection is given",
				"trigger 0 (postgresql): port is required",
				"trigger 0 (postgresql): userName is required",
				"trigger 0 (postgresql): dbName is required",
				"trigger 0 (postgresql): sslmode is required",
			}},
		},
		"no authentication at all": {
			trigger: postgresTrigger("", nil),
			want:    outcome{denied: []string{"host is required", "port is required", "userName is required", "dbName is required", "sslmode is required"}},
		},
		"the TriggerAuthentication does not exist yet": {
			trigger: postgresTrigger("pg", nil),
			want: outcome{warnings: []string{
				"spec.triggers[0].authenticationRef: TriggerAuthentication team-a/pg does not exist (yet)",
				"spec.triggers[0].metadata: trigger 0 (postgresql): host is required when no connection is given (TriggerAuthentication team-a/pg does not exist, so this is not checked further)",
			}},
		},
		"a ClusterTriggerAuthentication": {
			trigger: func() v1alpha1.ScaleTrigger {
				t := postgresTrigger("pg", nil)
				t.AuthenticationRef.Kind = v1alpha1.ClusterTriggerAuthenticationKind
				return t
			}(),
			cluster: cluster{keda: []runtime.Object{&v1alpha1.ClusterTriggerAuthentication{
				ObjectMeta: metav1.ObjectMeta{Name: "pg"},
				Spec:       v1alpha1.TriggerAuthenticationSpec{SecretTargetRef: []v1alpha1.AuthSecretTargetRef{{Parameter: "connection", Name: "s", Key: "k"}}},
			}}},
			want: outcome{noWarnings: true},
		},
		"a TriggerAuthentication with filePath is checked leniently": {
			trigger: postgresTrigger("pg", nil),
			cluster: cluster{keda: []runtime.Object{&v1alpha1.TriggerAuthentication{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pg"},
				Spec:       v1alpha1.TriggerAuthenticationSpec{FilePath: "pg.json"},
			}}},
			want: outcome{warnings: []string{"TriggerAuthentication team-a/pg supplies parameters through filePath that the webhook cannot list, so this is not checked further"}},
		},
		"a bad value from the TriggerAuthentication is not judged": {
			trigger: v1alpha1.ScaleTrigger{Type: "redis", Metadata: map[string]string{"listName": "q"},
				AuthenticationRef: &v1alpha1.AuthenticationRef{Name: "r"}},
			cluster: cluster{keda: []runtime.Object{triggerAuth("r", "address", "tls")}},
			want:    outcome{noWarnings: true},
		},
		"authentication modes satisfied by the TriggerAuthentication": {
			trigger: v1alpha1.ScaleTrigger{Type: "prometheus", Metadata: map[string]string{
				"serverAddress": "http://prom:9090", "query": "up", "threshold": "1", "authModes": "bearer"},
				AuthenticationRef: &v1alpha1.AuthenticationRef{Name: "p"}},
			cluster: cluster{keda: []runtime.Object{triggerAuth("p", "bearerToken")}},
			want:    outcome{noWarnings: true},
		},
		"authentication mode not satisfied": {
			trigger: v1alpha1.ScaleTrigger{Type: "prometheus", Metadata: map[string]string{
				"serverAddress": "http://prom:9090", "query": "up", "threshold": "1", "authModes": "bearer"},
				AuthenticationRef: &v1alpha1.AuthenticationRef{Name: "p"}},
			cluster: cluster{keda: []runtime.Object{triggerAuth("p", "username")}},
			want:    outcome{denied: []string{"authModes bearer needs bearerToken in the TriggerAuthentication"}},
		},
		"values from the environment": {
			trigger: postgresTrigger("", map[string]string{"connectionFromEnv": "PG_CONN"}),
			want:    outcome{noWarnings: true},
		},
		"an unknown FromEnv key is reported once": {
			trigger: func() v1alpha1.ScaleTrigger {
				t := redisTrigger("")
				t.Metadata["colourFromEnv"] = "COLOUR"
				return t
			}(),
			want: outcome{warnings: []string{`unknown metadata key "colourFromEnv" is ignored`}},
		},
		"an authentication reference without a name": {
			trigger: func() v1alpha1.ScaleTrigger {
				t := redisTrigger("")
				t.AuthenticationRef = &v1alpha1.AuthenticationRef{}
				return t
			}(),
			want: outcome{denied: []string{"spec.triggers[0].authenticationRef.name: the name of the TriggerAuthentication or ClusterTriggerAuthentication is required"}},
		},
		"an authentication reference of another kind": {
			trigger: func() v1alpha1.ScaleTrigger {
				t := redisTrigger("")
				t.AuthenticationRef = &v1alpha1.AuthenticationRef{Name: "x", Kind: "Secret"}
				return t
			}(),
			want: outcome{denied: []string{`spec.triggers[0].authenticationRef.kind: kind "Secret" is not an authentication kind`}},
		},
		"the TriggerAuthentication cannot be read": {
			trigger: postgresTrigger("pg", nil),
			cluster: cluster{fail: []string{"triggerauthentications"}},
			want:    outcome{internal: true},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.cluster.dyn = append(tc.cluster.dyn, web)
			reader, _ := newReader(t, tc.cluster)
			so := newSO(withTriggers(tc.trigger))
			warnings, err := validate(t, NewScaledObject(reader), request(t, "scaledobjects", so, nil))
			check(t, tc.want, warnings, err)
			if tc.want.noWarnings || len(tc.want.warnings) > 0 {
				for _, w := range warnings {
					if strings.Contains(w, `"colour"`) {
						t.Errorf("warning about the placeholder of colourFromEnv: %s", w)
					}
				}
			}
		})
	}
}

// Triggers sharing an authentication object read it once.
func TestScaledObjectReadsEachTriggerAuthenticationOnce(t *testing.T) {
	reader, f := newReader(t, cluster{keda: []runtime.Object{triggerAuth("pg", "connection")}, dyn: []runtime.Object{deployment("web")}})
	so := newSO(withTriggers(postgresTrigger("pg", nil), postgresTrigger("pg", nil)))
	if _, err := validate(t, NewScaledObject(reader), request(t, "scaledobjects", so, nil)); err != nil {
		t.Fatal(err)
	}
	gets := 0
	for _, a := range f.keda.Actions() {
		if a.GetVerb() == "get" && a.GetResource().Resource == "triggerauthentications" {
			gets++
		}
	}
	if gets != 1 {
		t.Errorf("TriggerAuthentication read %d times, want 1", gets)
	}
}

func TestScaledObjectUpdate(t *testing.T) {
	// In this cluster a cpu ScaledObject on "web" breaks a rule: the
	// Deployment is gone.
	cpuSO := newSO(withMin(1), withTriggers(resourceTrigger("cpu")))
	withFinalizer := func(so *v1alpha1.ScaledObject) { so.Finalizers = []string{v1alpha1.Finalizer} }
	tests := map[string]struct {
		old, cur  *v1alpha1.ScaledObject
		want      outcome
		wantReads bool
	}{
		"finalizer removed": {
			old:  newSO(withMin(1), withTriggers(resourceTrigger("cpu")), withFinalizer),
			cur:  cpuSO,
			want: outcome{noWarnings: true},
		},
		"finalizer added": {
			old:  cpuSO,
			cur:  newSO(withMin(1), withTriggers(resourceTrigger("cpu")), withFinalizer),
			want: outcome{noWarnings: true},
		},
		"labels changed": {
			old:  cpuSO,
			cur:  newSO(withMin(1), withTriggers(resourceTrigger("cpu")), func(so *v1alpha1.ScaledObject) { so.Labels = map[string]string{"team": "a"} }),
			want: outcome{noWarnings: true},
		},
		"being deleted, spec changed": {
			old: cpuSO,
			cur: newSO(withMin(2), withTriggers(resourceTrigger("cpu")), func(so *v1alpha1.ScaledObject) {
				so.DeletionTimestamp = &metav1.Time{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
			}),
			want: outcome{noWarnings: true},
		},
		"spec changed is validated": {
			old:       cpuSO,
			cur:       newSO(withMin(2), withTriggers(resourceTrigger("cpu"))),
			want:      outcome{denied: []string{"Deployment team-a/web does not exist"}},
			wantReads: true,
		},
		"paused with a bad replica count": {
			old:  cpuSO,
			cur:  newSO(withMin(1), withTriggers(resourceTrigger("cpu")), withAnnotation(v1alpha1.PausedReplicasAnnotation, "none")),
			want: outcome{warnings: []string{`annotation autoscaling.keda.sh/paused-replicas: "none" is not a replica count`}},
		},
		"paused": {
			old:  cpuSO,
			cur:  newSO(withMin(1), withTriggers(resourceTrigger("cpu")), withAnnotation(v1alpha1.PausedAnnotation, "true")),
			want: outcome{noWarnings: true},
		},
		"transfer annotation changed is validated": {
			old:       cpuSO,
			cur:       newSO(withMin(1), withTriggers(resourceTrigger("cpu")), withAnnotation(v1alpha1.TransferHPAOwnershipAnnotation, "true")),
			want:      outcome{denied: []string{"Deployment team-a/web does not exist"}},
			wantReads: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			reader, f := newReader(t, cluster{})
			warnings, err := validate(t, NewScaledObject(reader), request(t, "scaledobjects", tc.cur, tc.old))
			check(t, tc.want, warnings, err)
			reads := len(f.kube.Actions()) + len(f.keda.Actions()) + len(f.dyn.Actions())
			if got := reads > 0; got != tc.wantReads {
				t.Errorf("read the cluster: %v, want %v", got, tc.wantReads)
			}
		})
	}
}

// A dry run is validated like any other request: the webhook has no side
// effects to skip.
func TestScaledObjectDryRun(t *testing.T) {
	reader, _ := newReader(t, cluster{})
	req := request(t, "scaledobjects", newSO(withMin(1), withTriggers(resourceTrigger("cpu"))), nil)
	req.DryRun = ptr(true)
	_, err := validate(t, NewScaledObject(reader), req)
	check(t, outcome{denied: []string{"Deployment team-a/web does not exist"}}, nil, err)
}

func TestScaledObjectBadObject(t *testing.T) {
	reader, _ := newReader(t, cluster{})
	tests := map[string]*admissionv1.AdmissionRequest{
		"not JSON":    {Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: []byte("{")}},
		"wrong shape": {Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: []byte(`{"spec":{"triggers":"many"}}`)}},
		"no object":   {Operation: admissionv1.Create},
		"update without old object": {Operation: admissionv1.Update,
			Object: raw(t, newSO())},
	}
	for name, req := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := validate(t, NewScaledObject(reader), req)
			var bad *admission.BadObjectError
			if !errors.As(err, &bad) {
				t.Errorf("want a *BadObjectError, got %v", err)
			}
		})
	}
}

// The target is looked up with direct reads only, through the field
// selector, and nothing is watched.
func TestScaledObjectReadsDirectly(t *testing.T) {
	reader, f := newReader(t, cluster{dyn: []runtime.Object{deployment("web")}})
	if _, err := validate(t, NewScaledObject(reader), request(t, "scaledobjects", newSO(), nil)); err != nil {
		t.Fatal(err)
	}
	var selector string
	for _, a := range f.keda.Actions() {
		if l, ok := a.(clienttesting.ListAction); ok {
			selector = l.GetListRestrictions().Fields.String()
		}
	}
	if selector != "spec.scaleTargetRef.name=web" {
		t.Errorf("ScaledObjects listed with field selector %q, want spec.scaleTargetRef.name=web", selector)
	}
	for _, a := range append(append(f.kube.Actions(), f.keda.Actions()...), f.dyn.Actions()...) {
		if a.GetVerb() == "watch" {
			t.Errorf("watched %s", a.GetResource())
		}
	}
}
