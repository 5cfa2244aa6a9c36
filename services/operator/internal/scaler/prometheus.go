package scaler

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/clock"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// prometheusScaler runs an instant query against the Prometheus HTTP API.
type prometheusScaler struct {
	cfg      *scalers.PrometheusConfig
	src      *httpSource
	clock    clock.PassiveClock
	base     string // <serverAddress>/api/v1/query?query=...
	extra    string // &namespace=...&k=v..., sorted
	headers  map[string]string
	zero     resource.Quantity
	nullable bool
}

func newPrometheus(c *scalers.PrometheusConfig, deps Deps) (*prometheusScaler, error) {
	timeout := time.Duration(c.TimeoutMilliseconds) * time.Millisecond
	src, err := newHTTPSource(c.Type(), c.ServerAddress, c.Auth, c.UnsafeSSL, timeout, deps)
	if err != nil {
		return nil, err
	}
	if c.AWSRegion != "" {
		return nil, src.errorf(ErrNotImplemented, "Amazon Managed Prometheus (awsRegion) is not supported by ebb yet")
	}
	// As KEDA: the query, then the evaluation time, then namespace, then
	// the queryParameters.
	base := strings.TrimSuffix(c.ServerAddress, "/") + "/api/v1/query?query=" + url.QueryEscape(c.Query)
	var extra strings.Builder
	if c.Namespace != "" {
		extra.WriteString("&namespace=" + url.QueryEscape(c.Namespace))
	}
	keys := make([]string, 0, len(c.QueryParameters))
	for k := range c.QueryParameters {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		extra.WriteString("&" + url.QueryEscape(k) + "=" + url.QueryEscape(c.QueryParameters[k]))
	}
	return &prometheusScaler{
		cfg:      c,
		src:      src,
		clock:    deps.Clock,
		base:     base,
		extra:    extra.String(),
		headers:  c.CustomHeaders,
		zero:     *resource.NewQuantity(0, resource.DecimalSI),
		nullable: c.IgnoreNullValues,
	}, nil
}

// promResponse is the body of /api/v1/query.
type promResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
}

// PollTimeout is the shorter of the trigger's timeout and the HTTP
// client's: one poll is one query.
func (s *prometheusScaler) PollTimeout() time.Duration { return s.src.pollTimeout() }

// Poll runs the query at the clock's time. As KEDA: an empty result is 0
// with ignoreNullValues (the default) and an error without it; more than
// one series is an error; an infinite value is 0 or an error likewise (ebb
// treats NaN the same way). A scalar result is read as well.
// Active is value > activationThreshold.
func (s *prometheusScaler) Poll(ctx context.Context) (Reading, error) {
	u := s.base + "&time=" + url.QueryEscape(s.clock.Now().UTC().Format(time.RFC3339)) + s.extra
	body, err := s.src.get(ctx, u, s.headers)
	if err != nil {
		return Reading{}, err
	}
	v, err := s.parse(body)
	if err != nil {
		return Reading{}, err
	}
	return Reading{Value: v.q, Active: v.f > s.cfg.Activation}, nil
}

func (s *prometheusScaler) parse(body []byte) (value, error) {
	var r promResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return value{}, s.src.errorf(ErrBadResponse, "the body is not a Prometheus query response: %v", err)
	}
	if r.Status != "" && r.Status != "success" {
		return value{}, s.src.errorf(ErrBadResponse, "query failed: %s: %s", r.ErrorType, truncate(r.Error, 256))
	}
	var raw []any
	switch r.Data.ResultType {
	case "vector":
		var samples []promSample
		if err := json.Unmarshal(r.Data.Result, &samples); err != nil {
			return value{}, s.src.errorf(ErrBadResponse, "the vector result is malformed: %v", err)
		}
		switch len(samples) {
		case 0:
			return s.null("the query returned no series")
		case 1:
		default:
			return value{}, s.src.errorf(ErrBadResponse, "the query returned %d series; it must return one", len(samples))
		}
		raw = samples[0].Value
	case "scalar":
		if err := json.Unmarshal(r.Data.Result, &raw); err != nil {
			return value{}, s.src.errorf(ErrBadResponse, "the scalar result is malformed: %v", err)
		}
	default:
		return value{}, s.src.errorf(ErrBadResponse, "result type %q is not supported; the query must return one series or a scalar", r.Data.ResultType)
	}
	switch len(raw) {
	case 0:
		return s.null("the series has no value")
	case 1:
		return value{}, s.src.errorf(ErrBadResponse, "the sample has no value")
	}
	str, ok := raw[1].(string)
	if !ok {
		return value{}, s.src.errorf(ErrBadResponse, "the sample value is not a string")
	}
	f, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return value{}, s.src.errorf(ErrBadResponse, "the sample value %q is not a number", truncate(str, 64))
	}
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return s.null(fmt.Sprintf("the query returned %s", str))
	}
	v, err := valueFromString(str)
	if err != nil {
		return value{}, s.src.errorf(ErrBadResponse, "the sample value %q: %v", truncate(str, 64), err)
	}
	return v, nil
}

// null is the answer to a query without a usable value: 0 with
// ignoreNullValues, an error without.
func (s *prometheusScaler) null(why string) (value, error) {
	if s.nullable {
		return value{q: s.zero.DeepCopy()}, nil
	}
	return value{}, s.src.errorf(ErrBadResponse, "%s and ignoreNullValues is false", why)
}

// Close releases the scaler's own idle connections, if any.
func (s *prometheusScaler) Close() error {
	s.src.close()
	return nil
}
