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
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestQuantityRoundTrip(t *testing.T) {
	tests := map[string]struct {
		in resource.Quantity
		// wire is the expected Quantity.value.
		wire string
		// want is the expected decoded value; defaults to in.
		want *resource.Quantity
		// wantFormat is the expected decoded format; defaults to in.Format.
		wantFormat resource.Format
	}{
		"milli":                      {in: resource.MustParse("750m"), wire: "750m"},
		"non-canonical input":        {in: resource.MustParse("12.500"), wire: "12500m"},
		"computed milli":             {in: *resource.NewMilliQuantity(12500, resource.DecimalSI), wire: "12500m"},
		"integer":                    {in: resource.MustParse("5"), wire: "5"},
		"explicit plus sign":         {in: resource.MustParse("+5"), wire: "5"},
		"binary SI":                  {in: resource.MustParse("1Ki"), wire: "1Ki"},
		"binary SI, large":           {in: resource.MustParse("512Mi"), wire: "512Mi"},
		"zero":                       {in: resource.MustParse("0"), wire: "0"},
		"zero value":                 {in: resource.Quantity{}, wire: "0", wantFormat: resource.DecimalSI},
		"max int64":                  {in: resource.MustParse("9223372036854775807"), wire: "9223372036854775807"},
		"beyond int64":               {in: resource.MustParse("123456789012345678901234567890"), wire: "123456789012345678901234567890"},
		"beyond int64, SI suffix":    {in: resource.MustParse("123456789012345678901234567890E"), wire: "123456789012345678901234567890E"},
		"huge exponent":              {in: resource.MustParse("1234567890123456789012345678901234567890e99"), wire: "1234567890123456789012345678901234567890e99"},
		"exponent":                   {in: resource.MustParse("1e30"), wire: "1e30"},
		"nano":                       {in: resource.MustParse("1n"), wire: "1n"},
		"nano, decimal notation":     {in: resource.MustParse("0.000000001"), wire: "1n"},
		"nano, exponent":             {in: resource.MustParse("1e-9"), wire: "1e-9"},
		"smallest exponent accepted": {in: resource.MustParse("1e-9999"), wire: "1e-9", want: ptr(resource.MustParse("1e-9"))},
		"largest exponent accepted":  {in: resource.MustParse("1e9999"), wire: "1e9999"},
		"many nanos":                 {in: resource.MustParse("123456789012345678901234567890n"), wire: "123456789012345678901234567890n"},
		"negative milli":             {in: resource.MustParse("-750m"), wire: "-750m"},
		"negative fraction":          {in: resource.MustParse("-12.5"), wire: "-12500m"},
		"negative binary SI":         {in: resource.MustParse("-1.5Gi"), wire: "-1536Mi"},
		"negative beyond int64":      {in: resource.MustParse("-123456789012345678901234567890"), wire: "-123456789012345678901234567890"},
		"DecimalSI beyond the SI suffixes": {
			in: resource.MustParse("1000000000000000000000"), wire: "1e21", wantFormat: resource.DecimalExponent,
		},
		"DecimalSI beyond the SI suffixes, negative": {
			in: resource.MustParse("-25000000000000000000000"), wire: "-25e21", wantFormat: resource.DecimalExponent,
		},
		"DecimalSI below the SI suffixes": {
			in: decQuantity(resource.NewScaledQuantity(1, -12), resource.DecimalSI), wire: "1n", want: ptr(resource.MustParse("1n")),
		},
		"binary SI without binary unit": {
			in: resource.MustParse("1.5Ki"), wire: "1536", wantFormat: resource.DecimalSI,
		},
		"binary SI fraction": {
			in: resource.MustParse("1.1Ki"), wire: "1126400m", wantFormat: resource.DecimalSI,
		},
		"finer than nano, int64": {
			in: *resource.NewScaledQuantity(1, -12), wire: "1n", want: ptr(resource.MustParse("1n")),
		},
		"finer than nano, int64, rounds up": {
			in: *resource.NewScaledQuantity(15, -10), wire: "2n", want: ptr(resource.MustParse("2n")),
		},
		"finer than nano, negative, rounds away from zero": {
			in: *resource.NewScaledQuantity(-15, -10), wire: "-2n", want: ptr(resource.MustParse("-2n")),
		},
		"finer than nano, inf.Dec": {
			in:   decQuantity(resource.NewScaledQuantity(1, -12), resource.DecimalExponent),
			wire: "1e-9", want: ptr(resource.MustParse("1e-9")),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			want := tc.in
			if tc.want != nil {
				want = *tc.want
			}
			wantFormat := want.Format
			if tc.wantFormat != "" {
				wantFormat = tc.wantFormat
			}
			inBefore := tc.in.String()

			p := QuantityToProto(tc.in)
			if p.GetValue() != tc.wire {
				t.Errorf("QuantityToProto(%s).Value = %q, want %q", inBefore, p.GetValue(), tc.wire)
			}
			if after := tc.in.String(); after != inBefore {
				t.Errorf("QuantityToProto changed its argument: %q, was %q", after, inBefore)
			}

			// Through the real wire encoding, inside a MetricValue.
			b, err := proto.Marshal(&MetricValue{MetricName: "s0-test", Value: p})
			if err != nil {
				t.Fatalf("proto.Marshal: %v", err)
			}
			var mv MetricValue
			if err := proto.Unmarshal(b, &mv); err != nil {
				t.Fatalf("proto.Unmarshal: %v", err)
			}
			got, err := mv.GetValue().ToQuantity()
			if err != nil {
				t.Fatalf("ToQuantity(%q): %v", mv.GetValue().GetValue(), err)
			}
			if got.Cmp(want) != 0 {
				t.Errorf("round trip of %s = %s, want a value equal to %s", inBefore, got.String(), want.String())
			}
			if got.Format != wantFormat {
				t.Errorf("round trip of %s has format %q, want %q", inBefore, got.Format, wantFormat)
			}
			// The canonical form is a fixed point: encoding the decoded value
			// again gives the same bytes.
			if again := QuantityToProto(got).GetValue(); again != tc.wire {
				t.Errorf("re-encoding the decoded value gives %q, want %q", again, tc.wire)
			}
		})
	}
}

func TestQuantityToQuantityRejects(t *testing.T) {
	tests := map[string]struct {
		in      *Quantity
		wantErr error
	}{
		"nil":                            {in: nil, wantErr: ErrQuantityUnset},
		"empty":                          {in: &Quantity{}, wantErr: resource.ErrFormatWrong},
		"word":                           {in: &Quantity{Value: "abc"}, wantErr: resource.ErrFormatWrong},
		"two dots":                       {in: &Quantity{Value: "1.2.3"}},
		"leading space":                  {in: &Quantity{Value: " 5"}, wantErr: resource.ErrFormatWrong},
		"trailing newline":               {in: &Quantity{Value: "5\n"}, wantErr: resource.ErrFormatWrong},
		"unknown suffix":                 {in: &Quantity{Value: "1Kb"}, wantErr: resource.ErrFormatWrong},
		"lower-case binary suffix":       {in: &Quantity{Value: "1ki"}, wantErr: resource.ErrSuffix},
		"double sign":                    {in: &Quantity{Value: "--1"}},
		"dangling exponent":              {in: &Quantity{Value: "1e"}, wantErr: resource.ErrSuffix},
		"NaN":                            {in: &Quantity{Value: "NaN"}, wantErr: resource.ErrFormatWrong},
		"infinity":                       {in: &Quantity{Value: "+Inf"}, wantErr: resource.ErrFormatWrong},
		"hex":                            {in: &Quantity{Value: "0x10"}, wantErr: resource.ErrFormatWrong},
		"decimal comma":                  {in: &Quantity{Value: "1,5"}, wantErr: resource.ErrFormatWrong},
		"non-ASCII digit":                {in: &Quantity{Value: "\u0661"}, wantErr: resource.ErrFormatWrong},
		"exponent below -9999":           {in: &Quantity{Value: "1e-10000"}},
		"huge negative exponent":         {in: &Quantity{Value: "1e-4444440"}},
		"padded huge negative exponent":  {in: &Quantity{Value: "5E-000000000000000000000000000000099999"}},
		"exponent beyond int64":          {in: &Quantity{Value: "0000E00000000000000200000000000000000"}},
		"exponent above 9999":            {in: &Quantity{Value: "1e10000"}},
		"zero with a large exponent":     {in: &Quantity{Value: "0000E000000000000002000000000"}},
		"exponent beyond int32":          {in: &Quantity{Value: "1e2147483648"}},
		"negative exponent beyond int32": {in: &Quantity{Value: "1e-3000000000"}},
		// resource.ParseQuantity reads these as zero; ToQuantity must not.
		"bare sign":            {in: &Quantity{Value: "-"}, wantErr: resource.ErrFormatWrong},
		"bare dot":             {in: &Quantity{Value: "."}, wantErr: resource.ErrFormatWrong},
		"bare suffix":          {in: &Quantity{Value: "m"}, wantErr: resource.ErrFormatWrong},
		"bare binary suffix":   {in: &Quantity{Value: "Ki"}, wantErr: resource.ErrFormatWrong},
		"bare exponent":        {in: &Quantity{Value: "e3"}, wantErr: resource.ErrFormatWrong},
		"signed bare exponent": {in: &Quantity{Value: "+.e3"}, wantErr: resource.ErrFormatWrong},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := tc.in.ToQuantity()
			if err == nil {
				t.Fatalf("ToQuantity(%q) = %s, want an error", tc.in.GetValue(), got.String())
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("ToQuantity(%q) error = %v, want it to wrap %v", tc.in.GetValue(), err, tc.wantErr)
			}
			if tc.in != nil && !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.in.GetValue())) {
				t.Errorf("ToQuantity(%q) error %q does not name the value", tc.in.GetValue(), err)
			}
			if !got.IsZero() {
				t.Errorf("ToQuantity(%q) returned %s with its error, want the zero Quantity", tc.in.GetValue(), got.String())
			}
		})
	}
}

// FuzzToQuantity checks that ToQuantity never panics, and that whatever it
// accepts survives an encode/decode cycle unchanged in value.
func FuzzToQuantity(f *testing.F) {
	for _, s := range []string{"750m", "12.500", "5", "1Ki", "0", "-1.5Gi", "1e-12", "1E", "e3", "m", "", "1.2.3", "9999999999999999999999Ei", "1000000000000000000000", "1e-3000000000", "1E-5", "1E+5", "1e+-5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := (&Quantity{Value: s}).ToQuantity()
		if err != nil {
			return
		}
		p := QuantityToProto(q)
		got, err := p.ToQuantity()
		if errors.Is(err, errExponentRange) {
			return // a value beyond 10^9999, written from an input with many digits
		}
		if err != nil {
			t.Fatalf("ToQuantity(QuantityToProto(ToQuantity(%q))) = %v; wire %q", s, err, p.GetValue())
		}
		if got.Cmp(q) != 0 {
			t.Fatalf("value of %q changed through the wire: %s, want %s", s, got.String(), q.String())
		}
		if again := QuantityToProto(got).GetValue(); again != p.GetValue() {
			t.Fatalf("canonical form of %q is not stable: %q then %q", s, p.GetValue(), again)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// decQuantity returns q backed by an inf.Dec (as quantities beyond int64
// are), in format f.
func decQuantity(q *resource.Quantity, f resource.Format) resource.Quantity {
	q.AsDec()
	q.Format = f
	return *q
}
