package scalers

import (
	"errors"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
)

// These tests pin what fuzzing the first parsers found (see fuzz_test.go).

func TestParseCronScheduleWithTZPrefix(t *testing.T) {
	runParseCases(t, map[string]parseCase{
		// robfig/cron panics on a TZ= prefix with no space after it.
		"TZ= alone": {
			trigger: trig("cron", 0, cronMeta("UTC", "TZ=UTC", "0 9 * * *", "2")),
			wantErr: `trigger 0 (cron): start "TZ=UTC" is not a cron schedule: a TZ= or CRON_TZ= prefix must be followed by a space`,
		},
		"CRON_TZ= alone": {
			trigger: trig("cron", 0, cronMeta("UTC", "0 8 * * *", "CRON_TZ=Europe/Paris", "2")),
			wantErr: `trigger 0 (cron): end "CRON_TZ=Europe/Paris" is not a cron schedule: a TZ= or CRON_TZ= prefix`,
		},
		// KEDA's parser accepts a prefix followed by a schedule; so does ebb.
		"TZ= and a schedule": {
			trigger:  trig("cron", 0, cronMeta("UTC", "TZ=Asia/Tokyo 0 8 * * *", "0 9 * * *", "2")),
			wantSpec: ext("s0-cron-UTC-TZ=AsiaSlTokyo08xxx-09xxx", autoscalingv2.AverageValueMetricType, "1"),
		},
		// The library's error quotes the zone with its line break; the
		// message stays on one line.
		"line break in the library's error": {
			trigger: trig("cron", 0, cronMeta("UTC", "TZ=a\nb 0 8 * * *", "0 9 * * *", "2")),
			wantErr: `provided bad location a\nb`,
		},
	})
}

func TestParseQuantityBounds(t *testing.T) {
	mem := func(value, activation string) Trigger {
		return withMetricType(trig("memory", 0, map[string]string{"value": value, "activationValue": activation}), autoscalingv2.AverageValueMetricType)
	}
	long := "1" + strings.Repeat("0", MaxQuantityLength)
	runParseCases(t, map[string]parseCase{
		"large negative exponent":         {trigger: mem("1e-999999999", ""), wantErr: `value "1e-999999999" is out of range: a quantity has at most 1024 characters`},
		"large positive exponent":         {trigger: mem("1Gi", "9e999999999"), wantErr: `activationValue "9e999999999" is out of range`},
		"exponent just beyond":            {trigger: mem("1e1001", ""), wantErr: "is out of range"},
		"exponent beyond int":             {trigger: mem("1e99999999999999999999", ""), wantErr: "is out of range"},
		"too many digits":                 {trigger: mem(long, ""), wantErr: `value "` + long[:64] + `..." is out of range`},
		"exponents at the bounds":         {trigger: mem("1E+1000", "1e-1000"), wantSpec: resourceSpec("memory", "", averageValue("1e1000"))},
		"suffixes that are not exponents": {trigger: mem("1Ei", "2E"), check: func(t *testing.T, c Config) { activation(t, c, 2e18) }},
	})
}

func TestParseQuantity(t *testing.T) {
	for _, s := range []string{"1e-999999999", "9e999999999", "1e1001", strings.Repeat("9", MaxQuantityLength+1)} {
		start := time.Now()
		if _, err := ParseQuantity(s); !errors.Is(err, ErrQuantityOutOfRange) {
			t.Errorf("ParseQuantity(%.20q) = %v, want ErrQuantityOutOfRange", s, err)
		}
		// Refused before resource.ParseQuantity, which would take hours on
		// the first.
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("ParseQuantity(%.20q) took %v", s, d)
		}
	}
	for s, want := range map[string]string{"500m": "500m", "1e3": "1e3", "1Ei": "1Ei", "2E": "2E", "1e-1000": "1e-1000",
		strings.Repeat("9", MaxQuantityLength): strings.Repeat("9", MaxQuantityLength)} {
		q, err := ParseQuantity(s)
		if err != nil || q.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("ParseQuantity(%.20q) = %v, %v", s, q.String(), err)
		}
	}
	if _, err := ParseQuantity("x"); err == nil || errors.Is(err, ErrQuantityOutOfRange) {
		t.Errorf("ParseQuantity(x) = %v", err)
	}
}
