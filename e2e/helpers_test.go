package e2e

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/e2e/cluster"
)

// startCluster starts a cluster for the test and stops it when the test
// ends; it fails the test if either does not work.
func startCluster(ctx context.Context, t *testing.T, opts cluster.Options) *cluster.Cluster {
	t.Helper()
	start := time.Now()
	c, err := cluster.Start(ctx, opts)
	if err != nil {
		t.Fatalf("Starting the cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("Stopping the cluster: %v", err)
		}
	})
	t.Logf("Cluster %s ready in %s (cert-manager: %v; logs: %s)", c.Name, time.Since(start).Round(time.Millisecond), opts.CertManager, c.LogDir)
	return c
}

// createNamespace creates namespace name.
func createNamespace(ctx context.Context, t *testing.T, c *cluster.Cluster, name string) {
	t.Helper()
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// createDeployment creates a Deployment whose pods never run (no
// scheduler or kubelet): enough for the controllers and the HPA.
func createDeployment(ctx context.Context, t *testing.T, c *cluster.Cluster, ns, name string, replicas int32) *appsv1.Deployment {
	t.Helper()
	labels := map[string]string{"app": name}
	d, err := c.Client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: "registry.invalid/" + name + ":1"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// startRedis runs a real Redis server (Debian's redis-server) as pod
// "redis" in ns, behind Service redis.<ns>.svc:6379, with password if it is
// not empty, and returns a client of it.
func startRedis(ctx context.Context, t *testing.T, c *cluster.Cluster, ns, password string) *redis.Client {
	t.Helper()
	redisServer, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed (make test installs it with hack/install-event-sources.sh): %v", err)
	}
	args := []string{"--port", "6379", "--bind", "0.0.0.0", "--save", "", "--appendonly", "no"}
	if password != "" {
		args = append(args, "--requirepass", password)
	} else {
		// Reachable from other network namespaces without a password.
		args = append(args, "--protected-mode", "no")
	}
	pod, err := c.RunPod(ctx, cluster.PodSpec{
		Namespace: ns, Name: "redis", Path: redisServer, Args: args,
		Ports: []corev1.ServicePort{{Name: "redis", Port: 6379, TargetPort: intstr.FromInt32(6379)}},
	})
	if err != nil {
		t.Fatalf("Running Redis: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: net.JoinHostPort(pod.Host.Addr.String(), "6379"), Password: password})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// serviceImages builds ebb's three services and returns the image map that
// makes the harness's node run the charts' images as these binaries.
func serviceImages(ctx context.Context, t *testing.T) map[string]string {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	binDir := t.TempDir()
	images := map[string]string{}
	for _, svc := range []string{"operator", "webhook", "metrics-apiserver"} {
		bin := filepath.Join(binDir, "ebb-"+svc)
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./services/"+svc)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("Building the %s: %v\n%s", svc, err, out)
		}
		images["ghcr.io/ebb-autoscaler/ebb-"+svc] = bin
	}
	return images
}
