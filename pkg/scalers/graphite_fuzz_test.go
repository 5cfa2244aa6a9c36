package scalers

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzGraphite parses graphite triggers with fuzzed metadata and
// authentication parameters: Parse must not panic, an error must name the
// trigger, and neither errors nor warnings may show an authentication
// value.
func FuzzGraphite(f *testing.F) {
	// Seeds: serverAddress, query, queryTime, threshold,
	// activationThreshold, authMode, username, password.
	f.Add("http://graphite:8080", "sumSeries(q.*)", "-1min", "", "", "", "", "")
	f.Add("https://g", "q", "-5s", "0.75", "2", "basic", "u", "p")
	f.Add("", "", "", "", "", "", "", "")
	f.Add("g", "q", "t", "x", "1,5", "bearer", "", "p")
	f.Add("g", "q", "t", "NaN", "+1", "basic", "", "")
	f.Add("g", "q", "t", "1e3", "-1", "", "u", "")
	f.Fuzz(func(t *testing.T, server, query, queryTime, threshold, activation, authMode, username, password string) {
		const mark = "GRAPHITESECRET"
		md := map[string]string{
			"serverAddress": server, "query": query, "queryTime": queryTime, "threshold": threshold,
			"activationThreshold": activation, "authMode": authMode,
		}
		for k, v := range md {
			md[k] = strings.ReplaceAll(v, mark, strings.ToLower(mark))
		}
		ap := map[string]string{"username": mark + username, "password": mark + password}
		tr := Trigger{Index: 1, Type: "graphite", Metadata: md, AuthParams: ap}
		cfg, warnings, err := Parse(tr)
		prefix := "trigger " + strconv.Itoa(tr.Index) + " (graphite): "
		texts := warnings
		if err != nil {
			if cfg != nil {
				t.Fatalf("Parse returned a config with error %v", err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, prefix) {
					t.Fatalf("error line %q does not name the trigger", line)
				}
			}
			texts = append(texts, err.Error())
		} else if _, err := cfg.MetricSpec(); err != nil {
			t.Fatalf("MetricSpec: %v", err)
		}
		for _, s := range texts {
			if !strings.HasPrefix(s, prefix) {
				t.Fatalf("%q does not name the trigger", s)
			}
			if strings.Contains(s, mark) {
				t.Fatalf("%q reveals a secret", s)
			}
		}
	})
}
