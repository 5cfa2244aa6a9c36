package scalers

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzNATSJetStream parses nats-jetstream triggers with fuzzed metadata
// and authentication parameters: Parse must not panic, an error must name
// the trigger, and neither errors nor warnings may show an authentication
// value.
func FuzzNATSJetStream(f *testing.F) {
	// Seeds: endpoint, account, accountID, stream, consumer, lagThreshold,
	// activationLagThreshold, useHttps, whether the endpoint and accounts
	// come from the TriggerAuthentication, and whether the authentication
	// values are marked (see fuzzParseNATSEtcd).
	f.Add("nats:8222", "$G", "", "orders", "workers", "10", "0", "false", false, false)
	f.Add("nats:8222", "", "ACC", "s.1", "c", "25", "3", "true", true, false)
	f.Add("", "", "", "", "", "", "", "", false, false)
	f.Add("", "", "", "", "", "", "", "", true, true)
	f.Add("http://x:1", "a", "", "s", "c", "1.5", "x", "yes", false, false)
	f.Add("://x", "acc", "", "s", "c", "", "", "", true, true)
	f.Add("n:1", "a", "", "s", "c", "9223372036854775808", "-1", "TRUE", true, true)
	f.Fuzz(func(t *testing.T, endpoint, account, accountID, stream, consumer, lag, activation, https string, fromAuth, marked bool) {
		md := map[string]string{
			"stream": stream, "consumer": consumer, "lagThreshold": lag,
			"activationLagThreshold": activation, "useHttps": https,
		}
		ap := map[string]string{}
		dst := md
		if fromAuth {
			dst = ap
		}
		dst["natsServerMonitoringEndpoint"] = endpoint
		dst["account"] = account
		dst["accountID"] = accountID
		fuzzParseNATSEtcd(t, Trigger{Index: 1, Type: "nats-jetstream", Metadata: md, AuthParams: ap}, marked)
	})
}

// fuzzMarker marks authentication values in the fuzz tests of the
// nats-jetstream and etcd parsers.
const fuzzMarker = "S3CR3T"

// fuzzParseNATSEtcd runs Parse on tr and checks what the fuzz tests of the
// nats-jetstream and etcd parsers check: no panic (the fuzzer reports it),
// an error names the trigger and comes without a config, a config gives a
// metric spec. When marked, every authentication value is prefixed with
// fuzzMarker (and the marker is removed from the metadata), and the marker
// must show in no error and no warning: a value from the
// TriggerAuthentication, even truncated, is never shown. Unmarked runs
// reach the valid authentication paths.
func fuzzParseNATSEtcd(t *testing.T, tr Trigger, marked bool) {
	t.Helper()
	if marked {
		for k, v := range tr.Metadata {
			tr.Metadata[k] = strings.ReplaceAll(v, fuzzMarker, strings.ToLower(fuzzMarker))
		}
		for k, v := range tr.AuthParams {
			tr.AuthParams[k] = fuzzMarker + v
		}
	}
	cfg, warnings, err := Parse(tr)
	prefix := "trigger " + strconv.Itoa(tr.Index) + " (" + tr.Type + "): "
	texts := warnings
	if err != nil {
		if cfg != nil {
			t.Fatalf("Parse returned a config with error %v", err)
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, prefix) {
				t.Fatalf("error %q does not name the trigger", line)
			}
		}
		texts = append(texts, err.Error())
	} else if cfg == nil {
		t.Fatal("Parse returned neither a config nor an error")
	} else if _, err := cfg.MetricSpec(); err != nil {
		t.Fatalf("MetricSpec: %v", err)
	}
	if !marked {
		return
	}
	for _, s := range texts {
		if strings.Contains(s, fuzzMarker) {
			t.Fatalf("%q reveals an authentication value", s)
		}
	}
}
