package validate

import (
	"context"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/uncached"
)

// Reader is what the validators read from the cluster. *uncached.Reader
// implements it with direct API requests; see that package for the
// contract of each method (in short: "not found" is reported only when
// the API server said so, any failure is an error).
type Reader interface {
	ScaleTarget(ctx context.Context, namespace, name string, gvk schema.GroupVersionKind, withTemplate bool) (*uncached.Target, error)
	ScaledObjectsForTarget(ctx context.Context, namespace, name string, keep func(*v1alpha1.ScaledObject) bool) ([]v1alpha1.ScaledObject, bool, error)
	ScaledObjects(ctx context.Context, namespace string, keep func(*v1alpha1.ScaledObject) bool) ([]v1alpha1.ScaledObject, error)
	HPAs(ctx context.Context, namespace, labelSelector string, keep func(*autoscalingv2.HorizontalPodAutoscaler) bool) ([]autoscalingv2.HorizontalPodAutoscaler, error)
	HPA(ctx context.Context, namespace, name string) (*autoscalingv2.HorizontalPodAutoscaler, error)
	LimitRanges(ctx context.Context, namespace string) ([]corev1.LimitRange, error)
	TriggerAuthentication(ctx context.Context, namespace, name string) (*v1alpha1.TriggerAuthentication, error)
	ClusterTriggerAuthentication(ctx context.Context, name string) (*v1alpha1.ClusterTriggerAuthentication, error)
}

var _ Reader = (*uncached.Reader)(nil)
