package provider

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/ebb-autoscaler/ebb/pkg/rpc/metricsv1"
)

// BenchmarkGetExternalMetric is the provider's own cost of one external
// metric request, with an operator client that answers at once.
func BenchmarkGetExternalMetric(b *testing.B) {
	client := &fakeClient{resp: &metricsv1.GetMetricsResponse{Values: []*metricsv1.MetricValue{value("7")}}}
	p := New(client)
	selector, err := labels.Parse("scaledobject.keda.sh/name=orders")
	if err != nil {
		b.Fatal(err)
	}
	info := cmprovider.ExternalMetricInfo{Metric: "s0-redis-orders"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		list, err := p.GetExternalMetric(ctx, "apps", selector, info)
		if err != nil {
			b.Fatal(err)
		}
		if len(list.Items) != 1 {
			b.Fatalf("got %d items", len(list.Items))
		}
	}
}
