package scalers

import (
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

func TestParseMySQL(t *testing.T) {
	// separate is the metadata of a trigger with the separate connection
	// settings; kv overrides (an empty value deletes the key).
	separate := func(kv ...string) map[string]string {
		m := map[string]string{"host": "mysql.shop", "port": "3306", "username": "keda", "dbName": "stats_db",
			"query": "SELECT CEIL(COUNT(*) / 6) FROM task_instance WHERE state='queued'", "queryValue": "4"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
				continue
			}
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	query := func(kv ...string) map[string]string {
		m := map[string]string{"query": "SELECT 1", "queryValue": "4"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	runParseCases(t, map[string]parseCase{
		"separate settings, password from the TriggerAuthentication": {
			trigger:    withAuth(trig("mysql", 0, separate("activationQueryValue", "1.5")), map[string]string{"password": "pa ss"}),
			wantSpec:   ext("s0-mysql-stats_db", autoscalingv2.AverageValueMetricType, "4"),
			wantTarget: "4",
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				activation(t, c, 1.5)
				mc := c.(*MySQLConfig)
				if mc.Host != "mysql.shop" || mc.Port != "3306" || mc.Username != "keda" || mc.DBName != "stats_db" ||
					string(mc.Password) != "pa ss" || mc.ConnectionString != "" || mc.QueryValue != 4 ||
					mc.Query != "SELECT CEIL(COUNT(*) / 6) FROM task_instance WHERE state='queued'" {
					t.Errorf("config %+v", mc)
				}
				if mc.MaxOpenConns != 0 || mc.MaxIdleConns != 0 || mc.ConnMaxIdleTimeSeconds != 0 || mc.UseGlobalConnPools {
					t.Errorf("pool settings %+v", mc)
				}
			},
		},
		"float target, Value, index 2": {
			trigger:    withMetricType(trig("mysql", 2, separate("queryValue", "2.5")), autoscalingv2.ValueMetricType),
			wantSpec:   ext("s2-mysql-stats_db", autoscalingv2.ValueMetricType, "2500m"),
			wantTarget: "2.500",
		},
		"small target in thousandths": {
			trigger:    trig("mysql", 0, separate("queryValue", "0.75")),
			wantSpec:   ext("s0-mysql-stats_db", autoscalingv2.AverageValueMetricType, "750m"),
			wantTarget: "750m",
		},
		"password from the environment, empty password allowed": {
			trigger:    trig("mysql", 0, separate("passwordFromEnv", "MYSQL_PASSWORD", "password", "pw")),
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				if p := c.(*MySQLConfig).Password; p != "pw" {
					t.Errorf("password %q", string(p))
				}
			},
		},
		"no password": {
			trigger: trig("mysql", 0, separate()),
			check: func(t *testing.T, c Config) {
				if p := c.(*MySQLConfig).Password; p != "" {
					t.Errorf("password %q", string(p))
				}
			},
		},
		"literal password ignored": {
			trigger:      trig("mysql", 0, separate("password", "pw")),
			wantWarnings: []string{`metadata key "password" is ignored`},
			check: func(t *testing.T, c Config) {
				if p := c.(*MySQLConfig).Password; p != "" {
					t.Errorf("password %q", string(p))
				}
			},
		},
		"username from the environment": {
			trigger:    trig("mysql", 0, separate("username", "", "usernameFromEnv", "USER", "username", "envuser")),
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				if u := c.(*MySQLConfig).Username; u != "envuser" {
					t.Errorf("username %q", u)
				}
			},
		},
		"settings from the TriggerAuthentication": {
			trigger: withAuth(trig("mysql", 0, query()), map[string]string{
				"host": "db.auth", "port": "3307", "username": "authuser", "dbName": "authdb", "password": "pw"}),
			wantSpec: ext("s0-mysql-authdb", autoscalingv2.AverageValueMetricType, "4"),
			check: func(t *testing.T, c Config) {
				mc := c.(*MySQLConfig)
				if mc.Host != "db.auth" || mc.Port != "3307" || mc.Username != "authuser" || mc.DBName != "authdb" {
					t.Errorf("config %+v", mc)
				}
			},
		},
		"metadata wins over the TriggerAuthentication": {
			trigger: withAuth(trig("mysql", 0, separate()), map[string]string{"host": "db.auth", "dbName": "authdb", "username": "authuser"}),
			check: func(t *testing.T, c Config) {
				mc := c.(*MySQLConfig)
				if mc.Host != "mysql.shop" || mc.DBName != "stats_db" || mc.Username != "keda" {
					t.Errorf("config %+v", mc)
				}
			},
		},
		"connection string names the metric after its last slash": {
			trigger:    withAuth(trig("mysql", 3, query()), map[string]string{"connectionString": "root:p/w@tcp(mysql.shop:3306)/jobs_db"}),
			wantSpec:   ext("s3-mysql-jobs_db", autoscalingv2.AverageValueMetricType, "4"),
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				mc := c.(*MySQLConfig)
				if mc.DBName != "jobs_db" || string(mc.ConnectionString) != "root:p/w@tcp(mysql.shop:3306)/jobs_db" {
					t.Errorf("config %+v", mc)
				}
			},
		},
		"connection string wins over dbName": {
			trigger:  withAuth(trig("mysql", 0, separate()), map[string]string{"connectionString": "u@tcp(h:1)/other"}),
			wantSpec: ext("s0-mysql-other", autoscalingv2.AverageValueMetricType, "4"),
		},
		"connection string parameters stay in the metric name": {
			trigger:  withAuth(trig("mysql", 0, query()), map[string]string{"connectionString": "u:p@tcp(h:3306)/db.v1?tls=true&timeout=5s"}),
			wantSpec: ext("s0-mysql-db-v1?tls=true&timeout=5s", autoscalingv2.AverageValueMetricType, "4"),
		},
		"connection string without a database": {
			trigger:  withAuth(trig("mysql", 0, query()), map[string]string{"connectionString": "u:p@tcp(h:3306)/"}),
			wantSpec: ext("s0-mysql-", autoscalingv2.AverageValueMetricType, "4"),
		},
		"connection string from the environment": {
			trigger:    trig("mysql", 0, query("connectionStringFromEnv", "DSN", "connectionString", "u:p@tcp(h:3306)/envdb")),
			wantSpec:   ext("s0-mysql-envdb", autoscalingv2.AverageValueMetricType, "4"),
			noWarnings: true,
		},
		"literal connection string ignored": {
			trigger:      trig("mysql", 0, query("connectionString", "u:p@tcp(h:3306)/db")),
			wantErr:      "trigger 0 (mysql): host is required when no connectionString is given",
			wantWarnings: []string{`metadata key "connectionString" is ignored`},
		},
		"the TriggerAuthentication wins over the environment": {
			trigger: withAuth(trig("mysql", 0, query("connectionStringFromEnv", "DSN", "connectionString", "u@tcp(h:1)/envdb")),
				map[string]string{"connectionString": "u@tcp(h:1)/authdb"}),
			wantSpec: ext("s0-mysql-authdb", autoscalingv2.AverageValueMetricType, "4"),
		},
		"pool settings": {
			trigger: trig("mysql", 0, separate("maxOpenConns", "5", "maxIdleConns", "3", "connMaxIdleTime", "60", "useGlobalConnPools", "true")),
			check: func(t *testing.T, c Config) {
				mc := c.(*MySQLConfig)
				if mc.MaxOpenConns != 5 || mc.MaxIdleConns != 3 || mc.ConnMaxIdleTimeSeconds != 60 || !mc.UseGlobalConnPools {
					t.Errorf("pool settings %+v", mc)
				}
			},
			noWarnings: true,
		},
		"metricName ignored": {
			trigger:      trig("mysql", 0, separate("metricName", "custom")),
			wantSpec:     ext("s0-mysql-stats_db", autoscalingv2.AverageValueMetricType, "4"),
			wantWarnings: []string{`metadata key "metricName" is ignored`},
		},
		"target optional zero as a metric source": {
			trigger: Trigger{Type: "mysql", Metadata: separate("queryValue", "0"), AsMetricSource: true},
		},
		"query missing": {
			trigger: trig("mysql", 0, separate("query", "")),
			wantErr: "trigger 0 (mysql): query is required",
		},
		"queryValue missing": {
			trigger: trig("mysql", 0, separate("queryValue", "")),
			wantErr: "trigger 0 (mysql): queryValue is required",
		},
		"queryValue required as a metric source too": {
			trigger: Trigger{Type: "mysql", Metadata: separate("queryValue", ""), AsMetricSource: true},
			wantErr: "trigger 0 (mysql): queryValue is required",
		},
		"queryValue zero": {
			trigger: trig("mysql", 0, separate("queryValue", "0")),
			wantErr: "trigger 0 (mysql): queryValue must be greater than 0",
		},
		"queryValue negative": {
			trigger: trig("mysql", 0, separate("queryValue", "-2")),
			wantErr: "queryValue must be greater than 0",
		},
		"queryValue below a thousandth": {
			trigger: trig("mysql", 0, separate("queryValue", "0.0004")),
			wantErr: "queryValue must be greater than 0",
		},
		"queryValue not a number": {
			trigger: trig("mysql", 0, separate("queryValue", "4,5")),
			wantErr: `trigger 0 (mysql): queryValue "4,5" is not a number`,
		},
		"activationQueryValue not a number": {
			trigger: trig("mysql", 0, separate("activationQueryValue", "one")),
			wantErr: `activationQueryValue "one" is not a number`,
		},
		"maxOpenConns not an integer": {
			trigger: trig("mysql", 0, separate("maxOpenConns", "2.5")),
			wantErr: `maxOpenConns "2.5" is not an integer`,
		},
		"useGlobalConnPools not a bool": {
			trigger: trig("mysql", 0, separate("useGlobalConnPools", "yes")),
			wantErr: `useGlobalConnPools "yes" must be true or false`,
		},
		"host missing": {
			trigger: trig("mysql", 0, separate("host", "")),
			wantErr: "trigger 0 (mysql): host is required when no connectionString is given",
		},
		"port missing": {
			trigger: trig("mysql", 0, separate("port", "")),
			wantErr: "port is required when no connectionString is given",
		},
		"username missing": {
			trigger: trig("mysql", 0, separate("username", "")),
			wantErr: "username is required when no connectionString is given",
		},
		"dbName missing": {
			trigger: trig("mysql", 0, separate("dbName", "")),
			wantErr: "dbName is required when no connectionString is given",
		},
		"connection string without a slash": {
			trigger: withAuth(trig("mysql", 0, query()), map[string]string{"connectionString": "root:secret@tcp(h:3306)"}),
			wantErr: "trigger 0 (mysql): connectionString is not a MySQL DSN",
		},
		"connection string whose last slash is in the password": {
			trigger: withAuth(trig("mysql", 0, query()), map[string]string{"connectionString": "root:se/cret@tcp(h:3306)"}),
			wantErr: "the part after its last \"/\" is not a database name",
		},
		"utilization refused": {
			trigger: withMetricType(trig("mysql", 0, separate()), autoscalingv2.UtilizationMetricType),
			wantErr: "trigger 0 (mysql): metricType Utilization is supported only by cpu and memory triggers",
		},
		"unknown key": {
			trigger:      trig("mysql", 0, separate("dbname", "x")),
			wantWarnings: []string{`trigger 0 (mysql): unknown metadata key "dbname" is ignored`},
		},
	})
}

func TestParseMySQLErrorsHideTheConnectionString(t *testing.T) {
	for _, cs := range []string{"root:S3CR3T@tcp(h:3306)", "root:S3CR3T/x@tcp(h)", "S3CR3T"} {
		_, warnings, err := Parse(withAuth(trig("mysql", 0, map[string]string{"query": "SELECT 1", "queryValue": "1"}),
			map[string]string{"connectionString": cs}))
		if err == nil {
			t.Fatalf("%q: no error", cs)
		}
		if strings.Contains(err.Error(), "S3CR3T") || containsAny(warnings, "S3CR3T") {
			t.Errorf("%q: the connection string shows: %v %q", cs, err, warnings)
		}
	}
}
