package app

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// podCountTimeout bounds one count of a kubernetes-workload trigger.
const podCountTimeout = 10 * time.Second

// podCounter counts the pods kubernetes-workload triggers select with one
// LIST per poll, filtered by the API server and served from its watch
// cache (resourceVersion 0): the operator keeps no cache of every pod in
// the cluster for the few objects that use this trigger.
type podCounter struct{ client kubernetes.Interface }

// CountPods counts the pods in namespace ("" for all) matching selector
// that have not finished (neither Succeeded nor Failed), as KEDA counts.
func (p podCounter) CountPods(namespace string, selector labels.Selector) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), podCountTimeout)
	defer cancel()
	pods, err := p.client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String(), ResourceVersion: "0"})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, pod := range pods.Items {
		if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
			n++
		}
	}
	return n, nil
}

// CountReadyPods counts the running and ready pods in namespace matching
// selector, the ready replicas of a scale target that is neither a
// Deployment nor a StatefulSet (as KEDA counts them for a fallback), with
// one LIST served from the API server's watch cache.
func (p podCounter) CountReadyPods(ctx context.Context, namespace string, selector labels.Selector) (int32, error) {
	ctx, cancel := context.WithTimeout(ctx, podCountTimeout)
	defer cancel()
	pods, err := p.client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String(), ResourceVersion: "0"})
	if err != nil {
		return 0, err
	}
	var n int32
	for i := range pods.Items {
		if pod := &pods.Items[i]; pod.Status.Phase == corev1.PodRunning && podReady(pod) {
			n++
		}
	}
	return n, nil
}

// podReady reports whether pod's Ready condition is True.
func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
