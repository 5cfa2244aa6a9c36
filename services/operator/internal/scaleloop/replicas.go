package scaleloop

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	appslisters "k8s.io/client-go/listers/apps/v1"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
)

// Group resources whose replicas the loop reads from informers.
var (
	deployments  = schema.GroupResource{Group: "apps", Resource: "deployments"}
	statefulSets = schema.GroupResource{Group: "apps", Resource: "statefulsets"}
)

// InformerReplicas reads scale targets' replicas (and, with Counts, their
// ready replicas) from informer caches, so a poll costs no API request:
// Deployments and StatefulSets from typed informers, other kinds from
// Others' dynamic informers. Kinds without a cache, objects not in the
// cache yet, and every write go through Fallback (the /scale
// subresource). Writes are rare: only activation and deactivation.
type InformerReplicas struct {
	Deployments  appslisters.DeploymentLister
	StatefulSets appslisters.StatefulSetLister
	// Others caches the other kinds that ScaledObjects target; nil reads
	// them through Fallback.
	Others   *DynamicReplicas
	Fallback Replicas
}

// Get returns the target's spec.replicas (1 when unset, as the API server
// defaults it; for a custom resource, its /scale's spec.replicas).
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
		if t, ok := r.Others.lookup(namespace, gr, name); ok {
			return t.Spec, nil
		}
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

// ReplicaCounter reads a scale target's replica counts: its desired
// replicas (spec.replicas of its /scale) and its ready replicas, which the
// MetricsService's fallback needs (see metricsserver.ReplicasFunc).
type ReplicaCounter interface {
	Counts(ctx context.Context, namespace string, gr schema.GroupResource, name string) (current, ready int32, err error)
}

// Counts returns the target's spec.replicas (1 when unset) and its ready
// replicas (status.readyReplicas) from the informer caches for Deployments
// and StatefulSets, so a read costs no API request; other kinds cached by
// Others give their /scale's spec.replicas and ready replicas as
// DynamicReplicas reads them (status.readyReplicas, else the ready pods of
// their selector, else their /scale's status.replicas); kinds without a
// cache and objects not in it yet are read through Fallback, which must
// then be a ReplicaCounter (ScaleReplicas is).
func (r InformerReplicas) Counts(ctx context.Context, namespace string, gr schema.GroupResource, name string) (current, ready int32, err error) {
	var replicas *int32
	switch gr {
	case deployments:
		var d *appsv1.Deployment
		if d, err = r.Deployments.Deployments(namespace).Get(name); err == nil {
			replicas, ready = d.Spec.Replicas, d.Status.ReadyReplicas
		}
	case statefulSets:
		var s *appsv1.StatefulSet
		if s, err = r.StatefulSets.StatefulSets(namespace).Get(name); err == nil {
			replicas, ready = s.Spec.Replicas, s.Status.ReadyReplicas
		}
	default:
		if t, ok := r.Others.lookup(namespace, gr, name); ok {
			ready, err = r.Others.ready(ctx, namespace, gr, t)
			if err != nil {
				return 0, 0, err
			}
			return t.Spec, ready, nil
		}
		return r.fallbackCounts(ctx, namespace, gr, name)
	}
	if apierrors.IsNotFound(err) {
		return r.fallbackCounts(ctx, namespace, gr, name) // created after the cache's last event
	}
	if err != nil {
		return 0, 0, err
	}
	if replicas == nil {
		return 1, ready, nil
	}
	return *replicas, ready, nil
}

func (r InformerReplicas) fallbackCounts(ctx context.Context, namespace string, gr schema.GroupResource, name string) (int32, int32, error) {
	c, ok := r.Fallback.(ReplicaCounter)
	if !ok {
		return 0, 0, fmt.Errorf("the replica counts of %s %s/%s cannot be read: not in the informer caches", gr, namespace, name)
	}
	return c.Counts(ctx, namespace, gr, name)
}

// TargetReplicas returns the current and ready replicas of so's scale
// target (see Counts), the MetricsService's metricsserver.ReplicasFunc.
// It needs the target resolved by the controller (status.scaleTargetGVKR).
func (r InformerReplicas) TargetReplicas(ctx context.Context, so *v1alpha1.ScaledObject) (current, ready int32, err error) {
	gvkr := so.Status.ScaleTargetGVKR
	if gvkr == nil || so.Spec.ScaleTargetRef == nil {
		return 0, 0, errors.New("the scale target is not resolved yet")
	}
	return r.Counts(ctx, so.Namespace, gvkr.GroupResource(), so.Spec.ScaleTargetRef.Name)
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
