package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ebb-autoscaler/ebb/e2e/cluster"
)

// chartValues are the --set arguments of each of ebb's charts.
type chartValues struct {
	operator, webhook, metricsAPIServer []string
}

// installEBB installs ebb's three charts with the real helm into
// operatorNamespace, as docs/install.md does (the operator first, with
// ebb's CA), each with --wait, and waits until the external metrics
// APIService is Available. The cluster must run cert-manager and the
// services' images (serviceImages).
func installEBB(ctx context.Context, t *testing.T, c *cluster.Cluster, values chartValues) {
	t.Helper()
	start := time.Now()
	install := func(release string, sets []string, extra ...string) {
		args := append([]string{"install", release, "deploy/charts/" + release, "--namespace", operatorNamespace,
			"--wait", "--timeout", "5m"}, extra...)
		for _, s := range sets {
			args = append(args, "--set", s)
		}
		clusterRun(ctx, t, c, c.Bins.Helm, args...)
	}
	install("ebb-operator", append([]string{"certManager.createCA=true"}, values.operator...), "--create-namespace")
	install("ebb-webhook", values.webhook)
	install("ebb-metrics-apiserver", values.metricsAPIServer)
	clusterRun(ctx, t, c, c.Bins.Kubectl, "wait", "--for=condition=Available", "apiservice/"+externalMetricsAPI, "--timeout=3m")
	t.Logf("Three charts installed and the APIService Available in %s", time.Since(start).Round(time.Millisecond))
}

// clusterRun runs a command (helm, kubectl) from the repository root
// against the cluster and returns its combined output; it fails the test
// if the command fails.
func clusterRun(ctx context.Context, t *testing.T, c *cluster.Cluster, name string, args ...string) string {
	t.Helper()
	out, err := clusterTry(ctx, c, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out
}

// clusterTry is clusterRun that returns the error.
func clusterTry(ctx context.Context, c *cluster.Cluster, name string, args ...string) (string, error) {
	root, err := cluster.RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.KubeconfigPath)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
