package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
)

// Timings of the node agent.
const (
	// nodeLeaseDuration and nodeLeaseRenew are kubelet's defaults: the
	// node's Lease is renewed every 10 s and expires after 40 s.
	nodeLeaseDuration = 40 * time.Second
	nodeLeaseRenew    = 10 * time.Second
	// nodeStatusReport is how often the Node's status is re-posted (kubelet:
	// 5 min when nothing changes; the Lease is the heartbeat).
	nodeStatusReport = time.Minute
	// podResync re-checks every pod's state (status, volumes) this often,
	// in case an event was missed.
	podResync = 10 * time.Second
	// nodeStopGrace caps the termination grace of the pods when the node
	// (the cluster) stops.
	nodeStopGrace = 5 * time.Second
)

// NodeOptions configure StartNode.
type NodeOptions struct {
	// Name is the Node's name; the cluster's name when empty.
	Name string
	// Images maps an image repository, without tag or digest
	// ("ghcr.io/ebb-autoscaler/ebb-operator"), to the local binary that is
	// its entrypoint. The node binds and runs exactly the pods whose every
	// image is here; all other pods stay Pending, as without a node.
	Images map[string]string
	// MaxProbePeriod, when set, caps the periodSeconds of every probe.
	MaxProbePeriod time.Duration
}

// Node is the harness's node agent, a "netns kubelet": it registers a Node
// (Ready, with a Lease renewed every 10 s), acts as the scheduler of the
// pods it can run (their images are in NodeOptions.Images) and runs them:
// one network namespace per pod, one process per container, volumes
// mounted at their mount paths, probes, restarts, status, graceful
// deletion. The cluster's real controllers (ReplicaSet, EndpointSlice,
// garbage collector) then work as on a real cluster. It also keeps every
// pod's hosts file mapping Service names to the ready endpoints of the
// Services (there is no kube-proxy nor cluster DNS).
//
// What a pod can use: containers (args, command, env with value, fieldRef,
// resourceFieldRef, secretKeyRef and configMapKeyRef, envFrom), init
// containers, volumes secret, configMap, projected (serviceAccountToken,
// secret, configMap, downwardAPI), downwardAPI and emptyDir, mounted with
// subPath and readOnly; probes grpc, httpGet, tcpSocket and exec
// (startup, readiness, liveness); restartPolicy; readinessGates;
// nodeSelector. Not honoured: resources (no limits are enforced),
// securityContext (processes run as root on the host's filesystem, with
// only the volumes mounted), lifecycle hooks, hostPath and persistent
// volumes (the pod fails to start), affinity, taints and tolerations, the
// kubelet API (no logs or exec through the API server: logs are in
// Cluster.LogDir).
type Node struct {
	// Name is the Node's name.
	Name string

	cluster *Cluster
	opts    NodeOptions
	images  map[string]string
	self    string // this binary, the container init
	logPath string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	secrets    corelisters.SecretLister
	configMaps corelisters.ConfigMapLister
	scheduling workqueue.TypedRateLimitingInterface[types.NamespacedName]
	unassigned corelisters.PodLister

	mu   sync.Mutex
	pods map[types.UID]*NodePod
	// finished are the pods whose containers all ended for good
	// (restartPolicy Never or OnFailure): they are not run again.
	finished map[types.UID]bool
	stopped  bool
}

// StartNode starts the node agent and returns once it has registered its
// Node and its caches are synced. It stops with the cluster. Start calls it
// when Options.Images is set.
func (c *Cluster) StartNode(ctx context.Context, opts NodeOptions) (*Node, error) {
	if c.Client == nil || c.Network == nil {
		return nil, errors.New("the cluster is not running")
	}
	c.mu.Lock()
	if c.Node != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("node %s is already running", c.Node.Name)
	}
	c.mu.Unlock()
	if opts.Name == "" {
		opts.Name = c.Name
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this binary, the node's container init: %w", err)
	}
	images := map[string]string{}
	for image, path := range opts.Images {
		repo := imageRepository(image)
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		info, err := os.Stat(abs)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", image, err)
		}
		if info.IsDir() || info.Mode().Perm()&0o111 == 0 {
			return nil, fmt.Errorf("image %s: %s is not an executable file", image, abs)
		}
		images[repo] = abs
	}
	n := &Node{
		Name:     opts.Name,
		cluster:  c,
		opts:     opts,
		images:   images,
		self:     self,
		logPath:  filepath.Join(c.LogDir, "node.log"),
		pods:     map[types.UID]*NodePod{},
		finished: map[types.UID]bool{},
		scheduling: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](100*time.Millisecond, 5*time.Second),
			workqueue.TypedRateLimitingQueueConfig[types.NamespacedName]{Name: "node-scheduler"}),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	c.AddCleanup(n.Stop)
	if err := n.start(ctx); err != nil {
		if stopErr := n.Stop(); stopErr != nil {
			err = fmt.Errorf("%w (and stopping: %v)", err, stopErr)
		}
		return nil, fmt.Errorf("starting node %s: %w (log: %s)", n.Name, err, n.logPath)
	}
	c.mu.Lock()
	c.Node = n
	c.mu.Unlock()
	return n, nil
}

func (n *Node) start(ctx context.Context) error {
	n.logf("Starting node %s with images %v", n.Name, n.images)
	if err := n.register(ctx); err != nil {
		return err
	}
	n.wg.Go(n.heartbeat)

	client := n.cluster.Client
	factory := informers.NewSharedInformerFactory(client, 0)
	n.secrets = factory.Core().V1().Secrets().Lister()
	n.configMaps = factory.Core().V1().ConfigMaps().Lister()
	kick := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { n.kickNamespace(obj) },
		UpdateFunc: func(_, obj any) { n.kickNamespace(obj) },
		DeleteFunc: func(obj any) { n.kickNamespace(obj) },
	}
	for _, informer := range []cache.SharedIndexInformer{factory.Core().V1().Secrets().Informer(), factory.Core().V1().ConfigMaps().Informer()} {
		if _, err := informer.AddEventHandler(kick); err != nil {
			return err
		}
	}
	endpointSlices := factory.Discovery().V1().EndpointSlices().Informer()
	if _, err := endpointSlices.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { n.endpointSliceChanged(obj, false) },
		UpdateFunc: func(_, obj any) { n.endpointSliceChanged(obj, false) },
		DeleteFunc: func(obj any) { n.endpointSliceChanged(obj, true) },
	}); err != nil {
		return err
	}

	// The node's pods, and the pods no node has.
	mine := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", n.Name).String()
	}))
	if _, err := mine.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { n.syncPod(obj) },
		UpdateFunc: func(_, obj any) { n.syncPod(obj) },
		DeleteFunc: n.podDeleted,
	}); err != nil {
		return err
	}
	pending := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", "").String()
	}))
	n.unassigned = pending.Core().V1().Pods().Lister()
	enqueue := func(obj any) {
		if pod, ok := obj.(*corev1.Pod); ok {
			n.scheduling.Add(types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name})
		}
	}
	if _, err := pending.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return err
	}

	// Volumes and DNS first: the pods need them.
	factory.Start(n.ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("syncing the cache of %v", typ)
		}
	}
	mine.Start(n.ctx.Done())
	pending.Start(n.ctx.Done())
	for _, f := range []informers.SharedInformerFactory{mine, pending} {
		for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
			if !ok {
				return fmt.Errorf("syncing the cache of %v", typ)
			}
		}
	}
	n.wg.Go(func() {
		<-n.ctx.Done()
		n.scheduling.ShutDown()
		factory.Shutdown()
		mine.Shutdown()
		pending.Shutdown()
	})
	n.wg.Go(n.schedule)
	return nil
}

// logf appends a line to the node's log (Cluster.LogDir/node.log).
func (n *Node) logf(format string, args ...any) {
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s\n", time.Now().Format("15:04:05.000000"), fmt.Sprintf(format, args...))
}

// LogPath is the node agent's log.
func (n *Node) LogPath() string { return n.logPath }

// Stop terminates every pod of the node (SIGTERM, at most a few seconds
// of grace, SIGKILL), removes their network namespaces and stops the
// agent. The Pod and Node objects are left as they are. It is idempotent;
// the cluster's Stop calls it.
func (n *Node) Stop() error {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return nil
	}
	n.stopped = true
	pods := make([]*NodePod, 0, len(n.pods))
	for _, p := range n.pods {
		pods = append(pods, p)
	}
	n.mu.Unlock()
	for _, p := range pods {
		p.terminate(min(p.terminationGrace(), nodeStopGrace), false)
	}
	var errs []error
	for _, p := range pods {
		<-p.done
		errs = append(errs, p.err)
	}
	n.cancel()
	n.wg.Wait()
	n.logf("Stopped")
	return errors.Join(errs...)
}

// register creates (or updates) the Node and its Lease.
func (n *Node) register(ctx context.Context) error {
	nodes := n.cluster.Client.CoreV1().Nodes()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.Name,
			Labels: map[string]string{
				corev1.LabelHostname:   n.Name,
				corev1.LabelOSStable:   runtime.GOOS,
				corev1.LabelArchStable: runtime.GOARCH,
			},
		},
	}
	created, err := nodes.Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = nodes.Get(ctx, n.Name, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("registering Node %s: %w", n.Name, err)
	}
	if err := n.postStatus(ctx, created); err != nil {
		return err
	}
	return n.renewLease(ctx, created)
}

// nodeStatus is the Node's status: Ready, with the host's capacity.
func (n *Node) nodeStatus(old corev1.NodeStatus) corev1.NodeStatus {
	now := metav1.Now()
	cpu := resource.MustParse(strconv.Itoa(runtime.NumCPU()))
	memory := resource.MustParse(strconv.FormatInt(hostMemory(), 10))
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              cpu,
		corev1.ResourceMemory:           memory,
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
	condition := func(typ corev1.NodeConditionType, status corev1.ConditionStatus, reason, message string) corev1.NodeCondition {
		c := corev1.NodeCondition{Type: typ, Status: status, Reason: reason, Message: message, LastHeartbeatTime: now, LastTransitionTime: now}
		for _, o := range old.Conditions {
			if o.Type == typ && o.Status == status {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
		return c
	}
	var uname syscall.Utsname
	_ = syscall.Uname(&uname)
	return corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			condition(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "the ebb node agent has sufficient memory available"),
			condition(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "the ebb node agent has no disk pressure"),
			condition(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "the ebb node agent has sufficient PID available"),
			condition(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "the ebb node agent is posting ready status"),
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: n.cluster.Network.Gateway.String()},
			{Type: corev1.NodeHostName, Address: n.Name},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
		NodeInfo: corev1.NodeSystemInfo{
			KernelVersion:           utsString(uname.Release[:]),
			OSImage:                 "ebb e2e netns node",
			ContainerRuntimeVersion: "ebb-netns://0.1.0",
			KubeletVersion:          "v1.36.3",
			OperatingSystem:         runtime.GOOS,
			Architecture:            runtime.GOARCH,
		},
	}
}

// postStatus writes the Node's status (node is a recent version of the
// Node: on a conflict, the latest is read).
func (n *Node) postStatus(ctx context.Context, node *corev1.Node) error {
	nodes := n.cluster.Client.CoreV1().Nodes()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if node == nil {
			var err error
			if node, err = nodes.Get(ctx, n.Name, metav1.GetOptions{}); err != nil {
				return err
			}
		}
		updated := node.DeepCopy()
		updated.Status = n.nodeStatus(node.Status)
		_, err := nodes.UpdateStatus(ctx, updated, metav1.UpdateOptions{})
		node = nil
		return err
	})
	if err != nil {
		return fmt.Errorf("updating the status of Node %s: %w", n.Name, err)
	}
	return nil
}

// renewLease creates or renews the node's Lease in kube-node-lease.
func (n *Node) renewLease(ctx context.Context, node *corev1.Node) error {
	leases := n.cluster.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, n.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{
				Name: n.Name,
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID,
				}},
			},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptrTo(n.Name),
				LeaseDurationSeconds: ptrTo(int32(nodeLeaseDuration / time.Second)),
				RenewTime:            &now,
			},
		}
		_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
	} else if err == nil {
		lease.Spec.HolderIdentity = ptrTo(n.Name)
		lease.Spec.LeaseDurationSeconds = ptrTo(int32(nodeLeaseDuration / time.Second))
		lease.Spec.RenewTime = &now
		_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("renewing the Lease of Node %s: %w", n.Name, err)
	}
	return nil
}

// heartbeat renews the Lease every 10 s and re-posts the status every
// minute, until the node stops.
func (n *Node) heartbeat() {
	lease := time.NewTicker(nodeLeaseRenew)
	defer lease.Stop()
	status := time.NewTicker(nodeStatusReport)
	defer status.Stop()
	for {
		post := false
		select {
		case <-n.ctx.Done():
			return
		case <-lease.C:
		case <-status.C:
			post = true
		}
		ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
		node, err := n.cluster.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err == nil && post {
			err = n.postStatus(ctx, node)
		}
		if err == nil {
			err = n.renewLease(ctx, node)
		}
		cancel()
		if err != nil && n.ctx.Err() == nil {
			n.logf("Heartbeat: %v", err)
		}
	}
}

// hostMemory returns the host's memory in bytes (MemTotal).
func hostMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 8 << 30
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			if kb, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
				return kb * 1024
			}
		}
	}
	return 8 << 30
}

func utsString(b []int8) string {
	var s strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		s.WriteByte(byte(c))
	}
	return s.String()
}

// imageRepository strips the tag and digest of an image reference.
func imageRepository(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	return image
}

// binaryOf returns the binary of an image, if the node has it.
func (n *Node) binaryOf(image string) (string, bool) {
	path, ok := n.images[imageRepository(image)]
	return path, ok
}

// canRun reports whether the node has the image of every container.
func (n *Node) canRun(pod *corev1.Pod) bool {
	if len(pod.Spec.Containers) == 0 || len(pod.Spec.EphemeralContainers) > 0 {
		return false
	}
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		if _, ok := n.binaryOf(c.Image); !ok {
			return false
		}
	}
	return true
}

// nodeLabels are the labels nodeSelectors are matched against.
func (n *Node) nodeLabels() labels.Set {
	return labels.Set{
		corev1.LabelHostname:   n.Name,
		corev1.LabelOSStable:   runtime.GOOS,
		corev1.LabelArchStable: runtime.GOARCH,
	}
}

// schedule binds the pending pods the node can run to it, as the
// scheduler would; it leaves every other pod alone.
func (n *Node) schedule() {
	for {
		key, shutdown := n.scheduling.Get()
		if shutdown {
			return
		}
		err := n.bind(key)
		if err != nil && n.ctx.Err() == nil {
			n.logf("Binding pod %s: %v", key, err)
			n.scheduling.AddRateLimited(key)
		} else {
			n.scheduling.Forget(key)
		}
		n.scheduling.Done(key)
	}
}

func (n *Node) bind(key types.NamespacedName) error {
	pod, err := n.unassigned.Pods(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if pod.Spec.NodeName != "" || pod.DeletionTimestamp != nil || !n.canRun(pod) ||
		(pod.Spec.SchedulerName != "" && pod.Spec.SchedulerName != corev1.DefaultSchedulerName) ||
		!labels.SelectorFromSet(pod.Spec.NodeSelector).Matches(n.nodeLabels()) {
		return nil
	}
	ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
	defer cancel()
	err = n.cluster.Client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: n.Name},
	}, metav1.CreateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // bound meanwhile, or gone
	}
	if err == nil {
		n.logf("Bound pod %s/%s (%s)", pod.Namespace, pod.Name, pod.UID)
	}
	return err
}

// syncPod starts running a pod bound to the node, or passes it the latest
// version of its object (a deletion request among others).
func (n *Node) syncPod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.NodeName != n.Name {
		return
	}
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return
	}
	p := n.pods[pod.UID]
	if p == nil {
		if n.finished[pod.UID] || pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			// Ended, or deleted before it ever ran: nothing to stop.
			n.mu.Unlock()
			if pod.DeletionTimestamp != nil {
				n.deletePodObject(pod.Namespace, pod.Name, pod.UID)
			}
			return
		}
		p = newNodePod(n, pod)
		n.pods[pod.UID] = p
		n.mu.Unlock()
		n.logf("Running pod %s/%s (%s)", pod.Namespace, pod.Name, pod.UID)
		n.wg.Go(p.run)
		return
	}
	n.mu.Unlock()
	p.update(pod)
}

// podDeleted stops a pod whose object is gone (force-deleted) at once.
func (n *Node) podDeleted(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	n.mu.Lock()
	p := n.pods[pod.UID]
	n.mu.Unlock()
	if p != nil {
		// Force-deleted: kubelet then gives the containers 1 s.
		p.terminate(time.Second, false)
	}
}

// forget drops a pod that has been torn down.
func (n *Node) forget(p *NodePod) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.pods[p.UID] == p {
		delete(n.pods, p.UID)
	}
}

// deletePodObject deletes a pod's object at once (grace 0), as kubelet does
// once the pod's containers have stopped; the UID precondition spares a
// new pod of the same name.
func (n *Node) deletePodObject(namespace, name string, uid types.UID) {
	ctx, cancel := context.WithTimeout(context.Background(), podAPITimeout)
	defer cancel()
	err := n.cluster.Client.CoreV1().Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{
		GracePeriodSeconds: ptrTo(int64(0)),
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		n.logf("Deleting pod %s/%s: %v", namespace, name, err)
	}
}

// kickNamespace tells the pods of an object's namespace that a Secret or
// ConfigMap changed.
func (n *Node) kickNamespace(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	o, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.pods {
		if p.Namespace == o.GetNamespace() {
			p.kickVolumes()
			p.kickContainers()
		}
	}
}

// endpointSliceChanged maps a Service's names, in every pod's hosts file,
// to the ready addresses of its EndpointSlices.
func (n *Node) endpointSliceChanged(obj any, deleted bool) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj, deleted = tombstone.Obj, true
	}
	slice, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok || slice.AddressType != discoveryv1.AddressTypeIPv4 {
		return
	}
	service := slice.Labels[discoveryv1.LabelServiceName]
	if service == "" || slice.Labels[discoveryv1.LabelManagedBy] == endpointSliceManager {
		return // RunPod's own slices: its registry entries cover them
	}
	var addrs []netip.Addr
	if !deleted {
		addrs = []netip.Addr{}
		for _, e := range slice.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				if addr, err := netip.ParseAddr(a); err == nil {
					addrs = append(addrs, addr)
				}
			}
		}
	}
	reg := n.cluster.podRegistry()
	if err := reg.setEndpoints(slice.Namespace+"/"+service, slice.Name, addrs, n.cluster.Network.Gateway); err != nil {
		n.logf("Updating hosts files for Service %s/%s: %v", slice.Namespace, service, err)
	}
}

// Pods returns the pods the node runs.
func (n *Node) Pods() []*NodePod {
	n.mu.Lock()
	defer n.mu.Unlock()
	pods := make([]*NodePod, 0, len(n.pods))
	for _, p := range n.pods {
		pods = append(pods, p)
	}
	slices.SortFunc(pods, func(a, b *NodePod) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return pods
}

// Pod returns the pod namespace/name the node runs (the newest, should a
// terminating one of the same name remain), or nil.
func (n *Node) Pod(namespace, name string) *NodePod {
	n.mu.Lock()
	defer n.mu.Unlock()
	var found *NodePod
	for _, p := range n.pods {
		if p.Namespace == namespace && p.Name == name && (found == nil || p.created.After(found.created)) {
			found = p
		}
	}
	return found
}

// KillContainer kills the process of a container of a pod the node runs
// (SIGKILL, as a crash would); the node restarts it as its restartPolicy
// says. It returns the killed process's PID.
func (n *Node) KillContainer(namespace, pod, container string) (int, error) {
	p := n.Pod(namespace, pod)
	if p == nil {
		return 0, fmt.Errorf("node %s does not run pod %s/%s", n.Name, namespace, pod)
	}
	return p.Kill(container)
}
