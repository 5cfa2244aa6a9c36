package scalers

import (
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

func natsMeta(kv ...string) map[string]string {
	m := map[string]string{
		"natsServerMonitoringEndpoint": "nats.nats.svc:8222",
		"account":                      "$G",
		"stream":                       "orders",
		"consumer":                     "workers",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(m, kv[i])
			continue
		}
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestParseNATSJetStream(t *testing.T) {
	natsCfg := func(t *testing.T, c Config) *NATSJetStreamConfig {
		t.Helper()
		return c.(*NATSJetStreamConfig)
	}
	runParseCases(t, map[string]parseCase{
		"defaults": {
			trigger:    trig("nats-jetstream", 0, natsMeta()),
			wantSpec:   ext("s0-nats-jetstream-orders", autoscalingv2.AverageValueMetricType, "10"),
			wantTarget: "10",
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				activation(t, c, 0)
				nc := natsCfg(t, c)
				if nc.LagThreshold != 10 || nc.UseHTTPS || nc.Account != "$G" || nc.AccountID != "$G" ||
					nc.Stream != "orders" || nc.Consumer != "workers" || nc.MonitoringEndpoint != "nats.nats.svc:8222" {
					t.Errorf("config %+v", nc)
				}
				if got, want := nc.MonitoringURL(), "http://nats.nats.svc:8222/jsz?acc=%24G&config=true&consumers=true"; got != want {
					t.Errorf("MonitoringURL() = %q, want %q", got, want)
				}
			},
		},
		"every key, Value, index 2": {
			trigger: withMetricType(trig("nats-jetstream", 2, natsMeta("lagThreshold", "25", "activationLagThreshold", "3",
				"useHttps", "true", "accountID", "ACCID", "stream", "events.v1")), autoscalingv2.ValueMetricType),
			wantSpec:   ext("s2-nats-jetstream-events-v1", autoscalingv2.ValueMetricType, "25"),
			wantTarget: "25",
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				activation(t, c, 3)
				nc := natsCfg(t, c)
				if !nc.UseHTTPS || nc.AccountID != "ACCID" || nc.Account != "$G" {
					t.Errorf("config %+v", nc)
				}
				if got, want := nc.MonitoringURL(), "https://nats.nats.svc:8222/jsz?acc=ACCID&config=true&consumers=true"; got != want {
					t.Errorf("MonitoringURL() = %q, want %q", got, want)
				}
			},
		},
		"accountID alone": {
			trigger: trig("nats-jetstream", 0, natsMeta("account", "", "accountID", "AB12")),
			check: func(t *testing.T, c Config) {
				if nc := natsCfg(t, c); nc.Account != "" || nc.AccountID != "AB12" {
					t.Errorf("config %+v", nc)
				}
			},
		},
		"endpoint and account from the TriggerAuthentication win": {
			trigger: withAuth(trig("nats-jetstream", 0, natsMeta()),
				map[string]string{"natsServerMonitoringEndpoint": "nats-auth:8222", "account": "shop"}),
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				nc := natsCfg(t, c)
				if nc.MonitoringEndpoint != "nats-auth:8222" || nc.Account != "shop" || nc.AccountID != "shop" {
					t.Errorf("config %+v", nc)
				}
			},
		},
		"endpoint only in the TriggerAuthentication": {
			trigger:    withAuth(trig("nats-jetstream", 1, natsMeta("natsServerMonitoringEndpoint", "")), map[string]string{"natsServerMonitoringEndpoint": "n:8222"}),
			wantSpec:   ext("s1-nats-jetstream-orders", autoscalingv2.AverageValueMetricType, "10"),
			noWarnings: true,
		},
		"endpoint with a scheme warns": {
			trigger:      trig("nats-jetstream", 0, natsMeta("natsServerMonitoringEndpoint", "http://n:8222")),
			wantWarnings: []string{"natsServerMonitoringEndpoint should be host:port, without a scheme"},
		},
		"lagThreshold 0 warns": {
			trigger:      trig("nats-jetstream", 0, natsMeta("lagThreshold", "-1")),
			wantWarnings: []string{"trigger 0 (nats-jetstream): lagThreshold must be greater than 0"},
			wantSpec:     ext("s0-nats-jetstream-orders", autoscalingv2.AverageValueMetricType, "-1"),
		},
		"lagThreshold 0 as a metric source": {
			trigger:    Trigger{Type: "nats-jetstream", Metadata: natsMeta("lagThreshold", "0"), AsMetricSource: true},
			noWarnings: true,
		},
		"endpoint missing": {
			trigger: trig("nats-jetstream", 0, natsMeta("natsServerMonitoringEndpoint", "")),
			wantErr: "trigger 0 (nats-jetstream): natsServerMonitoringEndpoint is required",
		},
		"account missing": {
			trigger: trig("nats-jetstream", 0, natsMeta("account", "")),
			wantErr: "trigger 0 (nats-jetstream): account or accountID is required",
		},
		"stream missing": {
			trigger: trig("nats-jetstream", 0, natsMeta("stream", "")),
			wantErr: "trigger 0 (nats-jetstream): stream is required",
		},
		"consumer missing": {
			trigger: trig("nats-jetstream", 0, natsMeta("consumer", "")),
			wantErr: "trigger 0 (nats-jetstream): consumer is required",
		},
		"lagThreshold not an integer": {
			trigger: trig("nats-jetstream", 0, natsMeta("lagThreshold", "1.5")),
			wantErr: `lagThreshold "1.5" is not an integer`,
		},
		"activationLagThreshold not an integer": {
			trigger: trig("nats-jetstream", 0, natsMeta("activationLagThreshold", "x")),
			wantErr: `activationLagThreshold "x" is not an integer`,
		},
		"useHttps not a bool": {
			trigger: trig("nats-jetstream", 0, natsMeta("useHttps", "yes")),
			wantErr: `useHttps "yes" must be true or false`,
		},
		"utilization refused": {
			trigger: withMetricType(trig("nats-jetstream", 0, natsMeta()), autoscalingv2.UtilizationMetricType),
			wantErr: "metricType Utilization is supported only by cpu and memory triggers",
		},
		"unknown key": {
			trigger:      trig("nats-jetstream", 0, natsMeta("Stream", "x")),
			wantWarnings: []string{`trigger 0 (nats-jetstream): unknown metadata key "Stream" is ignored`},
		},
	})
}
