package uncached

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedafake "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned/fake"
	"github.com/ebb-autoscaler/ebb/pkg/restmapper"
)

const ns = "team-a"

var (
	deploymentGVK = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	widgetGVK     = schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}
	gadgetGVK     = schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Gadget"}
)

func appsV1() *metav1.APIResourceList {
	return &metav1.APIResourceList{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
		{Name: "deployments", SingularName: "deployment", Namespaced: true, Kind: "Deployment"},
		{Name: "deployments/scale", Namespaced: true, Group: "autoscaling", Version: "v1", Kind: "Scale"},
		{Name: "deployments/status", Namespaced: true, Kind: "Deployment"},
	}}
}

// exampleV1 serves widgets (with /scale) and gadgets (without).
func exampleV1(withWidgets bool) *metav1.APIResourceList {
	l := &metav1.APIResourceList{GroupVersion: "example.com/v1", APIResources: []metav1.APIResource{
		{Name: "gadgets", SingularName: "gadget", Namespaced: true, Kind: "Gadget"},
	}}
	if withWidgets {
		l.APIResources = append(l.APIResources,
			metav1.APIResource{Name: "widgets", SingularName: "widget", Namespaced: true, Kind: "Widget"},
			metav1.APIResource{Name: "widgets/scale", Namespaced: true, Group: "autoscaling", Version: "v1", Kind: "Scale"})
	}
	return l
}

type fixture struct {
	reader    *Reader
	reg       *prometheus.Registry
	discovery *fakediscovery.FakeDiscovery
	dynamic   *dynamicfake.FakeDynamicClient
	kube      *kubefake.Clientset
	keda      *kedafake.Clientset
}

func newFixture(t *testing.T, kubeObjs, kedaObjs, dynObjs []runtime.Object) *fixture {
	t.Helper()
	kube := kubefake.NewClientset(kubeObjs...)
	disc := kube.Discovery().(*fakediscovery.FakeDiscovery)
	disc.Resources = []*metav1.APIResourceList{appsV1(), exampleV1(true)}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	dyn := dynamicfake.NewSimpleDynamicClient(scheme, dynObjs...)
	keda := kedafake.NewClientset(kedaObjs...)
	r, err := New(Config{
		Mapper:    restmapper.New(disc, restmapper.WithMinInterval(0)),
		Discovery: disc,
		Dynamic:   dyn,
		Kube:      kube,
		Keda:      keda,
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := r.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	// Whatever a test reads, every LIST must have been a consistent read.
	t.Cleanup(func() {
		for _, a := range append(kube.Actions(), keda.Actions()...) {
			if la, ok := a.(clienttesting.ListActionImpl); ok && (la.ListOptions.ResourceVersion != "" || la.ListOptions.ResourceVersionMatch != "") {
				t.Errorf("LIST of %s with resourceVersion %q, resourceVersionMatch %q: want a consistent read", la.GetResource().Resource, la.ListOptions.ResourceVersion, la.ListOptions.ResourceVersionMatch)
			}
		}
	})
	return &fixture{reader: r, reg: reg, discovery: disc, dynamic: dyn, kube: kube, keda: keda}
}

// observations returns "operation/result=count" for every series of the
// read histogram, sorted.
func (f *fixture) observations(t *testing.T) []string {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != "ebb_uncached_read_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out = append(out, fmt.Sprintf("%s/%s=%d", labels["operation"], labels["result"], m.GetHistogram().GetSampleCount()))
		}
	}
	sort.Strings(out)
	return out
}

func deployment(name string, containers ...corev1.Container) *appsv1.Deployment {
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
			Spec: corev1.PodSpec{Containers: containers},
		}},
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

func TestNewNeedsEveryClient(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New with no clients: want an error")
	}
}

func TestScaleTarget(t *testing.T) {
	tests := map[string]struct {
		gvk          schema.GroupVersionKind
		name         string
		withTemplate bool
		wantNoKind   bool
		want         Target
		wantCPU      string // the template's first container's cpu request
		wantReads    []string
	}{
		"existing deployment": {
			gvk: deploymentGVK, name: "web",
			want:      Target{Scalable: true, Exists: true},
			wantReads: []string{"discover_scale/success=1", "get_scale/success=1", "resolve_kind/success=1"},
		},
		"missing deployment is no error": {
			gvk: deploymentGVK, name: "nope",
			want:      Target{Scalable: true, Exists: false},
			wantReads: []string{"discover_scale/success=1", "get_scale/not_found=1", "resolve_kind/success=1"},
		},
		"custom resource with /scale": {
			gvk: widgetGVK, name: "w1",
			want:      Target{Scalable: true, Exists: true},
			wantReads: []string{"discover_scale/success=1", "get_scale/success=1", "resolve_kind/success=1"},
		},
		// The GET goes out with discovery; its answer does not count.
		"kind without /scale": {
			gvk: gadgetGVK, name: "g1",
			want:      Target{Scalable: false},
			wantReads: []string{"discover_scale/success=1", "get_scale/not_found=1", "resolve_kind/success=1"},
		},
		"kind not served": {
			gvk: schema.GroupVersionKind{Group: "nowhere.example", Version: "v1", Kind: "Thing"}, name: "x",
			wantNoKind: true,
			wantReads:  []string{"resolve_kind/no_match=1"},
		},
		"version not served": {
			gvk: schema.GroupVersionKind{Group: "apps", Version: "v1beta9", Kind: "Deployment"}, name: "web",
			wantNoKind: true,
			wantReads:  []string{"resolve_kind/no_match=1"},
		},
		"with the template": {
			gvk: deploymentGVK, name: "web", withTemplate: true,
			want:      Target{Scalable: true, Exists: true},
			wantCPU:   "100m",
			wantReads: []string{"discover_scale/success=1", "get_target/success=1", "resolve_kind/success=1"},
		},
		"with the template, missing": {
			gvk: deploymentGVK, name: "nope", withTemplate: true,
			want:      Target{Scalable: true, Exists: false},
			wantReads: []string{"discover_scale/success=1", "get_target/not_found=1", "resolve_kind/success=1"},
		},
		"with the template, kind without one": {
			gvk: widgetGVK, name: "w1", withTemplate: true,
			want:      Target{Scalable: true, Exists: true},
			wantReads: []string{"discover_scale/success=1", "get_target/success=1", "resolve_kind/success=1"},
		},
	}
	web := deployment("web", corev1.Container{Name: "app", Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
	}})
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			f := newFixture(t, nil, nil, []runtime.Object{web, widget("w1")})
			got, err := f.reader.ScaleTarget(ctx, ns, tc.name, tc.gvk, tc.withTemplate)
			if tc.wantNoKind {
				if !meta.IsNoMatchError(err) {
					t.Fatalf("ScaleTarget: want a no-match error, got %v", err)
				}
			} else {
				if err != nil {
					t.Fatalf("ScaleTarget: %v", err)
				}
				if got.Scalable != tc.want.Scalable || got.Exists != tc.want.Exists {
					t.Errorf("ScaleTarget = scalable %v exists %v, want scalable %v exists %v", got.Scalable, got.Exists, tc.want.Scalable, tc.want.Exists)
				}
				if got.Mapping.GroupVersionKind != tc.gvk {
					t.Errorf("mapping kind = %v, want %v", got.Mapping.GroupVersionKind, tc.gvk)
				}
				switch {
				case tc.wantCPU == "" && got.Template != nil:
					t.Errorf("Template = %+v, want none", got.Template)
				case tc.wantCPU != "" && (got.Template == nil || len(got.Template.Spec.Containers) != 1):
					t.Errorf("Template = %+v, want one container", got.Template)
				case tc.wantCPU != "":
					if cpu := got.Template.Spec.Containers[0].Resources.Requests.Cpu().String(); cpu != tc.wantCPU {
						t.Errorf("cpu request = %s, want %s", cpu, tc.wantCPU)
					}
				}
			}
			if got := f.observations(t); !slices.Equal(got, tc.wantReads) {
				t.Errorf("reads = %v, want %v", got, tc.wantReads)
			}
			for _, a := range f.dynamic.Actions() {
				if !tc.withTemplate && a.GetVerb() == "get" && a.GetSubresource() != "scale" {
					t.Errorf("ScaleTarget read %s without the scale subresource: it must need only get on <resource>/scale", a.GetResource())
				}
			}
		})
	}
}

// Discovery and the GET of the target are one round trip, not two: each
// waits here until the other has started.
func TestScaleTargetAsksAtOnce(t *testing.T) {
	for _, withTemplate := range []bool{false, true} {
		t.Run(fmt.Sprintf("withTemplate=%v", withTemplate), func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			f := newFixture(t, nil, nil, []runtime.Object{deployment("web")})
			// Resolve the kind first: the mapper's discovery is not
			// what is measured.
			if _, err := f.reader.ScaleTarget(ctx, ns, "web", deploymentGVK, withTemplate); err != nil {
				t.Fatal(err)
			}
			discovering, getting := make(chan struct{}), make(chan struct{})
			meet := func(mine, theirs chan struct{}) {
				close(mine)
				select {
				case <-theirs:
				case <-time.After(5 * time.Second):
					t.Error("discovery and the GET of the target did not run at the same time")
				}
			}
			f.kube.PrependReactor("get", "resource", func(clienttesting.Action) (bool, runtime.Object, error) {
				meet(discovering, getting)
				return false, nil, nil
			})
			f.dynamic.PrependReactor("get", "deployments", func(clienttesting.Action) (bool, runtime.Object, error) {
				meet(getting, discovering)
				return false, nil, nil
			})
			got, err := f.reader.ScaleTarget(ctx, ns, "web", deploymentGVK, withTemplate)
			if err != nil || !got.Exists {
				t.Fatalf("ScaleTarget = %+v, %v; want the Deployment", got, err)
			}
		})
	}
}

// A kind installed after the Reader's first lookup is found: the mapper
// re-discovers on the miss, and discovery is asked again for /scale.
func TestScaleTargetKindInstalledLater(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	f := newFixture(t, nil, nil, []runtime.Object{widget("w1")})
	f.discovery.Resources = []*metav1.APIResourceList{appsV1(), exampleV1(false)}

	if _, err := f.reader.ScaleTarget(ctx, ns, "w1", widgetGVK, false); !meta.IsNoMatchError(err) {
		t.Fatalf("before the CRD: want a no-match error, got %v", err)
	}
	f.discovery.Resources = []*metav1.APIResourceList{appsV1(), exampleV1(true)}
	got, err := f.reader.ScaleTarget(ctx, ns, "w1", widgetGVK, false)
	if err != nil {
		t.Fatalf("after the CRD: %v", err)
	}
	if !got.Scalable || !got.Exists {
		t.Errorf("after the CRD: scalable %v exists %v, want both", got.Scalable, got.Exists)
	}
}

// A kind whose CRD was deleted after the mapper learnt it is not served.
func TestScaleTargetKindRemoved(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	f := newFixture(t, nil, nil, []runtime.Object{widget("w1")})
	if _, err := f.reader.ScaleTarget(ctx, ns, "w1", widgetGVK, false); err != nil {
		t.Fatalf("before the removal: %v", err)
	}
	f.discovery.Resources = []*metav1.APIResourceList{appsV1()}
	if _, err := f.reader.ScaleTarget(ctx, ns, "w1", widgetGVK, false); !meta.IsNoMatchError(err) {
		t.Fatalf("after the removal: want a no-match error, got %v", err)
	}
	// The mapper forgot the kind: the next lookup misses at once.
	if got := f.observations(t); !slices.Contains(got, "discover_scale/not_found=1") {
		t.Errorf("reads = %v, want a not_found discovery", got)
	}
	if _, err := f.reader.ScaleTarget(ctx, ns, "w1", widgetGVK, false); !meta.IsNoMatchError(err) {
		t.Fatalf("second lookup: want a no-match error, got %v", err)
	}
	if got := f.observations(t); !slices.Contains(got, "resolve_kind/no_match=1") {
		t.Errorf("reads = %v, want the second lookup to miss in the mapper", got)
	}
}

// A failed read is an error, never "does not exist".
func TestScaleTargetErrorIsNotNotFound(t *testing.T) {
	for _, withTemplate := range []bool{false, true} {
		t.Run(fmt.Sprintf("withTemplate=%v", withTemplate), func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			f := newFixture(t, nil, nil, nil)
			f.dynamic.PrependReactor("get", "deployments", func(clienttesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments/scale"}, "web", errors.New("RBAC"))
			})
			got, err := f.reader.ScaleTarget(ctx, ns, "web", deploymentGVK, withTemplate)
			if err == nil {
				t.Fatalf("ScaleTarget = %+v, want an error", got)
			}
			if apierrors.IsNotFound(err) || !apierrors.IsForbidden(err) {
				t.Errorf("error = %v, want the Forbidden error wrapped", err)
			}
		})
	}
}

// The GET of a kind without /scale, asked with discovery, fails as it
// may: the answer is that the kind has no /scale, not the GET's error.
func TestScaleTargetWithoutScaleIgnoresTheGet(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	f := newFixture(t, nil, nil, nil)
	f.dynamic.PrependReactor("get", "gadgets", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "example.com", Resource: "gadgets"}, "g1", errors.New("RBAC"))
	})
	got, err := f.reader.ScaleTarget(ctx, ns, "g1", gadgetGVK, true)
	if err != nil || got.Scalable {
		t.Fatalf("ScaleTarget = %+v, %v; want not scalable and no error", got, err)
	}
}

func so(name, target, kind string) *v1alpha1.ScaledObject {
	return &v1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.ScaledObjectSpec{ScaleTargetRef: &v1alpha1.ScaleTarget{Name: target, Kind: kind}},
	}
}

func names(sos []v1alpha1.ScaledObject) []string {
	var out []string
	for _, s := range sos {
		out = append(out, s.Name)
	}
	sort.Strings(out)
	return out
}

func TestScaledObjectsForTarget(t *testing.T) {
	objs := []runtime.Object{
		so("a", "web", ""), so("b", "web", "StatefulSet"), so("c", "api", ""), so("self", "web", ""),
		&v1alpha1.ScaledObject{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "d"},
			Spec: v1alpha1.ScaledObjectSpec{ScaleTargetRef: &v1alpha1.ScaleTarget{Name: "web"}}},
	}
	notSelf := func(s *v1alpha1.ScaledObject) bool { return s.Name != "self" }
	tests := map[string]struct {
		objs        []runtime.Object
		refuse      bool
		want        []string
		wantRefused bool
		wantReads   []string
	}{
		"field selector": {
			objs:      objs,
			want:      []string{"a", "b"},
			wantReads: []string{"list_scaledobjects_by_target/success=1"},
		},
		"selector refused: list and filter": {
			objs:        objs,
			refuse:      true,
			want:        []string{"a", "b"},
			wantRefused: true,
			wantReads:   []string{"list_scaledobjects/success=1", "list_scaledobjects_by_target/bad_request=1"},
		},
		"nothing but itself": {
			objs:      []runtime.Object{so("self", "web", "")},
			wantReads: []string{"list_scaledobjects_by_target/success=1"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			f := newFixture(t, nil, tc.objs, nil)
			var selectors []string
			f.keda.PrependReactor("list", "scaledobjects", func(a clienttesting.Action) (bool, runtime.Object, error) {
				sel := a.(clienttesting.ListActionImpl).GetListRestrictions().Fields.String()
				selectors = append(selectors, sel)
				if tc.refuse && sel != "" {
					return true, nil, apierrors.NewBadRequest(`Unable to find "keda.sh/v1alpha1, Resource=scaledobjects" that match label selector "", field selector "spec.scaleTargetRef.name=web": field label not supported: spec.scaleTargetRef.name`)
				}
				return false, nil, nil
			})
			got, refused, err := f.reader.ScaledObjectsForTarget(ctx, ns, "web", notSelf)
			if err != nil {
				t.Fatalf("ScaledObjectsForTarget: %v", err)
			}
			if !slices.Equal(names(got), tc.want) || refused != tc.wantRefused {
				t.Errorf("ScaledObjectsForTarget = %v refused %v, want %v refused %v", names(got), refused, tc.want, tc.wantRefused)
			}
			if len(selectors) == 0 || selectors[0] != "spec.scaleTargetRef.name=web" {
				t.Errorf("first LIST used field selector %q, want spec.scaleTargetRef.name=web", selectors)
			}
			if got := f.observations(t); !slices.Equal(got, tc.wantReads) {
				t.Errorf("reads = %v, want %v", got, tc.wantReads)
			}
		})
	}
}

// pages serves a LIST of n objects in pages of two, with continue tokens
// "page-<start>" and resourceVersion "100", each page built by page; it
// records the options of each request in opts.
func pages(n int, opts *[]metav1.ListOptions, page func(start, end int, lm metav1.ListMeta) runtime.Object) clienttesting.ReactionFunc {
	return func(a clienttesting.Action) (bool, runtime.Object, error) {
		o := a.(clienttesting.ListActionImpl).ListOptions
		*opts = append(*opts, o)
		start := 0
		if o.Continue != "" {
			fmt.Sscanf(o.Continue, "page-%d", &start)
		}
		end := min(start+2, n)
		lm := metav1.ListMeta{ResourceVersion: "100"}
		if end < n {
			lm.Continue = fmt.Sprintf("page-%d", end)
		}
		return true, page(start, end, lm), nil
	}
}

// pagedHPAs serves the HPA list all in pages of two.
func pagedHPAs(all []autoscalingv2.HorizontalPodAutoscaler, opts *[]metav1.ListOptions) clienttesting.ReactionFunc {
	return pages(len(all), opts, func(start, end int, lm metav1.ListMeta) runtime.Object {
		return &autoscalingv2.HorizontalPodAutoscalerList{ListMeta: lm, Items: all[start:end]}
	})
}

// Every LIST is a consistent read: neither resourceVersion nor
// resourceVersionMatch is set, on a first page or a continued one, on the
// first call or a later one (which must not ask for a state "not older"
// than an earlier LIST's, served from the API server's watch cache
// without waiting for etcd, and possibly stale). A continued page carries
// the continue token, with the first page's selectors and limit.
func TestListsAreConsistent(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	f := newFixture(t, nil, nil, nil)
	var hpaOpts, soOpts, lrOpts []metav1.ListOptions
	f.kube.PrependReactor("list", "horizontalpodautoscalers", pagedHPAs(make([]autoscalingv2.HorizontalPodAutoscaler, 3), &hpaOpts))
	pagedSOs := pages(3, &soOpts, func(start, end int, lm metav1.ListMeta) runtime.Object {
		return &v1alpha1.ScaledObjectList{ListMeta: lm, Items: make([]v1alpha1.ScaledObject, end-start)}
	})
	f.keda.PrependReactor("list", "scaledobjects", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if o := a.(clienttesting.ListActionImpl).ListOptions; o.FieldSelector != "" {
			soOpts = append(soOpts, o)
			return true, &v1alpha1.ScaledObjectList{ListMeta: metav1.ListMeta{ResourceVersion: "100"}}, nil
		}
		return pagedSOs(a)
	})
	f.kube.PrependReactor("list", "limitranges", func(a clienttesting.Action) (bool, runtime.Object, error) {
		lrOpts = append(lrOpts, a.(clienttesting.ListActionImpl).ListOptions)
		return false, nil, nil
	})

	const unlabelled = "!" + v1alpha1.ScaledObjectNameLabel
	for range 2 {
		if _, err := f.reader.HPAs(ctx, ns, unlabelled, nil); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.reader.ScaledObjectsForTarget(ctx, ns, "web", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := f.reader.ScaledObjects(ctx, ns, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := f.reader.LimitRanges(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}

	for _, o := range slices.Concat(hpaOpts, soOpts, lrOpts) {
		if o.ResourceVersion != "" || o.ResourceVersionMatch != "" {
			t.Errorf("LIST %+v: resourceVersion %q, resourceVersionMatch %q; want both unset, a consistent read", o, o.ResourceVersion, o.ResourceVersionMatch)
		}
	}
	hpaPages := []metav1.ListOptions{
		{LabelSelector: unlabelled, Limit: PageSize},
		{LabelSelector: unlabelled, Limit: PageSize, Continue: "page-2"},
	}
	if want := slices.Concat(hpaPages, hpaPages); !reflect.DeepEqual(hpaOpts, want) {
		t.Errorf("HPA LISTs = %+v, want %+v", hpaOpts, want)
	}
	soLists := []metav1.ListOptions{
		{FieldSelector: TargetNameField + "=web"},
		{Limit: PageSize},
		{Limit: PageSize, Continue: "page-2"},
	}
	if want := slices.Concat(soLists, soLists); !reflect.DeepEqual(soOpts, want) {
		t.Errorf("ScaledObject LISTs = %+v, want %+v", soOpts, want)
	}
	if want := []metav1.ListOptions{{}, {}}; !reflect.DeepEqual(lrOpts, want) {
		t.Errorf("LimitRange LISTs = %+v, want %+v", lrOpts, want)
	}
}

func TestHPAsPagesAndFilters(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	var all []autoscalingv2.HorizontalPodAutoscaler
	for i := range 5 {
		all = append(all, autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("hpa-%d", i)},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{
				Kind: "Deployment", Name: []string{"web", "api"}[i%2], APIVersion: "apps/v1"}},
		})
	}
	f := newFixture(t, nil, nil, nil)
	var opts []metav1.ListOptions
	f.kube.PrependReactor("list", "horizontalpodautoscalers", pagedHPAs(all, &opts))

	got, err := f.reader.HPAs(ctx, ns, "", func(h *autoscalingv2.HorizontalPodAutoscaler) bool {
		return h.Spec.ScaleTargetRef.Name == "web"
	})
	if err != nil {
		t.Fatalf("HPAs: %v", err)
	}
	var gotNames []string
	for _, h := range got {
		gotNames = append(gotNames, h.Name)
	}
	if want := []string{"hpa-0", "hpa-2", "hpa-4"}; !slices.Equal(gotNames, want) {
		t.Errorf("HPAs = %v, want %v", gotNames, want)
	}
	var limits []int64
	for _, o := range opts {
		limits = append(limits, o.Limit)
	}
	if want := []int64{PageSize, PageSize, PageSize}; !slices.Equal(limits, want) {
		t.Errorf("page limits = %v, want %v", limits, want)
	}
	// The LIST's answer is the answer: nothing is read again.
	if got, want := f.observations(t), []string{"list_hpas/success=3"}; !slices.Equal(got, want) {
		t.Errorf("reads = %v, want %v", got, want)
	}
}

// HPA reads one HPA by GET; a missing one is nil, no error, and recorded
// as not_found.
func TestHPA(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	f := newFixture(t, []runtime.Object{&autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "keda-hpa-web"}}}, nil, nil)
	if h, err := f.reader.HPA(ctx, ns, "keda-hpa-web"); err != nil || h == nil || h.Name != "keda-hpa-web" {
		t.Errorf("HPA keda-hpa-web = %v, %v; want it", h, err)
	}
	if h, err := f.reader.HPA(ctx, ns, "missing"); err != nil || h != nil {
		t.Errorf("HPA missing = %v, %v; want nil and no error", h, err)
	}
	if got, want := f.observations(t), []string{"get_hpa/not_found=1", "get_hpa/success=1"}; !slices.Equal(got, want) {
		t.Errorf("reads = %v, want %v", got, want)
	}
}

func TestScaledObjectsPages(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	f := newFixture(t, nil, []runtime.Object{so("a", "x", ""), so("b", "y", ""), so("c", "z", "")}, nil)
	got, err := f.reader.ScaledObjects(ctx, ns, func(s *v1alpha1.ScaledObject) bool { return s.Name != "b" })
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "c"}; !slices.Equal(names(got), want) {
		t.Errorf("ScaledObjects = %v, want %v", names(got), want)
	}
}

func TestReadsThatFail(t *testing.T) {
	boom := errors.New("connection refused")
	tests := map[string]struct {
		resource string
		kedaSide bool
		read     func(context.Context, *Reader) error
		wantOp   string
	}{
		"limit ranges": {resource: "limitranges", wantOp: "list_limitranges/error=1",
			read: func(ctx context.Context, r *Reader) error { _, err := r.LimitRanges(ctx, ns); return err }},
		"hpas": {resource: "horizontalpodautoscalers", wantOp: "list_hpas/error=1",
			read: func(ctx context.Context, r *Reader) error { _, err := r.HPAs(ctx, ns, "", nil); return err }},
		"hpa": {resource: "horizontalpodautoscalers", wantOp: "get_hpa/error=1",
			read: func(ctx context.Context, r *Reader) error { _, err := r.HPA(ctx, ns, "keda-hpa-web"); return err }},
		"scaled objects": {resource: "scaledobjects", kedaSide: true, wantOp: "list_scaledobjects/error=1",
			read: func(ctx context.Context, r *Reader) error { _, err := r.ScaledObjects(ctx, ns, nil); return err }},
		"scaled objects by target": {resource: "scaledobjects", kedaSide: true, wantOp: "list_scaledobjects_by_target/error=1",
			read: func(ctx context.Context, r *Reader) error {
				_, _, err := r.ScaledObjectsForTarget(ctx, ns, "web", nil)
				return err
			}},
		"trigger authentication": {resource: "triggerauthentications", kedaSide: true, wantOp: "get_triggerauthentication/error=1",
			read: func(ctx context.Context, r *Reader) error {
				_, err := r.TriggerAuthentication(ctx, ns, "ta")
				return err
			}},
		"cluster trigger authentication": {resource: "clustertriggerauthentications", kedaSide: true, wantOp: "get_clustertriggerauthentication/error=1",
			read: func(ctx context.Context, r *Reader) error {
				_, err := r.ClusterTriggerAuthentication(ctx, "cta")
				return err
			}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			f := newFixture(t, nil, nil, nil)
			react := func(clienttesting.Action) (bool, runtime.Object, error) { return true, nil, boom }
			if tc.kedaSide {
				f.keda.PrependReactor("*", tc.resource, react)
			} else {
				f.kube.PrependReactor("*", tc.resource, react)
			}
			err := tc.read(ctx, f.reader)
			if !errors.Is(err, boom) {
				t.Fatalf("want the read's error wrapped, got %v", err)
			}
			if got := f.observations(t); !slices.Equal(got, []string{tc.wantOp}) {
				t.Errorf("reads = %v, want %v", got, tc.wantOp)
			}
		})
	}
}

func TestGets(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	f := newFixture(t,
		[]runtime.Object{&corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "defaults"}}},
		[]runtime.Object{
			&v1alpha1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ta"}},
			&v1alpha1.ClusterTriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "cta"}},
		}, nil)
	if lrs, err := f.reader.LimitRanges(ctx, ns); err != nil || len(lrs) != 1 {
		t.Errorf("LimitRanges = %v, %v; want one", lrs, err)
	}
	if ta, err := f.reader.TriggerAuthentication(ctx, ns, "ta"); err != nil || ta.Name != "ta" {
		t.Errorf("TriggerAuthentication = %v, %v", ta, err)
	}
	if _, err := f.reader.TriggerAuthentication(ctx, ns, "missing"); !apierrors.IsNotFound(err) {
		t.Errorf("missing TriggerAuthentication: want NotFound, got %v", err)
	}
	if cta, err := f.reader.ClusterTriggerAuthentication(ctx, "cta"); err != nil || cta.Name != "cta" {
		t.Errorf("ClusterTriggerAuthentication = %v, %v", cta, err)
	}
	got := f.observations(t)
	for _, want := range []string{"get_clustertriggerauthentication/success=1", "get_triggerauthentication/not_found=1", "get_triggerauthentication/success=1", "list_limitranges/success=1"} {
		if !slices.Contains(got, want) {
			t.Errorf("reads = %v, want %s among them", got, want)
		}
	}
	// Nothing is watched, ever.
	for _, a := range append(f.kube.Actions(), f.keda.Actions()...) {
		if a.GetVerb() == "watch" {
			t.Errorf("the Reader watched %s", a.GetResource())
		}
	}
	if s := strings.Join(got, ","); strings.Contains(s, "watch") {
		t.Errorf("unexpected watch read: %s", s)
	}
}
