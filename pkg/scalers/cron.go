package scalers

import (
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // timezones are checked the same way whatever the image holds

	"github.com/robfig/cron/v3"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// cronParser reads the five-field schedules KEDA accepts (minute, hour,
// day of month, month, day of week); descriptors such as @daily and a
// seconds field are refused, as KEDA refuses them.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// CronConfig is a cron trigger: between Start and End the metric is
// DesiredReplicas, otherwise 1; the target is always 1.
//
// Metadata: timezone, start, end, desiredReplicas (all required).
type CronConfig struct {
	Timezone        string
	Start, End      string
	StartSchedule   cron.Schedule
	EndSchedule     cron.Schedule
	DesiredReplicas int64
	// Location is the loaded Timezone; nil when it is not a known zone
	// (KEDA admits such a trigger and fails when reading the metric; ebb
	// warns).
	Location *time.Location

	index      int
	targetType autoscalingv2.MetricTargetType
}

func parseCron(r *reader) Config {
	c := &CronConfig{index: r.t.Index}
	c.targetType = r.externalTargetType()
	c.Timezone = r.str(meta("timezone").req())
	c.Start = r.str(meta("start").req())
	c.End = r.str(meta("end").req())
	before := len(r.errs)
	c.DesiredReplicas = r.int(meta("desiredReplicas").req())
	if len(r.errs) == before && c.DesiredReplicas == 0 {
		r.fail("desiredReplicas", "desiredReplicas must not be 0")
	}

	var err error
	if c.Start != "" {
		if c.StartSchedule, err = parseCronSchedule(c.Start); err != nil {
			r.fail("start", "start%s is not a cron schedule: %s", quote(meta("start"), fromMetadata, c.Start), escapeLineBreaks(err.Error()))
		}
	}
	if c.End != "" {
		if c.EndSchedule, err = parseCronSchedule(c.End); err != nil {
			r.fail("end", "end%s is not a cron schedule: %s", quote(meta("end"), fromMetadata, c.End), escapeLineBreaks(err.Error()))
		}
	}
	if c.Start != "" && c.Start == c.End {
		r.fail("end", "start and end must differ")
	}
	if c.Timezone != "" {
		if c.Location, err = time.LoadLocation(c.Timezone); err != nil {
			r.warn("timezone %q is not a known time zone; the trigger will fail when its metric is read", c.Timezone)
		}
	}
	return c
}

// parseCronSchedule parses a schedule with cronParser, as KEDA does, but
// never panics: robfig/cron v3.0.1 slices a "TZ=" or "CRON_TZ=" prefix up
// to the first space and panics when there is none ("TZ=UTC"), so such a
// spec is refused first, and any other panic of the library becomes an
// error too.
func parseCronSchedule(spec string) (sched cron.Schedule, err error) {
	if (strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=")) && !strings.Contains(spec, " ") {
		return nil, errors.New("a TZ= or CRON_TZ= prefix must be followed by a space and the schedule")
	}
	defer func() {
		if p := recover(); p != nil {
			sched, err = nil, fmt.Errorf("the cron library failed on it: %v", p)
		}
	}()
	return cronParser.Parse(spec)
}

// escapeLineBreaks escapes the line breaks of a message built from user
// input (a library's error quoting it, say), so every line of a joined
// error starts with its trigger.
func escapeLineBreaks(s string) string {
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

// Type returns "cron".
func (c *CronConfig) Type() string { return "cron" }

// MetricName returns s<i>-cron-<timezone>-<start>-<end>, rewritten as
// CronMetricName describes.
func (c *CronConfig) MetricName() string {
	return CronMetricName(c.index, c.Timezone, c.Start, c.End)
}

// MetricSpec returns the External metric with target 1.
func (c *CronConfig) MetricSpec() (autoscalingv2.MetricSpec, error) {
	return externalMetricSpec(c.MetricName(), c.targetType, IntQuantity(1)), nil
}
