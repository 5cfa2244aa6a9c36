package scalers

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// Kafka SASL mechanisms (the sasl setting), KEDA's names. ebb supports
// these; KEDA's oauthbearer, gssapi and aws_msk_iam are refused.
const (
	KafkaSASLNone        = "none"
	KafkaSASLPlaintext   = "plaintext"
	KafkaSASLSCRAMSHA256 = "scram_sha256"
	KafkaSASLSCRAMSHA512 = "scram_sha512"
)

// Kafka offset reset policies (offsetResetPolicy): how a partition the
// group has committed no offset for counts.
const (
	KafkaOffsetLatest   = "latest"
	KafkaOffsetEarliest = "earliest"
)

// DefaultKafkaVersion is the Kafka version the kafka trigger assumes when
// version is not set, as KEDA.
const DefaultKafkaVersion = "1.0.0"

// kafkaSASLTypes are the sasl values KEDA accepts, per trigger type.
var kafkaSASLTypes = map[bool][]string{
	false: {KafkaSASLNone, KafkaSASLPlaintext, KafkaSASLSCRAMSHA256, KafkaSASLSCRAMSHA512, "oauthbearer", "gssapi"},
	true:  {KafkaSASLNone, KafkaSASLPlaintext, KafkaSASLSCRAMSHA256, KafkaSASLSCRAMSHA512, "gssapi", "aws_msk_iam"},
}

// kafkaVersionPattern is the form of a Kafka version KEDA's client
// (sarama) parses: 0.a.b.c before 1.0, a.b.c after.
var kafkaVersionPattern = regexp.MustCompile(`^(0\.\d+\.\d+\.\d+|[1-9]\d*\.\d+\.\d+)$`)

// KafkaPartitionRange is an inclusive range of partition numbers of a
// partitionLimitation.
type KafkaPartitionRange struct {
	From, To int32
}

// KafkaConfig is a kafka or apache-kafka trigger (KEDA's experimental
// kafka-go based scaler; both read the same keys and compute the lag the
// same way). Its metric is s<i>-kafka-<topic> (apache-kafka: the topics
// joined with ","), or s<i>-kafka-<consumerGroup>-topics without topic,
// with target lagThreshold.
//
// Keys: bootstrapServers (required, comma-separated host:port),
// consumerGroup (required) and topic (kafka: one topic; apache-kafka:
// comma-separated topics; without it, the topics the group has committed
// offsets for), from the metadata or the environment; partitionLimitation
// (partition numbers and ranges "1,2,10-20", only with a topic);
// lagThreshold (default 10, positive); activationLagThreshold (default 0);
// offsetResetPolicy (latest, the default, or earliest);
// allowIdleConsumers, excludePersistentLag, scaleToZeroOnInvalidOffset,
// limitToPartitionsWithLag; kafka only: ensureEvenDistributionOfPartitions,
// version and unsafeSsl. Authentication: sasl (none, plaintext,
// scram_sha256, scram_sha512) and tls (enable/disable), from the metadata
// or the TriggerAuthentication; username, password, ca, cert, key from the
// TriggerAuthentication.
type KafkaConfig struct {
	BootstrapServers []string
	ConsumerGroup    string
	// Topics is the topic to measure (kafka: at most one); empty means
	// the topics the group has committed offsets for.
	Topics []string
	// PartitionLimitation restricts the partitions measured; nil means
	// all. It is nil whenever Topics is empty, as in KEDA.
	PartitionLimitation []KafkaPartitionRange

	LagThreshold                       int64
	ActivationLagThreshold             int64
	OffsetResetPolicy                  string
	AllowIdleConsumers                 bool
	ExcludePersistentLag               bool
	ScaleToZeroOnInvalidOffset         bool
	LimitToPartitionsWithLag           bool
	EnsureEvenDistributionOfPartitions bool
	// Version is the broker version KEDA's client is told (kafka only,
	// default 1.0.0). ebb's client negotiates versions with the broker,
	// so it is only checked.
	Version string

	// SASL is none, plaintext, scram_sha256 or scram_sha512.
	SASL     string
	Username string
	Password Secret

	TLS           bool
	UnsafeSSL     bool
	CA, Cert, Key Secret

	triggerType string
	index       int
	targetType  autoscalingv2.MetricTargetType
}

func parseKafka(r *reader, experimental bool) Config {
	c := &KafkaConfig{triggerType: r.t.Type, index: r.t.Index}
	c.targetType = r.externalTargetType()

	for _, s := range r.list(from("bootstrapServers", fromMetadata, fromEnv).req()) {
		if s != "" {
			c.BootstrapServers = append(c.BootstrapServers, s)
		}
	}
	if len(c.BootstrapServers) == 0 && r.present(from("bootstrapServers", fromMetadata, fromEnv)) {
		r.fail("bootstrapServers", "bootstrapServers lists no broker")
	}
	c.ConsumerGroup = r.str(from("consumerGroup", fromMetadata, fromEnv).req())
	if experimental {
		c.Topics = r.list(from("topic", fromMetadata, fromEnv))
	} else if t := r.str(from("topic", fromMetadata, fromEnv)); t != "" {
		c.Topics = []string{t}
	}

	before := len(r.errs)
	c.LagThreshold = r.int(meta("lagThreshold").withDefault("10"))
	if len(r.errs) == before && c.LagThreshold <= 0 {
		r.fail("lagThreshold", "lagThreshold must be a positive number")
	}
	before = len(r.errs)
	c.ActivationLagThreshold = r.int(meta("activationLagThreshold"))
	if len(r.errs) == before && c.ActivationLagThreshold < 0 {
		r.fail("activationLagThreshold", "activationLagThreshold must not be negative")
	}
	c.OffsetResetPolicy = r.str(meta("offsetResetPolicy").withDefault(KafkaOffsetLatest).oneOf(KafkaOffsetLatest, KafkaOffsetEarliest))
	c.AllowIdleConsumers = r.boolean(meta("allowIdleConsumers"))
	c.ExcludePersistentLag = r.boolean(meta("excludePersistentLag"))
	c.ScaleToZeroOnInvalidOffset = r.boolean(meta("scaleToZeroOnInvalidOffset"))
	c.LimitToPartitionsWithLag = r.boolean(meta("limitToPartitionsWithLag"))
	if !experimental {
		c.EnsureEvenDistributionOfPartitions = r.boolean(meta("ensureEvenDistributionOfPartitions"))
		c.Version = r.str(meta("version").withDefault(DefaultKafkaVersion))
		if c.Version != "" && !kafkaVersionPattern.MatchString(c.Version) {
			r.fail("version", "version%s is not a Kafka version (x.y.z, or 0.x.y.z before 1.0)", quote(meta("version"), fromMetadata, c.Version))
		}
	}

	if v, _, _, ok := r.get(meta("partitionLimitation")); ok {
		if limits, msg := parseKafkaPartitionLimitation(v); msg != "" {
			r.fail("partitionLimitation", "partitionLimitation%s: %s", quote(meta("partitionLimitation"), fromMetadata, v), msg)
		} else if len(c.Topics) == 0 {
			r.warn("partitionLimitation is ignored without topic, as KEDA ignores it")
		} else {
			c.PartitionLimitation = limits
		}
	}

	switch {
	case c.AllowIdleConsumers && c.LimitToPartitionsWithLag:
		r.fail("limitToPartitionsWithLag", "allowIdleConsumers and limitToPartitionsWithLag cannot be set simultaneously")
	case len(c.Topics) == 0 && c.LimitToPartitionsWithLag:
		r.fail("limitToPartitionsWithLag", "topic must be specified when using limitToPartitionsWithLag")
	}
	switch {
	case c.LimitToPartitionsWithLag && c.EnsureEvenDistributionOfPartitions:
		r.fail("ensureEvenDistributionOfPartitions", "limitToPartitionsWithLag and ensureEvenDistributionOfPartitions cannot be set simultaneously")
	case len(c.Topics) == 0 && c.EnsureEvenDistributionOfPartitions:
		r.fail("ensureEvenDistributionOfPartitions", "topic must be specified when using ensureEvenDistributionOfPartitions")
	}

	c.parseAuth(r, experimental)
	return c
}

// parseAuth reads sasl, tls and their credentials. The kafka trigger takes
// sasl and tls from the metadata first, then the TriggerAuthentication;
// apache-kafka refuses them in both places, as KEDA does.
func (c *KafkaConfig) parseAuth(r *reader, experimental bool) {
	for _, k := range []string{"sasl", "tls"} {
		if experimental && r.present(meta(k)) && r.present(auth(k)) {
			r.fail(k, "%s cannot be set in both the metadata and the TriggerAuthentication", k)
		}
	}

	tls := r.str(from("tls", fromMetadata, fromAuth).withDefault("disable").oneOf("enable", "disable"))
	c.TLS = tls == "enable"
	if !experimental {
		c.UnsafeSSL = r.boolean(meta("unsafeSsl"))
	}
	c.CA = r.secret(auth("ca"))
	c.Cert = r.secret(auth("cert"))
	c.Key = r.secret(auth("key"))
	keyPassword := r.secret(auth("keyPassword"))
	if c.TLS {
		if (c.Cert == "") != (c.Key == "") {
			r.fail("cert", "tls enable needs both cert and key in the TriggerAuthentication, or neither")
		}
		if keyPassword != "" {
			r.fail("keyPassword", "keyPassword (an encrypted client key) is not supported by ebb; give an unencrypted key")
		}
	}

	c.SASL = r.str(from("sasl", fromMetadata, fromAuth).withDefault(KafkaSASLNone).oneOf(kafkaSASLTypes[experimental]...))
	c.Username = r.str(auth("username"))
	c.Password = r.secret(auth("password"))
	// KEDA's OAuth, Kerberos and AWS settings: known keys, unused.
	if experimental {
		r.declare(meta("awsRegion"))
	} else {
		r.declare(from("saslTokenProvider", fromMetadata, fromAuth))
		r.declare(meta("awsRegion"))
	}
	switch c.SASL {
	case KafkaSASLNone, "":
		c.SASL = KafkaSASLNone
	case KafkaSASLPlaintext, KafkaSASLSCRAMSHA256, KafkaSASLSCRAMSHA512:
		if c.Username == "" || c.Password == "" {
			r.fail("sasl", "sasl %s needs username and password in the TriggerAuthentication", c.SASL)
		}
	default:
		r.fail("sasl", "sasl %s is not supported by ebb (supported: %s, %s, %s, %s)", c.SASL,
			KafkaSASLNone, KafkaSASLPlaintext, KafkaSASLSCRAMSHA256, KafkaSASLSCRAMSHA512)
	}
}

// parseKafkaPartitionLimitation reads comma-separated partition numbers
// and inclusive ranges ("1,2,10-20"). It returns a message on error.
func parseKafkaPartitionLimitation(s string) ([]KafkaPartitionRange, string) {
	var out []KafkaPartitionRange
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		from, to, isRange := strings.Cut(part, "-")
		lo, err := strconv.ParseInt(strings.TrimSpace(from), 10, 32)
		if err != nil || lo < 0 {
			return nil, fmt.Sprintf("%q is not a partition number or range", truncateKafka(part))
		}
		hi := lo
		if isRange {
			hi, err = strconv.ParseInt(strings.TrimSpace(to), 10, 32)
			if err != nil || hi < 0 {
				return nil, fmt.Sprintf("%q is not a partition number or range", truncateKafka(part))
			}
			if hi < lo {
				return nil, fmt.Sprintf("range %q is empty", truncateKafka(part))
			}
		}
		out = append(out, KafkaPartitionRange{From: int32(lo), To: int32(hi)})
	}
	return out, ""
}

func truncateKafka(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// Measures reports whether the trigger measures partition p: always when
// PartitionLimitation is nil, otherwise when a range holds p.
func (c *KafkaConfig) Measures(p int32) bool {
	if c.PartitionLimitation == nil {
		return true
	}
	return slices.ContainsFunc(c.PartitionLimitation, func(r KafkaPartitionRange) bool { return r.From <= p && p <= r.To })
}

// Experimental reports whether the trigger is apache-kafka, KEDA's
// experimental Kafka scaler.
func (c *KafkaConfig) Experimental() bool { return c.triggerType == "apache-kafka" }

// Type returns "kafka" or "apache-kafka".
func (c *KafkaConfig) Type() string { return c.triggerType }

// MetricName returns s<i>-kafka-<topics joined with ","> or, without
// topic, s<i>-kafka-<consumerGroup>-topics, normalized.
func (c *KafkaConfig) MetricName() string {
	name := "kafka-" + c.ConsumerGroup + "-topics"
	if len(c.Topics) > 0 {
		name = "kafka-" + strings.Join(c.Topics, ",")
	}
	return ExternalMetricName(c.index, Normalize(name))
}

// MetricSpec returns the External metric with target lagThreshold.
func (c *KafkaConfig) MetricSpec() (autoscalingv2.MetricSpec, error) {
	return externalMetricSpec(c.MetricName(), c.targetType, IntQuantity(c.LagThreshold)), nil
}

// ActivationThreshold is activationLagThreshold (default 0).
func (c *KafkaConfig) ActivationThreshold() float64 { return float64(c.ActivationLagThreshold) }
