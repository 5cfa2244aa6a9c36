package scaler

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// kafkaTestConfig parses a kafka trigger for the arithmetic tests.
func kafkaTestConfig(t *testing.T, typ string, kv ...string) *scalers.KafkaConfig {
	t.Helper()
	md := map[string]string{"bootstrapServers": "k:9092", "consumerGroup": "g", "topic": "t"}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(md, kv[i])
		} else {
			md[kv[i]] = kv[i+1]
		}
	}
	return parseTrigger(t, typ, md, nil).(*scalers.KafkaConfig)
}

// parts builds partitions 0..n-1 of topic t from (committed, end) pairs.
func parts(pairs ...int64) []kafkaOffsets {
	var out []kafkaOffsets
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, kafkaOffsets{kafkaPartition: kafkaPartition{"t", int32(i / 2)}, committed: pairs[i], end: pairs[i+1]})
	}
	return out
}

const none = kafkaInvalidOffset

func TestKafkaLag(t *testing.T) {
	tests := map[string]struct {
		kv                  []string
		offsets             []kafkaOffsets
		total, withPersists int64
	}{
		"end minus committed":                           {nil, parts(3, 10, 0, 4, 7, 7), 11, 11},
		"no partition":                                  {nil, nil, 0, 0},
		"no commit, latest: 1 per partition":            {nil, parts(none, 10, none, 0, 2, 5), 5, 5},
		"no commit, latest, scaleToZeroOnInvalidOffset": {[]string{"scaleToZeroOnInvalidOffset", "true"}, parts(none, 10, 2, 5), 3, 3},
		"no commit, earliest: the end offset":           {[]string{"offsetResetPolicy", "earliest"}, parts(none, 10, none, 0, 2, 5), 13, 13},
		"no commit, earliest, scaleToZeroOnInvalidOffset": {
			[]string{"offsetResetPolicy", "earliest", "scaleToZeroOnInvalidOffset", "true"}, parts(none, 10, 2, 5), 3, 3,
		},
		"committed past the end counts negative": {nil, parts(12, 10, 0, 5), 3, 3},
		"capped at partitions × lagThreshold":    {[]string{"lagThreshold", "10"}, parts(0, 100, 0, 0, 0, 0), 30, 100},
		// KEDA compares lag / lagThreshold, an integer division, with
		// the partition count: 39 / 10 = 3 is not above 3 partitions.
		"cap compares the integer quotient": {[]string{"lagThreshold", "10"}, parts(0, 39, 0, 0, 0, 0), 39, 39},
		"cap from the next multiple":        {[]string{"lagThreshold", "10"}, parts(0, 40, 0, 0, 0, 0), 30, 40},
		"allowIdleConsumers: no cap":        {[]string{"lagThreshold", "10", "allowIdleConsumers", "true"}, parts(0, 100, 0, 0, 0, 0), 100, 100},
		"limitToPartitionsWithLag: cap at partitions with lag": {
			[]string{"lagThreshold", "10", "limitToPartitionsWithLag", "true"}, parts(0, 100, 5, 5, 0, 1, 7, 7), 20, 101,
		},
		"limitToPartitionsWithLag: no lag": {[]string{"lagThreshold", "10", "limitToPartitionsWithLag", "true"}, parts(5, 5, 7, 7), 0, 0},
		// 12 partitions: factors 1 2 3 4 6 12.
		"ensureEvenDistributionOfPartitions raises to a factor": {
			[]string{"lagThreshold", "10", "ensureEvenDistributionOfPartitions", "true"},
			parts(0, 25, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), 30, 25,
		},
		"ensureEvenDistributionOfPartitions: 41 → 6 consumers": {
			[]string{"lagThreshold", "10", "ensureEvenDistributionOfPartitions", "true"},
			parts(0, 41, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), 60, 41,
		},
		"ensureEvenDistributionOfPartitions: no lag still one consumer's worth": {
			[]string{"lagThreshold", "10", "ensureEvenDistributionOfPartitions", "true"}, parts(0, 0, 0, 0, 0, 0), 10, 0,
		},
		"ensureEvenDistributionOfPartitions: beyond the partitions": {
			[]string{"lagThreshold", "10", "ensureEvenDistributionOfPartitions", "true", "allowIdleConsumers", "true"},
			parts(0, 1000, 0, 0, 0, 0), 30, 1000,
		},
		"apache-kafka: the same arithmetic": {[]string{"lagThreshold", "4"}, parts(none, 9, 1, 13), 8, 13},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			typ := "kafka"
			if strings.HasPrefix(name, "apache-kafka") {
				typ = "apache-kafka"
			}
			c := kafkaTestConfig(t, typ, tc.kv...)
			total, withP := kafkaLag(c, tc.offsets, map[kafkaPartition]int64{})
			if total != tc.total || withP != tc.withPersists {
				t.Errorf("kafkaLag = %d, %d; want %d, %d", total, withP, tc.total, tc.withPersists)
			}
		})
	}
}

func TestKafkaExcludePersistentLag(t *testing.T) {
	c := kafkaTestConfig(t, "kafka", "excludePersistentLag", "true", "lagThreshold", "100")
	previous := map[kafkaPartition]int64{}
	for i, step := range []struct {
		offsets      []kafkaOffsets
		total, withP int64
	}{
		{parts(5, 10, 0, 3), 8, 8},          // first sight: counted
		{parts(5, 12, 0, 3), 0, 10},         // neither moved: persistent, active only
		{parts(8, 12, 0, 4), 4, 8},          // p0 moved (counted), p1 did not (4 left out)
		{parts(none, 12, 0, 4), 1, 5},       // no commit: KEDA's 1, not remembered
		{parts(8, 12, 1, 4), 3, 7},          // p0 at 8 as remembered (4 left out), p1 moved: 3 counted
		{parts(8, 12, 1, 4), 0, 7},          // nothing moved
		{parts(9, 9, 1, 4)[0:1], 0, 0},      // p0 alone, caught up
		{parts(9, 9, 1, 4)[1:2], 0, 3},      // p1 alone, still where it was
		{parts(10, 11, 2, 4), 1 + 2, 1 + 2}, // both moved
	} {
		total, withP := kafkaLag(c, step.offsets, previous)
		if total != step.total || withP != step.withP {
			t.Errorf("poll %d: kafkaLag = %d, %d; want %d, %d", i, total, withP, step.total, step.withP)
		}
	}
}

func TestKafkaBalancingFactor(t *testing.T) {
	for _, tc := range []struct{ lag, partitions, threshold, want int64 }{
		{0, 12, 10, 1}, {10, 12, 10, 1}, {11, 12, 10, 2}, {21, 12, 10, 3}, {31, 12, 10, 4}, {41, 12, 10, 6},
		{61, 12, 10, 12}, {1000, 12, 10, 12}, {5, 7, 1, 7}, {1, 1, 1, 1}, {3, 0, 1, 0}, {50, 16, 5, 16}, {36, 16, 5, 8},
	} {
		if got := kafkaBalancingFactor(tc.lag, tc.partitions, tc.threshold); got != tc.want {
			t.Errorf("kafkaBalancingFactor(%d, %d, %d) = %d, want %d", tc.lag, tc.partitions, tc.threshold, got, tc.want)
		}
	}
}

// kafkaCluster is an in-process Kafka-protocol cluster (kfake) on
// 127.0.0.1 with a producer and an admin client.
type kafkaCluster struct {
	t        *testing.T
	c        *kfake.Cluster
	addrs    []string
	producer *kgo.Client
	admin    *kadm.Client
	once     sync.Once
}

func startKafka(t *testing.T, clientOpts []kgo.Opt, opts ...kfake.Opt) *kafkaCluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(2)}, opts...)...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	k := &kafkaCluster{t: t, c: c, addrs: c.ListenAddrs()}
	t.Cleanup(k.stop)
	for _, a := range k.addrs {
		if host, _, _ := net.SplitHostPort(a); host != "127.0.0.1" {
			t.Fatalf("kfake listens on %s, not loopback", a)
		}
	}
	k.producer, err = kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(k.addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner())}, clientOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.producer.Close)
	k.admin = kadm.NewClient(k.producer)
	return k
}

func (k *kafkaCluster) stop() { k.once.Do(k.c.Close) }

func (k *kafkaCluster) servers() string { return strings.Join(k.addrs, ",") }

// produce writes n records to one partition.
func (k *kafkaCluster) produce(topic string, partition int32, n int) {
	k.t.Helper()
	var rs []*kgo.Record
	for range n {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: partition, Value: []byte("v")})
	}
	if err := k.producer.ProduceSync(k.t.Context(), rs...).FirstErr(); err != nil {
		k.t.Fatalf("produce to %s[%d]: %v", topic, partition, err)
	}
}

// commit commits the group's offsets of one topic's partitions.
func (k *kafkaCluster) commit(group, topic string, offsets map[int32]int64) {
	k.t.Helper()
	var os kadm.Offsets
	for p, at := range offsets {
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
	}
	if err := k.admin.CommitAllOffsets(k.t.Context(), group, os); err != nil {
		k.t.Fatalf("commit %s %s: %v", group, topic, err)
	}
}

func buildKafka(t *testing.T, typ string, meta, auth map[string]string) Scaler {
	t.Helper()
	s, err := New(parseTrigger(t, typ, meta, auth), Deps{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestKafka(t *testing.T) {
	ctx := t.Context()
	k := startKafka(t, nil, kfake.SeedTopics(3, "orders"), kfake.SeedTopics(2, "refunds"))
	meta := func(kv ...string) map[string]string {
		m := map[string]string{"bootstrapServers": k.servers(), "consumerGroup": "workers", "topic": "orders", "lagThreshold": "5", "activationLagThreshold": "2"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	latest := buildKafka(t, "kafka", meta(), nil)
	earliest := buildKafka(t, "kafka", meta("offsetResetPolicy", "earliest"), nil)
	zero := buildKafka(t, "kafka", meta("scaleToZeroOnInvalidOffset", "true"), nil)
	idle := buildKafka(t, "kafka", meta("lagThreshold", "2", "allowIdleConsumers", "true"), nil)
	capped := buildKafka(t, "kafka", meta("lagThreshold", "2"), nil)
	withLag := buildKafka(t, "kafka", meta("lagThreshold", "1", "limitToPartitionsWithLag", "true"), nil)
	limited := buildKafka(t, "kafka", meta("partitionLimitation", "0-1"), nil)
	apache := buildKafka(t, "apache-kafka", meta("topic", "orders,refunds,missing", "activationLagThreshold", "0"), nil)

	// An empty topic, no commit: under latest each partition counts 1
	// (so a group that never ran is started), under earliest the end
	// offsets (0).
	pollWant(t, latest, 3, true)
	pollWant(t, earliest, 0, false)
	pollWant(t, zero, 0, false)
	pollWant(t, limited, 2, false) // at the activation threshold: not active
	pollWant(t, apache, 5, true)   // 3 + 2 partitions; the missing topic is skipped, as in KEDA

	k.produce("orders", 0, 5)
	k.produce("orders", 1, 3)
	k.produce("refunds", 1, 4)
	pollWant(t, latest, 3, true)
	pollWant(t, earliest, 8, true)
	pollWant(t, idle, 3, true)
	pollWant(t, apache, 5, true)

	// Partial commits: p0 at 2, nothing for p1 and p2.
	k.commit("workers", "orders", map[int32]int64{0: 2})
	pollWant(t, latest, 3+1+1, true)
	pollWant(t, earliest, 3+3+0, true)
	pollWant(t, zero, 3, true)
	pollWant(t, limited, 3+1, true)
	pollWant(t, capped, 3+1+1, true) // 5 / 2 = 2, not above 3 partitions
	pollWant(t, withLag, 3, true)    // 3 partitions with lag
	pollWant(t, apache, 3+1+1+1+1, true)

	// All of orders committed but p1: lag 3 on p1 only.
	k.commit("workers", "orders", map[int32]int64{0: 5, 2: 0})
	pollWant(t, earliest, 3, true)
	pollWant(t, latest, 1, false)
	pollWant(t, withLag, 1, false) // 1 partition with lag: 1 × lagThreshold 1
	k.produce("orders", 2, 20)
	pollWant(t, capped, 6, true) // 21 / 2 = 10 > 3 partitions: 3 × 2
	pollWant(t, idle, 21, true)  // no cap
	pollWant(t, withLag, 2, true)

	// All consumed.
	k.commit("workers", "orders", map[int32]int64{1: 3, 2: 20})
	k.commit("workers", "refunds", map[int32]int64{0: 0, 1: 4})
	for _, s := range []Scaler{latest, earliest, zero, idle, capped, withLag, limited, apache} {
		pollWant(t, s, 0, false)
	}

	// Without topic: the topics the group has committed to.
	groupTopics := buildKafka(t, "kafka", meta("topic", "", "activationLagThreshold", "0"), nil)
	pollWant(t, groupTopics, 0, false)
	k.produce("refunds", 0, 7)
	k.produce("orders", 1, 1)
	pollWant(t, groupTopics, 8, true)
	pollWant(t, latest, 1, false)
	// A group that committed nothing measures every topic of the
	// cluster, as KEDA does: 5 partitions without commit count 1 each.
	fresh := buildKafka(t, "kafka", meta("topic", "", "consumerGroup", "fresh", "activationLagThreshold", "0"), nil)
	pollWant(t, fresh, 5, true)
	// A topic of the group only: the other is not measured.
	k.commit("other", "refunds", map[int32]int64{0: 1})
	other := buildKafka(t, "kafka", meta("topic", "", "consumerGroup", "other", "activationLagThreshold", "0"), nil)
	pollWant(t, other, 6+1, true) // p0: 7 - 1; p1 no commit: 1

	// excludePersistentLag: a partition whose commit did not move since
	// the previous poll is left out of the value, but not of activity.
	persistent := buildKafka(t, "kafka", meta("topic", "refunds", "excludePersistentLag", "true"), nil)
	pollWant(t, persistent, 7, true)
	pollWant(t, persistent, 0, true)
	k.commit("workers", "refunds", map[int32]int64{0: 3})
	pollWant(t, persistent, 4, true)
	pollWant(t, persistent, 0, true)

	// Concurrent polls share the client and the remembered offsets.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			if _, err := persistent.Poll(ctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent poll: %v", err)
	}
	pollWant(t, persistent, 0, true)

	// A kafka topic that does not exist, a partitionLimitation matching
	// no partition: bad responses.
	for name, md := range map[string]map[string]string{
		"missing topic":         meta("topic", "missing"),
		"no partition in range": meta("partitionLimitation", "7-9"),
	} {
		_, err := buildKafka(t, "kafka", md, nil).Poll(ctx)
		checkKind(t, err, ErrBadResponse)
		if !strings.Contains(err.Error(), "kafka trigger ("+k.servers()+")") {
			t.Errorf("%s: error %q does not name the trigger type and the brokers", name, err)
		}
	}
	// apache-kafka skips such topics.
	pollWant(t, buildKafka(t, "apache-kafka", meta("topic", "missing"), nil), 0, false)

	// A cancelled poll.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err := latest.Poll(cctx)
	checkKind(t, err, ErrUnreachable)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}

	// Close: the client is closed, later polls fail, Close again is fine.
	if err := latest.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = latest.Poll(ctx)
	checkKind(t, err, ErrClosed)
	if err := latest.Close(); err != nil {
		t.Fatal(err)
	}

	// The cluster gone: unreachable, quickly.
	again := buildKafka(t, "kafka", meta(), nil)
	pollWant(t, again, 1, false)
	k.stop()
	start := time.Now()
	_, err = again.Poll(ctx)
	checkKind(t, err, ErrUnreachable)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("poll of a stopped cluster took %v", d)
	}
	if !strings.Contains(err.Error(), "kafka trigger ("+k.servers()+"): source unreachable") {
		t.Errorf("error %q does not name the trigger and the brokers", err)
	}
}

// TestApacheKafkaGroupTopics: without topic, apache-kafka needs the group
// to have an active member, as KEDA's experimental scaler does, and then
// measures the group's topics.
func TestApacheKafkaGroupTopics(t *testing.T) {
	ctx := t.Context()
	k := startKafka(t, nil, kfake.SeedTopics(2, "events"), kfake.SeedTopics(1, "unrelated"))
	md := map[string]string{"bootstrapServers": k.servers(), "consumerGroup": "readers"}
	s := buildKafka(t, "apache-kafka", md, nil)

	_, err := s.Poll(ctx)
	checkKind(t, err, ErrBadResponse)
	if !strings.Contains(err.Error(), `group "readers" has no active member`) {
		t.Errorf("error %q does not say the group has no member", err)
	}

	k.produce("events", 0, 4)
	k.produce("unrelated", 0, 9)
	k.commit("readers", "events", map[int32]int64{0: 1})
	member, err := kgo.NewClient(kgo.SeedBrokers(k.addrs...), kgo.ConsumerGroup("readers"), kgo.ConsumeTopics("events"),
		kgo.DisableAutoCommit(), kgo.SessionTimeout(6*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	// The member joins while it polls.
	pollCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for pollCtx.Err() == nil {
			member.PollFetches(pollCtx)
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		groups, err := k.admin.DescribeGroups(ctx, "readers")
		if err == nil && len(groups["readers"].Members) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the member did not join: %v %+v", err, groups)
		}
		time.Sleep(100 * time.Millisecond)
	}
	pollWant(t, s, 3+1, true) // events p0: 4 - 1, p1 no commit: 1; unrelated is not the group's
}

func TestKafkaSASL(t *testing.T) {
	const (
		plainPass = "plain-very-secret"
		scramPass = "scram-very-secret"
	)
	k := startKafka(t, []kgo.Opt{kgo.SASL(scram.Auth{User: "admin", Pass: "admin-pass"}.AsSha512Mechanism())},
		kfake.EnableSASL(), kfake.EnableACLs(), kfake.SeedTopics(1, "jobs"),
		kfake.User("PLAIN", "eve", "eve-pass"), // no ACL: authenticated, authorized for nothing
		kfake.Superuser("SCRAM-SHA-512", "admin", "admin-pass"),
		kfake.Superuser("PLAIN", "alice", plainPass),
		kfake.Superuser("SCRAM-SHA-256", "bob", scramPass),
		kfake.Superuser("SCRAM-SHA-512", "carol", scramPass))
	k.produce("jobs", 0, 6)
	k.commit("g", "jobs", map[int32]int64{0: 2})
	md := map[string]string{"bootstrapServers": k.servers(), "consumerGroup": "g", "topic": "jobs"}
	for _, tc := range []struct{ sasl, user, pass string }{
		{"plaintext", "alice", plainPass}, {"scram_sha256", "bob", scramPass}, {"scram_sha512", "carol", scramPass},
	} {
		t.Run(tc.sasl, func(t *testing.T) {
			s := buildKafka(t, "kafka", md, map[string]string{"sasl": tc.sasl, "username": tc.user, "password": tc.pass})
			pollWant(t, s, 4, true)
			// apache-kafka reads the same settings.
			pollWant(t, buildKafka(t, "apache-kafka", md, map[string]string{"sasl": tc.sasl, "username": tc.user, "password": tc.pass}), 4, true)

			// A wrong password: the broker refuses, and no password
			// shows. kfake closes the connection (Kafka answers
			// SASL_AUTHENTICATION_FAILED, a bad response, first).
			bad := buildKafka(t, "kafka", md, map[string]string{"sasl": tc.sasl, "username": tc.user, "password": "wrong-very-secret"})
			_, err := bad.Poll(t.Context())
			checkKind(t, err, ErrUnreachable)
			if strings.Contains(err.Error(), "very-secret") {
				t.Errorf("error reveals a password: %v", err)
			}
		})
	}
	// Authenticated but not authorized: the broker's error code, a bad
	// response.
	_, err := buildKafka(t, "kafka", md, map[string]string{"sasl": "plaintext", "username": "eve", "password": "eve-pass"}).Poll(t.Context())
	checkKind(t, err, ErrBadResponse)
	if !strings.Contains(err.Error(), "AUTHORIZATION_FAILED") {
		t.Errorf("error %q does not name the authorization failure", err)
	}

	// Without SASL, the broker does not answer requests.
	_, err = buildKafka(t, "kafka", md, nil).Poll(t.Context())
	if err == nil {
		t.Fatal("poll without SASL succeeded")
	}
	checkKind(t, err, ErrUnreachable)
}

// kafkaTLS returns a CA, a server certificate for 127.0.0.1 signed by it,
// and a client certificate and key signed by it, in PEM.
func kafkaTLS(t *testing.T) (server *tls.Config, caPEM, certPEM, keyPEM string) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ebb-test-ca"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage, ips []net.IP) (tls.Certificate, string, string) {
		key := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "ebb-test"}, IPAddresses: ips,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		c, k := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
		pair, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return pair, string(c), string(k)
	}
	serverPair, _, _ := issue(2, x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	_, certPEM, keyPEM = issue(3, x509.ExtKeyUsageClientAuth, nil)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	server = &tls.Config{
		MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{serverPair},
		ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
	}
	return server, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})), certPEM, keyPEM
}

func TestKafkaTLS(t *testing.T) {
	serverTLS, caPEM, certPEM, keyPEM := kafkaTLS(t)
	clientPair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(caPEM))
	k := startKafka(t, []kgo.Opt{kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, Certificates: []tls.Certificate{clientPair}})},
		kfake.TLS(serverTLS), kfake.SeedTopics(2, "jobs"))
	k.produce("jobs", 1, 3)
	md := map[string]string{"bootstrapServers": k.servers(), "consumerGroup": "g", "topic": "jobs", "tls": "enable"}

	s := buildKafka(t, "kafka", md, map[string]string{"ca": caPEM, "cert": certPEM, "key": keyPEM})
	pollWant(t, s, 2, true) // no commit: 1 per partition
	k.commit("g", "jobs", map[int32]int64{0: 0, 1: 1})
	pollWant(t, s, 2, true)

	// unsafeSsl skips the server's verification; the client
	// certificate is still needed.
	unsafe := buildKafka(t, "kafka", map[string]string{"bootstrapServers": k.servers(), "consumerGroup": "g", "topic": "jobs", "tls": "enable", "unsafeSsl": "true"},
		map[string]string{"cert": certPEM, "key": keyPEM})
	pollWant(t, unsafe, 2, true)

	// Without the CA, or without a client certificate: no connection.
	for name, auth := range map[string]map[string]string{
		"unknown CA":            {"cert": certPEM, "key": keyPEM},
		"no client certificate": {"ca": caPEM},
	} {
		_, err := buildKafka(t, "kafka", md, auth).Poll(t.Context())
		if err == nil {
			t.Fatalf("%s: poll succeeded", name)
		}
		checkKind(t, err, ErrUnreachable)
		if strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("%s: error reveals the key: %v", name, err)
		}
	}

	// Unusable TLS material: invalid configuration, from New.
	for name, auth := range map[string]map[string]string{
		"bad pair": {"cert": certPEM, "key": "-----BEGIN PRIVATE KEY-----\nS3CR3T\n-----END PRIVATE KEY-----"},
		"bad ca":   {"ca": "not a certificate"},
	} {
		_, err := New(parseTrigger(t, "kafka", md, auth), Deps{})
		checkKind(t, err, ErrInvalidConfig)
		if strings.Contains(err.Error(), "S3CR3T") {
			t.Errorf("%s: error reveals the key: %v", name, err)
		}
	}
}

// TestKafkaNoIOInNew: building a scaler for brokers that do not exist
// succeeds; the first poll reports them unreachable.
func TestKafkaNoIOInNew(t *testing.T) {
	dead := closedAddress(t)
	s := buildKafka(t, "kafka", map[string]string{"bootstrapServers": dead, "consumerGroup": "g", "topic": "t"},
		map[string]string{"sasl": "plaintext", "username": "u", "password": "PASSWORD-very-secret"})
	_, err := s.Poll(t.Context())
	checkKind(t, err, ErrUnreachable)
	if strings.Contains(err.Error(), "very-secret") {
		t.Errorf("error reveals the password: %v", err)
	}
}
