package scaler

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// etcd client settings.
const (
	// etcdPollTimeout bounds a poll (a Get, and the authentication it may
	// need). KEDA bounds a Get at 5 s; ebb gives up a second sooner, so
	// that it reports why itself within the operator's 5 s poll bound.
	etcdPollTimeout = 4 * time.Second
	// etcdMaxUnaryRetries bounds the client's retries of one request (100
	// by default, which with a refused token spins until the deadline).
	etcdMaxUnaryRetries = 3
)

// etcdAuthenticateMethod is the gRPC method that trades a user name and
// password for a token; it carries no token itself.
const etcdAuthenticateMethod = "/etcdserverpb.Auth/Authenticate"

// etcdScaler reads the value of watchKey through one etcd client kept for
// the scaler's life. KEDA also watches the key, to push activity changes
// between polls; ebb only polls it, at the trigger's polling interval,
// which is what its scale loop reads.
type etcdScaler struct {
	cfg     *scalers.EtcdConfig
	client  *clientv3.Client
	address string
	redact  redactor
	timeout time.Duration
	closed  atomic.Bool

	// The authentication token, when username and password are set: the
	// client is built without them (it would authenticate, over the
	// network, in clientv3.New); polls authenticate when they need to.
	tokenMu sync.RWMutex
	token   string
	authMu  sync.Mutex // one authentication at a time
}

func newEtcd(c *scalers.EtcdConfig, _ Deps) (*etcdScaler, error) {
	s := &etcdScaler{
		cfg:     c,
		timeout: etcdPollTimeout,
		redact:  newRedactor(string(c.Password), string(c.Key), string(c.KeyPassword), string(c.Cert)),
	}
	var endpoints, shown []string
	for _, e := range c.Endpoints {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		endpoints = append(endpoints, e)
		if strings.Contains(e, "://") {
			e = redactURL(e)
		}
		shown = append(shown, e)
	}
	s.address = strings.Join(shown, ",")
	if len(endpoints) == 0 {
		return nil, s.errorf(ErrInvalidConfig, "no endpoint")
	}
	if c.WatchKey == "" {
		return nil, s.errorf(ErrInvalidConfig, "no watchKey")
	}
	var tlsConfig *tls.Config
	if c.EnableTLS {
		var err error
		if tlsConfig, err = s.tlsConfig(); err != nil {
			return nil, err
		}
	}
	// clientv3.New dials lazily (grpc.NewClient) and, without a user
	// name, sends nothing: the first poll connects.
	client, err := clientv3.New(clientv3.Config{
		Endpoints:       endpoints,
		TLS:             tlsConfig,
		DialTimeout:     etcdPollTimeout,
		MaxUnaryRetries: etcdMaxUnaryRetries,
		Logger:          zap.NewNop(),
		DialOptions:     []grpc.DialOption{grpc.WithChainUnaryInterceptor(s.authInterceptor)},
	})
	if err != nil {
		return nil, s.errorf(ErrInvalidConfig, "etcd client: %v", err)
	}
	s.client = client
	return s, nil
}

func (s *etcdScaler) tlsConfig() (*tls.Config, error) {
	c := s.cfg
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.KeyPassword != "" {
		return nil, s.errorf(ErrNotImplemented, "an encrypted client key (keyPassword) is not supported by ebb yet")
	}
	if c.Cert != "" || c.Key != "" {
		cert, err := tls.X509KeyPair([]byte(c.Cert), []byte(c.Key))
		if err != nil {
			// The parse error may quote PEM content: do not include it.
			return nil, s.errorf(ErrInvalidConfig, "cert and key are not a valid PEM certificate and key pair")
		}
		t.Certificates = []tls.Certificate{cert}
	}
	if c.CA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(c.CA)) {
			return nil, s.errorf(ErrInvalidConfig, "ca holds no PEM certificate")
		}
		t.RootCAs = pool
	}
	return t, nil
}

// PollTimeout is the bound of one poll's request.
func (s *etcdScaler) PollTimeout() time.Duration { return s.timeout }

// Poll reads watchKey and parses its value as a float, as KEDA does
// (surrounding blanks allowed). A missing key, or a value that is not a
// finite number, is a bad response. Active is the value strictly greater
// than activationValue.
func (s *etcdScaler) Poll(ctx context.Context) (Reading, error) {
	if s.closed.Load() {
		return Reading{}, s.errorf(ErrClosed, "")
	}
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.client.Get(rctx, s.cfg.WatchKey)
	if err != nil {
		return Reading{}, s.requestError(ctx, err)
	}
	if len(resp.Kvs) == 0 {
		return Reading{}, s.errorf(ErrBadResponse, "watchKey %q does not exist", s.cfg.WatchKey)
	}
	raw := strings.TrimSpace(string(resp.Kvs[0].Value))
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil {
		return Reading{}, s.errorf(ErrBadResponse, "the value of watchKey %q, %q, is not a number", s.cfg.WatchKey, truncate(raw, 64))
	}
	v, err := valueFromFloat(f)
	if err != nil {
		return Reading{}, s.errorf(ErrBadResponse, "watchKey %q: %v", s.cfg.WatchKey, err)
	}
	return Reading{Value: v.q, Active: v.f > s.cfg.ActivationValue}, nil
}

// authInterceptor adds the token to every request but the authentication
// itself, authenticating first when there is none, and once more when the
// server refuses the token (expired, or the server restarted).
func (s *etcdScaler) authInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if s.cfg.Username == "" || method == etcdAuthenticateMethod {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	token, err := s.currentToken(ctx, "")
	if err != nil {
		return err
	}
	err = invoker(withToken(ctx, token), method, req, reply, cc, opts...)
	if refused := rpctypes.Error(err); errors.Is(refused, rpctypes.ErrInvalidAuthToken) ||
		errors.Is(refused, rpctypes.ErrAuthOldRevision) || errors.Is(refused, rpctypes.ErrUserEmpty) {
		if token, err = s.currentToken(ctx, token); err != nil {
			return err
		}
		err = invoker(withToken(ctx, token), method, req, reply, cc, opts...)
	}
	return err
}

// currentToken returns the token, authenticating when there is none or
// when it is the refused one.
func (s *etcdScaler) currentToken(ctx context.Context, refused string) (string, error) {
	s.tokenMu.RLock()
	token := s.token
	s.tokenMu.RUnlock()
	if token != "" && token != refused {
		return token, nil
	}
	s.authMu.Lock()
	defer s.authMu.Unlock()
	s.tokenMu.RLock()
	token = s.token
	s.tokenMu.RUnlock()
	if token != "" && token != refused {
		return token, nil // another poll authenticated meanwhile
	}
	resp, err := s.client.Auth.Authenticate(ctx, s.cfg.Username, string(s.cfg.Password))
	switch {
	case errors.Is(rpctypes.Error(err), rpctypes.ErrAuthNotEnabled):
		token = "" // as etcd's client: no token needed
	case err != nil:
		return "", err
	default:
		token = resp.Token
	}
	s.tokenMu.Lock()
	s.token = token
	s.tokenMu.Unlock()
	return token, nil
}

func withToken(ctx context.Context, token string) context.Context {
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, token)
}

// requestError classifies an etcd client error: the caller's context
// ending, a closed client, the poll's own deadline (unreachable when no
// endpoint could be connected, a timeout otherwise), an error status from
// the server (bad response), or a transport failure (unreachable).
func (s *etcdScaler) requestError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		e := s.errorf(ErrUnreachable, "poll cancelled: %v", ctxErr)
		e.ctxErr = ctxErr
		return e
	}
	if s.closed.Load() {
		return s.errorf(ErrClosed, "")
	}
	if errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded {
		if st := s.client.ActiveConnection().GetState(); st == connectivity.TransientFailure || st == connectivity.Connecting {
			return s.errorf(ErrUnreachable, "no endpoint could be connected to within %s", s.timeout)
		}
		return s.errorf(ErrTimeout, "no answer within %s", s.timeout)
	}
	err = rpctypes.Error(err)
	var etcdErr rpctypes.EtcdError
	if errors.As(err, &etcdErr) {
		if etcdErr.Code() == codes.Unavailable {
			return s.errorf(ErrUnreachable, "%v", err)
		}
		return s.errorf(ErrBadResponse, "%v", err)
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.Canceled:
		return s.errorf(ErrUnreachable, "%v", err)
	case codes.Unknown:
		if _, ok := status.FromError(err); !ok {
			return s.errorf(ErrUnreachable, "%v", err)
		}
	}
	return s.errorf(ErrBadResponse, "%v", err)
}

func (s *etcdScaler) errorf(kind error, format string, args ...any) *Error {
	detail := ""
	if format != "" {
		detail = s.redact.clean(fmt.Sprintf(format, args...))
	}
	return &Error{Type: s.cfg.Type(), Source: s.address, Kind: kind, Detail: detail}
}

// Close closes the client and its connections. It is idempotent.
func (s *etcdScaler) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.client.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return s.errorf(ErrUnreachable, "close: %v", err)
	}
	return nil
}
