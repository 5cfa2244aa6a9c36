package scalers

import (
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

func kubeResourceMeta(kv ...string) map[string]string {
	m := map[string]string{"resourceKind": "ConfigMap", "resourceName": "task-count", "key": "count", "targetValue": "10"}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(m, kv[i])
			continue
		}
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestParseKubernetesResource(t *testing.T) {
	krCfg := func(c Config) *KubernetesResourceConfig { return c.(*KubernetesResourceConfig) }
	runParseCases(t, map[string]parseCase{
		"defaults": {
			trigger:    trig("kubernetes-resource", 0, kubeResourceMeta()),
			wantSpec:   ext("s0-configmap-task-count-count", autoscalingv2.AverageValueMetricType, "10"),
			wantTarget: "10",
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				activation(t, c, 0)
				kc := krCfg(c)
				if kc.ResourceKind != ResourceKindConfigMap || kc.ResourceName != "task-count" || kc.Key != "count" ||
					kc.Format != ResourceFormatNumber || kc.ValueLocation != "" || kc.ValueType != ResourceValueFloat64 ||
					kc.TargetValue != 10 || kc.Namespace != "shop" {
					t.Errorf("config %+v", kc)
				}
			},
		},
		"every key, Secret, json, Value, index 2": {
			trigger: withMetricType(trig("kubernetes-resource", 2, kubeResourceMeta("resourceKind", "Secret", "resourceName", "metrics-data",
				"key", "metrics.json", "format", "json", "valueLocation", "queue.pending", "valueType", "int64",
				"targetValue", "0.5", "activationTargetValue", "2.5")), autoscalingv2.ValueMetricType),
			wantSpec:   ext("s2-secret-metrics-data-metrics-json", autoscalingv2.ValueMetricType, "500m"),
			wantTarget: "500m",
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				activation(t, c, 2.5)
				kc := krCfg(c)
				if kc.ResourceKind != ResourceKindSecret || kc.Format != ResourceFormatJSON || kc.ValueLocation != "queue.pending" ||
					kc.ValueType != ResourceValueInt64 || kc.TargetValue != 0.5 {
					t.Errorf("config %+v", kc)
				}
			},
		},
		"yaml with quantity, the key with an underscore": {
			trigger: trig("kubernetes-resource", 1, kubeResourceMeta("resourceName", "scaling-config", "key", "queue_length",
				"format", "yaml", "valueLocation", "application.workers.active", "valueType", "quantity", "targetValue", "50")),
			wantSpec: ext("s1-configmap-scaling-config-queue_length", autoscalingv2.AverageValueMetricType, "50"),
			check: func(t *testing.T, c Config) {
				if kc := krCfg(c); kc.Format != ResourceFormatYAML || kc.ValueType != ResourceValueQuantity {
					t.Errorf("config %+v", kc)
				}
			},
		},
		"the ScaledObject's namespace, whatever the metadata": {
			trigger: Trigger{Type: "kubernetes-resource", Namespace: "batch", Metadata: kubeResourceMeta()},
			check: func(t *testing.T, c Config) {
				if kc := krCfg(c); kc.Namespace != "batch" {
					t.Errorf("namespace %q, want batch", kc.Namespace)
				}
			},
		},
		"a namespace key is unknown": {
			trigger:      trig("kubernetes-resource", 0, kubeResourceMeta("namespace", "other")),
			wantWarnings: []string{`unknown metadata key "namespace" is ignored`},
			check: func(t *testing.T, c Config) {
				if kc := krCfg(c); kc.Namespace != "shop" {
					t.Errorf("namespace %q, want shop", kc.Namespace)
				}
			},
		},
		"resourceKind missing": {
			trigger: trig("kubernetes-resource", 0, kubeResourceMeta("resourceKind", "")),
			wantErr: "trigger 0 (kubernetes-resource): resourceKind is required",
		},
		"resourceKind Pod": {
			trigger: trig("kubernetes-resource", 0, kubeResourceMeta("resourceKind", "Pod")),
			wantErr: `resourceKind "Pod" must be one of ConfigMap, Secret`,
		},
		"resourceKind is case-sensitive, as in KEDA": {
			trigger: trig("kubernetes-resource", 0, kubeResourceMeta("resourceKind", "configmap")),
			wantErr: `resourceKind "configmap" must be one of ConfigMap, Secret`,
		},
		"resourceName missing": {
			trigger: trig("kubernetes-resource", 0, kubeResourceMeta("resourceName", "")),
			wantErr: "trigger 0 (kubernetes-resource): resourceName is required",
		},
		"key missing": {
			trigger: trig("kubernetes-resource", 0, kubeResourceMeta("key", "")),
			wantErr: "trigger 0 (kubernetes-resource): key is required",
		},
		"targetValue missing": {
			trigger: trig("kubernetes-resource", 0, kubeResourceMeta("targetValue", "")),
			wantErr: "trigger 0 (kubernetes-resource): targetValue is required",
		},
		"targetValue missing as a metric source too, as in KEDA": {
			trigger: Trigger{Type: "kubernetes-resource", Metadata: kubeResourceMeta("targetValue", ""), AsMetricSource: true},
			wantErr: "targetValue is required",
		},
		"targetValue 0": {
			trigger: trig("kubernetes-resource", 0, kubeResourceMeta("targetValue", "0")),
			wantErr: "trigger 0 (kubernetes-resource): targetValue must be greater than 0",
		},
		"targetValue negative": {
			trigger: trig("kubernetes-resource", 0, kubeResourceMeta("targetValue", "-3")),
			wantErr: "targetValue must be greater than 0",
		},
		"targetValue 0 as a metric source": {
			trigger:    Trigger{Type: "kubernetes-resource", Metadata: kubeResourceMeta("targetValue", "0"), AsMetricSource: true},
			noWarnings: true,
		},
		"targetValue not a number": {
			trigger: trig("kubernetes-resource", 0, kubeResourceMeta("targetValue", "ten")),
			wantErr: `targetValue "ten" is not a number`,
		},
		"activationTargetValue not a number": {
			trigger: trig("kubernetes-resource", 0, kubeResourceMeta("activationTargetValue", "1,5")),
			wantErr: `activationTargetValue "1,5" is not a number`,
		},
		"format xml": {
			trigger: trig("kubernetes-resource", 0, kubeResourceMeta("format", "xml")),
			wantErr: `format "xml" must be one of number, json, yaml`,
		},
		"valueType string": {
			trigger: trig("kubernetes-resource", 0, kubeResourceMeta("valueType", "string")),
			wantErr: `valueType "string" must be one of float64, int64, quantity`,
		},
		"valueLocation with format number": {
			trigger: trig("kubernetes-resource", 0, kubeResourceMeta("valueLocation", "some.path")),
			wantErr: "valueLocation is only supported with format json or yaml",
		},
		"json without valueLocation": {
			trigger: trig("kubernetes-resource", 0, kubeResourceMeta("format", "json")),
			wantErr: "valueLocation is required for format json",
		},
		"yaml without valueLocation": {
			trigger: trig("kubernetes-resource", 0, kubeResourceMeta("format", "yaml", "valueLocation", "  ")),
			wantErr: "valueLocation is required for format yaml",
		},
		"metricType Utilization": {
			trigger: withMetricType(trig("kubernetes-resource", 0, kubeResourceMeta()), autoscalingv2.UtilizationMetricType),
			wantErr: "metricType Utilization is supported only by cpu and memory triggers",
		},
		"a resourceName no object can have warns": {
			trigger:      trig("kubernetes-resource", 0, kubeResourceMeta("resourceName", "Task/Count")),
			wantWarnings: []string{`trigger 0 (kubernetes-resource): resourceName "Task/Count" cannot name a ConfigMap or Secret`},
			wantSpec:     ext("s0-configmap-Task-Count-count", autoscalingv2.AverageValueMetricType, "10"),
		},
		"a key no object can have warns": {
			trigger:      trig("kubernetes-resource", 0, kubeResourceMeta("key", "a key")),
			wantWarnings: []string{`key "a key" cannot be a key of a ConfigMap's or Secret's data`},
		},
		"unknown keys warn": {
			trigger:      trig("kubernetes-resource", 0, kubeResourceMeta("resourceNamespace", "x")),
			wantWarnings: []string{`unknown metadata key "resourceNamespace" is ignored`},
		},
		"every problem at once": {
			trigger: trig("kubernetes-resource", 0, map[string]string{"format": "json", "targetValue": "0"}),
			wantErr: "resourceKind is required\ntrigger 0 (kubernetes-resource): resourceName is required\ntrigger 0 (kubernetes-resource): key is required\ntrigger 0 (kubernetes-resource): targetValue must be greater than 0\ntrigger 0 (kubernetes-resource): valueLocation is required for format json",
		},
	})
}
