package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

const (
	operatorNamespace = "ebb-system"
	// keepHPAOnDelete is the operator's annotation that keeps an HPA when
	// its ScaledObject is deleted.
	keepHPAOnDelete = "scaledobject.keda.sh/keep-hpa-on-delete"
)

// startOperator installs ebb's CRDs and the ServiceAccount and RBAC of the
// ebb-operator chart, builds the operator and runs it as a pod with that
// ServiceAccount. With certSecret, the pod gets that cert-manager Secret as
// its --cert-dir and serves the MetricsService on :9443; without it, gRPC
// is off. mutate, if any, change the pod's spec before it starts (more
// arguments, Secret volumes).
func startOperator(ctx context.Context, t *testing.T, c *cluster.Cluster, certSecret string, mutate ...func(*cluster.PodSpec)) *cluster.Pod {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyCRDs(ctx, filepath.Join(root, "deploy", "crds")); err != nil {
		t.Fatalf("Installing ebb's CRDs: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "ebb-operator")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./services/operator")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("Building the operator: %v\n%s", err, out)
	}

	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	// The chart's defaults: leader election in the release namespace on the
	// Lease ebb-operator, to which its Role limits get and update; the
	// args below elect on that Lease.
	serviceAccount := applyChartRBAC(ctx, t, c, "ebb-operator")

	spec := cluster.PodSpec{
		Namespace:      operatorNamespace,
		Name:           "ebb-operator",
		ServiceAccount: serviceAccount,
		Path:           bin,
		Args: []string{
			"--leader-elect=true",
			"--leader-elect-namespace=" + operatorNamespace,
			"--leader-elect-id=ebb-operator",
			"--health-bind-address=:8081",
			"--metrics-bind-address=:8080",
			"--v=2",
		},
		Ports: []corev1.ServicePort{{Name: "health", Port: 8081, TargetPort: intstr.FromInt32(8081)}},
	}
	if certSecret == "" {
		spec.Args = append(spec.Args, "--grpc-bind-address=0")
	} else {
		certDir := filepath.Join(t.TempDir(), "certs")
		spec.Args = append(spec.Args, "--grpc-bind-address=:9443", "--cert-dir="+certDir)
		spec.Secrets = []cluster.SecretVolume{{SecretName: certSecret, Dir: certDir}}
		spec.Ports = append(spec.Ports, corev1.ServicePort{Name: "grpc", Port: 9443, TargetPort: intstr.FromInt32(9443)})
	}
	for _, m := range mutate {
		m(&spec)
	}
	pod, err := c.RunPod(ctx, spec)
	if err != nil {
		t.Fatalf("Running the operator: %v", err)
	}
	t.Logf("Operator running (log: %s)", pod.Process.LogPath)
	return pod
}

// TestOperatorHPAOwnership proves HPA ownership both ways with the real
// garbage collector: an existing HPA is adopted by a ScaledObject and
// survives the ScaledObject's deletion, restored to what it was; an HPA
// the operator created goes with its ScaledObject.
func TestOperatorHPAOwnership(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := startCluster(ctx, t, cluster.Options{})
	startOperator(ctx, t, c, "")
	keda, err := kedaclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	const ns = "shop"
	createNamespace(ctx, t, c, ns)
	createDeployment(ctx, t, c, ns, "web", 2)

	// The chart's plain HPA.
	hpas := c.Client.AutoscalingV2().HorizontalPodAutoscalers(ns)
	original, err := hpas.Create(ctx, &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"chart": "web-1"}},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    ptr.To[int32](2),
			MaxReplicas:    6,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](70)},
			}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// A ScaledObject adopts it.
	sos := keda.KedaV1alpha1().ScaledObjects(ns)
	so := cronScaledObject("web", "web", func(so *v1alpha1.ScaledObject) {
		so.Annotations = map[string]string{v1alpha1.TransferHPAOwnershipAnnotation: "true"}
		so.Spec.MaxReplicaCount = ptr.To[int32](20)
		so.Spec.Advanced = &v1alpha1.AdvancedConfig{HorizontalPodAutoscalerConfig: &v1alpha1.HorizontalPodAutoscalerConfig{Name: "web"}}
	})
	created, err := sos.Create(ctx, so, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pollUntil(ctx, t, "the ScaledObject to adopt HPA web", time.Minute, func(ctx context.Context) (bool, error) {
		h, err := hpas.Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		owner := metav1.GetControllerOf(h)
		return owner != nil && owner.UID == created.UID && h.Spec.MaxReplicas == 20 && h.UID == original.UID, nil
	})

	// Deleting the ScaledObject releases the HPA before it goes: the real
	// garbage collector leaves it, restored.
	if err := sos.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	pollUntil(ctx, t, "the ScaledObject to be deleted", time.Minute, func(ctx context.Context) (bool, error) {
		_, err := sos.Get(ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	assertHPAStays(ctx, t, c, ns, "web", original.UID, 2*cluster.HPASyncPeriod)
	h, err := hpas.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.OwnerReferences) != 0 || h.Spec.MaxReplicas != 6 || h.Labels["chart"] != "web-1" {
		t.Errorf("Released HPA: owners %v, maxReplicas %d, labels %v; want no owner and its original spec and labels", h.OwnerReferences, h.Spec.MaxReplicas, h.Labels)
	}

	// An HPA the operator made goes with its ScaledObject, unless kept.
	createDeployment(ctx, t, c, ns, "api", 1)
	createDeployment(ctx, t, c, ns, "batch", 1)
	for _, tc := range []struct {
		name string
		keep bool
	}{{"api", false}, {"batch", true}} {
		so := cronScaledObject(tc.name, tc.name)
		if tc.keep {
			so.Annotations = map[string]string{keepHPAOnDelete: "true"}
		}
		if _, err := sos.Create(ctx, so, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		hpaName := "keda-hpa-" + tc.name
		h := pollFor(ctx, t, "HPA "+hpaName, time.Minute, func(ctx context.Context) (*autoscalingv2.HorizontalPodAutoscaler, error) {
			return hpas.Get(ctx, hpaName, metav1.GetOptions{})
		})
		if err := sos.Delete(ctx, tc.name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if tc.keep {
			pollUntil(ctx, t, "ScaledObject "+tc.name+" to be deleted", time.Minute, func(ctx context.Context) (bool, error) {
				_, err := sos.Get(ctx, tc.name, metav1.GetOptions{})
				return apierrors.IsNotFound(err), nil
			})
			assertHPAStays(ctx, t, c, ns, hpaName, h.UID, 2*cluster.HPASyncPeriod)
			continue
		}
		pollUntil(ctx, t, "the garbage collector to delete HPA "+hpaName, time.Minute, func(ctx context.Context) (bool, error) {
			_, err := hpas.Get(ctx, hpaName, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
	}
}

// TestOperatorCRDInstalledLater targets a custom resource whose CRD is
// installed after the operator started, then a version added to that CRD
// later: both are resolved without a restart.
func TestOperatorCRDInstalledLater(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := startCluster(ctx, t, cluster.Options{})
	startOperator(ctx, t, c, "")
	keda, err := kedaclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	const ns = "widgets"
	createNamespace(ctx, t, c, ns)

	ext, err := apiextensionsclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	crd := widgetCRD("v1")
	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	createWidget := func(version, name string) {
		gvr := schema.GroupVersionResource{Group: "e2e.ebb.dev", Version: version, Resource: "widgets"}
		pollUntil(ctx, t, "Widget "+name+" ("+version+") to be created", time.Minute, func(ctx context.Context) (bool, error) {
			_, err := dyn.Resource(gvr).Namespace(ns).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "e2e.ebb.dev/" + version, "kind": "Widget",
				"metadata": map[string]any{"name": name},
				"spec":     map[string]any{"replicas": int64(1)},
			}}, metav1.CreateOptions{})
			return err == nil, err
		})
	}
	sos := keda.KedaV1alpha1().ScaledObjects(ns)
	resolved := func(name, version string) {
		so := cronScaledObject(name, name, func(so *v1alpha1.ScaledObject) {
			so.Spec.ScaleTargetRef.APIVersion, so.Spec.ScaleTargetRef.Kind = "e2e.ebb.dev/"+version, "Widget"
		})
		if _, err := sos.Create(ctx, so, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pollUntil(ctx, t, "ScaledObject "+name+" to resolve its Widget "+version+" and get an HPA", time.Minute, func(ctx context.Context) (bool, error) {
			so, err := sos.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			gvkr := so.Status.ScaleTargetGVKR
			if gvkr == nil || gvkr.Version != version || gvkr.Resource != "widgets" {
				return false, nil
			}
			_, err = c.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "keda-hpa-"+name, metav1.GetOptions{})
			return err == nil, err
		})
	}

	createWidget("v1", "one")
	resolved("one", "v1")

	// A second version of the group, served after the operator cached v1.
	pollUntil(ctx, t, "the CRD to serve v2", time.Minute, func(ctx context.Context) (bool, error) {
		current, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if len(current.Spec.Versions) == 1 {
			v2 := *current.Spec.Versions[0].DeepCopy()
			v2.Name, v2.Storage = "v2", false
			current.Spec.Versions = append(current.Spec.Versions, v2)
			_, err = ext.ApiextensionsV1().CustomResourceDefinitions().Update(ctx, current, metav1.UpdateOptions{})
			return err == nil, err
		}
		return true, nil
	})
	createWidget("v2", "two")
	resolved("two", "v2")
}

// cronScaledObject is a ScaledObject with a cron trigger, which needs no
// event source.
func cronScaledObject(name, target string, mutate ...func(*v1alpha1.ScaledObject)) *v1alpha1.ScaledObject {
	so := &v1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.ScaledObjectSpec{
			ScaleTargetRef: &v1alpha1.ScaleTarget{Name: target},
			Triggers: []v1alpha1.ScaleTrigger{{Type: "cron", Metadata: map[string]string{
				"timezone": "UTC", "start": "0 8 * * *", "end": "0 18 * * *", "desiredReplicas": "3",
			}}},
		},
	}
	for _, m := range mutate {
		m(so)
	}
	return so
}

// assertHPAStays checks, for the given time, that the HPA keeps existing
// (the garbage collector does not take it).
func assertHPAStays(ctx context.Context, t *testing.T, c *cluster.Cluster, ns, name string, uid any, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		h, err := c.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("HPA %s/%s: %v", ns, name, err)
		}
		if h.UID != uid {
			t.Fatalf("HPA %s/%s was replaced (uid %s, want %v)", ns, name, h.UID, uid)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// widgetCRD is a namespaced custom resource with a /scale subresource.
func widgetCRD(version string) *apiextensionsv1.CustomResourceDefinition {
	schemaProps := &apiextensionsv1.JSONSchemaProps{
		Type: "object",
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"replicas": {Type: "integer"}}},
			"status": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
				"replicas": {Type: "integer"},
				"selector": {Type: "string"},
			}},
		},
	}
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.e2e.ebb.dev"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "e2e.ebb.dev",
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: version, Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: schemaProps},
				Subresources: &apiextensionsv1.CustomResourceSubresources{
					Status: &apiextensionsv1.CustomResourceSubresourceStatus{},
					Scale: &apiextensionsv1.CustomResourceSubresourceScale{
						SpecReplicasPath: ".spec.replicas", StatusReplicasPath: ".status.replicas", LabelSelectorPath: ptr.To(".status.selector"),
					},
				},
			}},
		},
	}
}
