package app

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/ebb-autoscaler/ebb/pkg/mtls"
	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles"
	"github.com/ebb-autoscaler/ebb/pkg/tlsfiles/tlsfilestest"
	"github.com/ebb-autoscaler/ebb/services/operator/app/options"
)

func TestMain(m *testing.M) {
	// Run applies the logging configuration; every test applies the same.
	logsapi.ReapplyHandling = logsapi.ReapplyHandlingIgnoreUnchanged
	os.Exit(m.Run())
}

// testOptions returns options that need no certificates and no free ports.
func testOptions(t *testing.T) *options.Options {
	t.Helper()
	o := options.NewOptions()
	o.GRPCBindAddress = options.Disabled
	o.HealthBindAddress = options.Disabled
	o.MetricsBindAddress = options.Disabled
	o.LeaderElection.Namespace = "ebb-system"
	return o
}

func TestRunFailsFast(t *testing.T) {
	absent := filepath.Join(t.TempDir(), "absent")
	tests := map[string]struct {
		modify func(*options.Options)
		want   []string
	}{
		"unreadable kubeconfig": {
			modify: func(o *options.Options) { o.Kubeconfig = absent },
			want:   []string{"loading --kubeconfig " + absent},
		},
		"invalid options, all reported": {
			modify: func(o *options.Options) {
				o.Workers = 0
				o.KubeAPIQPS = 0
				o.MetricsBindAddress = "nowhere"
			},
			want: []string{"invalid options", "--metrics-bind-address", "--kube-api-qps", "--workers"},
		},
		"missing certificates with gRPC on": {
			modify: func(o *options.Options) {
				o.GRPCBindAddress = "127.0.0.1:0"
				o.CertDir = absent
			},
			want: []string{"invalid options", "cannot read " + filepath.Join(absent, "tls.crt")},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			o := testOptions(t)
			tc.modify(o)
			done := make(chan error, 1)
			go func() { done <- Run(ctx, o) }()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("Run() succeeded, want an error")
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("Run() error = %q, want it to contain %q", err, w)
					}
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run() did not fail within 10s")
			}
		})
	}
}

func TestCommandVersion(t *testing.T) {
	cmd := NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--version"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("--version: %v", err)
	}
	if !strings.HasPrefix(out.String(), "v") || !strings.Contains(out.String(), "commit") {
		t.Errorf("--version printed %q, want the version line", out.String())
	}
}

func TestCommandHelpHasSections(t *testing.T) {
	cmd := NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--help"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"Leader election flags:", "Serving flags:", "Logging flags:", "--kube-api-qps", "--leader-elect-renew-deadline", "--version"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help output lacks %q", want)
		}
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// deadKubeconfig writes a kubeconfig whose API server refuses connections.
func deadKubeconfig(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := "https://" + lis.Addr().String()
	_ = lis.Close()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, []byte(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "`+server+`", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: test}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
`), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func healthStatus(ctx context.Context, conn *grpc.ClientConn, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN, err
	}
	return resp.GetStatus(), nil
}

// waitFor polls cond until it returns nil or the time is up.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

// TestRunServesAndShutsDown runs the whole operator against an API server
// that cannot be reached: it must serve its health, metrics and mTLS gRPC
// ports, report not ready (no synced caches, no leadership) while staying
// live, and shut down cleanly, and promptly, when its context ends.
func TestRunServesAndShutsDown(t *testing.T) {
	for name, leaderElect := range map[string]bool{"leader election": true, "no leader election": false} {
		t.Run(name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()

			ca := tlsfilestest.NewCA(t, "ebb test CA")
			serverDir, clientDir := t.TempDir(), t.TempDir()
			tlsfilestest.WriteAtomic(t, serverDir, tlsfilestest.Files(ca.Issue(t, "ebb-operator", []string{"ebb-operator"}, tlsfilestest.LeafOptions{}), ca.PEM))
			tlsfilestest.WriteAtomic(t, clientDir, tlsfilestest.Files(ca.Issue(t, "ebb-metrics-apiserver", nil, tlsfilestest.LeafOptions{}), ca.PEM))

			o := testOptions(t)
			o.Kubeconfig = deadKubeconfig(t)
			o.LeaderElection.Enabled = leaderElect
			o.GRPCBindAddress = freeAddr(t)
			o.HealthBindAddress = freeAddr(t)
			o.MetricsBindAddress = freeAddr(t)
			o.CertDir = serverDir

			done := make(chan error, 1)
			go func() { done <- Run(ctx, o) }()

			// Health: not ready, live.
			healthConn, err := grpc.NewClient(o.HealthBindAddress, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = healthConn.Close() }()
			waitFor(t, "health", func() error {
				ready, err := healthStatus(ctx, healthConn, "")
				if err != nil {
					return err
				}
				live, err := healthStatus(ctx, healthConn, "liveness")
				if err != nil {
					return err
				}
				if ready != healthpb.HealthCheckResponse_NOT_SERVING || live != healthpb.HealthCheckResponse_SERVING {
					return errors.New("readiness " + ready.String() + ", liveness " + live.String() + "; want NOT_SERVING, SERVING")
				}
				return nil
			})

			// Metrics: the private registry with its collectors.
			waitFor(t, "metrics", func() error {
				resp, err := http.Get("http://" + o.MetricsBindAddress + "/metrics")
				if err != nil {
					return err
				}
				defer func() { _ = resp.Body.Close() }()
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					return err
				}
				wantLeader := "ebb_operator_leader 0"
				if !leaderElect {
					wantLeader = "ebb_operator_leader 1"
				}
				for _, want := range []string{"go_goroutines", "process_start_time_seconds", wantLeader, "ebb_tlsfiles_certificate_expiry_timestamp_seconds", "promhttp_metric_handler_requests_total"} {
					if !strings.Contains(string(body), want) {
						return errors.New("/metrics lacks " + want)
					}
				}
				return nil
			})

			// gRPC: a client with a certificate from the CA gets through...
			clientSrc, err := tlsfiles.New(clientDir)
			if err != nil {
				t.Fatal(err)
			}
			grpcConn, err := grpc.NewClient(o.GRPCBindAddress, grpc.WithTransportCredentials(mtls.ClientCredentials(clientSrc, "ebb-operator")))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = grpcConn.Close() }()
			waitFor(t, "mTLS gRPC", func() error {
				st, err := healthStatus(ctx, grpcConn, "")
				if err != nil {
					return err
				}
				if st != healthpb.HealthCheckResponse_SERVING {
					return errors.New("status " + st.String())
				}
				return nil
			})
			// The MetricsService itself is not served: the caches cannot
			// sync, so clients' health checks on its name steer them away.
			if st, err := healthStatus(ctx, grpcConn, metricsServiceName); err != nil || st != healthpb.HealthCheckResponse_NOT_SERVING {
				t.Errorf("status of %s = %v, %v; want NOT_SERVING", metricsServiceName, st, err)
			}
			// ...and one without a certificate does not.
			plainConn, err := grpc.NewClient(o.GRPCBindAddress, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = plainConn.Close() }()
			cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
			if _, err := healthStatus(cctx, plainConn, ""); err == nil {
				t.Error("a plaintext client reached the mTLS gRPC server")
			}
			ccancel()
			_ = grpcConn.Close()
			_ = plainConn.Close()

			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run() after cancel = %v, want nil", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run() did not return within 30s of cancel")
			}
			// Every port is released.
			for _, addr := range []string{o.GRPCBindAddress, o.HealthBindAddress, o.MetricsBindAddress} {
				lis, err := net.Listen("tcp", addr)
				if err != nil {
					t.Errorf("%s still in use after Run returned: %v", addr, err)
					continue
				}
				_ = lis.Close()
			}
		})
	}
}

func TestRunFailsOnPortInUse(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = busy.Close() }()
	o := testOptions(t)
	o.Kubeconfig = deadKubeconfig(t)
	o.MetricsBindAddress = busy.Addr().String()
	err = Run(ctx, o)
	if err == nil || !strings.Contains(err.Error(), "listening for the metrics server") {
		t.Fatalf("Run() = %v, want an error about the metrics port", err)
	}
}

func TestWorkqueueMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newWorkqueueMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	q := workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[string]{Name: "wqtest", MetricsProvider: m})
	defer q.ShutDown()
	q.Add("a")
	q.Add("b")
	q.Add("a")
	item, _ := q.Get()
	q.Done(item)
	err = testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP workqueue_adds_total Total number of adds handled by the workqueue.
# TYPE workqueue_adds_total counter
workqueue_adds_total{name="wqtest"} 2
# HELP workqueue_depth Current depth of the workqueue.
# TYPE workqueue_depth gauge
workqueue_depth{name="wqtest"} 1
`), "workqueue_adds_total", "workqueue_depth")
	if err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "workqueue_work_duration_seconds", "workqueue_queue_duration_seconds"); err != nil || n != 2 {
		t.Errorf("duration histograms: %d series, %v; want 2", n, err)
	}
	// A second registration with the same registry is refused.
	if _, err := newWorkqueueMetrics(reg); err == nil {
		t.Error("registering the workqueue metrics twice succeeded")
	}
}

func TestEventsV1Recorder(t *testing.T) {
	fake := events.NewFakeRecorder(10)
	r := eventsV1Recorder{rec: fake}
	obj := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}
	r.Event(obj, corev1.EventTypeNormal, "Scaled", "to 3 %s")
	r.Eventf(obj, corev1.EventTypeWarning, "ScaleFailed", "to %d", 4)
	r.AnnotatedEventf(obj, map[string]string{"a": "b"}, corev1.EventTypeNormal, "Paused", "at %d", 0)
	want := []string{"Normal Scaled to 3 %s", "Warning ScaleFailed to 4", "Normal Paused at 0"}
	for _, w := range want {
		select {
		case got := <-fake.Events:
			if got != w {
				t.Errorf("event = %q, want %q", got, w)
			}
		default:
			t.Fatalf("event %q not recorded", w)
		}
	}
}

func TestDropManagedFields(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name:          "p",
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
	}}
	got, err := dropManagedFields(pod)
	if err != nil {
		t.Fatal(err)
	}
	if mf := got.(*corev1.Pod).ManagedFields; mf != nil {
		t.Errorf("managedFields = %v, want none", mf)
	}
	tombstone := cache.DeletedFinalStateUnknown{Key: "ns/p", Obj: pod}
	if got, err := dropManagedFields(tombstone); err != nil || got != any(tombstone) {
		t.Errorf("tombstone changed: %v, %v", got, err)
	}
}
