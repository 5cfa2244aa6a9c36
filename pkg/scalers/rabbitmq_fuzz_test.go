package scalers

import (
	"fmt"
	"strings"
	"testing"
)

// FuzzRabbitMQ parses rabbitmq triggers with fuzzed metadata and
// authentication parameters: Parse never panics, its errors name the
// trigger, and neither errors, warnings nor the printed config show a
// value given in AuthParams or the host URL's password.
func FuzzRabbitMQ(f *testing.F) {
	// host, protocol, queueName, mode, value, activationValue, extra
	// metadata key, its value, auth key, auth value.
	seeds := [][10]string{
		{"amqp://guest:guest@localhost:5672/", "", "jobs", "", "", "", "", "", "", ""},
		{"http://localhost:15672/vh", "auto", "jobs", "MessageRate", "2.5", "1", "useRegex", "true", "password", "pw"},
		{"https://r/", "http", "^q-.*", "QueueLength", "10", "", "operation", "avg", "username", "u"},
		{"amqp://r", "amqp", "q", "MessageRate", "5", "", "timeout", "10s", "tls", "enable"},
		{"tcp://r", "", "q", "", "", "", "queueLength", "5", "host", "amqp://x:y@z"},
		{"", "http", "", "Unknown", "0", "x", "pageSize", "0", "keyPassword", "kp"},
		{"http://u:p@r:1/%2F", "bogus", "a/b c", "DeliverGetRate", "-1", "1e3", "timeout", "-1", "clientSecret", "s"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9])
	}
	f.Fuzz(func(t *testing.T, host, protocol, queue, mode, value, activation, key, val, authKey, authVal string) {
		md := map[string]string{}
		for k, v := range map[string]string{"host": host, "protocol": protocol, "queueName": queue, "mode": mode, "value": value, "activationValue": activation} {
			if v != "" {
				md[k] = v
			}
		}
		if key != "" {
			md[key] = val
		}
		auth := map[string]string{}
		if authKey != "" {
			auth[authKey] = authVal
		}
		// As fuzzed: no panic, errors name the trigger.
		cfg, _, err := Parse(Trigger{Index: 3, Type: "rabbitmq", Metadata: md, AuthParams: auth})
		checkErr := func(cfg Config, err error) {
			t.Helper()
			if err == nil {
				if _, err := cfg.MetricSpec(); err != nil {
					t.Fatalf("MetricSpec: %v", err)
				}
				return
			}
			if cfg != nil {
				t.Fatalf("config with an error")
			}
			if !strings.Contains(err.Error(), "trigger 3 (rabbitmq)") {
				t.Fatalf("error does not name the trigger: %v", err)
			}
		}
		checkErr(cfg, err)

		// Marked: the authentication value and the host's user information
		// carry a marker that must never show.
		const marker = "S3CR3T"
		if authKey != "" {
			auth[authKey] = marker + authVal
		}
		if i := strings.LastIndex(host, "@"); i > 0 && md["host"] != "" {
			md["host"] = host[:i] + marker + host[i:]
		}
		if strings.Contains(strings.Join([]string{protocol, queue, mode, value, activation, key, val}, "\x00"), marker) {
			return // the marker given as a plain setting may show as that setting
		}
		cfg, warnings, err := Parse(Trigger{Index: 3, Type: "rabbitmq", Metadata: md, AuthParams: auth})
		checkErr(cfg, err)
		if err != nil && strings.Contains(err.Error(), marker) {
			t.Fatalf("error shows a secret: %v", err)
		}
		for _, w := range warnings {
			if strings.Contains(w, marker) {
				t.Fatalf("warning shows a secret: %s", w)
			}
		}
		if cfg != nil {
			printed := fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg)
			// username, vhostName and protocol may come from AuthParams and
			// are plain settings.
			plain := authKey == "username" || authKey == "vhostName" || authKey == "protocol"
			if strings.Contains(printed, marker) && !plain {
				t.Fatalf("printed config shows a secret: %s", printed)
			}
		}
	})
}
