package scalers

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
)

// parseCase is one Parse call and what it must give.
type parseCase struct {
	trigger Trigger
	// wantErr, when set, must be a substring of the error; no error is
	// expected otherwise.
	wantErr string
	// wantSpec is the expected metric, compared with Quantity.Cmp;
	// wantTarget is the target quantity's String().
	wantSpec   *autoscalingv2.MetricSpec
	wantTarget string
	// wantWarnings are substrings that must each appear in a warning;
	// noWarnings asserts there are none.
	wantWarnings []string
	noWarnings   bool
	check        func(t *testing.T, c Config)
}

func trig(typ string, index int, md map[string]string) Trigger {
	return Trigger{Index: index, Type: typ, Metadata: md, Namespace: "shop", ScaledObjectName: "orders"}
}

func withAuth(t Trigger, a map[string]string) Trigger { t.AuthParams = a; return t }

func withMetricType(t Trigger, mt autoscalingv2.MetricTargetType) Trigger {
	t.MetricType = mt
	return t
}

// ext is an External metric spec without selector.
func ext(name string, tt autoscalingv2.MetricTargetType, q string) *autoscalingv2.MetricSpec {
	s := externalMetricSpec(name, tt, resource.MustParse(q))
	return &s
}

var quantityCmp = cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })

func targetOf(s autoscalingv2.MetricSpec) *autoscalingv2.MetricTarget {
	switch {
	case s.External != nil:
		return &s.External.Target
	case s.Resource != nil:
		return &s.Resource.Target
	case s.ContainerResource != nil:
		return &s.ContainerResource.Target
	}
	return nil
}

func runParseCases(t *testing.T, cases map[string]parseCase) {
	t.Helper()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg, warnings, err := Parse(tc.trigger)
			for _, w := range tc.wantWarnings {
				if !containsAny(warnings, w) {
					t.Errorf("warnings %q lack %q", warnings, w)
				}
			}
			if tc.noWarnings && len(warnings) > 0 {
				t.Errorf("unexpected warnings %q", warnings)
			}
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("Parse succeeded, want error containing %q", tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tc.wantErr)
				}
				var perr *Error
				if !errors.As(err, &perr) {
					t.Errorf("error %v is not an *Error", err)
				}
				if cfg != nil {
					t.Errorf("Parse returned a config with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if cfg.Type() != tc.trigger.Type {
				t.Errorf("Type() = %q, want %q", cfg.Type(), tc.trigger.Type)
			}
			if tc.wantSpec != nil {
				got, err := cfg.MetricSpec()
				if err != nil {
					t.Fatalf("MetricSpec: %v", err)
				}
				if diff := cmp.Diff(*tc.wantSpec, got, quantityCmp); diff != "" {
					t.Errorf("MetricSpec mismatch (-want +got):\n%s", diff)
				}
				if tc.wantTarget != "" {
					tg := targetOf(got)
					q := tg.AverageValue
					if q == nil {
						q = tg.Value
					}
					if q == nil || q.String() != tc.wantTarget {
						t.Errorf("target quantity %v, want %s", q, tc.wantTarget)
					}
				}
			}
			if tc.check != nil {
				tc.check(t, cfg)
			}
		})
	}
}

func containsAny(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func activation(t *testing.T, c Config, want float64) {
	t.Helper()
	a, ok := c.(Activator)
	if !ok {
		t.Fatalf("%T is not an Activator", c)
	}
	if got := a.ActivationThreshold(); got != want {
		t.Errorf("ActivationThreshold() = %v, want %v", got, want)
	}
}

type metricTargetType = autoscalingv2.MetricTargetType
