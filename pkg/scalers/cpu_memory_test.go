package scalers

import (
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func resourceSpec(name corev1.ResourceName, container string, target autoscalingv2.MetricTarget) *autoscalingv2.MetricSpec {
	if container != "" {
		return &autoscalingv2.MetricSpec{Type: autoscalingv2.ContainerResourceMetricSourceType,
			ContainerResource: &autoscalingv2.ContainerResourceMetricSource{Name: name, Container: container, Target: target}}
	}
	return &autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{Name: name, Target: target}}
}

func utilization(v int32) autoscalingv2.MetricTarget {
	return autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &v}
}

func averageValue(q string) autoscalingv2.MetricTarget {
	v := resource.MustParse(q)
	return autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &v}
}

func TestParseCPUMemory(t *testing.T) {
	runParseCases(t, map[string]parseCase{
		"cpu utilization": {
			trigger:    withMetricType(trig("cpu", 0, map[string]string{"value": "60"}), autoscalingv2.UtilizationMetricType),
			wantSpec:   resourceSpec(corev1.ResourceCPU, "", utilization(60)),
			noWarnings: true,
			check:      func(t *testing.T, c Config) { activation(t, c, 0) },
		},
		"memory average value": {
			trigger:    withMetricType(trig("memory", 1, map[string]string{"value": "512Mi", "activationValue": "128Mi"}), autoscalingv2.AverageValueMetricType),
			wantSpec:   resourceSpec(corev1.ResourceMemory, "", averageValue("512Mi")),
			wantTarget: "512Mi",
			check:      func(t *testing.T, c Config) { activation(t, c, 128*1024*1024) },
		},
		"container resource": {
			trigger:  withMetricType(trig("cpu", 0, map[string]string{"value": "500m", "containerName": "app"}), autoscalingv2.AverageValueMetricType),
			wantSpec: resourceSpec(corev1.ResourceCPU, "app", averageValue("500m")),
		},
		"activation utilization": {
			trigger: withMetricType(trig("cpu", 0, map[string]string{"value": "60", "activationValue": "20"}), autoscalingv2.UtilizationMetricType),
			check:   func(t *testing.T, c Config) { activation(t, c, 20) },
		},
		"deprecated type key": {
			trigger:      trig("cpu", 0, map[string]string{"type": "Utilization", "value": "50"}),
			wantSpec:     resourceSpec(corev1.ResourceCPU, "", utilization(50)),
			wantWarnings: []string{`trigger 0 (cpu): metadata key "type" is deprecated`},
		},
		"type and metricType agree": {
			trigger:  withMetricType(trig("memory", 0, map[string]string{"type": "AverageValue", "value": "1Gi"}), autoscalingv2.AverageValueMetricType),
			wantSpec: resourceSpec(corev1.ResourceMemory, "", averageValue("1Gi")),
		},
		"type and metricType disagree": {
			trigger: withMetricType(trig("cpu", 0, map[string]string{"type": "AverageValue", "value": "1"}), autoscalingv2.UtilizationMetricType),
			wantErr: "trigger 0 (cpu): metadata type AverageValue and metricType Utilization disagree",
		},
		"bad type key": {
			trigger: trig("cpu", 0, map[string]string{"type": "Value", "value": "1"}),
			wantErr: `trigger 0 (cpu): type "Value" must be one of Utilization, AverageValue`,
		},
		"no metric type": {
			trigger: trig("cpu", 2, map[string]string{"value": "50"}),
			wantErr: "trigger 2 (cpu): metricType is required for cpu triggers",
		},
		"value metric type": {
			trigger: withMetricType(trig("memory", 0, map[string]string{"value": "50"}), autoscalingv2.ValueMetricType),
			wantErr: `trigger 0 (memory): metricType "Value" is not supported for memory triggers`,
		},
		"value missing": {
			trigger: withMetricType(trig("cpu", 0, map[string]string{}), autoscalingv2.UtilizationMetricType),
			wantErr: "trigger 0 (cpu): value is required",
		},
		"utilization not an integer": {
			trigger: withMetricType(trig("cpu", 0, map[string]string{"value": "50.5"}), autoscalingv2.UtilizationMetricType),
			wantErr: `trigger 0 (cpu): value "50.5" is not an integer percentage`,
		},
		"average value not a quantity": {
			trigger: withMetricType(trig("memory", 0, map[string]string{"value": "lots"}), autoscalingv2.AverageValueMetricType),
			wantErr: `trigger 0 (memory): value "lots" is not a quantity`,
		},
		"bad activation": {
			trigger: withMetricType(trig("cpu", 0, map[string]string{"value": "50", "activationValue": "x"}), autoscalingv2.UtilizationMetricType),
			wantErr: `activationValue "x" is not an integer percentage`,
		},
		"unknown key": {
			trigger:      withMetricType(trig("cpu", 0, map[string]string{"value": "50", "containername": "app"}), autoscalingv2.UtilizationMetricType),
			wantWarnings: []string{`trigger 0 (cpu): unknown metadata key "containername" is ignored`},
		},
	})
}
