package scalers

import (
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
		if c.StartSchedule, err = cronParser.Parse(c.Start); err != nil {
			r.fail("start", "start %q is not a cron schedule: %v", c.Start, err)
		}
	}
	if c.End != "" {
		if c.EndSchedule, err = cronParser.Parse(c.End); err != nil {
			r.fail("end", "end %q is not a cron schedule: %v", c.End, err)
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
