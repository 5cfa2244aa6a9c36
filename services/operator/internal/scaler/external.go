package scaler

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2"

	"github.com/ebb-autoscaler/ebb/pkg/rpc/externalscaler"
	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// MetricSpecSource is implemented by scalers whose HPA metric is defined by
// the event source itself (external and external-push triggers): the
// operator asks them for it instead of the trigger config.
type MetricSpecSource interface {
	// MetricSpec returns the HPA metric of the trigger. Errors are *Error
	// values.
	MetricSpec(ctx context.Context) (autoscalingv2.MetricSpec, error)
}

// External scaler connection settings.
const (
	// externalServiceConfig balances the calls over every address the
	// scaler address resolves to (a headless Service's pods, say).
	externalServiceConfig = `{"loadBalancingConfig": [{"round_robin":{}}]}`
	// externalConnectMaxDelay caps gRPC's reconnection backoff, so that a
	// scaler that comes back is reached again within half a minute.
	externalConnectMaxDelay = 30 * time.Second
	// The StreamIsActive reconnection backoff of external-push triggers.
	externalStreamMinBackoff = time.Second
	externalStreamMaxBackoff = 30 * time.Second
)

// externalScaler calls an out-of-process scaler over the external scaler
// gRPC protocol (external and external-push triggers), through one
// ClientConn kept for the scaler's life.
type externalScaler struct {
	cfg         *scalers.ExternalConfig
	triggerType string
	address     string
	conn        *grpc.ClientConn
	client      externalscaler.ExternalScalerClient
	ref         *externalscaler.ScaledObjectRef
	redact      redactor
	logger      klog.Logger
	closed      atomic.Bool

	// specSem guards spec: the scaler's first metric spec, asked once.
	specSem chan struct{}
	spec    *externalscaler.MetricSpec

	// external-push: the StreamIsActive goroutine and the activity it
	// received.
	push       bool
	minBackoff time.Duration
	maxBackoff time.Duration
	mu         sync.Mutex
	started    bool
	stop       context.CancelFunc
	done       chan struct{} // closed when the stream goroutine ends
	pushed     bool          // the latest pushed activity
	pushSeq    uint64        // how many pushes were received
	polledSeq  uint64        // pushSeq when the last poll read it
	notify     chan struct{} // a token per push, for PushNotify
}

// newExternal builds the scaler of an external (push false) or
// external-push (push true) trigger. name and namespace are those of the
// ScaledObject (or ScaledJob), sent to the scaler in ScaledObjectRef with
// the trigger's metadata. It makes no network call: grpc.NewClient
// connects on first use. Only the legacy tlsCertFile, a local file, is read
// here.
func newExternal(cfg *scalers.ExternalConfig, name, namespace string, deps Deps, push bool) (Scaler, error) {
	if cfg == nil {
		return nil, &Error{Type: "external", Kind: ErrInvalidConfig, Detail: "no trigger config"}
	}
	s := &externalScaler{
		cfg:         cfg,
		triggerType: "external",
		address:     cfg.ScalerAddress,
		redact:      newRedactor(string(cfg.TLSClientKey), string(cfg.TLSClientCert)),
		logger:      deps.Logger,
		specSem:     make(chan struct{}, 1),
		push:        push,
		minBackoff:  externalStreamMinBackoff,
		maxBackoff:  externalStreamMaxBackoff,
		notify:      make(chan struct{}, 1),
	}
	if push {
		s.triggerType = "external-push"
	}
	if i := strings.LastIndex(s.address, "@"); i >= 0 {
		s.address = s.address[i+1:] // no user information in errors
	}
	md := cfg.ScalerMetadata()
	// Values resolved from the environment may be secrets: keep them out
	// of the errors too.
	var fromEnv []string
	for k, v := range md {
		if strings.HasSuffix(k, "FromEnv") {
			fromEnv = append(fromEnv, v)
		}
	}
	s.redact = newRedactor(append(s.redact.secrets, fromEnv...)...)
	s.ref = &externalscaler.ScaledObjectRef{Name: name, Namespace: namespace, ScalerMetadata: md}

	if strings.TrimSpace(cfg.ScalerAddress) == "" {
		return nil, s.errorf(ErrInvalidConfig, "scalerAddress is required")
	}
	creds := insecure.NewCredentials()
	if cfg.EnableTLS || cfg.CACert != "" || cfg.TLSClientCert != "" || cfg.TLSClientKey != "" || cfg.TLSCertFile != "" {
		tlsConfig, err := s.tlsConfig()
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(tlsConfig)
	}
	conn, err := grpc.NewClient(cfg.ScalerAddress,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(externalServiceConfig),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: externalConnectMaxDelay},
			MinConnectTimeout: 20 * time.Second,
		}),
	)
	if err != nil {
		return nil, s.errorf(ErrInvalidConfig, "scalerAddress: %v", err)
	}
	s.conn = conn
	s.client = externalscaler.NewExternalScalerClient(conn)
	return s, nil
}

// tlsConfig builds the client TLS settings as KEDA does: the system roots
// plus caCert (and the legacy tlsCertFile), the client certificate of
// tlsClientCert and tlsClientKey, and unsafeSsl.
func (s *externalScaler) tlsConfig() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.cfg.UnsafeSSL} //nolint:gosec // unsafeSsl is the user's explicit choice
	if s.cfg.TLSClientCert != "" || s.cfg.TLSClientKey != "" {
		cert, err := tls.X509KeyPair([]byte(s.cfg.TLSClientCert), []byte(s.cfg.TLSClientKey))
		if err != nil {
			// The parse error may quote PEM content: do not include it.
			return nil, s.errorf(ErrInvalidConfig, "tlsClientCert and tlsClientKey are not a valid PEM certificate and key pair")
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if s.cfg.CACert != "" || s.cfg.TLSCertFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if s.cfg.CACert != "" && !pool.AppendCertsFromPEM([]byte(s.cfg.CACert)) {
			return nil, s.errorf(ErrInvalidConfig, "caCert holds no PEM certificate")
		}
		if s.cfg.TLSCertFile != "" {
			pem, err := os.ReadFile(s.cfg.TLSCertFile)
			if err != nil {
				return nil, s.errorf(ErrInvalidConfig, "tlsCertFile cannot be read")
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, s.errorf(ErrInvalidConfig, "tlsCertFile holds no PEM certificate")
			}
		}
		c.RootCAs = pool
	}
	return c, nil
}

// PushNotify returns a channel that receives a token (coalesced) whenever
// an external-push trigger's scaler pushes its activity, so the operator
// can poll at once, as KEDA reacts to pushes at once. It never receives
// for an external trigger.
func (s *externalScaler) PushNotify() <-chan struct{} { return s.notify }

// MetricSpec returns the HPA metric built from the scaler's first
// GetMetricSpec entry (asked once, then cached), named and targeted as
// KEDA does.
func (s *externalScaler) MetricSpec(ctx context.Context) (autoscalingv2.MetricSpec, error) {
	if s.closed.Load() {
		return autoscalingv2.MetricSpec{}, s.errorf(ErrClosed, "")
	}
	spec, err := s.metricSpec(ctx)
	if err != nil {
		return autoscalingv2.MetricSpec{}, err
	}
	return s.cfg.MetricSpecFromScaler(spec.GetMetricName(), spec.GetTargetSize(), spec.GetTargetSizeFloat()), nil
}

// metricSpec calls GetMetricSpec until it succeeds once.
func (s *externalScaler) metricSpec(ctx context.Context) (*externalscaler.MetricSpec, error) {
	select {
	case s.specSem <- struct{}{}:
	case <-ctx.Done():
		return nil, s.callError(ctx, "GetMetricSpec", ctx.Err())
	}
	defer func() { <-s.specSem }()
	if s.spec != nil {
		return s.spec, nil
	}
	if s.closed.Load() {
		return nil, s.errorf(ErrClosed, "")
	}
	s.wake()
	resp, err := s.client.GetMetricSpec(ctx, s.ref)
	if err != nil {
		return nil, s.callError(ctx, "GetMetricSpec", err)
	}
	specs := resp.GetMetricSpecs()
	if len(specs) == 0 {
		return nil, s.errorf(ErrBadResponse, "GetMetricSpec returned no metric spec")
	}
	if specs[0].GetMetricName() == "" {
		return nil, s.errorf(ErrBadResponse, "GetMetricSpec returned a metric spec without a name")
	}
	s.spec = specs[0]
	return s.spec, nil
}

// Poll reads the metric as KEDA does: GetMetrics for the metric of the
// scaler's metric spec (metricValueFloat when greater than 0, metricValue
// otherwise), then IsActive for the activity. For external-push triggers,
// the first Poll starts the StreamIsActive stream, and an activity pushed
// since the previous Poll is the Reading's Active.
func (s *externalScaler) Poll(ctx context.Context) (Reading, error) {
	if s.closed.Load() {
		return Reading{}, s.errorf(ErrClosed, "")
	}
	if s.push {
		s.startStream()
	}
	spec, err := s.metricSpec(ctx)
	if err != nil {
		return Reading{}, err
	}
	s.wake()
	resp, err := s.client.GetMetrics(ctx, &externalscaler.GetMetricsRequest{ScaledObjectRef: s.ref, MetricName: spec.GetMetricName()})
	if err != nil {
		return Reading{}, s.callError(ctx, "GetMetrics", err)
	}
	values := resp.GetMetricValues()
	if len(values) == 0 {
		return Reading{}, s.errorf(ErrBadResponse, "GetMetrics returned no value for metric %q", spec.GetMetricName())
	}
	mv := values[0]
	for _, v := range values {
		if v.GetMetricName() == spec.GetMetricName() {
			mv = v
			break
		}
	}
	var q resource.Quantity
	if f := mv.GetMetricValueFloat(); f > 0 {
		v, err := valueFromFloat(f)
		if err != nil {
			return Reading{}, s.errorf(ErrBadResponse, "GetMetrics: %v", err)
		}
		q = v.q
	} else {
		q = *resource.NewQuantity(mv.GetMetricValue(), resource.DecimalSI)
	}
	active, err := s.client.IsActive(ctx, s.ref)
	if err != nil {
		return Reading{}, s.callError(ctx, "IsActive", err)
	}
	r := Reading{Value: q, Active: active.GetResult()}
	if s.push {
		s.mu.Lock()
		if s.pushSeq != s.polledSeq {
			r.Active = s.pushed
			s.polledSeq = s.pushSeq
		}
		s.mu.Unlock()
	}
	return r, nil
}

// wake makes a connection in transient failure try again now rather than
// after gRPC's backoff: a poll is a deliberate attempt.
func (s *externalScaler) wake() {
	if s.conn.GetState() == connectivity.TransientFailure {
		s.conn.ResetConnectBackoff()
	}
}

// startStream starts the StreamIsActive goroutine once, unless closed.
func (s *externalScaler) startStream() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed.Load() {
		return
	}
	s.started = true
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.done = make(chan struct{})
	go s.runStream(ctx)
}

// runStream keeps a StreamIsActive stream open until ctx ends, reopening
// it with a backoff (doubling from minBackoff to maxBackoff, back to
// minBackoff after a stream that delivered something or ended cleanly).
func (s *externalScaler) runStream(ctx context.Context) {
	defer close(s.done)
	delay := s.minBackoff
	for {
		received, err := s.streamOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if received || errors.Is(err, io.EOF) {
			delay = s.minBackoff
		}
		s.logger.V(2).Info("StreamIsActive ended, reopening", "trigger", s.triggerType, "address", s.address,
			"error", s.redact.clean(fmt.Sprint(err)), "after", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(delay*2, s.maxBackoff)
	}
}

// streamOnce reads one StreamIsActive stream until it breaks; received
// tells whether it delivered an activity.
func (s *externalScaler) streamOnce(ctx context.Context) (received bool, err error) {
	s.wake()
	stream, err := s.client.StreamIsActive(ctx, s.ref)
	if err != nil {
		return false, err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return received, err
		}
		received = true
		s.mu.Lock()
		s.pushed = resp.GetResult()
		s.pushSeq++
		s.mu.Unlock()
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
}

// callError classifies a gRPC call error: the caller's context ending, a
// closed scaler, an unreachable scaler (Unavailable), a timeout
// (DeadlineExceeded), or any other status (a bad response).
func (s *externalScaler) callError(ctx context.Context, call string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		kind := ErrUnreachable
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			kind = ErrTimeout
		}
		e := s.errorf(kind, "%s: poll cancelled: %v", call, ctxErr)
		e.ctxErr = ctxErr
		return e
	}
	if s.closed.Load() {
		return s.errorf(ErrClosed, "")
	}
	st, ok := status.FromError(err)
	if !ok {
		return s.errorf(ErrUnreachable, "%s: %v", call, err)
	}
	switch st.Code() {
	case codes.Unavailable:
		return s.errorf(ErrUnreachable, "%s: %s", call, st.Message())
	case codes.DeadlineExceeded:
		return s.errorf(ErrTimeout, "%s: %s", call, st.Message())
	default:
		return s.errorf(ErrBadResponse, "%s: %s: %s", call, st.Code(), st.Message())
	}
}

func (s *externalScaler) errorf(kind error, format string, args ...any) *Error {
	detail := ""
	if format != "" {
		detail = s.redact.clean(fmt.Sprintf(format, args...))
	}
	return &Error{Type: s.triggerType, Source: s.address, Kind: kind, Detail: detail}
}

// Close stops the StreamIsActive goroutine, waiting for it, and closes the
// connection. It is idempotent.
func (s *externalScaler) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	if err := s.conn.Close(); err != nil {
		return s.errorf(ErrUnreachable, "close: %v", err)
	}
	return nil
}
