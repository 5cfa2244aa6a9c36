package scalers

import (
	"reflect"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

func etcdMeta(kv ...string) map[string]string {
	m := map[string]string{"endpoints": "etcd-0:2379, etcd-1:2379", "watchKey": "/jobs/pending", "value": "5"}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(m, kv[i])
			continue
		}
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestParseEtcd(t *testing.T) {
	etcdCfg := func(c Config) *EtcdConfig { return c.(*EtcdConfig) }
	runParseCases(t, map[string]parseCase{
		"defaults": {
			trigger:    trig("etcd", 0, etcdMeta()),
			wantSpec:   ext("s0-etcd--jobs-pending", autoscalingv2.AverageValueMetricType, "5"),
			wantTarget: "5",
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				activation(t, c, 0)
				ec := etcdCfg(c)
				if !reflect.DeepEqual(ec.Endpoints, []string{"etcd-0:2379", "etcd-1:2379"}) || ec.WatchKey != "/jobs/pending" ||
					ec.Value != 5 || ec.WatchProgressNotifyInterval != 600 || ec.EnableTLS || ec.Username != "" || ec.Password != "" {
					t.Errorf("config %+v", ec)
				}
			},
		},
		"every metadata key, Value, index 3": {
			trigger: withMetricType(trig("etcd", 3, etcdMeta("watchKey", "queue.len", "value", "2.5", "activationValue", "1.5",
				"watchProgressNotifyInterval", "30")), autoscalingv2.ValueMetricType),
			wantSpec:   ext("s3-etcd-queue-len", autoscalingv2.ValueMetricType, "2500m"),
			wantTarget: "2.500",
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				activation(t, c, 1.5)
				if ec := etcdCfg(c); ec.WatchProgressNotifyInterval != 30 {
					t.Errorf("config %+v", ec)
				}
			},
		},
		"value 0.75": {
			trigger:    trig("etcd", 0, etcdMeta("value", "0.75")),
			wantSpec:   ext("s0-etcd--jobs-pending", autoscalingv2.AverageValueMetricType, "750m"),
			wantTarget: "750m",
		},
		"authentication": {
			trigger: withAuth(trig("etcd", 0, etcdMeta()), map[string]string{
				"username": "root", "password": "pw", "tls": "enable", "cert": "C", "key": "K", "keyPassword": "KP", "ca": "CA",
			}),
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				ec := etcdCfg(c)
				if ec.Username != "root" || ec.Password != "pw" || !ec.EnableTLS || ec.Cert != "C" || ec.Key != "K" ||
					ec.KeyPassword != "KP" || ec.CA != "CA" {
					t.Errorf("config %+v", ec)
				}
			},
		},
		"tls with a CA only": {
			trigger: withAuth(trig("etcd", 0, etcdMeta()), map[string]string{"tls": "enable", "ca": "CA"}),
			check: func(t *testing.T, c Config) {
				if ec := etcdCfg(c); !ec.EnableTLS || ec.CA != "CA" {
					t.Errorf("config %+v", ec)
				}
			},
		},
		"tls disabled explicitly": {
			trigger: withAuth(trig("etcd", 0, etcdMeta()), map[string]string{"tls": "disable", "cert": "C"}),
			check: func(t *testing.T, c Config) {
				if ec := etcdCfg(c); ec.EnableTLS {
					t.Errorf("config %+v", ec)
				}
			},
		},
		"credentials from the environment": {
			trigger: trig("etcd", 0, etcdMeta("usernameFromEnv", "ETCD_USER", "username", "u", "passwordFromEnv", "ETCD_PW", "password", "p")),
			check: func(t *testing.T, c Config) {
				if ec := etcdCfg(c); ec.Username != "u" || ec.Password != "p" {
					t.Errorf("config %+v", ec)
				}
			},
			noWarnings: true,
		},
		"literal credentials are ignored as KEDA ignores them": {
			trigger:      trig("etcd", 0, etcdMeta("username", "u", "password", "p")),
			wantWarnings: []string{`metadata key "username" is ignored`, `metadata key "password" is ignored`},
			check: func(t *testing.T, c Config) {
				if ec := etcdCfg(c); ec.Username != "" || ec.Password != "" {
					t.Errorf("config %+v", ec)
				}
			},
		},
		"endpoints missing": {
			trigger: trig("etcd", 0, etcdMeta("endpoints", "")),
			wantErr: "trigger 0 (etcd): endpoints is required",
		},
		"watchKey missing": {
			trigger: trig("etcd", 0, etcdMeta("watchKey", "")),
			wantErr: "trigger 0 (etcd): watchKey is required",
		},
		"value missing": {
			trigger: trig("etcd", 0, etcdMeta("value", "")),
			wantErr: "trigger 0 (etcd): value is required",
		},
		"value not a number": {
			trigger: trig("etcd", 0, etcdMeta("value", "five")),
			wantErr: `value "five" is not a number`,
		},
		"activationValue not a number": {
			trigger: trig("etcd", 0, etcdMeta("activationValue", "1,5")),
			wantErr: `activationValue "1,5" is not a number`,
		},
		"value 0 warns": {
			trigger:      trig("etcd", 0, etcdMeta("value", "0")),
			wantWarnings: []string{"trigger 0 (etcd): value must be greater than 0 for the HPA to accept the metric's target"},
			wantSpec:     ext("s0-etcd--jobs-pending", autoscalingv2.AverageValueMetricType, "0"),
		},
		"value 0 as a metric source": {
			trigger:    Trigger{Type: "etcd", Metadata: etcdMeta("value", "0"), AsMetricSource: true},
			noWarnings: true,
		},
		"watchProgressNotifyInterval 0": {
			trigger: trig("etcd", 0, etcdMeta("watchProgressNotifyInterval", "0")),
			wantErr: "watchProgressNotifyInterval must be greater than 0",
		},
		"watchProgressNotifyInterval not an integer": {
			trigger: trig("etcd", 0, etcdMeta("watchProgressNotifyInterval", "1m")),
			wantErr: `watchProgressNotifyInterval "1m" is not an integer`,
		},
		"password without username": {
			trigger: withAuth(trig("etcd", 0, etcdMeta()), map[string]string{"password": "pw"}),
			wantErr: "username must be given with password",
		},
		"username without password": {
			trigger: withAuth(trig("etcd", 0, etcdMeta()), map[string]string{"username": "u"}),
			wantErr: "password must be given with username",
		},
		"bad tls": {
			trigger: withAuth(trig("etcd", 0, etcdMeta()), map[string]string{"tls": "on"}),
			wantErr: "tls (from the TriggerAuthentication) must be one of enable, disable",
		},
		"cert without key": {
			trigger: withAuth(trig("etcd", 0, etcdMeta()), map[string]string{"tls": "enable", "cert": "C"}),
			wantErr: "key (from the TriggerAuthentication) must be given with cert",
		},
		"key without cert": {
			trigger: withAuth(trig("etcd", 0, etcdMeta()), map[string]string{"tls": "enable", "key": "K"}),
			wantErr: "cert (from the TriggerAuthentication) must be given with key",
		},
		"utilization refused": {
			trigger: withMetricType(trig("etcd", 0, etcdMeta()), autoscalingv2.UtilizationMetricType),
			wantErr: "metricType Utilization is supported only by cpu and memory triggers",
		},
		"unknown key": {
			trigger:      trig("etcd", 0, etcdMeta("endpoint", "x:1")),
			wantWarnings: []string{`trigger 0 (etcd): unknown metadata key "endpoint" is ignored`},
		},
	})
}

func TestParseEtcdSecretsNotShown(t *testing.T) {
	_, _, err := Parse(withAuth(trig("etcd", 0, etcdMeta()), map[string]string{"tls": "S3CR3T", "password": "S3CR3T"}))
	if err == nil || strings.Contains(err.Error(), "S3CR3T") {
		t.Fatalf("error %v", err)
	}
}
