package scaler

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// beanstalkdKeepAlive is the TCP keep-alive period of the kept connection,
// go-beanstalk's default.
const beanstalkdKeepAlive = beanstalk.DefaultKeepAlivePeriod

// beanstalkdScaler reads a tube's statistics over one connection kept
// for the scaler's life, dialled at the first poll and again after a
// failure. Polls take turns on it.
type beanstalkdScaler struct {
	cfg *scalers.BeanstalkdConfig
	// turn is held by the poll using the connection.
	turn chan struct{}
	// mu guards conn and raw; Close takes it while a poll may run.
	mu     sync.Mutex
	conn   *beanstalk.Conn
	raw    net.Conn
	closed atomic.Bool
}

func newBeanstalkd(c *scalers.BeanstalkdConfig, _ Deps) (Scaler, error) {
	s := &beanstalkdScaler{cfg: c, turn: make(chan struct{}, 1)}
	if c.Address == "" {
		return nil, s.errorf(ErrInvalidConfig, "no server")
	}
	if !scalers.ValidBeanstalkdTube(c.Tube) {
		// A name beanstalkd refuses, or one that would break the
		// protocol's command line, is never sent.
		return nil, s.errorf(ErrInvalidConfig, "tube %q is not a beanstalkd tube name", truncate(c.Tube, 64))
	}
	return s, nil
}

// PollTimeout is the trigger's timeout, which bounds connecting and each
// poll; 0 when it is 0.
func (s *beanstalkdScaler) PollTimeout() time.Duration { return s.cfg.Timeout }

// Poll reads the tube's statistics (stats-tube), as KEDA does: the value
// is the ready and reserved jobs, plus the delayed ones with
// includeDelayed. A tube beanstalkd does not know (no job, no client on
// it) counts 0. Active is the value strictly greater than activationValue.
func (s *beanstalkdScaler) Poll(ctx context.Context) (Reading, error) {
	if s.closed.Load() {
		return Reading{}, s.errorf(ErrClosed, "")
	}
	if ctx.Err() != nil {
		return Reading{}, s.ctxError(ctx)
	}
	select {
	case s.turn <- struct{}{}:
		defer func() { <-s.turn }()
	case <-ctx.Done():
		return Reading{}, s.ctxError(ctx)
	}
	deadline := time.Time{}
	if s.cfg.Timeout > 0 {
		deadline = time.Now().Add(s.cfg.Timeout)
	}
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}

	conn, raw, err := s.connection(ctx, deadline)
	if err != nil {
		return Reading{}, err
	}
	// The read or write in progress ends when the caller gives up.
	_ = raw.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	stats, err := beanstalk.NewTube(conn, s.cfg.Tube).Stats()
	interrupted := !stop()

	switch {
	case err == nil:
	case errors.Is(err, beanstalk.ErrNotFound) && !interrupted:
		// The server answered NOT_FOUND: the connection is still in step.
		_ = raw.SetDeadline(time.Time{})
		return s.reading(0), nil
	default:
		// Whatever happened, the connection may be out of step: the next
		// poll dials again.
		s.drop(raw)
		return Reading{}, s.statsError(ctx, err)
	}
	if interrupted {
		s.drop(raw)
		return Reading{}, s.ctxError(ctx)
	}
	_ = raw.SetDeadline(time.Time{})

	var total int64
	keys := []string{"current-jobs-ready", "current-jobs-reserved"}
	if s.cfg.IncludeDelayed {
		keys = append(keys, "current-jobs-delayed")
	}
	for _, k := range keys {
		v, ok := stats[k]
		if !ok {
			return Reading{}, s.errorf(ErrBadResponse, "stats-tube %s: no %s in the answer", s.cfg.Tube, k)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return Reading{}, s.errorf(ErrBadResponse, "stats-tube %s: %s %q is not a count", s.cfg.Tube, k, truncate(v, 32))
		}
		if n > math.MaxInt64-total {
			return Reading{}, s.errorf(ErrBadResponse, "stats-tube %s: the job count is out of range", s.cfg.Tube)
		}
		total += n
	}
	return s.reading(total), nil
}

func (s *beanstalkdScaler) reading(total int64) Reading {
	return Reading{Value: *resource.NewQuantity(total, resource.DecimalSI), Active: float64(total) > s.cfg.ActivationValue}
}

// connection returns the kept connection, dialling one when there is
// none.
func (s *beanstalkdScaler) connection(ctx context.Context, deadline time.Time) (*beanstalk.Conn, net.Conn, error) {
	s.mu.Lock()
	conn, raw := s.conn, s.raw
	s.mu.Unlock()
	if conn != nil {
		return conn, raw, nil
	}
	dctx := ctx
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		dctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	d := net.Dialer{KeepAlive: beanstalkdKeepAlive}
	raw, err := d.DialContext(dctx, "tcp", s.cfg.Address)
	if err != nil {
		if beanstalkdCtxEnded(ctx) {
			return nil, nil, s.ctxError(ctx)
		}
		var netErr net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()) {
			return nil, nil, s.errorf(ErrTimeout, "connect: %v", err)
		}
		return nil, nil, s.errorf(ErrUnreachable, "connect: %v", err)
	}
	conn = beanstalk.NewConn(raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		_ = raw.Close()
		return nil, nil, s.errorf(ErrClosed, "")
	}
	s.conn, s.raw = conn, raw
	return conn, raw, nil
}

// drop closes raw and forgets it if it is the kept connection.
func (s *beanstalkdScaler) drop(raw net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.raw == raw {
		s.conn, s.raw = nil, nil
	}
	_ = raw.Close()
}

// statsError classifies a failed stats-tube: the caller's context ending,
// Close, a timeout, the connection failing, or an answer that is not the
// statistics (an error reply, a malformed answer).
func (s *beanstalkdScaler) statsError(ctx context.Context, err error) error {
	if beanstalkdCtxEnded(ctx) {
		return s.ctxError(ctx)
	}
	if s.closed.Load() {
		return s.errorf(ErrClosed, "")
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		if netErr.Timeout() {
			return s.errorf(ErrTimeout, "stats-tube %s: %v", s.cfg.Tube, err)
		}
		return s.errorf(ErrUnreachable, "stats-tube %s: %v", s.cfg.Tube, err)
	}
	var connErr beanstalk.ConnError
	if errors.As(err, &connErr) && beanstalkdReply(connErr.Err) {
		return s.errorf(ErrBadResponse, "stats-tube %s: %v", s.cfg.Tube, err)
	}
	// The connection closed (EOF) or broke mid-answer.
	return s.errorf(ErrUnreachable, "stats-tube %s: %v", s.cfg.Tube, err)
}

// beanstalkdReply reports whether err is an answer of the server (an
// error reply or a line go-beanstalk does not expect) rather than a
// transport failure.
func beanstalkdReply(err error) bool {
	for _, e := range []error{
		beanstalk.ErrBadFormat, beanstalk.ErrDraining, beanstalk.ErrInternal, beanstalk.ErrNoCRLF,
		beanstalk.ErrOOM, beanstalk.ErrUnknown,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	var numErr *strconv.NumError
	return errors.As(err, &numErr) || strings.HasPrefix(err.Error(), "unknown response: ")
}

// beanstalkdCtxEnded reports whether the caller's context has ended, or its
// deadline has passed: the connection's deadline, set from it, may fire a
// moment before the context's own timer.
func beanstalkdCtxEnded(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

func (s *beanstalkdScaler) ctxError(ctx context.Context) *Error {
	err := ctx.Err()
	if err == nil {
		err = context.DeadlineExceeded
	}
	e := s.errorf(ErrUnreachable, "poll cancelled: %v", err)
	e.ctxErr = err
	return e
}

func (s *beanstalkdScaler) errorf(kind error, format string, args ...any) *Error {
	detail := ""
	if format != "" {
		detail = fmt.Sprintf(format, args...)
	}
	return &Error{Type: s.cfg.Type(), Source: s.cfg.Address, Kind: kind, Detail: detail}
}

// Close closes the connection, ending a poll in progress. It is
// idempotent.
func (s *beanstalkdScaler) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.raw != nil {
		_ = s.raw.Close()
		s.conn, s.raw = nil, nil
	}
	return nil
}
