package scaler

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// AMQP settings. A poll is one passive queue declaration on a kept
// connection and channel; both are re-opened after a failure.
const (
	rabbitMQDialTimeout = 5 * time.Second
	rabbitMQOpTimeout   = 10 * time.Second
	rabbitMQHeartbeat   = 10 * time.Second
	// rabbitMQMaxPages bounds the pages read from the management API for
	// one useRegex poll.
	rabbitMQMaxPages = 1000
)

// rabbitMQScaler reads a rabbitmq trigger's queue: over AMQP (a passive
// QueueDeclare: the number of ready messages) or through the management
// API (messages, ready messages and rates of one queue, or of the queues
// matching a regular expression).
type rabbitMQScaler struct {
	cfg     *scalers.RabbitMQConfig
	address string // redacted, for errors
	redact  redactor
	closed  atomic.Bool

	// AMQP.
	amqpURL    string
	amqpConfig amqp.Config
	pollMu     sync.Mutex // one AMQP poll at a time
	connMu     sync.Mutex // guards conn and ch
	conn       *amqp.Connection
	ch         *amqp.Channel

	// HTTP.
	src      *httpSource
	queueURL string // the queue's management API URL, or the vhost's queue listing with useRegex
}

func newRabbitMQ(c *scalers.RabbitMQConfig, deps Deps) (Scaler, error) {
	host := string(c.Host)
	s := &rabbitMQScaler{
		cfg:     c,
		address: redactURL(host),
		redact:  newRedactor(string(c.Password), string(c.Key), string(c.Cert), host),
	}
	if u, err := url.Parse(host); err == nil {
		if p, ok := u.User.Password(); ok {
			s.redact = newRedactor(append(s.redact.secrets, p)...)
		}
	}
	if c.QueueName == "" {
		return nil, s.errorf(ErrInvalidConfig, "no queueName")
	}
	switch c.Protocol {
	case scalers.RabbitMQProtocolAMQP:
		if c.Mode != scalers.RabbitMQModeQueueLength {
			return nil, s.errorf(ErrInvalidConfig, "mode %s needs the http protocol", c.Mode)
		}
		if err := s.setupAMQP(); err != nil {
			return nil, err
		}
	case scalers.RabbitMQProtocolHTTP:
		if err := s.setupHTTP(deps); err != nil {
			return nil, err
		}
	default:
		return nil, s.errorf(ErrInvalidConfig, "unknown protocol %q", c.Protocol)
	}
	return s, nil
}

// setupAMQP prepares the AMQP URL and connection settings: the host's URI
// with vhostName, username and password put in, as KEDA does. Nothing is
// dialled before the first poll.
func (s *rabbitMQScaler) setupAMQP() error {
	c := s.cfg
	uri, err := amqp.ParseURI(string(c.Host))
	if err != nil {
		// The parse error may quote the URL: do not include it.
		return s.errorf(ErrInvalidConfig, "host is not a valid AMQP URI")
	}
	s.amqpURL = string(c.Host)
	if c.VhostName != "" || c.Username != "" {
		if c.VhostName != "" {
			uri.Vhost = c.VhostName
		}
		if c.Username != "" {
			uri.Username, uri.Password = c.Username, string(c.Password)
		}
		s.amqpURL = uri.String()
	}
	s.redact = newRedactor(append(s.redact.secrets, s.amqpURL)...)
	s.address = fmt.Sprintf("%s://%s/%s", uri.Scheme, net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port)), url.PathEscape(uri.Vhost))

	name := "ebb"
	if c.Namespace != "" || c.ScaledObjectName != "" {
		name = fmt.Sprintf("ebb-%s-%s", c.Namespace, c.ScaledObjectName)
	}
	s.amqpConfig = amqp.Config{
		Heartbeat:  rabbitMQHeartbeat,
		Properties: amqp.Table{"connection_name": name, "product": "ebb"},
	}
	switch {
	case c.EnableTLS:
		tc, err := s.tlsConfig()
		if err != nil {
			return err
		}
		s.amqpConfig.TLSClientConfig = tc
	case uri.Scheme == "amqps" && c.UnsafeSSL:
		s.amqpConfig.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true} //nolint:gosec // unsafeSsl is the user's explicit choice
	}
	return nil
}

// tlsConfig builds the client TLS settings of tls: enable: the client
// certificate, the CA, and unsafeSsl.
func (s *rabbitMQScaler) tlsConfig() (*tls.Config, error) {
	c := s.cfg
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.UnsafeSSL} //nolint:gosec // unsafeSsl is the user's explicit choice
	if c.Cert != "" || c.Key != "" {
		cert, err := tls.X509KeyPair([]byte(c.Cert), []byte(c.Key))
		if err != nil {
			// The parse error may quote PEM content: do not include it.
			return nil, s.errorf(ErrInvalidConfig, "cert and key are not a valid PEM certificate and key pair")
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if c.CA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(c.CA)) {
			return nil, s.errorf(ErrInvalidConfig, "ca holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// setupHTTP builds the management API URL as KEDA does: the host URL's
// last path segment is the vhost ("/" when empty), replaced by vhostName
// when set; what precedes it is a path prefix. The credentials of the URL,
// or username and password, go in a basic Authorization header.
func (s *rabbitMQScaler) setupHTTP(deps Deps) error {
	c := s.cfg
	u, err := url.Parse(string(c.Host))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return s.errorf(ErrInvalidConfig, "host must be an http or https URL")
	}
	auth := &scalers.HTTPAuth{}
	if u.User != nil {
		auth.Username = u.User.Username()
		p, _ := u.User.Password()
		auth.Password = scalers.Secret(p)
	}
	if c.Username != "" {
		auth.Username, auth.Password = c.Username, c.Password
	}
	if auth.Username != "" || auth.Password != "" {
		auth.Modes = append(auth.Modes, scalers.AuthModeBasic)
	}
	if c.EnableTLS {
		if c.Cert != "" {
			auth.Modes = append(auth.Modes, scalers.AuthModeTLS)
			auth.Cert, auth.Key = c.Cert, c.Key
		}
		auth.CA = c.CA
	}

	raw := u.EscapedPath()
	parts := strings.Split(raw, "/")
	vhost := parts[len(parts)-1]
	prefix := path.Join(parts[:len(parts)-1]...)
	if prefix != "" {
		prefix = "/" + prefix
	}
	if c.VhostName != "" {
		vhost = url.PathEscape(c.VhostName)
	}
	if vhost == "" {
		vhost = "%2F"
	}
	base := url.URL{Scheme: u.Scheme, Host: u.Host}
	api := base.String() + prefix + "/api/queues/" + vhost
	if c.UseRegex {
		s.queueURL = api
	} else {
		s.queueURL = api + "/" + url.PathEscape(c.QueueName)
	}
	s.address = base.String() + prefix + "/" + vhost

	src, err := newHTTPSource(c.Type(), base.String(), auth, c.UnsafeSSL, 0, deps)
	if err != nil {
		return err
	}
	src.address = s.address
	src.redact = newRedactor(append(src.redact.secrets, s.redact.secrets...)...)
	if c.Timeout > 0 {
		// The trigger's timeout replaces the operator's HTTP timeout, as
		// KEDA's does; the transport stays shared.
		src.client = &http.Client{Transport: src.client.Transport, Timeout: c.Timeout, CheckRedirect: src.client.CheckRedirect, Jar: src.client.Jar}
	}
	s.src = src
	return nil
}

// PollTimeout is the HTTP client's timeout (the trigger's timeout, or the
// operator's); for AMQP, the dial and operation bounds.
func (s *rabbitMQScaler) PollTimeout() time.Duration {
	if s.src != nil {
		return s.src.pollTimeout()
	}
	return rabbitMQDialTimeout + rabbitMQOpTimeout
}

// Poll reads the queue. QueueLength: the number of messages (over AMQP,
// the ready messages a passive declaration reports; over HTTP, ready and
// unacknowledged, or ready only with excludeUnacknowledged). The HTTP
// rate modes read the management API's rates. Active follows KEDA: the
// value strictly greater than activationValue, and for MessageRate the
// publish rate or the message count greater than it.
func (s *rabbitMQScaler) Poll(ctx context.Context) (Reading, error) {
	if s.closed.Load() {
		return Reading{}, s.errorf(ErrClosed, "")
	}
	if err := ctx.Err(); err != nil {
		e := s.errorf(ErrUnreachable, "poll cancelled: %v", err)
		e.ctxErr = err
		return Reading{}, e
	}
	if s.src != nil {
		return s.pollHTTP(ctx)
	}
	n, err := s.pollAMQP(ctx)
	if err != nil {
		return Reading{}, err
	}
	return Reading{Value: *resource.NewQuantity(n, resource.DecimalSI), Active: float64(n) > s.cfg.ActivationValue}, nil
}

// pollAMQP declares the queue passively on the kept channel, opening the
// connection and channel when they are missing or closed. A connection
// found broken is re-dialled once within the poll.
func (s *rabbitMQScaler) pollAMQP(ctx context.Context) (int64, error) {
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	for attempt := 0; ; attempt++ {
		conn, ch, fresh, err := s.channel(ctx)
		if err != nil {
			return 0, err
		}
		n, broken, err := s.declare(ctx, conn, ch)
		if err == nil {
			return n, nil
		}
		if broken && !fresh && attempt == 0 && ctx.Err() == nil {
			continue
		}
		return 0, err
	}
}

// channel returns the open connection and channel, dialling and opening
// what is needed; fresh is true when the connection was dialled now.
func (s *rabbitMQScaler) channel(ctx context.Context) (conn *amqp.Connection, ch *amqp.Channel, fresh bool, err error) {
	s.connMu.Lock()
	conn, ch = s.conn, s.ch
	s.connMu.Unlock()
	if ch != nil && !ch.IsClosed() && conn != nil && !conn.IsClosed() {
		return conn, ch, false, nil
	}
	if conn == nil || conn.IsClosed() {
		if conn != nil {
			_ = conn.Close()
		}
		conn, err = s.dial(ctx)
		if err != nil {
			return nil, nil, false, err
		}
		fresh = true
	}
	ch, err = conn.Channel()
	if err != nil {
		_ = conn.Close()
		s.setConn(nil, nil)
		return nil, nil, false, s.amqpError(ctx, "open channel", err)
	}
	if !s.setConn(conn, ch) {
		_ = conn.Close()
		return nil, nil, false, s.errorf(ErrClosed, "")
	}
	return conn, ch, fresh, nil
}

// setConn stores conn and ch unless the scaler is closed.
func (s *rabbitMQScaler) setConn(conn *amqp.Connection, ch *amqp.Channel) bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.closed.Load() {
		return false
	}
	s.conn, s.ch = conn, ch
	return true
}

// dropConn closes the kept connection, so the next poll dials again.
func (s *rabbitMQScaler) dropConn() {
	s.connMu.Lock()
	conn := s.conn
	s.conn, s.ch = nil, nil
	s.connMu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
}

// dial connects within the dial timeout and the caller's context.
func (s *rabbitMQScaler) dial(ctx context.Context) (*amqp.Connection, error) {
	cfg := s.amqpConfig
	if cfg.TLSClientConfig != nil {
		cfg.TLSClientConfig = cfg.TLSClientConfig.Clone()
	}
	cfg.Dial = func(network, addr string) (net.Conn, error) {
		deadline := time.Now().Add(rabbitMQDialTimeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		d := net.Dialer{Deadline: deadline}
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		// Bounds the TLS and AMQP handshakes; amqp091 clears it once open.
		if err := conn.SetDeadline(deadline); err != nil {
			_ = conn.Close()
			return nil, err
		}
		return conn, nil
	}
	conn, err := amqp.DialConfig(s.amqpURL, cfg)
	if err != nil {
		return nil, s.amqpError(ctx, "connect", err)
	}
	return conn, nil
}

// declare runs the passive declaration, bounded by the caller's context
// and rabbitMQOpTimeout. broken reports a connection found closed, which
// the caller may dial again.
func (s *rabbitMQScaler) declare(ctx context.Context, conn *amqp.Connection, ch *amqp.Channel) (n int64, broken bool, err error) {
	type result struct {
		q   amqp.Queue
		err error
	}
	done := make(chan result, 1)
	go func() {
		q, err := ch.QueueDeclarePassive(s.cfg.QueueName, false, false, false, false, nil)
		done <- result{q, err}
	}()
	timer := time.NewTimer(rabbitMQOpTimeout)
	defer timer.Stop()
	select {
	case r := <-done:
		if r.err == nil {
			return int64(r.q.Messages), false, nil
		}
		if s.closed.Load() {
			return 0, false, s.errorf(ErrClosed, "")
		}
		var aerr *amqp.Error
		if errors.As(r.err, &aerr) && aerr.Server && !conn.IsClosed() {
			// A channel error (no such queue, an exclusive queue of
			// another connection): the server closed the channel only; the
			// next poll opens another.
			if aerr.Code == amqp.NotFound {
				return 0, false, s.errorf(ErrBadResponse, "queue %q not found in the vhost: %s", s.cfg.QueueName, aerr.Reason)
			}
			return 0, false, s.errorf(ErrBadResponse, "declare queue %q: %s", s.cfg.QueueName, aerr.Reason)
		}
		// The connection is gone or in doubt: dial again.
		s.dropConn()
		return 0, true, s.amqpError(ctx, "declare queue", r.err)
	case <-ctx.Done():
		s.dropConn()
		e := s.errorf(ErrUnreachable, "poll cancelled: %v", ctx.Err())
		e.ctxErr = ctx.Err()
		return 0, false, e
	case <-timer.C:
		s.dropConn()
		return 0, false, s.errorf(ErrTimeout, "no answer within %s", rabbitMQOpTimeout)
	}
}

// amqpError classifies an amqp091 error: the caller's context ending, a
// refusal or error reply from the server (bad response: wrong credentials,
// no such vhost), a timeout, or a network failure.
func (s *rabbitMQScaler) amqpError(ctx context.Context, what string, err error) *Error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		e := s.errorf(ErrUnreachable, "poll cancelled: %v", ctxErr)
		e.ctxErr = ctxErr
		return e
	}
	var aerr *amqp.Error
	if errors.As(err, &aerr) && !errors.Is(err, amqp.ErrClosed) {
		if aerr.Code == amqp.AccessRefused {
			return s.errorf(ErrBadResponse, "%s: access refused (check the credentials and the vhost): %s", what, aerr.Reason)
		}
		return s.errorf(ErrBadResponse, "%s: %s", what, aerr.Reason)
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return s.errorf(ErrTimeout, "%s: %v", what, err)
	}
	return s.errorf(ErrUnreachable, "%s: %v", what, err)
}

// rabbitMQQueue is the part of a management API queue object ebb reads.
type rabbitMQQueue struct {
	Name          string `json:"name"`
	Messages      int64  `json:"messages"`
	MessagesReady int64  `json:"messages_ready"`
	MessageStats  struct {
		PublishDetails    struct{ Rate float64 } `json:"publish_details"`
		DeliverGetDetails struct{ Rate float64 } `json:"deliver_get_details"`
	} `json:"message_stats"`
}

// rabbitMQPage is one page of the management API's queue listing.
type rabbitMQPage struct {
	Items     []rabbitMQQueue `json:"items"`
	PageCount int             `json:"page_count"`
}

// rabbitMQStats is what a poll combines: message counts and rates.
type rabbitMQStats struct {
	messages, ready       int64
	publishRate, delivery float64
}

func (s *rabbitMQScaler) pollHTTP(ctx context.Context) (Reading, error) {
	var st rabbitMQStats
	if s.cfg.UseRegex {
		queues, err := s.listQueues(ctx)
		if err != nil {
			return Reading{}, err
		}
		st = combineRabbitMQQueues(queues, s.cfg.Operation)
	} else {
		body, err := s.src.get(ctx, s.queueURL, map[string]string{"Accept": "application/json"})
		if err != nil {
			return Reading{}, err
		}
		var q rabbitMQQueue
		if err := json.Unmarshal(body, &q); err != nil {
			return Reading{}, s.errorf(ErrBadResponse, "the queue is not a JSON object: %v", err)
		}
		st = rabbitMQStatsOf(q)
	}
	r, err := rabbitMQReading(st, s.cfg)
	if err != nil {
		return Reading{}, s.errorf(ErrBadResponse, "%v", err)
	}
	return r, nil
}

// listQueues reads every page of the queues matching the regular
// expression. KEDA refuses more than one page; ebb reads them all.
func (s *rabbitMQScaler) listQueues(ctx context.Context) ([]rabbitMQQueue, error) {
	var all []rabbitMQQueue
	for page := 1; ; page++ {
		q := url.Values{}
		q.Set("page", strconv.Itoa(page))
		q.Set("page_size", strconv.FormatInt(s.cfg.PageSize, 10))
		q.Set("name", s.cfg.QueueName)
		q.Set("use_regex", "true")
		body, err := s.src.get(ctx, s.queueURL+"?"+q.Encode(), map[string]string{"Accept": "application/json"})
		if err != nil {
			return nil, err
		}
		var p rabbitMQPage
		if err := json.Unmarshal(body, &p); err != nil {
			return nil, s.errorf(ErrBadResponse, "the queue listing is not a page of queues: %v", err)
		}
		all = append(all, p.Items...)
		if page >= p.PageCount || len(p.Items) == 0 {
			return all, nil
		}
		if page >= rabbitMQMaxPages {
			return nil, s.errorf(ErrBadResponse, "more than %d pages of queues match; raise pageSize", rabbitMQMaxPages)
		}
	}
}

func rabbitMQStatsOf(q rabbitMQQueue) rabbitMQStats {
	return rabbitMQStats{messages: q.Messages, ready: q.MessagesReady,
		publishRate: q.MessageStats.PublishDetails.Rate, delivery: q.MessageStats.DeliverGetDetails.Rate}
}

// combineRabbitMQQueues applies the operation to every field, as KEDA
// does: sum, avg (integer division for the counts) or max; no queue gives
// zeros.
func combineRabbitMQQueues(queues []rabbitMQQueue, op string) rabbitMQStats {
	var out rabbitMQStats
	if len(queues) == 0 {
		return out
	}
	for _, q := range queues {
		st := rabbitMQStatsOf(q)
		if op == scalers.RabbitMQOperationMax {
			out.messages = max(out.messages, st.messages)
			out.ready = max(out.ready, st.ready)
			out.publishRate = max(out.publishRate, st.publishRate)
			out.delivery = max(out.delivery, st.delivery)
			continue
		}
		out.messages += st.messages
		out.ready += st.ready
		out.publishRate += st.publishRate
		out.delivery += st.delivery
	}
	if op == scalers.RabbitMQOperationAvg {
		n := int64(len(queues))
		out.messages /= n
		out.ready /= n
		out.publishRate /= float64(n)
		out.delivery /= float64(n)
	}
	return out
}

// rabbitMQReading turns the combined stats into the metric of the mode,
// with KEDA's activity rules. Its error is a plain one, for the caller to
// wrap.
func rabbitMQReading(st rabbitMQStats, c *scalers.RabbitMQConfig) (Reading, error) {
	messages := st.messages
	if c.ExcludeUnacknowledged {
		messages = st.ready
	}
	act := c.ActivationValue
	var f float64
	var active bool
	switch c.Mode {
	case scalers.RabbitMQModeQueueLength:
		return Reading{Value: *resource.NewQuantity(messages, resource.DecimalSI), Active: float64(messages) > act}, nil
	case scalers.RabbitMQModeMessageRate:
		f = st.publishRate
		active = f > act || float64(messages) > act
	case scalers.RabbitMQModeDeliverGetRate:
		f = st.delivery
		active = f > act
	case scalers.RabbitMQModePublishedToDeliveredRatio:
		switch {
		case st.publishRate > 0 && st.delivery == 0:
			f = act
		case st.publishRate > 0:
			f = st.publishRate / st.delivery
		}
		active = f > act || (st.publishRate > 0 && st.delivery == 0)
	case scalers.RabbitMQModeExpectedQueueConsumptionTime:
		if st.delivery == 0 {
			f = act
		} else {
			f = (st.publishRate-st.delivery)/st.delivery + float64(messages)/st.delivery
		}
		active = f > act || st.delivery == 0
	default:
		return Reading{}, fmt.Errorf("unknown mode %q", c.Mode)
	}
	v, err := valueFromFloat(f)
	if err != nil {
		return Reading{}, fmt.Errorf("%s: %w", c.Mode, err)
	}
	return Reading{Value: v.q, Active: active}, nil
}

func (s *rabbitMQScaler) errorf(kind error, format string, args ...any) *Error {
	detail := ""
	if format != "" {
		detail = s.redact.clean(fmt.Sprintf(format, args...))
	}
	return &Error{Type: s.cfg.Type(), Source: s.address, Kind: kind, Detail: detail}
}

// Close closes the AMQP connection (a running poll then fails with
// ErrClosed) or the HTTP scaler's own transport. It is idempotent.
func (s *rabbitMQScaler) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.src != nil {
		s.src.close()
		return nil
	}
	s.connMu.Lock()
	conn := s.conn
	s.conn, s.ch = nil, nil
	s.connMu.Unlock()
	if conn != nil {
		if err := conn.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
			return s.errorf(ErrUnreachable, "close: %v", err)
		}
	}
	return nil
}
