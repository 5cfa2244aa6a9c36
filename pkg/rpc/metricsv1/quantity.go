/*
Copyright The ebb Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package metricsv1

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// ErrQuantityUnset is returned by [Quantity.ToQuantity] for a nil Quantity,
// such as the value of a MetricValue whose value field was not sent.
var ErrQuantityUnset = errors.New("quantity is unset")

// QuantityToProto returns the wire form of q: its canonical string, such as
// "750m" for 0.75 or "12500m" for 12.5. [Quantity.ToQuantity] turns it back
// into a Quantity equal to q (Cmp returns 0).
//
// The string is computed with q.CanonicalizeBytes rather than q.String(),
// because String returns the text q was parsed from when the parser judged
// it canonical (resource.MustParse("12.500").String() is "12.500"); equal
// quantities therefore always get the same wire form.
//
// Two corrections keep the value exact where Kubernetes' canonical form
// alone would not:
//   - A value finer than 1n, the finest precision Kubernetes parses, is
//     rounded up (away from zero) to whole nanos, as resource.ParseQuantity
//     would round it.
//   - When the canonical string does not parse back to the same value, the
//     value is written in exponent form instead. That happens to DecimalSI
//     values whose canonical exponent has no SI suffix: the canonical
//     string of 10^21 in DecimalSI is "1" (apimachinery drops the exponent
//     it has no suffix for), so it is sent as "1e21".
//
// The format survives too, except in that second case (the value comes back
// as DecimalExponent) and where the canonical string cannot carry it: a
// BinarySI value whose canonical form has no binary suffix (1.5Ki is sent
// as "1536") comes back as DecimalSI, exactly as through the Kubernetes API.
func QuantityToProto(q resource.Quantity) *Quantity {
	// q is a copy; neither RoundUp nor setting Format modifies state shared
	// with the caller's Quantity (RoundUp allocates a new inf.Dec when it
	// rounds one).
	q.RoundUp(resource.Nano)
	if s := canonical(q); parsesTo(s, q) {
		return &Quantity{Value: s}
	}
	q.Format = resource.DecimalExponent
	if s := canonical(q); parsesTo(s, q) {
		return &Quantity{Value: s}
	}
	// Not reached for any value a Quantity can hold once rounded to nanos;
	// kept so that a future apimachinery cannot make this lose the value:
	// inf.Dec prints plain decimal digits, which always parse back exactly.
	return &Quantity{Value: q.AsDec().String()}
}

// canonical returns the canonical string of q.
func canonical(q resource.Quantity) string {
	number, suffix := q.CanonicalizeBytes(make([]byte, 0, 24))
	return string(number) + string(suffix)
}

// parsesTo reports whether s parses to a value equal to q.
func parsesTo(s string, q resource.Quantity) bool {
	p, err := resource.ParseQuantity(s)
	return err == nil && p.Cmp(q) == 0
}

// ToQuantity parses the wire form back into a resource.Quantity with
// resource.ParseQuantity. It returns [ErrQuantityUnset] for a nil receiver
// and an error naming the offending string for an empty or malformed value;
// it never panics and never reads a bad value as zero.
//
// It is stricter than resource.ParseQuantity in two ways. First, the
// number must have at least one digit. ParseQuantity reads a bare sign, "." or suffix
// ("-", "m", "Ki", "e3") as zero, which would turn a truncated or corrupted
// value into a silent zero; ToQuantity rejects those with an error wrapping
// resource.ErrFormatWrong.
//
// Second, it rejects a decimal exponent ("1e-5", "25e21") outside
// [-9999, 9999]. resource.ParseQuantity silently truncates exponents to 32
// bits ("1e-3000000000" would become a huge positive number), and the time
// and memory that parsing and comparing take grow with the exponent's
// magnitude, because resource.Quantity works through big integers of that
// many digits. No metric comes near 10^9999; QuantityToProto writes a
// larger exponent only for a value beyond it.
func (x *Quantity) ToQuantity() (resource.Quantity, error) {
	if x == nil {
		return resource.Quantity{}, ErrQuantityUnset
	}
	v := x.GetValue()
	if !hasDigit(v) {
		return resource.Quantity{}, fmt.Errorf("invalid quantity %q: %w", v, resource.ErrFormatWrong)
	}
	if !exponentInRange(v) {
		return resource.Quantity{}, fmt.Errorf("invalid quantity %q: %w", v, errExponentRange)
	}
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return resource.Quantity{}, fmt.Errorf("invalid quantity %q: %w", v, err)
	}
	return q, nil
}

// The range of decimal exponents that ToQuantity parses.
const (
	minExponent = -9999
	maxExponent = 9999
)

var errExponentRange = fmt.Errorf("decimal exponent outside [%d, %d]", minExponent, maxExponent)

// exponentInRange reports whether quantity string s has no decimal
// exponent, or one within [minExponent, maxExponent]. Whether s is
// otherwise well-formed is left to resource.ParseQuantity.
func exponentInRange(s string) bool {
	i := strings.IndexAny(s, "eE")
	if i < 0 {
		return true
	}
	exp := s[i+1:]
	digits := strings.TrimLeft(exp, "+-")
	if len(exp)-len(digits) > 1 || digits == "" || strings.Trim(digits, "0123456789") != "" {
		// Not an exponent: "E" (exa) or malformed; ParseQuantity decides.
		return true
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	return err == nil && n >= minExponent && n <= maxExponent
}

// hasDigit reports whether the number of quantity string s, after an
// optional sign, starts with digits and dots of which at least one is a
// digit.
func hasDigit(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			return true
		case c != '.':
			return false
		}
	}
	return false
}
