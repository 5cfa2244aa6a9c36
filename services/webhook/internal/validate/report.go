package validate

import (
	"fmt"
	"slices"

	"github.com/ebb-autoscaler/ebb/services/webhook/internal/admission"
)

// report collects the problems and warnings of one admission.
type report struct {
	problems []admission.Problem
	warnings []string
}

// deny records a broken rule of field.
func (r *report) deny(field, format string, args ...any) {
	r.problems = append(r.problems, admission.Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

// warn records a warning about field ("" for the object as a whole),
// once.
func (r *report) warn(field, format string, args ...any) {
	w := fmt.Sprintf(format, args...)
	if field != "" {
		w = field + ": " + w
	}
	if !slices.Contains(r.warnings, w) {
		r.warnings = append(r.warnings, w)
	}
}

// merge appends o's problems and warnings to r.
func (r *report) merge(o *report) {
	r.problems = append(r.problems, o.problems...)
	for _, w := range o.warnings {
		if !slices.Contains(r.warnings, w) {
			r.warnings = append(r.warnings, w)
		}
	}
}

// result returns the warnings and the denial, if any.
func (r *report) result(kind, name string) ([]string, error) {
	return r.warnings, admission.Invalid(kind, name, r.problems)
}
