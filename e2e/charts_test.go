package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/ebb-autoscaler/ebb/e2e/cluster"
)

// The facts every chart must keep: the conventions that ebb's services,
// docs and the harness rely on.
const (
	chartImageRegistry = "ghcr.io/ebb-autoscaler/"
	chartCertDir       = "/etc/ebb/certs"
	chartHealthPort    = 8081
	chartMetricsPort   = 8080
)

// chartSpec is what one chart must render.
type chartSpec struct {
	// name is the chart's directory under deploy/charts, and the name of
	// its Service, ServiceAccount, Deployment and Certificate.
	name string
	// port is the container's serving port: its name and number, and the
	// argument that binds it.
	portName string
	port     int32
	portArg  string
	// servicePort is the Service's port that targets portName.
	servicePort int32
	headless    bool
	// readiness is the health service of the readiness probe.
	readiness string
	// customValues are non-default values; custom checks what they render.
	customValues string
	defaults     func(t *testing.T, r *rendered)
	custom       func(t *testing.T, r *rendered)
	// typos are --set values the schema must refuse, with a part of the
	// error.
	typos map[string]string
}

// TestCharts lints and renders the three Helm charts in deploy/charts with
// their default values and with non-default ones, and checks the rendered
// objects: the pod conventions (one container, args only, the cert-manager
// Secret at /etc/ebb/certs, the downward API env, ports, gRPC probes,
// restricted security), minimal RBAC, the certificates and their issuer,
// the webhook configuration and the APIService (caBundle left to
// cert-manager's CA injector), and that values.schema.json refuses
// misspelt values. It needs no cluster, only the helm binary.
func TestCharts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bins, err := cluster.FindBinaries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	h := &helm{bin: bins.Helm, charts: filepath.Join(root, "deploy", "charts"), home: t.TempDir()}

	t.Run("operator CRDs match deploy/crds", func(t *testing.T) {
		want := readDir(t, filepath.Join(root, "deploy", "crds"))
		got := readDir(t, filepath.Join(h.charts, "ebb-operator", "crds"))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("deploy/charts/ebb-operator/crds differs from deploy/crds: run hack/update-chart-crds.sh")
		}
		out, err := h.run(ctx, "template", "ebb-operator", filepath.Join(h.charts, "ebb-operator"), "--namespace", "ebb-system", "--include-crds")
		if err != nil {
			t.Fatal(err)
		}
		r := parseRendered(t, out)
		var crds []string
		for _, o := range r.objs {
			if o.Kind == "CustomResourceDefinition" {
				crds = append(crds, o.Name)
			}
		}
		slices.Sort(crds)
		wantCRDs := []string{"clustertriggerauthentications.keda.sh", "scaledjobs.keda.sh", "scaledobjects.keda.sh", "triggerauthentications.keda.sh"}
		if !slices.Equal(crds, wantCRDs) {
			t.Errorf("CRDs installed by the chart: %v, want %v", crds, wantCRDs)
		}
	})

	for _, spec := range chartSpecs() {
		t.Run(spec.name, func(t *testing.T) {
			dir := filepath.Join(h.charts, spec.name)
			valuesFile := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(valuesFile, []byte(strings.ReplaceAll(spec.customValues, "CHART", spec.name)), 0o644); err != nil {
				t.Fatal(err)
			}
			appVersion := chartAppVersion(t, dir)

			t.Run("lint", func(t *testing.T) {
				for _, args := range [][]string{
					{"lint", "--strict", dir, "--namespace", "ebb-system"},
					{"lint", "--strict", dir, "--namespace", "autoscaling", "-f", valuesFile},
				} {
					if out, err := h.run(ctx, args...); err != nil {
						t.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
					}
				}
			})

			t.Run("defaults", func(t *testing.T) {
				out, err := h.run(ctx, "template", spec.name, dir, "--namespace", "ebb-system")
				if err != nil {
					t.Fatal(err)
				}
				r := parseRendered(t, out)
				checkChart(t, spec, r, "ebb-system", chartImageRegistry+spec.name+":"+appVersion)
				spec.defaults(t, r)
			})

			t.Run("custom values", func(t *testing.T) {
				// The release is not called after the chart: the objects
				// keep the chart's name all the same.
				out, err := h.run(ctx, "template", "ebb", dir, "--namespace", "autoscaling", "-f", valuesFile)
				if err != nil {
					t.Fatal(err)
				}
				r := parseRendered(t, out)
				checkChart(t, spec, r, "autoscaling", "registry.example.com/ebb/"+spec.name+"@sha256:"+strings.Repeat("ab", 32))
				spec.custom(t, r)
			})

			t.Run("schema refuses typos", func(t *testing.T) {
				for set, want := range spec.typos {
					out, err := h.run(ctx, "template", spec.name, dir, "--namespace", "ebb-system", "--set", set)
					if err == nil {
						t.Errorf("helm template --set %s: rendered, want the schema to refuse it", set)
						continue
					}
					if !strings.Contains(string(out), want) {
						t.Errorf("helm template --set %s: %s\nwant an error containing %q", set, out, want)
					}
				}
			})
		})
	}
}

// chartSpecs are the three charts and what each must render.
func chartSpecs() []chartSpec {
	commonTypos := map[string]string{
		"replicaCount=2":                        "additional properties 'replicaCount' not allowed",
		"image.tags=v1":                         "additional properties 'tags' not allowed",
		"certManager.issuerRef.nmae=x":          "additional properties 'nmae' not allowed",
		"logging.format=xml":                    "logging/format",
		"podDisruptionBudget.maxUnavailable=-1": "podDisruptionBudget/maxUnavailable",
		"serviceMonitor.interval=often":         "serviceMonitor/interval",
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range commonTypos {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	return []chartSpec{
		{
			name:        "ebb-operator",
			portName:    "grpc",
			port:        9443,
			portArg:     "--grpc-bind-address=:9443",
			servicePort: 9443,
			headless:    true,
			// Standbys report ready once their caches are synced; the
			// metrics-apiserver finds the leader through gRPC health.
			readiness: "informers",
			customValues: customValues + `
replicas: 3
leaderElection:
  leaseName: ebb-leader
watchNamespace: team-a
clusterObjectNamespace: ebb-auth
filePathAuth:
  secretName: trigger-auth-files
workers: 20
certManager:
  createCA: false
  issuerRef:
    name: corp-ca
    kind: ClusterIssuer
    group: cert-manager.io
`,
			defaults: checkOperatorDefaults,
			custom:   checkOperatorCustom,
			typos: with(map[string]string{
				"leaderElection.enable=true":           "additional properties 'enable' not allowed",
				"readinessProbe.service=ready":         "readinessProbe/service",
				"filePathAuth.secretname=files":        "additional properties 'secretname' not allowed",
				"filePathAuth.rootPath=relative/files": "filePathAuth/rootPath",
			}),
		},
		{
			name:         "ebb-webhook",
			portName:     "https",
			port:         9443,
			portArg:      "--bind-address=:9443",
			servicePort:  443,
			readiness:    "",
			customValues: customValues + webhookCustomValues,
			defaults:     checkWebhookDefaults,
			custom:       checkWebhookCustom,
			typos: with(map[string]string{
				"webhook.failurPolicy=Ignore": "additional properties 'failurPolicy' not allowed",
				"webhook.failurePolicy=Maybe": "webhook/failurePolicy",
				"webhook.timeoutSeconds=60":   "webhook/timeoutSeconds",
			}),
		},
		{
			name:        "ebb-metrics-apiserver",
			portName:    "https",
			port:        6443,
			portArg:     "--secure-port=6443",
			servicePort: 443,
			readiness:   "",
			customValues: customValues + `
operator:
  namespace: ebb-core
readinessFollowsOperatorLink: true
hpaControllerRBAC:
  create: true
`,
			defaults: checkMetricsAPIServerDefaults,
			custom:   checkMetricsAPIServerCustom,
			typos: with(map[string]string{
				"operator.adress=x:1":      "additional properties 'adress' not allowed",
				"operator.address=no-port": "operator/address",
			}),
		},
	}
}

// customValues are non-default values every chart takes.
const customValues = `
image:
  repository: registry.example.com/ebb/CHART
  digest: sha256:abababababababababababababababababababababababababababababababab
imagePullSecrets:
  - name: pull
logging:
  verbosity: 4
  format: json
extraArgs: ["--log-flush-frequency=10s"]
resources:
  requests:
    cpu: 200m
    memory: 256Mi
podAnnotations:
  example.com/team: autoscaling
podLabels:
  example.com/tier: control
commonLabels:
  example.com/owner: platform
priorityClassName: system-cluster-critical
nodeSelector:
  kubernetes.io/os: linux
tolerations:
  - key: dedicated
    operator: Equal
    value: control
    effect: NoSchedule
clusterDomain: corp.local
podDisruptionBudget:
  minAvailable: 1
networkPolicy:
  enabled: true
  metricsFrom:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: monitoring
serviceMonitor:
  enabled: true
  labels:
    release: prometheus
  interval: 15s
`

const webhookCustomValues = `
replicas: 3
webhook:
  failurePolicy: Ignore
  timeoutSeconds: 3
  namespaceSelector:
    matchLabels:
      ebb.dev/validate: "true"
rbac:
  extraTargetResources:
    - apiGroups: ["argoproj.io"]
      resources: ["rollouts"]
preStopSleepSeconds: 0
`

// checkChart checks what every chart must render, in namespace ns with the
// given image.
func checkChart(t *testing.T, spec chartSpec, r *rendered, ns, image string) {
	t.Helper()
	allowed := map[string]bool{
		"ServiceAccount": true, "ClusterRole": true, "ClusterRoleBinding": true, "Role": true, "RoleBinding": true,
		"Deployment": true, "Service": true, "PodDisruptionBudget": true, "NetworkPolicy": true, "ServiceMonitor": true,
		"Certificate": true, "Issuer": true, "ValidatingWebhookConfiguration": true, "APIService": true,
	}
	clusterScoped := map[string]bool{"ClusterRole": true, "ClusterRoleBinding": true, "ValidatingWebhookConfiguration": true, "APIService": true}
	for _, o := range r.objs {
		if !allowed[o.Kind] {
			t.Errorf("%s: a kind the chart should not render", o)
		}
		switch {
		case clusterScoped[o.Kind]:
			if o.Namespace != "" {
				t.Errorf("%s: cluster-scoped object with a namespace", o)
			}
		case o.Kind == "RoleBinding" && o.Namespace == "kube-system":
			// The metrics-apiserver's extension-apiserver-authentication-reader.
		case o.Namespace != ns:
			t.Errorf("%s: namespace %q, want the release namespace %q", o, o.Namespace, ns)
		}
		for _, l := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
			"app.kubernetes.io/managed-by", "app.kubernetes.io/part-of", "app.kubernetes.io/component", "helm.sh/chart"} {
			if o.Labels[l] == "" {
				t.Errorf("%s: no %s label", o, l)
			}
		}
		if hasKey(o.obj, "caBundle") {
			t.Errorf("%s: sets a caBundle; cert-manager's CA injector owns it", o)
		}
	}

	sa := decode[corev1.ServiceAccount](t, r.get(t, "ServiceAccount", spec.name))
	d := decode[appsv1.Deployment](t, r.get(t, "Deployment", spec.name))
	pod := d.Spec.Template.Spec
	podLabels := labels.Set(d.Spec.Template.Labels)
	selector := labels.SelectorFromSet(d.Spec.Selector.MatchLabels)
	if !selector.Matches(podLabels) {
		t.Errorf("Deployment selector %v does not match its pod labels %v", d.Spec.Selector.MatchLabels, podLabels)
	}
	if pod.ServiceAccountName != sa.Name {
		t.Errorf("pod runs as ServiceAccount %q, want %q", pod.ServiceAccountName, sa.Name)
	}
	if pod.AutomountServiceAccountToken != nil && !*pod.AutomountServiceAccountToken {
		t.Errorf("the ServiceAccount token is not mounted; the service needs it at the standard path")
	}
	if sa.AutomountServiceAccountToken != nil && !*sa.AutomountServiceAccountToken && pod.AutomountServiceAccountToken == nil {
		t.Errorf("the ServiceAccount turns token automount off")
	}

	// Restricted pod security.
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("pod securityContext.runAsNonRoot is not true: %+v", psc)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod seccompProfile is not RuntimeDefault: %+v", psc)
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Errorf("pod uses host namespaces")
	}

	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		t.Fatalf("pod has %d containers and %d init containers, want exactly one container", len(pod.Containers), len(pod.InitContainers))
	}
	c := pod.Containers[0]
	if c.Image != image {
		t.Errorf("image %q, want %q", c.Image, image)
	}
	if len(c.Command) != 0 {
		t.Errorf("container sets command %v; the image's entrypoint is the binary, use args only", c.Command)
	}
	csc := c.SecurityContext
	switch {
	case csc == nil:
		t.Errorf("container has no securityContext")
	default:
		if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
			t.Errorf("container readOnlyRootFilesystem is not true")
		}
		if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
			t.Errorf("container allowPrivilegeEscalation is not false")
		}
		if csc.Privileged != nil && *csc.Privileged {
			t.Errorf("container is privileged")
		}
		if csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(csc.Capabilities.Add) != 0 {
			t.Errorf("container capabilities %+v, want drop [ALL] and no add", csc.Capabilities)
		}
		if csc.RunAsNonRoot != nil && !*csc.RunAsNonRoot {
			t.Errorf("container runAsNonRoot is false")
		}
	}

	for _, want := range []string{
		spec.portArg,
		"--cert-dir=" + chartCertDir,
		fmt.Sprintf("--health-bind-address=:%d", chartHealthPort),
		fmt.Sprintf("--metrics-bind-address=:%d", chartMetricsPort),
	} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("args %v lack %s", c.Args, want)
		}
	}
	seen := map[string]bool{}
	for _, a := range c.Args {
		flag, _, _ := strings.Cut(a, "=")
		if seen[flag] {
			t.Errorf("args repeat %s: %v", flag, c.Args)
		}
		seen[flag] = true
	}

	// The downward API.
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if env["POD_NAMESPACE"] != "metadata.namespace" || env["POD_NAME"] != "metadata.name" {
		t.Errorf("env from the downward API %v, want POD_NAMESPACE=metadata.namespace and POD_NAME=metadata.name", env)
	}

	// Ports.
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	wantPorts := map[string]int32{spec.portName: spec.port, "health": chartHealthPort, "metrics": chartMetricsPort}
	if !reflect.DeepEqual(ports, wantPorts) {
		t.Errorf("container ports %v, want %v", ports, wantPorts)
	}

	// gRPC probes on the plaintext health port.
	checkProbe := func(what string, p *corev1.Probe, service string) {
		t.Helper()
		switch {
		case p == nil:
			t.Errorf("no %s probe", what)
		case p.GRPC == nil || p.HTTPGet != nil || p.TCPSocket != nil || p.Exec != nil:
			t.Errorf("%s probe is not a grpc probe: %+v", what, p.ProbeHandler)
		case p.GRPC.Port != chartHealthPort:
			t.Errorf("%s probe on port %d, want %d", what, p.GRPC.Port, chartHealthPort)
		case p.GRPC.Service == nil || *p.GRPC.Service != service:
			t.Errorf("%s probe asks for service %v, want %q", what, p.GRPC.Service, service)
		}
	}
	checkProbe("readiness", c.ReadinessProbe, spec.readiness)
	checkProbe("liveness", c.LivenessProbe, "liveness")

	// The certificate, its Secret mounted read-only at /etc/ebb/certs.
	cert := decode[cmapi.Certificate](t, r.get(t, "Certificate", spec.name))
	secretName := spec.name + "-tls"
	if cert.Spec.SecretName != secretName {
		t.Errorf("Certificate secretName %q, want %q", cert.Spec.SecretName, secretName)
	}
	var mount *corev1.VolumeMount
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].MountPath == chartCertDir {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil {
		t.Errorf("nothing mounted at %s", chartCertDir)
	} else {
		if !mount.ReadOnly {
			t.Errorf("%s is not mounted read-only", chartCertDir)
		}
		var vol *corev1.Volume
		for i := range pod.Volumes {
			if pod.Volumes[i].Name == mount.Name {
				vol = &pod.Volumes[i]
			}
		}
		switch {
		case vol == nil || vol.Secret == nil:
			t.Errorf("%s is not a Secret volume", chartCertDir)
		case vol.Secret.SecretName != secretName:
			t.Errorf("%s holds Secret %q, want the Certificate's %q", chartCertDir, vol.Secret.SecretName, secretName)
		case vol.Secret.DefaultMode != nil && *vol.Secret.DefaultMode&0o004 == 0 && (psc == nil || psc.FSGroup == nil):
			t.Errorf("the certificate files (mode %o) are not readable by the non-root user: set fsGroup", *vol.Secret.DefaultMode)
		}
	}
	svcName := spec.name
	wantDNS := []string{svcName, svcName + "." + ns, svcName + "." + ns + ".svc", svcName + "." + ns + ".svc." + clusterDomain(ns)}
	if !slices.Equal(cert.Spec.DNSNames, wantDNS) {
		t.Errorf("Certificate dnsNames %v, want %v", cert.Spec.DNSNames, wantDNS)
	}
	for _, u := range []cmapi.KeyUsage{cmapi.UsageServerAuth, cmapi.UsageClientAuth} {
		if !slices.Contains(cert.Spec.Usages, u) {
			t.Errorf("Certificate usages %v lack %q", cert.Spec.Usages, u)
		}
	}
	if cert.Spec.IsCA {
		t.Errorf("the service's Certificate is a CA")
	}

	// The Service routes to the pods' ports.
	svc := decode[corev1.Service](t, r.get(t, "Service", svcName))
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) || len(svc.Spec.Selector) == 0 {
		t.Errorf("Service selector %v does not select the pods %v", svc.Spec.Selector, podLabels)
	}
	if got := svc.Spec.ClusterIP == corev1.ClusterIPNone; got != spec.headless {
		t.Errorf("Service headless = %v, want %v", got, spec.headless)
	}
	var servesPort bool
	for _, p := range svc.Spec.Ports {
		target := p.TargetPort.IntVal
		if p.TargetPort.StrVal != "" {
			target = ports[p.TargetPort.StrVal]
		}
		if target == 0 {
			t.Errorf("Service port %s targets %s, which is no container port", p.Name, p.TargetPort.String())
		}
		if p.Port == spec.servicePort && target == spec.port {
			servesPort = true
		}
	}
	if !servesPort {
		t.Errorf("Service has no port %d to the container's %d: %+v", spec.servicePort, spec.port, svc.Spec.Ports)
	}

	if o := r.find("PodDisruptionBudget", spec.name); o != nil {
		pdb := decode[policyv1.PodDisruptionBudget](t, *o)
		if !labels.SelectorFromSet(pdb.Spec.Selector.MatchLabels).Matches(podLabels) {
			t.Errorf("PodDisruptionBudget selector %v does not select the pods", pdb.Spec.Selector.MatchLabels)
		}
		if (pdb.Spec.MinAvailable == nil) == (pdb.Spec.MaxUnavailable == nil) {
			t.Errorf("PodDisruptionBudget sets both or neither of minAvailable and maxUnavailable")
		}
	} else {
		t.Errorf("no PodDisruptionBudget")
	}

	// RBAC: never a wildcard verb, never escalation, bound to this
	// chart's ServiceAccount.
	for _, o := range r.objs {
		switch o.Kind {
		case "ClusterRole", "Role":
			role := decode[rbacv1.ClusterRole](t, o) // a Role has the same shape
			for _, rule := range role.Rules {
				for _, v := range rule.Verbs {
					if v == "*" || v == "escalate" || v == "bind" || v == "impersonate" {
						t.Errorf("%s: rule %v grants %q", o, rule, v)
					}
				}
				for _, res := range rule.Resources {
					if res == "*" && !slices.Equal(rule.APIGroups, []string{"external.metrics.k8s.io"}) {
						t.Errorf("%s: rule %v grants every resource", o, rule)
					}
				}
			}
		case "ClusterRoleBinding", "RoleBinding":
			b := decode[rbacv1.ClusterRoleBinding](t, o)
			if b.RoleRef.Name == spec.name+"-hpa-controller-external-metrics" {
				continue
			}
			want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: ns}}
			if !reflect.DeepEqual(b.Subjects, want) {
				t.Errorf("%s: subjects %+v, want the chart's ServiceAccount %+v", o, b.Subjects, want)
			}
		}
	}
}

// clusterDomain is the cluster domain the tests render with in ns.
func clusterDomain(ns string) string {
	if ns == "ebb-system" {
		return "cluster.local"
	}
	return "corp.local"
}

// checkCustomCommon checks the common non-default values.
func checkCustomCommon(t *testing.T, r *rendered, name string, wantReplicas int32) {
	t.Helper()
	d := decode[appsv1.Deployment](t, r.get(t, "Deployment", name))
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	if d.Spec.Replicas == nil || *d.Spec.Replicas != wantReplicas {
		t.Errorf("replicas %v, want %d", d.Spec.Replicas, wantReplicas)
	}
	for _, want := range []string{"--v=4", "--logging-format=json", "--log-flush-frequency=10s"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("args %v lack %s", c.Args, want)
		}
	}
	if got := c.Resources.Requests.Cpu().String(); got != "200m" {
		t.Errorf("cpu request %s, want 200m", got)
	}
	if d.Spec.Template.Annotations["example.com/team"] != "autoscaling" || d.Spec.Template.Labels["example.com/tier"] != "control" {
		t.Errorf("pod annotations %v and labels %v lack the values'", d.Spec.Template.Annotations, d.Spec.Template.Labels)
	}
	if pod.PriorityClassName != "system-cluster-critical" || pod.NodeSelector["kubernetes.io/os"] != "linux" ||
		len(pod.Tolerations) != 1 || len(pod.ImagePullSecrets) != 1 {
		t.Errorf("pod scheduling values not applied: %+v", pod)
	}
	for _, o := range r.objs {
		if o.Labels["example.com/owner"] != "platform" {
			t.Errorf("%s: no commonLabels", o)
		}
	}
	pdb := decode[policyv1.PodDisruptionBudget](t, r.get(t, "PodDisruptionBudget", name))
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 || pdb.Spec.MaxUnavailable != nil {
		t.Errorf("PodDisruptionBudget minAvailable %v maxUnavailable %v, want minAvailable 1 only", pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable)
	}

	np := decode[networkingv1.NetworkPolicy](t, r.get(t, "NetworkPolicy", name))
	if !labels.SelectorFromSet(np.Spec.PodSelector.MatchLabels).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("NetworkPolicy does not select the pods")
	}
	var metricsRule bool
	for _, in := range np.Spec.Ingress {
		for _, p := range in.Ports {
			if p.Port != nil && p.Port.String() == "metrics" {
				metricsRule = len(in.From) == 1 && in.From[0].NamespaceSelector != nil
			}
		}
	}
	if !metricsRule {
		t.Errorf("NetworkPolicy does not admit /metrics from networkPolicy.metricsFrom: %+v", np.Spec.Ingress)
	}

	sm := r.get(t, "ServiceMonitor", name)
	if sm.Labels["release"] != "prometheus" {
		t.Errorf("ServiceMonitor labels %v lack serviceMonitor.labels", sm.Labels)
	}
	endpoints, _ := sm.obj["spec"].(map[string]any)["endpoints"].([]any)
	if len(endpoints) != 1 || endpoints[0].(map[string]any)["port"] != "metrics" || endpoints[0].(map[string]any)["interval"] != "15s" {
		t.Errorf("ServiceMonitor endpoints %v, want the metrics port every 15s", endpoints)
	}
}

func checkOperatorDefaults(t *testing.T, r *rendered) {
	d := decode[appsv1.Deployment](t, r.get(t, "Deployment", "ebb-operator"))
	if *d.Spec.Replicas != 1 {
		t.Errorf("replicas %d, want 1", *d.Spec.Replicas)
	}
	args := d.Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{"--leader-elect=true", "--leader-elect-namespace=ebb-system", "--leader-elect-id=ebb-operator", "--cluster-object-namespace=ebb-system"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
	// No credential files by default: filePath is refused.
	for _, a := range args {
		if strings.HasPrefix(a, "--filepath-auth-root-path") {
			t.Errorf("args %v set %s by default", args, a)
		}
	}
	if n := len(d.Spec.Template.Spec.Volumes); n != 1 {
		t.Errorf("%d volumes by default, want the certificate's only", n)
	}

	// RBAC: exactly the least RBAC the e2e tests run the operator with,
	// with the Lease rules narrowed to its name.
	wantCluster, _ := operatorRBAC()
	cr := decode[rbacv1.ClusterRole](t, r.get(t, "ClusterRole", "ebb-operator"))
	if got, want := ruleSet(cr.Rules), ruleSet(wantCluster.Rules); !slices.Equal(got, want) {
		t.Errorf("ClusterRole grants\n%s\nwant (e2e/rbac_expectation_test.go operatorRBAC)\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	role := decode[rbacv1.Role](t, r.get(t, "Role", "ebb-operator"))
	wantRole := []string{
		"coordination.k8s.io/leases create",
		"coordination.k8s.io/leases/ebb-operator get",
		"coordination.k8s.io/leases/ebb-operator update",
	}
	if got := ruleSet(role.Rules); !slices.Equal(got, wantRole) {
		t.Errorf("Role grants %v, want %v", got, wantRole)
	}
	checkBinding(t, r, "ClusterRoleBinding", "ebb-operator", "ClusterRole", "ebb-operator")
	checkBinding(t, r, "RoleBinding", "ebb-operator", "Role", "ebb-operator")

	// ebb's two-tier CA: selfSigned Issuer → root CA Certificate (key
	// kept) → root Issuer → issuing CA Certificate (new key at every
	// renewal, renewed before any certificate it signed can outlive it) →
	// CA Issuer ebb-ca, which issues the operator's certificate.
	self := r.get(t, "Issuer", "ebb-root-ca-selfsigned")
	if _, ok := self.obj["spec"].(map[string]any)["selfSigned"]; !ok {
		t.Errorf("Issuer ebb-root-ca-selfsigned is not selfSigned: %v", self.obj["spec"])
	}
	chain := []struct{ cert, issuer, policy string }{
		{"ebb-root-ca", "ebb-root-ca-selfsigned", string(cmapi.RotationPolicyNever)},
		{"ebb-ca", "ebb-root-ca", string(cmapi.RotationPolicyAlways)},
	}
	for _, want := range chain {
		ca := decode[cmapi.Certificate](t, r.get(t, "Certificate", want.cert))
		if !ca.Spec.IsCA || ca.Spec.IssuerRef.Name != want.issuer || ca.Spec.IssuerRef.Kind != "Issuer" {
			t.Errorf("CA Certificate %s %+v, want isCA issued by Issuer %s", want.cert, ca.Spec, want.issuer)
		}
		if ca.Spec.PrivateKey == nil || string(ca.Spec.PrivateKey.RotationPolicy) != want.policy {
			t.Errorf("CA Certificate %s privateKey %+v, want rotationPolicy %s", want.cert, ca.Spec.PrivateKey, want.policy)
		}
		issuer := decode[cmapi.Issuer](t, r.get(t, "Issuer", want.cert))
		if issuer.Spec.CA == nil || issuer.Spec.CA.SecretName != ca.Spec.SecretName {
			t.Errorf("Issuer %s %+v, want a CA issuer of Secret %q", want.cert, issuer.Spec, ca.Spec.SecretName)
		}
	}
	issuing := decode[cmapi.Certificate](t, r.get(t, "Certificate", "ebb-ca"))
	leaf := decode[cmapi.Certificate](t, r.get(t, "Certificate", "ebb-operator"))
	if issuing.Spec.RenewBefore == nil || leaf.Spec.Duration == nil || issuing.Spec.RenewBefore.Duration <= leaf.Spec.Duration.Duration {
		t.Errorf("issuing CA renewBefore %v must exceed the services' certificate duration %v", issuing.Spec.RenewBefore, leaf.Spec.Duration)
	}
	cert := decode[cmapi.Certificate](t, r.get(t, "Certificate", "ebb-operator"))
	if ref := cert.Spec.IssuerRef; ref.Name != "ebb-ca" || ref.Kind != "Issuer" || ref.Group != "cert-manager.io" {
		t.Errorf("operator Certificate issuerRef %+v, want Issuer ebb-ca", ref)
	}
	if r.find("NetworkPolicy", "ebb-operator") != nil || r.find("ServiceMonitor", "ebb-operator") != nil {
		t.Errorf("NetworkPolicy or ServiceMonitor rendered by default")
	}
}

func checkOperatorCustom(t *testing.T, r *rendered) {
	checkCustomCommon(t, r, "ebb-operator", 3)
	d := decode[appsv1.Deployment](t, r.get(t, "Deployment", "ebb-operator"))
	args := d.Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{"--leader-elect-namespace=autoscaling", "--leader-elect-id=ebb-leader", "--watch-namespace=team-a",
		"--cluster-object-namespace=ebb-auth", "--workers=20", "--filepath-auth-root-path=/etc/ebb/filepath-auth"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
	// filePathAuth.secretName: the Secret, read-only at the root path.
	var filesMounted bool
	for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
		if m.MountPath != "/etc/ebb/filepath-auth" {
			continue
		}
		filesMounted = m.ReadOnly
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && (v.Secret == nil || v.Secret.SecretName != "trigger-auth-files") {
				t.Errorf("volume at /etc/ebb/filepath-auth is %+v, want Secret trigger-auth-files", v.VolumeSource)
			}
		}
	}
	if !filesMounted {
		t.Errorf("Secret trigger-auth-files is not mounted read-only at /etc/ebb/filepath-auth: %+v", d.Spec.Template.Spec.Containers[0].VolumeMounts)
	}
	role := decode[rbacv1.Role](t, r.get(t, "Role", "ebb-operator"))
	if got := ruleSet(role.Rules); !slices.Contains(got, "coordination.k8s.io/leases/ebb-leader update") {
		t.Errorf("Role grants %v, not the Lease ebb-leader", got)
	}
	for _, name := range []string{"ebb-ca", "ebb-ca-selfsigned"} {
		if r.find("Issuer", name) != nil {
			t.Errorf("Issuer %s rendered with certManager.createCA false", name)
		}
	}
	if r.find("Certificate", "ebb-ca") != nil {
		t.Errorf("CA Certificate rendered with certManager.createCA false")
	}
	cert := decode[cmapi.Certificate](t, r.get(t, "Certificate", "ebb-operator"))
	if ref := cert.Spec.IssuerRef; ref.Name != "corp-ca" || ref.Kind != "ClusterIssuer" {
		t.Errorf("issuerRef %+v, want ClusterIssuer corp-ca", ref)
	}
	np := decode[networkingv1.NetworkPolicy](t, r.get(t, "NetworkPolicy", "ebb-operator"))
	var grpcFromClients bool
	for _, in := range np.Spec.Ingress {
		for _, p := range in.Ports {
			if p.Port != nil && p.Port.String() == "grpc" && len(in.From) > 0 && in.From[0].PodSelector != nil {
				grpcFromClients = true
			}
		}
	}
	if !grpcFromClients {
		t.Errorf("NetworkPolicy does not limit the gRPC port to ebb's clients: %+v", np.Spec.Ingress)
	}
}

// webhookRules is the webhook's RBAC from docs/webhook.md.
var webhookRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"keda.sh"}, Resources: []string{"scaledobjects"}, Verbs: []string{"list"}},
	{APIGroups: []string{"keda.sh"}, Resources: []string{"triggerauthentications", "clustertriggerauthentications"}, Verbs: []string{"get"}},
	{APIGroups: []string{"autoscaling"}, Resources: []string{"horizontalpodautoscalers"}, Verbs: []string{"get", "list"}},
	{APIGroups: []string{""}, Resources: []string{"limitranges"}, Verbs: []string{"list"}},
	{APIGroups: []string{"*"}, Resources: []string{"*/scale"}, Verbs: []string{"get"}},
	{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets"}, Verbs: []string{"get"}},
}

func checkWebhookDefaults(t *testing.T, r *rendered) {
	cr := decode[rbacv1.ClusterRole](t, r.get(t, "ClusterRole", "ebb-webhook"))
	if got, want := ruleSet(cr.Rules), ruleSet(webhookRules); !slices.Equal(got, want) {
		t.Errorf("ClusterRole grants\n%s\nwant (docs/webhook.md)\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	checkBinding(t, r, "ClusterRoleBinding", "ebb-webhook", "ClusterRole", "ebb-webhook")
	if n := len(r.all("Role")) + len(r.all("RoleBinding")); n != 0 {
		t.Errorf("%d Roles or RoleBindings; the webhook needs none", n)
	}
	d := decode[appsv1.Deployment](t, r.get(t, "Deployment", "ebb-webhook"))
	if *d.Spec.Replicas < 2 {
		t.Errorf("replicas %d; with failurePolicy Fail the default must be at least 2", *d.Spec.Replicas)
	}
	if c := d.Spec.Template.Spec.Containers[0]; c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Errorf("no preStop sleep: the endpoint must leave the Service before the server stops")
	}
	checkWebhookConfiguration(t, r, "ebb-system", admissionregistrationv1.Fail, 5)
}

func checkWebhookCustom(t *testing.T, r *rendered) {
	checkCustomCommon(t, r, "ebb-webhook", 3)
	cr := decode[rbacv1.ClusterRole](t, r.get(t, "ClusterRole", "ebb-webhook"))
	if got := ruleSet(cr.Rules); !slices.Contains(got, "argoproj.io/rollouts get") || len(got) != len(ruleSet(webhookRules))+1 {
		t.Errorf("ClusterRole grants %v, want the documented rules plus get on argoproj.io rollouts", got)
	}
	vwc := checkWebhookConfiguration(t, r, "autoscaling", admissionregistrationv1.Ignore, 3)
	for _, w := range vwc.Webhooks {
		namespaced := w.Rules[0].Scope != nil && *w.Rules[0].Scope == admissionregistrationv1.NamespacedScope
		if namespaced != (w.NamespaceSelector != nil && w.NamespaceSelector.MatchLabels["ebb.dev/validate"] == "true") {
			t.Errorf("webhook %s: namespaceSelector %v (namespaced %v)", w.Name, w.NamespaceSelector, namespaced)
		}
	}
	d := decode[appsv1.Deployment](t, r.get(t, "Deployment", "ebb-webhook"))
	if d.Spec.Template.Spec.Containers[0].Lifecycle != nil {
		t.Errorf("preStop set with preStopSleepSeconds 0")
	}
}

// checkWebhookConfiguration checks the ValidatingWebhookConfiguration and
// returns it.
func checkWebhookConfiguration(t *testing.T, r *rendered, ns string, policy admissionregistrationv1.FailurePolicyType, timeout int32) *admissionregistrationv1.ValidatingWebhookConfiguration {
	t.Helper()
	o := r.get(t, "ValidatingWebhookConfiguration", "ebb-webhook")
	vwc := decode[admissionregistrationv1.ValidatingWebhookConfiguration](t, o)
	checkInjectCAFrom(t, r, o, ns, "ebb-webhook")
	kinds := map[string]admissionregistrationv1.ScopeType{
		"scaledobjects": "Namespaced", "scaledjobs": "Namespaced", "triggerauthentications": "Namespaced", "clustertriggerauthentications": "Cluster",
	}
	if len(vwc.Webhooks) != len(kinds) {
		t.Errorf("%d webhooks, want %d", len(vwc.Webhooks), len(kinds))
	}
	for _, w := range vwc.Webhooks {
		if len(w.Rules) != 1 {
			t.Errorf("webhook %s: %d rules, want 1", w.Name, len(w.Rules))
			continue
		}
		rule := w.Rules[0]
		if len(rule.Resources) != 1 {
			t.Errorf("webhook %s: resources %v, want one", w.Name, rule.Resources)
			continue
		}
		res := rule.Resources[0]
		scope, ok := kinds[res]
		delete(kinds, res)
		singular := strings.TrimSuffix(res, "s")
		switch {
		case !ok:
			t.Errorf("webhook %s: resource %q is not one of the four keda.sh kinds (or is repeated)", w.Name, res)
		case w.Name != "v"+singular+".keda.sh":
			t.Errorf("webhook %s for %s, want name v%s.keda.sh", w.Name, res, singular)
		case !slices.Equal(rule.APIGroups, []string{"keda.sh"}) || !slices.Equal(rule.APIVersions, []string{"v1alpha1"}):
			t.Errorf("webhook %s: groups %v versions %v, want keda.sh v1alpha1", w.Name, rule.APIGroups, rule.APIVersions)
		case !slices.Equal(rule.Operations, []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}):
			t.Errorf("webhook %s: operations %v, want CREATE and UPDATE", w.Name, rule.Operations)
		case rule.Scope == nil || *rule.Scope != scope:
			t.Errorf("webhook %s: scope %v, want %s", w.Name, rule.Scope, scope)
		}
		svc := w.ClientConfig.Service
		switch {
		case w.ClientConfig.URL != nil || svc == nil:
			t.Errorf("webhook %s: clientConfig %+v, want the Service", w.Name, w.ClientConfig)
		case svc.Namespace != ns || svc.Name != "ebb-webhook" || svc.Port == nil || *svc.Port != 443 ||
			svc.Path == nil || *svc.Path != "/validate-keda-sh-v1alpha1-"+singular:
			t.Errorf("webhook %s: service %s/%s:%v%v, want %s/ebb-webhook:443/validate-keda-sh-v1alpha1-%s", w.Name, svc.Namespace, svc.Name, svc.Port, svc.Path, ns, singular)
		}
		if w.FailurePolicy == nil || *w.FailurePolicy != policy {
			t.Errorf("webhook %s: failurePolicy %v, want %s", w.Name, w.FailurePolicy, policy)
		}
		if w.SideEffects == nil || *w.SideEffects != admissionregistrationv1.SideEffectClassNone {
			t.Errorf("webhook %s: sideEffects %v, want None", w.Name, w.SideEffects)
		}
		if w.TimeoutSeconds == nil || *w.TimeoutSeconds != timeout {
			t.Errorf("webhook %s: timeoutSeconds %v, want %d", w.Name, w.TimeoutSeconds, timeout)
		}
		if !slices.Equal(w.AdmissionReviewVersions, []string{"v1"}) {
			t.Errorf("webhook %s: admissionReviewVersions %v, want [v1]", w.Name, w.AdmissionReviewVersions)
		}
	}
	return vwc
}

func checkMetricsAPIServerDefaults(t *testing.T, r *rendered) {
	d := decode[appsv1.Deployment](t, r.get(t, "Deployment", "ebb-metrics-apiserver"))
	args := d.Spec.Template.Spec.Containers[0].Args
	if want := "--operator-address=ebb-operator.ebb-system.svc:9443"; !slices.Contains(args, want) {
		t.Errorf("args %v lack %s", args, want)
	}
	if n := len(r.all("ClusterRole")) + len(r.all("Role")); n != 0 {
		t.Errorf("%d ClusterRoles or Roles; the metrics-apiserver needs only the two bindings to existing roles", n)
	}
	checkBinding(t, r, "ClusterRoleBinding", "ebb-metrics-apiserver-auth-delegator", "ClusterRole", "system:auth-delegator")
	rb := checkBinding(t, r, "RoleBinding", "ebb-metrics-apiserver-auth-reader", "Role", "extension-apiserver-authentication-reader")
	if rb.Namespace != "kube-system" {
		t.Errorf("RoleBinding to extension-apiserver-authentication-reader in %q, want kube-system", rb.Namespace)
	}
	checkAPIService(t, r, "ebb-system")
}

func checkMetricsAPIServerCustom(t *testing.T, r *rendered) {
	checkCustomCommon(t, r, "ebb-metrics-apiserver", 1)
	d := decode[appsv1.Deployment](t, r.get(t, "Deployment", "ebb-metrics-apiserver"))
	args := d.Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{"--operator-address=ebb-operator.ebb-core.svc:9443", "--readiness-follows-operator-link=true"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
	checkAPIService(t, r, "autoscaling")
	// The optional grant to the HPA controller.
	name := "ebb-metrics-apiserver-hpa-controller-external-metrics"
	cr := decode[rbacv1.ClusterRole](t, r.get(t, "ClusterRole", name))
	want := []string{"external.metrics.k8s.io/* get", "external.metrics.k8s.io/* list", "external.metrics.k8s.io/* watch"}
	if got := ruleSet(cr.Rules); !slices.Equal(got, want) {
		t.Errorf("ClusterRole %s grants %v, want %v", name, got, want)
	}
	b := checkBinding(t, r, "ClusterRoleBinding", name, "ClusterRole", name)
	if wantSubj := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "horizontal-pod-autoscaler", Namespace: "kube-system"}}; !reflect.DeepEqual(b.Subjects, wantSubj) {
		t.Errorf("ClusterRoleBinding %s subjects %+v, want %+v", name, b.Subjects, wantSubj)
	}
}

// checkAPIService checks the APIService of external.metrics.k8s.io.
func checkAPIService(t *testing.T, r *rendered, ns string) {
	t.Helper()
	o := r.get(t, "APIService", "v1beta1.external.metrics.k8s.io")
	checkInjectCAFrom(t, r, o, ns, "ebb-metrics-apiserver")
	spec, _ := o.obj["spec"].(map[string]any)
	svc, _ := spec["service"].(map[string]any)
	if spec["group"] != "external.metrics.k8s.io" || spec["version"] != "v1beta1" {
		t.Errorf("APIService group %v version %v", spec["group"], spec["version"])
	}
	if svc["namespace"] != ns || svc["name"] != "ebb-metrics-apiserver" || fmt.Sprint(svc["port"]) != "443" {
		t.Errorf("APIService service %v, want %s/ebb-metrics-apiserver:443", svc, ns)
	}
	if v, ok := spec["insecureSkipTLSVerify"]; ok && v != false {
		t.Errorf("APIService skips TLS verification")
	}
}

// checkInjectCAFrom checks that o asks cert-manager's CA injector for the
// CA of the chart's Certificate.
func checkInjectCAFrom(t *testing.T, r *rendered, o object, ns, cert string) {
	t.Helper()
	if got, want := o.Annotations["cert-manager.io/inject-ca-from"], ns+"/"+cert; got != want {
		t.Errorf("%s: cert-manager.io/inject-ca-from %q, want %q", o, got, want)
	}
	if c := r.find("Certificate", cert); c == nil || c.Namespace != ns {
		t.Errorf("%s: no Certificate %s/%s to inject the CA from", o, ns, cert)
	}
}

// checkBinding checks that a (Cluster)RoleBinding refers to the given role
// and returns it.
func checkBinding(t *testing.T, r *rendered, kind, name, roleKind, role string) *rbacv1.RoleBinding {
	t.Helper()
	b := decode[rbacv1.RoleBinding](t, r.get(t, kind, name))
	if b.RoleRef.Kind != roleKind || b.RoleRef.Name != role || b.RoleRef.APIGroup != rbacv1.GroupName {
		t.Errorf("%s %s refers to %+v, want %s %s", kind, name, b.RoleRef, roleKind, role)
	}
	return b
}

// ruleSet expands rules into sorted "group/resource[/name] verb" grants,
// so that rule sets compare regardless of how they are grouped.
func ruleSet(rules []rbacv1.PolicyRule) []string {
	var out []string
	for _, rule := range rules {
		names := rule.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				for _, n := range names {
					for _, v := range rule.Verbs {
						grant := g + "/" + res
						if n != "" {
							grant += "/" + n
						}
						out = append(out, grant+" "+v)
					}
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// helm runs the helm binary.
type helm struct {
	bin    string
	charts string
	// home holds helm's cache, configuration and data: no repository,
	// plugin or setting of the user's is used.
	home string
}

// run runs helm with args and returns its combined output.
func (h *helm) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(h.home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(h.home, "config"), "HELM_DATA_HOME="+filepath.Join(h.home, "data"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return append(stdout.Bytes(), stderr.Bytes()...), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// object is one rendered manifest.
type object struct {
	Kind, Name, Namespace string
	Labels, Annotations   map[string]string
	raw                   []byte
	obj                   map[string]any
}

func (o object) String() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

// rendered holds the manifests of one helm template run.
type rendered struct {
	objs []object
}

// parseRendered splits helm template's output into objects.
func parseRendered(t *testing.T, out []byte) *rendered {
	t.Helper()
	r := &rendered{}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := reader.Read()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("Reading the rendered manifests: %v", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("Rendered manifest is not YAML: %v\n%s", err, doc)
		}
		if len(m) == 0 {
			continue
		}
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name        string            `json:"name"`
				Namespace   string            `json:"namespace"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("Rendered manifest has bad metadata: %v\n%s", err, doc)
		}
		o := object{Kind: meta.Kind, Name: meta.Metadata.Name, Namespace: meta.Metadata.Namespace,
			Labels: meta.Metadata.Labels, Annotations: meta.Metadata.Annotations, raw: doc, obj: m}
		if o.Kind == "" || o.Name == "" {
			t.Errorf("Rendered manifest without kind or name:\n%s", doc)
		}
		for _, other := range r.objs {
			if other.Kind == o.Kind && other.Name == o.Name && other.Namespace == o.Namespace {
				t.Errorf("%s rendered twice", o)
			}
		}
		r.objs = append(r.objs, o)
	}
	return r
}

// find returns the object of that kind and name, or nil.
func (r *rendered) find(kind, name string) *object {
	for i := range r.objs {
		if r.objs[i].Kind == kind && r.objs[i].Name == name {
			return &r.objs[i]
		}
	}
	return nil
}

// get returns the object of that kind and name, failing the test without it.
func (r *rendered) get(t *testing.T, kind, name string) object {
	t.Helper()
	o := r.find(kind, name)
	if o == nil {
		var have []string
		for _, o := range r.objs {
			have = append(have, o.String())
		}
		t.Fatalf("No %s %s rendered; rendered: %s", kind, name, strings.Join(have, ", "))
	}
	return *o
}

// all returns the objects of a kind.
func (r *rendered) all(kind string) []object {
	var out []object
	for _, o := range r.objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// decode decodes o into T strictly: a field T does not have (a misspelt
// key in a template) fails the test.
func decode[T any](t *testing.T, o object) *T {
	t.Helper()
	v := new(T)
	if err := yaml.UnmarshalStrict(o.raw, v); err != nil {
		t.Fatalf("%s does not decode strictly: %v\n%s", o, err, o.raw)
	}
	return v
}

// hasKey reports whether key is a field anywhere in v.
func hasKey(v any, key string) bool {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if k == key || hasKey(e, key) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if hasKey(e, key) {
				return true
			}
		}
	}
	return false
}

// readDir returns the files of dir by name.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}

// chartAppVersion reads the appVersion of the chart in dir.
func chartAppVersion(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(b, &chart); err != nil {
		t.Fatal(err)
	}
	if chart.AppVersion == "" {
		t.Fatalf("%s/Chart.yaml has no appVersion", dir)
	}
	return chart.AppVersion
}
