package scaler

import (
	"errors"
	"testing"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// build parses a trigger and builds its scaler, closed at the end of t.
func build(t *testing.T, typ string, meta, auth map[string]string, deps Deps) Scaler {
	t.Helper()
	s, err := tryBuild(typ, meta, auth, deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func tryBuild(typ string, meta, auth map[string]string, deps Deps) (Scaler, error) {
	cfg, _, err := scalers.Parse(scalers.Trigger{Type: typ, Metadata: meta, AuthParams: auth})
	if err != nil {
		return nil, err
	}
	return New(cfg, deps)
}

func checkKind(t *testing.T, err, kind error) {
	t.Helper()
	if kind == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, kind) {
		t.Fatalf("error %v: want it to wrap %v", err, kind)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not a *scaler.Error", err)
	}
}
