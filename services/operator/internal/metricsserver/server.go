package metricsserver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedalisters "github.com/ebb-autoscaler/ebb/pkg/client/listers/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/rpc/metricsv1"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/triggers"
)

// DefaultPollTimeout bounds one poll of a trigger's source, whatever the
// caller's deadline (a scaler's own shorter timeout applies, see
// triggers.Trigger.PollTimeout). The scale loop uses the same bound.
const DefaultPollTimeout = triggers.DefaultPollTimeout

// ReplicasFunc reports the scale target's current replica count (its
// /scale spec.replicas) and its ready pods, from informers. The fallback
// needs them for the currentReplicas* behaviors and for Value targets.
type ReplicasFunc func(ctx context.Context, so *v1alpha1.ScaledObject) (current, ready int32, err error)

// Option configures a Server.
type Option func(*Server)

// WithPollTimeout sets the bound of one poll (DefaultPollTimeout).
func WithPollTimeout(d time.Duration) Option { return func(s *Server) { s.pollTimeout = d } }

// WithClock sets the clock that stamps values.
func WithClock(c clock.PassiveClock) Option { return func(s *Server) { s.clock = c } }

// WithReplicas sets where the fallback reads the target's replica counts.
// Without it, fallbacks that need them (behaviors other than static, and
// Value targets) do not apply and the scaler's error is returned.
func WithReplicas(f ReplicasFunc) Option { return func(s *Server) { s.replicas = f } }

// WithHealthNotifier sets a function told the key of a ScaledObject with a
// spec.fallback whenever what its status shows of its metrics' health
// changes: a metric is read for the first time since the operator started,
// goes from Happy to Failing or back, or starts or stops being answered
// with the fallback. It is not told of every further failure, so a
// controller that writes the status on each call writes it only on
// transitions. It is called without locks held and must not block (a
// workqueue's Add is right).
func WithHealthNotifier(f func(cache.ObjectName)) Option { return func(s *Server) { s.notify = f } }

// Server serves ebb.metrics.v1.MetricsService from the operator's state.
// It is safe for concurrent use.
type Server struct {
	metricsv1.UnimplementedMetricsServiceServer

	lister      kedalisters.ScaledObjectLister
	triggers    *triggers.Cache
	ready       func() error
	pollTimeout time.Duration
	clock       clock.PassiveClock
	replicas    ReplicasFunc
	notify      func(cache.ObjectName)

	mu sync.Mutex
	// health holds, per ScaledObject UID and external metric name (the
	// keys of status.health, as in KEDA), the consecutive failed reads and
	// whether the fallback answers them.
	health map[types.UID]*objectHealth
	// inFallback counts the entries of health with a metric in fallback.
	inFallback int
}

// New returns a Server that finds ScaledObjects with lister and reads their
// triggers through cache. ready reports why the operator cannot answer yet
// (caches not synced, not the leader); nil means it can.
func New(lister kedalisters.ScaledObjectLister, cache *triggers.Cache, ready func() error, opts ...Option) *Server {
	s := &Server{
		lister:      lister,
		triggers:    cache,
		ready:       ready,
		pollTimeout: DefaultPollTimeout,
		clock:       clock.RealClock{},
		health:      map[types.UID]*objectHealth{},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// GetMetrics returns the current value of one external metric of one
// ScaledObject. Errors carry the codes documented in metrics.proto.
func (s *Server) GetMetrics(ctx context.Context, req *metricsv1.GetMetricsRequest) (*metricsv1.GetMetricsResponse, error) {
	start := s.clock.Now()
	resp, err := s.getMetrics(ctx, req)
	requests.WithLabelValues(status.Code(err).String()).Inc()
	requestDuration.Observe(s.clock.Since(start).Seconds())
	return resp, err
}

func (s *Server) getMetrics(ctx context.Context, req *metricsv1.GetMetricsRequest) (*metricsv1.GetMetricsResponse, error) {
	if err := validate(req); err != nil {
		return nil, err
	}
	if s.ready != nil {
		if err := s.ready(); err != nil {
			return nil, status.Errorf(codes.Unavailable, "the operator cannot serve metrics yet: %v", err)
		}
	}
	// ref is formatted only into errors.
	ref := cache.ObjectName{Namespace: req.GetNamespace(), Name: req.GetScaledObjectName()}
	so, err := s.lister.ScaledObjects(req.GetNamespace()).Get(req.GetScaledObjectName())
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, status.Errorf(codes.NotFound, "ScaledObject %s not found", ref)
		}
		return nil, status.Errorf(codes.Internal, "reading ScaledObject %s: %v", ref, err)
	}
	trs, err := s.triggers.Scalers(so)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "ScaledObject %s: %v", ref, err)
	}
	s.prune(so, trs)
	if req.GetMetricName() == v1alpha1.CompositeMetricName && so.HasScalingModifiersFormula() {
		return s.composite(ctx, so, trs, ref)
	}
	name := req.GetMetricName()
	tr, found, askErr := s.findTrigger(ctx, trs, name)
	if !found {
		return nil, status.Error(codes.NotFound, notFoundMessage(ref, name, trs))
	}
	if n := tr.ExternalMetricName(); n != "" {
		name = n // the HPA asks in lower case: answer and count under the real name
	}
	if tr.Scaler == nil {
		return nil, noScalerError(tr, ref)
	}

	// The controller hears of a health change once per read, at the end.
	// The metric's health is kept under the name the HPA reads, which is
	// the trigger's external metric name.
	changed := s.dropPlaceholder(so, tr)
	defer func() { s.notifyIf(so, changed) }()
	var reading scaler.Reading
	err = askErr // the scaler could not say what its metric is: a failed read
	if err == nil {
		reading, err = s.read(ctx, so, tr)
	}
	if err == nil {
		if s.recordSuccess(so, name) {
			changed = true
		}
		return s.response(name, metricsv1.QuantityToProto(reading.Value)), nil
	}

	// The caller gave up: not the source's fault, not a failure to count.
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, status.FromContextError(ctxErr).Err()
	}

	scalerErrors.WithLabelValues(tr.Type).Inc()
	failures, c := s.recordFailure(so, name)
	changed = changed || c
	logger := klog.FromContext(ctx)
	var q resource.Quantity
	var served bool
	var why string
	if spec, known := tr.Metric(); known && spec.External != nil {
		q, served, why = s.fallbackValue(ctx, so, spec.External.Target, failures, false)
	} else if so.Spec.Fallback != nil {
		why = "the metric's target is not known: its scaler has not given its metric spec yet"
	}
	if s.setFallback(so, map[string]bool{name: served}) {
		changed = true
	}
	if served {
		fallbacks.WithLabelValues(tr.Type).Inc()
		logger.V(2).Info("Serving the fallback value", "scaledObject", klog.KObj(so), "metricName", name, "failures", failures, "value", q.String(), "err", err)
		return s.response(name, metricsv1.QuantityToProto(q)), nil
	} else if why != "" {
		logger.V(2).Info("Fallback does not apply", "scaledObject", klog.KObj(so), "metricName", name, "reason", why)
	}
	return nil, pollError(tr, ref, err)
}

// read returns the trigger's current reading: with useCachedMetrics, the
// scale loop's last poll while it is recent (at most two polling
// intervals old, so a scale loop that stopped polling is not trusted);
// otherwise, or without such a poll, a poll of the source within the poll
// timeout.
func (s *Server) read(ctx context.Context, so *v1alpha1.ScaledObject, tr triggers.Trigger) (scaler.Reading, error) {
	if tr.UseCachedMetrics {
		if c, ok := tr.Cached(); ok && s.clock.Since(c.At) <= 2*pollingInterval(so) {
			cachedReads.Inc()
			return c.Reading, c.Err
		}
	}
	return tr.Poll(ctx, triggers.OpGetMetrics, s.pollTimeout)
}

// findTrigger returns the trigger whose External metric is metricName,
// compared without regard to case, as KEDA compares them: the HPA
// controller's client (client-go) lowercases the metric name, which is the
// resource segment of its request path, so a metric named
// "s0-cron-UTC-…" is asked for as "s0-cron-utc-…". A
// trigger's metric comes from its metadata or, for external and
// external-push triggers, from the scaler's GetMetricSpec (recorded with
// the trigger's scaler when the controller built the HPA, or at a
// successful poll). When no known metric matches and metricName is
// "s<i>-…" for such a trigger whose scaler has not given its metric during
// this generation (the operator restarted, say, and the HPA read first),
// the scaler is asked, within the poll timeout: found is then true when
// it names metricName, or when it cannot be asked (askErr, which the
// caller counts as the trigger's failed read: the name is its index's,
// and the HPA reads it).
func (s *Server) findTrigger(ctx context.Context, trs []triggers.Trigger, metricName string) (tr triggers.Trigger, found bool, askErr error) {
	for _, t := range trs {
		if n := t.ExternalMetricName(); n != "" && strings.EqualFold(n, metricName) {
			return t, true, nil
		}
	}
	i, ok := metricIndex(metricName)
	if !ok || i >= len(trs) || !trs[i].ScalerDefinesMetric() {
		return triggers.Trigger{}, false, nil
	}
	t := trs[i]
	if _, known := t.Metric(); known || t.Scaler == nil {
		// A known metric of another name; or no scaler to ask, which the
		// caller reports for the trigger.
		return t, !known, nil
	}
	spec, err := t.ResolveMetric(ctx, t.PollTimeout(s.pollTimeout))
	if err != nil {
		return t, true, err
	}
	return t, spec.External != nil && strings.EqualFold(spec.External.Metric.Name, metricName), nil
}

// metricIndex returns the trigger index i of an external metric name
// "s<i>-…".
func metricIndex(metricName string) (int, bool) {
	rest, ok := strings.CutPrefix(metricName, "s")
	if !ok {
		return 0, false
	}
	digits, _, ok := strings.Cut(rest, "-")
	if !ok || digits == "" || len(digits) > 6 {
		return 0, false
	}
	i, err := strconv.Atoi(digits)
	if err != nil || i < 0 || strconv.Itoa(i) != digits {
		return 0, false
	}
	return i, true
}

// pollingInterval is so's spec.pollingInterval, 30 s when unset.
func pollingInterval(so *v1alpha1.ScaledObject) time.Duration {
	if p := so.Spec.PollingInterval; p != nil && *p > 0 {
		return time.Duration(*p) * time.Second
	}
	return time.Duration(v1alpha1.DefaultPollingInterval) * time.Second
}

// noScalerError is the error for a trigger whose scaler could not be
// built.
func noScalerError(tr triggers.Trigger, ref cache.ObjectName) error {
	code := codes.FailedPrecondition
	if errors.Is(tr.Err, scaler.ErrNotImplemented) {
		code = codes.Unimplemented
	}
	return status.Errorf(code, "trigger %d (%s) of %s: %v", tr.Index, tr.Type, ref, tr.Err)
}

// pollError is the error for a failed read of tr.
func pollError(tr triggers.Trigger, ref cache.ObjectName, err error) error {
	return status.Errorf(pollErrorCode(err), "trigger %d (%s) of %s: %v", tr.Index, tr.Type, ref, err)
}

// healthKey is the status.health key of a trigger: its external metric
// name (for external scalers, the name the scaler gave), or, while an
// external scaler has not given its metric yet, the placeholder
// placeholderKey.
func healthKey(t triggers.Trigger) string {
	if n := t.ExternalMetricName(); n != "" {
		return n
	}
	return placeholderKey(t)
}

// placeholderKey is "s<index>-<type>", the status.health key of a trigger
// whose metric name is not known.
func placeholderKey(t triggers.Trigger) string {
	return fmt.Sprintf("s%d-%s", t.Index, t.Type)
}

func (s *Server) response(metricName string, q *metricsv1.Quantity) *metricsv1.GetMetricsResponse {
	return &metricsv1.GetMetricsResponse{Values: []*metricsv1.MetricValue{{
		MetricName: metricName,
		Timestamp:  timestamppb.New(s.clock.Now()),
		Value:      q,
	}}}
}

// validate checks the request's fields; the error is InvalidArgument.
func validate(req *metricsv1.GetMetricsRequest) error {
	var missing []string
	if req.GetNamespace() == "" {
		missing = append(missing, "namespace")
	}
	if req.GetScaledObjectName() == "" {
		missing = append(missing, "scaled_object_name")
	}
	if req.GetMetricName() == "" {
		missing = append(missing, "metric_name")
	}
	if len(missing) > 0 {
		return status.Errorf(codes.InvalidArgument, "required fields are empty: %s", strings.Join(missing, ", "))
	}
	if selectsOnlyByName(req.GetLabelSelector(), req.GetScaledObjectName()) {
		return nil
	}
	sel, err := labels.Parse(req.GetLabelSelector())
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "label_selector %q does not parse: %v", req.GetLabelSelector(), err)
	}
	reqs, _ := sel.Requirements()
	for _, r := range reqs {
		if r.Key() == v1alpha1.ScaledObjectNameLabel && !r.Matches(labels.Set{v1alpha1.ScaledObjectNameLabel: req.GetScaledObjectName()}) {
			return status.Errorf(codes.InvalidArgument, "label_selector %q does not select ScaledObject %q", req.GetLabelSelector(), req.GetScaledObjectName())
		}
	}
	return nil
}

// selectsOnlyByName reports whether selector is empty or exactly
// "scaledobject.keda.sh/name=<name>" with name a valid label value: the
// selector of the HPAs ebb writes, which comes with every read. Such a
// selector passes validate without being parsed: labels.Parse (a lexer,
// and regular expressions that validate the key and the value) took two
// thirds of the server's time of a read answered from the cache.
func selectsOnlyByName(selector, name string) bool {
	if selector == "" {
		return true
	}
	value, ok := strings.CutPrefix(selector, v1alpha1.ScaledObjectNameLabel+"=")
	return ok && value == name && isLabelValue(value)
}

// isLabelValue reports whether v is a non-empty valid label value: at
// most 63 characters, alphanumerics, '-', '_' and '.', beginning and
// ending with an alphanumeric. (The empty value is valid too, but never
// names a ScaledObject.)
func isLabelValue(v string) bool {
	if v == "" || len(v) > 63 || !isAlnum(v[0]) || !isAlnum(v[len(v)-1]) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func notFoundMessage(ref cache.ObjectName, metricName string, trs []triggers.Trigger) string {
	var names []string
	for _, t := range trs {
		if n := t.ExternalMetricName(); n != "" {
			names = append(names, n)
		} else if t.ScalerDefinesMetric() {
			names = append(names, fmt.Sprintf("s%d-<named by the %s scaler, not known yet>", t.Index, t.Type))
		}
	}
	if len(names) == 0 {
		return fmt.Sprintf("ScaledObject %s has no metric %q: it has no external metrics", ref, metricName)
	}
	return fmt.Sprintf("ScaledObject %s has no metric %q; its metrics are: %s", ref, metricName, strings.Join(names, ", "))
}

// pollErrorCode maps a scaler's Poll error onto the service's codes. Every
// failure of the event source (unreachable, timed out, or answering with an
// error or an unreadable body) is UNAVAILABLE: retryable, and what the
// fallback replaces. A settings problem is FAILED_PRECONDITION, a missing
// feature UNIMPLEMENTED; the metrics-apiserver answers 500 for both.
func pollErrorCode(err error) codes.Code {
	switch {
	case errors.Is(err, scaler.ErrUnreachable), errors.Is(err, scaler.ErrBadResponse):
		return codes.Unavailable
	case errors.Is(err, scaler.ErrClosed):
		// The ScaledObject changed during the call; a retry uses the new
		// scaler.
		return codes.Unavailable
	case errors.Is(err, scaler.ErrInvalidConfig):
		return codes.FailedPrecondition
	case errors.Is(err, scaler.ErrNotImplemented):
		return codes.Unimplemented
	default:
		return codes.Internal
	}
}
