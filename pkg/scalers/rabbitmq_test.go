package scalers

import (
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

func TestParseRabbitMQ(t *testing.T) {
	md := func(kv ...string) map[string]string {
		m := map[string]string{"host": "amqp://guest:pw@rabbit.shop:5672/orders", "queueName": "jobs"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
				continue
			}
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	httpMD := func(kv ...string) map[string]string {
		return md(append([]string{"host", "http://rabbit.shop:15672/orders"}, kv...)...)
	}
	cfg := func(f func(t *testing.T, c *RabbitMQConfig)) func(*testing.T, Config) {
		return func(t *testing.T, c Config) { t.Helper(); f(t, c.(*RabbitMQConfig)) }
	}
	runParseCases(t, map[string]parseCase{
		"defaults: AMQP, QueueLength 20": {
			trigger:    trig("rabbitmq", 0, md()),
			wantSpec:   ext("s0-rabbitmq-jobs", autoscalingv2.AverageValueMetricType, "20"),
			wantTarget: "20",
			noWarnings: true,
			check: cfg(func(t *testing.T, c *RabbitMQConfig) {
				activation(t, c, 0)
				if c.Protocol != RabbitMQProtocolAMQP || c.Mode != RabbitMQModeQueueLength || c.Value != 20 || c.PageSize != 100 ||
					c.Operation != "sum" || c.UseRegex || c.ExcludeUnacknowledged || c.EnableTLS || c.Timeout != 0 ||
					string(c.Host) != "amqp://guest:pw@rabbit.shop:5672/orders" || c.Namespace != "shop" || c.ScaledObjectName != "orders" {
					t.Errorf("config %+v", c)
				}
			}),
		},
		"mode and value, Value, index 2": {
			trigger:    withMetricType(trig("rabbitmq", 2, md("mode", "QueueLength", "value", "100.50", "activationValue", "10.5")), autoscalingv2.ValueMetricType),
			wantSpec:   ext("s2-rabbitmq-jobs", autoscalingv2.ValueMetricType, "100.5"),
			wantTarget: "100.500",
			check: cfg(func(t *testing.T, c *RabbitMQConfig) {
				activation(t, c, 10.5)
				if c.Mode != RabbitMQModeQueueLength || c.Value != 100.5 {
					t.Errorf("config %+v", c)
				}
			}),
		},
		"deprecated queueLength": {
			trigger:      trig("rabbitmq", 0, md("queueLength", "7")),
			wantSpec:     ext("s0-rabbitmq-jobs", autoscalingv2.AverageValueMetricType, "7"),
			wantWarnings: []string{"queueLength is deprecated"},
			check: cfg(func(t *testing.T, c *RabbitMQConfig) {
				if c.Mode != RabbitMQModeQueueLength || c.Value != 7 {
					t.Errorf("config %+v", c)
				}
			}),
		},
		"queueLength 0 is the default": {
			trigger:  trig("rabbitmq", 0, md("queueLength", "0")),
			wantSpec: ext("s0-rabbitmq-jobs", autoscalingv2.AverageValueMetricType, "20"),
		},
		"mode Unknown is unset": {
			trigger:  trig("rabbitmq", 0, md("mode", "Unknown")),
			wantSpec: ext("s0-rabbitmq-jobs", autoscalingv2.AverageValueMetricType, "20"),
		},
		"metric name: QueryEscape then normalize": {
			trigger:  trig("rabbitmq", 1, md("queueName", "orders/high prio.v1:x")),
			wantSpec: ext("s1-rabbitmq-orders-2Fhigh+prio-v1-3Ax", autoscalingv2.AverageValueMetricType, "20"),
		},
		"http by scheme, MessageRate, every HTTP key": {
			trigger: withAuth(trig("rabbitmq", 0, httpMD("mode", "MessageRate", "value", "0.5", "useRegex", "true", "operation", "max",
				"pageSize", "10", "excludeUnacknowledged", "true", "timeout", "1500", "unsafeSsl", "true", "vhostName", "other")),
				map[string]string{"username": "u", "password": "p", "tls": "enable", "ca": "CA", "cert": "C", "key": "K"}),
			wantSpec:   ext("s0-rabbitmq-jobs", autoscalingv2.AverageValueMetricType, "500m"),
			wantTarget: "500m",
			noWarnings: true,
			check: cfg(func(t *testing.T, c *RabbitMQConfig) {
				if c.Protocol != RabbitMQProtocolHTTP || c.Mode != RabbitMQModeMessageRate || c.Value != 0.5 || !c.UseRegex ||
					c.Operation != "max" || c.PageSize != 10 || !c.ExcludeUnacknowledged || c.Timeout != 1500*time.Millisecond ||
					!c.UnsafeSSL || c.VhostName != "other" || c.Username != "u" || string(c.Password) != "p" || !c.EnableTLS ||
					string(c.CA) != "CA" || string(c.Cert) != "C" || string(c.Key) != "K" {
					t.Errorf("config %+v", c)
				}
			}),
		},
		"https and a duration timeout": {
			trigger: trig("rabbitmq", 0, md("host", "https://rabbit:443/", "timeout", "2s")),
			check: cfg(func(t *testing.T, c *RabbitMQConfig) {
				if c.Protocol != RabbitMQProtocolHTTP || c.Timeout != 2*time.Second {
					t.Errorf("config %+v", c)
				}
			}),
		},
		"amqps by scheme": {
			trigger: trig("rabbitmq", 0, md("host", "amqps://rabbit:5671")),
			check: cfg(func(t *testing.T, c *RabbitMQConfig) {
				if c.Protocol != RabbitMQProtocolAMQP {
					t.Errorf("protocol %q", c.Protocol)
				}
			}),
		},
		"explicit protocol from the TriggerAuthentication": {
			trigger: withAuth(trig("rabbitmq", 0, md("host", "")), map[string]string{"host": "http://r:15672/", "protocol": "http", "vhostName": "v"}),
			check: cfg(func(t *testing.T, c *RabbitMQConfig) {
				if c.Protocol != RabbitMQProtocolHTTP || c.VhostName != "v" || string(c.Host) != "http://r:15672/" {
					t.Errorf("config %+v", c)
				}
			}),
			noWarnings: true,
		},
		"host from the environment": {
			trigger: trig("rabbitmq", 0, md("host", "amqp://10.0.0.1:5672/", "hostFromEnv", "RABBIT_HOST",
				"usernameFromEnv", "RU", "username", "envuser", "passwordFromEnv", "RP", "password", "envpw")),
			noWarnings: true,
			check: cfg(func(t *testing.T, c *RabbitMQConfig) {
				if string(c.Host) != "amqp://10.0.0.1:5672/" || c.Username != "envuser" || string(c.Password) != "envpw" {
					t.Errorf("config %+v", c)
				}
			}),
		},
		"every HTTP-only mode": {
			trigger: trig("rabbitmq", 0, httpMD("mode", "ExpectedQueueConsumptionTime", "value", "30")),
			check: cfg(func(t *testing.T, c *RabbitMQConfig) {
				if c.Mode != RabbitMQModeExpectedQueueConsumptionTime {
					t.Errorf("mode %q", c.Mode)
				}
			}),
		},
		"operation without useRegex warns": {
			trigger:      trig("rabbitmq", 0, httpMD("operation", "median")),
			wantWarnings: []string{"operation is ignored without useRegex"},
		},
		"timeout ignored with AMQP and the default mode": {
			trigger:      trig("rabbitmq", 0, md("timeout", "100")),
			wantWarnings: []string{"timeout is ignored with the amqp protocol"},
		},
		"literal username in metadata is ignored": {
			trigger:      withAuth(trig("rabbitmq", 0, md("username", "u")), map[string]string{"username": "a", "password": "b"}),
			wantWarnings: []string{`metadata key "username" is ignored`},
		},
		"unknown key": {
			trigger:      trig("rabbitmq", 0, md("queuename", "x")),
			wantWarnings: []string{`unknown metadata key "queuename" is ignored`},
		},

		"host missing": {
			trigger: trig("rabbitmq", 0, md("host", "")),
			wantErr: "trigger 0 (rabbitmq): host is required",
		},
		"queueName missing": {
			trigger: trig("rabbitmq", 0, md("queueName", "")),
			wantErr: "queueName is required",
		},
		"host not a URL": {
			trigger: trig("rabbitmq", 0, md("host", "rabbit.shop:5672")),
			wantErr: "host is not a URL",
		},
		"unknown scheme": {
			trigger: trig("rabbitmq", 0, md("host", "tcp://rabbit:5672")),
			wantErr: "host has an unknown URL scheme: protocol auto needs amqp, amqps, http or https",
		},
		"scheme does not match the protocol": {
			trigger: trig("rabbitmq", 0, md("protocol", "http")),
			wantErr: "host must be an http:// or https:// URL for protocol http",
		},
		"bad protocol": {
			trigger: trig("rabbitmq", 0, md("protocol", "stomp")),
			wantErr: `protocol "stomp" must be one of auto, amqp, http`,
		},
		"MessageRate over AMQP": {
			trigger: trig("rabbitmq", 0, md("mode", "MessageRate", "value", "5")),
			wantErr: "mode MessageRate needs the http protocol",
		},
		"useRegex over AMQP": {
			trigger: trig("rabbitmq", 0, md("useRegex", "true")),
			wantErr: "useRegex needs the http protocol",
		},
		"excludeUnacknowledged over AMQP": {
			trigger: trig("rabbitmq", 0, md("excludeUnacknowledged", "true")),
			wantErr: "excludeUnacknowledged needs the http protocol",
		},
		"timeout with AMQP and a mode": {
			trigger: trig("rabbitmq", 0, md("mode", "QueueLength", "value", "5", "timeout", "1000")),
			wantErr: "timeout is supported only with the http protocol",
		},
		"queueLength with mode": {
			trigger: trig("rabbitmq", 0, md("queueLength", "5", "mode", "QueueLength")),
			wantErr: "queueLength is deprecated and cannot be combined with mode or value",
		},
		"queueLength with value": {
			trigger: trig("rabbitmq", 0, md("queueLength", "5", "value", "5")),
			wantErr: "queueLength is deprecated and cannot be combined",
		},
		"value without mode": {
			trigger: trig("rabbitmq", 0, md("value", "5")),
			wantErr: "mode is required with value",
		},
		"mode without value": {
			trigger: trig("rabbitmq", 0, md("mode", "QueueLength")),
			wantErr: "value is required with mode",
		},
		"unknown mode": {
			trigger: trig("rabbitmq", 0, httpMD("mode", "Backlog", "value", "5")),
			wantErr: `mode "Backlog" must be one of QueueLength, MessageRate`,
		},
		"value not a number": {
			trigger: trig("rabbitmq", 0, md("mode", "QueueLength", "value", "lots")),
			wantErr: `value "lots" is not a number`,
		},
		"activationValue not a number": {
			trigger: trig("rabbitmq", 0, md("activationValue", "x")),
			wantErr: `activationValue "x" is not a number`,
		},
		"queueLength not a number": {
			trigger: trig("rabbitmq", 0, md("queueLength", "x")),
			wantErr: `queueLength "x" is not a number`,
		},
		"bad operation with useRegex": {
			trigger: trig("rabbitmq", 0, httpMD("useRegex", "true", "operation", "median")),
			wantErr: `operation "median" must be one of sum, avg, max`,
		},
		"pageSize 0": {
			trigger: trig("rabbitmq", 0, httpMD("useRegex", "true", "pageSize", "0")),
			wantErr: "pageSize must be 1 or greater",
		},
		"pageSize not an integer": {
			trigger: trig("rabbitmq", 0, httpMD("pageSize", "1.5")),
			wantErr: `pageSize "1.5" is not an integer`,
		},
		"useRegex not a bool": {
			trigger: trig("rabbitmq", 0, httpMD("useRegex", "yes")),
			wantErr: `useRegex "yes" must be true or false`,
		},
		"bad timeout": {
			trigger: trig("rabbitmq", 0, httpMD("timeout", "soon")),
			wantErr: `timeout "soon" must be a duration (such as 5s) or a number of milliseconds`,
		},
		"negative timeout": {
			trigger: trig("rabbitmq", 0, httpMD("timeout", "-5")),
			wantErr: "timeout must not be negative",
		},
		"bad tls": {
			trigger: withAuth(trig("rabbitmq", 0, md()), map[string]string{"tls": "on"}),
			wantErr: "tls (from the TriggerAuthentication) must be one of enable, disable",
		},
		"cert without key": {
			trigger: withAuth(trig("rabbitmq", 0, md()), map[string]string{"tls": "enable", "cert": "C"}),
			wantErr: "cert and key (from the TriggerAuthentication) must be given together",
		},
		"username without password": {
			trigger: withAuth(trig("rabbitmq", 0, md()), map[string]string{"username": "u"}),
			wantErr: "username and password must be given together",
		},
		"keyPassword refused": {
			trigger: withAuth(trig("rabbitmq", 0, md()), map[string]string{"tls": "enable", "cert": "C", "key": "K", "keyPassword": "kp"}),
			wantErr: "keyPassword (an encrypted client key) is not supported by ebb",
		},
		"OAuth2 refused": {
			trigger: withAuth(trig("rabbitmq", 0, httpMD()), map[string]string{"oauthTokenURI": "https://idp/token", "clientID": "c", "clientSecret": "s"}),
			wantErr: "OAuth2 authentication (oauthTokenURI, clientID, clientSecret) is not supported by ebb",
		},
		"workload identity refused": {
			trigger: withAuth(trig("rabbitmq", 0, httpMD()), map[string]string{"workloadIdentityResource": "api://x"}),
			wantErr: "Azure Workload Identity (workloadIdentityResource) is not supported by ebb",
		},
		"utilization refused": {
			trigger: withMetricType(trig("rabbitmq", 0, md()), autoscalingv2.UtilizationMetricType),
			wantErr: "metricType Utilization is supported only by cpu and memory triggers",
		},
	})
}

// The host URL usually carries a password: no error or warning shows it,
// whatever is wrong with it.
func TestParseRabbitMQHostNeverShown(t *testing.T) {
	for _, host := range []string{
		"amqp://u:" + sentinel + "@rabbit:5672/",
		"tcp://u:" + sentinel + "@rabbit:5672/",
		"u:" + sentinel + "@rabbit:5672",
		"http://u:" + sentinel + "@rabbit:%zz/",
		sentinel,
	} {
		for _, protocol := range []string{"", "amqp", "http", "bad"} {
			for _, inAuth := range []bool{false, true} {
				m := map[string]string{"queueName": "q", "protocol": protocol, "mode": "MessageRate", "value": "x"}
				a := map[string]string{}
				if inAuth {
					a["host"] = host
				} else {
					m["host"] = host
				}
				_, warnings, err := Parse(withAuth(trig("rabbitmq", 0, m), a))
				if err == nil {
					t.Fatalf("host %q protocol %q: expected an error", host, protocol)
				}
				if strings.Contains(err.Error(), "S3CR3T") {
					t.Errorf("error shows the host: %v", err)
				}
				for _, w := range warnings {
					if strings.Contains(w, "S3CR3T") {
						t.Errorf("warning shows the host: %s", w)
					}
				}
			}
		}
	}
}
