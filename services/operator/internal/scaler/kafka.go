package scaler

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// Kafka client settings. A poll issues a handful of requests; a broker
// that cannot be reached fails the poll within a few seconds rather than
// after kgo's default 30 s of retries.
const (
	kafkaDialTimeout    = 5 * time.Second
	kafkaRetryTimeout   = 5 * time.Second
	kafkaRequestRetries = 2
)

// kafkaInvalidOffset is the committed offset Kafka reports for a partition
// the group has committed nothing to.
const kafkaInvalidOffset = -1

// kafkaScaler reads a consumer group's lag (kafka and apache-kafka
// triggers) through one franz-go client kept for the scaler's life.
type kafkaScaler struct {
	cfg    *scalers.KafkaConfig
	client *kgo.Client
	admin  *kadm.Client
	source string
	redact redactor
	closed atomic.Bool

	// mu guards previous: for excludePersistentLag, the committed offset
	// each partition had at the previous poll.
	mu       sync.Mutex
	previous map[kafkaPartition]int64
}

// kafkaPartition is one partition of one topic.
type kafkaPartition struct {
	topic     string
	partition int32
}

// kafkaOffsets is what a poll learns about one partition: the group's
// committed offset (kafkaInvalidOffset when none) and the partition's end
// offset (high watermark).
type kafkaOffsets struct {
	kafkaPartition
	committed int64
	end       int64
}

func newKafka(c *scalers.KafkaConfig, _ Deps) (*kafkaScaler, error) {
	s := &kafkaScaler{
		cfg:      c,
		source:   strings.Join(c.BootstrapServers, ","),
		redact:   newRedactor(string(c.Password), string(c.Key), string(c.Cert)),
		previous: map[kafkaPartition]int64{},
	}
	if len(c.BootstrapServers) == 0 {
		return nil, s.errorf(ErrInvalidConfig, "no bootstrap server")
	}
	if c.ConsumerGroup == "" {
		return nil, s.errorf(ErrInvalidConfig, "no consumer group")
	}
	if c.LagThreshold <= 0 {
		return nil, s.errorf(ErrInvalidConfig, "lagThreshold must be positive")
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.BootstrapServers...),
		kgo.ClientID("ebb"),
		kgo.DialTimeout(kafkaDialTimeout),
		kgo.RequestRetries(kafkaRequestRetries),
		kgo.RetryTimeout(kafkaRetryTimeout),
		kgo.DisableClientMetrics(),
	}
	if c.TLS {
		tc, err := s.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch c.SASL {
	case scalers.KafkaSASLNone, "":
	case scalers.KafkaSASLPlaintext:
		opts = append(opts, kgo.SASL(plain.Auth{User: c.Username, Pass: string(c.Password)}.AsMechanism()))
	case scalers.KafkaSASLSCRAMSHA256:
		opts = append(opts, kgo.SASL(scram.Auth{User: c.Username, Pass: string(c.Password)}.AsSha256Mechanism()))
	case scalers.KafkaSASLSCRAMSHA512:
		opts = append(opts, kgo.SASL(scram.Auth{User: c.Username, Pass: string(c.Password)}.AsSha512Mechanism()))
	default:
		return nil, s.errorf(ErrNotImplemented, "sasl %s is not supported by ebb", c.SASL)
	}
	// The client dials nothing until the first request.
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, s.errorf(ErrInvalidConfig, "client: %v", err)
	}
	s.client = client
	s.admin = kadm.NewClient(client)
	return s, nil
}

func (s *kafkaScaler) tlsConfig() (*tls.Config, error) {
	c := s.cfg
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.UnsafeSSL} //nolint:gosec // unsafeSsl is the user's explicit choice
	if c.Cert != "" || c.Key != "" {
		cert, err := tls.X509KeyPair([]byte(c.Cert), []byte(c.Key))
		if err != nil {
			return nil, s.errorf(ErrInvalidConfig, "cert and key are not a valid PEM certificate and key pair")
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if c.CA != "" {
		// As KEDA: the system roots and the given CA.
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM([]byte(c.CA)) {
			return nil, s.errorf(ErrInvalidConfig, "ca holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// Poll computes the group's lag as KEDA's Kafka scalers do: over the
// partitions of the topic (or the topics, or the group's topics), each
// partition's end offset minus the committed offset, a partition without
// commit counting by offsetResetPolicy, the total capped at lagThreshold
// times the number of partitions unless allowIdleConsumers (see kafkaLag).
// Active is the lag, counting persistent lag, above activationLagThreshold.
func (s *kafkaScaler) Poll(ctx context.Context) (Reading, error) {
	if s.closed.Load() {
		return Reading{}, s.errorf(ErrClosed, "")
	}
	committed, err := s.admin.FetchOffsets(ctx, s.cfg.ConsumerGroup)
	switch {
	case errors.Is(err, kerr.GroupIDNotFound):
		// Newer brokers name a group that never committed; older ones
		// (and KEDA's client) see it as a group without commits.
		committed = nil
	case err != nil:
		return Reading{}, s.requestError(ctx, "fetch the group's offsets", err)
	}
	topics, err := s.topicPartitions(ctx, committed)
	if err != nil {
		return Reading{}, err
	}
	offsets, err := s.offsets(ctx, topics, committed)
	if err != nil {
		return Reading{}, err
	}

	s.mu.Lock()
	total, withPersistent := kafkaLag(s.cfg, offsets, s.previous)
	s.mu.Unlock()
	return Reading{Value: *resource.NewQuantity(total, resource.DecimalSI), Active: withPersistent > s.cfg.ActivationLagThreshold}, nil
}

// topicPartitions returns the partitions to measure, by topic.
//
// With topics set, those topics: for kafka, a topic that does not exist,
// or has no partition in partitionLimitation, fails the poll; apache-kafka
// skips it, as KEDA's experimental scaler does. Without topic, the topics
// the group has committed offsets for (apache-kafka also needs the group
// to have members, as KEDA); a group with no commit at all measures every
// topic of the cluster, as KEDA does.
func (s *kafkaScaler) topicPartitions(ctx context.Context, committed kadm.OffsetResponses) (map[string][]int32, error) {
	var (
		details kadm.TopicDetails
		err     error
	)
	switch {
	case len(s.cfg.Topics) > 0:
		var topics []string
		for _, t := range s.cfg.Topics {
			if t != "" && !slices.Contains(topics, t) {
				topics = append(topics, t)
			}
		}
		if len(topics) == 0 {
			return nil, nil
		}
		details, err = s.admin.ListTopics(ctx, topics...)
	default:
		if s.cfg.Experimental() {
			groups, err := s.admin.DescribeGroups(ctx, s.cfg.ConsumerGroup)
			if err != nil {
				return nil, s.requestError(ctx, "describe the group", err)
			}
			g := groups[s.cfg.ConsumerGroup]
			if errors.Is(g.Err, kerr.GroupIDNotFound) {
				// Newer brokers' answer for a group older ones call Dead.
				g.Err, g.State = nil, "Dead"
			}
			if g.Err != nil {
				return nil, s.errorf(ErrBadResponse, "describe group %q: %v", s.cfg.ConsumerGroup, g.Err)
			}
			if len(g.Members) == 0 {
				return nil, s.errorf(ErrBadResponse, "group %q has no active member (state %s); without topic, apache-kafka needs one, as in KEDA",
					s.cfg.ConsumerGroup, g.State)
			}
		}
		var topics []string
		for t, ps := range committed {
			if len(ps) > 0 {
				topics = append(topics, t)
			}
		}
		if len(topics) == 0 {
			details, err = s.admin.ListTopicsWithInternal(ctx)
		} else {
			details, err = s.admin.ListTopics(ctx, topics...)
		}
	}
	if err != nil {
		return nil, s.requestError(ctx, "list topics", err)
	}

	out := make(map[string][]int32, len(details))
	for _, name := range details.Names() {
		d := details[name]
		if d.Err != nil {
			if s.cfg.Experimental() && errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
				continue
			}
			return nil, s.errorf(ErrBadResponse, "topic %q: %v", name, d.Err)
		}
		var parts []int32
		for _, p := range d.Partitions.Numbers() {
			if s.cfg.Measures(p) {
				parts = append(parts, p)
			}
		}
		if len(parts) == 0 {
			if s.cfg.Experimental() {
				continue
			}
			return nil, s.errorf(ErrBadResponse, "topic %q has no partition to measure (partitionLimitation)", name)
		}
		out[name] = parts
	}
	return out, nil
}

// offsets returns the committed and end offsets of the partitions. As in
// KEDA, a partition the broker lists no end offset for is left out, and a
// partition the group has no commit for has kafkaInvalidOffset.
func (s *kafkaScaler) offsets(ctx context.Context, topics map[string][]int32, committed kadm.OffsetResponses) ([]kafkaOffsets, error) {
	if len(topics) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	slices.Sort(names)
	ends, err := s.admin.ListEndOffsets(ctx, names...)
	if err != nil {
		return nil, s.requestError(ctx, "list end offsets", err)
	}
	var out []kafkaOffsets
	for _, t := range names {
		for _, p := range topics[t] {
			end, ok := ends.Lookup(t, p)
			if !ok {
				continue
			}
			if end.Err != nil {
				return nil, s.errorf(ErrBadResponse, "end offset of %s[%d]: %v", t, p, end.Err)
			}
			o := kafkaOffsets{kafkaPartition: kafkaPartition{t, p}, committed: kafkaInvalidOffset, end: end.Offset}
			if c, ok := committed.Lookup(t, p); ok {
				if c.Err != nil {
					return nil, s.errorf(ErrBadResponse, "committed offset of %s[%d]: %v", t, p, c.Err)
				}
				o.committed = c.At
			}
			out = append(out, o)
		}
	}
	return out, nil
}

// kafkaPartitionLag is KEDA's lag of one partition: end minus committed;
// without commit, 1 (0 with scaleToZeroOnInvalidOffset) under the latest
// policy, the end offset (0 with scaleToZeroOnInvalidOffset) under
// earliest. With excludePersistentLag, a partition whose committed offset
// has not moved since the previous poll counts 0, though its lag still
// counts for activity (the second value). previous is updated.
func kafkaPartitionLag(c *scalers.KafkaConfig, o kafkaOffsets, previous map[kafkaPartition]int64) (lag, withPersistent int64) {
	if o.committed == kafkaInvalidOffset {
		switch {
		case c.ScaleToZeroOnInvalidOffset:
			return 0, 0
		case c.OffsetResetPolicy == scalers.KafkaOffsetEarliest:
			return o.end, o.end
		default:
			return 1, 1
		}
	}
	lag = o.end - o.committed
	if c.ExcludePersistentLag {
		prev, seen := previous[o.kafkaPartition]
		previous[o.kafkaPartition] = o.committed
		if seen && prev == o.committed {
			return 0, lag
		}
	}
	return lag, lag
}

// kafkaLag is KEDA's total lag over the partitions and the total counting
// persistent lag (for activity). Unless allowIdleConsumers, the total is
// capped at lagThreshold times the number of partitions (or of partitions
// with lag, with limitToPartitionsWithLag), so the HPA never asks for more
// consumers than partitions; with ensureEvenDistributionOfPartitions it is
// first raised to lagThreshold times the smallest factor of the partition
// count that covers it.
func kafkaLag(c *scalers.KafkaConfig, offsets []kafkaOffsets, previous map[kafkaPartition]int64) (total, withPersistent int64) {
	var withLag int64
	for _, o := range offsets {
		lag, lagP := kafkaPartitionLag(c, o, previous)
		total += lag
		withPersistent += lagP
		if lag > 0 {
			withLag++
		}
	}
	partitions := int64(len(offsets))
	if !c.AllowIdleConsumers || c.LimitToPartitionsWithLag || c.EnsureEvenDistributionOfPartitions {
		upper := partitions
		if c.EnsureEvenDistributionOfPartitions {
			total = kafkaBalancingFactor(total, partitions, c.LagThreshold) * c.LagThreshold
		}
		if c.LimitToPartitionsWithLag {
			upper = withLag
		}
		if total/c.LagThreshold > upper {
			total = upper * c.LagThreshold
		}
	}
	return total, withPersistent
}

// kafkaBalancingFactor is the smallest factor f of partitions with
// f × lagThreshold ≥ lag, or partitions when there is none.
func kafkaBalancingFactor(lag, partitions, lagThreshold int64) int64 {
	if partitions < 1 {
		return partitions
	}
	var factors []int64
	for i := int64(1); i <= int64(math.Sqrt(float64(partitions))); i++ {
		if partitions%i == 0 {
			factors = append(factors, i)
			if i != partitions/i {
				factors = append(factors, partitions/i)
			}
		}
	}
	slices.Sort(factors)
	for _, f := range factors {
		if f*lagThreshold >= lag {
			return f
		}
	}
	return partitions
}

// requestError classifies a franz-go error: the caller's context ending,
// a closed client, an error code from the broker (bad response: an
// unknown group coordinator, a refused SASL login, missing authorization),
// a timeout, or a network failure (unreachable).
func (s *kafkaScaler) requestError(ctx context.Context, what string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		e := s.errorf(ErrUnreachable, "poll cancelled: %v", ctxErr)
		e.ctxErr = ctxErr
		return e
	}
	if s.closed.Load() || errors.Is(err, kgo.ErrClientClosed) {
		return s.errorf(ErrClosed, "")
	}
	var kafkaErr *kerr.Error
	if errors.As(err, &kafkaErr) {
		return s.errorf(ErrBadResponse, "%s: %v", what, err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return s.errorf(ErrTimeout, "%s: %v", what, err)
	}
	return s.errorf(ErrUnreachable, "%s: %v", what, err)
}

func (s *kafkaScaler) errorf(kind error, format string, args ...any) *Error {
	detail := ""
	if format != "" {
		detail = s.redact.clean(fmt.Sprintf(format, args...))
	}
	return &Error{Type: s.cfg.Type(), Source: s.source, Kind: kind, Detail: detail}
}

// Close closes the client and its connections. It is idempotent.
func (s *kafkaScaler) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.client.Close()
	return nil
}
