package scalers

import (
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
	// values are marked (see checkParseFuzz).
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
		checkParseFuzz(t, Trigger{Index: 1, Type: "nats-jetstream", Metadata: md, AuthParams: ap}, nil, marked)
	})
}
