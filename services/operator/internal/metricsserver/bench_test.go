package metricsserver

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2"

	"github.com/ebb-autoscaler/ebb/pkg/mtls"
	"github.com/ebb-autoscaler/ebb/pkg/rpc/metricsv1"
	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles"
	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles/tlsfilestest"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
)

// benchServerName is the name the benchmark operator's certificate is
// valid for.
const benchServerName = "ebb-operator.ebb-system.svc"

// cachedFixture is a Server with one ScaledObject whose metrics-api
// trigger has useCachedMetrics and a fresh scale-loop poll remembered, so
// GetMetrics answers from the cache, as the HPA's reads of such a trigger
// are answered.
func cachedFixture(b *testing.B) *fixture {
	b.Helper()
	f := newFixture(b)
	tr := trigger("a", "5", "")
	tr.UseCachedMetrics = true
	so := f.addSO(b, nil, tr)
	trs, err := f.server.triggers.Scalers(so)
	if err != nil {
		b.Fatal(err)
	}
	trs[0].Remember(scaler.Reading{Value: resource.MustParse("750m")}, nil, now)
	// The scaler fails: a read that polls it instead of answering from
	// the cache shows up as an error.
	f.scaler(b, "a").set(fail(scaler.ErrUnreachable))
	return f
}

// BenchmarkGetMetricsCached is one GetMetrics call answered from the
// scale loop's last poll, in process.
func BenchmarkGetMetricsCached(b *testing.B) {
	f := cachedFixture(b)
	req := request("s0-metric-api-a")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := f.server.GetMetrics(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if v := resp.GetValues()[0].GetValue().GetValue(); v != "750m" {
			b.Fatalf("value = %q, want 750m", v)
		}
	}
}

// BenchmarkGetMetricsCachedParallel is BenchmarkGetMetricsCached with
// concurrent callers (GOMAXPROCS of them), for contention on the server's
// locks.
func BenchmarkGetMetricsCachedParallel(b *testing.B) {
	f := cachedFixture(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := request("s0-metric-api-a")
		for pb.Next() {
			if _, err := f.server.GetMetrics(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGetMetricsPolled is one GetMetrics call that polls the
// trigger's (fake, instant) scaler: the server's own cost on the path of
// a trigger without useCachedMetrics.
func BenchmarkGetMetricsPolled(b *testing.B) {
	f := newFixture(b)
	f.addSO(b, nil, trigger("a", "5", ""))
	f.scaler(b, "a").set(value("0.75"))
	req := request("s0-metric-api-a")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.server.GetMetrics(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetMetricsGRPC is one cached GetMetrics call through a real
// gRPC connection with mutual TLS on loopback, as the metrics-apiserver
// makes it: one long-lived connection, so the handshake is not measured.
// The Parallel sub-benchmark has GOMAXPROCS callers share it.
func BenchmarkGetMetricsGRPC(b *testing.B) {
	f := cachedFixture(b)
	client := grpcClient(b, f.server)
	ctx := context.Background()
	req := request("s0-metric-api-a")
	// The first call connects.
	if _, err := client.GetMetrics(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.Run("Sequential", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := client.GetMetrics(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := client.GetMetrics(ctx, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// grpcClient serves s over mTLS on a loopback port and returns a client
// of it with a certificate of the same CA.
func grpcClient(b *testing.B, s *Server) metricsv1.MetricsServiceClient {
	b.Helper()
	ca := tlsfilestest.NewCA(b, "ebb-bench-ca")
	serverSrc := benchSource(b, tlsfilestest.Files(ca.Issue(b, "ebb-operator", []string{benchServerName}, tlsfilestest.LeafOptions{}), ca.PEM))
	clientSrc := benchSource(b, tlsfilestest.Files(ca.Issue(b, "ebb-metrics-apiserver", nil, tlsfilestest.LeafOptions{}), ca.PEM))

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(mtls.ServerCredentials(serverSrc, mtls.WithLogger(klog.Background()))))
	metricsv1.RegisterMetricsServiceServer(gs, s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(lis)
	}()
	b.Cleanup(func() { gs.Stop(); <-done })

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(mtls.ClientCredentials(clientSrc, benchServerName)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	return metricsv1.NewMetricsServiceClient(conn)
}

// benchSource writes files into a new directory and loads them.
func benchSource(b *testing.B, files map[string][]byte) *tlsfiles.Source {
	b.Helper()
	dir := b.TempDir()
	tlsfilestest.WriteAtomic(b, dir, files)
	src, err := tlsfiles.New(dir, tlsfiles.WithoutWatcher())
	if err != nil {
		b.Fatal(err)
	}
	return src
}
