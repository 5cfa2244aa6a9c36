package uncached

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned"
)

// TargetNameField is the selectable field of ScaledObjects (the CRD's
// selectableFields) that ScaledObjectsForTarget selects on.
const TargetNameField = "spec.scaleTargetRef.name"

// PageSize is the page size of the LISTs that may return many objects
// (HorizontalPodAutoscalers, a namespace's ScaledObjects): each page is
// filtered before the next is read, so memory stays bounded by a page
// whatever the namespace holds.
const PageSize = 500

// The operation label values of ebb_uncached_read_duration_seconds.
const (
	OpResolveKind            = "resolve_kind"
	OpDiscoverScale          = "discover_scale"
	OpGetScale               = "get_scale"
	OpGetTarget              = "get_target"
	OpListScaledObjectsByRef = "list_scaledobjects_by_target"
	OpListScaledObjects      = "list_scaledobjects"
	OpListHPAs               = "list_hpas"
	OpGetHPA                 = "get_hpa"
	OpListLimitRanges        = "list_limitranges"
	OpGetTriggerAuth         = "get_triggerauthentication"
	OpGetClusterTriggerAuth  = "get_clustertriggerauthentication"
)

// The result label values of ebb_uncached_read_duration_seconds.
const (
	ResultSuccess    = "success"
	ResultNotFound   = "not_found"
	ResultNoMatch    = "no_match"
	ResultBadRequest = "bad_request"
	ResultError      = "error"
)

// Config holds the clients a Reader reads through. All are required.
type Config struct {
	// Mapper maps a kind to its resource; pass the self-healing
	// *restmapper.Mapper so kinds installed after start resolve.
	Mapper meta.RESTMapperWithContext
	// Discovery answers whether a resource has a /scale subresource. It
	// must not cache: use a plain discovery client.
	Discovery discovery.DiscoveryInterface
	// Dynamic reads scale targets of any kind, and their /scale.
	Dynamic dynamic.Interface
	// Kube reads HorizontalPodAutoscalers and LimitRanges.
	Kube kubernetes.Interface
	// Keda reads ScaledObjects and (Cluster)TriggerAuthentications.
	Keda versioned.Interface
}

// Reader reads the cluster with direct requests only. Its LISTs leave
// resourceVersion unset: each is a consistent read, and a paged one
// follows its continue token, so every page is of that same state. It is
// safe for concurrent use.
type Reader struct {
	mapper    meta.RESTMapperWithContext
	discovery discovery.DiscoveryInterfaceWithContext
	dynamic   dynamic.Interface
	kube      kubernetes.Interface
	keda      versioned.Interface
	metrics   *metrics

	// refusedOnce logs the first refusal of the target field selector.
	refusedOnce sync.Once
}

// New returns a Reader over the clients of cfg.
func New(cfg Config) (*Reader, error) {
	if cfg.Mapper == nil || cfg.Discovery == nil || cfg.Dynamic == nil || cfg.Kube == nil || cfg.Keda == nil {
		return nil, errors.New("uncached: every client of the Config is required")
	}
	return &Reader{
		mapper:    cfg.Mapper,
		discovery: discovery.ToDiscoveryInterfaceWithContext(cfg.Discovery),
		dynamic:   cfg.Dynamic,
		kube:      cfg.Kube,
		keda:      cfg.Keda,
		metrics:   newMetrics(),
	}, nil
}

// Target is what the API server says about a scale target.
type Target struct {
	// Mapping is the target's kind and resource, as the API server serves
	// them.
	Mapping *meta.RESTMapping
	// Scalable reports whether the resource has a /scale subresource.
	Scalable bool
	// Exists reports whether the object exists. It is only known for a
	// Scalable resource, and is false otherwise.
	Exists bool
	// Template is the object's spec.template, when ScaleTarget was asked
	// for it and the object exists; nil when the object has none.
	Template *corev1.PodTemplateSpec
}

// ScaleTarget resolves gvk to its resource and, concurrently, asks
// discovery whether the resource has a /scale subresource and GETs
// namespace/name: its /scale, which needs only get on <resource>/scale,
// the permission every scale target grants the autoscaler anyway; or,
// with withTemplate, the object itself, whose spec.template (the pod
// template of Deployments, StatefulSets, ReplicaSets and most custom
// workloads) it returns in Template. The GET's answer counts only for a
// resource discovery says has /scale.
//
// A kind the API server does not serve, even after the mapper re-discovered
// its group, gives an error for which meta.IsNoMatchError is true. An
// object that does not exist is no error: Exists is false. A kind whose
// group-version discovery no longer serves (its CRD was deleted) is a
// no-match error too, and the mapper is told to forget it. Any other
// failure (the API server unreachable, a missing permission) is an error:
// the caller can never mistake it for "not found".
func (r *Reader) ScaleTarget(ctx context.Context, namespace, name string, gvk schema.GroupVersionKind, withTemplate bool) (*Target, error) {
	var versions []string
	if gvk.Version != "" {
		versions = []string{gvk.Version}
	}
	var mapping *meta.RESTMapping
	err := r.timed(ctx, OpResolveKind, func() (err error) {
		mapping, err = r.mapper.RESTMappingWithContext(ctx, gvk.GroupKind(), versions...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("resolving kind %s: %w", gvkString(gvk), err)
	}
	t := &Target{Mapping: mapping}
	gvr := mapping.Resource

	// Discovery and the GET are independent: ask both at once, so an
	// admission waits for one round trip, not two.
	var (
		resources       *metav1.APIResourceList
		discErr, getErr error
		obj             *unstructured.Unstructured
		wg              sync.WaitGroup
	)
	wg.Go(func() {
		discErr = r.timed(ctx, OpDiscoverScale, func() (err error) {
			resources, err = r.discovery.ServerResourcesForGroupVersionWithContext(ctx, gvr.GroupVersion().String())
			return err
		})
	})
	wg.Go(func() {
		if withTemplate {
			getErr = r.timed(ctx, OpGetTarget, func() (err error) {
				obj, err = r.dynamic.Resource(gvr).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
				return err
			})
			return
		}
		getErr = r.timed(ctx, OpGetScale, func() error {
			_, err := r.dynamic.Resource(gvr).Namespace(namespace).Get(ctx, name, metav1.GetOptions{}, "scale")
			return err
		})
	})
	wg.Wait()

	if apierrors.IsNotFound(discErr) {
		// The group-version is gone (a CRD deleted since the mapper
		// learnt it): the kind is not served. Have the mapper forget it.
		if inv, ok := r.mapper.(interface{ Invalidate(group string) }); ok {
			inv.Invalidate(gvr.Group)
		}
		return nil, fmt.Errorf("resolving kind %s: %w", gvkString(gvk),
			&meta.NoKindMatchError{GroupKind: gvk.GroupKind(), SearchedVersions: []string{gvr.Version}})
	}
	if discErr != nil {
		return nil, fmt.Errorf("discovering the resources of %s: %w", gvr.GroupVersion(), discErr)
	}
	for _, res := range resources.APIResources {
		if res.Name == gvr.Resource+"/scale" {
			t.Scalable = true
			break
		}
	}
	if !t.Scalable {
		return t, nil // whatever the GET said
	}

	switch {
	case getErr == nil:
		t.Exists = true
	case apierrors.IsNotFound(getErr):
		return t, nil
	case withTemplate:
		return nil, fmt.Errorf("reading %s %s/%s: %w", mapping.GroupVersionKind.Kind, namespace, name, getErr)
	default:
		return nil, fmt.Errorf("reading the scale of %s %s/%s: %w", mapping.GroupVersionKind.Kind, namespace, name, getErr)
	}
	if !withTemplate {
		return t, nil
	}
	raw, found, err := unstructured.NestedMap(obj.Object, "spec", "template")
	if err != nil {
		return nil, fmt.Errorf("reading spec.template of %s %s/%s: %w", mapping.GroupVersionKind.Kind, namespace, name, err)
	}
	if !found {
		return t, nil
	}
	var tmpl corev1.PodTemplateSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &tmpl); err != nil {
		return nil, fmt.Errorf("spec.template of %s %s/%s is not a pod template: %w", mapping.GroupVersionKind.Kind, namespace, name, err)
	}
	t.Template = &tmpl
	return t, nil
}

// ScaledObjectsForTarget returns the ScaledObjects of namespace whose
// spec.scaleTargetRef.name is name, whatever their target's kind, and for
// which keep returns true (all when keep is nil). It lists with a field
// selector on TargetNameField, so the answer holds only the matches. If
// the API server refuses the selector, it lists the whole namespace, page
// by page, and filters; refused is then true. Like every LIST of the
// Reader, it is a consistent read.
func (r *Reader) ScaledObjectsForTarget(ctx context.Context, namespace, name string, keep func(*v1alpha1.ScaledObject) bool) (items []v1alpha1.ScaledObject, refused bool, err error) {
	match := func(so *v1alpha1.ScaledObject) bool {
		return so.Spec.ScaleTargetRef != nil && so.Spec.ScaleTargetRef.Name == name && (keep == nil || keep(so))
	}
	opts := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector(TargetNameField, name).String()}
	var list *v1alpha1.ScaledObjectList
	err = r.timedResult(ctx, OpListScaledObjectsByRef, func() (string, error) {
		var err error
		list, err = r.keda.KedaV1alpha1().ScaledObjects(namespace).List(ctx, opts)
		if apierrors.IsBadRequest(err) {
			return ResultBadRequest, err
		}
		return "", err
	})
	if apierrors.IsBadRequest(err) {
		r.refusedOnce.Do(func() {
			klog.FromContext(ctx).Info("The API server refused the ScaledObject field selector; listing whole namespaces instead, which costs O(ScaledObjects) per admission. Install the ScaledObject CRD with its selectableFields",
				"field", TargetNameField, "err", err)
		})
		items, err = r.ScaledObjects(ctx, namespace, match)
		return items, true, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("listing the ScaledObjects of namespace %s that target %q: %w", namespace, name, err)
	}
	// The API server has filtered; filtering again costs nothing and keeps
	// the contract when a client (a fake in tests) ignores the selector.
	for i := range list.Items {
		if match(&list.Items[i]) {
			items = append(items, list.Items[i])
		}
	}
	return items, false, nil
}

// ScaledObjects lists the ScaledObjects of namespace, page by page, and
// returns those for which keep returns true (all when keep is nil). It
// costs O(ScaledObjects in the namespace): prefer ScaledObjectsForTarget.
func (r *Reader) ScaledObjects(ctx context.Context, namespace string, keep func(*v1alpha1.ScaledObject) bool) ([]v1alpha1.ScaledObject, error) {
	var items []v1alpha1.ScaledObject
	opts := metav1.ListOptions{Limit: PageSize}
	for {
		var list *v1alpha1.ScaledObjectList
		err := r.timed(ctx, OpListScaledObjects, func() (err error) {
			list, err = r.keda.KedaV1alpha1().ScaledObjects(namespace).List(ctx, opts)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("listing the ScaledObjects of namespace %s: %w", namespace, err)
		}
		for i := range list.Items {
			if keep == nil || keep(&list.Items[i]) {
				items = append(items, list.Items[i])
			}
		}
		if list.Continue == "" {
			return items, nil
		}
		opts.Continue = list.Continue
	}
}

// HPAs lists the HorizontalPodAutoscalers of namespace that match
// labelSelector (all when it is empty), page by page, and returns those for
// which keep returns true (all when keep is nil). HorizontalPodAutoscalers
// have no selectable field for their target; a label selector such as
// "!scaledobject.keda.sh/name" (HPAs that no ScaledObject wrote) keeps the
// answer to what the caller needs, filtered by the API server. Memory stays
// bounded by a page.
func (r *Reader) HPAs(ctx context.Context, namespace, labelSelector string, keep func(*autoscalingv2.HorizontalPodAutoscaler) bool) ([]autoscalingv2.HorizontalPodAutoscaler, error) {
	var items []autoscalingv2.HorizontalPodAutoscaler
	opts := metav1.ListOptions{Limit: PageSize, LabelSelector: labelSelector}
	for {
		var list *autoscalingv2.HorizontalPodAutoscalerList
		err := r.timed(ctx, OpListHPAs, func() (err error) {
			list, err = r.kube.AutoscalingV2().HorizontalPodAutoscalers(namespace).List(ctx, opts)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("listing the HorizontalPodAutoscalers of namespace %s: %w", namespace, err)
		}
		for i := range list.Items {
			if keep == nil || keep(&list.Items[i]) {
				items = append(items, list.Items[i])
			}
		}
		if list.Continue == "" {
			return items, nil
		}
		opts.Continue = list.Continue
	}
}

// HPA returns the HorizontalPodAutoscaler namespace/name, or nil if the API
// server says it does not exist.
func (r *Reader) HPA(ctx context.Context, namespace, name string) (*autoscalingv2.HorizontalPodAutoscaler, error) {
	var hpa *autoscalingv2.HorizontalPodAutoscaler
	err := r.timed(ctx, OpGetHPA, func() (err error) {
		hpa, err = r.kube.AutoscalingV2().HorizontalPodAutoscalers(namespace).Get(ctx, name, metav1.GetOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading HorizontalPodAutoscaler %s/%s: %w", namespace, name, err)
	}
	return hpa, nil
}

// LimitRanges lists the LimitRanges of namespace.
func (r *Reader) LimitRanges(ctx context.Context, namespace string) ([]corev1.LimitRange, error) {
	var list *corev1.LimitRangeList
	err := r.timed(ctx, OpListLimitRanges, func() (err error) {
		list, err = r.kube.CoreV1().LimitRanges(namespace).List(ctx, metav1.ListOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing the LimitRanges of namespace %s: %w", namespace, err)
	}
	return list.Items, nil
}

// TriggerAuthentication GETs a TriggerAuthentication. apierrors.IsNotFound
// tells a missing one apart.
func (r *Reader) TriggerAuthentication(ctx context.Context, namespace, name string) (*v1alpha1.TriggerAuthentication, error) {
	var ta *v1alpha1.TriggerAuthentication
	err := r.timed(ctx, OpGetTriggerAuth, func() (err error) {
		ta, err = r.keda.KedaV1alpha1().TriggerAuthentications(namespace).Get(ctx, name, metav1.GetOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading TriggerAuthentication %s/%s: %w", namespace, name, err)
	}
	return ta, nil
}

// ClusterTriggerAuthentication GETs a ClusterTriggerAuthentication.
// apierrors.IsNotFound tells a missing one apart.
func (r *Reader) ClusterTriggerAuthentication(ctx context.Context, name string) (*v1alpha1.ClusterTriggerAuthentication, error) {
	var cta *v1alpha1.ClusterTriggerAuthentication
	err := r.timed(ctx, OpGetClusterTriggerAuth, func() (err error) {
		cta, err = r.keda.KedaV1alpha1().ClusterTriggerAuthentications().Get(ctx, name, metav1.GetOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading ClusterTriggerAuthentication %s: %w", name, err)
	}
	return cta, nil
}

// timed runs read and records its duration under op, with the result
// derived from its error.
func (r *Reader) timed(ctx context.Context, op string, read func() error) error {
	return r.timedResult(ctx, op, func() (string, error) { return "", read() })
}

// timedResult is timed where read may name its result; "" derives it from
// the error.
func (r *Reader) timedResult(ctx context.Context, op string, read func() (string, error)) error {
	start := time.Now()
	result, err := read()
	if result == "" {
		result = resultOf(err)
	}
	elapsed := time.Since(start)
	r.metrics.duration.WithLabelValues(op, result).Observe(elapsed.Seconds())
	klog.FromContext(ctx).V(5).Info("API read", "operation", op, "result", result, "duration", elapsed)
	return err
}

func resultOf(err error) string {
	switch {
	case err == nil:
		return ResultSuccess
	case meta.IsNoMatchError(err):
		return ResultNoMatch
	case apierrors.IsNotFound(err):
		return ResultNotFound
	default:
		return ResultError
	}
}

// gvkString formats gvk as apiVersion and kind, "apps/v1 Deployment".
func gvkString(gvk schema.GroupVersionKind) string {
	return strings.TrimPrefix(gvk.GroupVersion().String()+" "+gvk.Kind, " ")
}
