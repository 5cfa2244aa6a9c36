package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Validator decides on the admission requests of one kind.
//
// The Handler calls Validate for CREATE and UPDATE only, and admits the
// other operations itself. req.Object holds the object (and req.OldObject,
// for UPDATE, the object before the change) as the API server sent it.
// Validate returns the warnings to show the user and:
//   - nil to admit;
//   - a *Denial (see Invalid) to deny because the object breaks rules;
//   - a *BadObjectError (see Decode) when the object cannot be decoded;
//   - any other error when the decision could not be made (the cluster
//     could not be read): the request is denied with code 500 and the
//     error, so it can be retried, and is never admitted by mistake.
//
// Validate must honour ctx: its deadline is the API server's timeout for
// the webhook call. It must not change the cluster (the webhook declares
// sideEffects: None), so dry-run requests need no special handling.
type Validator interface {
	Validate(ctx context.Context, req *admissionv1.AdmissionRequest) (warnings []string, err error)
}

// ValidatorFunc adapts a function to Validator.
type ValidatorFunc func(ctx context.Context, req *admissionv1.AdmissionRequest) ([]string, error)

// Validate calls f.
func (f ValidatorFunc) Validate(ctx context.Context, req *admissionv1.AdmissionRequest) ([]string, error) {
	return f(ctx, req)
}

// Problem is one broken rule: the field at fault, as a path such as
// "spec.triggers[0].metadata", and what is wrong with it, said so that a
// person knows what to change.
type Problem struct {
	Field   string
	Message string
}

// String formats p as "field: message".
func (p Problem) String() string {
	if p.Field == "" {
		return p.Message
	}
	return p.Field + ": " + p.Message
}

// Denial denies an object for the problems it lists.
type Denial struct {
	// Kind and Name identify the object, for the message.
	Kind, Name string
	Problems   []Problem
}

// Invalid returns a *Denial of the object kind/name for problems, or nil
// when there are none.
func Invalid(kind, name string, problems []Problem) error {
	if len(problems) == 0 {
		return nil
	}
	return &Denial{Kind: kind, Name: name, Problems: problems}
}

// Error lists every problem: `ScaledObject "web" is invalid: a; b`.
func (d *Denial) Error() string {
	parts := make([]string, len(d.Problems))
	for i, p := range d.Problems {
		parts[i] = p.String()
	}
	return fmt.Sprintf("%s %q is invalid: %s", d.Kind, d.Name, strings.Join(parts, "; "))
}

// status is the AdmissionResponse result of the denial: 422 Invalid, one
// cause per problem.
func (d *Denial) status(group string) *metav1.Status {
	causes := make([]metav1.StatusCause, len(d.Problems))
	for i, p := range d.Problems {
		causes[i] = metav1.StatusCause{Type: metav1.CauseTypeFieldValueInvalid, Field: p.Field, Message: p.Message}
	}
	return &metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusUnprocessableEntity,
		Reason:  metav1.StatusReasonInvalid,
		Message: d.Error(),
		Details: &metav1.StatusDetails{Name: d.Name, Group: group, Kind: d.Kind, Causes: causes},
	}
}

// BadObjectError is the error of an object that cannot be decoded.
type BadObjectError struct {
	// What names the object: "the object", "the old object".
	What string
	Err  error
}

func (e *BadObjectError) Error() string {
	return fmt.Sprintf("%s in the AdmissionReview cannot be decoded: %v", e.What, e.Err)
}

func (e *BadObjectError) Unwrap() error { return e.Err }

// Decode unmarshals the raw object of an admission request into out. It
// fails with a *BadObjectError when the object is missing or is not JSON
// of out's type; what names the object in the message.
func Decode(raw runtime.RawExtension, what string, out any) error {
	if len(raw.Raw) == 0 {
		return &BadObjectError{What: what, Err: errors.New("it is missing")}
	}
	if err := json.Unmarshal(raw.Raw, out); err != nil {
		return &BadObjectError{What: what, Err: err}
	}
	return nil
}
