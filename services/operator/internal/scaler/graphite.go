package scaler

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// graphiteScaler reads the last value of a Graphite render query.
type graphiteScaler struct {
	cfg *scalers.GraphiteConfig
	src *httpSource
	url string // <serverAddress>/render?from=...&target=...&format=json
}

func newGraphite(c *scalers.GraphiteConfig, deps Deps) (*graphiteScaler, error) {
	// Basic authentication when the trigger has credentials: KEDA always
	// sets the header, with empty credentials when there are none; ebb
	// leaves it out then.
	auth := &scalers.HTTPAuth{}
	if c.AuthMode == scalers.AuthModeBasic || c.Username != "" || c.Password != "" {
		auth = &scalers.HTTPAuth{Modes: []string{scalers.AuthModeBasic}, Username: c.Username, Password: c.Password}
	}
	src, err := newHTTPSource(c.Type(), c.ServerAddress, auth, false, 0, deps)
	if err != nil {
		return nil, err
	}
	// As KEDA: from, then target, then format.
	u := strings.TrimSuffix(c.ServerAddress, "/") + "/render?from=" + url.QueryEscape(c.QueryTime) +
		"&target=" + url.QueryEscape(c.Query) + "&format=json"
	return &graphiteScaler{cfg: c, src: src, url: u}, nil
}

// graphiteSeries is one series of /render?format=json: datapoints are
// [value, timestamp] pairs, value null where the series has no point.
type graphiteSeries struct {
	Target     string              `json:"target"`
	Datapoints [][]json.RawMessage `json:"datapoints"`
}

// PollTimeout is the HTTP client's timeout: one poll is one request.
func (s *graphiteScaler) PollTimeout() time.Duration { return s.src.pollTimeout() }

// Poll runs the render query. As KEDA: no series, or a series without
// datapoints, is 0; more than one series is an error; the value is the
// last non-null datapoint of the series, and a series of nulls only is an
// error. Active is value > activationThreshold.
func (s *graphiteScaler) Poll(ctx context.Context) (Reading, error) {
	body, err := s.src.get(ctx, s.url, nil)
	if err != nil {
		return Reading{}, err
	}
	var series []graphiteSeries
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&series); err != nil {
		return Reading{}, s.src.errorf(ErrBadResponse, "the body is not a Graphite render response%s", bodySnippet(body))
	}
	switch len(series) {
	case 0:
		return s.reading(value{q: *resource.NewQuantity(0, resource.DecimalSI)})
	case 1:
	default:
		return Reading{}, s.src.errorf(ErrBadResponse, "the query returned %d series; it must return one", len(series))
	}
	points := series[0].Datapoints
	if len(points) == 0 {
		return s.reading(value{q: *resource.NewQuantity(0, resource.DecimalSI)})
	}
	for i := len(points) - 1; i >= 0; i-- {
		if len(points[i]) == 0 {
			return Reading{}, s.src.errorf(ErrBadResponse, "datapoint %d of the series is empty", i)
		}
		raw := bytes.TrimSpace(points[i][0])
		if string(raw) == "null" {
			continue
		}
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return Reading{}, s.src.errorf(ErrBadResponse, "datapoint %d of the series is not a number: %s", i, truncate(string(raw), 64))
		}
		v, err := valueFromString(n.String())
		if err != nil {
			return Reading{}, s.src.errorf(ErrBadResponse, "datapoint %d of the series, %s: %v", i, n, err)
		}
		return s.reading(v)
	}
	return Reading{}, s.src.errorf(ErrBadResponse, "the series has only null datapoints from %s on; try a longer queryTime or check the query", s.cfg.QueryTime)
}

func (s *graphiteScaler) reading(v value) (Reading, error) {
	return Reading{Value: v.q, Active: v.f > s.cfg.Activation}, nil
}

// Close releases the scaler's own idle connections, if any.
func (s *graphiteScaler) Close() error {
	s.src.close()
	return nil
}
