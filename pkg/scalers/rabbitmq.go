package scalers

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// RabbitMQ protocols: how a rabbitmq trigger reads its queue.
const (
	// RabbitMQProtocolAMQP reads the queue length with a passive queue
	// declaration over AMQP 0-9-1 (QueueLength only).
	RabbitMQProtocolAMQP = "amqp"
	// RabbitMQProtocolHTTP reads the queue through the management API.
	RabbitMQProtocolHTTP = "http"
)

// RabbitMQ modes: what a rabbitmq trigger's metric is.
const (
	// RabbitMQModeQueueLength is the number of messages in the queue
	// (ready and unacknowledged, or ready only with excludeUnacknowledged).
	RabbitMQModeQueueLength = "QueueLength"
	// RabbitMQModeMessageRate is the publish rate into the queue
	// (messages per second), HTTP only.
	RabbitMQModeMessageRate = "MessageRate"
	// RabbitMQModeDeliverGetRate is the deliver-and-get rate out of the
	// queue (messages per second), HTTP only.
	RabbitMQModeDeliverGetRate = "DeliverGetRate"
	// RabbitMQModePublishedToDeliveredRatio is the publish rate divided by
	// the deliver-and-get rate, HTTP only.
	RabbitMQModePublishedToDeliveredRatio = "PublishedToDeliveredRatio"
	// RabbitMQModeExpectedQueueConsumptionTime is the expected time, in
	// seconds, to drain the queue at the current rates, HTTP only.
	RabbitMQModeExpectedQueueConsumptionTime = "ExpectedQueueConsumptionTime"
)

// RabbitMQ operations: how a rabbitmq trigger with useRegex combines the
// queues that match.
const (
	RabbitMQOperationSum = "sum"
	RabbitMQOperationAvg = "avg"
	RabbitMQOperationMax = "max"
)

// rabbitMQDefaultValue is KEDA's target when neither mode, value nor
// queueLength is given.
const rabbitMQDefaultValue = 20

var rabbitMQModes = []string{
	RabbitMQModeQueueLength, RabbitMQModeMessageRate, RabbitMQModeDeliverGetRate,
	RabbitMQModePublishedToDeliveredRatio, RabbitMQModeExpectedQueueConsumptionTime,
}

// RabbitMQConfig is a rabbitmq trigger; its metric is
// s<i>-rabbitmq-<url.QueryEscape(queueName)> (normalized) with target
// value.
//
// Keys: host (metadata, TriggerAuthentication or hostFromEnv; required: an
// amqp://, amqps://, http:// or https:// URL); protocol (auto, amqp or
// http; metadata or TriggerAuthentication; default auto, which picks by
// the host's scheme); queueName (required); mode (QueueLength,
// MessageRate, DeliverGetRate, PublishedToDeliveredRatio or
// ExpectedQueueConsumptionTime) and value, or the deprecated queueLength
// (neither: QueueLength with value 20); activationValue; vhostName
// (metadata or TriggerAuthentication); useRegex, operation (sum, avg,
// max; default sum), pageSize (default 100) and excludeUnacknowledged
// (HTTP only); timeout (a duration such as "5s", or milliseconds; HTTP
// only); unsafeSsl; username and password (TriggerAuthentication or
// usernameFromEnv and passwordFromEnv); tls (enable or disable), ca, cert
// and key (TriggerAuthentication).
//
// Not supported, and refused with an error: keyPassword (an encrypted
// client key), OAuth2 (oauthTokenURI, clientID, clientSecret) and Azure
// Workload Identity (workloadIdentityResource).
type RabbitMQConfig struct {
	// Host is the URL given (it may hold credentials).
	Host Secret
	// Protocol is RabbitMQProtocolAMQP or RabbitMQProtocolHTTP, "auto"
	// resolved by the host's scheme.
	Protocol  string
	QueueName string
	// Mode is one of the RabbitMQMode constants, resolved from mode, or
	// from the deprecated queueLength, or the default.
	Mode string
	// Value is the target, ActivationValue the activation threshold.
	Value           float64
	ActivationValue float64
	// VhostName, when set, replaces the vhost of the host URL.
	VhostName string
	// UseRegex makes QueueName a regular expression over the vhost's
	// queues (the management API's use_regex), combined by Operation.
	UseRegex bool
	// Operation is one of the RabbitMQOperation constants.
	Operation string
	// PageSize is the page size of the management API's queue listing
	// with useRegex.
	PageSize int64
	// ExcludeUnacknowledged counts the ready messages only.
	ExcludeUnacknowledged bool
	// Timeout bounds one HTTP poll; 0 means the operator's HTTP timeout.
	Timeout   time.Duration
	UnsafeSSL bool
	// Username and Password, when both set, replace the host URL's
	// credentials.
	Username string
	Password Secret
	// EnableTLS is tls: enable; CA, Cert and Key are PEM.
	EnableTLS bool
	CA        Secret
	Cert, Key Secret

	// Namespace and ScaledObjectName name the AMQP connection.
	Namespace        string
	ScaledObjectName string

	index      int
	targetType autoscalingv2.MetricTargetType
}

func parseRabbitMQ(r *reader) Config {
	c := &RabbitMQConfig{index: r.t.Index, Namespace: r.t.Namespace, ScaledObjectName: r.t.ScaledObjectName}
	c.targetType = r.externalTargetType()

	hostP := from("host", fromMetadata, fromAuth, fromEnv).sensitive().req()
	host, hostKey, hostSrc, hostOK := r.get(hostP)
	c.Host = Secret(host)
	protocol := r.str(from("protocol", fromMetadata, fromAuth).withDefault("auto").oneOf("auto", RabbitMQProtocolAMQP, RabbitMQProtocolHTTP))
	c.QueueName = r.str(meta("queueName").req())
	c.VhostName = r.str(from("vhostName", fromMetadata, fromAuth))
	c.UseRegex = r.boolean(meta("useRegex"))
	c.ExcludeUnacknowledged = r.boolean(meta("excludeUnacknowledged"))
	c.UnsafeSSL = r.boolean(meta("unsafeSsl"))
	c.Username = r.str(from("username", fromAuth, fromEnv))
	c.Password = r.secret(from("password", fromAuth, fromEnv))
	c.CA = r.secret(auth("ca"))
	c.Cert = r.secret(auth("cert"))
	c.Key = r.secret(auth("key"))
	keyPassword := r.secret(auth("keyPassword"))
	c.EnableTLS = r.str(auth("tls").withDefault("disable").oneOf("enable", "disable")) == "enable"

	before := len(r.errs)
	c.PageSize = r.int(meta("pageSize").withDefault("100"))
	if len(r.errs) == before && c.PageSize < 1 {
		r.fail("pageSize", "pageSize must be 1 or greater")
	}
	c.Operation = r.str(meta("operation").withDefault(RabbitMQOperationSum))
	c.Timeout = r.rabbitMQTimeout()

	if !c.EnableTLS && (c.CA != "" || c.Cert != "" || c.Key != "") {
		r.warn("ca, cert and key are ignored without tls: enable in the TriggerAuthentication")
	}
	if (c.Cert == "") != (c.Key == "") {
		r.fail("cert", "cert and key (from the TriggerAuthentication) must be given together")
	}
	if (c.Username == "") != (c.Password == "") {
		r.fail("username", "username and password must be given together")
	}
	if keyPassword != "" {
		r.fail("keyPassword", "keyPassword (an encrypted client key) is not supported by ebb; give an unencrypted key")
	}
	if r.present(auth("workloadIdentityResource")) {
		r.fail("workloadIdentityResource", "Azure Workload Identity (workloadIdentityResource) is not supported by ebb")
	}
	for _, k := range []string{"oauthTokenURI", "clientID", "clientSecret"} {
		if r.present(auth(k)) {
			r.fail(k, "OAuth2 authentication (oauthTokenURI, clientID, clientSecret) is not supported by ebb; use username and password")
			break
		}
	}

	// The protocol: given, or by the host URL's scheme.
	if hostOK {
		c.Protocol = r.rabbitMQProtocol(protocol, host, keyDesc(hostKey, hostSrc))
	}

	if c.Protocol != "" && c.Protocol != RabbitMQProtocolHTTP {
		if c.UseRegex {
			r.fail("useRegex", "useRegex needs the http protocol")
		}
		if c.ExcludeUnacknowledged {
			r.fail("excludeUnacknowledged", "excludeUnacknowledged needs the http protocol")
		}
	}
	switch {
	case c.UseRegex && c.Operation != RabbitMQOperationSum && c.Operation != RabbitMQOperationAvg && c.Operation != RabbitMQOperationMax:
		r.fail("operation", "operation %q must be one of sum, avg, max", rabbitMQShort(c.Operation))
	case !c.UseRegex && r.present(meta("operation")):
		r.warn("operation is ignored without useRegex")
	}
	r.rabbitMQTrigger(c)
	return c
}

// rabbitMQProtocol resolves protocol "auto" by the host URL's scheme and
// checks that the host suits the protocol. The host is never shown.
func (r *reader) rabbitMQProtocol(protocol, host, desc string) string {
	u, err := url.Parse(host)
	if err != nil || u.Host == "" {
		r.fail("host", "%s is not a URL (amqp://, amqps://, http:// or https://)", desc)
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	byScheme := ""
	switch scheme {
	case "amqp", "amqps":
		byScheme = RabbitMQProtocolAMQP
	case "http", "https":
		byScheme = RabbitMQProtocolHTTP
	}
	switch {
	case protocol == "auto" && byScheme == "":
		// The scheme is not shown: it may come from the TriggerAuthentication.
		r.fail("host", "%s has an unknown URL scheme: protocol auto needs amqp, amqps, http or https", desc)
		return ""
	case protocol == "auto":
		return byScheme
	case protocol != "" && byScheme != protocol:
		r.fail("host", "%s must be an %s URL for protocol %s", desc, map[string]string{
			RabbitMQProtocolAMQP: "amqp:// or amqps://", RabbitMQProtocolHTTP: "http:// or https://"}[protocol], protocol)
		return ""
	}
	return protocol
}

// rabbitMQTimeout reads timeout as KEDA's typed config reads a duration:
// a Go duration ("5s") or else an integer number of milliseconds; not
// negative.
func (r *reader) rabbitMQTimeout() time.Duration {
	p := meta("timeout")
	v, key, src, ok := r.get(p)
	if !ok {
		return 0
	}
	if d, err := time.ParseDuration(v); err == nil {
		if d < 0 {
			r.fail(key, "%s must not be negative", keyDesc(key, src))
			return 0
		}
		return d
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		r.fail(key, "%s%s must be a duration (such as 5s) or a number of milliseconds", keyDesc(key, src), quote(p, src, v))
		return 0
	}
	if ms < 0 {
		r.fail(key, "%s must not be negative", keyDesc(key, src))
		return 0
	}
	if ms > int64(time.Duration(1<<63-1)/time.Millisecond) {
		r.fail(key, "%s%s is too large", keyDesc(key, src), quote(p, src, v))
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}

// rabbitMQTrigger resolves mode and value as KEDA does: the deprecated
// queueLength alone means QueueLength with that value; nothing means
// QueueLength 20; otherwise mode and value are both required.
func (r *reader) rabbitMQTrigger(c *RabbitMQConfig) {
	before := len(r.errs)
	queueLength := r.float(meta("queueLength"))
	c.Value = r.float(meta("value"))
	c.ActivationValue = r.float(meta("activationValue"))
	mode := r.str(meta("mode"))
	if len(r.errs) > before {
		return
	}
	if mode == "Unknown" { // KEDA's "not set"
		mode = ""
	}
	// As KEDA, the timeout is refused with AMQP only where mode and value
	// are given; elsewhere AMQP ignores it.
	ignoredTimeout := func() {
		if c.Protocol == RabbitMQProtocolAMQP && c.Timeout != 0 {
			r.warn("timeout is ignored with the amqp protocol")
		}
	}
	switch {
	case queueLength == 0 && mode == "" && c.Value == 0:
		c.Mode, c.Value = RabbitMQModeQueueLength, rabbitMQDefaultValue
		ignoredTimeout()
		return
	case queueLength != 0 && (mode != "" || c.Value != 0):
		r.fail("queueLength", "queueLength is deprecated and cannot be combined with mode or value; use mode and value")
		return
	case queueLength != 0:
		r.warn("queueLength is deprecated; use mode: QueueLength and value")
		c.Mode, c.Value = RabbitMQModeQueueLength, queueLength
		ignoredTimeout()
		return
	case mode == "":
		r.fail("mode", "mode is required with value (one of %s)", strings.Join(rabbitMQModes, ", "))
		return
	case c.Value == 0:
		r.fail("value", "value is required with mode, and must not be 0")
		return
	}
	found := false
	for _, m := range rabbitMQModes {
		found = found || m == mode
	}
	if !found {
		r.fail("mode", "mode %q must be one of %s", rabbitMQShort(mode), strings.Join(rabbitMQModes, ", "))
		return
	}
	c.Mode = mode
	if mode != RabbitMQModeQueueLength && c.Protocol != "" && c.Protocol != RabbitMQProtocolHTTP {
		r.fail("mode", "mode %s needs the http protocol", mode)
	}
	if c.Protocol == RabbitMQProtocolAMQP && c.Timeout != 0 {
		r.fail("timeout", "timeout is supported only with the http protocol")
	}
}

// rabbitMQShort shortens a non-secret metadata value for a message.
func rabbitMQShort(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Type returns "rabbitmq".
func (c *RabbitMQConfig) Type() string { return "rabbitmq" }

// MetricName returns s<i>-rabbitmq-<url.QueryEscape(queueName)>,
// normalized, as KEDA names it.
func (c *RabbitMQConfig) MetricName() string {
	return ExternalMetricName(c.index, Normalize("rabbitmq-"+url.QueryEscape(c.QueueName)))
}

// MetricSpec returns the External metric with target value.
func (c *RabbitMQConfig) MetricSpec() (autoscalingv2.MetricSpec, error) {
	return externalMetricSpec(c.MetricName(), c.targetType, FloatQuantity(c.Value)), nil
}

// ActivationThreshold is activationValue (default 0).
func (c *RabbitMQConfig) ActivationThreshold() float64 { return c.ActivationValue }
