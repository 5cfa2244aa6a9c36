package scaledjob

import (
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
)

// Indexes the controller adds to its Job and Pod informers.
const (
	// byScaledJob indexes Jobs by <namespace>/<value of the
	// scaledjob.keda.sh/name label>.
	byScaledJob = "ebb.scaledjob"
	// byOwner indexes Pods by the UID of their controller (their Job).
	byOwner = "ebb.owner"
)

// ListOptions restricts the Job and Pod informers the controller needs to
// the objects of ScaledJobs: those with the scaledjob.keda.sh/name label,
// which ebb (and KEDA) put on every Job of a ScaledJob and on its pod
// template. Pass it to the informer factory with WithTweakListOptions.
func ListOptions(o *metav1.ListOptions) {
	o.LabelSelector = v1alpha1.ScaledJobNameLabel
}

// SlimObject is the transform of the Job and Pod informers: it keeps what
// the controller reads and drops the rest (specs, container statuses,
// managedFields), so the caches stay small with many Jobs.
func SlimObject(obj any) (any, error) {
	switch o := obj.(type) {
	case *batchv1.Job:
		meta := slimMeta(o.ObjectMeta)
		// Of the labels and annotations, those the controller reads.
		meta.Labels = keep(o.Labels, v1alpha1.ScaledJobNameLabel)
		meta.Annotations = keep(o.Annotations, v1alpha1.ScaledJobGenerationAnnotation)
		return &batchv1.Job{
			ObjectMeta: meta,
			Status: batchv1.JobStatus{
				Conditions:     o.Status.Conditions,
				StartTime:      o.Status.StartTime,
				CompletionTime: o.Status.CompletionTime,
				Active:         o.Status.Active,
				Succeeded:      o.Status.Succeeded,
				Failed:         o.Status.Failed,
			},
		}, nil
	case *corev1.Pod:
		return &corev1.Pod{
			ObjectMeta: slimMeta(o.ObjectMeta),
			Status:     corev1.PodStatus{Phase: o.Status.Phase, Conditions: o.Status.Conditions},
		}, nil
	}
	return obj, nil
}

func slimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:              m.Name,
		Namespace:         m.Namespace,
		UID:               m.UID,
		ResourceVersion:   m.ResourceVersion,
		CreationTimestamp: m.CreationTimestamp,
		DeletionTimestamp: m.DeletionTimestamp,
		OwnerReferences:   m.OwnerReferences,
	}
}

// keep returns the entry key of m, nil when absent.
func keep(m map[string]string, key string) map[string]string {
	if v, ok := m[key]; ok {
		return map[string]string{key: v}
	}
	return nil
}

// jobIndexers index Jobs by ScaledJob.
var jobIndexers = cache.Indexers{byScaledJob: func(obj any) ([]string, error) {
	j, ok := obj.(*batchv1.Job)
	if !ok {
		return nil, fmt.Errorf("not a Job: %T", obj)
	}
	name, ok := j.Labels[v1alpha1.ScaledJobNameLabel]
	if !ok {
		return nil, nil
	}
	return []string{j.Namespace + "/" + name}, nil
}}

// podIndexers index Pods by their controller's UID.
var podIndexers = cache.Indexers{byOwner: func(obj any) ([]string, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, fmt.Errorf("not a Pod: %T", obj)
	}
	ref := metav1.GetControllerOfNoCopy(p)
	if ref == nil {
		return nil, nil
	}
	return []string{string(ref.UID)}, nil
}}
