package scalers

import (
	"fmt"
	"net/url"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// NATSJetStreamConfig is a nats-jetstream trigger; its metric is
// s<i>-nats-jetstream-<stream> with target lagThreshold.
//
// Keys: natsServerMonitoringEndpoint (required; host:port of the NATS
// server's HTTP monitoring port, TriggerAuthentication or metadata),
// account and accountID (at least one; TriggerAuthentication or
// metadata), stream and consumer (required), lagThreshold (default 10;
// warned about unless greater than 0), activationLagThreshold (default
// 0), useHttps (default false).
type NATSJetStreamConfig struct {
	// MonitoringEndpoint is natsServerMonitoringEndpoint, host:port.
	MonitoringEndpoint string
	// Account is the account's name; AccountID its id, which defaults to
	// Account. The monitoring request asks for AccountID; an account in
	// the answer matches when its id is AccountID or its name is Account.
	Account                string
	AccountID              string
	Stream                 string
	Consumer               string
	LagThreshold           int64
	ActivationLagThreshold int64
	UseHTTPS               bool

	index      int
	targetType autoscalingv2.MetricTargetType
}

func parseNATSJetStream(r *reader) Config {
	c := &NATSJetStreamConfig{index: r.t.Index}
	c.targetType = r.externalTargetType()
	c.Account = r.str(from("account", fromAuth, fromMetadata))
	c.AccountID = r.str(from("accountID", fromAuth, fromMetadata))
	if c.Account == "" && c.AccountID == "" {
		r.fail("account", "account or accountID is required")
	}
	if c.AccountID == "" {
		c.AccountID = c.Account
	}
	c.Stream = r.str(meta("stream").req())
	c.Consumer = r.str(meta("consumer").req())
	before := len(r.errs)
	c.LagThreshold = r.int(meta("lagThreshold").withDefault("10"))
	if len(r.errs) == before && c.LagThreshold <= 0 && !r.t.AsMetricSource {
		// KEDA admits it; the API server then refuses the HPA.
		r.warn("lagThreshold must be greater than 0 for the HPA to accept the metric's target")
	}
	c.ActivationLagThreshold = r.int(meta("activationLagThreshold"))
	c.UseHTTPS = r.boolean(meta("useHttps"))
	endpoint, _, _, ok := r.get(from("natsServerMonitoringEndpoint", fromAuth, fromMetadata).req())
	c.MonitoringEndpoint = endpoint
	if ok && strings.Contains(endpoint, "://") {
		// KEDA admits it and builds a URL that cannot work; so does ebb,
		// with a warning (the value is not shown: it may come from a
		// TriggerAuthentication).
		r.warn("natsServerMonitoringEndpoint should be host:port, without a scheme (set useHttps for https)")
	}
	return c
}

// MonitoringURL returns the URL ebb reads, as KEDA builds it:
// <http|https>://<endpoint>/jsz?acc=<accountID>&config=true&consumers=true.
func (c *NATSJetStreamConfig) MonitoringURL() string {
	scheme := "http"
	if c.UseHTTPS {
		scheme = "https"
	}
	q := url.Values{}
	q.Set("acc", c.AccountID)
	q.Set("consumers", "true")
	q.Set("config", "true")
	u := url.URL{Scheme: scheme, Host: c.MonitoringEndpoint, Path: "/jsz", RawQuery: q.Encode()}
	return u.String()
}

// Type returns "nats-jetstream".
func (c *NATSJetStreamConfig) Type() string { return "nats-jetstream" }

// MetricName returns s<i>-nats-jetstream-<stream>, normalized.
func (c *NATSJetStreamConfig) MetricName() string {
	return ExternalMetricName(c.index, Normalize(fmt.Sprintf("nats-jetstream-%s", c.Stream)))
}

// MetricSpec returns the External metric with target lagThreshold.
func (c *NATSJetStreamConfig) MetricSpec() (autoscalingv2.MetricSpec, error) {
	return externalMetricSpec(c.MetricName(), c.targetType, IntQuantity(c.LagThreshold)), nil
}

// ActivationThreshold is activationLagThreshold (default 0).
func (c *NATSJetStreamConfig) ActivationThreshold() float64 {
	return float64(c.ActivationLagThreshold)
}
