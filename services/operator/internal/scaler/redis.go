package scaler

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// Redis client settings. A scaler issues one command at a time per poll,
// so a small pool suffices; polls of the same scaler may overlap.
const (
	redisPoolSize     = 2
	redisDialTimeout  = 5 * time.Second
	redisReadTimeout  = 3 * time.Second
	redisWriteTimeout = 3 * time.Second
	redisMaxRetries   = 1
	// redisDialAttempts is how often a connection is dialled before a
	// command fails. go-redis dials 5 times by default, each attempt with
	// its own DialTimeout, and a Sentinel client multiplies that (each
	// dial of the master first asks the sentinels, each dialled 5 times):
	// with the sentinel down, one poll took 11 s, past the operator's poll
	// timeout, and a blackholed address would take 25 s. The next poll is
	// the retry.
	redisDialAttempts = 1
)

// redisScaler reads the length of a list (redis, redis-cluster,
// redis-sentinel triggers) through one go-redis client kept for the
// scaler's life.
type redisScaler struct {
	cfg     *scalers.RedisConfig
	client  redis.UniversalClient
	address string
	redact  redactor
	closed  atomic.Bool
}

func newRedis(c *scalers.RedisConfig, _ Deps) (*redisScaler, error) {
	conn := c.Connection
	s := &redisScaler{
		cfg:     c,
		address: strings.Join(conn.Addresses, ","),
		redact: newRedactor(string(conn.Password), string(conn.SentinelPassword), string(conn.Key),
			string(conn.KeyPassword), string(conn.Cert)),
	}
	if len(conn.Addresses) == 0 {
		return nil, s.errorf(ErrInvalidConfig, "no address")
	}
	var tlsConfig *tls.Config
	if conn.EnableTLS {
		var err error
		if tlsConfig, err = s.tlsConfig(); err != nil {
			return nil, err
		}
	}
	// One set of options for the three modes: a plain client on the first
	// address, a cluster client (even with one address), or a client of
	// the master the sentinels name.
	opts := &redis.UniversalOptions{
		Addrs:           conn.Addresses,
		Username:        conn.Username,
		Password:        string(conn.Password),
		DB:              int(c.DatabaseIndex),
		TLSConfig:       tlsConfig,
		PoolSize:        redisPoolSize,
		DialTimeout:     redisDialTimeout,
		ReadTimeout:     redisReadTimeout,
		WriteTimeout:    redisWriteTimeout,
		MaxRetries:      redisMaxRetries,
		DialerRetries:   redisDialAttempts,
		DisableIdentity: true,
	}
	switch conn.Mode {
	case scalers.RedisStandalone, "":
		opts.Addrs = conn.Addresses[:1]
	case scalers.RedisCluster:
		opts.IsClusterMode = true
	case scalers.RedisSentinel:
		if conn.SentinelMaster == "" {
			return nil, s.errorf(ErrInvalidConfig, "sentinelMaster is required")
		}
		opts.MasterName = conn.SentinelMaster
		opts.SentinelUsername = conn.SentinelUsername
		opts.SentinelPassword = string(conn.SentinelPassword)
	default:
		return nil, s.errorf(ErrInvalidConfig, "unknown connection mode %q", conn.Mode)
	}
	s.client = redis.NewUniversalClient(opts)
	return s, nil
}

func (s *redisScaler) tlsConfig() (*tls.Config, error) {
	conn := s.cfg.Connection
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: conn.UnsafeSSL} //nolint:gosec // unsafeSsl is the user's explicit choice
	if conn.KeyPassword != "" {
		return nil, s.errorf(ErrNotImplemented, "an encrypted client key (keyPassword) is not supported by ebb yet")
	}
	if conn.Cert != "" || conn.Key != "" {
		cert, err := tls.X509KeyPair([]byte(conn.Cert), []byte(conn.Key))
		if err != nil {
			return nil, s.errorf(ErrInvalidConfig, "cert and key are not a valid PEM certificate and key pair")
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if conn.CA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(conn.CA)) {
			return nil, s.errorf(ErrInvalidConfig, "ca holds no PEM certificate")
		}
		c.RootCAs = pool
	}
	return c, nil
}

// Poll reads the length of listName as KEDA does: by the key's type, LLEN
// for a list (SCARD, HLEN, ZCARD for a set, hash or sorted set), 0 when the
// key does not exist. Active is length > activationListLength.
func (s *redisScaler) Poll(ctx context.Context) (Reading, error) {
	if s.closed.Load() {
		return Reading{}, s.errorf(ErrClosed, "")
	}
	key := s.cfg.ListName
	typ, err := s.client.Type(ctx, key).Result()
	if err != nil {
		return Reading{}, s.commandError(ctx, "TYPE", err)
	}
	var n int64
	switch typ {
	case "list":
		n, err = s.client.LLen(ctx, key).Result()
	case "set":
		n, err = s.client.SCard(ctx, key).Result()
	case "hash":
		n, err = s.client.HLen(ctx, key).Result()
	case "zset":
		n, err = s.client.ZCard(ctx, key).Result()
	case "none":
	default:
		return Reading{}, s.errorf(ErrBadResponse, "key %q is a %s; a list, set, hash or sorted set is needed", key, typ)
	}
	if err != nil {
		return Reading{}, s.commandError(ctx, "length", err)
	}
	return Reading{Value: *resource.NewQuantity(n, resource.DecimalSI), Active: n > s.cfg.ActivationListLength}, nil
}

// commandError classifies a go-redis error: the caller's context ending,
// a reply error from the server (bad response), a closed client, or a
// network failure (unreachable).
func (s *redisScaler) commandError(ctx context.Context, what string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		e := s.errorf(ErrUnreachable, "poll cancelled: %v", ctxErr)
		e.ctxErr = ctxErr
		return e
	}
	if errors.Is(err, redis.ErrClosed) {
		return s.errorf(ErrClosed, "")
	}
	// A sentinel answers GET-MASTER-ADDR-BY-NAME with nil for a master it
	// does not monitor; go-redis reports that as "all sentinels ... are
	// unreachable: redis: nil".
	if s.cfg.Connection.Mode == scalers.RedisSentinel && errors.Is(err, redis.Nil) {
		return s.errorf(ErrBadResponse, "%s: no sentinel monitors a master named %q", what, s.cfg.Connection.SentinelMaster)
	}
	var replyErr redis.Error
	if errors.As(err, &replyErr) && !isNetError(err) {
		return s.errorf(ErrBadResponse, "%s: %v", what, err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return s.errorf(ErrTimeout, "%s: %v", what, err)
	}
	return s.errorf(ErrUnreachable, "%s: %v", what, err)
}

func isNetError(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr)
}

func (s *redisScaler) errorf(kind error, format string, args ...any) *Error {
	detail := ""
	if format != "" {
		detail = s.redact.clean(fmt.Sprintf(format, args...))
	}
	return &Error{Type: s.cfg.Type(), Source: s.address, Kind: kind, Detail: detail}
}

// Close closes the client and its connection pool. It is idempotent.
func (s *redisScaler) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.client.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return s.errorf(ErrUnreachable, "close: %v", err)
	}
	return nil
}
