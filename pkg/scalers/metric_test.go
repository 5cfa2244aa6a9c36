package scalers

import (
	"math"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
)

func TestNormalize(t *testing.T) {
	tests := map[string]struct {
		in, want string
	}{
		"all replaced characters": {in: "a/b.c:d%e(f)g", want: "a-b-c-d-e-f-g"},
		"others kept":             {in: "Abc_1-2+3 x*?", want: "Abc_1-2+3 x*?"},
		"empty":                   {in: "", want: ""},
		"timezone":                {in: "America/Argentina/Buenos_Aires", want: "America-Argentina-Buenos_Aires"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Normalize(tc.in); got != tc.want {
				t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestExternalMetricName(t *testing.T) {
	if got := ExternalMetricName(3, "redis-my.list"); got != "s3-redis-my.list" {
		t.Errorf("ExternalMetricName = %q: the name must be used as given", got)
	}
}

func TestCronMetricName(t *testing.T) {
	tests := map[string]struct {
		index          int
		tz, start, end string
		want           string
	}{
		"every two minutes": {index: 1, tz: "Europe/Amsterdam", start: "*/2 * * * *", end: "0 6 * * *",
			want: "s1-cron-Europe-Amsterdam-xSl2xxxx-06xxx"},
		"ranges and lists": {index: 0, tz: "Asia/Kolkata", start: "0 8 * * 1-5", end: "0 18 * * 1,3",
			want: "s0-cron-Asia-Kolkata-08xx1-5-018xx1Cm3"},
		"question mark": {index: 2, tz: "Etc/GMT+1", start: "30 9 ? * MON", end: "30 17 ? * FRI",
			want: "s2-cron-Etc-GMT+1-309QmxMON-3017QmxFRI"},
		"step in hour": {index: 0, tz: "UTC", start: "0 */4 * * *", end: "30 */4 * * *",
			want: "s0-cron-UTC-0xSl4xxx-30xSl4xxx"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := CronMetricName(tc.index, tc.tz, tc.start, tc.end); got != tc.want {
				t.Errorf("CronMetricName = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestQuantities(t *testing.T) {
	tests := map[string]struct {
		got        resource.Quantity
		equals     string // a quantity the value must equal (Cmp)
		wantString string // String(), as KEDA's quantity prints
	}{
		"float 0.75":     {got: FloatQuantity(0.75), equals: "750m", wantString: "750m"},
		"float 12.5":     {got: FloatQuantity(12.5), equals: "12500m", wantString: "12.500"},
		"float 100":      {got: FloatQuantity(100), equals: "100", wantString: "100"},
		"float 2.25":     {got: FloatQuantity(2.25), equals: "2250m", wantString: "2.250"},
		"float rounds":   {got: FloatQuantity(1.23456), equals: "1235m", wantString: "1.235"},
		"float million":  {got: FloatQuantity(1e6), equals: "1M", wantString: "1M"},
		"float negative": {got: FloatQuantity(-1.5), equals: "-1500m", wantString: "-1.500"},
		"float NaN":      {got: FloatQuantity(math.NaN()), equals: "0", wantString: "0"},
		"float infinity": {got: FloatQuantity(math.Inf(1)), equals: "0", wantString: "0"},
		"int 5":          {got: IntQuantity(5), equals: "5", wantString: "5"},
		"int 0":          {got: IntQuantity(0), equals: "0", wantString: "0"},
		"int large":      {got: IntQuantity(1000000), equals: "1M", wantString: "1M"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.got.Cmp(resource.MustParse(tc.equals)) != 0 {
				t.Errorf("quantity %s, want equal to %s", tc.got.String(), tc.equals)
			}
			if s := tc.got.String(); s != tc.wantString {
				t.Errorf("String() = %q, want %q", s, tc.wantString)
			}
		})
	}
}
