package scaler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// metricsAPIScaler GETs the trigger's url and reads the value at
// valueLocation in the body's format (json, xml, yaml or prometheus).
type metricsAPIScaler struct {
	cfg *scalers.MetricsAPIConfig
	src *httpSource
}

func newMetricsAPI(c *scalers.MetricsAPIConfig, deps Deps) (*metricsAPIScaler, error) {
	src, err := newHTTPSource(c.Type(), c.URL, c.Auth, c.UnsafeSSL, 0, deps)
	if err != nil {
		return nil, err
	}
	if c.AggregateFromKubeServiceEndpoints {
		return nil, src.errorf(ErrNotImplemented, "aggregateFromKubeServiceEndpoints is not supported by ebb yet")
	}
	switch c.Format {
	case "json", "xml", "yaml", "prometheus":
	default:
		return nil, src.errorf(ErrInvalidConfig, "format %q is not one of json, xml, yaml, prometheus", c.Format)
	}
	return &metricsAPIScaler{cfg: c, src: src}, nil
}

// PollTimeout is the HTTP client's timeout: one poll is one request.
func (s *metricsAPIScaler) PollTimeout() time.Duration { return s.src.pollTimeout() }

// Poll reads the value; Active is value > activationTargetValue, as KEDA.
func (s *metricsAPIScaler) Poll(ctx context.Context) (Reading, error) {
	body, err := s.src.get(ctx, s.cfg.URL, nil)
	if err != nil {
		return Reading{}, err
	}
	v, err := valueFromBody(body, s.cfg.ValueLocation, s.cfg.Format)
	if err != nil {
		var ve *valueError
		if errors.As(err, &ve) {
			return Reading{}, s.src.errorf(ErrBadResponse, "%s", ve.msg)
		}
		return Reading{}, s.src.errorf(ErrBadResponse, "%v", err)
	}
	return Reading{Value: v.q, Active: v.f > s.cfg.ActivationTargetValue}, nil
}

// Close releases the scaler's own idle connections, if it has its own
// transport; the operator's shared client is left alone.
func (s *metricsAPIScaler) Close() error {
	s.src.close()
	return nil
}

// valueError is a problem reading the value out of a body.
type valueError struct{ msg string }

func (e *valueError) Error() string { return e.msg }

func valueErrorf(format string, args ...any) error {
	return &valueError{msg: fmt.Sprintf(format, args...)}
}
