package formula

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
)

func TestVariables(t *testing.T) {
	got := Variables([]v1alpha1.ScaleTrigger{
		{Type: "redis", Name: "queue"},
		{Type: "cpu", Name: "cpu_load"},
		{Type: "memory", Name: "mem"},
		{Type: "prometheus"},
		{Type: "metrics-api", Name: "api"},
		{Type: "cron", Name: "queue"},
	})
	if want := []string{"queue", "api"}; !slices.Equal(got, want) {
		t.Errorf("Variables() = %q, want %q", got, want)
	}
}

func TestCompile(t *testing.T) {
	names := []string{"a", "b", "trig_one"}
	tests := map[string]struct {
		formula string
		wantErr string // empty: compiles
	}{
		"sum":                         {formula: "a + b"},
		"average":                     {formula: "(a + b + trig_one) / 3"},
		"ternary of numbers":          {formula: "a > 5 ? 10 : 0"},
		"nil coalescing":              {formula: "a ?? b ?? 5"},
		"builtins":                    {formula: "max(a, b) + ceil(trig_one / 2)"},
		"integer result":              {formula: "int(a)"},
		"constant":                    {formula: "42"},
		"infinite with ones admitted": {formula: "1 / (a - b)"},
		"empty":                       {formula: "  ", wantErr: "empty"},
		"does not parse":              {formula: "a +", wantErr: "does not compile"},
		"unknown name":                {formula: "a + c", wantErr: "unknown name c"},
		"cpu trigger name":            {formula: "a + cpu_load", wantErr: "unknown name cpu_load"},
		"boolean":                     {formula: "a > b", wantErr: "gives a bool"},
		"string":                      {formula: "'x'", wantErr: "gives a string"},
		"list":                        {formula: "[a, b]", wantErr: "not a number"},
		"nil":                         {formula: "nil", wantErr: "no value"},
		"fails with ones":             {formula: "int('x' + string(a))", wantErr: "with every trigger at 1"},
		"dynamic non-number":          {formula: "a == 1 ? 'x' : a", wantErr: "not a number"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := Compile(tc.formula, names)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Compile(%q) = %v, want no error", tc.formula, err)
				}
				if p.String() != tc.formula || !slices.Equal(p.Variables(), names) {
					t.Errorf("program = %q over %q", p.String(), p.Variables())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Compile(%q) = %v, want an error containing %q", tc.formula, err, tc.wantErr)
			}
		})
	}
}

func TestEval(t *testing.T) {
	names := []string{"a", "b"}
	tests := map[string]struct {
		formula string
		values  map[string]float64
		want    float64
		wantErr string
		noValue bool
	}{
		"sum":                      {formula: "a + b", values: map[string]float64{"a": 2, "b": 3.5}, want: 5.5},
		"integer result converted": {formula: "a > 5 ? 10 : 0", values: map[string]float64{"a": 6}, want: 10},
		"missing is nil, handled":  {formula: "b ?? 7", values: map[string]float64{"a": 1}, want: 7},
		"first present wins":       {formula: "a ?? b", values: map[string]float64{"b": 4}, want: 4},
		"missing is nil, fails":    {formula: "a + b", values: map[string]float64{"a": 1}, wantErr: "evaluating formula"},
		"all missing gives nil":    {formula: "a ?? b", values: nil, noValue: true},
		"unknown keys ignored":     {formula: "a", values: map[string]float64{"a": 1, "zzz": 9}, want: 1},
		"infinite refused":         {formula: "a / b", values: map[string]float64{"a": 1, "b": 0}, wantErr: "not a finite number"},
		"NaN refused":              {formula: "a / b", values: map[string]float64{"a": 0, "b": 0}, wantErr: "not a finite number"},
		"negative allowed":         {formula: "a - b", values: map[string]float64{"a": 1, "b": 3}, want: -2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := Compile(tc.formula, names)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Eval(tc.values)
			switch {
			case tc.noValue:
				if !errors.Is(err, ErrNoValue) {
					t.Fatalf("Eval() = %v, %v; want ErrNoValue", got, err)
				}
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Eval() = %v, %v; want an error containing %q", got, err, tc.wantErr)
				}
			default:
				if err != nil || got != tc.want {
					t.Fatalf("Eval() = %v, %v; want %v", got, err, tc.want)
				}
			}
		})
	}
}

func TestEvalConcurrent(t *testing.T) {
	p, err := Compile("a * 2", []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			got, err := p.Eval(map[string]float64{"a": float64(i)})
			if err != nil || got != float64(2*i) {
				t.Errorf("Eval(a=%d) = %v, %v", i, got, err)
			}
		})
	}
	wg.Wait()
}
