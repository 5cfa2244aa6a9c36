package scalers

import (
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

func TestParseBeanstalkd(t *testing.T) {
	base := func(kv ...string) map[string]string {
		m := map[string]string{"server": "beanstalkd.queues:11300", "tube": "default", "value": "15"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
				continue
			}
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	runParseCases(t, map[string]parseCase{
		"defaults": {
			trigger:    trig("beanstalkd", 0, base()),
			wantSpec:   ext("s0-beanstalkd-default", autoscalingv2.AverageValueMetricType, "15"),
			wantTarget: "15",
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				activation(t, c, 0)
				bc := c.(*BeanstalkdConfig)
				if bc.Server != "beanstalkd.queues:11300" || bc.Address != "beanstalkd.queues:11300" || bc.Tube != "default" ||
					bc.Value != 15 || bc.IncludeDelayed || bc.Timeout != 30*time.Second {
					t.Errorf("config %+v", bc)
				}
			},
		},
		"every key, Value, index 4": {
			trigger: withMetricType(trig("beanstalkd", 4, base("tube", "emails", "value", "2.5", "activationValue", "10",
				"includeDelayed", "true", "timeout", "5")), autoscalingv2.ValueMetricType),
			wantSpec:   ext("s4-beanstalkd-emails", autoscalingv2.ValueMetricType, "2500m"),
			wantTarget: "2.500",
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				activation(t, c, 10)
				bc := c.(*BeanstalkdConfig)
				if !bc.IncludeDelayed || bc.Timeout != 5*time.Second || bc.Value != 2.5 {
					t.Errorf("config %+v", bc)
				}
			},
		},
		"tube query-escaped then normalized": {
			trigger:  trig("beanstalkd", 0, base("tube", "jobs/high.prio(1);$x+y")),
			wantSpec: ext("s0-beanstalkd-jobs-2Fhigh-prio-281-29-3B-24x-2By", autoscalingv2.AverageValueMetricType, "15"),
		},
		"default port": {
			trigger: trig("beanstalkd", 0, base("server", "beanstalkd.queues")),
			check: func(t *testing.T, c Config) {
				if a := c.(*BeanstalkdConfig).Address; a != "beanstalkd.queues:11300" {
					t.Errorf("address %q", a)
				}
			},
		},
		"IPv6 without port": {
			trigger: trig("beanstalkd", 0, base("server", "[fd00::1]")),
			check: func(t *testing.T, c Config) {
				if a := c.(*BeanstalkdConfig).Address; a != "[fd00::1]:11300" {
					t.Errorf("address %q", a)
				}
			},
		},
		"IPv6 with port": {
			trigger: trig("beanstalkd", 0, base("server", "[fd00::1]:11301")),
			check: func(t *testing.T, c Config) {
				if a := c.(*BeanstalkdConfig).Address; a != "[fd00::1]:11301" {
					t.Errorf("address %q", a)
				}
			},
		},
		"timeout 0: no timeout of its own": {
			trigger: trig("beanstalkd", 0, base("timeout", "0")),
			check: func(t *testing.T, c Config) {
				if d := c.(*BeanstalkdConfig).Timeout; d != 0 {
					t.Errorf("timeout %v", d)
				}
			},
		},
		"value zero as a metric source": {
			trigger: Trigger{Type: "beanstalkd", Metadata: base("value", "0"), AsMetricSource: true},
		},
		"bad tube name warns": {
			trigger:      trig("beanstalkd", 0, base("tube", "two words")),
			wantWarnings: []string{`trigger 0 (beanstalkd): tube "two words" is not a beanstalkd tube name`},
		},
		"server missing": {
			trigger: trig("beanstalkd", 0, base("server", "")),
			wantErr: "trigger 0 (beanstalkd): server is required",
		},
		"server from the TriggerAuthentication is not read": {
			trigger: withAuth(trig("beanstalkd", 0, base("server", "")), map[string]string{"server": "b:11300"}),
			wantErr: "trigger 0 (beanstalkd): server is required",
		},
		"tube missing": {
			trigger: trig("beanstalkd", 0, base("tube", "")),
			wantErr: "trigger 0 (beanstalkd): tube is required",
		},
		"value missing": {
			trigger: trig("beanstalkd", 0, base("value", "")),
			wantErr: "trigger 0 (beanstalkd): value is required",
		},
		"value required as a metric source too": {
			trigger: Trigger{Type: "beanstalkd", Metadata: base("value", ""), AsMetricSource: true},
			wantErr: "trigger 0 (beanstalkd): value is required",
		},
		"value zero": {
			trigger: trig("beanstalkd", 0, base("value", "0")),
			wantErr: "trigger 0 (beanstalkd): value must be greater than 0",
		},
		"value negative": {
			trigger: trig("beanstalkd", 0, base("value", "-1")),
			wantErr: "value must be greater than 0",
		},
		"value not a number": {
			trigger: trig("beanstalkd", 0, base("value", "lots")),
			wantErr: `trigger 0 (beanstalkd): value "lots" is not a number`,
		},
		"activationValue not a number": {
			trigger: trig("beanstalkd", 0, base("activationValue", "1,5")),
			wantErr: `activationValue "1,5" is not a number`,
		},
		"includeDelayed not a bool": {
			trigger: trig("beanstalkd", 0, base("includeDelayed", "yes")),
			wantErr: `includeDelayed "yes" must be true or false`,
		},
		"timeout not an integer": {
			trigger: trig("beanstalkd", 0, base("timeout", "1.5")),
			wantErr: `timeout "1.5" is not an integer`,
		},
		"timeout negative": {
			trigger: trig("beanstalkd", 0, base("timeout", "-5")),
			wantErr: "timeout must not be negative",
		},
		"timeout too long": {
			trigger: trig("beanstalkd", 0, base("timeout", "86401")),
			wantErr: "timeout must be at most 86400 seconds",
		},
		"utilization refused": {
			trigger: withMetricType(trig("beanstalkd", 0, base()), autoscalingv2.UtilizationMetricType),
			wantErr: "metricType Utilization is supported only by cpu and memory triggers",
		},
		"unknown key": {
			trigger:      trig("beanstalkd", 0, base("queue", "x")),
			wantWarnings: []string{`trigger 0 (beanstalkd): unknown metadata key "queue" is ignored`},
		},
	})
}

func TestValidBeanstalkdTube(t *testing.T) {
	for name, want := range map[string]bool{
		"default": true, "a-b+c/d;e.f$g_h(i)0": true, strings.Repeat("t", 200): true,
		"": false, "-x": false, strings.Repeat("t", 201): false, "a b": false, "a\r\nput": false, "é": false, "a*": false,
	} {
		if got := ValidBeanstalkdTube(name); got != want {
			t.Errorf("ValidBeanstalkdTube(%q) = %v, want %v", name, got, want)
		}
	}
}
