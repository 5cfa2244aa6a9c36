package scalers

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

func TestParsePostgreSQL(t *testing.T) {
	separate := func(kv ...string) map[string]string {
		m := map[string]string{"host": "pg.shop", "port": "5432", "userName": "keda", "dbName": "orders", "sslmode": "disable",
			"query": "SELECT count(*) FROM jobs WHERE state='waiting'", "targetQueryValue": "2.5"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
				continue
			}
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	runParseCases(t, map[string]parseCase{
		"separate settings": {
			trigger:    withAuth(trig("postgresql", 0, separate("activationTargetQueryValue", "1")), map[string]string{"password": "pa ss"}),
			wantSpec:   ext("s0-postgresql", autoscalingv2.AverageValueMetricType, "2500m"),
			wantTarget: "2.500",
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				activation(t, c, 1)
				pc := c.(*PostgreSQLConfig)
				want := `host=pg.shop port=5432 user=keda dbname=orders sslmode=disable password='pa ss'`
				if string(pc.Connection) != want {
					t.Errorf("connection %q, want %q", string(pc.Connection), want)
				}
			},
		},
		"connection from the TriggerAuthentication": {
			trigger:  withAuth(trig("postgresql", 4, map[string]string{"query": "SELECT 1", "targetQueryValue": "10"}), map[string]string{"connection": "postgres://u:p@h/db"}),
			wantSpec: ext("s4-postgresql", autoscalingv2.AverageValueMetricType, "10"),
		},
		"connection from the environment": {
			trigger:  trig("postgresql", 0, map[string]string{"query": "SELECT 1", "targetQueryValue": "0.75", "connectionFromEnv": "PG", "connection": "postgres://h/db"}),
			wantSpec: ext("s0-postgresql", autoscalingv2.AverageValueMetricType, "750m"), wantTarget: "750m", noWarnings: true,
		},
		"host from the TriggerAuthentication wins": {
			trigger: withAuth(trig("postgresql", 0, separate()), map[string]string{"host": "pg.auth"}),
			check: func(t *testing.T, c Config) {
				if h := c.(*PostgreSQLConfig).Host; h != "pg.auth" {
					t.Errorf("host %q", h)
				}
			},
		},
		"literal password is ignored as KEDA ignores it": {
			trigger:      trig("postgresql", 0, separate("password", "pw")),
			wantWarnings: []string{`metadata key "password" is ignored`},
			check: func(t *testing.T, c Config) {
				if p := c.(*PostgreSQLConfig).Password; p != "" {
					t.Errorf("password used")
				}
			},
		},
		"query missing": {
			trigger: trig("postgresql", 0, separate("query", "")),
			wantErr: "trigger 0 (postgresql): query is required",
		},
		"host missing": {
			trigger: trig("postgresql", 0, separate("host", "")),
			wantErr: "trigger 0 (postgresql): host is required when no connection is given",
		},
		"sslmode missing": {
			trigger: trig("postgresql", 0, separate("sslmode", "")),
			wantErr: "sslmode is required when no connection is given",
		},
		"target missing": {
			trigger: trig("postgresql", 0, separate("targetQueryValue", "")),
			wantErr: "trigger 0 (postgresql): targetQueryValue is required",
		},
		"target optional as a metric source": {
			trigger: Trigger{Type: "postgresql", Metadata: separate("targetQueryValue", ""), AsMetricSource: true},
		},
		"target not a number": {
			trigger: trig("postgresql", 0, separate("targetQueryValue", "2,5")),
			wantErr: `targetQueryValue "2,5" is not a number`,
		},
		"utilization refused": {
			trigger: withMetricType(trig("postgresql", 0, separate()), autoscalingv2.UtilizationMetricType),
			wantErr: "metricType Utilization is supported only by cpu and memory triggers",
		},
		"unknown key": {
			trigger:      trig("postgresql", 0, separate("connectionString", "x")),
			wantWarnings: []string{`unknown metadata key "connectionString"`},
		},
	})
}

func TestParseKubernetesWorkload(t *testing.T) {
	runParseCases(t, map[string]parseCase{
		"realistic": {
			trigger:    trig("kubernetes-workload", 1, map[string]string{"podSelector": "app=backend, tier in (a,b)", "value": "0.5", "activationValue": "2"}),
			wantSpec:   ext("s1-workload-shop", autoscalingv2.AverageValueMetricType, "500m"),
			wantTarget: "500m",
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				activation(t, c, 2)
				kc := c.(*KubernetesWorkloadConfig)
				if kc.PodNamespace != "shop" || kc.PodSelector.String() != "app=backend,tier in (a,b)" {
					t.Errorf("config %+v", kc)
				}
			},
		},
		"other namespace names the metric": {
			trigger:  trig("kubernetes-workload", 0, map[string]string{"podSelector": "app=x", "value": "3", "namespace": "batch"}),
			wantSpec: ext("s0-workload-batch", autoscalingv2.AverageValueMetricType, "3"),
		},
		"all namespaces": {
			trigger:  withMetricType(trig("kubernetes-workload", 0, map[string]string{"podSelector": "app=x", "value": "3", "namespace": "*"}), autoscalingv2.ValueMetricType),
			wantSpec: ext("s0-workload-", autoscalingv2.ValueMetricType, "3"),
		},
		"podSelector missing": {
			trigger: trig("kubernetes-workload", 0, map[string]string{"value": "1"}),
			wantErr: "trigger 0 (kubernetes-workload): podSelector is required",
		},
		"bad podSelector": {
			trigger: trig("kubernetes-workload", 0, map[string]string{"podSelector": "app in (", "value": "1"}),
			wantErr: `podSelector "app in (" is not a label selector`,
		},
		"value missing": {
			trigger: trig("kubernetes-workload", 0, map[string]string{"podSelector": "app=x"}),
			wantErr: "trigger 0 (kubernetes-workload): value is required and must be greater than 0",
		},
		"value negative": {
			trigger: trig("kubernetes-workload", 0, map[string]string{"podSelector": "app=x", "value": "-1"}),
			wantErr: "value is required and must be greater than 0",
		},
		"value not a number": {
			trigger: trig("kubernetes-workload", 0, map[string]string{"podSelector": "app=x", "value": "many"}),
			wantErr: `value "many" is not a number`,
		},
		"utilization refused": {
			trigger: withMetricType(trig("kubernetes-workload", 0, map[string]string{"podSelector": "app=x", "value": "1"}), autoscalingv2.UtilizationMetricType),
			wantErr: "metricType Utilization is supported only by cpu and memory triggers",
		},
	})
}

func TestParseExternal(t *testing.T) {
	runParseCases(t, map[string]parseCase{
		"external": {
			trigger: withAuth(trig("external", 2, map[string]string{
				"scalerAddress": "scaler.shop:9090", "enableTLS": "true", "customKey": "v",
				"tokenFromEnv": "TOKEN", "token": "resolved", "emptyFromEnv": "EMPTY",
			}), map[string]string{"caCert": "CA"}),
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				ec := c.(*ExternalConfig)
				if ec.ScalerAddress != "scaler.shop:9090" || !ec.EnableTLS || ec.UnsafeSSL || string(ec.CACert) != "CA" || ec.Push {
					t.Errorf("config %+v", ec)
				}
				want := map[string]string{"scalerAddress": "scaler.shop:9090", "enableTLS": "true", "customKey": "v", "tokenFromEnv": "resolved"}
				if got := ec.ScalerMetadata(); !reflect.DeepEqual(got, want) {
					t.Errorf("ScalerMetadata() = %v, want %v", got, want)
				}
				if _, err := ec.MetricSpec(); !errors.Is(err, ErrMetricSpecFromScaler) {
					t.Errorf("MetricSpec error %v, want ErrMetricSpecFromScaler", err)
				}
				spec := ec.MetricSpecFromScaler("queue.length", 10, 0)
				if diff := diffSpec(*ext("s2-queue.length", autoscalingv2.AverageValueMetricType, "10"), spec); diff != "" {
					t.Errorf("int target: %s", diff)
				}
				spec = ec.MetricSpecFromScaler("lag", 10, 0.25)
				if diff := diffSpec(*ext("s2-lag", autoscalingv2.AverageValueMetricType, "250m"), spec); diff != "" {
					t.Errorf("float target: %s", diff)
				}
			},
		},
		"external-push, Value": {
			trigger: withMetricType(trig("external-push", 0, map[string]string{"scalerAddress": "s:1"}), autoscalingv2.ValueMetricType),
			check: func(t *testing.T, c Config) {
				ec := c.(*ExternalConfig)
				spec := ec.MetricSpecFromScaler("m", 3, 0)
				if diff := diffSpec(*ext("s0-m", autoscalingv2.ValueMetricType, "3"), spec); diff != "" {
					t.Errorf("%s", diff)
				}
			},
		},
		"scalerAddress missing": {
			trigger: trig("external", 0, map[string]string{"foo": "bar"}),
			wantErr: "trigger 0 (external): scalerAddress is required",
		},
		"enableTLS not a bool": {
			trigger: trig("external-push", 0, map[string]string{"scalerAddress": "s:1", "enableTLS": "1"}),
			wantErr: `trigger 0 (external-push): enableTLS "1" must be true or false`,
		},
		"utilization refused": {
			trigger: withMetricType(trig("external", 0, map[string]string{"scalerAddress": "s:1"}), autoscalingv2.UtilizationMetricType),
			wantErr: "metricType Utilization is supported only by cpu and memory triggers",
		},
	})
}

func diffSpec(want, got autoscalingv2.MetricSpec) string {
	if !reflect.DeepEqual(want.External.Metric, got.External.Metric) || want.Type != got.Type || want.External.Target.Type != got.External.Target.Type {
		return "metric mismatch"
	}
	w, g := want.External.Target.AverageValue, got.External.Target.AverageValue
	if want.External.Target.Type == autoscalingv2.ValueMetricType {
		w, g = want.External.Target.Value, got.External.Target.Value
	}
	if w == nil || g == nil || w.Cmp(*g) != 0 {
		return "target mismatch"
	}
	return ""
}

func TestParseUnsupportedType(t *testing.T) {
	_, _, err := Parse(Trigger{Index: 4, Type: "kafkaa", Metadata: map[string]string{}})
	if !errors.Is(err, ErrUnsupportedType) {
		t.Fatalf("error %v, want ErrUnsupportedType", err)
	}
	if !strings.Contains(err.Error(), `trigger 4 (kafkaa): unsupported trigger type "kafkaa"`) {
		t.Errorf("error %q", err)
	}
}

func TestParseJoinsErrors(t *testing.T) {
	_, _, err := Parse(trig("redis", 0, map[string]string{"listLength": "x"}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"listLength", "listName is required", "address"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	var perr *Error
	if !errors.As(err, &perr) || perr.Index != 0 || perr.Type != "redis" || perr.Key == "" {
		t.Errorf("first *Error %+v", perr)
	}
}

func TestTypes(t *testing.T) {
	for _, typ := range []string{"cpu", "memory", "cron", "metrics-api", "prometheus", "redis", "redis-streams", "postgresql", "kubernetes-workload", "external", "external-push"} {
		if !Supported(typ) {
			t.Errorf("%s not supported", typ)
		}
	}
	if len(Types()) != len(registry) {
		t.Errorf("Types() = %v", Types())
	}
}
