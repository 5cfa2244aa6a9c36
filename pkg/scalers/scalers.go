package scalers

import (
	"errors"
	"fmt"
	"slices"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// Trigger is one trigger of a ScaledObject or ScaledJob, with its metadata
// resolved (see the package documentation for what the caller resolves).
type Trigger struct {
	// Index is the trigger's position in spec.triggers; external metric
	// names carry it ("s<index>-...").
	Index int
	// Type is the trigger type, such as "prometheus" or "cpu".
	Type string
	// Name is the trigger's name. It does not change metric names.
	Name string
	// Metadata is the trigger's metadata, with <k>FromEnv values resolved
	// into <k>.
	Metadata map[string]string
	// AuthParams are the parameters resolved from the trigger's
	// TriggerAuthentication (secrets and the like). Their values are never
	// logged nor put in errors or warnings.
	AuthParams map[string]string
	// MetricType is the trigger's metricType; "" means AverageValue (cpu
	// and memory triggers, which have no default, excepted).
	MetricType autoscalingv2.MetricTargetType
	// Namespace is the namespace of the ScaledObject or ScaledJob; the
	// kubernetes-workload metric name uses it.
	Namespace string
	// ScaledObjectName is the name of the ScaledObject or ScaledJob.
	ScaledObjectName string
	// AsMetricSource is true when the trigger only feeds a scaling
	// modifiers formula (spec.advanced.scalingModifiers with a formula).
	// As in KEDA, the scalers that require a target value
	// (metrics-api targetValue, postgresql targetQueryValue,
	// kubernetes-workload value) then accept none.
	AsMetricSource bool
}

// Config is the parsed, validated configuration of one trigger. The
// concrete types (CPUMemoryConfig, CronConfig, PrometheusConfig, ...)
// carry the typed settings the operator needs to build a scaler client.
type Config interface {
	// MetricSpec returns the HPA metric for this trigger, exactly as KEDA
	// builds it (External: name s<i>-..., target from the threshold;
	// Resource or ContainerResource for cpu and memory), without the
	// External metric's selector. External scalers return
	// ErrMetricSpecFromScaler.
	MetricSpec() (autoscalingv2.MetricSpec, error)
	// Type returns the trigger type.
	Type() string
}

// Activator is implemented by the configs of scalers that have an
// activation threshold: the trigger is active while its metric value is
// strictly greater than ActivationThreshold, as in KEDA.
type Activator interface {
	ActivationThreshold() float64
}

// ErrMetricSpecFromScaler is returned by the MetricSpec method of external
// and external-push configs: the metric is defined by the external
// scaler's GetMetricSpec, which the operator calls (see
// ExternalConfig.MetricSpecFromScaler).
var ErrMetricSpecFromScaler = errors.New("the metric spec of an external scaler comes from its GetMetricSpec")

// ErrUnsupportedType is wrapped by the error Parse returns for a trigger
// type ebb has no parser for.
var ErrUnsupportedType = errors.New("unsupported trigger type")

// Error is one problem with one trigger's metadata.
type Error struct {
	// Index and Type identify the trigger.
	Index int
	Type  string
	// Key is the metadata (or authentication) key at fault; empty when
	// the problem is not about one key.
	Key string
	// Msg describes the problem; it names Key.
	Msg string
	// Err is an optional sentinel (ErrUnsupportedType).
	Err error
}

func (e *Error) Error() string {
	return fmt.Sprintf("trigger %d (%s): %s", e.Index, e.Type, e.Msg)
}

// Unwrap returns the sentinel error, if any.
func (e *Error) Unwrap() error { return e.Err }

// parser reads one trigger type's metadata through r. Problems are
// recorded on r; the returned Config is ignored when r has errors.
type parser func(r *reader) Config

var registry = map[string]parser{
	"cpu":                    func(r *reader) Config { return parseCPUMemory(r, "cpu") },
	"memory":                 func(r *reader) Config { return parseCPUMemory(r, "memory") },
	"cron":                   parseCron,
	"metrics-api":            parseMetricsAPI,
	"prometheus":             parsePrometheus,
	"azure-queue":            parseAzureQueue,
	"azure-blob":             parseAzureBlob,
	"graphite":               parseGraphite,
	"redis":                  func(r *reader) Config { return parseRedis(r, RedisStandalone) },
	"redis-cluster":          func(r *reader) Config { return parseRedis(r, RedisCluster) },
	"redis-sentinel":         func(r *reader) Config { return parseRedis(r, RedisSentinel) },
	"redis-streams":          func(r *reader) Config { return parseRedisStreams(r, RedisStandalone) },
	"redis-cluster-streams":  func(r *reader) Config { return parseRedisStreams(r, RedisCluster) },
	"redis-sentinel-streams": func(r *reader) Config { return parseRedisStreams(r, RedisSentinel) },
	"postgresql":             parsePostgreSQL,
	"mysql":                  parseMySQL,
	"beanstalkd":             parseBeanstalkd,
	"kubernetes-workload":    parseKubernetesWorkload,
	"kubernetes-resource":    parseKubernetesResource,
	"external":               func(r *reader) Config { return parseExternal(r, false) },
	"external-push":          func(r *reader) Config { return parseExternal(r, true) },
	"nats-jetstream":         parseNATSJetStream,
	"etcd":                   parseEtcd,
	"rabbitmq":               parseRabbitMQ,
	"kafka":                  func(r *reader) Config { return parseKafka(r, false) },
	"apache-kafka":           func(r *reader) Config { return parseKafka(r, true) },
}

// Types returns the trigger types Parse supports, sorted.
func Types() []string {
	types := make([]string, 0, len(registry))
	for t := range registry {
		types = append(types, t)
	}
	slices.Sort(types)
	return types
}

// Supported reports whether Parse has a parser for the trigger type.
func Supported(triggerType string) bool {
	_, ok := registry[triggerType]
	return ok
}

// Parse parses and validates one trigger. It returns the typed Config, the
// warnings to show the user (unknown, deprecated or ignored keys; nil when
// there are none), and an error joining every *Error found. The Config is
// nil when the error is not.
//
// Parse is pure: it reads nothing but t and never touches the network.
func Parse(t Trigger) (Config, []string, error) {
	p, ok := registry[t.Type]
	if !ok {
		return nil, nil, &Error{Index: t.Index, Type: t.Type, Msg: fmt.Sprintf("unsupported trigger type %q", t.Type), Err: ErrUnsupportedType}
	}
	r := newReader(t)
	cfg := p(r)
	r.warnUnknownKeys()
	if len(r.errs) > 0 {
		return nil, r.warnings, errors.Join(r.errs...)
	}
	return cfg, r.warnings, nil
}
