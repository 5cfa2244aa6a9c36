package scalers

import (
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// RedisStreamsMode is what a redis-streams trigger measures.
type RedisStreamsMode string

// Redis streams modes, chosen as KEDA chooses them: with a consumerGroup,
// lag when lagCount is set (non-zero), pending entries otherwise; without
// a consumerGroup, the stream length.
const (
	RedisStreamsPendingEntries RedisStreamsMode = "pendingEntriesCount"
	RedisStreamsStreamLength   RedisStreamsMode = "streamLength"
	RedisStreamsLag            RedisStreamsMode = "lagCount"
)

// RedisStreamsConfig is a redis-streams (or redis-cluster-streams,
// redis-sentinel-streams) trigger; its metric is
// s<i>-redis-streams-<stream> with the target of its mode.
//
// Metadata: stream (required), consumerGroup, pendingEntriesCount
// (default 5), streamLength (default 5), lagCount, activationLagCount
// (default 0, the activation threshold in every mode, as in KEDA),
// databaseIndex, and the RedisConnection keys.
type RedisStreamsConfig struct {
	Stream              string
	ConsumerGroup       string
	Mode                RedisStreamsMode
	PendingEntriesCount int64
	StreamLength        int64
	LagCount            int64
	ActivationLagCount  int64
	DatabaseIndex       int64
	Connection          RedisConnection

	triggerType string
	index       int
	targetType  autoscalingv2.MetricTargetType
}

func parseRedisStreams(r *reader, mode RedisMode) Config {
	c := &RedisStreamsConfig{triggerType: r.t.Type, index: r.t.Index}
	c.targetType = r.externalTargetType()
	c.PendingEntriesCount = r.int(meta("pendingEntriesCount").withDefault("5"))
	c.StreamLength = r.int(meta("streamLength").withDefault("5"))
	c.LagCount = r.int(meta("lagCount"))
	c.Stream = r.str(meta("stream").req())
	c.ConsumerGroup = r.str(meta("consumerGroup"))
	c.DatabaseIndex = r.databaseIndex()
	c.ActivationLagCount = r.int(meta("activationLagCount"))
	c.Connection = parseRedisConnection(r, mode)

	switch {
	case c.ConsumerGroup != "" && c.LagCount != 0:
		c.Mode = RedisStreamsLag
	case c.ConsumerGroup != "":
		c.Mode = RedisStreamsPendingEntries
		if r.present(meta("lagCount")) {
			r.warn("lagCount 0 selects pendingEntriesCount, as in KEDA")
		}
	default:
		c.Mode = RedisStreamsStreamLength
		if r.present(meta("lagCount")) || r.present(meta("pendingEntriesCount")) {
			r.warn("lagCount and pendingEntriesCount need consumerGroup; without it the trigger scales on streamLength")
		}
	}
	return c
}

// Type returns the trigger type.
func (c *RedisStreamsConfig) Type() string { return c.triggerType }

// Target returns the target of the config's mode.
func (c *RedisStreamsConfig) Target() int64 {
	switch c.Mode {
	case RedisStreamsLag:
		return c.LagCount
	case RedisStreamsPendingEntries:
		return c.PendingEntriesCount
	default:
		return c.StreamLength
	}
}

// MetricName returns s<i>-redis-streams-<stream>, normalized.
func (c *RedisStreamsConfig) MetricName() string {
	return ExternalMetricName(c.index, Normalize(fmt.Sprintf("redis-streams-%s", c.Stream)))
}

// MetricSpec returns the External metric with the mode's target.
func (c *RedisStreamsConfig) MetricSpec() (autoscalingv2.MetricSpec, error) {
	return externalMetricSpec(c.MetricName(), c.targetType, IntQuantity(c.Target())), nil
}

// ActivationThreshold is activationLagCount (default 0), whatever the
// mode, as in KEDA.
func (c *RedisStreamsConfig) ActivationThreshold() float64 { return float64(c.ActivationLagCount) }
