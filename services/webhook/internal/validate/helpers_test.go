package validate

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clienttesting "k8s.io/client-go/testing"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedafake "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned/fake"
	"github.com/ebb-autoscaler/ebb/pkg/restmapper"
	"github.com/ebb-autoscaler/ebb/pkg/uncached"
	"github.com/ebb-autoscaler/ebb/services/webhook/internal/admission"
)

const ns = "team-a"

// cluster is what the fake API server holds.
type cluster struct {
	kube []runtime.Object // HPAs, LimitRanges
	keda []runtime.Object // ScaledObjects, TriggerAuthentications
	dyn  []runtime.Object // scale targets
	// fail makes every request for these resources fail.
	fail []string
}

// fakes is the fake API server behind a real uncached.Reader.
type fakes struct {
	kube *kubefake.Clientset
	keda *kedafake.Clientset
	dyn  *dynamicfake.FakeDynamicClient
}

func newReader(t *testing.T, c cluster) (*uncached.Reader, *fakes) {
	t.Helper()
	kube := kubefake.NewClientset(c.kube...)
	disc := kube.Discovery().(*fakediscovery.FakeDiscovery)
	disc.Resources = []*metav1.APIResourceList{
		{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
			{Name: "deployments", SingularName: "deployment", Namespaced: true, Kind: "Deployment"},
			{Name: "deployments/scale", Namespaced: true, Group: "autoscaling", Version: "v1", Kind: "Scale"},
			{Name: "statefulsets", SingularName: "statefulset", Namespaced: true, Kind: "StatefulSet"},
			{Name: "statefulsets/scale", Namespaced: true, Group: "autoscaling", Version: "v1", Kind: "Scale"},
			{Name: "daemonsets", SingularName: "daemonset", Namespaced: true, Kind: "DaemonSet"},
		}},
		{GroupVersion: "example.com/v1", APIResources: []metav1.APIResource{
			{Name: "widgets", SingularName: "widget", Namespaced: true, Kind: "Widget"},
			{Name: "widgets/scale", Namespaced: true, Group: "autoscaling", Version: "v1", Kind: "Scale"},
		}},
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	dyn := dynamicfake.NewSimpleDynamicClient(scheme, c.dyn...)
	keda := kedafake.NewClientset(c.keda...)
	boom := func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	}
	for _, res := range c.fail {
		kube.PrependReactor("*", res, boom)
		keda.PrependReactor("*", res, boom)
		dyn.PrependReactor("*", res, boom)
	}
	r, err := uncached.New(uncached.Config{
		Mapper:    restmapper.New(disc, restmapper.WithMinInterval(0)),
		Discovery: disc,
		Dynamic:   dyn,
		Kube:      kube,
		Keda:      keda,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Whatever a test reads, every LIST must have been a consistent read,
	// never one the API server's watch cache may answer with a state
	// older than etcd's.
	t.Cleanup(func() {
		for _, a := range append(kube.Actions(), keda.Actions()...) {
			if la, ok := a.(clienttesting.ListActionImpl); ok && (la.ListOptions.ResourceVersion != "" || la.ListOptions.ResourceVersionMatch != "") {
				t.Errorf("LIST of %s with resourceVersion %q, resourceVersionMatch %q: want a consistent read", la.GetResource().Resource, la.ListOptions.ResourceVersion, la.ListOptions.ResourceVersionMatch)
			}
		}
	})
	return r, &fakes{kube: kube, keda: keda, dyn: dyn}
}

func raw(t *testing.T, obj any) runtime.RawExtension {
	t.Helper()
	if obj == nil {
		return runtime.RawExtension{}
	}
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return runtime.RawExtension{Raw: b}
}

// request builds an admission request; old is nil for CREATE.
func request(t *testing.T, resource string, obj, old metav1.Object) *admissionv1.AdmissionRequest {
	t.Helper()
	req := &admissionv1.AdmissionRequest{
		UID:       "uid-1",
		Resource:  metav1.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: resource},
		Namespace: obj.GetNamespace(),
		Name:      obj.GetName(),
		Operation: admissionv1.Create,
		Object:    raw(t, obj),
	}
	if old != nil {
		req.Operation = admissionv1.Update
		req.OldObject = raw(t, old)
	}
	return req
}

// outcome is what a test expects of one admission.
type outcome struct {
	// denied lists substrings that must each appear in one problem
	// ("field: message"); empty means admitted.
	denied []string
	// warnings lists substrings that must each appear in one warning.
	warnings []string
	// noWarnings: the admission must carry no warning.
	noWarnings bool
	// internal: the validator must fail with an error that is not a
	// denial (the cluster could not be read).
	internal bool
}

func check(t *testing.T, want outcome, warnings []string, err error) {
	t.Helper()
	var denial *admission.Denial
	isDenial := errors.As(err, &denial)
	switch {
	case want.internal:
		if err == nil || isDenial {
			t.Fatalf("want an internal error, got %v", err)
		}
		return
	case len(want.denied) == 0:
		if err != nil {
			t.Fatalf("want admitted, got %v", err)
		}
	default:
		if !isDenial {
			t.Fatalf("want denied with %q, got %v", want.denied, err)
		}
		var problems []string
		for _, p := range denial.Problems {
			problems = append(problems, p.String())
		}
		for _, w := range want.denied {
			if !containsSub(problems, w) {
				t.Errorf("no problem contains %q; problems:\n  %s", w, strings.Join(problems, "\n  "))
			}
		}
		if len(problems) != len(want.denied) {
			t.Errorf("got %d problems, want %d:\n  %s", len(problems), len(want.denied), strings.Join(problems, "\n  "))
		}
	}
	for _, w := range want.warnings {
		if !containsSub(warnings, w) {
			t.Errorf("no warning contains %q; warnings:\n  %s", w, strings.Join(warnings, "\n  "))
		}
	}
	if want.noWarnings && len(warnings) > 0 {
		t.Errorf("want no warnings, got:\n  %s", strings.Join(warnings, "\n  "))
	}
}

func containsSub(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// validate runs v on req with a background context bounded by the test.
func validate(t *testing.T, v admission.Validator, req *admissionv1.AdmissionRequest) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	return v.Validate(ctx, req)
}

// Workloads.

func container(name string, requests, limits corev1.ResourceList) corev1.Container {
	return corev1.Container{Name: name, Image: "app", Resources: corev1.ResourceRequirements{Requests: requests, Limits: limits}}
}

func cpu(q string) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(q)}
}

func mem(q string) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(q)}
}

func deployment(name string, containers ...corev1.Container) *appsv1.Deployment {
	if len(containers) == 0 {
		containers = []corev1.Container{container("app", nil, nil)}
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: containers}}},
	}
}

func statefulSet(name string) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.StatefulSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{container("db", cpu("1"), nil)}}}},
	}
}

func widget(name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("example.com/v1")
	u.SetKind("Widget")
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

func limitRange(typ corev1.LimitType, defaults, defaultRequests corev1.ResourceList) *corev1.LimitRange {
	return &corev1.LimitRange{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "defaults"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{
			{Type: typ, Default: defaults, DefaultRequest: defaultRequests},
		}},
	}
}

// hpa returns an HPA on a Deployment; owner, when set, is the
// ScaledObject that owns it.
func hpa(name, target, owner string) *autoscalingv2.HorizontalPodAutoscaler {
	h := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: target},
			MaxReplicas:    10,
		},
	}
	if owner != "" {
		h.OwnerReferences = []metav1.OwnerReference{{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledObject", Name: owner, UID: "owner-uid"}}
		h.Labels = map[string]string{v1alpha1.ScaledObjectNameLabel: owner}
	}
	return h
}

func triggerAuth(name string, params ...string) *v1alpha1.TriggerAuthentication {
	ta := &v1alpha1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, p := range params {
		ta.Spec.SecretTargetRef = append(ta.Spec.SecretTargetRef, v1alpha1.AuthSecretTargetRef{Parameter: p, Name: "secret", Key: p})
	}
	return ta
}

func ptr[T any](v T) *T { return &v }
