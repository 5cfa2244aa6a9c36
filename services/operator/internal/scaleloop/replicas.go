package scaleloop

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	appslisters "k8s.io/client-go/listers/apps/v1"
)

// Group resources whose replicas the loop reads from informers.
var (
	deployments  = schema.GroupResource{Group: "apps", Resource: "deployments"}
	statefulSets = schema.GroupResource{Group: "apps", Resource: "statefulsets"}
)

// InformerReplicas reads Deployments' and StatefulSets' replicas from
// informer caches, so a poll costs no API request; other kinds, objects not
// in the cache yet, and every write go through Fallback (the /scale
// subresource). Writes are rare: only activation and deactivation.
type InformerReplicas struct {
	Deployments  appslisters.DeploymentLister
	StatefulSets appslisters.StatefulSetLister
	Fallback     Replicas
}

// Get returns the target's spec.replicas (1 when unset, as the API server
// defaults it).
func (r InformerReplicas) Get(ctx context.Context, namespace string, gr schema.GroupResource, name string) (int32, error) {
	var replicas *int32
	var err error
	switch gr {
	case deployments:
		var d *appsv1.Deployment
		if d, err = r.Deployments.Deployments(namespace).Get(name); err == nil {
			replicas = d.Spec.Replicas
		}
	case statefulSets:
		var s *appsv1.StatefulSet
		if s, err = r.StatefulSets.StatefulSets(namespace).Get(name); err == nil {
			replicas = s.Spec.Replicas
		}
	default:
		return r.Fallback.Get(ctx, namespace, gr, name)
	}
	if apierrors.IsNotFound(err) {
		return r.Fallback.Get(ctx, namespace, gr, name) // created after the cache's last event
	}
	if err != nil {
		return 0, err
	}
	if replicas == nil {
		return 1, nil
	}
	return *replicas, nil
}

// Set writes through Fallback.
func (r InformerReplicas) Set(ctx context.Context, namespace string, gr schema.GroupResource, name string, replicas int32) error {
	return r.Fallback.Set(ctx, namespace, gr, name, replicas)
}

// SlimWorkload is an informer transform for Deployments and StatefulSets
// that keeps only what the scale loop reads (identity and replicas): the
// pod template, often most of the object, is dropped, so caching every
// workload costs little.
func SlimWorkload(obj any) (any, error) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return &appsv1.Deployment{
			ObjectMeta: slimMeta(o.ObjectMeta),
			Spec:       appsv1.DeploymentSpec{Replicas: o.Spec.Replicas},
			Status:     appsv1.DeploymentStatus{Replicas: o.Status.Replicas, ReadyReplicas: o.Status.ReadyReplicas},
		}, nil
	case *appsv1.StatefulSet:
		return &appsv1.StatefulSet{
			ObjectMeta: slimMeta(o.ObjectMeta),
			Spec:       appsv1.StatefulSetSpec{Replicas: o.Spec.Replicas},
			Status:     appsv1.StatefulSetStatus{Replicas: o.Status.Replicas, ReadyReplicas: o.Status.ReadyReplicas},
		}, nil
	}
	return obj, nil
}

func slimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion, Generation: m.Generation}
}
