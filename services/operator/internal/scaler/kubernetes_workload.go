package scaler

import (
	"context"
	"fmt"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// PodCounter counts the pods of the cluster for kubernetes-workload
// triggers.
type PodCounter interface {
	// CountPods returns how many pods of namespace ("" for all namespaces)
	// match selector and are neither Succeeded nor Failed.
	CountPods(namespace string, selector labels.Selector) (int, error)
}

// kubernetesWorkloadScaler counts the pods matching a trigger's
// podSelector. It holds no connection: the PodCounter (the operator's pod
// cache) is shared.
type kubernetesWorkloadScaler struct {
	cfg    *scalers.KubernetesWorkloadConfig
	pods   PodCounter
	closed atomic.Bool
}

func newKubernetesWorkload(c *scalers.KubernetesWorkloadConfig, _ Deps, pods PodCounter) (Scaler, error) {
	s := &kubernetesWorkloadScaler{cfg: c, pods: pods}
	if c.PodSelector == nil {
		return nil, s.errorf(ErrInvalidConfig, "no podSelector")
	}
	if pods == nil {
		return nil, s.errorf(ErrInvalidConfig, "no pod counter to count pods with")
	}
	return s, nil
}

// Poll counts the pods matching podSelector in the trigger's namespace
// (all namespaces for "*"), not Succeeded nor Failed, as KEDA does. Active
// is the count strictly greater than activationValue.
func (s *kubernetesWorkloadScaler) Poll(ctx context.Context) (Reading, error) {
	if s.closed.Load() {
		return Reading{}, s.errorf(ErrClosed, "")
	}
	if err := ctx.Err(); err != nil {
		e := s.errorf(ErrUnreachable, "poll cancelled: %v", err)
		e.ctxErr = err
		return Reading{}, e
	}
	n, err := s.pods.CountPods(s.cfg.PodNamespace, s.cfg.PodSelector)
	if err != nil {
		return Reading{}, s.errorf(ErrUnreachable, "count pods matching %q in %s: %v", s.cfg.PodSelector.String(), s.where(), err)
	}
	return Reading{Value: *resource.NewQuantity(int64(n), resource.DecimalSI), Active: float64(n) > s.cfg.ActivationValue}, nil
}

func (s *kubernetesWorkloadScaler) where() string {
	if s.cfg.PodNamespace == "" {
		return "all namespaces"
	}
	return "namespace " + s.cfg.PodNamespace
}

func (s *kubernetesWorkloadScaler) errorf(kind error, format string, args ...any) *Error {
	detail := ""
	if format != "" {
		detail = fmt.Sprintf(format, args...)
	}
	return &Error{Type: s.cfg.Type(), Kind: kind, Detail: detail}
}

// Close marks the scaler closed; the pod counter is not the scaler's to
// close. It is idempotent.
func (s *kubernetesWorkloadScaler) Close() error {
	s.closed.Store(true)
	return nil
}
