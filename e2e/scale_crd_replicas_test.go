package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/e2e/cluster"
	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedaclient "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned"
)

// TestScaleCRDReplicas scales custom resources with a /scale
// subresource to and from zero and counts, in the API server's audit log,
// what the operator asks for on each poll. A Widget, whose list and watch
// the chart grants (rbac.extraTargetResources), has its replicas read from
// the operator's cache: no GET of its /scale while the loop polls, only
// the reads of the two writes. A Gizmo, which the RBAC does not let the
// operator watch, is still scaled, through a /scale GET per poll, and the
// operator says so once in its log.
func TestScaleCRDReplicas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := startCluster(ctx, t, cluster.Options{AuditLog: true})
	operator := startOperator(ctx, t, c, "")
	// The chart, with list and watch on Widgets for the operator.
	applyChartRBAC(ctx, t, c, "ebb-operator",
		"rbac.extraTargetResources[0].apiGroups[0]=e2e.ebb.dev", "rbac.extraTargetResources[0].resources[0]=widgets")

	const ns = "crd-replicas"
	createNamespace(ctx, t, c, ns)
	ext, err := apiextensionsclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	gizmos := widgetCRD("v1")
	gizmos.Name = "gizmos.e2e.ebb.dev"
	gizmos.Spec.Names = apiextensionsv1.CustomResourceDefinitionNames{Plural: "gizmos", Singular: "gizmo", Kind: "Gizmo", ListKind: "GizmoList"}
	for _, crd := range []*apiextensionsv1.CustomResourceDefinition{widgetCRD("v1"), gizmos} {
		if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	widgets := schema.GroupVersionResource{Group: "e2e.ebb.dev", Version: "v1", Resource: "widgets"}
	gizmoResource := schema.GroupVersionResource{Group: "e2e.ebb.dev", Version: "v1", Resource: "gizmos"}
	for _, o := range []struct {
		gvr  schema.GroupVersionResource
		kind string
	}{{widgets, "Widget"}, {gizmoResource, "Gizmo"}} {
		pollUntil(ctx, t, o.kind+" worker to be created", time.Minute, func(ctx context.Context) (bool, error) {
			_, err := dyn.Resource(o.gvr).Namespace(ns).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "e2e.ebb.dev/v1", "kind": o.kind,
				"metadata": map[string]any{"name": "worker"},
				"spec":     map[string]any{"replicas": int64(0)},
			}}, metav1.CreateOptions{})
			return err == nil, err
		})
	}

	// The Widget's trigger: a metrics API served by a pod, at 0 for now.
	valueFile := filepath.Join(t.TempDir(), "value")
	setValue := func(v int) {
		t.Helper()
		if err := os.WriteFile(valueFile, []byte(fmt.Sprint(v)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	setValue(0)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RunPod(ctx, cluster.PodSpec{
		Namespace: ns, Name: "metrics", Path: exe,
		Env:   []string{metricsAPIValueFileEnv + "=" + valueFile},
		Ports: []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromInt32(8080)}},
	}); err != nil {
		t.Fatalf("Running the metrics API: %v", err)
	}

	keda, err := kedaclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	const pollingInterval, cooldown = 1, 3
	widgetSO := &v1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: "widget"},
		Spec: v1alpha1.ScaledObjectSpec{
			ScaleTargetRef:  &v1alpha1.ScaleTarget{APIVersion: "e2e.ebb.dev/v1", Kind: "Widget", Name: "worker"},
			PollingInterval: ptr.To[int32](pollingInterval), CooldownPeriod: ptr.To[int32](cooldown),
			Triggers: []v1alpha1.ScaleTrigger{{Type: "metrics-api", Metadata: map[string]string{
				"url": "http://metrics." + ns + ".svc:8080/value", "valueLocation": "queue.length", "targetValue": "5",
			}}},
		},
	}
	begin := time.Now()
	if _, err := keda.KedaV1alpha1().ScaledObjects(ns).Create(ctx, widgetSO, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	replicas := func(gvr schema.GroupVersionResource) func(context.Context) (int64, error) {
		return func(ctx context.Context) (int64, error) {
			o, err := dyn.Resource(gvr).Namespace(ns).Get(ctx, "worker", metav1.GetOptions{})
			if err != nil {
				return -1, err
			}
			n, _, err := unstructured.NestedInt64(o.Object, "spec", "replicas")
			return n, err
		}
	}
	waitReplicas := func(gvr schema.GroupVersionResource, want int64) {
		t.Helper()
		pollUntil(ctx, t, fmt.Sprintf("%s worker at %d replicas", gvr.Resource, want), time.Minute, func(ctx context.Context) (bool, error) {
			n, err := replicas(gvr)(ctx)
			return n == want, err
		})
	}
	polls := func() float64 {
		t.Helper()
		m, err := scrapeMetrics(ctx, operator.Host.Addr.String())
		if err != nil {
			t.Fatalf("Reading the operator's metrics: %v", err)
		}
		return m["ebb_poller_poll_duration_seconds_count"]
	}
	// window counts the operator's requests while the loop polls at least
	// minPolls times.
	const minPolls = 6
	var from time.Time
	window := func(what string) (auditTally, float64) {
		t.Helper()
		before := polls()
		from = time.Now()
		var after float64
		pollUntil(ctx, t, fmt.Sprintf("%d polls (%s)", minPolls, what), time.Minute, func(context.Context) (bool, error) {
			after = polls()
			return after-before >= minPolls, nil
		})
		return auditCount(t, c, from, time.Now()), after - before
	}

	// At zero, inactive: once the Widgets' cache has synced (moments after
	// the controller resolved the target), polls read no /scale.
	pollUntil(ctx, t, "the widget ScaledObject Active=False", time.Minute, func(ctx context.Context) (bool, error) {
		so, err := keda.KedaV1alpha1().ScaledObjects(ns).Get(ctx, "widget", metav1.GetOptions{})
		return err == nil && so.Status.Conditions.Active().IsFalse(), err
	})
	var quiet auditTally
	var n float64
	for try := 1; ; try++ {
		if quiet, n = window("at zero"); quiet.by["get widgets/scale"] == 0 {
			break
		}
		if try == 3 {
			t.Fatalf("Still %d GETs of the Widget's /scale in %.0f polls at zero, want none: the operator's requests:\n%s",
				quiet.by["get widgets/scale"], n, quiet.top(10))
		}
	}
	t.Logf("At zero: %.0f polls, %d requests from the operator, none of the Widget's /scale", n, quiet.total)
	synced := from

	// Active: scaled 0→1 through /scale, then polled with no read of it.
	setValue(3)
	waitReplicas(widgets, 1)
	active, n := window("at one")
	if got := active.by["get widgets/scale"]; got != 0 {
		t.Errorf("%d GETs of the Widget's /scale in %.0f polls while active, want none: the operator's requests:\n%s", got, n, active.top(10))
	}
	t.Logf("At one: %.0f polls, %d requests from the operator, none of the Widget's /scale", n, active.total)

	// Inactive again: back to zero after the cooldown.
	setValue(0)
	waitReplicas(widgets, 0)
	end := time.Now()
	all, since := auditCount(t, c, begin, end), auditCount(t, c, synced, end)
	t.Logf("Whole run: %d GETs and %d updates of the Widget's /scale (before the cache synced: %d GETs), %d lists and %d watches of Widgets",
		all.by["get widgets/scale"], all.by["update widgets/scale"], all.by["get widgets/scale"]-since.by["get widgets/scale"],
		all.by["list widgets"], all.by["watch widgets"])
	// Once the cache synced, the Widget's /scale is read only by the writes
	// (0→1, 1→0), each reading it first for its resourceVersion.
	if gets, updates := since.by["get widgets/scale"], since.by["update widgets/scale"]; updates != 2 || gets != updates {
		t.Errorf("%d GETs and %d updates of the Widget's /scale once its cache synced, want 2 of each: the operator's requests:\n%s",
			gets, updates, since.top(15))
	}
	if all.by["list widgets"]+all.by["watch widgets"] == 0 {
		t.Errorf("The operator neither listed nor watched Widgets: its requests:\n%s", all.top(15))
	}

	// A Gizmo cannot be watched (no list and watch on it): it is still
	// scaled, its replicas read through /scale on every poll, and the
	// operator says so once.
	gizmoSO := cronScaledObject("gizmo", "worker", func(so *v1alpha1.ScaledObject) {
		so.Spec.ScaleTargetRef.APIVersion, so.Spec.ScaleTargetRef.Kind = "e2e.ebb.dev/v1", "Gizmo"
		so.Spec.PollingInterval = ptr.To[int32](pollingInterval)
		so.Spec.Triggers[0].Metadata = map[string]string{"timezone": "UTC", "start": "0 0 1 1 *", "end": "0 0 31 12 *", "desiredReplicas": "2"}
	})
	if _, err := keda.KedaV1alpha1().ScaledObjects(ns).Create(ctx, gizmoSO, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitReplicas(gizmoResource, 1)
	fallback, n := window("with a Gizmo")
	if got := fallback.by["get gizmos/scale"]; got == 0 {
		t.Errorf("No GET of the Gizmo's /scale in %.0f polls: how were its replicas read? The operator's requests:\n%s", n, fallback.top(10))
	}
	const said = "read through /scale on every poll"
	log, err := os.ReadFile(operator.Process.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	var told []string
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, said) {
			told = append(told, line)
		}
	}
	if len(told) != 1 || !strings.Contains(told[0], "gizmos") || !strings.Contains(told[0], "rbac.extraTargetResources") {
		t.Errorf("The operator's log tells %d times that replicas are %s, want once, for gizmos, naming rbac.extraTargetResources:\n%s",
			len(told), said, strings.Join(told, "\n"))
	}
	t.Logf("With a Gizmo that cannot be watched: %d GETs of its /scale in %.0f polls of the two ScaledObjects", fallback.by["get gizmos/scale"], n)
}
