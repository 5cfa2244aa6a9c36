package scalers

import (
	"fmt"
	"net"
	"strconv"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// RedisMode is how a Redis trigger connects: the trigger types redis,
// redis-cluster and redis-sentinel (and their -streams variants).
type RedisMode string

// Redis connection modes.
const (
	RedisStandalone RedisMode = "standalone"
	RedisCluster    RedisMode = "cluster"
	RedisSentinel   RedisMode = "sentinel"
)

// RedisConnection is how a Redis trigger reaches Redis.
//
// Keys: address (or addresses), or host (or hosts) with port (or ports),
// comma-separated; username, password, sentinelUsername,
// sentinelPassword, sentinelMaster (metadata, environment or
// TriggerAuthentication); enableTLS in the metadata or tls
// (enable/disable) in the TriggerAuthentication; unsafeSsl; cert, key,
// keyPassword, ca from the TriggerAuthentication.
type RedisConnection struct {
	Mode             RedisMode
	Addresses        []string
	Username         string
	Password         Secret
	SentinelUsername string
	SentinelPassword Secret
	SentinelMaster   string
	EnableTLS        bool
	UnsafeSSL        bool
	Cert, Key        Secret
	KeyPassword      Secret
	CA               Secret
}

func parseRedisConnection(r *reader, mode RedisMode) RedisConnection {
	c := RedisConnection{Mode: mode}
	c.Addresses = r.list(from("address", fromMetadata, fromAuth, fromEnv).alias("addresses"))
	c.Username = r.str(from("username", fromMetadata, fromEnv, fromAuth))
	c.Password = r.secret(from("password", fromMetadata, fromEnv, fromAuth))
	c.SentinelUsername = r.str(from("sentinelUsername", fromMetadata, fromAuth, fromEnv))
	c.SentinelPassword = r.secret(from("sentinelPassword", fromMetadata, fromAuth, fromEnv))
	c.SentinelMaster = r.str(from("sentinelMaster", fromMetadata, fromAuth, fromEnv))
	hosts := r.list(from("host", fromMetadata, fromEnv, fromAuth).alias("hosts"))
	ports := r.list(from("port", fromMetadata, fromEnv, fromAuth).alias("ports"))
	c.UnsafeSSL = r.boolean(meta("unsafeSsl"))
	c.Cert = r.secret(auth("Cert").alias("cert"))
	c.Key = r.secret(auth("key"))
	c.KeyPassword = r.secret(auth("keyPassword"))
	c.CA = r.secret(auth("ca"))

	// As KEDA: host and port lists, when both given, must pair up and are
	// added to the addresses.
	switch {
	case len(hosts) > 0 && len(ports) > 0 && len(hosts) != len(ports):
		r.fail("host", "host and port must list as many hosts as ports")
	case len(hosts) > 0 && len(ports) > 0:
		for i := range hosts {
			c.Addresses = append(c.Addresses, net.JoinHostPort(hosts[i], ports[i]))
		}
		fallthrough
	default:
		if len(c.Addresses) == 0 || c.Addresses[0] == "" {
			r.fail("address", "address (host:port), or host and port, is required")
		}
	}

	// enableTLS (strconv.ParseBool) in the metadata, or tls
	// (enable/disable) in the TriggerAuthentication, not both.
	metaTLS, _, _, metaOK := r.get(meta("enableTLS"))
	authTLS, _, _, authOK := r.get(auth("tls"))
	switch {
	case metaOK && authOK:
		r.fail("enableTLS", "enableTLS in the metadata and tls in the TriggerAuthentication cannot both be set")
	case metaOK:
		b, err := strconv.ParseBool(metaTLS)
		if err != nil {
			r.fail("enableTLS", "enableTLS %q must be true or false", metaTLS)
		}
		c.EnableTLS = b
	case authOK:
		switch authTLS {
		case "enable":
			c.EnableTLS = true
		case "disable":
		default:
			r.fail("tls", "tls (from the TriggerAuthentication) must be enable or disable")
		}
	}
	return c
}

// RedisConfig is a redis, redis-cluster or redis-sentinel trigger; its
// metric is s<i>-redis-<listName> with target listLength.
//
// Metadata: listName (required), listLength (default 5),
// activationListLength (default 0), databaseIndex, and the
// RedisConnection keys.
type RedisConfig struct {
	ListName             string
	ListLength           int64
	ActivationListLength int64
	DatabaseIndex        int64
	Connection           RedisConnection

	triggerType string
	index       int
	targetType  autoscalingv2.MetricTargetType
}

func parseRedis(r *reader, mode RedisMode) Config {
	c := &RedisConfig{triggerType: r.t.Type, index: r.t.Index}
	c.targetType = r.externalTargetType()
	c.ListLength = r.int(meta("listLength").withDefault("5"))
	c.ActivationListLength = r.int(meta("activationListLength"))
	c.ListName = r.str(meta("listName").req())
	c.DatabaseIndex = r.databaseIndex()
	c.Connection = parseRedisConnection(r, mode)
	return c
}

// databaseIndex reads databaseIndex, an int as KEDA reads it.
func (r *reader) databaseIndex() int64 {
	before := len(r.errs)
	n := r.int(meta("databaseIndex"))
	if len(r.errs) == before && n < 0 {
		r.fail("databaseIndex", "databaseIndex must not be negative")
	}
	return n
}

// Type returns the trigger type.
func (c *RedisConfig) Type() string { return c.triggerType }

// MetricName returns s<i>-redis-<listName>, normalized.
func (c *RedisConfig) MetricName() string {
	return ExternalMetricName(c.index, Normalize(fmt.Sprintf("redis-%s", c.ListName)))
}

// MetricSpec returns the External metric with target listLength.
func (c *RedisConfig) MetricSpec() (autoscalingv2.MetricSpec, error) {
	return externalMetricSpec(c.MetricName(), c.targetType, IntQuantity(c.ListLength)), nil
}

// ActivationThreshold is activationListLength (default 0).
func (c *RedisConfig) ActivationThreshold() float64 { return float64(c.ActivationListLength) }
