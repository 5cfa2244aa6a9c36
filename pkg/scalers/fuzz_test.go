package scalers

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// This file fuzzes the parsers of the first trigger types (cpu, memory,
// cron, metrics-api, prometheus, the redis and redis streams families,
// postgresql, kubernetes-workload, external and external-push). Each
// Fuzz<Type> builds a trigger from fuzzed metadata and authentication
// parameters and hands it to checkParseFuzz, which asserts what every
// parser promises (see its comment). The f.Add seeds, valid and invalid,
// run in every `go test`; run one fuzzer with
//
//	go test -run '^$' -fuzz '^FuzzCron$' -fuzztime 20s .

// Marks of the fuzzers in this file. In a marked run, every
// authentication value and every value of a metadata key that carries a
// secret starts with parseFuzzMark, and with parseFuzzSecretMark (which
// contains parseFuzzMark) when it is a secret proper: neither may show in
// an error or a warning, and parseFuzzSecretMark may not show when the
// config is printed either (the config keeps plain settings such as a user
// name in clear).
const (
	parseFuzzMark       = "FZMARK"
	parseFuzzSecretMark = "FZMARK-SECRET"
)

// parseFuzzSecrets are the keys whose values are secrets wherever they
// are given (metadata, environment or TriggerAuthentication).
var parseFuzzSecrets = map[string]bool{
	"password": true, "sentinelPassword": true, "bearerToken": true, "token": true, "cert": true, "Cert": true,
	"key": true, "ca": true, "keyPassword": true, "clientSecret": true, "customAuthValue": true, "apiKey": true,
	"connection": true, "caCert": true, "tlsClientCert": true, "tlsClientKey": true,
}

// parseFuzzSeparators are where parsers split values: the mark follows
// each, so a part of a secret cut at one shows the mark too.
var parseFuzzSeparators = []string{",", "=", " ", ";", "&", ":", "/", "@", "\n", "\t"}

func markFuzzValue(mark, v string) string {
	for _, sep := range parseFuzzSeparators {
		v = strings.ReplaceAll(v, sep, sep+mark)
	}
	return mark + v
}

// unmarkFuzz removes the mark from a value that is not secret.
func unmarkFuzz(v string) string {
	return strings.ReplaceAll(v, parseFuzzMark, strings.ToLower(parseFuzzMark))
}

// fuzzPairs decodes "key=value" lines into a map; lines without "=" or
// with an empty key are ignored.
func fuzzPairs(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && k != "" {
			m[k] = v
		}
	}
	return m
}

// setFuzzSource puts v under key in md: literally (src 0), resolved from the
// environment (src 1: the caller keeps <key>FromEnv and the value under
// key), or, for src 2, in ap (the TriggerAuthentication).
func setFuzzSource(md, ap map[string]string, key, v string, src uint8) {
	switch src % 3 {
	case 0:
		md[key] = v
	case 1:
		md[key+"FromEnv"] = "EBB_FUZZ_VAR"
		md[key] = v
	default:
		ap[key] = v
	}
}

// checkParseFuzz runs Parse on tr and checks:
//
//   - no panic (the fuzzer reports it), and Parse changes neither map and
//     gives the same answer twice;
//   - every line of an error and every warning names the trigger
//     ("trigger <index> (<type>): "), and an error comes without a config;
//   - a config has the trigger's type, a metric spec named s<index>-...
//     (an external scaler's comes from the scaler), and an activation
//     threshold that is a number;
//   - when marked, see parseFuzzMark: secretMeta lists metadata keys that
//     carry a secret besides those of parseFuzzSecrets.
func checkParseFuzz(t *testing.T, tr Trigger, secretMeta []string, marked bool) {
	t.Helper()
	if marked {
		secret := map[string]bool{}
		for _, k := range secretMeta {
			secret[k] = true
		}
		md := make(map[string]string, len(tr.Metadata))
		for k, v := range tr.Metadata {
			k = unmarkFuzz(k)
			switch {
			case secret[k] || parseFuzzSecrets[k]:
				md[k] = markFuzzValue(parseFuzzSecretMark, v)
			default:
				md[k] = unmarkFuzz(v)
			}
		}
		tr.Metadata = md
		for k, v := range tr.AuthParams {
			mark := parseFuzzMark
			if parseFuzzSecrets[k] {
				mark = parseFuzzSecretMark
			}
			tr.AuthParams[k] = markFuzzValue(mark, v)
		}
	}
	mdBefore, apBefore := clone(tr.Metadata), clone(tr.AuthParams)

	cfg, warnings, err := Parse(tr)

	if !reflect.DeepEqual(mdBefore, clone(tr.Metadata)) || !reflect.DeepEqual(apBefore, clone(tr.AuthParams)) {
		t.Fatal("Parse changed the trigger's metadata or authentication parameters")
	}
	cfg2, warnings2, err2 := Parse(tr)
	if fmt.Sprint(err) != fmt.Sprint(err2) || !reflect.DeepEqual(warnings, warnings2) || (cfg == nil) != (cfg2 == nil) {
		t.Fatalf("Parse is not deterministic: %v %q, then %v %q", err, warnings, err2, warnings2)
	}

	prefix := "trigger " + strconv.Itoa(tr.Index) + " (" + tr.Type + "): "
	for _, w := range warnings {
		if !strings.HasPrefix(w, prefix) || strings.ContainsAny(w, "\r\n") {
			t.Fatalf("warning %q does not name the trigger on one line", w)
		}
	}
	texts := append([]string(nil), warnings...)
	if err != nil {
		if cfg != nil {
			t.Fatalf("Parse returned a config with error %v", err)
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, prefix) || strings.Contains(line, "\r") {
				t.Fatalf("error line %q does not name the trigger (%q)", line, err)
			}
		}
		var perr *Error
		if !errors.As(err, &perr) {
			t.Fatalf("error %v holds no *Error", err)
		}
		texts = append(texts, err.Error())
	} else {
		checkFuzzedConfig(t, tr, cfg)
	}

	if !marked {
		return
	}
	for _, s := range texts {
		if strings.Contains(s, parseFuzzMark) {
			t.Fatalf("%q shows an authentication value or a secret", s)
		}
	}
	if cfg != nil {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			if s := fmt.Sprintf(verb, cfg); strings.Contains(s, parseFuzzSecretMark) {
				t.Fatalf("%s of the config shows a secret: %s", verb, s)
			}
		}
	}
}

func checkFuzzedConfig(t *testing.T, tr Trigger, cfg Config) {
	t.Helper()
	if cfg == nil {
		t.Fatal("Parse returned neither a config nor an error")
	}
	if cfg.Type() != tr.Type {
		t.Fatalf("Type() = %q, want %q", cfg.Type(), tr.Type)
	}
	spec, err := cfg.MetricSpec()
	if ec, ok := cfg.(*ExternalConfig); ok {
		if !errors.Is(err, ErrMetricSpecFromScaler) {
			t.Fatalf("external MetricSpec: %v", err)
		}
		spec = ec.MetricSpecFromScaler("m", 3, 0)
	} else if err != nil {
		t.Fatalf("MetricSpec: %v", err)
	}
	switch {
	case spec.External != nil:
		if want := "s" + strconv.Itoa(tr.Index) + "-"; !strings.HasPrefix(spec.External.Metric.Name, want) {
			t.Fatalf("metric name %q does not start with %q", spec.External.Metric.Name, want)
		}
		if spec.External.Target.AverageValue == nil && spec.External.Target.Value == nil {
			t.Fatalf("metric %q has no target", spec.External.Metric.Name)
		}
	case spec.Resource == nil && spec.ContainerResource == nil:
		t.Fatalf("metric spec %+v has no source", spec)
	}
	if a, ok := cfg.(Activator); ok {
		if v := a.ActivationThreshold(); math.IsNaN(v) {
			t.Fatalf("activation threshold %v", v)
		}
	}
}

func FuzzCPUMemory(f *testing.F) {
	// Seeds: index, memory (else cpu), metricType, value, activationValue,
	// containerName, the deprecated type, extra metadata lines.
	f.Add(uint8(0), false, "Utilization", "50", "", "", "", "")
	f.Add(uint8(1), true, "AverageValue", "512Mi", "100Mi", "app", "", "")
	f.Add(uint8(0), false, "", "60", "10", "", "Utilization", "")
	f.Add(uint8(3), true, "Utilization", "75", "", "", "AverageValue", "unknown=1")
	f.Add(uint8(0), false, "Value", "50", "", "", "", "")
	f.Add(uint8(0), false, "Utilization", "50%", "1.5", "", "", "")
	f.Add(uint8(0), true, "AverageValue", "1e1000", "-1Ki", "c", "", "")
	f.Add(uint8(0), false, "", "", "", "", "", "")
	// resource.ParseQuantity takes hours on a large negative exponent:
	// such quantities are refused before it is called (ParseQuantity).
	f.Add(uint8(0), true, "AverageValue", "1e-999999999", "9e999999999", "", "", "")
	f.Add(uint8(0), true, "AverageValue", "1E+100", "1Ei", "", "", "")
	f.Fuzz(func(t *testing.T, index uint8, memory bool, mt, value, activation, containerName, typ, extra string) {
		md := fuzzPairs(extra)
		md["value"], md["activationValue"], md["containerName"], md["type"] = value, activation, containerName, typ
		tr := Trigger{Index: int(index), Type: "cpu", Metadata: md, MetricType: metricType(mt)}
		if memory {
			tr.Type = "memory"
		}
		checkParseFuzz(t, tr, nil, false)
	})
}

func FuzzCron(f *testing.F) {
	// Seeds: index, metricType, timezone, start, end, desiredReplicas,
	// extra metadata lines.
	f.Add(uint8(0), "", "Europe/Paris", "0 8 * * 1-5", "0 18 * * 1-5", "4", "")
	f.Add(uint8(2), "Value", "UTC", "*/5 * * * *", "1-59/5 * * * *", "1", "")
	f.Add(uint8(0), "", "Mars/Olympus", "0 8 * * *", "0 9 * * *", "2", "x=y")
	f.Add(uint8(0), "", "UTC", "@daily", "0 8 * * * *", "0", "")
	f.Add(uint8(0), "Utilization", "", "0 8 * * *", "0 8 * * *", "x", "")
	f.Add(uint8(0), "", "UTC", "TZ=Asia/Tokyo 0 8 * * *", "CRON_TZ=UTC 0 9 * * *", "3", "")
	// A TZ= prefix with nothing after it made the cron library panic.
	f.Add(uint8(0), "", "UTC", "TZ=UTC", "CRON_TZ=UTC\t0 9 * * *", "3", "")
	f.Add(uint8(0), "", "UTC", "TZ=a\nb 0 8 * * *", "0 70 * * *", "1e3", "")
	f.Fuzz(func(t *testing.T, index uint8, mt, timezone, start, end, desired, extra string) {
		md := fuzzPairs(extra)
		md["timezone"], md["start"], md["end"], md["desiredReplicas"] = timezone, start, end, desired
		checkParseFuzz(t, Trigger{Index: int(index), Type: "cron", Metadata: md, MetricType: metricType(mt)}, nil, false)
	})
}

func FuzzMetricsAPI(f *testing.F) {
	// Seeds: index, metricType, url, valueLocation, targetValue,
	// activationTargetValue, format, unsafeSsl,
	// aggregateFromKubeServiceEndpoints, aggregationType, authModes,
	// apiKey (metadata), extra metadata lines, authentication lines,
	// whether the trigger only feeds a formula, marked.
	f.Add(uint8(0), "", "http://api:8080/stats", "queue.length", "10", "", "", "", "", "", "", "", "", "", false, false)
	f.Add(uint8(1), "Value", "https://api/metrics", "jobs", "0.75", "2", "prometheus", "true", "true", "sum", "bearer", "", "", "bearerToken=tok", false, true)
	f.Add(uint8(0), "", "https://api/x", "a.b", "5", "", "json", "", "", "max", "apiKey", "k3y", "keyParamName=X-KEY\nmethod=query", "", false, true)
	f.Add(uint8(0), "", "https://api/x", "a.b", "5", "", "xml", "false", "", "", "", "", "", "authModes=oauth,tls\noauthTokenURI=https://t\nclientID=c\nclientSecret=s\ncert=C\nkey=K\nscopes=a,b\nendpointParams=a=1&b=2", false, false)
	f.Add(uint8(0), "", "", "", "0", "x", "csv", "yes", "1", "median", "basic,bearer", "", "", "password=p\ntoken=t", false, true)
	f.Add(uint8(0), "", "u", "v", "", "", "", "", "", "", "custom,basic", "", "", "customAuthHeader=H\nendpointParams=%zz\nmethod=body", true, true)
	f.Add(uint8(0), "Utilization", "u", "v", "1", "NaN", "yaml", "", "", "", "apiKey,nope", "", "", "", false, false)
	f.Fuzz(func(t *testing.T, index uint8, mt, url, valueLocation, target, activation, format, unsafeSSL, aggregate, aggregation,
		authModes, apiKey, extra, auth string, asMetricSource, marked bool) {
		md := fuzzPairs(extra)
		md["url"], md["valueLocation"], md["targetValue"], md["activationTargetValue"] = url, valueLocation, target, activation
		md["format"], md["unsafeSsl"], md["aggregateFromKubeServiceEndpoints"], md["aggregationType"] = format, unsafeSSL, aggregate, aggregation
		md["authModes"], md["apiKey"] = authModes, apiKey
		tr := Trigger{Index: int(index), Type: "metrics-api", Metadata: md, AuthParams: fuzzPairs(auth), MetricType: metricType(mt), AsMetricSource: asMetricSource}
		checkParseFuzz(t, tr, nil, marked)
	})
}

func FuzzPrometheus(f *testing.F) {
	// Seeds: index, metricType, serverAddress, query, threshold,
	// activationThreshold, namespace, queryParameters, customHeaders,
	// ignoreNullValues, unsafeSsl, timeout, authModes, extra metadata
	// lines, authentication lines, marked.
	f.Add(uint8(0), "", "http://prom:9090", "sum(rate(x[1m]))", "10", "", "", "", "", "", "", "", "", "", "", false)
	f.Add(uint8(4), "Value", "https://prom", "up", "0.5", "0.1", "team-a", "a=1,b=2", "X-Scope=t1", "false", "true", "3000", "basic", "awsRegion=eu-west-1", "username=u\npassword=p", true)
	f.Add(uint8(0), "", "https://prom", "up", "1", "", "", "", "", "", "", "", "", "cloud=azure", "authModes=bearer\nbearerToken=t\nawsRegion=r", false)
	f.Add(uint8(0), "", "https://prom", "up", "1", "", "", "", "", "", "", "", "tls", "", "cert=C\nkey=K\nca=A", true)
	f.Add(uint8(0), "", "", "", "x", "y", "", "a", "b=1,c", "maybe", "1", "-5", "bearer,basic", "", "authModes=digest", true)
	f.Add(uint8(0), "", "s", "q", "1e400", "", "", "=", ",", "", "", "1.5", "oauth", "", "oauthTokenURI=u\nclientSecret=s", true)
	f.Add(uint8(0), "Utilization", "s", "q", "null", "", "", "", "", "", "", "99999999999999999999", "apiKey", "apiKey=k", "method=query\nkeyParamName=k", false)
	f.Fuzz(func(t *testing.T, index uint8, mt, server, query, threshold, activation, namespace, queryParameters, customHeaders,
		ignoreNull, unsafeSSL, timeout, authModes, extra, auth string, marked bool) {
		md := fuzzPairs(extra)
		md["serverAddress"], md["query"], md["threshold"], md["activationThreshold"] = server, query, threshold, activation
		md["namespace"], md["queryParameters"], md["customHeaders"], md["ignoreNullValues"] = namespace, queryParameters, customHeaders, ignoreNull
		md["unsafeSsl"], md["timeout"], md["authModes"] = unsafeSSL, timeout, authModes
		tr := Trigger{Index: int(index), Type: "prometheus", Metadata: md, AuthParams: fuzzPairs(auth), MetricType: metricType(mt)}
		checkParseFuzz(t, tr, nil, marked)
	})
}

var redisFuzzTypes = [...]string{"redis", "redis-cluster", "redis-sentinel"}

func FuzzRedis(f *testing.F) {
	// Seeds: index, type (redis, redis-cluster, redis-sentinel by
	// modulo), metricType, listName, listLength, activationListLength,
	// databaseIndex, address (from the metadata, the environment or the
	// TriggerAuthentication by addressFrom), password (likewise), extra
	// metadata lines, authentication lines, marked.
	f.Add(uint8(0), uint8(0), "", "jobs", "", "", "", "redis:6379", uint8(0), "pw", uint8(2), "", "", false)
	f.Add(uint8(1), uint8(1), "Value", "queue:jobs.high", "20", "2", "0", "a:1, b:2,c:3", uint8(2), "pw", uint8(1), "enableTLS=true\nunsafeSsl=true", "Cert=C\nkey=K\nca=A", true)
	f.Add(uint8(0), uint8(2), "", "jobs", "5", "0", "1", "s1:26379,s2:26379", uint8(1), "pw", uint8(0), "sentinelMaster=mymaster\nsentinelPassword=sp\nusername=u", "sentinelUsername=su\ntls=enable", false)
	f.Add(uint8(0), uint8(0), "", "l", "", "", "", "", uint8(0), "", uint8(0), "hosts=a,b\nports=1,2", "", false)
	f.Add(uint8(0), uint8(0), "", "l", "", "", "", "", uint8(0), "", uint8(2), "host=a\nports=1,2", "password=p\nkeyPassword=kp", true)
	f.Add(uint8(0), uint8(1), "Utilization", "", "x", "1.5", "-1", " , ", uint8(2), "p w", uint8(0), "enableTLS=yes", "tls=on", true)
	f.Add(uint8(0), uint8(2), "", "l", "null", "1e3", "99999999999999999999", "r:1", uint8(0), "p", uint8(1), "enableTLS=true", "tls=enable", true)
	f.Fuzz(func(t *testing.T, index, mode uint8, mt, listName, listLength, activation, database, address string, addressFrom uint8,
		password string, passwordFrom uint8, extra, auth string, marked bool) {
		md, ap := fuzzPairs(extra), fuzzPairs(auth)
		md["listName"], md["listLength"], md["activationListLength"], md["databaseIndex"] = listName, listLength, activation, database
		setFuzzSource(md, ap, "address", address, addressFrom)
		setFuzzSource(md, ap, "password", password, passwordFrom)
		tr := Trigger{Index: int(index), Type: redisFuzzTypes[int(mode)%len(redisFuzzTypes)], Metadata: md, AuthParams: ap, MetricType: metricType(mt)}
		checkParseFuzz(t, tr, nil, marked)
	})
}

var redisStreamsFuzzTypes = [...]string{"redis-streams", "redis-cluster-streams", "redis-sentinel-streams"}

func FuzzRedisStreams(f *testing.F) {
	// Seeds: index, type (redis-streams, redis-cluster-streams,
	// redis-sentinel-streams by modulo), metricType, stream,
	// consumerGroup, pendingEntriesCount, streamLength, lagCount,
	// activationLagCount, databaseIndex, address, extra metadata lines,
	// authentication lines, marked.
	f.Add(uint8(0), uint8(0), "", "events", "", "", "", "", "", "", "redis:6379", "", "", false)
	f.Add(uint8(2), uint8(0), "Value", "orders.v1", "workers", "10", "", "", "2", "1", "redis:6379", "", "password=p", true)
	f.Add(uint8(0), uint8(1), "", "events", "workers", "", "", "7", "1", "", "a:1,b:2", "enableTLS=true", "password=p\nca=A", true)
	f.Add(uint8(0), uint8(2), "", "events", "", "3", "8", "0", "", "", "s:26379", "sentinelMaster=m\nsentinelPasswordFromEnv=SP\nsentinelPassword=sp", "", true)
	f.Add(uint8(0), uint8(0), "", "", "g", "x", "1.5", "-1", "null", "-2", "", "passwordFromEnv=P\npassword=p", "tls=maybe", true)
	f.Add(uint8(0), uint8(1), "Utilization", "s", "g", "0", "0", "0", "0", "0", "h:1", "lagCount=", "", false)
	f.Fuzz(func(t *testing.T, index, mode uint8, mt, stream, group, pending, length, lag, activation, database, address, extra, auth string, marked bool) {
		md := fuzzPairs(extra)
		md["stream"], md["consumerGroup"], md["pendingEntriesCount"], md["streamLength"] = stream, group, pending, length
		md["lagCount"], md["activationLagCount"], md["databaseIndex"], md["address"] = lag, activation, database, address
		tr := Trigger{Index: int(index), Type: redisStreamsFuzzTypes[int(mode)%len(redisStreamsFuzzTypes)], Metadata: md, AuthParams: fuzzPairs(auth), MetricType: metricType(mt)}
		checkParseFuzz(t, tr, nil, marked)
	})
}

func FuzzPostgreSQL(f *testing.F) {
	// Seeds: index, metricType, query, targetQueryValue,
	// activationTargetQueryValue, connection and password (each from the
	// metadata, the environment or the TriggerAuthentication), extra
	// metadata lines, authentication lines, whether the trigger only feeds
	// a formula, marked.
	f.Add(uint8(0), "", "SELECT count(*) FROM jobs", "5", "", "postgresql://u:p@db/shop", uint8(2), "", uint8(2), "", "", false, false)
	f.Add(uint8(1), "Value", "SELECT 1", "0.5", "1", "host=db user=u password='a b'", uint8(1), "", uint8(2), "", "", false, true)
	f.Add(uint8(0), "", "SELECT 1", "2", "", "", uint8(2), "p w'x", uint8(1), "host=db\nport=5432\nuserName=u\ndbName=shop\nsslmode=disable", "", false, true)
	f.Add(uint8(0), "", "SELECT 1", "2", "", "", uint8(2), "pw", uint8(2), "", "host=db\nport=5432\nuserName=u\ndbName=d b\nsslmode=require", false, true)
	f.Add(uint8(0), "", "SELECT 1", "2", "", "postgresql://x", uint8(0), "pw", uint8(0), "", "", false, true)
	f.Add(uint8(0), "Utilization", "", "0", "x", "", uint8(2), "", uint8(2), "host=h", "port=p", false, true)
	f.Add(uint8(0), "", "q", "", "", "c", uint8(2), "", uint8(2), "", "", true, true)
	f.Fuzz(func(t *testing.T, index uint8, mt, query, target, activation, connection string, connectionFrom uint8,
		password string, passwordFrom uint8, extra, auth string, asMetricSource, marked bool) {
		md, ap := fuzzPairs(extra), fuzzPairs(auth)
		md["query"], md["targetQueryValue"], md["activationTargetQueryValue"] = query, target, activation
		setFuzzSource(md, ap, "connection", connection, connectionFrom)
		setFuzzSource(md, ap, "password", password, passwordFrom)
		tr := Trigger{Index: int(index), Type: "postgresql", Metadata: md, AuthParams: ap, MetricType: metricType(mt), AsMetricSource: asMetricSource}
		checkParseFuzz(t, tr, nil, marked)
	})
}

func FuzzKubernetesWorkload(f *testing.F) {
	// Seeds: index, metricType, podSelector, value, activationValue,
	// namespace, extra metadata lines, whether the trigger only feeds a
	// formula.
	f.Add(uint8(0), "", "app=worker", "2", "", "", "", false)
	f.Add(uint8(1), "Value", "app in (a,b),tier!=web,!legacy", "0.5", "1", "*", "", false)
	f.Add(uint8(0), "", "app=x", "1", "", "other", "x=y", false)
	f.Add(uint8(0), "", "app==x,,", "0", "x", "", "", false)
	f.Add(uint8(0), "Utilization", "app=(", "-1", "", "", "", true)
	f.Add(uint8(0), "", "a\nb=c", "", "", "", "", true)
	f.Fuzz(func(t *testing.T, index uint8, mt, selector, value, activation, namespace, extra string, asMetricSource bool) {
		md := fuzzPairs(extra)
		md["podSelector"], md["value"], md["activationValue"], md["namespace"] = selector, value, activation, namespace
		tr := Trigger{Index: int(index), Type: "kubernetes-workload", Metadata: md, MetricType: metricType(mt),
			Namespace: "shop", ScaledObjectName: "orders", AsMetricSource: asMetricSource}
		checkParseFuzz(t, tr, nil, false)
	})
}

func FuzzExternal(f *testing.F) {
	// Seeds: index, push (external-push, else external), metricType,
	// scalerAddress, enableTLS, unsafeSsl, tlsCertFile, a key resolved
	// from the environment and its value, extra metadata lines,
	// authentication lines, marked.
	f.Add(uint8(0), false, "", "scaler:9090", "", "", "", "", "", "queue=jobs", "", false)
	f.Add(uint8(1), true, "Value", "scaler.ns.svc:443", "true", "false", "/certs/ca.pem", "token", "t0k", "a=b", "caCert=CA\ntlsClientCert=C\ntlsClientKey=K", true)
	f.Add(uint8(0), false, "", "s:1", "true", "", "", "password", "pw", "passwordFromEnv=", "", true)
	f.Add(uint8(0), true, "Utilization", "", "yes", "1", "", "", "", "FromEnv=x\nx=y", "caCert=", true)
	f.Fuzz(func(t *testing.T, index uint8, push bool, mt, address, enableTLS, unsafeSSL, certFile, envKey, envVal, extra, auth string, marked bool) {
		md := fuzzPairs(extra)
		md["scalerAddress"], md["enableTLS"], md["unsafeSsl"], md["tlsCertFile"] = address, enableTLS, unsafeSSL, certFile
		var secretMeta []string
		if envKey != "" {
			switch envKey {
			case "scalerAddress", "enableTLS", "unsafeSsl", "tlsCertFile":
				envKey = "x" + envKey // settings ebb reads, not secrets
			}
			md[envKey+"FromEnv"], md[envKey] = "EBB_FUZZ_VAR", envVal
			// The resolved value is sent to the scaler; it may be a secret.
			secretMeta = append(secretMeta, envKey)
		}
		tr := Trigger{Index: int(index), Type: "external", Metadata: md, AuthParams: fuzzPairs(auth), MetricType: metricType(mt),
			Namespace: "shop", ScaledObjectName: "orders"}
		if push {
			tr.Type = "external-push"
		}
		checkParseFuzz(t, tr, secretMeta, marked)
	})
}
