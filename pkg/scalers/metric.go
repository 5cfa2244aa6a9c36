package scalers

import (
	"fmt"
	"math"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
)

var normalizer = strings.NewReplacer("/", "-", ".", "-", ":", "-", "%", "-", "(", "-", ")", "-")

// Normalize makes s usable in an external metric name as KEDA does: each
// of / . : % ( ) becomes "-". Nothing else changes.
func Normalize(s string) string { return normalizer.Replace(s) }

// ExternalMetricName returns the name of the External metric of the
// trigger at index: "s<index>-" + name. name is used as given; the scalers
// normalize it first, external scalers do not.
func ExternalMetricName(index int, name string) string {
	return fmt.Sprintf("s%d-%s", index, name)
}

var cronReplacer = strings.NewReplacer(" ", "", "*", "x", "/", "Sl", "?", "Qm", ",", "Cm")

// CronScheduleName rewrites a cron schedule for a metric name as KEDA
// does: spaces removed, "*" → "x", "/" → "Sl", "?" → "Qm", "," → "Cm".
func CronScheduleName(schedule string) string { return cronReplacer.Replace(schedule) }

// CronMetricName returns the full metric name of a cron trigger:
// "s<index>-" + Normalize("cron-<timezone>-<start>-<end>"), start and end
// rewritten by CronScheduleName.
func CronMetricName(index int, timezone, start, end string) string {
	return ExternalMetricName(index, Normalize(fmt.Sprintf("cron-%s-%s-%s", timezone, CronScheduleName(start), CronScheduleName(end))))
}

// FloatQuantity is the HPA target for a threshold parsed as a float, as
// KEDA builds it: the value formatted with "%.3f" and parsed as a
// quantity, so 0.75 is 750m and 12.5 is 12.500. NaN and infinities are 0.
func FloatQuantity(v float64) resource.Quantity {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return resource.MustParse("0")
	}
	q, err := resource.ParseQuantity(fmt.Sprintf("%.3f", v))
	if err != nil {
		// Not reachable for a finite float; never panic on user input.
		return resource.MustParse("0")
	}
	return q
}

// IntQuantity is the HPA target for a threshold parsed as an integer, as
// KEDA builds it: a plain decimal quantity.
func IntQuantity(v int64) resource.Quantity {
	return *resource.NewQuantity(v, resource.DecimalSI)
}

// metricTarget puts q in the field of the target type: averageValue for
// AverageValue, value otherwise, as KEDA does.
func metricTarget(t autoscalingv2.MetricTargetType, q resource.Quantity) autoscalingv2.MetricTarget {
	target := autoscalingv2.MetricTarget{Type: t}
	if t == autoscalingv2.AverageValueMetricType {
		target.AverageValue = &q
	} else {
		target.Value = &q
	}
	return target
}

// externalMetricSpec is an External metric without selector.
func externalMetricSpec(name string, t autoscalingv2.MetricTargetType, q resource.Quantity) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ExternalMetricSourceType,
		External: &autoscalingv2.ExternalMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: name},
			Target: metricTarget(t, q),
		},
	}
}

// externalTargetType returns the target type of an External metric from
// the trigger's metricType: AverageValue when unset, Value allowed,
// Utilization refused as KEDA refuses it. Other values are refused too
// (KEDA would copy them to the HPA, which the API server then rejects).
func (r *reader) externalTargetType() autoscalingv2.MetricTargetType {
	switch r.t.MetricType {
	case "":
		return autoscalingv2.AverageValueMetricType
	case autoscalingv2.AverageValueMetricType, autoscalingv2.ValueMetricType:
		return r.t.MetricType
	case autoscalingv2.UtilizationMetricType:
		r.fail("metricType", "metricType Utilization is supported only by cpu and memory triggers; use AverageValue or Value")
	default:
		r.fail("metricType", "metricType %q is not supported; use AverageValue or Value", r.t.MetricType)
	}
	return ""
}
