package scaler

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A source answering a number with a huge decimal exponent once kept a
// poll busy for hours in resource.ParseQuantity, whose time grows with
// the square of the exponent; such values are now read as floats.
func TestHugeExponentsFromSources(t *testing.T) {
	huge := "1e-999999999"
	long := "0." + strings.Repeat("0", 5000) + "1"
	cases := map[string]struct {
		body, typ string
		meta      map[string]string
		want      string
	}{
		"metrics-api JSON number": {body: `{"v": ` + huge + `}`, typ: "metrics-api", want: "0"},
		"metrics-api JSON string": {body: `{"v": "` + huge + `"}`, typ: "metrics-api", want: "0"},
		"metrics-api long string": {body: `{"v": "` + long + `"}`, typ: "metrics-api", want: "0"},
		"metrics-api large":       {body: `{"v": "2.5e3"}`, typ: "metrics-api", want: "2500"},
		"prometheus sample": {
			body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"` + huge + `"]}]}}`,
			typ:  "prometheus", want: "0",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, srv := newRecorder(t, 200, tc.body)
			meta := map[string]string{"url": srv.URL, "valueLocation": "v", "targetValue": "1"}
			if tc.typ == "prometheus" {
				meta = map[string]string{"serverAddress": srv.URL, "query": "q", "threshold": "1"}
			}
			s := build(t, tc.typ, meta, nil, Deps{})
			start := time.Now()
			r, err := s.Poll(t.Context())
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("poll took %v", d)
			}
			if err != nil {
				t.Fatalf("poll: %v", err)
			}
			if got := fmt.Sprint(r.Value.String()); got != tc.want || r.Active != (tc.want != "0") {
				t.Errorf("got %s active=%v, want %s", got, r.Active, tc.want)
			}
		})
	}
}
