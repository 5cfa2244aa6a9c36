package scaleloop

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
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
