package scaler

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// Reading is one poll of a trigger's event source.
type Reading struct {
	// Value is the metric value the HPA sees for this trigger. It is exact
	// where the source gives an integer or a decimal string.
	Value resource.Quantity
	// Active is the trigger's activity, as KEDA decides it for the scaler
	// (for most, Value strictly greater than the activation threshold).
	Active bool
}

// Scaler reads one trigger's event source.
//
// Implementations are built once per ScaledObject generation and reused
// across polls (connection pools are kept), are safe for concurrent use,
// and must be closed when no longer needed. Poll after Close returns an
// error wrapping ErrClosed. Close is idempotent.
type Scaler interface {
	// Poll reads the source once. Errors are *Error values.
	Poll(ctx context.Context) (Reading, error)
	// Close releases the scaler's connections.
	Close() error
}

// TimeoutSource is implemented by scalers whose polls are bounded by a
// timeout of their own (the HTTP scalers: the trigger's timeout setting or
// the shared HTTP client's). Callers that bound a poll themselves can
// follow it when it is shorter than their own bound.
type TimeoutSource interface {
	// PollTimeout returns the longest one poll takes before the scaler
	// gives up by itself; 0 when it has no bound of its own.
	PollTimeout() time.Duration
}

// Deps carries what a scaler may need from the operator.
type Deps struct {
	// HTTPClient is shared by the HTTP scalers that need no TLS settings of
	// their own; its Timeout is the global HTTP timeout (KEDA's
	// KEDA_HTTP_DEFAULT_TIMEOUT). Those with TLS settings clone its
	// transport. Nil means a client with a 3 s timeout, as KEDA's default.
	HTTPClient *http.Client
	// Clock gives the time to cron triggers and to Prometheus queries.
	// Nil means the real clock.
	Clock clock.PassiveClock
	// Pods counts pods for kubernetes-workload triggers; nil leaves those
	// triggers without a scaler (an error naming the missing counter).
	Pods PodCounter
	// Kube reads the ConfigMaps and Secrets of kubernetes-resource triggers
	// (one GET per poll); nil leaves those triggers without a scaler (an
	// error naming the missing client).
	Kube kubernetes.Interface
	// Logger is for scalers' diagnostics, never given secrets. The first
	// scalers (cron, metrics-api, prometheus, redis) log nothing: their
	// errors carry what the caller needs to log or report.
	Logger klog.Logger
}

// DefaultHTTPTimeout is the timeout of the HTTP client used when
// Deps.HTTPClient is nil, KEDA's default global HTTP timeout.
const DefaultHTTPTimeout = 3 * time.Second

var defaultHTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}

func (d Deps) withDefaults() Deps {
	if d.HTTPClient == nil {
		d.HTTPClient = defaultHTTPClient
	}
	if d.Clock == nil {
		d.Clock = clock.RealClock{}
	}
	return d
}

// New builds the scaler for a parsed trigger config. It does no I/O: a
// source that cannot be reached shows in the first Poll, not here. An
// unsupported trigger type gives an error wrapping ErrNotImplemented.
func New(cfg scalers.Config, deps Deps) (Scaler, error) {
	deps = deps.withDefaults()
	switch c := cfg.(type) {
	case *scalers.CronConfig:
		return newCron(c, deps)
	case *scalers.MetricsAPIConfig:
		return newMetricsAPI(c, deps)
	case *scalers.PrometheusConfig:
		return newPrometheus(c, deps)
	case *scalers.AzureQueueConfig:
		return newAzureQueue(c, deps)
	case *scalers.AzureBlobConfig:
		return newAzureBlob(c, deps)
	case *scalers.GraphiteConfig:
		return newGraphite(c, deps)
	case *scalers.RedisConfig:
		return newRedis(c, deps)
	case *scalers.RedisStreamsConfig:
		return newRedisStreams(c, deps)
	case *scalers.PostgreSQLConfig:
		return newPostgreSQL(c, deps)
	case *scalers.RabbitMQConfig:
		return newRabbitMQ(c, deps)
	case *scalers.MySQLConfig:
		return newMySQL(c, deps)
	case *scalers.BeanstalkdConfig:
		return newBeanstalkd(c, deps)
	case *scalers.KafkaConfig:
		return newKafka(c, deps)
	case *scalers.KubernetesWorkloadConfig:
		return newKubernetesWorkload(c, deps, deps.Pods)
	case *scalers.KubernetesResourceConfig:
		return newKubernetesResource(c, deps)
	case *scalers.ExternalConfig:
		return newExternal(c, c.ScaledObjectName, c.Namespace, deps, c.Push)
	case *scalers.NATSJetStreamConfig:
		return newNATSJetStream(c, deps)
	case *scalers.EtcdConfig:
		return newEtcd(c, deps)
	case nil:
		return nil, &Error{Type: "<nil>", Kind: ErrInvalidConfig, Detail: "no trigger config"}
	default:
		return nil, &Error{Type: cfg.Type(), Kind: ErrNotImplemented, Detail: fmt.Sprintf("trigger type %q has no scaler in ebb yet", cfg.Type())}
	}
}

// Sentinel errors wrapped by *Error.
var (
	// ErrUnreachable: the source could not be reached (connection refused,
	// DNS failure, reset, timeout).
	ErrUnreachable = errors.New("source unreachable")
	// ErrTimeout: the source did not answer in time. It wraps
	// ErrUnreachable, so errors.Is(err, ErrUnreachable) holds for it too.
	ErrTimeout = fmt.Errorf("%w: timed out", ErrUnreachable)
	// ErrBadResponse: the source answered, but with an error status or
	// reply, or with a body the metric cannot be read from.
	ErrBadResponse = errors.New("bad response from source")
	// ErrInvalidConfig: the trigger's settings cannot be used (for example
	// an unknown time zone or an unparsable client certificate).
	ErrInvalidConfig = errors.New("invalid trigger configuration")
	// ErrNotImplemented: ebb has no scaler for the trigger type, or not
	// for one of its settings, yet.
	ErrNotImplemented = errors.New("not implemented")
	// ErrClosed: Poll was called after Close.
	ErrClosed = errors.New("scaler closed")
)

// Error is the error of New and Poll: which trigger type and source, what
// kind of failure, and a detail that never contains a secret.
type Error struct {
	// Type is the trigger type.
	Type string
	// Source is the address of the event source, without credentials,
	// query or fragment; empty when the scaler has none (cron).
	Source string
	// Kind is one of the sentinel errors of this package.
	Kind error
	// Detail describes the failure, secrets removed.
	Detail string
	// ctxErr is the caller's context error (context.Canceled or
	// context.DeadlineExceeded) when the poll was cut short by it.
	ctxErr error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Type)
	b.WriteString(" trigger")
	if e.Source != "" {
		b.WriteString(" (")
		b.WriteString(e.Source)
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(e.Kind.Error())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns the sentinel and, when the caller's context ended the
// poll, the context's error.
func (e *Error) Unwrap() []error {
	if e.ctxErr != nil {
		return []error{e.Kind, e.ctxErr}
	}
	return []error{e.Kind}
}

// redactor removes secret values from error details.
type redactor struct {
	secrets []string
}

func newRedactor(secrets ...string) redactor {
	var r redactor
	for _, s := range secrets {
		if s == "" {
			continue
		}
		r.secrets = append(r.secrets, s)
		if q := url.QueryEscape(s); q != s {
			r.secrets = append(r.secrets, q)
		}
		if p := url.PathEscape(s); p != s {
			r.secrets = append(r.secrets, p)
		}
	}
	return r
}

func (r redactor) clean(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, "<redacted>")
	}
	return s
}

// redactURL returns raw without user information, query and fragment, for
// error messages; raw unparsable gives a placeholder.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	u.User = nil
	u.RawQuery = ""
	u.ForceQuery = false
	u.Fragment = ""
	u.RawFragment = ""
	return u.String()
}
