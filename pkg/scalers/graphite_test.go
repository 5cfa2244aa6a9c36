package scalers

import (
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

func TestParseGraphite(t *testing.T) {
	base := func(kv ...string) map[string]string {
		m := map[string]string{"serverAddress": "http://graphite.shop:8080", "query": "sumSeries(queue.*.depth)", "queryTime": "-1min"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	runParseCases(t, map[string]parseCase{
		"defaults": {
			trigger:    trig("graphite", 0, base()),
			wantSpec:   ext("s0-graphite", autoscalingv2.AverageValueMetricType, "100"),
			wantTarget: "100",
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				activation(t, c, 0)
				g := c.(*GraphiteConfig)
				if g.ServerAddress != "http://graphite.shop:8080" || g.Query != "sumSeries(queue.*.depth)" || g.QueryTime != "-1min" ||
					g.AuthMode != "" || g.Username != "" || g.Password != "" {
					t.Errorf("config %+v", g)
				}
			},
		},
		"every key, Value, index 4": {
			trigger: withMetricType(withAuth(trig("graphite", 4, base("threshold", "0.75", "activationThreshold", "2.5", "authMode", "basic")),
				map[string]string{"username": "u", "password": "p"}), autoscalingv2.ValueMetricType),
			wantSpec:   ext("s4-graphite", autoscalingv2.ValueMetricType, "750m"),
			wantTarget: "750m",
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				activation(t, c, 2.5)
				g := c.(*GraphiteConfig)
				if g.AuthMode != "basic" || g.Username != "u" || string(g.Password) != "p" {
					t.Errorf("config %+v", g)
				}
			},
		},
		"float threshold": {
			trigger:    trig("graphite", 0, base("threshold", "12.5")),
			wantSpec:   ext("s0-graphite", autoscalingv2.AverageValueMetricType, "12.5"),
			wantTarget: "12.500",
		},
		"credentials without authMode": {
			trigger: withAuth(trig("graphite", 0, base()), map[string]string{"username": "u", "password": "p"}),
			check: func(t *testing.T, c Config) {
				if g := c.(*GraphiteConfig); g.Username != "u" || string(g.Password) != "p" {
					t.Errorf("config %+v", g)
				}
			},
		},
		"serverAddress missing": {
			trigger: trig("graphite", 0, map[string]string{"query": "q", "queryTime": "-1min"}),
			wantErr: "trigger 0 (graphite): serverAddress is required",
		},
		"query missing": {
			trigger: trig("graphite", 0, map[string]string{"serverAddress": "http://g", "queryTime": "-1min"}),
			wantErr: "trigger 0 (graphite): query is required",
		},
		"queryTime missing": {
			trigger: trig("graphite", 0, map[string]string{"serverAddress": "http://g", "query": "q"}),
			wantErr: "trigger 0 (graphite): queryTime is required",
		},
		"threshold not a number": {
			trigger: trig("graphite", 0, base("threshold", "lots")),
			wantErr: `threshold "lots" is not a number`,
		},
		"activationThreshold not a number": {
			trigger: trig("graphite", 0, base("activationThreshold", "1,5")),
			wantErr: `activationThreshold "1,5" is not a number`,
		},
		"authMode not basic": {
			trigger: trig("graphite", 0, base("authMode", "bearer")),
			wantErr: `authMode "bearer" must be one of basic`,
		},
		"basic without username": {
			trigger: withAuth(trig("graphite", 0, base("authMode", "basic")), map[string]string{"password": "p"}),
			wantErr: "username (from the TriggerAuthentication) is required when authMode is basic",
		},
		"username in the metadata is not read": {
			trigger:      trig("graphite", 0, base("authMode", "basic", "username", "u")),
			wantErr:      "username (from the TriggerAuthentication) is required",
			wantWarnings: []string{`unknown metadata key "username" is ignored`},
		},
		"utilization refused": {
			trigger: withMetricType(trig("graphite", 0, base()), autoscalingv2.UtilizationMetricType),
			wantErr: "metricType Utilization is supported only by cpu and memory triggers",
		},
	})
}
