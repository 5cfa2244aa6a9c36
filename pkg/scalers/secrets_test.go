package scalers

import (
	"fmt"
	"strings"
	"testing"
)

const sentinel = "S3CR3T-sentinel"

// authKeys are every key a parser reads from AuthParams.
var authKeys = []string{
	"password", "username", "token", "bearerToken", "cert", "Cert", "key", "ca", "keyPassword",
	"clientSecret", "clientID", "oauthTokenURI", "scopes", "endpointParams", "customAuthHeader",
	"customAuthValue", "apiKey", "method", "keyParamName", "authModes", "authMode", "tls",
	"address", "addresses", "host", "hosts", "port", "ports", "sentinelUsername", "sentinelPassword",
	"sentinelMaster", "connection", "userName", "dbName", "sslmode", "awsRegion", "caCert",
	"tlsClientCert", "tlsClientKey",
}

// secretMetadataKeys are metadata keys that carry secrets, literally or
// resolved from the environment.
var secretMetadataKeys = []string{"password", "apiKey", "sentinelPassword", "connection"}

// secretShapes are sentinel values shaped to fail every kind of parsing.
var secretShapes = []string{
	sentinel,
	sentinel + "%zz",
	sentinel + ",b",
	"a," + sentinel,
	sentinel + "=x,y",
	" " + sentinel + " ",
}

// garbage makes the non-secret settings fail too, so every error path runs.
var garbageMetadata = map[string]string{
	"threshold": "x", "targetValue": "x", "listLength": "x", "value": "x", "desiredReplicas": "x",
	"enableTLS": "x", "unsafeSsl": "x", "format": "x", "type": "x", "databaseIndex": "x",
	"customHeaders": "x", "queryParameters": "x", "method": "x", "authModes": "x", "timeout": "x",
}

func TestSecretsNeverInErrorsOrWarnings(t *testing.T) {
	var calls, failures int
	check := func(t *testing.T, tr Trigger) {
		t.Helper()
		cfg, warnings, err := Parse(tr)
		calls++
		if err != nil {
			failures++
		}
		if err != nil && strings.Contains(err.Error(), "S3CR3T") {
			t.Errorf("%s: error reveals the secret: %v", tr.Type, err)
		}
		for _, w := range warnings {
			if strings.Contains(w, "S3CR3T") {
				t.Errorf("%s: warning reveals the secret: %s", tr.Type, w)
			}
		}
		if cfg != nil {
			for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
				if s := fmt.Sprintf(verb, cfg); strings.Contains(s, "S3CR3T") && !onlyInPlainSetting(tr, s) {
					t.Errorf("%s: %s of the config reveals a secret: %s", tr.Type, verb, s)
				}
			}
		}
	}
	for _, typ := range Types() {
		t.Run(typ, func(t *testing.T) {
			for _, shape := range secretShapes {
				for _, mt := range []string{"", "Utilization", "Value"} {
					for _, md := range []map[string]string{{}, garbageMetadata, validMetadata(typ)} {
						// Every auth key at once, and each on its own.
						all := map[string]string{}
						for _, k := range authKeys {
							all[k] = shape
						}
						tr := Trigger{Index: 0, Type: typ, Metadata: md, AuthParams: all, MetricType: metricType(mt)}
						check(t, tr)
						for _, k := range authKeys {
							tr.AuthParams = map[string]string{k: shape}
							check(t, tr)
						}
						// Secret metadata keys, literal and resolved from the environment.
						for _, k := range secretMetadataKeys {
							for _, fromEnv := range []bool{false, true} {
								m := clone(md)
								m[k] = shape
								if fromEnv {
									m[k+"FromEnv"] = "ENV_VAR"
								}
								check(t, Trigger{Index: 0, Type: typ, Metadata: m, MetricType: metricType(mt)})
							}
						}
					}
				}
			}
		})
	}
	// The check is only worth something if the error paths ran.
	if failures < calls/4 || failures == calls {
		t.Errorf("%d of %d parses failed: the cases do not exercise both paths", failures, calls)
	}
	t.Logf("%d parses, %d failed", calls, failures)
}

// onlyInPlainSetting tolerates the sentinel in a printed config when the
// trigger put it in a setting that is not secret (a user name, a host),
// which the config legitimately carries in clear.
func onlyInPlainSetting(tr Trigger, printed string) bool {
	for _, k := range []string{"username", "userName", "host", "hosts", "address", "addresses", "port", "ports",
		"sentinelUsername", "sentinelMaster", "clientID", "oauthTokenURI", "scopes", "customAuthHeader", "keyParamName",
		"dbName", "sslmode", "awsRegion", "endpointParams", "method", "authModes", "authMode"} {
		if strings.Contains(tr.AuthParams[k], "S3CR3T") {
			return true
		}
	}
	return false
}

func validMetadata(typ string) map[string]string {
	switch typ {
	case "cpu", "memory":
		return map[string]string{"value": "50"}
	case "cron":
		return cronMeta("UTC", "0 8 * * *", "0 9 * * *", "2")
	case "metrics-api":
		return apiMeta()
	case "prometheus":
		return promMeta()
	case "postgresql":
		return map[string]string{"query": "SELECT 1", "targetQueryValue": "1"}
	case "kubernetes-workload":
		return map[string]string{"podSelector": "app=x", "value": "1"}
	case "external", "external-push":
		return map[string]string{"scalerAddress": "s:1"}
	case "redis-streams", "redis-cluster-streams", "redis-sentinel-streams":
		return map[string]string{"stream": "s"}
	default:
		return map[string]string{"listName": "l"}
	}
}

func metricType(s string) (mt metricTargetType) { return metricTargetType(s) }

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+2)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestSecretPrintsRedacted(t *testing.T) {
	cfg, _, err := Parse(withAuth(trig("redis", 0, map[string]string{"address": "r:1", "listName": "l"}), map[string]string{"password": sentinel}))
	if err != nil {
		t.Fatal(err)
	}
	rc := cfg.(*RedisConfig)
	if string(rc.Connection.Password) != sentinel {
		t.Fatalf("password not kept")
	}
	if s := fmt.Sprintf("%v %+v %#v %s", rc.Connection.Password, rc.Connection, rc.Connection, rc.Connection.Password); strings.Contains(s, "S3CR3T") {
		t.Errorf("printed secret: %s", s)
	}
	if Secret("").String() != "" {
		t.Errorf("empty secret prints")
	}
}
