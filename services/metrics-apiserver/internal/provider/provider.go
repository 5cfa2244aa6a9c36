package provider

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/external_metrics"
	"k8s.io/utils/clock"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/rpc/metricsv1"
)

// DefaultRequestTimeout bounds one external metric request, retries
// included, when the incoming request allows longer. It is above the
// operator's bound of one poll of an event source (5 s), so a slow source
// is reported by the operator rather than cut off here.
const DefaultRequestTimeout = 10 * time.Second

// MetricsClient calls the operator's MetricsService.
type MetricsClient interface {
	GetMetrics(ctx context.Context, req *metricsv1.GetMetricsRequest) (*metricsv1.GetMetricsResponse, error)
}

// Delegate serves the external metrics that are not ebb's.
type Delegate interface {
	GetExternalMetric(ctx context.Context, namespace string, selector labels.Selector, metricName string) (*external_metrics.ExternalMetricValueList, error)
	ListAllExternalMetrics() []cmprovider.ExternalMetricInfo
}

// Option configures a Provider.
type Option func(*Provider)

// WithDelegate forwards requests whose selector names no ScaledObject to d.
func WithDelegate(d Delegate) Option { return func(p *Provider) { p.delegate = d } }

// WithRequestTimeout sets the bound of one request (DefaultRequestTimeout).
func WithRequestTimeout(d time.Duration) Option { return func(p *Provider) { p.timeout = d } }

// WithClock sets the clock of the request metrics and of values that come
// without a timestamp.
func WithClock(c clock.PassiveClock) Option { return func(p *Provider) { p.clock = c } }

// Provider implements the custom-metrics-apiserver's
// ExternalMetricsProvider. It is safe for concurrent use.
type Provider struct {
	client   MetricsClient
	delegate Delegate
	timeout  time.Duration
	clock    clock.PassiveClock
}

var _ cmprovider.ExternalMetricsProvider = (*Provider)(nil)

// New returns a Provider that answers through client.
func New(client MetricsClient, opts ...Option) *Provider {
	p := &Provider{client: client, timeout: DefaultRequestTimeout, clock: clock.RealClock{}}
	for _, o := range opts {
		o(p)
	}
	return p
}

// externalMetricsResource is the resource that API errors name.
var externalMetricsResource = schema.GroupResource{Group: "external.metrics.k8s.io", Resource: "externalmetrics"}

// ebbMetricName matches the metric names the operator writes into HPAs:
// s<trigger index>-<scaler>-<detail>, and the scaling modifiers' composite
// metric.
var ebbMetricName = regexp.MustCompile(`^s[0-9]+-.`)

// GetExternalMetric answers one external metric request.
func (p *Provider) GetExternalMetric(ctx context.Context, namespace string, selector labels.Selector, info cmprovider.ExternalMetricInfo) (*external_metrics.ExternalMetricValueList, error) {
	start := p.clock.Now()
	target := "operator"
	list, err := func() (*external_metrics.ExternalMetricValueList, error) {
		name, found, err := scaledObjectName(selector)
		if err == nil && !found || err == nil && !isEBBMetric(info.Metric) {
			if p.delegate != nil {
				target = "delegate"
				return p.delegate.GetExternalMetric(ctx, namespace, selector, info.Metric)
			}
			if !found {
				err = fmt.Errorf("the label selector %q names no ScaledObject: ebb serves the external metrics of ScaledObjects, selected with %s=<name> as in the HPAs ebb writes", selector.String(), v1alpha1.ScaledObjectNameLabel)
			}
		}
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		return p.fromOperator(ctx, namespace, name, selector, info.Metric)
	}()
	requests.WithLabelValues(target, outcome(err)).Inc()
	requestDuration.WithLabelValues(target).Observe(p.clock.Since(start).Seconds())
	if err != nil {
		klog.FromContext(ctx).V(4).Info("External metric request failed", "namespace", namespace, "metricName", info.Metric, "selector", selector.String(), "err", err)
	}
	return list, err
}

func isEBBMetric(name string) bool {
	return name == v1alpha1.CompositeMetricName || ebbMetricName.MatchString(name)
}

// scaledObjectName returns the ScaledObject that selector names: the one
// value of its scaledobject.keda.sh/name requirement. found is false if the
// selector has no such requirement; an error means it has one that does
// not name exactly one ScaledObject.
func scaledObjectName(selector labels.Selector) (name string, found bool, err error) {
	if selector == nil {
		return "", false, nil
	}
	reqs, selectable := selector.Requirements()
	if !selectable {
		return "", false, nil
	}
	for _, r := range reqs {
		if r.Key() != v1alpha1.ScaledObjectNameLabel {
			continue
		}
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			if r.Values().Len() == 1 {
				return r.Values().UnsortedList()[0], true, nil
			}
		}
		return "", true, fmt.Errorf("the label selector %q must name one ScaledObject with %s=<name>", selector.String(), v1alpha1.ScaledObjectNameLabel)
	}
	return "", false, nil
}

// fromOperator asks the operator for the metric.
func (p *Provider) fromOperator(ctx context.Context, namespace, name string, selector labels.Selector, metric string) (*external_metrics.ExternalMetricValueList, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	resp, err := p.client.GetMetrics(ctx, &metricsv1.GetMetricsRequest{
		Namespace:        namespace,
		ScaledObjectName: name,
		MetricName:       metric,
		LabelSelector:    selector.String(),
	})
	if err != nil {
		return nil, apiError(err, namespace, name, metric)
	}
	list, err := p.convert(resp, metric)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("the operator's answer for metric %s of ScaledObject %s/%s: %w", metric, namespace, name, err))
	}
	return list, nil
}

// convert turns the operator's values into the API's, exactly.
func (p *Provider) convert(resp *metricsv1.GetMetricsResponse, metric string) (*external_metrics.ExternalMetricValueList, error) {
	values := resp.GetValues()
	if len(values) == 0 {
		return nil, errors.New("no value")
	}
	list := &external_metrics.ExternalMetricValueList{Items: make([]external_metrics.ExternalMetricValue, 0, len(values))}
	for i, v := range values {
		q, err := v.GetValue().ToQuantity()
		if err != nil {
			return nil, fmt.Errorf("value %d: %w", i, err)
		}
		item := external_metrics.ExternalMetricValue{
			MetricName:   v.GetMetricName(),
			MetricLabels: v.GetLabels(),
			Value:        q,
		}
		if item.MetricName == "" {
			item.MetricName = metric
		}
		if ts := v.GetTimestamp(); ts != nil && ts.IsValid() {
			item.Timestamp = metav1.NewTime(ts.AsTime())
		} else {
			item.Timestamp = metav1.NewTime(p.clock.Now())
		}
		if w := v.GetWindow(); w != nil && w.IsValid() {
			// Whole seconds on the API side; a window is never shorter
			// than what was asked, so round up.
			secs := int64((w.AsDuration() + time.Second - 1) / time.Second)
			item.WindowSeconds = &secs
		}
		list.Items = append(list.Items, item)
	}
	return list, nil
}

// apiError maps an operator call's error onto the API response documented
// in metrics.proto.
func apiError(err error, namespace, name, metric string) error {
	st, _ := status.FromError(err)
	msg := st.Message()
	switch st.Code() {
	case codes.InvalidArgument:
		return apierrors.NewBadRequest(msg)
	case codes.NotFound:
		e := cmprovider.NewMetricNotFoundError(externalMetricsResource, metric)
		e.ErrStatus.Message = fmt.Sprintf("the server could not find the metric %s for ScaledObject %s/%s: %s", metric, namespace, name, msg)
		return e
	case codes.Unavailable:
		if !strings.Contains(msg, "operator") {
			msg = "the operator cannot answer: " + msg
		}
		return apierrors.NewServiceUnavailable(fmt.Sprintf("metric %s of ScaledObject %s/%s: %s", metric, namespace, name, msg))
	case codes.DeadlineExceeded, codes.Canceled:
		return apierrors.NewTimeoutError(fmt.Sprintf("metric %s of ScaledObject %s/%s: the operator did not answer in time: %s", metric, namespace, name, msg), 1)
	default:
		return apierrors.NewInternalError(fmt.Errorf("metric %s of ScaledObject %s/%s: the operator failed (%s): %s", metric, namespace, name, st.Code(), msg))
	}
}

// ListAllExternalMetrics returns the delegate's metrics, if there is a
// delegate. ebb's own metric names are per ScaledObject (its
// status.externalMetricNames) and are not listed: the API server routes
// every metric name to this server whether or not discovery lists it, and
// the HPA does not use discovery.
func (p *Provider) ListAllExternalMetrics() []cmprovider.ExternalMetricInfo {
	if p.delegate == nil {
		return nil
	}
	return p.delegate.ListAllExternalMetrics()
}
