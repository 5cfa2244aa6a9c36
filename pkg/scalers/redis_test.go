package scalers

import (
	"reflect"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

func TestParseRedis(t *testing.T) {
	runParseCases(t, map[string]parseCase{
		"defaults": {
			trigger:    withAuth(trig("redis", 0, map[string]string{"address": "redis.shop:6379", "listName": "mylist"}), map[string]string{"password": "pw"}),
			wantSpec:   ext("s0-redis-mylist", autoscalingv2.AverageValueMetricType, "5"),
			wantTarget: "5",
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				activation(t, c, 0)
				rc := c.(*RedisConfig)
				if rc.ListLength != 5 || rc.DatabaseIndex != 0 || rc.Connection.EnableTLS || string(rc.Connection.Password) != "pw" ||
					!reflect.DeepEqual(rc.Connection.Addresses, []string{"redis.shop:6379"}) || rc.Connection.Mode != RedisStandalone {
					t.Errorf("config %+v", rc)
				}
			},
		},
		"listLength, Value, index 3": {
			trigger:    withMetricType(trig("redis", 3, map[string]string{"address": "r:6379", "listName": "jobs", "listLength": "20", "activationListLength": "2"}), autoscalingv2.ValueMetricType),
			wantSpec:   ext("s3-redis-jobs", autoscalingv2.ValueMetricType, "20"),
			wantTarget: "20",
			check:      func(t *testing.T, c Config) { activation(t, c, 2) },
		},
		"list name normalized": {
			trigger:  trig("redis", 0, map[string]string{"address": "r:6379", "listName": "queue:jobs.high"}),
			wantSpec: ext("s0-redis-queue-jobs-high", autoscalingv2.AverageValueMetricType, "5"),
		},
		"host and port": {
			trigger: trig("redis", 0, map[string]string{"host": "redis.shop", "port": "6380", "listName": "l", "databaseIndex": "2", "enableTLS": "true"}),
			check: func(t *testing.T, c Config) {
				rc := c.(*RedisConfig)
				if !reflect.DeepEqual(rc.Connection.Addresses, []string{"redis.shop:6380"}) || rc.DatabaseIndex != 2 || !rc.Connection.EnableTLS {
					t.Errorf("config %+v", rc)
				}
			},
		},
		"address from the environment": {
			trigger: trig("redis", 0, map[string]string{"addressFromEnv": "REDIS_ADDR", "address": "10.0.0.1:6379", "listName": "l", "passwordFromEnv": "REDIS_PW", "password": "pw"}),
			check: func(t *testing.T, c Config) {
				rc := c.(*RedisConfig)
				if rc.Connection.Addresses[0] != "10.0.0.1:6379" || string(rc.Connection.Password) != "pw" {
					t.Errorf("config %+v", rc)
				}
			},
			noWarnings: true,
		},
		"cluster addresses and tls from auth": {
			trigger: withAuth(trig("redis-cluster", 0, map[string]string{"addresses": "a:1, b:2", "listName": "l"}), map[string]string{"tls": "enable"}),
			check: func(t *testing.T, c Config) {
				rc := c.(*RedisConfig)
				if !reflect.DeepEqual(rc.Connection.Addresses, []string{"a:1", "b:2"}) || !rc.Connection.EnableTLS || rc.Connection.Mode != RedisCluster {
					t.Errorf("config %+v", rc)
				}
			},
			wantSpec: ext("s0-redis-l", autoscalingv2.AverageValueMetricType, "5"),
		},
		"listName missing": {
			trigger: trig("redis", 0, map[string]string{"address": "r:6379"}),
			wantErr: "trigger 0 (redis): listName is required",
		},
		"address missing": {
			trigger: trig("redis", 0, map[string]string{"listName": "l"}),
			wantErr: "trigger 0 (redis): address (host:port), or host and port, is required",
		},
		"host without port": {
			trigger: trig("redis", 0, map[string]string{"host": "r", "listName": "l"}),
			wantErr: "address (host:port), or host and port, is required",
		},
		"hosts and ports differ": {
			trigger: trig("redis-cluster", 0, map[string]string{"hosts": "a,b", "ports": "1", "listName": "l"}),
			wantErr: "host and port must list as many hosts as ports",
		},
		"listLength not an integer": {
			trigger: trig("redis", 0, map[string]string{"address": "r:6379", "listName": "l", "listLength": "5.5"}),
			wantErr: `trigger 0 (redis): listLength "5.5" is not an integer`,
		},
		"activationListLength not an integer": {
			trigger: trig("redis", 0, map[string]string{"address": "r:6379", "listName": "l", "activationListLength": "one"}),
			wantErr: `activationListLength "one" is not an integer`,
		},
		"enableTLS not a bool": {
			trigger: trig("redis", 0, map[string]string{"address": "r:6379", "listName": "l", "enableTLS": "yes"}),
			wantErr: `enableTLS "yes" must be true or false`,
		},
		"tls twice": {
			trigger: withAuth(trig("redis", 0, map[string]string{"address": "r:6379", "listName": "l", "enableTLS": "true"}), map[string]string{"tls": "enable"}),
			wantErr: "enableTLS in the metadata and tls in the TriggerAuthentication cannot both be set",
		},
		"bad tls in auth": {
			trigger: withAuth(trig("redis", 0, map[string]string{"address": "r:6379", "listName": "l"}), map[string]string{"tls": "on"}),
			wantErr: "tls (from the TriggerAuthentication) must be enable or disable",
		},
		"negative databaseIndex": {
			trigger: trig("redis", 0, map[string]string{"address": "r:6379", "listName": "l", "databaseIndex": "-1"}),
			wantErr: "databaseIndex must not be negative",
		},
		"utilization refused": {
			trigger: withMetricType(trig("redis", 0, map[string]string{"address": "r:6379", "listName": "l"}), autoscalingv2.UtilizationMetricType),
			wantErr: "trigger 0 (redis): metricType Utilization is supported only by cpu and memory triggers",
		},
		"unknown key": {
			trigger:      trig("redis", 0, map[string]string{"address": "r:6379", "listName": "l", "listname": "x"}),
			wantWarnings: []string{`trigger 0 (redis): unknown metadata key "listname" is ignored`},
		},
	})
}

func TestParseRedisStreams(t *testing.T) {
	base := func(kv ...string) map[string]string {
		m := map[string]string{"address": "redis:6379", "stream": "orders"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	mode := func(want RedisStreamsMode, target int64) func(*testing.T, Config) {
		return func(t *testing.T, c Config) {
			rc := c.(*RedisStreamsConfig)
			if rc.Mode != want || rc.Target() != target {
				t.Errorf("mode %s target %d, want %s %d", rc.Mode, rc.Target(), want, target)
			}
		}
	}
	runParseCases(t, map[string]parseCase{
		"stream length by default": {
			trigger:    trig("redis-streams", 2, base()),
			wantSpec:   ext("s2-redis-streams-orders", autoscalingv2.AverageValueMetricType, "5"),
			wantTarget: "5",
			noWarnings: true,
			check:      mode(RedisStreamsStreamLength, 5),
		},
		"stream length set": {
			trigger:  trig("redis-streams", 0, base("streamLength", "50")),
			wantSpec: ext("s0-redis-streams-orders", autoscalingv2.AverageValueMetricType, "50"),
			check:    mode(RedisStreamsStreamLength, 50),
		},
		"pending entries with a consumer group": {
			trigger:  trig("redis-streams", 0, base("consumerGroup", "workers")),
			wantSpec: ext("s0-redis-streams-orders", autoscalingv2.AverageValueMetricType, "5"),
			check:    mode(RedisStreamsPendingEntries, 5),
		},
		"pending entries set, Value": {
			trigger:  withMetricType(trig("redis-streams", 1, base("consumerGroup", "workers", "pendingEntriesCount", "12")), autoscalingv2.ValueMetricType),
			wantSpec: ext("s1-redis-streams-orders", autoscalingv2.ValueMetricType, "12"),
			check:    mode(RedisStreamsPendingEntries, 12),
		},
		"lag": {
			trigger:  trig("redis-streams", 0, base("consumerGroup", "workers", "lagCount", "7", "activationLagCount", "3")),
			wantSpec: ext("s0-redis-streams-orders", autoscalingv2.AverageValueMetricType, "7"),
			check: func(t *testing.T, c Config) {
				mode(RedisStreamsLag, 7)(t, c)
				activation(t, c, 3)
			},
		},
		"stream name normalized": {
			trigger:  trig("redis-streams", 0, map[string]string{"address": "r:1", "stream": "events/v1.created"}),
			wantSpec: ext("s0-redis-streams-events-v1-created", autoscalingv2.AverageValueMetricType, "5"),
		},
		"pendingEntriesCount without consumerGroup warns": {
			trigger:      trig("redis-streams", 0, base("pendingEntriesCount", "3")),
			wantWarnings: []string{"need consumerGroup"},
			check:        mode(RedisStreamsStreamLength, 5),
		},
		"stream missing": {
			trigger: trig("redis-streams", 0, map[string]string{"address": "r:1"}),
			wantErr: "trigger 0 (redis-streams): stream is required",
		},
		"address missing": {
			trigger: trig("redis-streams", 0, map[string]string{"stream": "s"}),
			wantErr: "address (host:port), or host and port, is required",
		},
		"bad pendingEntriesCount": {
			trigger: trig("redis-streams", 0, base("consumerGroup", "g", "pendingEntriesCount", "lots")),
			wantErr: `pendingEntriesCount "lots" is not an integer`,
		},
		"bad lagCount": {
			trigger: trig("redis-streams", 0, base("consumerGroup", "g", "lagCount", "1.5")),
			wantErr: `lagCount "1.5" is not an integer`,
		},
		"bad activationLagCount": {
			trigger: trig("redis-streams", 0, base("activationLagCount", "x")),
			wantErr: `activationLagCount "x" is not an integer`,
		},
		"utilization refused": {
			trigger: withMetricType(trig("redis-streams", 0, base()), autoscalingv2.UtilizationMetricType),
			wantErr: "metricType Utilization is supported only by cpu and memory triggers",
		},
		"unknown key": {
			trigger:      trig("redis-streams", 0, base("consumergroup", "g")),
			wantWarnings: []string{`unknown metadata key "consumergroup"`},
		},
	})
}
