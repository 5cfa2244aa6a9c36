package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"

	"github.com/ebb-autoscaler/ebb/e2e/cluster"
)

// e2eFieldManager is the field manager of the objects the tests apply.
const e2eFieldManager = "ebb-e2e"

// chartRBACResources are the kinds applyChartRBAC takes from a chart, the
// ServiceAccount and its RBAC, by kind.
var chartRBACResources = map[string]schema.GroupVersionResource{
	"ServiceAccount":     {Version: "v1", Resource: "serviceaccounts"},
	"ClusterRole":        {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"},
	"ClusterRoleBinding": {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"},
	"Role":               {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
	"RoleBinding":        {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
}

// applyChartRBAC renders the Helm chart deploy/charts/<chart> as release
// <chart> in ebb-system with the real helm binary (sets are --set values)
// and server-side applies its ServiceAccount, ClusterRoles,
// ClusterRoleBindings, Roles and RoleBindings, and nothing else. It
// returns the name of the ServiceAccount the chart's pods run as, so a
// test runs a service with exactly the permissions its chart grants: a
// rule the chart lacks fails the test. Applying again (a service started
// twice) changes nothing.
func applyChartRBAC(ctx context.Context, t *testing.T, c *cluster.Cluster, chart string, sets ...string) (serviceAccount string) {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"template", chart, filepath.Join(root, "deploy", "charts", chart), "--namespace", operatorNamespace}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	home := t.TempDir()
	cmd := exec.CommandContext(ctx, c.Bins.Helm, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}

	objs, podAccount, err := chartRBACObjects(stdout.Bytes())
	if err != nil {
		t.Fatalf("Rendering chart %s: %v", chart, err)
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		res := dyn.Resource(chartRBACResources[o.GetKind()])
		var ri dynamic.ResourceInterface = res
		if ns := o.GetNamespace(); ns != "" {
			ri = res.Namespace(ns)
		}
		if _, err := ri.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: e2eFieldManager, Force: true}); err != nil {
			t.Fatalf("Applying chart %s's %s %s: %v", chart, o.GetKind(), objectName(o), err)
		}
	}
	t.Logf("Applied the ServiceAccount %s/%s and the RBAC of chart %s (%d objects)", operatorNamespace, podAccount, chart, len(objs))
	return podAccount
}

// chartRBACObjects decodes the multi-document output of helm template and
// returns its ServiceAccounts and RBAC objects, and the ServiceAccount of
// its Deployment, which the chart must render.
func chartRBACObjects(manifests []byte) ([]*unstructured.Unstructured, string, error) {
	var (
		objs        []*unstructured.Unstructured
		accounts    = map[string]bool{}
		deployments int
		podAccount  string
	)
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, "", err
		}
		if len(m) == 0 {
			continue // a document of comments only
		}
		o := &unstructured.Unstructured{Object: m}
		gvk := o.GroupVersionKind()
		if gvr, ok := chartRBACResources[gvk.Kind]; ok {
			if gvk.GroupVersion() != gvr.GroupVersion() {
				return nil, "", fmt.Errorf("%s %s: apiVersion %s, want %s", gvk.Kind, objectName(o), gvk.GroupVersion(), gvr.GroupVersion())
			}
			objs = append(objs, o)
			if gvk.Kind == "ServiceAccount" {
				accounts[o.GetName()] = true
			}
			continue
		}
		if gvk.Kind == "Deployment" {
			deployments++
			var err error
			podAccount, _, err = unstructured.NestedString(m, "spec", "template", "spec", "serviceAccountName")
			if err != nil {
				return nil, "", fmt.Errorf("the Deployment %s: %w", objectName(o), err)
			}
		}
	}
	switch {
	case deployments != 1:
		return nil, "", fmt.Errorf("%d Deployments, want 1", deployments)
	case podAccount == "":
		return nil, "", errors.New("the Deployment names no ServiceAccount")
	case !accounts[podAccount]:
		return nil, "", fmt.Errorf("the Deployment runs as ServiceAccount %q, which the chart does not create", podAccount)
	}
	return objs, podAccount, nil
}

func objectName(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetName()
	}
	return o.GetNamespace() + "/" + o.GetName()
}
