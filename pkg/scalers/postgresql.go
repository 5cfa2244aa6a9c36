package scalers

import (
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// PostgreSQLConfig is a postgresql trigger; its metric is s<i>-postgresql
// with target targetQueryValue.
//
// Keys: query (required); targetQueryValue (required, not 0, unless the
// trigger only feeds a scaling modifiers formula);
// activationTargetQueryValue; either connection (TriggerAuthentication or
// connectionFromEnv), or host, port, userName, dbName and sslmode
// (TriggerAuthentication or metadata) with password (TriggerAuthentication
// or passwordFromEnv).
type PostgreSQLConfig struct {
	Query                      string
	TargetQueryValue           float64
	ActivationTargetQueryValue float64
	// Connection is the connection string: the one given, or built from
	// the separate settings as KEDA builds it.
	Connection Secret
	Host       string
	Port       string
	UserName   string
	DBName     string
	SSLMode    string
	Password   Secret

	index      int
	targetType autoscalingv2.MetricTargetType
}

func parsePostgreSQL(r *reader) Config {
	c := &PostgreSQLConfig{index: r.t.Index}
	c.targetType = r.externalTargetType()
	before := len(r.errs)
	c.TargetQueryValue = r.float(meta("targetQueryValue"))
	if len(r.errs) == before && c.TargetQueryValue == 0 && !r.t.AsMetricSource {
		r.fail("targetQueryValue", "targetQueryValue is required and must not be 0")
	}
	c.ActivationTargetQueryValue = r.float(meta("activationTargetQueryValue"))
	c.Connection = r.secret(from("connection", fromAuth, fromEnv))
	c.Query = r.str(meta("query").req())
	c.Host = r.str(from("host", fromAuth, fromMetadata))
	c.Port = r.str(from("port", fromAuth, fromMetadata))
	c.UserName = r.str(from("userName", fromAuth, fromMetadata))
	c.DBName = r.str(from("dbName", fromAuth, fromMetadata))
	c.SSLMode = r.str(from("sslmode", fromAuth, fromMetadata))
	c.Password = r.secret(from("password", fromAuth, fromEnv))

	if c.Connection == "" {
		for _, s := range []struct{ key, val string }{
			{"host", c.Host}, {"port", c.Port}, {"userName", c.UserName}, {"dbName", c.DBName}, {"sslmode", c.SSLMode},
		} {
			if s.val == "" {
				r.fail(s.key, "%s is required when no connection is given", s.key)
			}
		}
		c.Connection = Secret(strings.Join([]string{
			"host=" + escapePostgreSQLParam(c.Host),
			"port=" + escapePostgreSQLParam(c.Port),
			"user=" + escapePostgreSQLParam(c.UserName),
			"dbname=" + escapePostgreSQLParam(c.DBName),
			"sslmode=" + escapePostgreSQLParam(c.SSLMode),
			"password=" + escapePostgreSQLParam(string(c.Password)),
		}, " "))
	}
	return c
}

// escapePostgreSQLParam quotes a keyword/value connection parameter that
// contains a space, escaping its single quotes, as KEDA does.
func escapePostgreSQLParam(s string) string {
	if !strings.Contains(s, " ") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}

// Type returns "postgresql".
func (c *PostgreSQLConfig) Type() string { return "postgresql" }

// MetricName returns s<i>-postgresql.
func (c *PostgreSQLConfig) MetricName() string { return ExternalMetricName(c.index, "postgresql") }

// MetricSpec returns the External metric with target targetQueryValue.
func (c *PostgreSQLConfig) MetricSpec() (autoscalingv2.MetricSpec, error) {
	return externalMetricSpec(c.MetricName(), c.targetType, FloatQuantity(c.TargetQueryValue)), nil
}

// ActivationThreshold is activationTargetQueryValue (default 0).
func (c *PostgreSQLConfig) ActivationThreshold() float64 { return c.ActivationTargetQueryValue }
