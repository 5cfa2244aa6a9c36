package scalers

import (
	"reflect"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

func kafkaMeta(kv ...string) map[string]string {
	m := map[string]string{"bootstrapServers": "kafka:9092", "consumerGroup": "workers", "topic": "orders"}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "<unset>" {
			delete(m, kv[i])
			continue
		}
		m[kv[i]] = kv[i+1]
	}
	return m
}

func kafkaCfg(f func(t *testing.T, c *KafkaConfig)) func(*testing.T, Config) {
	return func(t *testing.T, c Config) {
		t.Helper()
		f(t, c.(*KafkaConfig))
	}
}

func TestParseKafka(t *testing.T) {
	runParseCases(t, map[string]parseCase{
		"defaults": {
			trigger:    trig("kafka", 0, kafkaMeta()),
			wantSpec:   ext("s0-kafka-orders", autoscalingv2.AverageValueMetricType, "10"),
			wantTarget: "10",
			noWarnings: true,
			check: kafkaCfg(func(t *testing.T, c *KafkaConfig) {
				activation(t, c, 0)
				want := &KafkaConfig{
					BootstrapServers: []string{"kafka:9092"}, ConsumerGroup: "workers", Topics: []string{"orders"},
					LagThreshold: 10, OffsetResetPolicy: KafkaOffsetLatest, Version: DefaultKafkaVersion, SASL: KafkaSASLNone,
					triggerType: "kafka", targetType: autoscalingv2.AverageValueMetricType,
				}
				if !reflect.DeepEqual(c, want) {
					t.Errorf("config\n got %+v\nwant %+v", c, want)
				}
				if c.Experimental() || !c.Measures(7) {
					t.Errorf("Experimental() = %v, Measures(7) = %v", c.Experimental(), c.Measures(7))
				}
			}),
		},
		"every key": {
			trigger: withAuth(withMetricType(trig("kafka", 4, kafkaMeta(
				"bootstrapServers", "a:9092, b:9093,", "topic", "events.v1", "lagThreshold", "50", "activationLagThreshold", "3",
				"offsetResetPolicy", "earliest", "allowIdleConsumers", "false", "excludePersistentLag", "true",
				"scaleToZeroOnInvalidOffset", "true", "limitToPartitionsWithLag", "true", "version", "2.8.1",
				"partitionLimitation", "1, 2,10-20 ,31", "tls", "enable", "unsafeSsl", "true", "sasl", "scram_sha512")),
				autoscalingv2.ValueMetricType), map[string]string{"username": "u", "password": "pw"}),
			wantSpec:   ext("s4-kafka-events-v1", autoscalingv2.ValueMetricType, "50"),
			wantTarget: "50",
			noWarnings: true,
			check: kafkaCfg(func(t *testing.T, c *KafkaConfig) {
				activation(t, c, 3)
				if !reflect.DeepEqual(c.BootstrapServers, []string{"a:9092", "b:9093"}) || c.OffsetResetPolicy != KafkaOffsetEarliest ||
					!c.ExcludePersistentLag || !c.ScaleToZeroOnInvalidOffset || !c.LimitToPartitionsWithLag || c.AllowIdleConsumers ||
					c.Version != "2.8.1" || !c.TLS || !c.UnsafeSSL || c.SASL != KafkaSASLSCRAMSHA512 || c.Username != "u" || string(c.Password) != "pw" {
					t.Errorf("config %+v", c)
				}
				wantLimits := []KafkaPartitionRange{{1, 1}, {2, 2}, {10, 20}, {31, 31}}
				if !reflect.DeepEqual(c.PartitionLimitation, wantLimits) {
					t.Errorf("partitionLimitation %v, want %v", c.PartitionLimitation, wantLimits)
				}
				for p, want := range map[int32]bool{0: false, 1: true, 2: true, 3: false, 10: true, 15: true, 20: true, 21: false, 31: true, 32: false} {
					if c.Measures(p) != want {
						t.Errorf("Measures(%d) = %v", p, !want)
					}
				}
			}),
		},
		"ensureEvenDistributionOfPartitions, allowIdleConsumers": {
			trigger: trig("kafka", 0, kafkaMeta("ensureEvenDistributionOfPartitions", "true", "allowIdleConsumers", "true")),
			check: kafkaCfg(func(t *testing.T, c *KafkaConfig) {
				if !c.EnsureEvenDistributionOfPartitions || !c.AllowIdleConsumers {
					t.Errorf("config %+v", c)
				}
			}),
		},
		"no topic: the group's topics": {
			trigger:    trig("kafka", 1, kafkaMeta("topic", "<unset>", "consumerGroup", "billing.workers")),
			wantSpec:   ext("s1-kafka-billing-workers-topics", autoscalingv2.AverageValueMetricType, "10"),
			noWarnings: true,
			check: kafkaCfg(func(t *testing.T, c *KafkaConfig) {
				if c.Topics != nil {
					t.Errorf("topics %q", c.Topics)
				}
			}),
		},
		"partitionLimitation without topic is ignored": {
			trigger:      trig("kafka", 0, kafkaMeta("topic", "<unset>", "partitionLimitation", "1-3")),
			wantWarnings: []string{"trigger 0 (kafka): partitionLimitation is ignored without topic"},
			check: kafkaCfg(func(t *testing.T, c *KafkaConfig) {
				if c.PartitionLimitation != nil || !c.Measures(9) {
					t.Errorf("limitation %v", c.PartitionLimitation)
				}
			}),
		},
		"from the environment": {
			trigger: trig("kafka", 0, map[string]string{
				"bootstrapServersFromEnv": "BROKERS", "bootstrapServers": "env:9092",
				"consumerGroupFromEnv": "GROUP", "consumerGroup": "env-group",
				"topicFromEnv": "TOPIC", "topic": "env-topic",
			}),
			wantSpec:   ext("s0-kafka-env-topic", autoscalingv2.AverageValueMetricType, "10"),
			noWarnings: true,
			check: kafkaCfg(func(t *testing.T, c *KafkaConfig) {
				if c.BootstrapServers[0] != "env:9092" || c.ConsumerGroup != "env-group" {
					t.Errorf("config %+v", c)
				}
			}),
		},
		"sasl plaintext and tls from the TriggerAuthentication": {
			trigger: withAuth(trig("kafka", 0, kafkaMeta()), map[string]string{
				"sasl": "plaintext", "username": "alice", "password": "pw", "tls": "enable", "ca": "CA", "cert": "C", "key": "K",
			}),
			noWarnings: true,
			check: kafkaCfg(func(t *testing.T, c *KafkaConfig) {
				if c.SASL != KafkaSASLPlaintext || c.Username != "alice" || string(c.Password) != "pw" || !c.TLS ||
					string(c.CA) != "CA" || string(c.Cert) != "C" || string(c.Key) != "K" {
					t.Errorf("config %+v", c)
				}
			}),
		},
		"metadata sasl and tls win over the TriggerAuthentication": {
			trigger: withAuth(trig("kafka", 0, kafkaMeta("sasl", "scram_sha256", "tls", "disable")), map[string]string{
				"sasl": "plaintext", "tls": "enable", "username": "u", "password": "pw",
			}),
			check: kafkaCfg(func(t *testing.T, c *KafkaConfig) {
				if c.SASL != KafkaSASLSCRAMSHA256 || c.TLS {
					t.Errorf("config %+v", c)
				}
			}),
		},
		"sasl none": {
			trigger: trig("kafka", 0, kafkaMeta("sasl", "none")),
			check: kafkaCfg(func(t *testing.T, c *KafkaConfig) {
				if c.SASL != KafkaSASLNone {
					t.Errorf("sasl %q", c.SASL)
				}
			}),
		},
		"keyPassword without tls is ignored": {
			trigger: withAuth(trig("kafka", 0, kafkaMeta()), map[string]string{"keyPassword": "kp"}),
		},
		"bootstrapServers missing": {
			trigger: trig("kafka", 0, kafkaMeta("bootstrapServers", "<unset>")),
			wantErr: "trigger 0 (kafka): bootstrapServers is required",
		},
		"bootstrapServers empty list": {
			trigger: trig("kafka", 0, kafkaMeta("bootstrapServers", " , ")),
			wantErr: "bootstrapServers lists no broker",
		},
		"consumerGroup missing": {
			trigger: trig("kafka", 0, kafkaMeta("consumerGroup", "<unset>")),
			wantErr: "trigger 0 (kafka): consumerGroup is required",
		},
		"lagThreshold not an integer": {
			trigger: trig("kafka", 0, kafkaMeta("lagThreshold", "1.5")),
			wantErr: `lagThreshold "1.5" is not an integer`,
		},
		"lagThreshold zero": {
			trigger: trig("kafka", 0, kafkaMeta("lagThreshold", "0")),
			wantErr: "lagThreshold must be a positive number",
		},
		"activationLagThreshold negative": {
			trigger: trig("kafka", 0, kafkaMeta("activationLagThreshold", "-1")),
			wantErr: "activationLagThreshold must not be negative",
		},
		"activationLagThreshold not an integer": {
			trigger: trig("kafka", 0, kafkaMeta("activationLagThreshold", "x")),
			wantErr: `activationLagThreshold "x" is not an integer`,
		},
		"bad offsetResetPolicy": {
			trigger: trig("kafka", 0, kafkaMeta("offsetResetPolicy", "newest")),
			wantErr: `offsetResetPolicy "newest" must be one of latest, earliest`,
		},
		"bad boolean": {
			trigger: trig("kafka", 0, kafkaMeta("allowIdleConsumers", "yes")),
			wantErr: `allowIdleConsumers "yes" must be true or false`,
		},
		"bad version": {
			trigger: trig("kafka", 0, kafkaMeta("version", "2.8")),
			wantErr: `version "2.8" is not a Kafka version`,
		},
		"0.x version": {
			trigger: trig("kafka", 0, kafkaMeta("version", "0.10.2.0")),
		},
		"bad partitionLimitation": {
			trigger: trig("kafka", 0, kafkaMeta("partitionLimitation", "1,a")),
			wantErr: `partitionLimitation "1,a": "a" is not a partition number or range`,
		},
		"empty partition range": {
			trigger: trig("kafka", 0, kafkaMeta("partitionLimitation", "5-3")),
			wantErr: `range "5-3" is empty`,
		},
		"negative partition": {
			trigger: trig("kafka", 0, kafkaMeta("partitionLimitation", "-1")),
			wantErr: `"-1" is not a partition number or range`,
		},
		"allowIdleConsumers with limitToPartitionsWithLag": {
			trigger: trig("kafka", 0, kafkaMeta("allowIdleConsumers", "true", "limitToPartitionsWithLag", "true")),
			wantErr: "allowIdleConsumers and limitToPartitionsWithLag cannot be set simultaneously",
		},
		"limitToPartitionsWithLag without topic": {
			trigger: trig("kafka", 0, kafkaMeta("topic", "<unset>", "limitToPartitionsWithLag", "true")),
			wantErr: "topic must be specified when using limitToPartitionsWithLag",
		},
		"limitToPartitionsWithLag with ensureEvenDistributionOfPartitions": {
			trigger: trig("kafka", 0, kafkaMeta("limitToPartitionsWithLag", "true", "ensureEvenDistributionOfPartitions", "true")),
			wantErr: "limitToPartitionsWithLag and ensureEvenDistributionOfPartitions cannot be set simultaneously",
		},
		"ensureEvenDistributionOfPartitions without topic": {
			trigger: trig("kafka", 0, kafkaMeta("topic", "<unset>", "ensureEvenDistributionOfPartitions", "true")),
			wantErr: "topic must be specified when using ensureEvenDistributionOfPartitions",
		},
		"sasl without password": {
			trigger: withAuth(trig("kafka", 0, kafkaMeta("sasl", "plaintext")), map[string]string{"username": "u"}),
			wantErr: "sasl plaintext needs username and password in the TriggerAuthentication",
		},
		"sasl scram without username": {
			trigger: withAuth(trig("kafka", 0, kafkaMeta()), map[string]string{"sasl": "scram_sha256", "password": "pw"}),
			wantErr: "sasl scram_sha256 needs username and password",
		},
		"sasl oauthbearer refused": {
			trigger: withAuth(trig("kafka", 0, kafkaMeta("sasl", "oauthbearer")), map[string]string{"username": "u", "password": "pw"}),
			wantErr: "trigger 0 (kafka): sasl oauthbearer is not supported by ebb (supported: none, plaintext, scram_sha256, scram_sha512)",
		},
		"sasl gssapi refused": {
			trigger: withAuth(trig("kafka", 0, kafkaMeta()), map[string]string{"sasl": "gssapi"}),
			wantErr: "sasl gssapi is not supported by ebb",
		},
		"sasl aws_msk_iam is not a kafka value": {
			trigger: trig("kafka", 0, kafkaMeta("sasl", "aws_msk_iam")),
			wantErr: `sasl "aws_msk_iam" must be one of none, plaintext, scram_sha256, scram_sha512, oauthbearer, gssapi`,
		},
		"unknown sasl from the TriggerAuthentication is not shown": {
			trigger: withAuth(trig("kafka", 0, kafkaMeta()), map[string]string{"sasl": "hunter2"}),
			wantErr: "sasl (from the TriggerAuthentication) must be one of",
		},
		"bad tls": {
			trigger: trig("kafka", 0, kafkaMeta("tls", "on")),
			wantErr: `tls "on" must be one of enable, disable`,
		},
		"cert without key": {
			trigger: withAuth(trig("kafka", 0, kafkaMeta("tls", "enable")), map[string]string{"cert": "C"}),
			wantErr: "tls enable needs both cert and key in the TriggerAuthentication, or neither",
		},
		"encrypted key refused": {
			trigger: withAuth(trig("kafka", 0, kafkaMeta()), map[string]string{"tls": "enable", "cert": "C", "key": "K", "keyPassword": "kp"}),
			wantErr: "keyPassword (an encrypted client key) is not supported by ebb",
		},
		"utilization refused": {
			trigger: withMetricType(trig("kafka", 0, kafkaMeta()), autoscalingv2.UtilizationMetricType),
			wantErr: "metricType Utilization is supported only by cpu and memory triggers",
		},
		"unknown key": {
			trigger:      trig("kafka", 0, kafkaMeta("lagthreshold", "5")),
			wantWarnings: []string{`trigger 0 (kafka): unknown metadata key "lagthreshold" is ignored`},
		},
		"KEDA's other authentication keys are known": {
			trigger:    trig("kafka", 0, kafkaMeta("saslTokenProvider", "bearer", "awsRegion", "eu-west-1")),
			noWarnings: true,
		},
	})
}

func TestParseApacheKafka(t *testing.T) {
	runParseCases(t, map[string]parseCase{
		"defaults": {
			trigger:    trig("apache-kafka", 2, kafkaMeta()),
			wantSpec:   ext("s2-kafka-orders", autoscalingv2.AverageValueMetricType, "10"),
			wantTarget: "10",
			noWarnings: true,
			check: kafkaCfg(func(t *testing.T, c *KafkaConfig) {
				activation(t, c, 0)
				if !c.Experimental() || c.Version != "" || c.LagThreshold != 10 || c.SASL != KafkaSASLNone || c.OffsetResetPolicy != KafkaOffsetLatest {
					t.Errorf("config %+v", c)
				}
			}),
		},
		"several topics": {
			trigger:  trig("apache-kafka", 0, kafkaMeta("topic", "orders, refunds.v2", "partitionLimitation", "0-1", "lagThreshold", "7")),
			wantSpec: ext("s0-kafka-orders,refunds-v2", autoscalingv2.AverageValueMetricType, "7"),
			check: kafkaCfg(func(t *testing.T, c *KafkaConfig) {
				if !reflect.DeepEqual(c.Topics, []string{"orders", "refunds.v2"}) || !c.Measures(1) || c.Measures(2) {
					t.Errorf("config %+v", c)
				}
			}),
		},
		"no topic": {
			trigger:  trig("apache-kafka", 0, kafkaMeta("topic", "<unset>")),
			wantSpec: ext("s0-kafka-workers-topics", autoscalingv2.AverageValueMetricType, "10"),
		},
		"sasl aws_msk_iam refused": {
			trigger: withAuth(trig("apache-kafka", 0, kafkaMeta("sasl", "aws_msk_iam", "awsRegion", "eu-west-1", "tls", "enable")), nil),
			wantErr: "trigger 0 (apache-kafka): sasl aws_msk_iam is not supported by ebb",
		},
		"sasl oauthbearer is not an apache-kafka value": {
			trigger: trig("apache-kafka", 0, kafkaMeta("sasl", "oauthbearer")),
			wantErr: `sasl "oauthbearer" must be one of none, plaintext, scram_sha256, scram_sha512, gssapi, aws_msk_iam`,
		},
		"sasl in both places": {
			trigger: withAuth(trig("apache-kafka", 0, kafkaMeta("sasl", "plaintext")), map[string]string{"sasl": "plaintext", "username": "u", "password": "p"}),
			wantErr: "sasl cannot be set in both the metadata and the TriggerAuthentication",
		},
		"tls in both places": {
			trigger: withAuth(trig("apache-kafka", 0, kafkaMeta("tls", "enable")), map[string]string{"tls": "enable"}),
			wantErr: "tls cannot be set in both the metadata and the TriggerAuthentication",
		},
		"scram from the TriggerAuthentication": {
			trigger: withAuth(trig("apache-kafka", 0, kafkaMeta()), map[string]string{"sasl": "scram_sha256", "username": "u", "password": "p"}),
			check: kafkaCfg(func(t *testing.T, c *KafkaConfig) {
				if c.SASL != KafkaSASLSCRAMSHA256 {
					t.Errorf("sasl %q", c.SASL)
				}
			}),
		},
		"kafka-only keys are unknown": {
			trigger: trig("apache-kafka", 0, kafkaMeta("version", "1.0.0", "unsafeSsl", "true", "ensureEvenDistributionOfPartitions", "true")),
			wantWarnings: []string{
				`unknown metadata key "ensureEvenDistributionOfPartitions" is ignored`,
				`unknown metadata key "unsafeSsl" is ignored`,
				`unknown metadata key "version" is ignored`,
			},
		},
		"limitToPartitionsWithLag without topic": {
			trigger: trig("apache-kafka", 0, kafkaMeta("topic", "<unset>", "limitToPartitionsWithLag", "true")),
			wantErr: "trigger 0 (apache-kafka): topic must be specified when using limitToPartitionsWithLag",
		},
	})
}
