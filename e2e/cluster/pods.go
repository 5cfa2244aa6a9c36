package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Timings of pods.
const (
	// podTokenTTL is the lifetime of a pod's ServiceAccount token; it is
	// renewed after 80% of it, as kubelet does.
	podTokenTTL = time.Hour
	// podSecretTimeout bounds how long RunPod waits for a Secret to exist
	// (kubelet would keep the pod ContainerCreating meanwhile).
	podSecretTimeout = 2 * time.Minute
	// podReadyTimeout bounds how long RunPod waits for the pod to accept
	// connections on its ports.
	podReadyTimeout = 2 * time.Minute
	// podAPITimeout bounds the best-effort API calls of Pod.Stop.
	podAPITimeout = 5 * time.Second
)

// endpointSliceManager marks the EndpointSlices of pods, so the cluster's
// EndpointSlice controller leaves them alone.
const endpointSliceManager = "e2e.ebb.dev"

// SecretVolume projects a Secret into a directory.
type SecretVolume struct {
	SecretName string
	Dir        string
}

// PodSpec runs a process "as a pod": in its own network namespace, with a
// kubeconfig that authenticates as a ServiceAccount, and Secrets projected
// into directories. A Pod object of the same name stands for it in the API
// (never scheduled: Running and Ready with the pod's address, set by the
// harness), since the API server's service proxy only reaches endpoints that
// are Pods.
type PodSpec struct {
	// Namespace ("default" when empty) and Name identify the pod; the
	// namespace is created if missing.
	Namespace, Name string
	// ServiceAccount ("default" when empty) is created if missing. A token
	// of it from the TokenRequest API is kept in
	// <Pod.Dir>/serviceaccount/token (with ca.crt and namespace, like
	// kubelet's projected volume) and renewed before it expires;
	// <Pod.Dir>/kubeconfig points at the API server with that token file,
	// and the process gets KUBECONFIG (and KUBERNETES_SERVICE_HOST/PORT).
	ServiceAccount string
	// Path, Args and Env are the process's binary, arguments and extra
	// environment. The working directory is Pod.Dir.
	Path string
	Args []string
	Env  []string
	// Secrets are projected into directories the way kubelet does, and
	// re-projected within about a second when they change. RunPod waits
	// for each Secret to exist before starting the process.
	Secrets []SecretVolume
	// Ports, when non-empty, make a selector-less Service called Name with
	// these ports, and an EndpointSlice (and an Endpoints, which the API
	// server's service proxy reads) with the pod's address, ready once
	// every target port accepts connections. Every pod's hosts file maps
	// <Name>, <Name>.<Namespace>, <Name>.<Namespace>.svc and
	// <Name>.<Namespace>.svc.cluster.local to the pod's address.
	Ports []corev1.ServicePort
}

// Pod is a process run by RunPod.
type Pod struct {
	Spec PodSpec
	// Host is the pod's network namespace and address.
	Host *Host
	// Process is the running process; Restart replaces it.
	Process *Process
	// Dir holds the pod's kubeconfig and serviceaccount/ directory.
	Dir string

	cluster *Cluster
	// ctx is the context of the token renewal and Secret watches; Stop
	// cancels it and waits for them.
	ctx    context.Context
	cancel context.CancelFunc
	done   sync.WaitGroup

	mu      sync.Mutex
	stopped bool
}

// podRegistry is the pod state of one cluster: the network namespaces
// whose hosts files it keeps up to date (RunPod's pods and the node's), and
// what those files map: the addresses of RunPod's Services and the ready
// endpoint addresses of the cluster's real Services (from their
// EndpointSlices, watched by the node agent). There is no kube-proxy and no
// cluster DNS: ClusterIPs are unroutable here, so a Service name resolves
// to the addresses of its ready pods, like a headless Service's.
type podRegistry struct {
	mu       sync.Mutex
	pods     map[*Pod]struct{}
	services map[string]netip.Addr // "<namespace>/<name>" → address
	// nodeHosts are the network namespaces of the node agent's pods.
	nodeHosts map[*Host]nodeHost
	// endpoints are the ready addresses of Services, per EndpointSlice:
	// "<namespace>/<name>" → slice name → addresses.
	endpoints map[string]map[string][]netip.Addr
}

// podRegistry returns the cluster's pod registry, creating it on first use.
func (c *Cluster) podRegistry() *podRegistry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pods == nil {
		c.pods = &podRegistry{
			pods:      map[*Pod]struct{}{},
			services:  map[string]netip.Addr{},
			nodeHosts: map[*Host]nodeHost{},
			endpoints: map[string]map[string][]netip.Addr{},
		}
	}
	return c.pods
}

// serviceAddrs returns the addresses of every Service with at least one;
// r.mu is held.
func (r *podRegistry) serviceAddrs() map[string][]netip.Addr {
	all := map[string][]netip.Addr{}
	for key, addr := range r.services {
		all[key] = append(all[key], addr)
	}
	for key, bySlice := range r.endpoints {
		for _, addrs := range bySlice {
			all[key] = append(all[key], addrs...)
		}
	}
	for key, addrs := range all {
		slices.SortFunc(addrs, netip.Addr.Compare)
		if addrs = slices.Compact(addrs); len(addrs) == 0 {
			delete(all, key)
		} else {
			all[key] = addrs
		}
	}
	return all
}

// hostsEntries returns what the hosts file of a pod of namespace maps;
// r.mu is held.
func (r *podRegistry) hostsEntries(gateway netip.Addr, namespace string) map[string][]netip.Addr {
	entries := map[string][]netip.Addr{}
	add := func(namespace, name string, addrs []netip.Addr) {
		for _, n := range []string{name + "." + namespace, name + "." + namespace + ".svc", name + "." + namespace + ".svc.cluster.local"} {
			entries[n] = append(entries[n], addrs...)
		}
	}
	add(metav1.NamespaceDefault, "kubernetes", []netip.Addr{gateway})
	entries["kubernetes"] = []netip.Addr{gateway}
	services := r.serviceAddrs()
	keys := slices.Sorted(maps.Keys(services))
	for _, key := range keys {
		svcNamespace, name, _ := strings.Cut(key, "/")
		if key == metav1.NamespaceDefault+"/kubernetes" {
			continue
		}
		add(svcNamespace, name, services[key])
	}
	// The short name is what a pod of the same namespace resolves; with no
	// search domains, a short name of another namespace is mapped too when
	// no Service of the pod's namespace has it (the first one wins).
	for _, own := range []bool{true, false} {
		for _, key := range keys {
			svcNamespace, name, _ := strings.Cut(key, "/")
			if (svcNamespace == namespace) != own {
				continue
			}
			if _, ok := entries[name]; !ok {
				entries[name] = services[key]
			}
		}
	}
	return entries
}

// writeHosts rewrites every pod's hosts file; r.mu is held.
func (r *podRegistry) writeHosts(gateway netip.Addr) error {
	var errs []error
	for p := range r.pods {
		errs = append(errs, p.Host.WriteHosts(r.hostsEntries(gateway, p.Spec.Namespace)))
	}
	for h, nh := range r.nodeHosts {
		errs = append(errs, h.WriteHosts(nh.entries(r, h, gateway)))
	}
	return errors.Join(errs...)
}

// nodeHost is what the hosts file of a node pod's namespace depends on.
type nodeHost struct {
	namespace string
	// hostname is the pod's hostname, mapped to its own address as
	// kubelet does.
	hostname string
}

// entries returns what the hosts file of h maps; r.mu is held.
func (nh nodeHost) entries(r *podRegistry, h *Host, gateway netip.Addr) map[string][]netip.Addr {
	entries := r.hostsEntries(gateway, nh.namespace)
	if nh.hostname != "" {
		entries[nh.hostname] = []netip.Addr{h.Addr}
	}
	return entries
}

// addNodeHost adds the network namespace of a node pod and writes its
// hosts file.
func (r *podRegistry) addNodeHost(h *Host, nh nodeHost, gateway netip.Addr) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nodeHosts[h] = nh
	return h.WriteHosts(nh.entries(r, h, gateway))
}

// removeNodeHost forgets the network namespace of a node pod.
func (r *podRegistry) removeNodeHost(h *Host) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.nodeHosts, h)
}

// setEndpoints records the ready addresses of one EndpointSlice of Service
// key ("<namespace>/<name>"; nil addrs forget the slice) and, when that
// changes what the Service resolves to, rewrites every hosts file.
func (r *podRegistry) setEndpoints(key, slice string, addrs []netip.Addr, gateway netip.Addr) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	before := r.serviceAddrs()[key]
	if addrs == nil {
		delete(r.endpoints[key], slice)
		if len(r.endpoints[key]) == 0 {
			delete(r.endpoints, key)
		}
	} else {
		if r.endpoints[key] == nil {
			r.endpoints[key] = map[string][]netip.Addr{}
		}
		r.endpoints[key][slice] = addrs
	}
	if slices.Equal(before, r.serviceAddrs()[key]) {
		return nil
	}
	return r.writeHosts(gateway)
}

// RunPod runs spec as a pod, and stops it with the cluster. It returns once
// the process runs and, with Ports, accepts connections on every port.
func (c *Cluster) RunPod(ctx context.Context, spec PodSpec) (p *Pod, err error) {
	if spec.Namespace == "" {
		spec.Namespace = metav1.NamespaceDefault
	}
	if spec.ServiceAccount == "" {
		spec.ServiceAccount = "default"
	}
	if spec.Name == "" || spec.Path == "" {
		return nil, fmt.Errorf("a pod needs a name and a path: %+v", spec)
	}
	if c.Network == nil || c.Client == nil || c.PKI == nil {
		return nil, errors.New("the cluster is not running")
	}
	// The registry first: its cleanup then runs after those of the pods.
	reg := c.podRegistry()
	id := spec.Namespace + "-" + spec.Name
	dir := filepath.Join(c.Dir, "pods", spec.Namespace, spec.Name)
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "serviceaccount"), 0o755); err != nil {
		return nil, err
	}
	host, err := c.Network.AddHost(strings.ReplaceAll(id, ".", "-"))
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", id, err)
	}
	p = &Pod{Spec: spec, Host: host, Dir: dir, cluster: c}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	c.AddCleanup(func() error { return p.stop(false) })
	defer func() {
		if err != nil {
			err = fmt.Errorf("pod %s: %w", id, err)
			if stopErr := p.Stop(); stopErr != nil {
				err = fmt.Errorf("%w (and stopping it: %v)", err, stopErr)
			}
			p = nil
		}
	}()

	if err := c.ensureServiceAccount(ctx, spec.Namespace, spec.ServiceAccount); err != nil {
		return p, err
	}
	if err := p.writeServiceAccount(ctx); err != nil {
		return p, err
	}
	if err := p.writeKubeconfig(); err != nil {
		return p, err
	}
	for _, v := range spec.Secrets {
		if err := p.projectSecret(ctx, v); err != nil {
			return p, err
		}
	}

	reg.mu.Lock()
	reg.pods[p] = struct{}{}
	err = host.WriteHosts(reg.hostsEntries(c.Network.Gateway, spec.Namespace))
	reg.mu.Unlock()
	if err != nil {
		return p, err
	}
	if len(spec.Ports) > 0 {
		if err := p.createService(ctx); err != nil {
			return p, err
		}
	}
	if err := p.start(); err != nil {
		return p, err
	}
	if err := p.waitReady(ctx); err != nil {
		return p, err
	}
	podObject, err := p.createPodObject(ctx)
	if err != nil {
		return p, err
	}
	if len(spec.Ports) > 0 {
		if err := p.publishEndpoints(ctx, podObject); err != nil {
			return p, err
		}
		reg.mu.Lock()
		reg.services[spec.Namespace+"/"+spec.Name] = host.Addr
		err = reg.writeHosts(c.Network.Gateway)
		reg.mu.Unlock()
		if err != nil {
			return p, err
		}
	}
	return p, nil
}

// ensureServiceAccount creates the namespace and the ServiceAccount when
// they are missing.
func (c *Cluster) ensureServiceAccount(ctx context.Context, namespace, name string) error {
	_, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	_, err = c.Client.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// writeServiceAccount writes serviceaccount/{token,ca.crt,namespace} and
// starts renewing the token.
func (p *Pod) writeServiceAccount(ctx context.Context) error {
	saDir := filepath.Join(p.Dir, "serviceaccount")
	if err := writeFileAtomic(filepath.Join(saDir, "ca.crt"), p.cluster.PKI.CACertPEM); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(saDir, "namespace"), []byte(p.Spec.Namespace)); err != nil {
		return err
	}
	expiry, err := p.renewToken(ctx)
	if err != nil {
		return err
	}
	p.done.Go(func() {
		for {
			// Renew after 80% of the lifetime, as kubelet does; retry
			// failures every 10 s.
			wait := time.Until(expiry) * 4 / 5
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(wait):
			}
			if next, err := p.renewToken(p.ctx); err == nil {
				expiry = next
			} else {
				p.logf("Renewing the ServiceAccount token: %v", err)
				expiry = time.Now().Add(10 * time.Second * 5 / 4)
			}
		}
	})
	return nil
}

// logf appends a line about the pod's machinery to the pod's log.
func (p *Pod) logf(format string, args ...any) {
	f, err := os.OpenFile(filepath.Join(p.cluster.LogDir, p.processName()+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "=== %s: %s\n", time.Now().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
}

// processName names the pod's process and its log file.
func (p *Pod) processName() string { return "pod-" + p.Spec.Namespace + "-" + p.Spec.Name }

// renewToken requests a new token and writes it.
func (p *Pod) renewToken(ctx context.Context) (time.Time, error) {
	tr, err := p.cluster.Client.CoreV1().ServiceAccounts(p.Spec.Namespace).CreateToken(ctx, p.Spec.ServiceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(podTokenTTL / time.Second))}},
		metav1.CreateOptions{})
	if err != nil {
		return time.Time{}, fmt.Errorf("requesting a token for ServiceAccount %s/%s: %w", p.Spec.Namespace, p.Spec.ServiceAccount, err)
	}
	if err := writeFileAtomic(filepath.Join(p.Dir, "serviceaccount", "token"), []byte(tr.Status.Token)); err != nil {
		return time.Time{}, err
	}
	return tr.Status.ExpirationTimestamp.Time, nil
}

// KubeconfigPath is the pod's kubeconfig.
func (p *Pod) KubeconfigPath() string { return filepath.Join(p.Dir, "kubeconfig") }

// writeKubeconfig writes the pod's kubeconfig: the API server on the
// gateway, the cluster CA and the ServiceAccount token file (client-go
// re-reads it, so renewals are picked up).
func (p *Pod) writeKubeconfig() error {
	c := p.cluster
	config := clientcmdapi.NewConfig()
	config.Clusters["cluster"] = &clientcmdapi.Cluster{
		Server:               "https://" + c.APIServerAddr.String(),
		CertificateAuthority: filepath.Join(p.Dir, "serviceaccount", "ca.crt"),
	}
	config.AuthInfos["serviceaccount"] = &clientcmdapi.AuthInfo{
		TokenFile: filepath.Join(p.Dir, "serviceaccount", "token"),
	}
	config.Contexts["pod"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: "serviceaccount", Namespace: p.Spec.Namespace}
	config.CurrentContext = "pod"
	return clientcmd.WriteToFile(*config, p.KubeconfigPath())
}

// projectSecret watches one Secret and projects it into v.Dir on every
// change until the pod stops. It returns once the Secret has been projected
// the first time.
func (p *Pod) projectSecret(ctx context.Context, v SecretVolume) error {
	if v.SecretName == "" || v.Dir == "" {
		return fmt.Errorf("a secret volume needs a secret name and a directory: %+v", v)
	}
	if err := os.MkdirAll(v.Dir, 0o755); err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactoryWithOptions(p.cluster.Client, 0,
		informers.WithNamespace(p.Spec.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", v.SecretName).String()
		}))
	informer := factory.Core().V1().Secrets().Informer()
	projected := make(chan struct{})
	var once sync.Once
	var last map[string][]byte
	project := func(obj any) {
		s, ok := obj.(*corev1.Secret)
		if !ok || s.Name != v.SecretName {
			return
		}
		if last != nil && mapsEqual(last, s.Data) {
			return
		}
		if err := projectFiles(v.Dir, s.Data); err != nil {
			p.logf("Projecting Secret %s into %s: %v", v.SecretName, v.Dir, err)
			return
		}
		last = s.Data
		once.Do(func() { close(projected) })
	}
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    project,
		UpdateFunc: func(_, obj any) { project(obj) },
		// A deleted Secret stays projected, as with kubelet.
	}); err != nil {
		return err
	}
	factory.Start(p.ctx.Done())
	p.done.Go(func() {
		<-p.ctx.Done()
		factory.Shutdown()
	})

	timer := time.NewTimer(podSecretTimeout)
	defer timer.Stop()
	select {
	case <-projected:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for Secret %s/%s: %w", p.Spec.Namespace, v.SecretName, ctx.Err())
	case <-p.ctx.Done():
		return fmt.Errorf("waiting for Secret %s/%s: the pod stopped", p.Spec.Namespace, v.SecretName)
	case <-timer.C:
		return fmt.Errorf("waiting for Secret %s/%s: it did not appear within %s", p.Spec.Namespace, v.SecretName, podSecretTimeout)
	}
}

func mapsEqual(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// projectFiles writes data into dir the way kubelet's atomic writer does:
// the files go into a new timestamped directory, the "..data" symlink is
// swapped to it with a rename, every top-level entry is a symlink
// entry → ..data/entry, and the previous directory and the symlinks of
// removed entries are deleted. A reader following a key's symlink sees
// either the old or the new set. Keys may be relative paths ("a/b", as the
// items of secret and configMap volumes allow): "a" is then the symlink.
func projectFiles(dir string, data map[string][]byte) error {
	const dataLink, tmpLink = "..data", "..data_tmp"
	top := map[string]bool{}
	for key := range data {
		clean := filepath.Clean(key)
		if key == "" || filepath.IsAbs(key) || clean != key || clean == ".." || strings.HasPrefix(clean, "../") || strings.HasPrefix(key, "..") {
			return fmt.Errorf("invalid key %q", key)
		}
		first, _, _ := strings.Cut(key, "/")
		top[first] = true
	}
	oldTarget, _ := os.Readlink(filepath.Join(dir, dataLink))
	tsDir, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return err
	}
	if err := os.Chmod(tsDir, 0o755); err != nil {
		return err
	}
	for key, value := range data {
		path := filepath.Join(tsDir, key)
		if strings.Contains(key, "/") {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
		}
		if err := os.WriteFile(path, value, 0o644); err != nil {
			return err
		}
	}
	tmp := filepath.Join(dir, tmpLink)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Symlink(filepath.Base(tsDir), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, dataLink)); err != nil {
		return err
	}
	for name := range top {
		link := filepath.Join(dir, name)
		if target, err := os.Readlink(link); err == nil && target == filepath.Join(dataLink, name) {
			continue
		}
		if err := os.Symlink(filepath.Join(dataLink, name), link); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "..") || top[name] {
			continue
		}
		if target, err := os.Readlink(filepath.Join(dir, name)); err == nil && strings.HasPrefix(target, dataLink+"/") {
			os.Remove(filepath.Join(dir, name))
		}
	}
	if oldTarget != "" && oldTarget != filepath.Base(tsDir) {
		return os.RemoveAll(filepath.Join(dir, oldTarget))
	}
	return nil
}

// createService creates (or replaces the ports of) the pod's selector-less
// Service.
func (p *Pod) createService(ctx context.Context) error {
	services := p.cluster.Client.CoreV1().Services(p.Spec.Namespace)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: p.Spec.Name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: p.Spec.Ports},
	}
	_, err := services.Create(ctx, svc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		var existing *corev1.Service
		if existing, err = services.Get(ctx, p.Spec.Name, metav1.GetOptions{}); err == nil {
			existing.Spec.Selector = nil
			existing.Spec.Ports = p.Spec.Ports
			_, err = services.Update(ctx, existing, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		return fmt.Errorf("creating Service %s/%s: %w", p.Spec.Namespace, p.Spec.Name, err)
	}
	return nil
}

// targetPort returns the port the pod listens on for a service port.
func targetPort(sp corev1.ServicePort) int32 {
	if sp.TargetPort.Type == intstr.Int && sp.TargetPort.IntVal != 0 {
		return sp.TargetPort.IntVal
	}
	return sp.Port
}

// podImage is the image of the Pod objects standing for pods' processes.
const podImage = "e2e.ebb.dev/process"

// createPodObject creates a Pod object standing for the process: never
// scheduled (the cluster has no scheduler nor nodes), Running and Ready with
// the pod's address. The API server's service proxy only proxies to
// endpoint addresses that are the IP of the Pod named by their targetRef.
func (p *Pod) createPodObject(ctx context.Context) (*corev1.Pod, error) {
	pods := p.cluster.Client.CoreV1().Pods(p.Spec.Namespace)
	if err := pods.Delete(ctx, p.Spec.Name, metav1.DeleteOptions{GracePeriodSeconds: ptrTo(int64(0))}); err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	obj := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:   p.Spec.Name,
			Labels: map[string]string{"app.kubernetes.io/managed-by": endpointSliceManager},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName:           p.Spec.ServiceAccount,
			AutomountServiceAccountToken: ptrTo(false),
			Containers:                   []corev1.Container{{Name: "main", Image: podImage, Command: append([]string{p.Spec.Path}, p.Spec.Args...)}},
		},
	}
	var err error
	if obj, err = createOrWait(ctx, func() (*corev1.Pod, error) { return pods.Create(ctx, obj, metav1.CreateOptions{}) }); err != nil {
		return nil, fmt.Errorf("creating Pod %s/%s: %w", p.Spec.Namespace, p.Spec.Name, err)
	}
	now := metav1.Now()
	addr := p.Host.Addr.String()
	obj.Status = corev1.PodStatus{
		Phase:     corev1.PodRunning,
		PodIP:     addr,
		PodIPs:    []corev1.PodIP{{IP: addr}},
		HostIP:    p.cluster.Network.Gateway.String(),
		HostIPs:   []corev1.HostIP{{IP: p.cluster.Network.Gateway.String()}},
		StartTime: &now,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		},
	}
	if obj, err = pods.UpdateStatus(ctx, obj, metav1.UpdateOptions{}); err != nil {
		return nil, fmt.Errorf("updating the status of Pod %s/%s: %w", p.Spec.Namespace, p.Spec.Name, err)
	}
	return obj, nil
}

// createOrWait retries create while an object of the same name is still
// being deleted.
func createOrWait[T any](ctx context.Context, create func() (T, error)) (T, error) {
	var obj T
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		var err error
		obj, err = create()
		if apierrors.IsAlreadyExists(err) {
			return false, nil
		}
		return err == nil, err
	})
	return obj, err
}

// publishEndpoints creates the pod's EndpointSlice (read by the aggregator
// and admission webhooks) and Endpoints (read by the service proxy).
func (p *Pod) publishEndpoints(ctx context.Context, podObject *corev1.Pod) error {
	ns, name, addr := p.Spec.Namespace, p.Spec.Name, p.Host.Addr.String()
	targetRef := &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: podObject.Name, UID: podObject.UID}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: name + "-pod",
			Labels: map[string]string{
				discoveryv1.LabelServiceName: name,
				discoveryv1.LabelManagedBy:   endpointSliceManager,
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{addr},
			TargetRef:  targetRef,
			Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(true), Serving: ptrTo(true), Terminating: ptrTo(false)},
		}},
	}
	var legacyPorts []corev1.EndpointPort
	for _, sp := range p.Spec.Ports {
		protocol := sp.Protocol
		if protocol == "" {
			protocol = corev1.ProtocolTCP
		}
		slice.Ports = append(slice.Ports, discoveryv1.EndpointPort{
			Name: ptrTo(sp.Name), Protocol: ptrTo(protocol), Port: ptrTo(targetPort(sp)), AppProtocol: sp.AppProtocol,
		})
		legacyPorts = append(legacyPorts, corev1.EndpointPort{
			Name: sp.Name, Protocol: protocol, Port: targetPort(sp), AppProtocol: sp.AppProtocol,
		})
	}
	//lint:ignore SA1019 the API server's service proxy still reads Endpoints
	endpoints := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			// The EndpointSlice above is the one: no mirrored copy.
			Labels: map[string]string{discoveryv1.LabelSkipMirror: "true"},
		},
		//lint:ignore SA1019 as above
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: addr, TargetRef: targetRef}},
			Ports:     legacyPorts,
		}},
	}

	slices := p.cluster.Client.DiscoveryV1().EndpointSlices(ns)
	if err := slices.Delete(ctx, slice.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if _, err := slices.Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating EndpointSlice %s/%s: %w", ns, slice.Name, err)
	}
	eps := p.cluster.quietClient().CoreV1().Endpoints(ns)
	if err := eps.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if _, err := eps.Create(ctx, endpoints, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating Endpoints %s/%s: %w", ns, name, err)
	}
	return nil
}

// start starts the process in the pod's namespace.
func (p *Pod) start() error {
	c := p.cluster
	env := append([]string{
		"KUBECONFIG=" + p.KubeconfigPath(),
		"KUBERNETES_SERVICE_HOST=" + c.APIServerAddr.Addr().String(),
		"KUBERNETES_SERVICE_PORT=" + strconv.Itoa(int(c.APIServerAddr.Port())),
	}, p.Spec.Env...)
	proc, err := StartProcess(ProcessSpec{
		Name:   p.processName(),
		Path:   p.Spec.Path,
		Args:   p.Spec.Args,
		Env:    env,
		Dir:    p.Dir,
		LogDir: c.LogDir,
		NetNS:  p.Host.NetNS,
	})
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.Process = proc
	p.mu.Unlock()
	return nil
}

// waitReady waits until every target port accepts TCP connections on the
// pod's address, as a readiness probe would.
func (p *Pod) waitReady(ctx context.Context) error {
	p.mu.Lock()
	proc := p.Process
	p.mu.Unlock()
	var ports []int32
	for _, sp := range p.Spec.Ports {
		if sp.Protocol == "" || sp.Protocol == corev1.ProtocolTCP {
			ports = append(ports, targetPort(sp))
		}
	}
	slices.Sort(ports)
	ports = slices.Compact(ports)
	ctx, cancel := context.WithTimeout(ctx, podReadyTimeout)
	defer cancel()
	dialer := net.Dialer{Timeout: time.Second}
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if proc.Exited() {
			return false, fmt.Errorf("exited (%v); see %s", proc.Err(), proc.LogPath)
		}
		for _, port := range ports {
			conn, err := dialer.DialContext(ctx, "tcp", netip.AddrPortFrom(p.Host.Addr, uint16(port)).String())
			if err != nil {
				return false, nil
			}
			conn.Close()
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for ports %v on %s: %w (log: %s)", ports, p.Host.Addr, err, proc.LogPath)
	}
	return nil
}

// Kill kills the process at once (SIGKILL), as a crash would. The pod keeps
// its namespace, Service and Secrets; Restart runs the process again.
func (p *Pod) Kill() {
	p.mu.Lock()
	proc := p.Process
	p.mu.Unlock()
	if proc != nil {
		proc.Kill()
	}
}

// Restart starts the process again in the same namespace, after it exited
// or was killed, and waits until it accepts connections on its ports.
func (p *Pod) Restart(ctx context.Context) error {
	p.mu.Lock()
	proc, stopped := p.Process, p.stopped
	p.mu.Unlock()
	if stopped {
		return fmt.Errorf("pod %s/%s is stopped", p.Spec.Namespace, p.Spec.Name)
	}
	if proc != nil && !proc.Exited() {
		return fmt.Errorf("pod %s/%s is still running", p.Spec.Namespace, p.Spec.Name)
	}
	if err := p.start(); err != nil {
		return err
	}
	return p.waitReady(ctx)
}

// Stop stops the process and the Secret watches and token renewal, deletes
// the Service, EndpointSlice and Endpoints (best effort) and removes the
// network namespace. It is idempotent; the cluster's Stop calls it too.
func (p *Pod) Stop() error { return p.stop(true) }

func (p *Pod) stop(deleteObjects bool) error {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return nil
	}
	p.stopped = true
	proc := p.Process
	p.mu.Unlock()

	var errs []error
	if proc != nil {
		errs = append(errs, proc.Stop(stopGrace))
	}
	p.cancel()
	p.done.Wait()

	c := p.cluster
	reg := c.podRegistry()
	reg.mu.Lock()
	delete(reg.pods, p)
	key := p.Spec.Namespace + "/" + p.Spec.Name
	if addr, ok := reg.services[key]; ok && addr == p.Host.Addr {
		delete(reg.services, key)
		errs = append(errs, reg.writeHosts(c.Network.Gateway))
	}
	reg.mu.Unlock()

	if deleteObjects {
		// Best effort: the API server may be gone already.
		ctx, cancel := context.WithTimeout(context.Background(), podAPITimeout)
		ns, name := p.Spec.Namespace, p.Spec.Name
		_ = c.Client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptrTo(int64(0))})
		_ = c.Client.DiscoveryV1().EndpointSlices(ns).Delete(ctx, name+"-pod", metav1.DeleteOptions{})
		_ = c.quietClient().CoreV1().Endpoints(ns).Delete(ctx, name, metav1.DeleteOptions{})
		if len(p.Spec.Ports) > 0 {
			_ = c.Client.CoreV1().Services(ns).Delete(ctx, name, metav1.DeleteOptions{})
		}
		cancel()
	}
	errs = append(errs, p.Host.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stopping pod %s/%s: %w", p.Spec.Namespace, p.Spec.Name, err)
	}
	return nil
}

// quietClient returns a client that drops the API server's warnings (the
// deprecation of Endpoints, which the service proxy still needs).
func (c *Cluster) quietClient() kubernetes.Interface {
	if c.Config == nil {
		return c.Client
	}
	config := rest.CopyConfig(c.Config)
	config.WarningHandler = rest.NoWarnings{}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return c.Client
	}
	return client
}

// writeFileAtomic writes a file by renaming a temporary file over it.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

func ptrTo[T any](v T) *T { return &v }
