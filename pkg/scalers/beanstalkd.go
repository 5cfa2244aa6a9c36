package scalers

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// BeanstalkdDefaultPort is the port used when server names none, as KEDA
// documents.
const BeanstalkdDefaultPort = "11300"

// BeanstalkdDefaultTimeout is the timeout when none is set (KEDA's
// documented default, 30 seconds).
const BeanstalkdDefaultTimeout = 30 * time.Second

// beanstalkdNameChars are the characters of a beanstalkd tube name.
const beanstalkdNameChars = `-+/;.$_()0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz`

// BeanstalkdConfig is a beanstalkd trigger; its metric is
// s<i>-beanstalkd-<url.QueryEscape(tube)> with target value.
//
// Metadata: server (required, host[:port], port 11300 by default), tube
// (required), value (required; greater than 0 unless the trigger only
// feeds a scaling modifiers formula), activationValue, includeDelayed
// (default false), timeout (seconds, default 30; 0 for none of its own).
type BeanstalkdConfig struct {
	// Server is the server setting as given; Address is host:port, the
	// default port added when Server has none.
	Server          string
	Address         string
	Tube            string
	Value           float64
	ActivationValue float64
	IncludeDelayed  bool
	// Timeout bounds connecting and each poll; 0 means no bound of its
	// own (the caller's deadline applies).
	Timeout time.Duration

	index      int
	targetType autoscalingv2.MetricTargetType
}

func parseBeanstalkd(r *reader) Config {
	c := &BeanstalkdConfig{index: r.t.Index, Timeout: BeanstalkdDefaultTimeout}
	c.targetType = r.externalTargetType()
	c.Server = r.str(meta("server").req())
	c.Tube = r.str(meta("tube").req())
	before := len(r.errs)
	c.Value = r.float(meta("value").req())
	if q := FloatQuantity(c.Value); len(r.errs) == before && !r.t.AsMetricSource && q.Sign() <= 0 {
		r.fail("value", "value must be greater than 0")
	}
	c.ActivationValue = r.float(meta("activationValue"))
	c.IncludeDelayed = r.boolean(meta("includeDelayed"))
	before = len(r.errs)
	if secs := r.int(meta("timeout")); len(r.errs) == before && r.present(meta("timeout")) {
		switch {
		case secs < 0:
			r.fail("timeout", "timeout must not be negative")
		case secs > int64(24*time.Hour/time.Second):
			r.fail("timeout", "timeout must be at most 86400 seconds")
		default:
			c.Timeout = time.Duration(secs) * time.Second
		}
	}
	if c.Server != "" {
		c.Address = beanstalkdAddress(c.Server)
	}
	if c.Tube != "" && !ValidBeanstalkdTube(c.Tube) {
		tube := c.Tube
		if len(tube) > 64 {
			tube = tube[:64] + "..."
		}
		r.warn("tube %q is not a beanstalkd tube name (1 to 200 of %s, not starting with \"-\"): its polls will fail", tube, beanstalkdNameChars)
	}
	return c
}

// beanstalkdAddress adds the default port to a server without one.
func beanstalkdAddress(server string) string {
	if _, _, err := net.SplitHostPort(server); err == nil {
		return server
	}
	host := strings.TrimSuffix(strings.TrimPrefix(server, "["), "]")
	return net.JoinHostPort(host, BeanstalkdDefaultPort)
}

// ValidBeanstalkdTube reports whether name is a tube name beanstalkd
// accepts: 1 to 200 bytes of its name characters, not starting with "-".
// The operator sends no other (spaces or line breaks would break the
// protocol's command lines).
func ValidBeanstalkdTube(name string) bool {
	if name == "" || len(name) > 200 || name[0] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !strings.ContainsRune(beanstalkdNameChars, rune(name[i])) {
			return false
		}
	}
	return true
}

// Type returns "beanstalkd".
func (c *BeanstalkdConfig) Type() string { return "beanstalkd" }

// MetricName returns s<i>-beanstalkd-<url.QueryEscape(tube)>, normalized.
func (c *BeanstalkdConfig) MetricName() string {
	return ExternalMetricName(c.index, Normalize(fmt.Sprintf("beanstalkd-%s", url.QueryEscape(c.Tube))))
}

// MetricSpec returns the External metric with target value.
func (c *BeanstalkdConfig) MetricSpec() (autoscalingv2.MetricSpec, error) {
	return externalMetricSpec(c.MetricName(), c.targetType, FloatQuantity(c.Value)), nil
}

// ActivationThreshold is activationValue (default 0).
func (c *BeanstalkdConfig) ActivationThreshold() float64 { return c.ActivationValue }
