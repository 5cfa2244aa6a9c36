package scaler

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

type fakePod struct {
	namespace string
	labels    labels.Set
}

// fakePods counts its pods as the operator's pod lister would.
type fakePods struct {
	mu    sync.Mutex
	pods  []fakePod
	err   error
	calls []string
}

func (f *fakePods) CountPods(namespace string, selector labels.Selector) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, namespace+"|"+selector.String())
	if f.err != nil {
		return 0, f.err
	}
	n := 0
	for _, p := range f.pods {
		if (namespace == "" || p.namespace == namespace) && selector.Matches(p.labels) {
			n++
		}
	}
	return n, nil
}

func (f *fakePods) set(pods ...fakePod) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pods = pods
}

func buildWorkload(t *testing.T, namespace string, meta map[string]string, pods PodCounter) Scaler {
	t.Helper()
	cfg, _, err := scalers.Parse(scalers.Trigger{Type: "kubernetes-workload", Namespace: namespace, Metadata: meta})
	if err != nil {
		t.Fatal(err)
	}
	s, err := newKubernetesWorkload(cfg.(*scalers.KubernetesWorkloadConfig), Deps{}, pods)
	if err != nil {
		t.Fatalf("newKubernetesWorkload: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestKubernetesWorkload(t *testing.T) {
	ctx := t.Context()
	app := func(ns, name string) fakePod { return fakePod{namespace: ns, labels: labels.Set{"app": name}} }
	pods := &fakePods{}
	s := buildWorkload(t, "team-a", map[string]string{"podSelector": "app in (worker, helper)", "value": "2", "activationValue": "1"}, pods)

	pollWant(t, s, 0, false)
	pods.set(app("team-a", "worker"), app("team-b", "worker"), app("team-a", "web"))
	pollWant(t, s, 1, false) // at activationValue: not active
	pods.set(app("team-a", "worker"), app("team-a", "helper"), app("team-a", "worker"), app("team-b", "worker"))
	pollWant(t, s, 3, true)
	if got := pods.calls[len(pods.calls)-1]; got != "team-a|app in (helper,worker)" {
		t.Errorf("counted with %q", got)
	}

	// "*" counts in every namespace; an explicit namespace wins over the
	// ScaledObject's.
	all := buildWorkload(t, "team-a", map[string]string{"podSelector": "app=worker", "value": "1", "namespace": "*"}, pods)
	pollWant(t, all, 3, true)
	other := buildWorkload(t, "team-a", map[string]string{"podSelector": "app=worker", "value": "1", "namespace": "team-b"}, pods)
	pollWant(t, other, 1, true)

	// A failing counter.
	pods.err = errors.New("cache not synced")
	_, err := s.Poll(ctx)
	checkKind(t, err, ErrUnreachable)
	if !strings.Contains(err.Error(), "kubernetes-workload trigger") || !strings.Contains(err.Error(), "team-a") {
		t.Errorf("error %q does not name the trigger and namespace", err)
	}
	pods.err = nil

	// A cancelled context.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = s.Poll(cctx)
	checkKind(t, err, ErrUnreachable)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}

	// Closed.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = s.Poll(ctx)
	checkKind(t, err, ErrClosed)
}

func TestKubernetesWorkloadInvalid(t *testing.T) {
	sel, _ := labels.Parse("app=x")
	_, err := newKubernetesWorkload(&scalers.KubernetesWorkloadConfig{PodSelector: sel, Value: 1}, Deps{}, nil)
	checkKind(t, err, ErrInvalidConfig)
	_, err = newKubernetesWorkload(&scalers.KubernetesWorkloadConfig{Value: 1}, Deps{}, &fakePods{})
	checkKind(t, err, ErrInvalidConfig)
}
