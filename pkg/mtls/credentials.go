package mtls

import (
	"net"
	"time"

	"google.golang.org/grpc/credentials"
	"k8s.io/klog/v2"

	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles"
)

// DefaultLogInterval is how long identical handshake failures (same remote
// host, same reason) are folded into one log line.
const DefaultLogInterval = time.Minute

// Option configures ServerCredentials.
type Option func(*options)

type options struct {
	logger      klog.Logger
	logInterval time.Duration
}

// WithLogger sets the logger for refused handshakes. It defaults to the
// global klog logger.
func WithLogger(logger klog.Logger) Option {
	return func(o *options) { o.logger = logger }
}

// WithLogInterval sets how long identical handshake failures are folded into
// one log line; see DefaultLogInterval.
func WithLogInterval(d time.Duration) Option {
	return func(o *options) { o.logInterval = d }
}

// ServerCredentials returns gRPC server credentials built on ServerConfig.
// Every refused handshake is logged with the remote address and the reason,
// at most once per log interval for the same host and reason.
func ServerCredentials(src *tlsfiles.Source, opts ...Option) credentials.TransportCredentials {
	o := options{logger: klog.Background(), logInterval: DefaultLogInterval}
	for _, opt := range opts {
		opt(&o)
	}
	return &loggingCreds{
		TransportCredentials: credentials.NewTLS(ServerConfig(src)),
		log:                  newHandshakeLogger(o.logger, o.logInterval),
	}
}

// ClientCredentials returns gRPC client credentials built on ClientConfig.
func ClientCredentials(src *tlsfiles.Source, serverName string) credentials.TransportCredentials {
	return credentials.NewTLS(ClientConfig(src, serverName))
}

// loggingCreds logs refused server handshakes.
type loggingCreds struct {
	credentials.TransportCredentials
	log *handshakeLogger
}

func (c *loggingCreds) ServerHandshake(rawConn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ServerHandshake(rawConn)
	if err != nil {
		c.log.failed(rawConn.RemoteAddr(), err)
	}
	return conn, info, err
}

func (c *loggingCreds) Clone() credentials.TransportCredentials {
	return &loggingCreds{TransportCredentials: c.TransportCredentials.Clone(), log: c.log}
}
