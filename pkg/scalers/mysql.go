package scalers

import (
	"fmt"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// MySQLConfig is a mysql trigger; its metric is s<i>-mysql-<dbName> with
// target queryValue.
//
// Keys: query (required); queryValue (required; greater than 0 unless
// the trigger only feeds a scaling modifiers formula);
// activationQueryValue; either connectionString (TriggerAuthentication or
// connectionStringFromEnv), a DSN of the Go MySQL driver, or host, port,
// username and dbName (metadata or TriggerAuthentication; username also
// usernameFromEnv) with password (TriggerAuthentication or
// passwordFromEnv, may be empty); the pool settings maxOpenConns,
// maxIdleConns, connMaxIdleTime (seconds) and useGlobalConnPools.
// metricName is accepted and ignored, as KEDA ignores it.
type MySQLConfig struct {
	Query                string
	QueryValue           float64
	ActivationQueryValue float64
	// ConnectionString is the DSN given; empty when the separate settings
	// are used (the operator builds the DSN from them).
	ConnectionString Secret
	Username         string
	Password         Secret
	Host             string
	Port             string
	// DBName is the database: dbName, or, with a connection string, what
	// follows its last "/" (parameters included), as KEDA reads it for the
	// metric name.
	DBName string
	// Pool settings; 0 leaves ebb's defaults.
	MaxOpenConns           int64
	MaxIdleConns           int64
	ConnMaxIdleTimeSeconds int64
	// UseGlobalConnPools is accepted for KEDA compatibility; ebb keeps one
	// small pool per trigger either way.
	UseGlobalConnPools bool

	index      int
	targetType autoscalingv2.MetricTargetType
}

func parseMySQL(r *reader) Config {
	c := &MySQLConfig{index: r.t.Index}
	c.targetType = r.externalTargetType()
	c.Query = r.str(meta("query").req())
	before := len(r.errs)
	c.QueryValue = r.float(meta("queryValue").req())
	if q := FloatQuantity(c.QueryValue); len(r.errs) == before && !r.t.AsMetricSource && q.Sign() <= 0 {
		r.fail("queryValue", "queryValue must be greater than 0")
	}
	c.ActivationQueryValue = r.float(meta("activationQueryValue"))
	c.ConnectionString = r.secret(from("connectionString", fromAuth, fromEnv))
	c.Username = r.str(from("username", fromMetadata, fromAuth, fromEnv))
	c.Password = r.secret(from("password", fromAuth, fromEnv))
	c.Host = r.str(from("host", fromMetadata, fromAuth))
	c.Port = r.str(from("port", fromMetadata, fromAuth))
	c.DBName = r.str(from("dbName", fromMetadata, fromAuth))
	c.MaxOpenConns = r.int(meta("maxOpenConns"))
	c.MaxIdleConns = r.int(meta("maxIdleConns"))
	c.ConnMaxIdleTimeSeconds = r.int(meta("connMaxIdleTime"))
	c.UseGlobalConnPools = r.boolean(meta("useGlobalConnPools"))
	if r.present(meta("metricName")) {
		r.warn("metadata key %q is ignored, as KEDA ignores it: the metric is named s<index>-mysql-<dbName>", "metricName")
	}

	if c.ConnectionString != "" {
		// The metric name carries what follows the last "/", as in KEDA. A
		// string without one is no DSN (the driver refuses it), and would
		// put the whole string, password included, in the HPA: refused. So
		// is a "database" holding an "@", which is a password containing
		// a "/" in a DSN that lacks the database part.
		cs := string(c.ConnectionString)
		i := strings.LastIndexByte(cs, '/')
		if i < 0 {
			r.fail("connectionString", "connectionString is not a MySQL DSN ([user[:password]@][net[(address)]]/dbname[?param=value]): it has no \"/\" before the database name")
			return c
		}
		if strings.Contains(cs[i+1:], "@") {
			r.fail("connectionString", "connectionString is not a MySQL DSN ([user[:password]@][net[(address)]]/dbname[?param=value]): the part after its last \"/\" is not a database name")
			return c
		}
		c.DBName = cs[i+1:]
		return c
	}
	for _, s := range []struct{ key, val string }{
		{"host", c.Host}, {"port", c.Port}, {"username", c.Username}, {"dbName", c.DBName},
	} {
		if s.val == "" {
			r.fail(s.key, "%s is required when no connectionString is given", s.key)
		}
	}
	return c
}

// Type returns "mysql".
func (c *MySQLConfig) Type() string { return "mysql" }

// MetricName returns s<i>-mysql-<dbName>, normalized.
func (c *MySQLConfig) MetricName() string {
	return ExternalMetricName(c.index, Normalize(fmt.Sprintf("mysql-%s", c.DBName)))
}

// MetricSpec returns the External metric with target queryValue.
func (c *MySQLConfig) MetricSpec() (autoscalingv2.MetricSpec, error) {
	return externalMetricSpec(c.MetricName(), c.targetType, FloatQuantity(c.QueryValue)), nil
}

// ActivationThreshold is activationQueryValue (default 0).
func (c *MySQLConfig) ActivationThreshold() float64 { return c.ActivationQueryValue }
