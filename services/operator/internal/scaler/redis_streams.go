package scaler

import (
	"context"
	"errors"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// redisStreamsScaler reads a stream (redis-streams, redis-cluster-streams,
// redis-sentinel-streams triggers): the pending entries of a consumer
// group, the stream's length, or a consumer group's lag, as the config's
// mode says. It shares the redis scaler's client setup (one go-redis
// client per scaler, kept for the scaler's life) and its error
// classification.
type redisStreamsScaler struct {
	cfg *scalers.RedisStreamsConfig
	// conn holds the client, the address and the redaction of the
	// connection's secrets; its config has the connection and database
	// only, so its errors are given this trigger's type by retype.
	conn *redisScaler
}

func newRedisStreams(c *scalers.RedisStreamsConfig, deps Deps) (Scaler, error) {
	s := &redisStreamsScaler{cfg: c}
	conn, err := newRedis(&scalers.RedisConfig{
		ListName:      c.Stream,
		DatabaseIndex: c.DatabaseIndex,
		Connection:    c.Connection,
	}, deps)
	if err != nil {
		return nil, s.retype(err)
	}
	s.conn = conn
	switch c.Mode {
	case scalers.RedisStreamsPendingEntries, scalers.RedisStreamsLag:
		if c.ConsumerGroup == "" {
			_ = conn.Close()
			return nil, s.errorf(ErrInvalidConfig, "mode %s needs a consumerGroup", c.Mode)
		}
	case scalers.RedisStreamsStreamLength:
	default:
		_ = conn.Close()
		return nil, s.errorf(ErrInvalidConfig, "unknown redis streams mode %q", c.Mode)
	}
	return s, nil
}

// Poll reads the metric of the config's mode, as KEDA does:
//
//   - pendingEntriesCount: the count of XPENDING's summary for the
//     consumer group (an error when the stream or group does not exist);
//   - streamLength: XLEN (0 when the stream does not exist);
//   - lagCount: the lag XINFO GROUPS reports for the consumer group, or
//     the stream's length (XLEN) when the group is not registered yet, as
//     nothing of the stream has been delivered to it. A lag Redis cannot
//     determine (a NULL lag, after entries were deleted within the group's
//     unread range) is a bad response rather than a made-up value.
//
// Active is the value strictly greater than activationLagCount, whatever
// the mode, as in KEDA.
func (s *redisStreamsScaler) Poll(ctx context.Context) (Reading, error) {
	if s.conn.closed.Load() {
		return Reading{}, s.errorf(ErrClosed, "")
	}
	n, err := s.count(ctx)
	if err != nil {
		return Reading{}, err
	}
	return Reading{Value: *resource.NewQuantity(n, resource.DecimalSI), Active: n > s.cfg.ActivationLagCount}, nil
}

func (s *redisStreamsScaler) count(ctx context.Context) (int64, error) {
	client := s.conn.client
	stream, group := s.cfg.Stream, s.cfg.ConsumerGroup
	switch s.cfg.Mode {
	case scalers.RedisStreamsPendingEntries:
		p, err := client.XPending(ctx, stream, group).Result()
		if err != nil {
			return 0, s.retype(s.conn.commandError(ctx, "XPENDING", err))
		}
		return p.Count, nil
	case scalers.RedisStreamsLag:
		groups, err := client.XInfoGroups(ctx, stream).Result()
		if err != nil {
			return 0, s.retype(s.conn.commandError(ctx, "XINFO GROUPS", err))
		}
		for _, g := range groups {
			if g.Name != group {
				continue
			}
			if g.Lag < 0 {
				return 0, s.errorf(ErrBadResponse, "Redis cannot determine the lag of consumer group %q of stream %q", group, stream)
			}
			return g.Lag, nil
		}
		fallthrough // group not registered yet: everything in the stream lags
	default:
		n, err := client.XLen(ctx, stream).Result()
		if err != nil {
			return 0, s.retype(s.conn.commandError(ctx, "XLEN", err))
		}
		return n, nil
	}
}

// retype gives an *Error of the shared connection this trigger's type.
func (s *redisStreamsScaler) retype(err error) error {
	var e *Error
	if errors.As(err, &e) {
		e.Type = s.cfg.Type()
	}
	return err
}

func (s *redisStreamsScaler) errorf(kind error, format string, args ...any) *Error {
	var e *Error
	if s.conn != nil {
		e = s.conn.errorf(kind, format, args...)
	} else {
		e = &Error{Kind: kind}
	}
	e.Type = s.cfg.Type()
	return e
}

// Close closes the client and its connection pool. It is idempotent.
func (s *redisStreamsScaler) Close() error {
	return s.retype(s.conn.Close())
}
