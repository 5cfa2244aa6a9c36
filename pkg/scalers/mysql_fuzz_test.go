package scalers

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzMySQL parses mysql triggers with fuzzed metadata and authentication
// parameters: Parse must not panic, an error must name the trigger, and
// neither errors nor warnings may show an authentication value or the
// connection string.
func FuzzMySQL(f *testing.F) {
	// Seeds: query, queryValue, activationQueryValue, connectionString,
	// host, port, username, dbName, password, maxOpenConns, whether the
	// connection string comes from the environment (else the
	// TriggerAuthentication), whether host, port, username and dbName come
	// from the TriggerAuthentication, whether the trigger only feeds a
	// scaling modifiers formula, and whether secrets are marked (see
	// checkFuzzedParse).
	f.Add("SELECT 1", "4", "", "", "mysql", "3306", "root", "db", "pw", "", false, false, false, false)
	f.Add("SELECT 1", "0.75", "1", "u:p@tcp(h:3306)/db?tls=true", "", "", "", "", "", "5", false, false, false, true)
	f.Add("SELECT 1", "2", "", "u:p@tcp(h:3306)/db", "", "", "", "", "", "", true, false, false, true)
	f.Add("", "", "", "", "", "", "", "", "", "", false, false, false, false)
	f.Add("", "", "", "", "", "", "", "", "", "", true, true, true, true)
	f.Add("q", "x", "1,5", "no-slash", "h", "p", "u", "d", "p w", "1.5", false, true, false, true)
	f.Add("q", "0", "NaN", "u:p/w@tcp(h)", "h", "", "u", "", "", "-1", false, false, true, true)
	f.Add("q", "-3", "+1", "a/b@c", "h", "1", "u", "d", "", "null", true, true, false, true)
	f.Fuzz(func(t *testing.T, query, queryValue, activation, connectionString, host, port, username, dbName, password, maxOpen string,
		csFromEnv, settingsFromAuth, asMetricSource, marked bool) {
		md := map[string]string{
			"query": query, "queryValue": queryValue, "activationQueryValue": activation, "maxOpenConns": maxOpen,
		}
		ap := map[string]string{"password": password}
		// Values that carry a secret wherever they are given.
		secretMD := []string{}
		if csFromEnv {
			md["connectionStringFromEnv"] = "DSN"
			md["connectionString"] = connectionString
			secretMD = append(secretMD, "connectionString")
		} else {
			ap["connectionString"] = connectionString
		}
		dst := md
		if settingsFromAuth {
			dst = ap
		}
		dst["host"], dst["port"], dst["username"], dst["dbName"] = host, port, username, dbName
		tr := Trigger{Index: 2, Type: "mysql", Metadata: md, AuthParams: ap, AsMetricSource: asMetricSource}
		checkFuzzedParse(t, tr, secretMD, marked)
	})
}

// fuzzSecretMark marks secret values in FuzzMySQL and FuzzBeanstalkd.
const fuzzSecretMark = "SQLQSECRET"

// checkFuzzedParse runs Parse on tr and checks: no panic (the fuzzer
// reports it), every error line names the trigger and comes without a
// config, a config gives a metric spec. When marked, every
// authentication value and the metadata values under secretMD are
// prefixed with fuzzSecretMark (which is removed from the other metadata
// values), and the mark must show in no error and no warning: a secret,
// even truncated, is never shown.
func checkFuzzedParse(t *testing.T, tr Trigger, secretMD []string, marked bool) {
	t.Helper()
	if marked {
		for k, v := range tr.Metadata {
			tr.Metadata[k] = strings.ReplaceAll(v, fuzzSecretMark, strings.ToLower(fuzzSecretMark))
		}
		for _, k := range secretMD {
			tr.Metadata[k] = fuzzSecretMark + tr.Metadata[k]
		}
		for k, v := range tr.AuthParams {
			tr.AuthParams[k] = fuzzSecretMark + v
		}
	}
	cfg, warnings, err := Parse(tr)
	prefix := "trigger " + strconv.Itoa(tr.Index) + " (" + tr.Type + "): "
	texts := warnings
	for _, w := range warnings {
		if !strings.HasPrefix(w, prefix) || strings.Contains(w, "\n") {
			t.Fatalf("warning %q does not name the trigger on one line", w)
		}
	}
	if err != nil {
		if cfg != nil {
			t.Fatalf("Parse returned a config with error %v", err)
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, prefix) {
				t.Fatalf("error %q does not name the trigger", line)
			}
		}
		texts = append(texts, err.Error())
	} else if cfg == nil {
		t.Fatal("Parse returned neither a config nor an error")
	} else if _, err := cfg.MetricSpec(); err != nil {
		t.Fatalf("MetricSpec: %v", err)
	}
	if !marked {
		return
	}
	for _, s := range texts {
		if strings.Contains(s, fuzzSecretMark) {
			t.Fatalf("%q reveals a secret", s)
		}
	}
}
