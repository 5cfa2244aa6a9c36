package scalers

import (
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

func cronMeta(tz, start, end, desired string) map[string]string {
	return map[string]string{"timezone": tz, "start": start, "end": end, "desiredReplicas": desired}
}

func TestParseCron(t *testing.T) {
	runParseCases(t, map[string]parseCase{
		"business hours": {
			trigger:    trig("cron", 1, cronMeta("Europe/Amsterdam", "*/2 * * * *", "0 6 * * *", "10")),
			wantSpec:   ext("s1-cron-Europe-Amsterdam-xSl2xxxx-06xxx", autoscalingv2.AverageValueMetricType, "1"),
			wantTarget: "1",
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				cc := c.(*CronConfig)
				if cc.DesiredReplicas != 10 || cc.StartSchedule == nil || cc.EndSchedule == nil || cc.Location == nil {
					t.Errorf("config %+v", cc)
				}
			},
		},
		"list and range, Value": {
			trigger:  withMetricType(trig("cron", 0, cronMeta("Asia/Kolkata", "0 8 * * 1-5", "0 18 * * 1,3", "4")), autoscalingv2.ValueMetricType),
			wantSpec: ext("s0-cron-Asia-Kolkata-08xx1-5-018xx1Cm3", autoscalingv2.ValueMetricType, "1"),
		},
		"question mark": {
			trigger:  trig("cron", 3, cronMeta("UTC", "30 9 ? * MON", "30 17 ? * FRI", "2")),
			wantSpec: ext("s3-cron-UTC-309QmxMON-3017QmxFRI", autoscalingv2.AverageValueMetricType, "1"),
		},
		"timezone missing": {
			trigger: trig("cron", 0, map[string]string{"start": "0 8 * * *", "end": "0 9 * * *", "desiredReplicas": "1"}),
			wantErr: "trigger 0 (cron): timezone is required",
		},
		"start missing": {
			trigger: trig("cron", 0, map[string]string{"timezone": "UTC", "end": "0 9 * * *", "desiredReplicas": "1"}),
			wantErr: "trigger 0 (cron): start is required",
		},
		"desiredReplicas missing": {
			trigger: trig("cron", 0, map[string]string{"timezone": "UTC", "start": "0 8 * * *", "end": "0 9 * * *"}),
			wantErr: "trigger 0 (cron): desiredReplicas is required",
		},
		"desiredReplicas not an integer": {
			trigger: trig("cron", 0, cronMeta("UTC", "0 8 * * *", "0 9 * * *", "2.5")),
			wantErr: `trigger 0 (cron): desiredReplicas "2.5" is not an integer`,
		},
		"desiredReplicas zero": {
			trigger: trig("cron", 0, cronMeta("UTC", "0 8 * * *", "0 9 * * *", "0")),
			wantErr: "desiredReplicas must not be 0",
		},
		"bad start": {
			trigger: trig("cron", 0, cronMeta("UTC", "0 25 * * *", "0 9 * * *", "1")),
			wantErr: `trigger 0 (cron): start "0 25 * * *" is not a cron schedule`,
		},
		"seconds field refused": {
			trigger: trig("cron", 0, cronMeta("UTC", "0 0 8 * * *", "0 9 * * *", "1")),
			wantErr: "is not a cron schedule",
		},
		"descriptor refused": {
			trigger: trig("cron", 0, cronMeta("UTC", "@daily", "0 9 * * *", "1")),
			wantErr: `start "@daily" is not a cron schedule`,
		},
		"same start and end": {
			trigger: trig("cron", 0, cronMeta("UTC", "0 8 * * *", "0 8 * * *", "1")),
			wantErr: "start and end must differ",
		},
		"utilization refused": {
			trigger: withMetricType(trig("cron", 0, cronMeta("UTC", "0 8 * * *", "0 9 * * *", "1")), autoscalingv2.UtilizationMetricType),
			wantErr: "metricType Utilization is supported only by cpu and memory triggers",
		},
		"unknown timezone warns": {
			trigger:      trig("cron", 0, cronMeta("Mars/Olympus", "0 8 * * *", "0 9 * * *", "1")),
			wantWarnings: []string{`timezone "Mars/Olympus" is not a known time zone`},
		},
		"unknown key": {
			trigger:      trig("cron", 0, map[string]string{"timezone": "UTC", "start": "0 8 * * *", "end": "0 9 * * *", "desiredReplicas": "1", "metricName": "x"}),
			wantWarnings: []string{`unknown metadata key "metricName"`},
		},
	})
}
