package scalers

import (
	"strconv"
	"strings"
	"testing"
)

// kafkaFuzzMarker prefixes every authentication value of a marked fuzz
// case, so a leak is found whatever the fuzzed value is.
const kafkaFuzzMarker = "KAFKA-S3CR3T-"

// FuzzKafka parses kafka and apache-kafka triggers with fuzzed metadata
// and authentication parameters: Parse must not panic, an error must name
// the trigger on every line, a config must give a metric, and in marked
// cases (every authentication value prefixed with kafkaFuzzMarker) neither
// errors nor warnings may show an authentication value.
func FuzzKafka(f *testing.F) {
	// Seeds: bootstrapServers, consumerGroup, topic, lagThreshold,
	// activationLagThreshold, offsetResetPolicy, partitionLimitation,
	// flags (allowIdleConsumers, excludePersistentLag,
	// scaleToZeroOnInvalidOffset, limitToPartitionsWithLag,
	// ensureEvenDistributionOfPartitions as t/f/other per byte), version,
	// sasl, tls, username, password, cert, key, ca, keyPassword,
	// apache-kafka, sasl and tls in the metadata (not the
	// TriggerAuthentication), marked.
	f.Add("kafka:9092", "g", "t", "", "", "", "", "", "", "", "", "", "", "", "", "", "", false, false, false)
	f.Add("a:1, b:2", "g", "t", "5", "1", "earliest", "0,2-4", "ftttf", "2.8.1", "scram_sha256", "enable", "u", "p", "C", "K", "CA", "", false, true, false)
	f.Add("a:1", "g", "x, y", "5", "1", "latest", "1-3", "fftff", "", "plaintext", "disable", "u", "p", "", "", "", "", true, false, true)
	f.Add("", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", false, false, true)
	f.Add(" , ", "g", "", "0", "-1", "newest", "5-3", "yes", "2.8", "gssapi", "on", "", "p", "C", "", "", "kp", false, false, true)
	f.Add("a:1", "g", "t", "1.5", "x", "", "a,-1", "tt", "0.10.2.0", "oauthbearer", "enable", "u", "", "", "K", "", "kp", false, true, true)
	f.Add("a:1", "g", "", "null", "1e3", "", "99999999999-1", "ttttt", "1.0.0", "aws_msk_iam", "enable", "u", "p", "C", "K", "", "", true, true, true)
	f.Fuzz(func(t *testing.T, servers, group, topic, lag, activation, policy, limits, flags, version,
		sasl, tls, username, password, cert, key, ca, keyPassword string, experimental, authInMetadata, marked bool) {
		md := map[string]string{
			"bootstrapServers": servers, "consumerGroup": group, "topic": topic, "lagThreshold": lag,
			"activationLagThreshold": activation, "offsetResetPolicy": policy, "partitionLimitation": limits, "version": version,
		}
		for i, k := range []string{"allowIdleConsumers", "excludePersistentLag", "scaleToZeroOnInvalidOffset",
			"limitToPartitionsWithLag", "ensureEvenDistributionOfPartitions"} {
			if i < len(flags) {
				switch flags[i] {
				case 't':
					md[k] = "true"
				case 'f':
					md[k] = "false"
				default:
					md[k] = flags[i:]
				}
			}
		}
		ap := map[string]string{}
		for k, v := range map[string]string{"username": username, "password": password, "cert": cert, "key": key, "ca": ca, "keyPassword": keyPassword} {
			if v != "" {
				ap[k] = v
			}
		}
		choice := map[string]string{"sasl": sasl, "tls": tls}
		for k, v := range choice {
			if authInMetadata {
				md[k] = v
			} else if v != "" {
				ap[k] = v
			}
		}
		typ := "kafka"
		if experimental {
			typ = "apache-kafka"
		}
		tr := Trigger{Index: 3, Type: typ, Metadata: md, AuthParams: ap}
		if marked {
			for k, v := range md {
				md[k] = strings.ReplaceAll(v, kafkaFuzzMarker, strings.ToLower(kafkaFuzzMarker))
			}
			for k, v := range ap {
				ap[k] = kafkaFuzzMarker + v
			}
		}

		cfg, warnings, err := Parse(tr)
		prefix := "trigger " + strconv.Itoa(tr.Index) + " (" + typ + "): "
		texts := warnings
		for _, w := range warnings {
			if !strings.HasPrefix(w, prefix) {
				t.Fatalf("warning %q does not name the trigger", w)
			}
		}
		if err != nil {
			if cfg != nil {
				t.Fatalf("Parse returned a config with error %v", err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, prefix) {
					t.Fatalf("error line %q does not name the trigger", line)
				}
			}
			texts = append(texts, err.Error())
		} else {
			kc, ok := cfg.(*KafkaConfig)
			if !ok {
				t.Fatalf("config is a %T", cfg)
			}
			spec, err := kc.MetricSpec()
			if err != nil {
				t.Fatalf("MetricSpec: %v", err)
			}
			if !strings.HasPrefix(spec.External.Metric.Name, "s3-kafka-") || kc.LagThreshold <= 0 || len(kc.BootstrapServers) == 0 {
				t.Fatalf("config %+v, metric %q", kc, spec.External.Metric.Name)
			}
		}
		if !marked {
			return
		}
		for _, s := range texts {
			if strings.Contains(s, kafkaFuzzMarker) {
				t.Fatalf("%q reveals an authentication value", s)
			}
		}
	})
}
