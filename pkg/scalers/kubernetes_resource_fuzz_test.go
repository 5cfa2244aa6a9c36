package scalers

import "testing"

// FuzzKubernetesResource parses kubernetes-resource triggers with fuzzed
// metadata: Parse must not panic, an error must name the trigger, and
// authentication parameters (kubernetes-resource reads none) never show.
func FuzzKubernetesResource(f *testing.F) {
	// Seeds: resourceKind, resourceName, key, format, valueLocation,
	// valueType, targetValue, activationTargetValue, an authentication
	// value, whether the trigger only feeds a scaling modifiers formula,
	// and whether secrets are marked.
	f.Add("ConfigMap", "task-count", "count", "", "", "", "10", "", "", false, false)
	f.Add("Secret", "metrics-data", "metrics", "json", "queue.pending", "int64", "20", "5", "pw", false, true)
	f.Add("ConfigMap", "app-metrics", "stats", "yaml", "application.workers.active", "quantity", "0.5", "0.25", "", false, false)
	f.Add("", "", "", "", "", "", "", "", "", false, false)
	f.Add("", "", "", "", "", "", "", "", "x", true, true)
	f.Add("Pod", "Bad/Name", "a key", "xml", "a.b", "string", "0", "NaN", "s", false, true)
	f.Add("configmap", "n", "k", "number", "path", "float64", "-1", "1,5", "s", true, true)
	f.Add("Secret", "n", "k", "json", "", "int64", "1e3", "+1", "s", false, true)
	f.Fuzz(func(t *testing.T, kind, name, key, format, location, valueType, target, activation, authValue string, asMetricSource, marked bool) {
		md := map[string]string{
			"resourceKind": kind, "resourceName": name, "key": key, "format": format, "valueLocation": location,
			"valueType": valueType, "targetValue": target, "activationTargetValue": activation,
		}
		ap := map[string]string{"resourceName": authValue, "key": authValue, "password": authValue}
		tr := Trigger{Index: 0, Type: "kubernetes-resource", Metadata: md, AuthParams: ap, Namespace: "shop", AsMetricSource: asMetricSource}
		checkFuzzedParse(t, tr, nil, marked)
	})
}
