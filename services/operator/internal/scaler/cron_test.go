package scaler

import (
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestCronPoll(t *testing.T) {
	at := func(zone, s string) time.Time {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		tm, err := time.ParseInLocation("2006-01-02 15:04:05", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := map[string]struct {
		zone, start, end string
		now              time.Time
		wantActive       bool
	}{
		"inside a day window":          {"Etc/UTC", "0 8 * * *", "0 18 * * *", at("Etc/UTC", "2026-03-02 12:00:00"), true},
		"before a day window":          {"Etc/UTC", "0 8 * * *", "0 18 * * *", at("Etc/UTC", "2026-03-02 07:59:59"), false},
		"exactly at start":             {"Etc/UTC", "0 8 * * *", "0 18 * * *", at("Etc/UTC", "2026-03-02 08:00:00"), true},
		"exactly at end":               {"Etc/UTC", "0 8 * * *", "0 18 * * *", at("Etc/UTC", "2026-03-02 18:00:00"), false},
		"one second before end":        {"Etc/UTC", "0 8 * * *", "0 18 * * *", at("Etc/UTC", "2026-03-02 17:59:59"), true},
		"night window before midnight": {"Asia/Tokyo", "0 22 * * *", "0 6 * * *", at("Asia/Tokyo", "2026-03-02 23:30:00"), true},
		"night window after midnight":  {"Asia/Tokyo", "0 22 * * *", "0 6 * * *", at("Asia/Tokyo", "2026-03-03 00:30:00"), true},
		"night window, day time":       {"Asia/Tokyo", "0 22 * * *", "0 6 * * *", at("Asia/Tokyo", "2026-03-03 12:00:00"), false},
		"night window at end":          {"Asia/Tokyo", "0 22 * * *", "0 6 * * *", at("Asia/Tokyo", "2026-03-03 06:00:00"), false},
		// The clock is in UTC; the window is read in the trigger's zone
		// (Kolkata is UTC+05:30): 20:00 UTC is 01:30 the next day there.
		"zone decides the day":     {"Asia/Kolkata", "0 1 * * *", "0 2 * * *", at("Etc/UTC", "2026-03-02 20:00:00"), true},
		"zone, outside":            {"Asia/Kolkata", "0 1 * * *", "0 2 * * *", at("Etc/UTC", "2026-03-02 01:30:00"), false},
		"weekday window on sunday": {"Etc/UTC", "0 9 * * 1-5", "0 17 * * 1-5", at("Etc/UTC", "2026-03-01 12:00:00"), false},
		"weekday window on monday": {"Etc/UTC", "0 9 * * 1-5", "0 17 * * 1-5", at("Etc/UTC", "2026-03-02 12:00:00"), true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			clk := clocktesting.NewFakePassiveClock(tc.now)
			s := build(t, "cron", map[string]string{"timezone": tc.zone, "start": tc.start, "end": tc.end, "desiredReplicas": "7"}, nil, Deps{Clock: clk})
			r, err := s.Poll(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			want := int64(1) // KEDA's metric outside the window
			if tc.wantActive {
				want = 7
			}
			if r.Active != tc.wantActive || r.Value.Value() != want {
				t.Errorf("got active=%v value=%s, want active=%v value=%d", r.Active, r.Value.String(), tc.wantActive, want)
			}
		})
	}
}

// TestCronAcrossMidnight walks one scaler through a night with a moving
// clock: the same Scaler sees the window open, cross midnight, and close.
func TestCronAcrossMidnight(t *testing.T) {
	start := time.Date(2026, 3, 2, 21, 59, 0, 0, time.UTC)
	clk := clocktesting.NewFakePassiveClock(start)
	s := build(t, "cron", map[string]string{"timezone": "UTC", "start": "0 22 * * *", "end": "30 1 * * *", "desiredReplicas": "3"}, nil, Deps{Clock: clk})
	steps := []struct {
		after  time.Duration
		active bool
	}{
		{0, false}, {time.Minute, true}, {2 * time.Hour, true}, {3*time.Hour + 30*time.Minute, true}, {3*time.Hour + 31*time.Minute, false}, {24 * time.Hour, false}, {24*time.Hour + time.Minute, true},
	}
	for _, st := range steps {
		clk.SetTime(start.Add(st.after))
		r, err := s.Poll(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if r.Active != st.active {
			t.Errorf("at %s: active=%v, want %v", clk.Now().Format(time.DateTime), r.Active, st.active)
		}
	}
}
