package cluster

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Cluster is a running local control plane: etcd, kube-apiserver and
// kube-controller-manager as host processes, a pod network (a bridge with
// one network namespace per "pod"), and optionally cert-manager.
type Cluster struct {
	// Name is unique per run ("ebb-" + random hex); netns, links and log
	// directories carry it so two runs never collide.
	Name string
	// Dir holds everything of the run: pki/, etcd/, logs/, pods/, the
	// admin kubeconfig. It is removed by Stop unless Options.KeepDir.
	Dir string
	// LogDir is Dir/logs: one <process>.log per process.
	LogDir string
	// KubeconfigPath is the admin kubeconfig (system:masters).
	KubeconfigPath string
	// Config and Client are the admin's REST config and clientset.
	Config *rest.Config
	Client kubernetes.Interface
	// APIServerAddr is the API server's address on the pod network's
	// gateway, reachable from the host and from every pod.
	APIServerAddr netip.AddrPort
	// Network is the pod network.
	Network *Network
	// PKI holds the cluster's certificate authorities and keys.
	PKI *PKI
	// Bins are the binaries the cluster runs.
	Bins Binaries
	// Node is the node agent (see StartNode), nil unless one was started.
	Node *Node

	opts Options

	mu        sync.Mutex
	processes []*Process
	cleanups  []func() error // run in reverse order by Stop
	pods      *podRegistry   // the pods of RunPod and their Services
}

// Options configure Start.
type Options struct {
	// Dir is the state directory; a new temporary directory when empty.
	Dir string
	// KeepDir keeps Dir (logs, certificates) after Stop.
	KeepDir bool
	// CertManager also installs cert-manager's CRDs and runs its
	// controllers and CA injector.
	CertManager bool
	// Bins overrides the binaries; by default hack/build-cluster-bins.sh
	// builds (or finds in the cache) the pinned ones.
	Bins *Binaries
	// Images, when not empty, starts a node agent (StartNode) that runs the
	// pods whose images are all here: image repository (without tag) →
	// local binary, the image's entrypoint.
	Images map[string]string
	// HPASyncPeriod overrides the HPA controller's sync period (the
	// package's HPASyncPeriod, 5 s, when zero).
	HPASyncPeriod time.Duration
	// AuditLog makes kube-apiserver write an audit log (level Metadata:
	// user, user agent, verb, resource of every request) to AuditLogPath,
	// to count a client's requests.
	AuditLog bool
}

// AuditLogPath is the audit log of a cluster started with Options.AuditLog.
func (c *Cluster) AuditLogPath() string { return filepath.Join(c.Dir, "audit.log") }

// addProcess records p so Stop stops it.
func (c *Cluster) addProcess(p *Process) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.processes = append(c.processes, p)
}

// AddCleanup registers fn to run when the cluster stops, after the
// processes are stopped, in reverse order of registration.
func (c *Cluster) AddCleanup(fn func() error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cleanups = append(c.cleanups, fn)
}

// StartProcess starts a process of the cluster (its log in LogDir) and
// stops it with the cluster.
func (c *Cluster) StartProcess(spec ProcessSpec) (*Process, error) {
	if spec.LogDir == "" {
		spec.LogDir = c.LogDir
	}
	p, err := StartProcess(spec)
	if err != nil {
		return nil, err
	}
	c.addProcess(p)
	return p, nil
}

// checkProcesses returns an error naming the first process of the cluster
// that has exited, pointing at its log.
func (c *Cluster) checkProcesses() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.processes {
		if p.Exited() {
			return fmt.Errorf("%s exited (%v); see %s", p.Name, p.Err(), p.LogPath)
		}
	}
	return nil
}

// ensureDir creates the state directory layout.
func ensureDir(dir string, sub ...string) error {
	for _, s := range sub {
		if err := os.MkdirAll(filepath.Join(dir, s), 0o700); err != nil {
			return err
		}
	}
	return nil
}
