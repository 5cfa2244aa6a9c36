package delegate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/external_metrics"
	"k8s.io/metrics/pkg/apis/external_metrics/v1beta1"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
)

// DefaultDiscoveryInterval is how often the delegate's metric list is
// refreshed for discovery.
const DefaultDiscoveryInterval = time.Minute

// Config says where the delegate adapter is and how to authenticate to it.
type Config struct {
	// URL is the adapter's base URL, such as
	// https://prometheus-adapter.monitoring.svc:443. Required.
	URL string
	// CAFile verifies the adapter's serving certificate. Empty: the
	// system roots.
	CAFile string
	// CertFile and KeyFile are a client certificate, if the adapter
	// wants one.
	CertFile, KeyFile string
	// TokenFile holds a bearer token, re-read when it changes (a
	// projected ServiceAccount token).
	TokenFile string
	// Timeout bounds one request to the adapter.
	Timeout time.Duration
}

// Delegate is a client of another external metrics adapter.
type Delegate struct {
	client rest.Interface
	url    string

	mu      sync.RWMutex
	metrics []cmprovider.ExternalMetricInfo
}

var scheme = runtime.NewScheme()

func init() {
	metav1.AddToGroupVersion(scheme, v1beta1.SchemeGroupVersion)
	if err := v1beta1.AddToScheme(scheme); err != nil {
		panic(err)
	}
}

// New returns a Delegate for cfg.
func New(cfg Config) (*Delegate, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("the delegate URL %q must be an https:// URL with a host", cfg.URL)
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("the delegate's client certificate needs both a certificate and a key file")
	}
	rc := &rest.Config{
		Host:            cfg.URL,
		APIPath:         "/apis",
		BearerTokenFile: cfg.TokenFile,
		Timeout:         cfg.Timeout,
		UserAgent:       "ebb-metrics-apiserver",
		TLSClientConfig: rest.TLSClientConfig{CAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile},
		ContentConfig: rest.ContentConfig{
			GroupVersion:         &v1beta1.SchemeGroupVersion,
			NegotiatedSerializer: serializer.NewCodecFactory(scheme).WithoutConversion(),
		},
		// The API server's own priority and fairness protects the
		// adapter; no client-side limit on top of the HPA's requests.
		QPS: -1,
	}
	client, err := rest.RESTClientFor(rc)
	if err != nil {
		return nil, fmt.Errorf("the delegate adapter's client: %w", err)
	}
	return &Delegate{client: client, url: cfg.URL}, nil
}

// GetExternalMetric asks the delegate for the metric. Its API errors are
// passed on as they are; a delegate that cannot be reached is a 503 that
// names it.
func (d *Delegate) GetExternalMetric(ctx context.Context, namespace string, selector labels.Selector, metricName string) (*external_metrics.ExternalMetricValueList, error) {
	res := &v1beta1.ExternalMetricValueList{}
	err := d.client.Get().
		Namespace(namespace).
		Resource(metricName).
		VersionedParams(&metav1.ListOptions{LabelSelector: selector.String()}, metav1.ParameterCodec).
		Do(ctx).
		Into(res)
	if err != nil {
		var st apierrors.APIStatus
		if errors.As(err, &st) {
			return nil, err
		}
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("the delegate external metrics adapter at %s: %v", d.url, err))
	}
	out := &external_metrics.ExternalMetricValueList{}
	if err := v1beta1.Convert_v1beta1_ExternalMetricValueList_To_external_metrics_ExternalMetricValueList(res, out, nil); err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("the delegate's answer: %w", err))
	}
	return out, nil
}

// ListAllExternalMetrics returns the delegate's metrics as last discovered.
func (d *Delegate) ListAllExternalMetrics() []cmprovider.ExternalMetricInfo {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.metrics
}

// Run refreshes the delegate's metric list every interval until ctx is
// done. A failed refresh keeps the last list and is logged.
func (d *Delegate) Run(ctx context.Context, interval time.Duration) {
	logger := klog.FromContext(ctx).WithName("delegate")
	failing := false
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		err := d.Refresh(ctx)
		switch {
		case err != nil && !failing:
			logger.Error(err, "Listing the delegate adapter's external metrics failed; discovery keeps the last list", "url", d.url)
		case err == nil && failing:
			logger.Info("Listing the delegate adapter's external metrics works again", "url", d.url)
		}
		failing = err != nil
	}, interval)
}

// Refresh reads the delegate's metric list once.
func (d *Delegate) Refresh(ctx context.Context) error {
	list := &metav1.APIResourceList{}
	body, err := d.client.Get().AbsPath("/apis", v1beta1.SchemeGroupVersion.Group, v1beta1.SchemeGroupVersion.Version).DoRaw(ctx)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, list); err != nil {
		return fmt.Errorf("decoding the delegate's discovery document: %w", err)
	}
	metrics := make([]cmprovider.ExternalMetricInfo, 0, len(list.APIResources))
	for _, r := range list.APIResources {
		metrics = append(metrics, cmprovider.ExternalMetricInfo{Metric: r.Name})
	}
	sort.Slice(metrics, func(i, j int) bool { return metrics[i].Metric < metrics[j].Metric })
	d.mu.Lock()
	d.metrics = metrics
	d.mu.Unlock()
	return nil
}
