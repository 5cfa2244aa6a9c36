package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/e2e/cluster"
	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedaclient "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned"
)

const webhookCert = "ebb-webhook-tls"

// TestWebhook runs the webhook as a pod behind its Service, registered
// with a ValidatingWebhookConfiguration whose caBundle cainjector fills,
// and admits through the real API server: 500 Deployment+ScaledObject pairs
// with cpu triggers (the rule that needs the target), each ScaledObject
// created 0–50 ms after its Deployment, are all admitted; a cpu-trigger
// ScaledObject on a Deployment that does not exist is denied, a cron one
// is admitted with a warning; a second ScaledObject on a target is denied;
// an existing HPA on the target is a conflict unless the ScaledObject
// takes it over with transfer-hpa-ownership.
func TestWebhook(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c := startCluster(ctx, t, cluster.Options{CertManager: true})
	createNamespace(ctx, t, c, operatorNamespace)
	issueCertificates(ctx, t, c)
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyCRDs(ctx, filepath.Join(root, "deploy", "crds")); err != nil {
		t.Fatalf("Installing ebb's CRDs: %v", err)
	}
	startWebhook(ctx, t, c)

	// Warnings reach the client through its warning handler.
	warnings := &warningLog{}
	cfg := rest.CopyConfig(c.Config)
	cfg.WarningHandler = warnings
	cfg.QPS, cfg.Burst = 500, 1000
	keda, err := kedaclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const ns = "apps"
	createNamespace(ctx, t, c, ns)
	sos := keda.KedaV1alpha1().ScaledObjects(ns)

	// The webhook is in the path once an object it alone denies is
	// denied (an unknown trigger type; the CRD's schema allows it).
	pollUntil(ctx, t, "the webhook to deny an unknown trigger type", 2*time.Minute, func(ctx context.Context) (bool, error) {
		_, err := sos.Create(ctx, cronScaledObject("probe", "nothing", func(so *v1alpha1.ScaledObject) {
			so.Spec.Triggers[0].Type = "no-such-scaler"
		}), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), "no-such-scaler"), nil
	})

	// 500 pairs, 4 at a time.
	const pairs, parallel = 500, 4
	var (
		mu      sync.Mutex
		denials []string
		wg      sync.WaitGroup
	)
	work := make(chan int)
	start := time.Now()
	for range parallel {
		wg.Go(func() {
			for i := range work {
				name := fmt.Sprintf("pair-%03d", i)
				if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, resourcedDeployment(name), metav1.CreateOptions{}); err != nil {
					t.Errorf("Creating Deployment %s: %v", name, err)
					continue
				}
				time.Sleep(time.Duration(rand.IntN(51)) * time.Millisecond)
				if _, err := sos.Create(ctx, cpuScaledObject(name, name), metav1.CreateOptions{}); err != nil {
					mu.Lock()
					denials = append(denials, name+": "+err.Error())
					mu.Unlock()
				}
			}
		})
	}
	for i := range pairs {
		work <- i
	}
	close(work)
	wg.Wait()
	t.Logf("%d Deployment+ScaledObject pairs in %s: %d denied", pairs, time.Since(start).Round(time.Millisecond), len(denials))
	for _, d := range denials {
		t.Errorf("Denied: %s", d)
	}

	// A cpu trigger needs its target: a missing one is denied, clearly.
	_, err = sos.Create(ctx, cpuScaledObject("ghost-cpu", "ghost"), metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "ghost") {
		t.Errorf("cpu trigger on a missing Deployment: %v, want a denial saying it does not exist", err)
	}
	// A cron trigger does not: admitted, with a warning.
	warnings.reset()
	if _, err := sos.Create(ctx, cronScaledObject("ghost-cron", "ghost"), metav1.CreateOptions{}); err != nil {
		t.Errorf("cron trigger on a missing Deployment: %v, want it admitted", err)
	}
	if w := warnings.all(); !strings.Contains(w, "does not exist yet") {
		t.Errorf("cron trigger on a missing Deployment: warnings %q, want one saying it does not exist yet", w)
	}

	// A second ScaledObject on a target.
	_, err = sos.Create(ctx, cpuScaledObject("pair-000-again", "pair-000"), metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "pair-000") {
		t.Errorf("Second ScaledObject on pair-000: %v, want a denial naming the first", err)
	}

	// An HPA that is not ebb's on a target.
	createDeployment(ctx, t, c, ns, "legacy", 1)
	if _, err := c.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(ctx, &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "legacy"},
			MinReplicas:    ptr.To[int32](1), MaxReplicas: 3,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](80)},
			}}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = sos.Create(ctx, cronScaledObject("legacy", "legacy"), metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "legacy") {
		t.Errorf("ScaledObject on a target with a foreign HPA: %v, want a denial naming the HPA", err)
	}
	if _, err := sos.Create(ctx, cronScaledObject("legacy", "legacy", func(so *v1alpha1.ScaledObject) {
		so.Annotations = map[string]string{"scaledobject.keda.sh/transfer-hpa-ownership": "true"}
		so.Spec.Advanced = &v1alpha1.AdvancedConfig{HorizontalPodAutoscalerConfig: &v1alpha1.HorizontalPodAutoscalerConfig{Name: "legacy"}}
	}), metav1.CreateOptions{}); err != nil {
		t.Errorf("ScaledObject taking over the HPA with transfer-hpa-ownership: %v, want it admitted", err)
	}
}

// resourcedDeployment is a Deployment whose container requests CPU, as a
// cpu trigger needs.
func resourcedDeployment(name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: name, Image: "registry.invalid/" + name + ":1",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}},
				}}},
			},
		},
	}
}

// cpuScaledObject scales target on CPU utilization.
func cpuScaledObject(name, target string) *v1alpha1.ScaledObject {
	return &v1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.ScaledObjectSpec{
			ScaleTargetRef:  &v1alpha1.ScaleTarget{Name: target},
			MinReplicaCount: ptr.To[int32](1),
			Triggers: []v1alpha1.ScaleTrigger{{Type: "cpu", MetricType: autoscalingv2.UtilizationMetricType,
				Metadata: map[string]string{"value": "60"}}},
		},
	}
}

// warningLog collects the admission warnings a client receives.
type warningLog struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningLog) HandleWarningHeader(_ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func (w *warningLog) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = nil
}

func (w *warningLog) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.msgs, "\n")
}

// startWebhook builds the webhook and runs it as a pod with the
// ServiceAccount and RBAC of the ebb-webhook chart and a cert-manager
// serving certificate, and registers it with a
// ValidatingWebhookConfiguration whose caBundle cainjector injects.
func startWebhook(ctx context.Context, t *testing.T, c *cluster.Cluster) *cluster.Pod {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "ebb-webhook")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./services/webhook")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("Building the webhook: %v\n%s", err, out)
	}

	cm, err := cmclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, func() error {
		_, err := cm.CertmanagerV1().Certificates(operatorNamespace).Create(ctx, &cmapi.Certificate{
			ObjectMeta: metav1.ObjectMeta{Name: webhookCert},
			Spec: cmapi.CertificateSpec{SecretName: webhookCert,
				Usages:    []cmapi.KeyUsage{cmapi.UsageServerAuth, cmapi.UsageClientAuth, cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment},
				DNSNames:  []string{"ebb-webhook", "ebb-webhook.ebb-system", "ebb-webhook.ebb-system.svc", "ebb-webhook.ebb-system.svc.cluster.local"},
				IssuerRef: cmmeta.IssuerReference{Name: "ebb-ca", Kind: "Issuer"}},
		}, metav1.CreateOptions{})
		return err
	})

	// The chart's defaults: its ClusterRole reads Deployments and
	// StatefulSets, the only targets of this test's cpu/memory triggers
	// (no rbac.extraTargetResources).
	serviceAccount := applyChartRBAC(ctx, t, c, "ebb-webhook")

	certDir := filepath.Join(t.TempDir(), "certs")
	pod, err := c.RunPod(ctx, cluster.PodSpec{
		Namespace:      operatorNamespace,
		Name:           "ebb-webhook",
		ServiceAccount: serviceAccount,
		Path:           bin,
		Args: []string{
			"--bind-address=:9443",
			"--cert-dir=" + certDir,
			"--health-bind-address=:8081",
			"--metrics-bind-address=:8080",
			"--v=2",
		},
		Secrets: []cluster.SecretVolume{{SecretName: webhookCert, Dir: certDir}},
		Ports: []corev1.ServicePort{
			{Name: "https", Port: 443, TargetPort: intstr.FromInt32(9443)},
			{Name: "health", Port: 8081, TargetPort: intstr.FromInt32(8081)},
		},
	})
	if err != nil {
		t.Fatalf("Running the webhook: %v", err)
	}
	t.Logf("Webhook running (log: %s)", pod.Process.LogPath)

	webhook := func(kind, resource string) admissionregistrationv1.ValidatingWebhook {
		return admissionregistrationv1.ValidatingWebhook{
			Name: "v" + kind + ".keda.sh",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
				Namespace: operatorNamespace, Name: "ebb-webhook", Port: ptr.To[int32](443),
				Path: ptr.To("/validate-keda-sh-v1alpha1-" + kind),
			}},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{"keda.sh"}, APIVersions: []string{"v1alpha1"}, Resources: []string{resource}},
			}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](5),
		}
	}
	mustCreate(t, func() error {
		_, err := c.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "ebb-webhook",
				Annotations: map[string]string{"cert-manager.io/inject-ca-from": operatorNamespace + "/" + webhookCert}},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{
				webhook("scaledobject", "scaledobjects"),
				webhook("scaledjob", "scaledjobs"),
				webhook("triggerauthentication", "triggerauthentications"),
				webhook("clustertriggerauthentication", "clustertriggerauthentications"),
			},
		}, metav1.CreateOptions{})
		return err
	})
	pollUntil(ctx, t, "cainjector to fill the webhook's caBundle", time.Minute, func(ctx context.Context) (bool, error) {
		got, err := c.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "ebb-webhook", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, w := range got.Webhooks {
			if len(w.ClientConfig.CABundle) == 0 {
				return false, nil
			}
		}
		return true, nil
	})
	return pod
}
