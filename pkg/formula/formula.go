package formula

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
)

// ErrNoValue is returned by Program.Eval when the formula evaluates to nil,
// as "a ?? b" does when both triggers are failing.
var ErrNoValue = errors.New("the formula gave no value")

// Program is a compiled formula. It is safe for concurrent use.
type Program struct {
	source  string
	names   []string
	program *vm.Program
}

// Variables returns the names a formula over triggers may use: those of
// the named triggers, cpu and memory triggers excepted (the HPA reads
// those itself, so they have no value to give), as KEDA decides them. The
// order is the triggers'; a repeated name is listed once.
func Variables(triggers []v1alpha1.ScaleTrigger) []string {
	var names []string
	for _, t := range triggers {
		if t.Name == "" || t.Type == "cpu" || t.Type == "memory" {
			continue
		}
		if !slices.Contains(names, t.Name) {
			names = append(names, t.Name)
		}
	}
	return names
}

// Compile compiles formula over the variables names. It fails when the
// formula is empty or does not parse, uses a name that is not one of
// names, has a type known not to be a number, or fails or gives no number
// when every variable is 1.
func Compile(formula string, names []string) (*Program, error) {
	if strings.TrimSpace(formula) == "" {
		return nil, errors.New("the formula is empty")
	}
	env := make(map[string]float64, len(names))
	for _, n := range names {
		env[n] = 1
	}
	program, err := expr.Compile(formula, expr.Env(env))
	if err != nil {
		return nil, fmt.Errorf("formula %q does not compile: %w", formula, err)
	}
	if t := program.Node().Type(); t != nil && t.Kind() != reflect.Interface && !isNumberKind(t.Kind()) {
		return nil, fmt.Errorf("formula %q gives a %s, not a number", formula, t)
	}
	p := &Program{source: formula, names: slices.Clone(names), program: program}
	// KEDA's admission runs the formula once with every trigger at 1; an
	// infinite result there (1 / (a - b)) is admitted, as KEDA admits it.
	if _, err := p.run(env); err != nil {
		return nil, fmt.Errorf("formula %q with every trigger at 1: %w", formula, err)
	}
	return p, nil
}

// String returns the formula's source.
func (p *Program) String() string { return p.source }

// Variables returns the names the formula was compiled over. The slice is
// a copy.
func (p *Program) Variables() []string { return slices.Clone(p.names) }

// Eval evaluates the formula with values, by variable name. A variable
// missing from values is nil in the formula; names that are not variables
// are ignored. The result must be a finite number: a nil result gives
// ErrNoValue, any other non-number or a NaN or infinity an error, as does
// a failure inside the formula (such as arithmetic on nil).
func (p *Program) Eval(values map[string]float64) (float64, error) {
	f, err := p.run(values)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("formula %q gave %v, not a finite number", p.source, f)
	}
	return f, nil
}

// run evaluates the formula and converts its result to a float64.
func (p *Program) run(values map[string]float64) (float64, error) {
	env := make(map[string]any, len(p.names))
	for _, n := range p.names {
		if v, ok := values[n]; ok {
			env[n] = v
		} else {
			env[n] = nil
		}
	}
	out, err := expr.Run(p.program, env)
	if err != nil {
		return 0, fmt.Errorf("evaluating formula %q: %w", p.source, err)
	}
	if out == nil {
		return 0, ErrNoValue
	}
	v := reflect.ValueOf(out)
	var f float64
	switch {
	case v.CanFloat():
		f = v.Float()
	case v.CanInt():
		f = float64(v.Int())
	case v.CanUint():
		f = float64(v.Uint())
	default:
		return 0, fmt.Errorf("formula %q gave %v (%T), not a number", p.source, out, out)
	}
	return f, nil
}

func isNumberKind(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}
