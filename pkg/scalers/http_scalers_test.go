package scalers

import (
	"reflect"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

func promMeta(kv ...string) map[string]string {
	m := map[string]string{
		"serverAddress": "http://prometheus.monitoring:9090",
		"query":         `sum(rate(http_requests_total{app="orders"}[2m]))`,
		"threshold":     "100",
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

func TestParsePrometheus(t *testing.T) {
	runParseCases(t, map[string]parseCase{
		"realistic": {
			trigger:    trig("prometheus", 0, promMeta("activationThreshold", "5.5")),
			wantSpec:   ext("s0-prometheus", autoscalingv2.AverageValueMetricType, "100"),
			wantTarget: "100",
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				activation(t, c, 5.5)
				pc := c.(*PrometheusConfig)
				if !pc.IgnoreNullValues || pc.UnsafeSSL || pc.Namespace != "" || pc.TimeoutMilliseconds != 0 {
					t.Errorf("defaults: %+v", pc)
				}
			},
		},
		"float threshold, index 2": {
			trigger:    trig("prometheus", 2, promMeta("threshold", "0.75")),
			wantSpec:   ext("s2-prometheus", autoscalingv2.AverageValueMetricType, "750m"),
			wantTarget: "750m",
		},
		"threshold 12.5, Value": {
			trigger:    withMetricType(trig("prometheus", 0, promMeta("threshold", "12.5")), autoscalingv2.ValueMetricType),
			wantSpec:   ext("s0-prometheus", autoscalingv2.ValueMetricType, "12500m"),
			wantTarget: "12.500",
		},
		"trigger name does not change the metric": {
			trigger:  Trigger{Index: 0, Type: "prometheus", Name: "rps", Metadata: promMeta()},
			wantSpec: ext("s0-prometheus", autoscalingv2.AverageValueMetricType, "100"),
		},
		"maps and flags": {
			trigger: trig("prometheus", 0, promMeta("namespace", "team-a", "customHeaders", "X-Scope-OrgID=tenant1, X-Other=v",
				"queryParameters", "dedup=true", "ignoreNullValues", "false", "unsafeSsl", "true", "timeout", "3000")),
			check: func(t *testing.T, c Config) {
				pc := c.(*PrometheusConfig)
				if !reflect.DeepEqual(pc.CustomHeaders, map[string]string{"X-Scope-OrgID": "tenant1", "X-Other": "v"}) ||
					!reflect.DeepEqual(pc.QueryParameters, map[string]string{"dedup": "true"}) ||
					pc.IgnoreNullValues || !pc.UnsafeSSL || pc.TimeoutMilliseconds != 3000 || pc.Namespace != "team-a" {
					t.Errorf("config %+v", pc)
				}
			},
		},
		"bearer auth": {
			trigger: withAuth(trig("prometheus", 0, promMeta("authModes", "bearer")), map[string]string{"bearerToken": "tok"}),
			check: func(t *testing.T, c Config) {
				a := c.(*PrometheusConfig).Auth
				if !a.Enabled(AuthModeBearer) || string(a.BearerToken) != "tok" {
					t.Errorf("auth %+v", a)
				}
			},
		},
		"tls and basic auth from the TriggerAuthentication": {
			trigger: withAuth(trig("prometheus", 0, promMeta()), map[string]string{"authModes": "tls,basic", "username": "u", "password": "p", "cert": "C", "key": "K", "ca": "CA"}),
			check: func(t *testing.T, c Config) {
				a := c.(*PrometheusConfig).Auth
				if !a.Enabled(AuthModeTLS) || !a.Enabled(AuthModeBasic) || a.Username != "u" || string(a.Password) != "p" {
					t.Errorf("auth %+v", a)
				}
			},
		},
		"bearer without token": {
			trigger: trig("prometheus", 0, promMeta("authModes", "bearer")),
			wantErr: "trigger 0 (prometheus): authModes bearer needs bearerToken",
		},
		"exclusive auth modes": {
			trigger: withAuth(trig("prometheus", 0, promMeta("authModes", "bearer,basic")), map[string]string{"bearerToken": "t", "username": "u"}),
			wantErr: "authModes may contain only one of bearer, basic, oauth",
		},
		"unknown auth mode": {
			trigger: trig("prometheus", 0, promMeta("authModes", "kerberos")),
			wantErr: `authModes "kerberos" must be one of apiKey, basic, tls, bearer, custom, oauth`,
		},
		"serverAddress missing": {
			trigger: trig("prometheus", 0, promMeta("serverAddress", "")),
			wantErr: "trigger 0 (prometheus): serverAddress is required",
		},
		"query missing": {
			trigger: trig("prometheus", 1, promMeta("query", "")),
			wantErr: "trigger 1 (prometheus): query is required",
		},
		"threshold missing": {
			trigger: trig("prometheus", 0, promMeta("threshold", "")),
			wantErr: "trigger 0 (prometheus): threshold is required",
		},
		"threshold not a number": {
			trigger: trig("prometheus", 0, promMeta("threshold", "ten")),
			wantErr: `trigger 0 (prometheus): threshold "ten" is not a number`,
		},
		"threshold with leading dot, as KEDA refuses": {
			trigger: trig("prometheus", 0, promMeta("threshold", ".5")),
			wantErr: `threshold ".5" is not a number`,
		},
		"activationThreshold not a number": {
			trigger: trig("prometheus", 0, promMeta("activationThreshold", "1,5")),
			wantErr: `activationThreshold "1,5" is not a number`,
		},
		"ignoreNullValues not a bool": {
			trigger: trig("prometheus", 0, promMeta("ignoreNullValues", "yes")),
			wantErr: `ignoreNullValues "yes" must be true or false`,
		},
		"bad customHeaders": {
			trigger: trig("prometheus", 0, promMeta("customHeaders", "X-A")),
			wantErr: "customHeaders must be a comma-separated list of key=value pairs",
		},
		"negative timeout": {
			trigger: trig("prometheus", 0, promMeta("timeout", "-1")),
			wantErr: "timeout must not be negative",
		},
		"utilization refused": {
			trigger: withMetricType(trig("prometheus", 0, promMeta()), autoscalingv2.UtilizationMetricType),
			wantErr: "trigger 0 (prometheus): metricType Utilization is supported only by cpu and memory triggers",
		},
		"unknown metricType refused": {
			trigger: withMetricType(trig("prometheus", 0, promMeta()), "Average"),
			wantErr: `metricType "Average" is not supported`,
		},
		"several errors": {
			trigger: trig("prometheus", 0, map[string]string{"threshold": "x"}),
			wantErr: "serverAddress is required",
		},
		"unknown key warns": {
			trigger:      trig("prometheus", 0, promMeta("metricName", "http_requests", "treshold", "5")),
			wantWarnings: []string{`unknown metadata key "metricName" is ignored`, `unknown metadata key "treshold" is ignored`},
		},
		"FromEnv key of a metadata-only setting warns": {
			trigger:      trig("prometheus", 0, promMeta("queryFromEnv", "Q")),
			wantWarnings: []string{`unknown metadata key "queryFromEnv"`},
		},
	})
}

func apiMeta(kv ...string) map[string]string {
	m := map[string]string{
		"url":           "http://orders.shop.svc:8080/api/v1/stats",
		"valueLocation": "components.worker.tasks",
		"targetValue":   "8",
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

func TestParseMetricsAPI(t *testing.T) {
	runParseCases(t, map[string]parseCase{
		"realistic": {
			trigger:    trig("metrics-api", 0, apiMeta("activationTargetValue", "1")),
			wantSpec:   ext("s0-metric-api-components-worker-tasks", autoscalingv2.AverageValueMetricType, "8"),
			wantTarget: "8",
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				activation(t, c, 1)
				mc := c.(*MetricsAPIConfig)
				if mc.Format != "json" || mc.AggregationType != "average" || mc.UnsafeSSL || mc.Auth.Method != "header" {
					t.Errorf("defaults: %+v", mc)
				}
			},
		},
		"float target, Value": {
			trigger:    withMetricType(trig("metrics-api", 1, apiMeta("targetValue", "0.75", "valueLocation", "data.queue(0)")), autoscalingv2.ValueMetricType),
			wantSpec:   ext("s1-metric-api-data-queue-0-", autoscalingv2.ValueMetricType, "750m"),
			wantTarget: "750m",
		},
		"prometheus format": {
			trigger:  trig("metrics-api", 0, apiMeta("format", "prometheus", "valueLocation", `queue_depth{queue="a"}`)),
			wantSpec: ext(`s0-metric-api-queue_depth{queue="a"}`, autoscalingv2.AverageValueMetricType, "8"),
		},
		"api key in query": {
			trigger: withAuth(trig("metrics-api", 0, apiMeta("authMode", "apiKey", "method", "query", "keyParamName", "key")), map[string]string{"apiKey": "k"}),
			check: func(t *testing.T, c Config) {
				a := c.(*MetricsAPIConfig).Auth
				if !a.Enabled(AuthModeAPIKey) || a.Method != "query" || a.KeyParamName != "key" || string(a.APIKey) != "k" {
					t.Errorf("auth %+v", a)
				}
			},
		},
		"target optional as a metric source": {
			trigger: Trigger{Index: 0, Type: "metrics-api", Metadata: apiMeta("targetValue", ""), AsMetricSource: true},
		},
		"target missing": {
			trigger: trig("metrics-api", 0, apiMeta("targetValue", "")),
			wantErr: "trigger 0 (metrics-api): targetValue is required",
		},
		"target zero": {
			trigger: trig("metrics-api", 0, apiMeta("targetValue", "0")),
			wantErr: "targetValue is required and must not be 0",
		},
		"target not a number": {
			trigger: trig("metrics-api", 0, apiMeta("targetValue", "8x")),
			wantErr: `trigger 0 (metrics-api): targetValue "8x" is not a number`,
		},
		"url missing": {
			trigger: trig("metrics-api", 0, apiMeta("url", "")),
			wantErr: "trigger 0 (metrics-api): url is required",
		},
		"valueLocation missing": {
			trigger: trig("metrics-api", 0, apiMeta("valueLocation", "")),
			wantErr: "trigger 0 (metrics-api): valueLocation is required",
		},
		"bad format": {
			trigger: trig("metrics-api", 0, apiMeta("format", "csv")),
			wantErr: `format "csv" must be one of prometheus, json, xml, yaml`,
		},
		"bad aggregationType": {
			trigger: trig("metrics-api", 0, apiMeta("aggregationType", "median")),
			wantErr: `aggregationType "median" must be one of average, sum, max, min`,
		},
		"bad method": {
			trigger: trig("metrics-api", 0, apiMeta("method", "body")),
			wantErr: `method "body" must be one of header, query`,
		},
		"api key mode without key": {
			trigger: trig("metrics-api", 0, apiMeta("authMode", "apiKey")),
			wantErr: "authModes apiKey needs apiKey",
		},
		"utilization refused": {
			trigger: withMetricType(trig("metrics-api", 0, apiMeta()), autoscalingv2.UtilizationMetricType),
			wantErr: "metricType Utilization is supported only by cpu and memory triggers",
		},
		"unknown key": {
			trigger:      trig("metrics-api", 0, apiMeta("valuelocation", "x")),
			wantWarnings: []string{`unknown metadata key "valuelocation"`},
		},
	})
}
