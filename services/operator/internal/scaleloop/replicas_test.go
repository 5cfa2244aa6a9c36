package scaleloop

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	appslisters "k8s.io/client-go/listers/apps/v1"
	scalefake "k8s.io/client-go/scale/fake"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
)

func TestInformerReplicas(t *testing.T) {
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "web", Image: "example.com/web:1"}},
		}}},
	}
	slim, err := SlimWorkload(deploy)
	if err != nil {
		t.Fatal(err)
	}
	d := slim.(*appsv1.Deployment)
	if len(d.Spec.Template.Spec.Containers) != 0 || len(d.ManagedFields) != 0 || *d.Spec.Replicas != 3 || d.Name != "web" {
		t.Fatalf("SlimWorkload kept %+v, want identity and replicas only", d)
	}
	unset, _ := SlimWorkload(&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"}})

	dIndexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	sIndexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	if err := dIndexer.Add(slim); err != nil {
		t.Fatal(err)
	}
	if err := sIndexer.Add(unset); err != nil {
		t.Fatal(err)
	}
	fallback := &fakeReplicas{n: 7}
	r := InformerReplicas{Deployments: appslisters.NewDeploymentLister(dIndexer), StatefulSets: appslisters.NewStatefulSetLister(sIndexer), Fallback: fallback}

	tests := map[string]struct {
		gr   schema.GroupResource
		name string
		want int32
	}{
		"Deployment from the cache":         {gr: deployments, name: "web", want: 3},
		"StatefulSet without replicas is 1": {gr: statefulSets, name: "db", want: 1},
		"not cached yet: through /scale":    {gr: deployments, name: "new", want: 7},
		"other kinds: through /scale":       {gr: schema.GroupResource{Group: "example.com", Resource: "widgets"}, name: "w", want: 7},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := r.Get(context.Background(), "shop", tc.gr, tc.name)
			if err != nil || got != tc.want {
				t.Errorf("Get() = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
	if err := r.Set(context.Background(), "shop", deployments, "web", 0); err != nil || fallback.n != 0 {
		t.Errorf("Set did not write through /scale: %v, fallback at %d", err, fallback.n)
	}
}

// countingReplicas is a /scale reader that also counts replicas.
type countingReplicas struct {
	fakeReplicas
	ready int32
	reads int
}

func (c *countingReplicas) Counts(context.Context, string, schema.GroupResource, string) (int32, int32, error) {
	c.reads++
	return c.n, c.ready, nil
}

func TestInformerReplicasCounts(t *testing.T) {
	dIndexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	sIndexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	web, _ := SlimWorkload(&appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](5)},
		Status:     appsv1.DeploymentStatus{Replicas: 5, ReadyReplicas: 3},
	})
	db, _ := SlimWorkload(&appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"},
		Status:     appsv1.StatefulSetStatus{Replicas: 1, ReadyReplicas: 1},
	})
	if err := dIndexer.Add(web); err != nil {
		t.Fatal(err)
	}
	if err := sIndexer.Add(db); err != nil {
		t.Fatal(err)
	}
	gvkr := func(group, kind, resource string) *v1alpha1.GroupVersionKindResource {
		return &v1alpha1.GroupVersionKindResource{Group: group, Version: "v1", Kind: kind, Resource: resource}
	}
	so := func(target string, g *v1alpha1.GroupVersionKindResource) *v1alpha1.ScaledObject {
		return &v1alpha1.ScaledObject{
			ObjectMeta: metav1.ObjectMeta{Name: "so", Namespace: "shop"},
			Spec:       v1alpha1.ScaledObjectSpec{ScaleTargetRef: &v1alpha1.ScaleTarget{Name: target}},
			Status:     v1alpha1.ScaledObjectStatus{ScaleTargetGVKR: g},
		}
	}
	tests := map[string]struct {
		so            *v1alpha1.ScaledObject
		plainFallback bool // a /scale reader that cannot count
		wantCurrent   int32
		wantReady     int32
		wantErr       string
		wantScale     bool // read through /scale
	}{
		"Deployment from the cache": {so: so("web", gvkr("apps", "Deployment", "deployments")), wantCurrent: 5, wantReady: 3},
		"StatefulSet from the cache, replicas unset": {
			so: so("db", gvkr("apps", "StatefulSet", "statefulsets")), wantCurrent: 1, wantReady: 1,
		},
		"not cached yet: through /scale": {so: so("new", gvkr("apps", "Deployment", "deployments")), wantCurrent: 7, wantReady: 6, wantScale: true},
		"other kinds: through /scale":    {so: so("w", gvkr("example.com", "Widget", "widgets")), wantCurrent: 7, wantReady: 6, wantScale: true},
		"other kinds, no counter": {
			so: so("w", gvkr("example.com", "Widget", "widgets")), plainFallback: true, wantErr: "cannot be read",
		},
		"target not resolved": {so: so("web", nil), wantErr: "not resolved"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			counter := &countingReplicas{fakeReplicas: fakeReplicas{n: 7}, ready: 6}
			r := InformerReplicas{Deployments: appslisters.NewDeploymentLister(dIndexer), StatefulSets: appslisters.NewStatefulSetLister(sIndexer), Fallback: counter}
			if tc.plainFallback {
				r.Fallback = &counter.fakeReplicas
			}
			current, ready, err := r.TargetReplicas(context.Background(), tc.so)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("TargetReplicas() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || current != tc.wantCurrent || ready != tc.wantReady {
				t.Errorf("TargetReplicas() = %d, %d, %v; want %d, %d", current, ready, err, tc.wantCurrent, tc.wantReady)
			}
			if (counter.reads > 0) != tc.wantScale {
				t.Errorf("read through /scale: %v, want %v", counter.reads > 0, tc.wantScale)
			}
		})
	}
}

func TestScaleReplicasCounts(t *testing.T) {
	tests := map[string]struct {
		selector  string
		readyPods func(context.Context, string, labels.Selector) (int32, error)
		want      int32
		wantErr   bool
	}{
		"ready pods of the selector": {
			selector: "app=widget",
			readyPods: func(_ context.Context, ns string, sel labels.Selector) (int32, error) {
				if ns != "shop" || sel.String() != "app=widget" {
					return 0, fmt.Errorf("counted %s in %s", sel, ns)
				}
				return 2, nil
			},
			want: 2,
		},
		"no pod counter: status.replicas": {selector: "app=widget", want: 4},
		"no selector: status.replicas":    {readyPods: func(context.Context, string, labels.Selector) (int32, error) { return 9, nil }, want: 4},
		"pods cannot be counted":          {selector: "app=widget", readyPods: func(context.Context, string, labels.Selector) (int32, error) { return 0, errors.New("forbidden") }, wantErr: true},
		"unparsable selector":             {selector: "app in (", readyPods: func(context.Context, string, labels.Selector) (int32, error) { return 9, nil }, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			client := &scalefake.FakeScaleClient{}
			client.AddReactor("get", "widgets", func(action core.Action) (bool, runtime.Object, error) {
				return true, &autoscalingv1.Scale{
					ObjectMeta: metav1.ObjectMeta{Name: action.(core.GetAction).GetName(), Namespace: action.GetNamespace()},
					Spec:       autoscalingv1.ScaleSpec{Replicas: 5},
					Status:     autoscalingv1.ScaleStatus{Replicas: 4, Selector: tc.selector},
				}, nil
			})
			current, ready, err := ScaleReplicas{Client: client, ReadyPods: tc.readyPods}.Counts(context.Background(), "shop", schema.GroupResource{Group: "example.com", Resource: "widgets"}, "w")
			if (err != nil) != tc.wantErr {
				t.Fatalf("Counts() error = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && (current != 5 || ready != tc.want) {
				t.Errorf("Counts() = %d, %d; want 5, %d", current, ready, tc.want)
			}
		})
	}
}
