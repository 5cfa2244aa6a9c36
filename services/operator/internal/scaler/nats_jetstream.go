package scaler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// natsJetStreamScaler reads a JetStream consumer's lag from the NATS
// server's HTTP monitoring endpoint (/jsz), as KEDA does. In a JetStream
// cluster it reads the consumer's leader, whose counts are authoritative,
// and remembers which node that is until the leader moves. It has no
// PollTimeout: each request is bounded by the HTTP client's timeout, but
// finding a leader that moved takes several requests.
type natsJetStreamScaler struct {
	cfg *scalers.NATSJetStreamConfig
	src *httpSource
	// base is the /jsz URL of the configured endpoint; scheme, host and
	// query are its parts, for the URLs of the cluster's other nodes.
	base   string
	scheme string
	host   string
	port   string
	query  string

	// mu serializes polls: they share the remembered leader.
	mu         sync.Mutex
	leaderURL  string // /jsz URL of the consumer's leader; "" when unknown
	leaderName string
}

func newNATSJetStream(c *scalers.NATSJetStreamConfig, deps Deps) (*natsJetStreamScaler, error) {
	base := c.MonitoringURL()
	src, err := newHTTPSource(c.Type(), base, nil, false, 0, deps)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(base)
	if err != nil || u.Hostname() == "" {
		return nil, src.errorf(ErrInvalidConfig, "natsServerMonitoringEndpoint must be host:port")
	}
	return &natsJetStreamScaler{
		cfg: c, src: src, base: base,
		scheme: u.Scheme, host: u.Host, port: u.Port(), query: u.RawQuery,
	}, nil
}

// The parts of the monitoring documents the scaler reads.
type (
	jszResponse struct {
		Accounts    []jszAccount `json:"account_details"`
		MetaCluster struct {
			ClusterSize int `json:"cluster_size"`
		} `json:"meta_cluster"`
	}
	jszAccount struct {
		Name    string      `json:"name"`
		ID      string      `json:"id"`
		Streams []jszStream `json:"stream_detail"`
	}
	jszStream struct {
		Name  string `json:"name"`
		State struct {
			LastSeq uint64 `json:"last_seq"`
		} `json:"state"`
		Consumers []jszConsumer `json:"consumer_detail"`
	}
	jszConsumer struct {
		Name          string `json:"name"`
		NumPending    uint64 `json:"num_pending"`
		NumAckPending int64  `json:"num_ack_pending"`
		Cluster       struct {
			Leader string `json:"leader"`
		} `json:"cluster"`
	}
	varzResponse struct {
		ServerName  string   `json:"server_name"`
		ConnectURLs []string `json:"connect_urls"`
		Cluster     struct {
			URLs []string `json:"urls"`
		} `json:"cluster"`
	}
)

// Poll reads the consumer's lag, num_pending + num_ack_pending, as KEDA
// does; when the stream exists but the consumer does not (a single
// server), the stream's last sequence number, as KEDA. Active is the lag
// strictly greater than activationLagThreshold. A stream missing from the
// account is a bad response (KEDA reads 0 or the last value it saw).
func (s *natsJetStreamScaler) Poll(ctx context.Context) (Reading, error) {
	if s.src.closed.Load() {
		return Reading{}, s.src.errorf(ErrClosed, "")
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	// The leader found before, while it still leads the consumer. When it
	// no longer does, or cannot be read, start again from the endpoint.
	if s.leaderURL != "" {
		if resp, err := s.jsz(ctx, s.leaderURL); err == nil {
			if st, co := s.find(resp); co != nil && co.Cluster.Leader == s.leaderName {
				return s.reading(st, co)
			}
		} else if ctx.Err() != nil {
			return Reading{}, err
		}
		s.leaderURL, s.leaderName = "", ""
	}

	resp, err := s.jsz(ctx, s.base)
	if err != nil {
		return Reading{}, err
	}
	if resp.MetaCluster.ClusterSize <= 1 {
		st, co := s.find(resp)
		if st == nil {
			return Reading{}, s.src.errorf(ErrBadResponse, "stream %q not found in account %q", s.cfg.Stream, s.accountName())
		}
		return s.reading(st, co)
	}
	return s.pollLeader(ctx)
}

// pollLeader finds the node that leads the consumer, as KEDA does: the
// nodes are those of the endpoint's connect_urls (their host, with the
// endpoint's monitoring port), or, when the cluster advertises none, the
// first label of each route URL prefixed to the endpoint's host
// (nats-1 + "." + nats.ns.svc:8222). The leader is the node whose server
// name is the consumer's leader in that node's own /jsz. Unlike KEDA, a
// node that cannot be read is skipped; its error is returned only when no
// other node leads the consumer.
func (s *natsJetStreamScaler) pollLeader(ctx context.Context) (Reading, error) {
	varz, err := s.varz(ctx, s.nodeURL(s.host, "/varz", ""))
	if err != nil {
		return Reading{}, err
	}
	var firstErr error
	skip := func(err error) bool {
		if firstErr == nil {
			firstErr = err
		}
		return ctx.Err() == nil
	}
	try := func(name, jsz string) (Reading, bool, error) {
		resp, err := s.jsz(ctx, jsz)
		if err != nil {
			if skip(err) {
				return Reading{}, false, nil
			}
			return Reading{}, false, err
		}
		if st, co := s.find(resp); co != nil && name != "" && co.Cluster.Leader == name {
			s.leaderURL, s.leaderName = jsz, name
			r, err := s.reading(st, co)
			return r, true, err
		}
		return Reading{}, false, nil
	}
	if len(varz.ConnectURLs) > 0 {
		for _, cu := range varz.ConnectURLs {
			host := hostOf(cu)
			if host == "" {
				continue
			}
			if s.port != "" {
				host = net.JoinHostPort(host, s.port)
			}
			nv, err := s.varz(ctx, s.nodeURL(host, "/varz", ""))
			if err != nil {
				if skip(err) {
					continue
				}
				return Reading{}, err
			}
			if r, ok, err := try(nv.ServerName, s.nodeURL(host, "/jsz", s.query)); ok || err != nil {
				return r, err
			}
		}
	} else {
		for _, ru := range varz.Cluster.URLs {
			name, _, _ := strings.Cut(ru, ".")
			if name == "" {
				continue
			}
			if r, ok, err := try(name, s.nodeURL(name+"."+s.host, "/jsz", s.query)); ok || err != nil {
				return r, err
			}
		}
	}
	if firstErr != nil {
		return Reading{}, firstErr
	}
	return Reading{}, s.src.errorf(ErrBadResponse, "no node of the JetStream cluster leads consumer %q of stream %q", s.cfg.Consumer, s.cfg.Stream)
}

// nodeURL is the URL of path on host, with the endpoint's scheme.
func (s *natsJetStreamScaler) nodeURL(host, path, query string) string {
	return (&url.URL{Scheme: s.scheme, Host: host, Path: path, RawQuery: query}).String()
}

// hostOf returns the host of a host:port connect URL (an IPv6 address
// without its brackets).
func hostOf(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	h, _, _ := strings.Cut(hostport, ":")
	return h
}

func (s *natsJetStreamScaler) accountName() string {
	if s.cfg.Account != "" {
		return s.cfg.Account
	}
	return s.cfg.AccountID
}

// find returns the configured stream and consumer in resp; the consumer
// is nil when the stream has none of that name, both are nil when the
// account has no such stream. An account matches by id (accountID, or
// account when no id is given) or by name, as KEDA matches it.
func (s *natsJetStreamScaler) find(resp *jszResponse) (*jszStream, *jszConsumer) {
	for i := range resp.Accounts {
		a := &resp.Accounts[i]
		if a.ID != s.cfg.AccountID && (s.cfg.Account == "" || a.Name != s.cfg.Account) {
			continue
		}
		for j := range a.Streams {
			st := &a.Streams[j]
			if st.Name != s.cfg.Stream {
				continue
			}
			for k := range st.Consumers {
				if st.Consumers[k].Name == s.cfg.Consumer {
					return st, &st.Consumers[k]
				}
			}
			return st, nil
		}
	}
	return nil, nil
}

func (s *natsJetStreamScaler) reading(st *jszStream, co *jszConsumer) (Reading, error) {
	lag := st.State.LastSeq
	if co != nil {
		if co.NumAckPending < 0 || co.NumPending > math.MaxUint64-uint64(co.NumAckPending) {
			return Reading{}, s.src.errorf(ErrBadResponse, "consumer %q: num_pending %d and num_ack_pending %d are out of range", co.Name, co.NumPending, co.NumAckPending)
		}
		lag = co.NumPending + uint64(co.NumAckPending)
	}
	if lag > math.MaxInt64 {
		return Reading{}, s.src.errorf(ErrBadResponse, "lag %d is out of range", lag)
	}
	n := int64(lag)
	return Reading{Value: *resource.NewQuantity(n, resource.DecimalSI), Active: n > s.cfg.ActivationLagThreshold}, nil
}

func (s *natsJetStreamScaler) jsz(ctx context.Context, rawURL string) (*jszResponse, error) {
	var resp jszResponse
	if err := s.getJSON(ctx, rawURL, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

func (s *natsJetStreamScaler) varz(ctx context.Context, rawURL string) (*varzResponse, error) {
	var resp varzResponse
	if err := s.getJSON(ctx, rawURL, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// getJSON GETs rawURL and decodes its JSON body into v. Errors about
// another node than the endpoint name that node.
func (s *natsJetStreamScaler) getJSON(ctx context.Context, rawURL string, v any) error {
	body, err := s.src.get(ctx, rawURL, nil)
	if err == nil {
		if jerr := json.Unmarshal(body, v); jerr != nil {
			err = s.src.errorf(ErrBadResponse, "the body is not a monitoring document: %v", jerr)
		}
	}
	if err == nil {
		return nil
	}
	var e *Error
	if u, perr := url.Parse(rawURL); perr == nil && u.Host != s.host && errors.As(err, &e) {
		copied := *e
		copied.Detail = strings.TrimSuffix(fmt.Sprintf("node %s: %s", u.Host, e.Detail), ": ")
		return &copied
	}
	return err
}

// Close marks the scaler closed; the operator's shared HTTP client, which
// it uses, is left alone. It is idempotent.
func (s *natsJetStreamScaler) Close() error {
	s.src.close()
	return nil
}
