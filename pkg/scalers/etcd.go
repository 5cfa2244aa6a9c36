package scalers

import (
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// EtcdConfig is an etcd trigger; its metric is s<i>-etcd-<watchKey> with
// target value.
//
// Metadata: endpoints (required, comma-separated), watchKey (required),
// value (required; warned about unless greater than 0), activationValue
// (default 0), watchProgressNotifyInterval (seconds, default 600, greater
// than 0).
// Authentication (TriggerAuthentication, or <k>FromEnv for username and
// password): username and password (both or neither); tls (enable or
// disable, default disable) with cert and key (both or neither),
// keyPassword and ca.
type EtcdConfig struct {
	Endpoints       []string
	WatchKey        string
	Value           float64
	ActivationValue float64
	// WatchProgressNotifyInterval is in seconds. KEDA uses it for its
	// watch of the key; ebb polls and only checks it.
	WatchProgressNotifyInterval int64

	Username    string
	Password    Secret
	EnableTLS   bool
	Cert, Key   Secret
	KeyPassword Secret
	CA          Secret

	index      int
	targetType autoscalingv2.MetricTargetType
}

func parseEtcd(r *reader) Config {
	c := &EtcdConfig{index: r.t.Index}
	c.targetType = r.externalTargetType()
	c.Endpoints = r.list(meta("endpoints").req())
	c.WatchKey = r.str(meta("watchKey").req())
	before := len(r.errs)
	c.Value = r.float(meta("value").req())
	if len(r.errs) == before && c.Value <= 0 && !r.t.AsMetricSource {
		// KEDA admits it; the API server then refuses the HPA.
		r.warn("value must be greater than 0 for the HPA to accept the metric's target")
	}
	c.ActivationValue = r.float(meta("activationValue"))
	before = len(r.errs)
	c.WatchProgressNotifyInterval = r.int(meta("watchProgressNotifyInterval").withDefault("600"))
	if len(r.errs) == before && c.WatchProgressNotifyInterval <= 0 {
		r.fail("watchProgressNotifyInterval", "watchProgressNotifyInterval must be greater than 0")
	}

	c.Username = r.str(from("username", fromAuth, fromEnv))
	c.Password = r.secret(from("password", fromAuth, fromEnv))
	switch {
	case c.Password != "" && c.Username == "":
		r.fail("username", "username must be given with password")
	case c.Username != "" && c.Password == "":
		r.fail("password", "password must be given with username")
	}

	c.EnableTLS = r.str(auth("tls").withDefault("disable").oneOf("enable", "disable")) == "enable"
	c.Cert = r.secret(auth("cert"))
	c.Key = r.secret(auth("key"))
	c.KeyPassword = r.secret(auth("keyPassword"))
	c.CA = r.secret(auth("ca"))
	if c.EnableTLS {
		switch {
		case c.Cert == "" && c.Key != "":
			r.fail("cert", "cert (from the TriggerAuthentication) must be given with key")
		case c.Key == "" && c.Cert != "":
			r.fail("key", "key (from the TriggerAuthentication) must be given with cert")
		}
	}
	return c
}

// Type returns "etcd".
func (c *EtcdConfig) Type() string { return "etcd" }

// MetricName returns s<i>-etcd-<watchKey>, normalized (a leading "/"
// gives "etcd--").
func (c *EtcdConfig) MetricName() string {
	return ExternalMetricName(c.index, Normalize(fmt.Sprintf("etcd-%s", c.WatchKey)))
}

// MetricSpec returns the External metric with target value.
func (c *EtcdConfig) MetricSpec() (autoscalingv2.MetricSpec, error) {
	return externalMetricSpec(c.MetricName(), c.targetType, FloatQuantity(c.Value)), nil
}

// ActivationThreshold is activationValue (default 0).
func (c *EtcdConfig) ActivationThreshold() float64 { return c.ActivationValue }
