package scaledobject

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubeinformers "k8s.io/client-go/informers"
	kubefake "k8s.io/client-go/kubernetes/fake"
	scalefake "k8s.io/client-go/scale/fake"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedafake "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned/fake"
	kedainformers "github.com/ebb-autoscaler/ebb/pkg/client/informers/externalversions"
)

// fixture holds the fakes of one test: clientsets whose informers' indexers
// are filled directly (no watch), a scale client for Deployments, and a
// recorder.
type fixture struct {
	t           *testing.T
	kube        *kubefake.Clientset
	keda        *kedafake.Clientset
	scales      *scalefake.FakeScaleClient
	recorder    *record.FakeRecorder
	controller  *Controller
	replicas    map[string]int32 // Deployment name -> spec.replicas
	scaleWrites []string
	soStore     cache.Indexer
	hpaStore    cache.Indexer
}

type fixedMetrics []autoscalingv2.MetricSpec

func (m fixedMetrics) MetricSpecs(context.Context, *v1alpha1.ScaledObject) ([]autoscalingv2.MetricSpec, error) {
	return m, nil
}

func newFixture(t *testing.T, sos []*v1alpha1.ScaledObject, hpas []*autoscalingv2.HorizontalPodAutoscaler, replicas map[string]int32) *fixture {
	t.Helper()
	f := &fixture{t: t, replicas: replicas, recorder: record.NewFakeRecorder(100)}
	var kubeObjects, kedaObjects []runtime.Object
	for _, h := range hpas {
		kubeObjects = append(kubeObjects, h)
	}
	for _, so := range sos {
		kedaObjects = append(kedaObjects, so)
	}
	f.kube = kubefake.NewClientset(kubeObjects...)
	f.keda = kedafake.NewSimpleClientset(kedaObjects...)

	f.scales = &scalefake.FakeScaleClient{}
	f.scales.AddReactor("get", "deployments", func(action core.Action) (bool, runtime.Object, error) {
		name := action.(core.GetAction).GetName()
		r, ok := f.replicas[name]
		if !ok {
			return true, nil, newNotFound("deployments", name)
		}
		return true, &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: action.GetNamespace()}, Spec: autoscalingv1.ScaleSpec{Replicas: r}}, nil
	})
	f.scales.AddReactor("update", "deployments", func(action core.Action) (bool, runtime.Object, error) {
		s := action.(core.UpdateAction).GetObject().(*autoscalingv1.Scale)
		f.replicas[s.Name] = s.Spec.Replicas
		f.scaleWrites = append(f.scaleWrites, fmt.Sprintf("%s=%d", s.Name, s.Spec.Replicas))
		return true, s, nil
	})

	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)

	kubeFactory := kubeinformers.NewSharedInformerFactory(f.kube, 0)
	kedaFactory := kedainformers.NewSharedInformerFactory(f.keda, 0)
	soInformer := kedaFactory.Keda().V1alpha1().ScaledObjects()
	hpaInformer := kubeFactory.Autoscaling().V2().HorizontalPodAutoscalers()
	for _, so := range sos {
		if err := soInformer.Informer().GetIndexer().Add(so); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range hpas {
		if err := hpaInformer.Informer().GetIndexer().Add(h); err != nil {
			t.Fatal(err)
		}
	}
	f.soStore, f.hpaStore = soInformer.Informer().GetIndexer(), hpaInformer.Informer().GetIndexer()
	_, ctx := ktesting.NewTestContext(t)
	f.controller = NewController(klog.FromContext(ctx), f.kube, f.keda, f.scales, mapper, soInformer, hpaInformer, f.recorder)
	f.controller.metrics = fixedMetrics{externalMetric("s0-redis-jobs", "5")}
	return f
}

func (f *fixture) sync(so string) error {
	_, ctx := ktesting.NewTestContext(f.t)
	return f.controller.sync(ctx, cache.NewObjectName("shop", so))
}

// writes lists the write actions ("verb resource[/subresource] name") sent
// to the fake clientsets, reads left out, sorted (two clientsets do not
// share one order).
func (f *fixture) writes() []string {
	var out []string
	for _, a := range append(f.kube.Actions(), f.keda.Actions()...) {
		if a.GetVerb() == "get" || a.GetVerb() == "list" || a.GetVerb() == "watch" {
			continue
		}
		res := a.GetResource().Resource
		if a.GetSubresource() != "" {
			res += "/" + a.GetSubresource()
		}
		name := ""
		switch a := a.(type) {
		case interface{ GetObject() runtime.Object }: // create, update
			name = a.GetObject().(metav1.Object).GetName()
		case core.DeleteAction:
			name = a.GetName()
		}
		out = append(out, a.GetVerb()+" "+res+" "+name)
	}
	slices.Sort(out)
	return out
}

func (f *fixture) hpa(name string) *autoscalingv2.HorizontalPodAutoscaler {
	h, err := f.kube.AutoscalingV2().HorizontalPodAutoscalers("shop").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatalf("HPA %s: %v", name, err)
	}
	return h
}

func (f *fixture) scaledObject(name string) *v1alpha1.ScaledObject {
	so, err := f.keda.KedaV1alpha1().ScaledObjects("shop").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatalf("ScaledObject %s: %v", name, err)
	}
	return so
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func newScaledObject(mutate ...func(*v1alpha1.ScaledObject)) *v1alpha1.ScaledObject {
	so := &v1alpha1.ScaledObject{
		TypeMeta:   metav1.TypeMeta{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledObject"},
		ObjectMeta: metav1.ObjectMeta{Name: "jobs", Namespace: "shop", UID: "so-uid", Finalizers: []string{v1alpha1.Finalizer}},
		Spec: v1alpha1.ScaledObjectSpec{
			ScaleTargetRef: &v1alpha1.ScaleTarget{Name: "worker"},
			Triggers:       []v1alpha1.ScaleTrigger{{Type: "redis", Metadata: map[string]string{"listName": "jobs"}}},
		},
	}
	for _, m := range mutate {
		m(so)
	}
	return so
}

func externalMetric(name, avg string) autoscalingv2.MetricSpec {
	q := resource.MustParse(avg)
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ExternalMetricSourceType,
		External: &autoscalingv2.ExternalMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: name},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &q},
		},
	}
}

// foreignHPA is an HPA nobody owns on the same target.
func foreignHPA(name string) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", UID: "hpa-uid", Labels: map[string]string{"chart": "web"}},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "worker"},
			MinReplicas:    ptr.To[int32](2),
			MaxReplicas:    9,
		},
	}
}

func TestSyncDeletedBeforeSync(t *testing.T) {
	// The seed-3 race: the event was delivered, the object is gone from
	// the informer by the time the worker syncs. NotFound means deleted:
	// no error, no write.
	f := newFixture(t, nil, nil, map[string]int32{"worker": 1})
	if err := f.sync("jobs"); err != nil {
		t.Fatalf("sync of a deleted ScaledObject: %v", err)
	}
	if w := f.writes(); len(w) != 0 {
		t.Errorf("writes = %v, want none", w)
	}
}

func TestSyncCreatesHPAAndStatus(t *testing.T) {
	so := newScaledObject(func(so *v1alpha1.ScaledObject) { so.Finalizers = nil })
	f := newFixture(t, []*v1alpha1.ScaledObject{so}, nil, map[string]int32{"worker": 3})
	if err := f.sync("jobs"); err != nil {
		t.Fatal(err)
	}
	// No finalizer: nothing to do at deletion but what the garbage
	// collector does.
	want := []string{"create horizontalpodautoscalers keda-hpa-jobs", "update scaledobjects/status jobs"}
	if got := f.writes(); !slices.Equal(got, want) {
		t.Errorf("writes = %v, want %v", got, want)
	}
	h := f.hpa("keda-hpa-jobs")
	if owner := metav1.GetControllerOf(h); owner == nil || owner.UID != so.UID {
		t.Errorf("HPA controller owner = %v, want the ScaledObject", owner)
	}
	if len(h.Spec.Metrics) != 1 || h.Spec.Metrics[0].External.Metric.Selector.MatchLabels[v1alpha1.ScaledObjectNameLabel] != "jobs" {
		t.Errorf("HPA metrics = %+v, want s0-redis-jobs with the ScaledObject selector", h.Spec.Metrics)
	}
	got := f.scaledObject("jobs")
	if len(got.Finalizers) != 0 {
		t.Errorf("finalizers = %v, want none", got.Finalizers)
	}
	st := got.Status
	if st.HpaName != "keda-hpa-jobs" || !slices.Equal(st.ExternalMetricNames, []string{"s0-redis-jobs"}) || ptr.Deref(st.OriginalReplicaCount, -1) != 3 {
		t.Errorf("status = hpaName %q metrics %v original %v", st.HpaName, st.ExternalMetricNames, st.OriginalReplicaCount)
	}
	if st.ScaleTargetGVKR == nil || st.ScaleTargetGVKR.Resource != "deployments" || st.ScaleTargetKind != "apps/v1.Deployment" {
		t.Errorf("scale target = %q %+v", st.ScaleTargetKind, st.ScaleTargetGVKR)
	}
	// The HPA controller has not read the metrics yet: ebb's part is done,
	// so Ready is True.
	if r := st.Conditions.Ready(); r.Status != metav1.ConditionTrue || r.Reason != v1alpha1.ScaledObjectReadyReason {
		t.Errorf("Ready = %+v, want True/%s", r, v1alpha1.ScaledObjectReadyReason)
	}
	if !st.Conditions.AreInitialized() {
		t.Errorf("conditions not initialized: %+v", st.Conditions)
	}
	if ev := f.events(); len(ev) != 1 || !strings.Contains(ev[0], "Created HPA keda-hpa-jobs") {
		t.Errorf("events = %v", ev)
	}
}

func TestSyncReadyFollowsHPA(t *testing.T) {
	tests := map[string]struct {
		cond       autoscalingv2.HorizontalPodAutoscalerCondition
		wantStatus metav1.ConditionStatus
	}{
		"reading metrics":    {cond: autoscalingv2.HorizontalPodAutoscalerCondition{Type: autoscalingv2.ScalingActive, Status: corev1.ConditionTrue, Reason: "ValidMetricFound"}, wantStatus: metav1.ConditionTrue},
		"target at zero":     {cond: autoscalingv2.HorizontalPodAutoscalerCondition{Type: autoscalingv2.ScalingActive, Status: corev1.ConditionFalse, Reason: "ScalingDisabled"}, wantStatus: metav1.ConditionTrue},
		"metrics unreadable": {cond: autoscalingv2.HorizontalPodAutoscalerCondition{Type: autoscalingv2.ScalingActive, Status: corev1.ConditionFalse, Reason: "FailedGetExternalMetric", Message: "unable to get external metric"}, wantStatus: metav1.ConditionFalse},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			so := newScaledObject()
			f0 := newFixture(t, []*v1alpha1.ScaledObject{so}, nil, map[string]int32{"worker": 1})
			if err := f0.sync("jobs"); err != nil {
				t.Fatal(err)
			}
			h := f0.hpa("keda-hpa-jobs")
			h.Status.Conditions = []autoscalingv2.HorizontalPodAutoscalerCondition{tc.cond}
			f := newFixture(t, []*v1alpha1.ScaledObject{f0.scaledObject("jobs")}, []*autoscalingv2.HorizontalPodAutoscaler{h}, map[string]int32{"worker": 1})
			if err := f.sync("jobs"); err != nil {
				t.Fatal(err)
			}
			if r := f.scaledObject("jobs").Status.Conditions.Ready(); r.Status != tc.wantStatus {
				t.Errorf("Ready = %+v, want %s", r, tc.wantStatus)
			}
			for _, w := range f.writes() {
				if strings.Contains(w, "horizontalpodautoscalers") {
					t.Errorf("unexpected HPA write %q: the HPA is already as wanted", w)
				}
			}
		})
	}
}

func TestSyncNoWritesWhenNothingChanged(t *testing.T) {
	f0 := newFixture(t, []*v1alpha1.ScaledObject{newScaledObject()}, nil, map[string]int32{"worker": 1})
	if err := f0.sync("jobs"); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, []*v1alpha1.ScaledObject{f0.scaledObject("jobs")}, []*autoscalingv2.HorizontalPodAutoscaler{f0.hpa("keda-hpa-jobs")}, map[string]int32{"worker": 1})
	if err := f.sync("jobs"); err != nil {
		t.Fatal(err)
	}
	if w := f.writes(); len(w) != 0 {
		t.Errorf("writes = %v, want none on a steady-state resync", w)
	}
}

func TestSyncForeignHPA(t *testing.T) {
	tests := map[string]struct {
		transfer   bool
		wantWrites []string
		wantReady  metav1.ConditionStatus
	}{
		"not adopted without the annotation": {
			wantWrites: []string{"update scaledobjects/status jobs"},
			wantReady:  metav1.ConditionFalse,
		},
		"adopted with transfer-hpa-ownership": {
			transfer:   true,
			wantWrites: []string{"update horizontalpodautoscalers web", "update scaledobjects/status jobs"},
			wantReady:  metav1.ConditionTrue,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			so := newScaledObject(func(so *v1alpha1.ScaledObject) {
				so.Spec.Advanced = &v1alpha1.AdvancedConfig{HorizontalPodAutoscalerConfig: &v1alpha1.HorizontalPodAutoscalerConfig{Name: "web"}}
				if tc.transfer {
					so.Annotations = map[string]string{v1alpha1.TransferHPAOwnershipAnnotation: "true"}
				}
			})
			f := newFixture(t, []*v1alpha1.ScaledObject{so}, []*autoscalingv2.HorizontalPodAutoscaler{foreignHPA("web")}, map[string]int32{"worker": 2})
			if err := f.sync("jobs"); err != nil {
				t.Fatal(err)
			}
			if got := f.writes(); !slices.Equal(got, tc.wantWrites) {
				t.Errorf("writes = %v, want %v", got, tc.wantWrites)
			}
			if r := f.scaledObject("jobs").Status.Conditions.Ready(); r.Status != tc.wantReady {
				t.Errorf("Ready = %+v, want %s", r, tc.wantReady)
			}
			h := f.hpa("web")
			owner := metav1.GetControllerOf(h)
			if tc.transfer {
				if owner == nil || owner.UID != so.UID || h.Spec.MaxReplicas != 100 {
					t.Errorf("adopted HPA: owner %v, maxReplicas %d; want the ScaledObject, 100", owner, h.Spec.MaxReplicas)
				}
				var before preAdoption
				if err := json.Unmarshal([]byte(h.Annotations[PreAdoptionAnnotation]), &before); err != nil || before.Spec.MaxReplicas != 9 || before.Labels["chart"] != "web" {
					t.Errorf("pre-adoption record = %q (%v), want the HPA's original spec and labels", h.Annotations[PreAdoptionAnnotation], err)
				}
			} else if owner != nil {
				t.Errorf("HPA got an owner %v without the transfer annotation", owner)
			}
		})
	}
}

// TestAdoptionKeepsHPAMetadata: an adopted HPA keeps the labels and
// annotations it had (under the ScaledObject's), so helm's
// helm.sh/resource-policy: keep is still there when an upgrade that stops
// rendering the HPA reads it after the adoption; a resync does not strip
// them, and the release restores exactly the pre-adoption ones.
func TestAdoptionKeepsHPAMetadata(t *testing.T) {
	so := newScaledObject(func(so *v1alpha1.ScaledObject) {
		so.Labels = map[string]string{"chart": "app-2", "team": "shop"}
		so.Annotations = map[string]string{v1alpha1.TransferHPAOwnershipAnnotation: "true"}
		so.Spec.Advanced = &v1alpha1.AdvancedConfig{HorizontalPodAutoscalerConfig: &v1alpha1.HorizontalPodAutoscalerConfig{Name: "web"}}
	})
	h := foreignHPA("web")
	h.Labels = map[string]string{"chart": "app-1", "app.kubernetes.io/managed-by": "Helm"}
	h.Annotations = map[string]string{"helm.sh/resource-policy": "keep", "meta.helm.sh/release-name": "app"}
	f := newFixture(t, []*v1alpha1.ScaledObject{so}, []*autoscalingv2.HorizontalPodAutoscaler{h}, map[string]int32{"worker": 2})
	if err := f.sync("jobs"); err != nil {
		t.Fatal(err)
	}
	adopted := f.hpa("web")
	if owner := metav1.GetControllerOf(adopted); owner == nil || owner.UID != so.UID {
		t.Fatalf("HPA not adopted: owners %v", adopted.OwnerReferences)
	}
	wantLabels := map[string]string{"chart": "app-2", "team": "shop", "app.kubernetes.io/managed-by": "Helm", v1alpha1.ScaledObjectNameLabel: "jobs"}
	if !maps.Equal(adopted.Labels, wantLabels) {
		t.Errorf("adopted HPA labels = %v, want %v", adopted.Labels, wantLabels)
	}
	for k, v := range map[string]string{"helm.sh/resource-policy": "keep", "meta.helm.sh/release-name": "app", v1alpha1.TransferHPAOwnershipAnnotation: "true"} {
		if adopted.Annotations[k] != v {
			t.Errorf("adopted HPA annotation %s = %q, want %q (annotations %v)", k, adopted.Annotations[k], v, adopted.Annotations)
		}
	}

	// A resync of the adopted HPA changes nothing.
	f2 := newFixture(t, []*v1alpha1.ScaledObject{f.scaledObject("jobs")}, []*autoscalingv2.HorizontalPodAutoscaler{adopted}, map[string]int32{"worker": 2})
	if err := f2.sync("jobs"); err != nil {
		t.Fatal(err)
	}
	for _, w := range f2.writes() {
		if strings.Contains(w, "horizontalpodautoscalers") {
			t.Errorf("unexpected HPA write %q on a resync of the adopted HPA", w)
		}
	}

	// Deleting the ScaledObject gives the HPA back as it was, and drops
	// the operator's managed fields (the fake clientset keeps them as the
	// API server does: the release's update makes the operator the manager
	// of every field it sets back), so that the next server-side apply by
	// helm does not conflict with the operator.
	deleting := f.scaledObject("jobs")
	deleting.DeletionTimestamp = ptr.To(metav1.Now())
	adopted.ManagedFields = []metav1.ManagedFieldsEntry{
		{Manager: "helm", Operation: metav1.ManagedFieldsOperationApply, APIVersion: "autoscaling/v2", FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:scaleTargetRef":{}}}`)},
		{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "autoscaling/v2", FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:maxReplicas":{}}}`)},
	}
	f3 := newFixture(t, []*v1alpha1.ScaledObject{deleting}, []*autoscalingv2.HorizontalPodAutoscaler{adopted}, map[string]int32{"worker": 2})
	if err := f3.sync("jobs"); err != nil {
		t.Fatal(err)
	}
	released := f3.hpa("web")
	if len(released.OwnerReferences) != 0 || !maps.Equal(released.Labels, h.Labels) || !maps.Equal(released.Annotations, h.Annotations) || released.Spec.MaxReplicas != 9 {
		t.Errorf("released HPA = owners %v labels %v annotations %v maxReplicas %d, want it as before adoption", released.OwnerReferences, released.Labels, released.Annotations, released.Spec.MaxReplicas)
	}
	var managers []string
	for _, mf := range released.ManagedFields {
		managers = append(managers, mf.Manager)
	}
	if !slices.Equal(managers, []string{"helm"}) {
		t.Errorf("released HPA field managers = %v, want helm only: %+v", managers, released.ManagedFields)
	}
}

func TestFinalize(t *testing.T) {
	deleting := func(so *v1alpha1.ScaledObject) { so.DeletionTimestamp = ptr.To(metav1.Now()) }
	tests := map[string]struct {
		so          *v1alpha1.ScaledObject
		adopted     bool
		wantHPAKept bool // ownerReference removed so the garbage collector leaves it
		wantScale   []string
	}{
		"owned HPA goes with the ScaledObject": {so: newScaledObject(deleting)},
		"keep annotation releases the HPA": {
			so:          newScaledObject(deleting, func(so *v1alpha1.ScaledObject) { so.Annotations = map[string]string{KeepHPAOnDeleteAnnotation: "true"} }),
			wantHPAKept: true,
		},
		"adopted HPA is released and restored": {so: newScaledObject(deleting), adopted: true, wantHPAKept: true},
		"restoreToOriginalReplicaCount": {
			so: newScaledObject(deleting, func(so *v1alpha1.ScaledObject) {
				so.Spec.Advanced = &v1alpha1.AdvancedConfig{RestoreToOriginalReplicaCount: true}
				so.Status.OriginalReplicaCount = ptr.To[int32](4)
			}),
			wantScale: []string{"worker=4"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := foreignHPA("keda-hpa-jobs")
			h.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(tc.so, v1alpha1.SchemeGroupVersion.WithKind("ScaledObject"))}
			h.Spec.MaxReplicas = 100
			if tc.adopted {
				h.Annotations = map[string]string{PreAdoptionAnnotation: `{"labels":{"chart":"web"},"spec":{"scaleTargetRef":{"kind":"Deployment","name":"worker","apiVersion":"apps/v1"},"maxReplicas":9}}`}
			}
			f := newFixture(t, []*v1alpha1.ScaledObject{tc.so}, []*autoscalingv2.HorizontalPodAutoscaler{h}, map[string]int32{"worker": 1})
			if err := f.sync("jobs"); err != nil {
				t.Fatal(err)
			}
			got := f.hpa("keda-hpa-jobs")
			kept := metav1.GetControllerOf(got) == nil
			if kept != tc.wantHPAKept {
				t.Errorf("HPA released = %v, want %v (owners %v)", kept, tc.wantHPAKept, got.OwnerReferences)
			}
			if tc.adopted && (got.Spec.MaxReplicas != 9 || got.Labels["chart"] != "web" || got.Annotations[PreAdoptionAnnotation] != "") {
				t.Errorf("released HPA = maxReplicas %d labels %v annotations %v, want its pre-adoption state", got.Spec.MaxReplicas, got.Labels, got.Annotations)
			}
			if !slices.Equal(f.scaleWrites, tc.wantScale) {
				t.Errorf("scale writes = %v, want %v", f.scaleWrites, tc.wantScale)
			}
			if fin := f.scaledObject("jobs").Finalizers; slices.Contains(fin, v1alpha1.Finalizer) {
				t.Errorf("finalizer still present: %v", fin)
			}
		})
	}
}

func TestSyncPaused(t *testing.T) {
	owned := func(so *v1alpha1.ScaledObject) *autoscalingv2.HorizontalPodAutoscaler {
		h := foreignHPA("keda-hpa-jobs")
		h.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(so, v1alpha1.SchemeGroupVersion.WithKind("ScaledObject"))}
		return h
	}
	tests := map[string]struct {
		annotations map[string]string
		wantScale   []string
		wantPaused  *int32
		wantErrCond bool
	}{
		"paused keeps the replicas":   {annotations: map[string]string{v1alpha1.PausedAnnotation: "true"}},
		"paused-replicas scales to N": {annotations: map[string]string{v1alpha1.PausedReplicasAnnotation: "0"}, wantScale: []string{"worker=0"}, wantPaused: ptr.To[int32](0)},
		"bad paused-replicas":         {annotations: map[string]string{v1alpha1.PausedReplicasAnnotation: "many"}, wantErrCond: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			so := newScaledObject(func(so *v1alpha1.ScaledObject) { so.Annotations = tc.annotations })
			f := newFixture(t, []*v1alpha1.ScaledObject{so}, []*autoscalingv2.HorizontalPodAutoscaler{owned(so)}, map[string]int32{"worker": 3})
			if err := f.sync("jobs"); err != nil {
				t.Fatal(err)
			}
			st := f.scaledObject("jobs").Status
			if tc.wantErrCond {
				if r := st.Conditions.Ready(); r.Status != metav1.ConditionFalse || !strings.Contains(r.Message, "many") {
					t.Errorf("Ready = %+v, want False naming the bad value", r)
				}
				return
			}
			if _, err := f.kube.AutoscalingV2().HorizontalPodAutoscalers("shop").Get(context.Background(), "keda-hpa-jobs", metav1.GetOptions{}); err == nil {
				t.Errorf("HPA still exists while paused")
			}
			if !slices.Equal(f.scaleWrites, tc.wantScale) {
				t.Errorf("scale writes = %v, want %v", f.scaleWrites, tc.wantScale)
			}
			if p := st.Conditions.Paused(); !p.IsTrue() {
				t.Errorf("Paused = %+v, want True", p)
			}
			if ptr.Deref(st.PausedReplicaCount, -1) != ptr.Deref(tc.wantPaused, -1) {
				t.Errorf("pausedReplicaCount = %v, want %v", st.PausedReplicaCount, tc.wantPaused)
			}
		})
	}
}

func TestSyncTargetProblems(t *testing.T) {
	tests := map[string]struct {
		so         *v1alpha1.ScaledObject
		wantErr    bool
		wantReason string
	}{
		"missing Deployment": {
			so:         newScaledObject(func(so *v1alpha1.ScaledObject) { so.Spec.ScaleTargetRef.Name = "nope" }),
			wantReason: reasonTargetNotFound,
		},
		"kind not served yet (retried)": {
			so: newScaledObject(func(so *v1alpha1.ScaledObject) {
				so.Spec.ScaleTargetRef.APIVersion, so.Spec.ScaleTargetRef.Kind = "example.com/v1", "Widget"
			}),
			wantErr:    true,
			wantReason: reasonTargetNotFound,
		},
		"invalid scaling modifiers formula": {
			so: newScaledObject(func(so *v1alpha1.ScaledObject) {
				so.Spec.Triggers[0].Name = "queue"
				so.Spec.Advanced = &v1alpha1.AdvancedConfig{ScalingModifiers: &v1alpha1.ScalingModifiers{Formula: "queue + nope", Target: "2"}}
			}),
			wantReason: reasonTriggerError,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, []*v1alpha1.ScaledObject{tc.so}, nil, map[string]int32{"worker": 1})
			err := f.sync("jobs")
			if (err != nil) != tc.wantErr {
				t.Fatalf("sync error = %v, want error %v", err, tc.wantErr)
			}
			if r := f.scaledObject("jobs").Status.Conditions.Ready(); r.Status != metav1.ConditionFalse || r.Reason != tc.wantReason {
				t.Errorf("Ready = %+v, want False/%s", r, tc.wantReason)
			}
			if ev := f.events(); len(ev) == 0 || !strings.HasPrefix(ev[0], "Warning "+tc.wantReason) {
				t.Errorf("events = %v, want a %s warning", ev, tc.wantReason)
			}
			for _, w := range f.writes() {
				if strings.Contains(w, "horizontalpodautoscalers") {
					t.Errorf("HPA written without a target: %s", w)
				}
			}
		})
	}
}

func newNotFound(resource, name string) error {
	return apierrors.NewNotFound(schema.GroupResource{Group: "apps", Resource: resource}, name)
}
