package cluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Timings of the control plane.
const (
	// HPASyncPeriod is how often kube-controller-manager's HPA controller
	// reads metrics (5 s instead of the default 15 s, so tests are quick).
	HPASyncPeriod = 5 * time.Second
	// startTimeout bounds the start of each component.
	startTimeout = 90 * time.Second
	// stopGrace is how long a process gets to exit after SIGTERM.
	stopGrace = 10 * time.Second
)

// Start brings up a cluster: the pod network, the PKI, etcd, kube-apiserver
// and kube-controller-manager (and cert-manager with Options.CertManager).
// It returns once the API server is ready and the controller manager works.
// On error everything started is torn down. Call Stop when done.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	name, err := uniqueName()
	if err != nil {
		return nil, err
	}
	c = &Cluster{Name: name, opts: opts}
	defer func() {
		if err != nil {
			if stopErr := c.Stop(); stopErr != nil {
				err = fmt.Errorf("%w (and tearing down: %v)", err, stopErr)
			}
			c = nil
		}
	}()

	c.Dir = opts.Dir
	if c.Dir == "" {
		if c.Dir, err = os.MkdirTemp("", name+"-"); err != nil {
			return c, err
		}
	}
	c.LogDir = filepath.Join(c.Dir, "logs")
	if err := ensureDir(c.Dir, "logs", "etcd", "kcm"); err != nil {
		return c, err
	}

	if opts.Bins != nil {
		c.Bins = *opts.Bins
	} else if c.Bins, err = FindBinaries(ctx); err != nil {
		return c, err
	}

	if c.Network, err = NewNetwork(name); err != nil {
		return c, fmt.Errorf("creating the pod network: %w", err)
	}
	gateway := c.Network.Gateway
	serviceCIDR := c.Network.ServiceCIDR()
	kubernetesServiceIP := serviceCIDR.Addr().Next()

	c.PKI, err = newPKI(filepath.Join(c.Dir, "pki"),
		[]net.IP{net.IP(gateway.AsSlice()), net.ParseIP("127.0.0.1"), net.IP(kubernetesServiceIP.AsSlice())},
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"})
	if err != nil {
		return c, fmt.Errorf("creating the PKI: %w", err)
	}

	etcdURL, err := c.startEtcd(ctx)
	if err != nil {
		return c, err
	}
	if err := c.startAPIServer(ctx, etcdURL, gateway, serviceCIDR); err != nil {
		return c, err
	}
	if err := c.startControllerManager(ctx, serviceCIDR); err != nil {
		return c, err
	}
	if opts.CertManager {
		if err := c.StartCertManager(ctx); err != nil {
			return c, fmt.Errorf("starting cert-manager: %w", err)
		}
	}
	if len(opts.Images) > 0 {
		if _, err := c.StartNode(ctx, NodeOptions{Images: opts.Images}); err != nil {
			return c, err
		}
	}
	return c, nil
}

// Stop stops every process (newest first), runs the cleanups, removes the
// pod network and, unless Options.KeepDir, the state directory. It is safe
// to call more than once.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	processes, cleanups := c.processes, c.cleanups
	c.processes, c.cleanups = nil, nil
	c.mu.Unlock()

	var errs []error
	for i := len(cleanups) - 1; i >= 0; i-- {
		if err := cleanups[i](); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(processes) - 1; i >= 0; i-- {
		if err := processes[i].Stop(stopGrace); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Network != nil {
		if err := c.Network.Close(); err != nil {
			errs = append(errs, fmt.Errorf("removing the pod network: %w", err))
		}
	}
	if c.Dir != "" && !c.opts.KeepDir && c.opts.Dir == "" {
		if err := os.RemoveAll(c.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Cluster) startEtcd(ctx context.Context) (string, error) {
	clientPort, err := freePort("127.0.0.1")
	if err != nil {
		return "", err
	}
	peerPort, err := freePort("127.0.0.1")
	if err != nil {
		return "", err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	if _, err := c.StartProcess(ProcessSpec{
		Name: "etcd",
		Path: c.Bins.Etcd,
		Args: []string{
			"--name=" + c.Name,
			"--data-dir=" + filepath.Join(c.Dir, "etcd"),
			"--listen-client-urls=" + clientURL,
			"--advertise-client-urls=" + clientURL,
			"--listen-peer-urls=" + peerURL,
			"--initial-advertise-peer-urls=" + peerURL,
			"--initial-cluster=" + c.Name + "=" + peerURL,
			// A throw-away cluster: durability is not worth the fsyncs.
			"--unsafe-no-fsync",
			"--log-level=warn",
		},
	}); err != nil {
		return "", err
	}
	httpClient := &http.Client{Timeout: 2 * time.Second}
	err = c.waitFor(ctx, "etcd to be healthy", func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/health", nil)
		if err != nil {
			return false, err
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	return clientURL, err
}

func (c *Cluster) startAPIServer(ctx context.Context, etcdURL string, gateway netip.Addr, serviceCIDR netip.Prefix) error {
	port, err := freePort(gateway.String())
	if err != nil {
		return err
	}
	c.APIServerAddr = netip.AddrPortFrom(gateway, uint16(port))
	p := c.PKI.Path
	var extra []string
	if c.opts.AuditLog {
		// Metadata for every request but the health checks; events are
		// requests like any other.
		policy := filepath.Join(c.Dir, "audit-policy.yaml")
		const policyYAML = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  nonResourceURLs: ["/healthz*", "/readyz*", "/livez*"]
- level: Metadata
`
		if err := os.WriteFile(policy, []byte(policyYAML), 0o600); err != nil {
			return err
		}
		extra = append(extra,
			"--audit-policy-file="+policy,
			"--audit-log-path="+c.AuditLogPath(),
			"--audit-log-format=json",
			"--audit-log-mode=batch",
			"--audit-log-batch-max-wait=1s",
			"--audit-log-maxsize=2000",
		)
	}
	if _, err := c.StartProcess(ProcessSpec{
		Name: "kube-apiserver",
		Path: c.Bins.KubeAPIServer,
		Args: append([]string{
			"--etcd-servers=" + etcdURL,
			"--etcd-prefix=/" + c.Name,
			"--bind-address=" + gateway.String(),
			"--advertise-address=" + gateway.String(),
			"--secure-port=" + strconv.Itoa(port),
			"--tls-cert-file=" + p(apiserverCertFile),
			"--tls-private-key-file=" + p(apiserverKeyFile),
			"--client-ca-file=" + p(caCertFile),
			"--authorization-mode=RBAC",
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + p(saPubFile),
			"--service-account-signing-key-file=" + p(saKeyFile),
			"--service-cluster-ip-range=" + serviceCIDR.String(),
			// Aggregated API servers and admission webhooks are reached at
			// their EndpointSlice addresses: nothing routes ClusterIPs here.
			"--enable-aggregator-routing=true",
			"--requestheader-client-ca-file=" + p(frontProxyCAFile),
			"--requestheader-allowed-names=" + frontProxyClientName,
			"--requestheader-username-headers=X-Remote-User",
			"--requestheader-group-headers=X-Remote-Group",
			"--requestheader-extra-headers-prefix=X-Remote-Extra-",
			"--proxy-client-cert-file=" + p(frontProxyClientCert),
			"--proxy-client-key-file=" + p(frontProxyClientKey),
			"--allow-privileged=true",
			"--profiling=false",
			"--v=1",
		}, extra...),
	}); err != nil {
		return err
	}

	if err := c.writeAdminKubeconfig(); err != nil {
		return err
	}
	restConfig, err := clientcmd.BuildConfigFromFlags("", c.KubeconfigPath)
	if err != nil {
		return err
	}
	restConfig.QPS, restConfig.Burst = 200, 400
	c.Config = restConfig
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	c.Client = client
	return c.waitFor(ctx, "kube-apiserver to be ready", func(ctx context.Context) (bool, error) {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", nil
	})
}

func (c *Cluster) startControllerManager(ctx context.Context, serviceCIDR netip.Prefix) error {
	port, err := freePort("127.0.0.1")
	if err != nil {
		return err
	}
	if _, err := c.StartProcess(ProcessSpec{
		Name: "kube-controller-manager",
		Path: c.Bins.KubeControllerManager,
		Args: []string{
			"--kubeconfig=" + c.KubeconfigPath,
			"--authentication-kubeconfig=" + c.KubeconfigPath,
			"--authorization-kubeconfig=" + c.KubeconfigPath,
			"--controllers=*",
			"--leader-elect=false",
			"--service-account-private-key-file=" + c.PKI.Path(saKeyFile),
			"--root-ca-file=" + c.PKI.Path(caCertFile),
			"--service-cluster-ip-range=" + serviceCIDR.String(),
			"--horizontal-pod-autoscaler-sync-period=" + cmp.Or(c.opts.HPASyncPeriod, HPASyncPeriod).String(),
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
			"--cert-dir=" + filepath.Join(c.Dir, "kcm"),
			"--profiling=false",
			"--v=1",
		},
	}); err != nil {
		return err
	}
	// The service-account and token controllers give every namespace a
	// "default" ServiceAccount; seeing it proves the controllers run.
	return c.waitFor(ctx, "kube-controller-manager to create the default ServiceAccount", func(ctx context.Context) (bool, error) {
		_, err := c.Client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, nil
	})
}

// writeAdminKubeconfig writes Dir/kubeconfig with the admin client
// certificate (system:masters).
func (c *Cluster) writeAdminKubeconfig() error {
	c.KubeconfigPath = filepath.Join(c.Dir, "kubeconfig")
	config := clientcmdapi.NewConfig()
	config.Clusters[c.Name] = &clientcmdapi.Cluster{
		Server:               "https://" + c.APIServerAddr.String(),
		CertificateAuthority: c.PKI.Path(caCertFile),
	}
	config.AuthInfos["admin"] = &clientcmdapi.AuthInfo{
		ClientCertificate: c.PKI.Path(adminCertFile),
		ClientKey:         c.PKI.Path(adminKeyFile),
	}
	config.Contexts[c.Name] = &clientcmdapi.Context{Cluster: c.Name, AuthInfo: "admin", Namespace: metav1.NamespaceDefault}
	config.CurrentContext = c.Name
	return clientcmd.WriteToFile(*config, c.KubeconfigPath)
}

// waitFor polls cond every 100 ms until it returns true, the component's
// start timeout passes, or a process of the cluster exits (the error then
// names its log).
func (c *Cluster) waitFor(ctx context.Context, what string, cond wait.ConditionWithContextFunc) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	start := time.Now()
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if err := c.checkProcesses(); err != nil {
			return false, err
		}
		return cond(ctx)
	})
	if err != nil {
		return fmt.Errorf("waiting %s for %s: %w (logs in %s)", time.Since(start).Round(time.Millisecond), what, err, c.LogDir)
	}
	return nil
}

// freePort returns a TCP port free on host at the time of the call.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("finding a free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// uniqueName returns "ebb-" and six random hex digits.
func uniqueName() (string, error) {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "ebb-" + hex.EncodeToString(b), nil
}
