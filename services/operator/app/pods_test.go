package app

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes/fake"
)

func TestPodCounter(t *testing.T) {
	pod := func(ns, name, app string, phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": app}}, Status: corev1.PodStatus{Phase: phase}}
	}
	client := fake.NewClientset(
		pod("shop", "a", "worker", corev1.PodRunning),
		pod("shop", "b", "worker", corev1.PodPending),
		pod("shop", "c", "worker", corev1.PodSucceeded),
		pod("shop", "d", "worker", corev1.PodFailed),
		pod("shop", "e", "web", corev1.PodRunning),
		pod("other", "f", "worker", corev1.PodRunning),
	)
	tests := map[string]struct {
		namespace string
		want      int
	}{
		"one namespace, finished pods left out": {namespace: "shop", want: 2},
		"all namespaces":                        {namespace: "", want: 3},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := podCounter{client: client}.CountPods(tc.namespace, labels.SelectorFromSet(labels.Set{"app": "worker"}))
			if err != nil || got != tc.want {
				t.Errorf("CountPods() = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}
