package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// podServerService is the gRPC health service the pod server reports.
const podServerService = "ebb.test"

// servePod is the server of the node tests' pods: gRPC health (service
// "ebb.test", switched with /serving?status=) on grpcAddr, and on httpAddr
// answers about the pod as its process sees it: /healthz (failing after
// /sick), /file?path=,
// /write?path=&data=, /env?name=, /hostname, /resolve?name= (through the
// pod's /etc/hosts), /whoami (its ServiceAccount, with in-cluster
// configuration).
func servePod(httpAddr, grpcAddr string) error {
	hs := health.NewServer()
	hs.SetServingStatus(podServerService, healthpb.HealthCheckResponse_SERVING)
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	gl, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return err
	}
	go func() { _ = gs.Serve(gl) }()

	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, s string, err error) {
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, s)
	}
	var sick atomic.Bool
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if sick.Load() {
			http.Error(w, "sick", http.StatusServiceUnavailable)
			return
		}
		reply(w, "ok", nil)
	})
	mux.HandleFunc("/sick", func(w http.ResponseWriter, _ *http.Request) {
		sick.Store(true)
		reply(w, "ok", nil)
	})
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		data, err := os.ReadFile(r.URL.Query().Get("path"))
		reply(w, string(data), err)
	})
	mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		reply(w, "ok", os.WriteFile(r.URL.Query().Get("path"), []byte(r.URL.Query().Get("data")), 0o644))
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) { reply(w, os.Getenv(r.URL.Query().Get("name")), nil) })
	mux.HandleFunc("/hostname", func(w http.ResponseWriter, _ *http.Request) {
		name, err := os.Hostname()
		reply(w, name, err)
	})
	mux.HandleFunc("/resolve", func(w http.ResponseWriter, r *http.Request) {
		addrs, err := net.LookupHost(r.URL.Query().Get("name"))
		slices.Sort(addrs)
		reply(w, strings.Join(addrs, ","), err)
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		config, err := rest.InClusterConfig()
		if err != nil {
			reply(w, "", err)
			return
		}
		client, err := kubernetes.NewForConfig(config)
		if err != nil {
			reply(w, "", err)
			return
		}
		review, err := client.AuthenticationV1().SelfSubjectReviews().Create(r.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			reply(w, "", err)
			return
		}
		reply(w, review.Status.UserInfo.Username, nil)
	})
	mux.HandleFunc("/serving", func(w http.ResponseWriter, r *http.Request) {
		status := healthpb.HealthCheckResponse_NOT_SERVING
		if r.URL.Query().Get("status") == "true" {
			status = healthpb.HealthCheckResponse_SERVING
		}
		hs.SetServingStatus(podServerService, status)
		reply(w, status.String(), nil)
	})
	server := &http.Server{Addr: httpAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return server.ListenAndServe()
}

// podGet GETs path (with query) from a node test pod's HTTP server.
func podGet(ctx context.Context, addr, path string, query url.Values) (string, error) {
	u := "http://" + netip.AddrPortFrom(netip.MustParseAddr(addr), 8080).String() + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", u, resp.Status, body)
	}
	return string(body), nil
}

// hostsMap parses a hosts file into name → sorted addresses.
func hostsMap(path string) (map[string][]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := map[string][]string{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		for _, name := range f[1:] {
			m[name] = append(m[name], f[0])
		}
	}
	for _, addrs := range m {
		slices.Sort(addrs)
	}
	return m, nil
}

func podCondition(pod *corev1.Pod, typ corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range pod.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

func TestNodeRunsDeployment(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	const (
		ns      = "node-test"
		app     = "demo"
		image   = "example.test/ebb/test-server"
		greet   = "hello from a Secret"
		ctrName = "server"
	)
	self, _ := helperCommand(t)
	start := time.Now()
	c, err := Start(ctx, Options{Images: map[string]string{image: self}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("Cluster %s with node %s ready in %s (logs: %s)", c.Name, c.Node.Name, time.Since(start).Round(time.Millisecond), c.LogDir)
	node := c.Node
	client := c.Client

	// The Node is Ready, with a Lease.
	n, err := client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool { return c.Type == corev1.NodeReady }); i < 0 || n.Status.Conditions[i].Status != corev1.ConditionTrue {
		t.Errorf("Node %s is not Ready: %+v", node.Name, n.Status.Conditions)
	}
	if _, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, node.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("the node's Lease: %v", err)
	}

	if err := c.ensureServiceAccount(ctx, ns, app); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: app},
		Data:       map[string][]byte{"greeting": []byte(greet)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": app}
	if _, err := client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: app},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
				{Name: "grpc", Port: 9090, TargetPort: intstr.FromInt32(9090)},
			},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A pod of an image the node does not have stays Pending.
	if _, err := client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "elsewhere"},
		Spec:       corev1.PodSpec{ServiceAccountName: app, Containers: []corev1.Container{{Name: "main", Image: "registry.invalid/other:1"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	created := time.Now()
	one := int64(1)
	deployment := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: app},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptrTo(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName:            app,
					TerminationGracePeriodSeconds: &one,
					InitContainers: []corev1.Container{{
						Name:         "init",
						Image:        image + ":v1",
						Args:         []string{"--", "/tmp/init-note", "written by $(WHO)"},
						Env:          []corev1.EnvVar{{Name: helperEnv, Value: "writefile"}, {Name: "WHO", Value: "init"}},
						VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
					}},
					Containers: []corev1.Container{{
						Name:  ctrName,
						Image: image + ":v1",
						Args:  []string{"--", ":8080", ":9090"},
						Env: []corev1.EnvVar{
							{Name: helperEnv, Value: "podserver"},
							{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
							{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
							{Name: "GREETING", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
								LocalObjectReference: corev1.LocalObjectReference{Name: app}, Key: "greeting"}}},
							{Name: "MESSAGE", Value: "hello $(POD_NAME)"},
						},
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "grpc", ContainerPort: 9090}},
						// An exec probe runs with the container's volumes.
						StartupProbe: &corev1.Probe{
							ProbeHandler:     corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/etc/ebb-test/secret/greeting"}}},
							PeriodSeconds:    1,
							FailureThreshold: 30,
						},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:     corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9090, Service: ptrTo(podServerService)}},
							PeriodSeconds:    1,
							FailureThreshold: 1,
						},
						LivenessProbe: &corev1.Probe{
							ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
							PeriodSeconds:    1,
							FailureThreshold: 3,
						},
						VolumeMounts: []corev1.VolumeMount{
							// Missing on the host: under /etc, under /, and
							// /tmp (which holds the cluster's directory and
							// the binary) covered by an emptyDir.
							{Name: "secret", MountPath: "/etc/ebb-test/secret", ReadOnly: true},
							{Name: "scratch", MountPath: "/ebb-test-scratch"},
							{Name: "tmp", MountPath: "/tmp"},
						},
					}},
					Volumes: []corev1.Volume{
						{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: app}}},
						{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					},
				},
			},
		},
	}
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, deployment, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Both pods run, Ready, with addresses.
	selector := metav1.ListOptions{LabelSelector: "app=" + app}
	var pods []corev1.Pod
	eventually(t, 2*time.Minute, "2 pods Running and Ready", func() error {
		list, err := client.CoreV1().Pods(ns).List(ctx, selector)
		if err != nil {
			return err
		}
		pods = list.Items
		if len(pods) != 2 {
			return fmt.Errorf("%d pods", len(pods))
		}
		for _, p := range pods {
			if p.Status.Phase != corev1.PodRunning || podCondition(&p, corev1.PodReady) != corev1.ConditionTrue || p.Status.PodIP == "" {
				return fmt.Errorf("pod %s: phase %s, Ready %s, IP %q (log: %s)", p.Name, p.Status.Phase, podCondition(&p, corev1.PodReady), p.Status.PodIP, node.LogPath())
			}
		}
		return nil
	})
	t.Logf("2 pods Ready %s after the Deployment was created", time.Since(created).Round(time.Millisecond))
	var ips []string
	for _, p := range pods {
		ips = append(ips, p.Status.PodIP)
		if p.Spec.NodeName != node.Name || p.Status.HostIP != c.Network.Gateway.String() {
			t.Errorf("pod %s: node %q, host IP %q", p.Name, p.Spec.NodeName, p.Status.HostIP)
		}
		for _, typ := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReadyToStartContainers} {
			if podCondition(&p, typ) != corev1.ConditionTrue {
				t.Errorf("pod %s: condition %s is %q", p.Name, typ, podCondition(&p, typ))
			}
		}
		if len(p.Status.ContainerStatuses) != 1 || len(p.Status.InitContainerStatuses) != 1 {
			t.Fatalf("pod %s: container statuses %+v, init %+v", p.Name, p.Status.ContainerStatuses, p.Status.InitContainerStatuses)
		}
		if term := p.Status.InitContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 0 || term.Reason != "Completed" {
			t.Errorf("pod %s: init container state %+v", p.Name, p.Status.InitContainerStatuses[0].State)
		}
		if cs := p.Status.ContainerStatuses[0]; !cs.Ready || cs.Started == nil || !*cs.Started || cs.RestartCount != 0 || cs.State.Running == nil {
			t.Errorf("pod %s: container status %+v", p.Name, cs)
		}
	}
	slices.Sort(ips)

	// The EndpointSlice controller lists both; every name of the Service
	// resolves to both in the pods' hosts files.
	checkEndpoints := func(want []string) {
		t.Helper()
		eventually(t, 30*time.Second, fmt.Sprintf("Service %s's endpoints are %v", app, want), func() error {
			list, err := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + app})
			if err != nil {
				return err
			}
			var ready []string
			for _, s := range list.Items {
				for _, e := range s.Endpoints {
					if e.Conditions.Ready == nil || *e.Conditions.Ready {
						ready = append(ready, e.Addresses...)
					}
				}
			}
			slices.Sort(ready)
			if !slices.Equal(ready, want) {
				return fmt.Errorf("EndpointSlices list %v", ready)
			}
			for _, np := range node.Pods() {
				if np.Namespace != ns || np.Host() == nil {
					continue
				}
				m, err := hostsMap(np.Host().HostsPath())
				if err != nil {
					return err
				}
				for _, name := range []string{app, app + "." + ns, app + "." + ns + ".svc", app + "." + ns + ".svc.cluster.local"} {
					if !slices.Equal(m[name], want) {
						return fmt.Errorf("the hosts file of %s maps %s to %v", np.Name, name, m[name])
					}
				}
			}
			return nil
		})
	}
	checkEndpoints(ips)

	// What the processes see.
	for _, p := range pods {
		ip := p.Status.PodIP
		for _, check := range []struct {
			path  string
			query url.Values
			want  string
		}{
			{"/file", url.Values{"path": {"/etc/ebb-test/secret/greeting"}}, greet},
			{"/file", url.Values{"path": {"/tmp/init-note"}}, "written by init"},
			{"/env", url.Values{"name": {"GREETING"}}, greet},
			{"/env", url.Values{"name": {"MESSAGE"}}, "hello " + p.Name},
			{"/env", url.Values{"name": {"POD_IP"}}, ip},
			{"/hostname", nil, p.Name},
			{"/file", url.Values{"path": {"/var/run/secrets/kubernetes.io/serviceaccount/namespace"}}, ns},
			{"/whoami", nil, "system:serviceaccount:" + ns + ":" + app},
			{"/resolve", url.Values{"name": {app + "." + ns + ".svc"}}, strings.Join(ips, ",")},
			{"/write", url.Values{"path": {"/ebb-test-scratch/note"}, "data": {p.Name}}, "ok"},
			{"/write", url.Values{"path": {"/tmp/note"}, "data": {p.Name}}, "ok"},
		} {
			if got, err := podGet(ctx, ip, check.path, check.query); err != nil || got != check.want {
				t.Errorf("pod %s: %s %v = %q, %v; want %q", p.Name, check.path, check.query, got, err, check.want)
			}
		}
		if _, err := podGet(ctx, ip, "/write", url.Values{"path": {"/etc/ebb-test/secret/x"}, "data": {"x"}}); err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Errorf("pod %s: writing into the read-only Secret volume: %v, want a read-only file system error", p.Name, err)
		}
		np := node.Pod(ns, p.Name)
		if np == nil {
			t.Fatalf("the node does not know pod %s", p.Name)
		}
		if got, err := os.ReadFile(filepath.Join(np.Dir, "volumes", "scratch", "note")); err != nil || string(got) != p.Name {
			t.Errorf("pod %s: the emptyDir on the host holds %q, %v", p.Name, got, err)
		}
	}
	// Nothing of it reached the host's file system.
	for _, path := range []string{"/etc/ebb-test", "/ebb-test-scratch", "/tmp/note", "/run/secrets/kubernetes.io"} {
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists on the host: %v", path, err)
		}
	}

	// Readiness follows the probe: a pod that stops serving leaves the
	// Service, and comes back.
	a, b := pods[0], pods[1]
	if _, err := podGet(ctx, a.Status.PodIP, "/serving", url.Values{"status": {"false"}}); err != nil {
		t.Fatal(err)
	}
	checkEndpoints([]string{b.Status.PodIP})
	if _, err := podGet(ctx, a.Status.PodIP, "/serving", url.Values{"status": {"true"}}); err != nil {
		t.Fatal(err)
	}
	checkEndpoints(ips)

	// A killed container is restarted, and Ready again.
	pid, err := node.KillContainer(ns, a.Name, ctrName)
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	eventually(t, time.Minute, "the killed container restarted and Ready", func() error {
		p, err := client.CoreV1().Pods(ns).Get(ctx, a.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cs := p.Status.ContainerStatuses[0]
		if cs.RestartCount != 1 || !cs.Ready || podCondition(p, corev1.PodReady) != corev1.ConditionTrue {
			return fmt.Errorf("restartCount %d, ready %v", cs.RestartCount, cs.Ready)
		}
		if term := cs.LastTerminationState.Terminated; term == nil || term.ExitCode != 137 {
			return fmt.Errorf("last state %+v", cs.LastTerminationState)
		}
		return nil
	})
	t.Logf("Killed container restarted and Ready after %s", time.Since(killed).Round(time.Millisecond))
	if proc := node.Pod(ns, a.Name).Process(ctrName); proc == nil || proc.Pid() == pid {
		t.Errorf("after the restart, process %v (killed: %d)", proc, pid)
	}
	// An emptyDir outlives a container restart.
	if got, err := podGet(ctx, a.Status.PodIP, "/file", url.Values{"path": {"/tmp/note"}}); err != nil || got != a.Name {
		t.Errorf("after the restart, /tmp/note holds %q, %v; want %q", got, err, a.Name)
	}
	checkEndpoints(ips)

	// A container failing its liveness probe is restarted (SIGTERM).
	if _, err := podGet(ctx, a.Status.PodIP, "/sick", nil); err != nil {
		t.Fatal(err)
	}
	sickened := time.Now()
	eventually(t, time.Minute, "the unhealthy container restarted and Ready", func() error {
		p, err := client.CoreV1().Pods(ns).Get(ctx, a.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cs := p.Status.ContainerStatuses[0]
		if cs.RestartCount != 2 || !cs.Ready {
			return fmt.Errorf("restartCount %d, ready %v", cs.RestartCount, cs.Ready)
		}
		if term := cs.LastTerminationState.Terminated; term == nil || term.ExitCode != 143 {
			return fmt.Errorf("last state %+v", cs.LastTerminationState)
		}
		return nil
	})
	t.Logf("Unhealthy container (liveness: 3 failures, 1 s apart) restarted and Ready after %s", time.Since(sickened).Round(time.Millisecond))
	checkEndpoints(ips)

	// Scaling to 1 really stops one pod.
	before := map[types.UID]*NodePod{}
	for _, p := range pods {
		before[p.UID] = node.Pod(ns, p.Name)
	}
	scaled := time.Now()
	if _, err := client.AppsV1().Deployments(ns).Patch(ctx, app, types.MergePatchType, []byte(`{"spec":{"replicas":1}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	var gone *NodePod
	eventually(t, time.Minute, "one pod left", func() error {
		list, err := client.CoreV1().Pods(ns).List(ctx, selector)
		if err != nil {
			return err
		}
		if len(list.Items) != 1 {
			return fmt.Errorf("%d pods", len(list.Items))
		}
		for uid, np := range before {
			if uid != list.Items[0].UID {
				gone = np
			}
		}
		select {
		case <-gone.Done():
			return nil
		default:
			return errors.New("the node still runs the deleted pod")
		}
	})
	t.Logf("Scaled down: the pod stopped and its object was deleted %s after the scale", time.Since(scaled).Round(time.Millisecond))
	if err := gone.Err(); err != nil {
		t.Errorf("tearing down the deleted pod: %v", err)
	}
	if proc := gone.Process(ctrName); proc != nil {
		t.Errorf("the deleted pod's process %d still runs", proc.Pid())
	}
	if _, err := os.Stat(filepath.Join("/run/netns", gone.Host().NetNS)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the deleted pod's network namespace %s: %v", gone.Host().NetNS, err)
	}
	if log, err := os.ReadFile(node.LogPath()); err == nil {
		for _, line := range strings.Split(string(log), "\n") {
			if strings.Contains(line, "still exists") || strings.Contains(line, "Tearing down") {
				t.Logf("node.log: %s", line)
			}
		}
	}
	if _, err := client.CoreV1().Pods(ns).Get(ctx, gone.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the deleted pod's object: %v", err)
	}
	for uid, np := range before {
		if np != gone {
			for _, p := range pods {
				if p.UID == uid {
					checkEndpoints([]string{p.Status.PodIP})
				}
			}
		}
	}

	// The other pod was left alone.
	if p, err := client.CoreV1().Pods(ns).Get(ctx, "elsewhere", metav1.GetOptions{}); err != nil {
		t.Error(err)
	} else if p.Spec.NodeName != "" || p.Status.Phase != corev1.PodPending {
		t.Errorf("pod elsewhere: node %q, phase %s; want no node, Pending", p.Spec.NodeName, p.Status.Phase)
	}
}

func TestNodeHelpers(t *testing.T) {
	for image, want := range map[string]string{
		"ghcr.io/ebb-autoscaler/ebb-operator:v0.1.0":        "ghcr.io/ebb-autoscaler/ebb-operator",
		"ghcr.io/ebb-autoscaler/ebb-webhook@sha256:0123abc": "ghcr.io/ebb-autoscaler/ebb-webhook",
		"localhost:5000/ebb-metrics-apiserver":              "localhost:5000/ebb-metrics-apiserver",
		"localhost:5000/x:1@sha256:0123abc":                 "localhost:5000/x",
	} {
		if got := imageRepository(image); got != want {
			t.Errorf("imageRepository(%q) = %q, want %q", image, got, want)
		}
	}
	vars := map[string]string{"A": "a", "B": "$(A)"}
	lookup := func(name string) (string, bool) { v, ok := vars[name]; return v, ok }
	for in, want := range map[string]string{
		"x$(A)y":      "xay",
		"$(B)":        "$(A)",
		"$(MISSING)":  "$(MISSING)",
		"$$(A)":       "$(A)",
		"$$":          "$",
		"$(A":         "$(A",
		"cost: 5$":    "cost: 5$",
		"--flag=$(A)": "--flag=a",
	} {
		if got := expandVars(in, lookup); got != want {
			t.Errorf("expandVars(%q) = %q, want %q", in, got, want)
		}
	}

	// Nested item paths are projected like kubelet's: a top-level symlink
	// into ..data, and removed items disappear.
	dir := t.TempDir()
	if err := projectFiles(dir, map[string][]byte{"tls/ca.crt": []byte("ca"), "token": []byte("t1")}); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "tls", "ca.crt")); err != nil || string(got) != "ca" {
		t.Errorf("tls/ca.crt: %q, %v", got, err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "tls")); err != nil || target != "..data/tls" {
		t.Errorf("tls links to %q, %v", target, err)
	}
	if err := projectFiles(dir, map[string][]byte{"token": []byte("t2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "tls")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("tls after its removal: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "token")); string(got) != "t2" {
		t.Errorf("token: %q", got)
	}
	for _, bad := range []string{"../x", "/abs", "a/../../x", "..data"} {
		if err := projectFiles(t.TempDir(), map[string][]byte{bad: nil}); err == nil {
			t.Errorf("projectFiles accepted key %q", bad)
		}
	}
}
