package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Timings of node pods' containers.
const (
	// restartBackoffMax caps the delay between restarts of a crashing
	// container (kubelet: 10 s doubling to 5 min; a crash is restarted at
	// once here, then after 1 s, 2 s, … 30 s).
	restartBackoffMax = 30 * time.Second
	// restartBackoffReset: a container that ran this long restarts at
	// once again.
	restartBackoffReset = time.Minute
	// configRetry is how soon a container whose environment cannot be
	// built (a missing Secret key) is tried again.
	configRetry = time.Second
	// defaultTerminationGrace is terminationGracePeriodSeconds' default.
	defaultTerminationGrace = 30 * time.Second
)

// NodePod is a pod the node agent runs.
type NodePod struct {
	Namespace, Name string
	UID             types.UID
	// Dir holds the pod's volumes (volumes/<name>) and its containers'
	// files (containers/<name>).
	Dir string

	node    *Node
	created time.Time
	// ctx is cancelled when the pod is to stop; done is closed once it is
	// torn down, with err the teardown's error.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	// wg counts the pod's goroutines (volumes, containers, probes).
	wg sync.WaitGroup

	statusKick    chan struct{}
	containerKick chan struct{}

	mu             sync.Mutex
	pod            *corev1.Pod
	host           *Host
	volumes        []*podVolume
	volumesReady   bool
	initialized    bool
	initContainers []*podContainer
	containers     []*podContainer
	conditions     map[corev1.PodConditionType]corev1.PodCondition
	startTime      metav1.Time
	problem        string // why the pod cannot start
	terminating    bool
	grace          time.Duration
	deleteObject   bool
	killNow        chan struct{}
	finished       bool // every container ended for good (restartPolicy)
}

// podContainer is one container of a node pod: a process restarted as
// the pod's restartPolicy says.
type podContainer struct {
	pod    *NodePod
	spec   corev1.Container
	init   bool
	binary string
	dir    string

	mu           sync.Mutex
	proc         *Process
	state        corev1.ContainerState
	lastState    corev1.ContainerState
	restartCount int32
	everStarted  bool
	started      bool // the startup probe passed (or there is none)
	ready        bool // the readiness probe passes
	stopping     bool
	done         bool // ended for good
	exitCode     int32
}

func newNodePod(n *Node, pod *corev1.Pod) *NodePod {
	p := &NodePod{
		Namespace:     pod.Namespace,
		Name:          pod.Name,
		UID:           pod.UID,
		Dir:           filepath.Join(n.cluster.Dir, "node-pods", pod.Namespace, pod.Name+"-"+string(pod.UID)[:8]),
		node:          n,
		created:       time.Now(),
		done:          make(chan struct{}),
		statusKick:    make(chan struct{}, 1),
		containerKick: make(chan struct{}, 1),
		pod:           pod,
		conditions:    map[corev1.PodConditionType]corev1.PodCondition{},
		startTime:     metav1.Now(),
		killNow:       make(chan struct{}),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	add := func(c corev1.Container, init bool) *podContainer {
		binary, _ := n.binaryOf(c.Image)
		pc := &podContainer{pod: p, spec: c, init: init, binary: binary, dir: filepath.Join(p.Dir, "containers", c.Name)}
		pc.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
		if !init && len(pod.Spec.InitContainers) > 0 {
			pc.state.Waiting.Reason = "PodInitializing"
		}
		return pc
	}
	for _, c := range pod.Spec.InitContainers {
		p.initContainers = append(p.initContainers, add(c, true))
	}
	for _, c := range pod.Spec.Containers {
		p.containers = append(p.containers, add(c, false))
	}
	return p
}

// object returns the latest version of the pod's object.
func (p *NodePod) object() *corev1.Pod {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pod
}

// Host returns the pod's network namespace and address (nil until it is
// set up).
func (p *NodePod) Host() *Host {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.host
}

// Done is closed once the pod has stopped and its namespace is removed.
func (p *NodePod) Done() <-chan struct{} { return p.done }

// Err returns the error of the pod's teardown, once Done is closed.
func (p *NodePod) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// container returns the container called name.
func (p *NodePod) container(name string) *podContainer {
	for _, c := range slices.Concat(p.initContainers, p.containers) {
		if c.spec.Name == name {
			return c
		}
	}
	return nil
}

// Process returns the running process of a container, or nil.
func (p *NodePod) Process(container string) *Process {
	c := p.container(container)
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil || c.proc.Exited() {
		return nil
	}
	return c.proc
}

// RestartCount returns how often a container has been restarted.
func (p *NodePod) RestartCount(container string) int32 {
	c := p.container(container)
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.restartCount
}

// Kill kills a container's process (SIGKILL, as a crash would) and returns
// its PID; the node restarts it as the pod's restartPolicy says.
func (p *NodePod) Kill(container string) (int, error) {
	proc := p.Process(container)
	if proc == nil {
		return 0, fmt.Errorf("container %s of pod %s/%s is not running", container, p.Namespace, p.Name)
	}
	pid := proc.Pid()
	proc.Kill()
	p.logf("Killed container %s (pid %d)", container, pid)
	return pid, nil
}

// logf writes a line about the pod to the node's log.
func (p *NodePod) logf(format string, args ...any) {
	p.node.logf("pod %s/%s: %s", p.Namespace, p.Name, fmt.Sprintf(format, args...))
}

func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (p *NodePod) kickStatus()     { kick(p.statusKick) }
func (p *NodePod) kickContainers() { kick(p.containerKick) }
func (p *NodePod) kickVolumes() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range p.volumes {
		kick(v.kick)
	}
}

// update records the latest version of the pod's object; a deletion
// request terminates the pod with its grace period.
func (p *NodePod) update(pod *corev1.Pod) {
	p.mu.Lock()
	p.pod = pod
	p.mu.Unlock()
	if pod.DeletionTimestamp != nil {
		p.terminate(p.terminationGrace(), true)
	}
	p.kickStatus()
}

// terminationGrace is the pod's grace period: the deletion's, else the
// spec's.
func (p *NodePod) terminationGrace() time.Duration {
	pod := p.object()
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return defaultTerminationGrace
}

// terminate stops the pod: its containers get SIGTERM and, after grace,
// SIGKILL; then the network namespace and directory are removed and, with
// deleteObject, the Pod object is deleted. A shorter grace than the one in
// progress kills at once.
func (p *NodePod) terminate(grace time.Duration, deleteObject bool) {
	p.mu.Lock()
	if !p.terminating {
		p.terminating = true
		p.grace = grace
		p.logf("Terminating (grace %s)", grace)
	} else if grace < p.grace {
		select {
		case <-p.killNow:
		default:
			close(p.killNow)
		}
	}
	p.deleteObject = p.deleteObject || deleteObject
	p.mu.Unlock()
	p.cancel()
}

// run runs the pod until it is terminated, then tears it down.
func (p *NodePod) run() {
	defer close(p.done)
	defer p.node.forget(p)
	stopStatus := make(chan struct{})
	statusDone := make(chan struct{})
	go func() {
		defer close(statusDone)
		p.statusLoop(stopStatus)
	}()

	if err := p.setUp(); err != nil {
		if p.ctx.Err() == nil {
			p.logf("Cannot start: %v", err)
			p.mu.Lock()
			p.problem = err.Error()
			p.mu.Unlock()
			p.kickStatus()
		}
	} else {
		p.runContainers()
	}
	<-p.ctx.Done()

	p.err = p.tearDown()
	if p.err != nil {
		p.logf("Tearing down: %v", p.err)
	}
	p.mu.Lock()
	finished, deleteObject := p.finished, p.deleteObject
	p.mu.Unlock()
	if finished && !deleteObject {
		// The final status (Succeeded or Failed) stays on the object.
		ctx, cancel := context.WithTimeout(context.Background(), podAPITimeout)
		if err := p.writeStatus(ctx, p.status()); err != nil {
			p.logf("Writing the final status: %v", err)
		}
		cancel()
		p.node.mu.Lock()
		p.node.finished[p.UID] = true
		p.node.mu.Unlock()
	}
	close(stopStatus)
	<-statusDone
	if deleteObject {
		p.node.deletePodObject(p.Namespace, p.Name, p.UID)
	}
	p.logf("Stopped")
}

// setUp creates the pod's network namespace and directories and projects
// its volumes; it returns once every volume is ready.
func (p *NodePod) setUp() error {
	pod := p.object()
	var volumes []*podVolume
	for _, v := range pod.Spec.Volumes {
		vol, err := newPodVolume(p, v)
		if err != nil {
			return err
		}
		volumes = append(volumes, vol)
	}
	p.mu.Lock()
	p.volumes = volumes
	p.mu.Unlock()
	for _, c := range slices.Concat(p.initContainers, p.containers) {
		if c.binary == "" {
			return fmt.Errorf("container %s: image %s is not one of the node's", c.spec.Name, c.spec.Image)
		}
		if err := os.MkdirAll(filepath.Join(c.dir, "scratch"), 0o755); err != nil {
			return err
		}
	}

	// The namespace: a pod of the same name may still be tearing down.
	n := p.node
	var host *Host
	for {
		var err error
		host, err = n.cluster.Network.AddHost(hostName(p.Namespace, p.Name))
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "exists") {
			return err
		}
		select {
		case <-p.ctx.Done():
			return p.ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	if err := os.WriteFile(filepath.Join("/etc/netns", host.NetNS, "resolv.conf"), []byte(resolvConf), 0o644); err != nil {
		host.Close()
		return err
	}
	hostname := pod.Name
	if pod.Spec.Hostname != "" {
		hostname = pod.Spec.Hostname
	}
	if err := n.cluster.podRegistry().addNodeHost(host, nodeHost{namespace: p.Namespace, hostname: hostname}, n.cluster.Network.Gateway); err != nil {
		n.cluster.podRegistry().removeNodeHost(host)
		host.Close()
		return err
	}
	p.mu.Lock()
	p.host = host
	p.mu.Unlock()
	p.logf("Network namespace %s, address %s", host.NetNS, host.Addr)
	p.kickStatus()

	for _, v := range volumes {
		p.wg.Go(func() { v.run(p.ctx, p) })
	}
	for _, v := range volumes {
		select {
		case <-v.ready:
		case <-p.ctx.Done():
			return p.ctx.Err()
		}
	}
	p.mu.Lock()
	p.volumesReady = true
	p.mu.Unlock()
	p.kickStatus()
	return nil
}

// resolvConf makes a pod's name lookups that its hosts file cannot answer
// fail at once (nothing listens on the pod's loopback) rather than time out
// on the host's unreachable name servers.
const resolvConf = "# Written by the ebb e2e harness: names resolve through /etc/hosts only.\nnameserver 127.0.0.1\noptions attempts:1 timeout:1\n"

// hostName returns the name of a pod's network namespace (after the
// cluster's name): "<namespace>-<name>", shortened with a hash when long.
func hostName(namespace, name string) string {
	s := strings.ToLower(strings.ReplaceAll(namespace+"-"+name, ".", "-"))
	if len(s) > 100 {
		sum := sha256.Sum256([]byte(s))
		s = strings.TrimRight(s[:80], "-") + "-" + hex.EncodeToString(sum[:])[:10]
	}
	return s
}

// runContainers runs the init containers one after the other, then starts
// every container.
func (p *NodePod) runContainers() {
	policy := p.object().Spec.RestartPolicy
	for _, c := range p.initContainers {
		if c.spec.RestartPolicy != nil && *c.spec.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			// A sidecar: it keeps running; the next one starts once it has.
			p.wg.Go(func() { c.supervise(p.ctx, corev1.RestartPolicyAlways) })
			for !c.isStarted() {
				select {
				case <-p.ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
			continue
		}
		initPolicy := corev1.RestartPolicyOnFailure
		if policy == corev1.RestartPolicyNever {
			initPolicy = corev1.RestartPolicyNever
		}
		c.supervise(p.ctx, initPolicy)
		c.mu.Lock()
		ok := c.done && c.exitCode == 0
		c.mu.Unlock()
		if !ok {
			if p.ctx.Err() == nil {
				p.checkFinished()
			}
			return
		}
	}
	p.mu.Lock()
	p.initialized = true
	for _, c := range p.containers {
		c.mu.Lock()
		if c.state.Waiting != nil {
			c.state.Waiting.Reason = "ContainerCreating"
		}
		c.mu.Unlock()
	}
	p.mu.Unlock()
	p.kickStatus()
	if policy == "" {
		policy = corev1.RestartPolicyAlways
	}
	for _, c := range p.containers {
		p.wg.Go(func() { c.supervise(p.ctx, policy) })
	}
}

// checkFinished ends a pod whose containers have all ended for good.
func (p *NodePod) checkFinished() {
	p.mu.Lock()
	all := true
	for _, c := range p.containers {
		c.mu.Lock()
		all = all && c.done
		c.mu.Unlock()
	}
	failedInit := false
	for _, c := range p.initContainers {
		c.mu.Lock()
		failedInit = failedInit || (c.done && c.exitCode != 0)
		c.mu.Unlock()
	}
	if !all && !failedInit {
		p.mu.Unlock()
		return
	}
	p.finished = true
	p.mu.Unlock()
	p.logf("Every container has ended")
	p.terminate(0, false)
}

// tearDown stops the containers (SIGTERM, SIGKILL after the grace period),
// waits for the pod's goroutines, and removes the network namespace and
// the pod's directory.
func (p *NodePod) tearDown() error {
	p.mu.Lock()
	grace, killNow, host := p.grace, p.killNow, p.host
	p.mu.Unlock()
	deadline := time.Now().Add(grace)
	var stopping sync.WaitGroup
	for _, c := range slices.Concat(p.initContainers, p.containers) {
		stopping.Go(func() { c.stop(deadline, killNow) })
	}
	stopping.Wait()
	p.wg.Wait()
	var errs []error
	if host != nil {
		p.node.cluster.podRegistry().removeNodeHost(host)
		err := host.Close()
		// The namespace must be gone when Done is closed; retry a removal
		// that failed or left the namespace behind.
		nsFile := filepath.Join("/run/netns", host.NetNS)
		for i := 0; i < 20; i++ {
			if _, statErr := os.Lstat(nsFile); errors.Is(statErr, os.ErrNotExist) {
				err = nil
				break
			}
			p.logf("Network namespace %s still exists after its removal (%v); retrying", host.NetNS, err)
			time.Sleep(100 * time.Millisecond)
			err = host.Close()
		}
		errs = append(errs, err)
	}
	errs = append(errs, os.RemoveAll(p.Dir))
	return errors.Join(errs...)
}

// statusLoop writes the pod's status whenever it changes, until stop is
// closed (a write in progress completes).
func (p *NodePod) statusLoop(stop <-chan struct{}) {
	var last *corev1.PodStatus
	tick := time.NewTicker(podResync)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-p.statusKick:
		case <-tick.C:
		}
		// Let a burst of changes settle into one write.
		time.Sleep(20 * time.Millisecond)
		status := p.status()
		if last != nil && equality.Semantic.DeepEqual(*last, status) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), podAPITimeout)
		err := p.writeStatus(ctx, status)
		cancel()
		if err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			p.logf("Writing the status: %v", err)
			select {
			case <-stop:
			case <-time.After(500 * time.Millisecond):
				p.kickStatus()
			}
			continue
		}
		last = &status
	}
}

// writeStatus writes the status computed by the agent onto the pod's
// object, keeping the fields and conditions others own.
func (p *NodePod) writeStatus(ctx context.Context, status corev1.PodStatus) error {
	pods := p.node.cluster.Client.CoreV1().Pods(p.Namespace)
	pod := p.object()
	for attempt := 0; ; attempt++ {
		updated := pod.DeepCopy()
		s := &updated.Status
		s.Phase, s.Reason, s.Message = status.Phase, status.Reason, status.Message
		s.HostIP, s.HostIPs, s.PodIP, s.PodIPs = status.HostIP, status.HostIPs, status.PodIP, status.PodIPs
		s.StartTime = status.StartTime
		s.InitContainerStatuses, s.ContainerStatuses = status.InitContainerStatuses, status.ContainerStatuses
		for _, c := range status.Conditions {
			i := slices.IndexFunc(s.Conditions, func(o corev1.PodCondition) bool { return o.Type == c.Type })
			if i < 0 {
				s.Conditions = append(s.Conditions, c)
			} else {
				s.Conditions[i] = c
			}
		}
		_, err := pods.UpdateStatus(ctx, updated, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) || attempt >= 5 {
			return err
		}
		if pod, err = pods.Get(ctx, p.Name, metav1.GetOptions{}); err != nil {
			return err
		}
		if pod.UID != p.UID {
			return apierrors.NewNotFound(corev1.Resource("pods"), p.Name)
		}
	}
}

// condition returns a pod condition, keeping its last transition time
// while its status does not change; p.mu is held.
func (p *NodePod) condition(typ corev1.PodConditionType, ok bool, reason, message string) corev1.PodCondition {
	status := corev1.ConditionFalse
	if ok {
		status, reason, message = corev1.ConditionTrue, "", ""
	}
	c := corev1.PodCondition{Type: typ, Status: status, Reason: reason, Message: message, LastTransitionTime: metav1.Now()}
	if old, found := p.conditions[typ]; found && old.Status == status {
		c.LastTransitionTime = old.LastTransitionTime
	}
	p.conditions[typ] = c
	return c
}

// status computes the pod's status as kubelet would.
func (p *NodePod) status() corev1.PodStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	gateway := p.node.cluster.Network.Gateway.String()
	s := corev1.PodStatus{
		HostIP:    gateway,
		HostIPs:   []corev1.HostIP{{IP: gateway}},
		StartTime: &p.startTime,
		Phase:     corev1.PodPending,
	}
	if p.host != nil {
		s.PodIP = p.host.Addr.String()
		s.PodIPs = []corev1.PodIP{{IP: s.PodIP}}
	}
	for _, c := range p.initContainers {
		s.InitContainerStatuses = append(s.InitContainerStatuses, c.status())
	}
	var unready []string
	anyStarted, allDone, allSucceeded := false, len(p.containers) > 0, true
	for _, c := range p.containers {
		cs := c.status()
		s.ContainerStatuses = append(s.ContainerStatuses, cs)
		if !cs.Ready {
			unready = append(unready, c.spec.Name)
		}
		c.mu.Lock()
		anyStarted = anyStarted || c.everStarted
		allDone = allDone && c.done
		allSucceeded = allSucceeded && c.done && c.exitCode == 0
		c.mu.Unlock()
	}
	failedInit := false
	for _, c := range p.initContainers {
		c.mu.Lock()
		failedInit = failedInit || (c.done && c.exitCode != 0)
		c.mu.Unlock()
	}
	switch {
	case failedInit, allDone && !allSucceeded:
		s.Phase = corev1.PodFailed
	case allDone:
		s.Phase = corev1.PodSucceeded
	case anyStarted:
		s.Phase = corev1.PodRunning
	}
	if p.problem != "" {
		s.Message = p.problem
	}

	containersReady := len(unready) == 0
	unreadyMessage := fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	ready, readyMessage := containersReady, unreadyMessage
	if containersReady {
		for _, gate := range p.pod.Spec.ReadinessGates {
			i := slices.IndexFunc(p.pod.Status.Conditions, func(c corev1.PodCondition) bool { return c.Type == gate.ConditionType })
			if i < 0 || p.pod.Status.Conditions[i].Status != corev1.ConditionTrue {
				ready, readyMessage = false, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist or is not True", gate.ConditionType)
			}
		}
	}
	s.Conditions = []corev1.PodCondition{
		p.condition(corev1.PodReadyToStartContainers, p.host != nil, "", ""),
		p.condition(corev1.PodInitialized, p.initialized, "ContainersNotInitialized", "containers with incomplete status"),
		p.condition(corev1.ContainersReady, containersReady, "ContainersNotReady", unreadyMessage),
		p.condition(corev1.PodReady, ready, "ContainersNotReady", readyMessage),
		p.condition(corev1.PodScheduled, true, "", ""),
	}
	return s
}

// status returns the container's status; c.pod.mu is held.
func (c *podContainer) status() corev1.ContainerStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs := corev1.ContainerStatus{
		Name:                 c.spec.Name,
		Image:                c.spec.Image,
		ImageID:              "ebb-netns://" + c.binary,
		RestartCount:         c.restartCount,
		State:                *c.state.DeepCopy(),
		LastTerminationState: *c.lastState.DeepCopy(),
		Started:              ptrTo(c.state.Running != nil && c.started),
		Ready:                c.state.Running != nil && c.ready,
	}
	if c.init && c.done && c.exitCode == 0 {
		cs.Ready = true // a completed init container
	}
	if c.proc != nil {
		cs.ContainerID = "ebb-netns://" + strconv.Itoa(c.proc.Pid())
	}
	return cs
}

// isStarted reports whether the container runs and passed its startup
// probe.
func (c *podContainer) isStarted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.Running != nil && c.started
}

// setWaiting records that the container waits, for reason.
func (c *podContainer) setWaiting(reason, message string) {
	c.mu.Lock()
	c.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}
	c.mu.Unlock()
	c.pod.kickStatus()
}

// supervise runs the container, restarting it as policy says, until it
// ends for good or ctx is done.
func (c *podContainer) supervise(ctx context.Context, policy corev1.RestartPolicy) {
	p := c.pod
	var backoff time.Duration
	for {
		proc, err := c.start(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.logf("Container %s: %v", c.spec.Name, err)
			c.setWaiting("CreateContainerConfigError", err.Error())
			select {
			case <-ctx.Done():
				return
			case <-p.containerKick:
			case <-time.After(configRetry):
			}
			continue
		}
		began := time.Now()
		probeCtx, stopProbes := context.WithCancel(ctx)
		p.wg.Go(func() { c.probe(probeCtx, proc) })
		select {
		case <-proc.Done():
		case <-ctx.Done():
		}
		stopProbes()
		if ctx.Err() != nil {
			return // tearDown stops the process
		}
		exitCode, reason, signal := exitStatus(proc.Err())
		ran := time.Since(began)
		c.mu.Lock()
		c.state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode:    exitCode,
			Signal:      signal,
			Reason:      reason,
			StartedAt:   metav1.NewTime(began),
			FinishedAt:  metav1.Now(),
			ContainerID: "ebb-netns://" + strconv.Itoa(proc.Pid()),
		}}
		if restartable := policy == corev1.RestartPolicyAlways || (policy == corev1.RestartPolicyOnFailure && exitCode != 0); restartable {
			// Shown as the last state while the container waits and once it
			// runs again.
			c.lastState = *c.state.DeepCopy()
		}
		c.ready, c.started, c.exitCode = false, false, exitCode
		restart := policy == corev1.RestartPolicyAlways || (policy == corev1.RestartPolicyOnFailure && exitCode != 0)
		if !restart {
			c.done = true
		}
		c.mu.Unlock()
		p.logf("Container %s exited after %s: %s (exit code %d)", c.spec.Name, ran.Round(time.Millisecond), reason, exitCode)
		p.kickStatus()
		if !restart {
			if !c.init {
				p.checkFinished()
			}
			return
		}
		if ran >= restartBackoffReset {
			backoff = 0
		}
		if backoff > 0 {
			c.setWaiting("CrashLoopBackOff", fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", backoff, c.spec.Name, p.Name, p.Namespace, p.UID))
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
		backoff = min(max(2*backoff, time.Second), restartBackoffMax)
	}
}

// exitStatus describes how a process ended.
func exitStatus(err error) (code int32, reason string, signal int32) {
	if err == nil {
		return 0, "Completed", 0
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int32(ws.Signal()), "Error", int32(ws.Signal())
		}
		return int32(exitErr.ExitCode()), "Error", 0
	}
	return 128, "Error", 0
}

// start starts the container's process (through the container init), with
// its environment, arguments and volume mounts.
func (c *podContainer) start(ctx context.Context) (*Process, error) {
	p := c.pod
	pod := p.object()
	env, err := p.containerEnv(pod, c.spec)
	if err != nil {
		return nil, err
	}
	spec, err := p.containerSpec(pod, c.spec, env, c.binary, c.containerArgs(env))
	if err != nil {
		return nil, err
	}
	specPath := filepath.Join(c.dir, "container.json")
	if err := writeJSON(specPath, spec); err != nil {
		return nil, err
	}
	host := p.Host()

	c.mu.Lock()
	defer c.mu.Unlock()
	if ctx.Err() != nil || c.stopping {
		return nil, errors.New("the pod is terminating")
	}
	proc, err := StartProcess(ProcessSpec{
		Name:   "pod-" + p.Namespace + "-" + p.Name + "-" + c.spec.Name,
		Path:   p.node.self,
		Env:    []string{containerSpecEnv + "=" + specPath},
		Dir:    c.dir,
		LogDir: p.node.cluster.LogDir,
		NetNS:  host.NetNS,
	})
	if err != nil {
		return nil, err
	}
	if c.everStarted {
		c.restartCount++
	}
	c.proc, c.everStarted = proc, true
	c.started = c.spec.StartupProbe == nil
	c.ready = false
	c.state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
	p.logf("Started container %s (pid %d, restart %d)", c.spec.Name, proc.Pid(), c.restartCount)
	p.kickStatus()
	return proc, nil
}

// containerArgs returns the arguments of the container's binary: the
// image's entrypoint is the node's binary, so a command replaces only the
// entrypoint's arguments (command[0] stands for the binary).
func (c *podContainer) containerArgs(env []string) []string {
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	lookup := func(name string) (string, bool) { v, ok := vars[name]; return v, ok }
	var args []string
	if len(c.spec.Command) > 1 {
		for _, a := range c.spec.Command[1:] {
			args = append(args, expandVars(a, lookup))
		}
	}
	for _, a := range c.spec.Args {
		args = append(args, expandVars(a, lookup))
	}
	return args
}

// containerSpec returns what the container init is to do for a container.
func (p *NodePod) containerSpec(pod *corev1.Pod, container corev1.Container, env []string, binary string, args []string) (containerSpec, error) {
	spec := containerSpec{
		Hostname:   pod.Name,
		Path:       binary,
		Args:       args,
		Env:        env,
		Dir:        container.WorkingDir,
		ScratchDir: filepath.Join(p.Dir, "containers", container.Name, "scratch"),
	}
	if pod.Spec.Hostname != "" {
		spec.Hostname = pod.Spec.Hostname
	}
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	for _, m := range container.VolumeMounts {
		if !slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name }) {
			return spec, fmt.Errorf("volume mount %s: no volume of that name", m.Name)
		}
		source := filepath.Join(p.Dir, "volumes", m.Name)
		subPath := m.SubPath
		if m.SubPathExpr != "" {
			subPath = expandVars(m.SubPathExpr, func(name string) (string, bool) { v, ok := vars[name]; return v, ok })
		}
		if subPath != "" {
			if filepath.IsAbs(subPath) || strings.HasPrefix(filepath.Clean(subPath), "..") {
				return spec, fmt.Errorf("volume mount %s: invalid subPath %q", m.Name, subPath)
			}
			source = filepath.Join(source, subPath)
			if _, err := os.Stat(source); errors.Is(err, os.ErrNotExist) {
				// kubelet creates a missing subPath directory.
				if err := os.MkdirAll(source, 0o755); err != nil {
					return spec, err
				}
			}
		}
		spec.Mounts = append(spec.Mounts, containerMount{Source: source, Target: m.MountPath, ReadOnly: m.ReadOnly})
	}
	return spec, nil
}

// stop stops the container's process: SIGTERM, then SIGKILL at deadline or
// when killNow is closed. No restart follows.
func (c *podContainer) stop(deadline time.Time, killNow <-chan struct{}) {
	c.mu.Lock()
	c.stopping = true
	proc := c.proc
	c.mu.Unlock()
	if proc == nil || proc.Exited() {
		return
	}
	stopProcess(proc, deadline, killNow)
	c.mu.Lock()
	exitCode, reason, signal := exitStatus(proc.Err())
	c.state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: exitCode, Signal: signal, Reason: reason, FinishedAt: metav1.Now(),
		ContainerID: "ebb-netns://" + strconv.Itoa(proc.Pid()),
	}}
	c.ready = false
	c.mu.Unlock()
	c.pod.logf("Stopped container %s: %s (exit code %d)", c.spec.Name, reason, exitCode)
}

// stopProcess sends SIGTERM to a process group, and SIGKILL at deadline or
// when killNow is closed; it returns once the process has exited.
func stopProcess(proc *Process, deadline time.Time, killNow <-chan struct{}) {
	pgid := proc.Pid()
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-proc.Done():
	case <-timer.C:
	case <-killNow:
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-proc.Done()
}

// writeJSON writes v to path atomically, readable by root only (it holds
// the container's environment).
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := writeFileAtomic(path, data); err != nil {
		return err
	}
	return os.Chmod(path, 0o600)
}

// envName is what kubelet accepts as an environment variable's name from
// envFrom.
var envName = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)
