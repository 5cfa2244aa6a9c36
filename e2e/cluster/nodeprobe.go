package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Until their first success, readiness and startup probes are retried
// after 100 ms, doubling up to 1 s (and at most periodSeconds): kubelet
// would wait a whole periodSeconds after a probe that came before the
// server listened; this keeps a pod's first Ready quick. The failure budget
// of a startup probe stays failureThreshold × periodSeconds.
const (
	firstProbeRetry  = 100 * time.Millisecond
	firstReadyPeriod = time.Second
)

// probeTiming is a probe's schedule, with kubelet's defaults.
type probeTiming struct {
	initialDelay, period, timeout time.Duration
	success, failure              int32
}

func (n *Node) probeTiming(pr *corev1.Probe) probeTiming {
	t := probeTiming{
		initialDelay: time.Duration(pr.InitialDelaySeconds) * time.Second,
		period:       time.Duration(pr.PeriodSeconds) * time.Second,
		timeout:      time.Duration(pr.TimeoutSeconds) * time.Second,
		success:      pr.SuccessThreshold,
		failure:      pr.FailureThreshold,
	}
	if t.period <= 0 {
		t.period = 10 * time.Second
	}
	if n.opts.MaxProbePeriod > 0 {
		t.period = min(t.period, n.opts.MaxProbePeriod)
	}
	if t.timeout <= 0 {
		t.timeout = time.Second
	}
	if t.success <= 0 {
		t.success = 1
	}
	if t.failure <= 0 {
		t.failure = 3
	}
	return t
}

// sleepCtx sleeps for d or until ctx is done, and reports whether ctx is
// still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// probe runs the container's probes while proc runs (until ctx is done):
// the startup probe first; then readiness (which sets the container's
// readiness) and liveness (whose failure restarts the container).
func (c *podContainer) probe(ctx context.Context, proc *Process) {
	p := c.pod
	began := time.Now()
	if sp := c.spec.StartupProbe; sp != nil {
		t := p.node.probeTiming(sp)
		if !sleepCtx(ctx, t.initialDelay) {
			return
		}
		deadline := began.Add(t.initialDelay + time.Duration(t.failure)*t.period)
		retry := firstProbeRetry
		for {
			ok, msg := c.probeOnce(ctx, sp, t.timeout)
			if ctx.Err() != nil {
				return
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				p.logf("Container %s failed its startup probe (%s); restarting it", c.spec.Name, msg)
				c.kill(proc, sp)
				return
			}
			if !sleepCtx(ctx, min(t.period, retry)) {
				return
			}
			retry = min(2*retry, firstReadyPeriod)
		}
		c.mu.Lock()
		c.started = true
		c.mu.Unlock()
		p.kickStatus()
	}
	if c.spec.ReadinessProbe == nil {
		c.mu.Lock()
		c.ready = true
		c.mu.Unlock()
		p.kickStatus()
	} else {
		p.wg.Go(func() { c.readiness(ctx) })
	}
	if c.spec.LivenessProbe != nil {
		c.liveness(ctx, proc)
	}
}

// readiness runs the readiness probe until ctx is done.
func (c *podContainer) readiness(ctx context.Context) {
	p := c.pod
	pr := c.spec.ReadinessProbe
	t := p.node.probeTiming(pr)
	if !sleepCtx(ctx, t.initialDelay) {
		return
	}
	var successes, failures int32
	everReady := false
	retry := firstProbeRetry
	for {
		ok, msg := c.probeOnce(ctx, pr, t.timeout)
		if ctx.Err() != nil {
			return
		}
		if ok {
			successes, failures = successes+1, 0
		} else {
			successes, failures = 0, failures+1
		}
		c.mu.Lock()
		was := c.ready
		switch {
		case ok && successes >= t.success:
			c.ready = true
		case !ok && (failures >= t.failure || !everReady):
			c.ready = false
		}
		now := c.ready
		c.mu.Unlock()
		if now != was {
			if now {
				p.logf("Container %s is ready", c.spec.Name)
			} else {
				p.logf("Container %s is not ready: %s", c.spec.Name, msg)
			}
			p.kickStatus()
		}
		everReady = everReady || now
		period := t.period
		if !everReady {
			period = min(period, retry)
			retry = min(2*retry, firstReadyPeriod)
		}
		if !sleepCtx(ctx, period) {
			return
		}
	}
}

// liveness runs the liveness probe until ctx is done, and restarts the
// container when it fails failureThreshold times in a row.
func (c *podContainer) liveness(ctx context.Context, proc *Process) {
	pr := c.spec.LivenessProbe
	t := c.pod.node.probeTiming(pr)
	if !sleepCtx(ctx, t.initialDelay) {
		return
	}
	var failures int32
	for {
		ok, msg := c.probeOnce(ctx, pr, t.timeout)
		if ctx.Err() != nil {
			return
		}
		if ok {
			failures = 0
		} else if failures++; failures >= t.failure {
			c.pod.logf("Container %s failed its liveness probe %d times (%s); restarting it", c.spec.Name, failures, msg)
			c.kill(proc, pr)
			return
		}
		if !sleepCtx(ctx, t.period) {
			return
		}
	}
}

// kill stops a container whose probe failed, with the probe's (or the
// pod's) termination grace period; it is then restarted as the pod's
// restartPolicy says.
func (c *podContainer) kill(proc *Process, pr *corev1.Probe) {
	grace := defaultTerminationGrace
	if pr.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pr.TerminationGracePeriodSeconds) * time.Second
	} else if g := c.pod.object().Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	stopProcess(proc, time.Now().Add(grace), nil)
}

// probePort resolves a probe's port, by number or by the name of one of the
// container's ports.
func (c *podContainer) probePort(port intstr.IntOrString) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	for _, cp := range c.spec.Ports {
		if cp.Name == port.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(port.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("no container port named %q", port.StrVal)
}

// probeOnce runs a probe once, as kubelet does from the node: against the
// pod's address from the host (exec probes inside the container's
// namespaces), and reports whether it succeeded, or why not.
func (c *podContainer) probeOnce(ctx context.Context, pr *corev1.Probe, timeout time.Duration) (bool, string) {
	host := c.pod.Host()
	if host == nil {
		return false, "no network yet"
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case pr.GRPC != nil:
		addr := netip.AddrPortFrom(host.Addr, uint16(pr.GRPC.Port)).String()
		conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return false, err.Error()
		}
		defer conn.Close()
		service := ""
		if pr.GRPC.Service != nil {
			service = *pr.GRPC.Service
		}
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			return false, fmt.Sprintf("grpc health check of %q on %s: %v", service, addr, err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return false, fmt.Sprintf("grpc health check of %q on %s: %s", service, addr, resp.GetStatus())
		}
		return true, ""
	case pr.HTTPGet != nil:
		return c.probeHTTP(ctx, host, pr.HTTPGet)
	case pr.TCPSocket != nil:
		port, err := c.probePort(pr.TCPSocket.Port)
		if err != nil {
			return false, err.Error()
		}
		addr := net.JoinHostPort(host.Addr.String(), strconv.Itoa(port))
		if pr.TCPSocket.Host != "" {
			addr = net.JoinHostPort(pr.TCPSocket.Host, strconv.Itoa(port))
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	case pr.Exec != nil:
		return c.probeExec(ctx, host, pr.Exec.Command)
	}
	return false, "probe without a handler"
}

func (c *podContainer) probeHTTP(ctx context.Context, host *Host, get *corev1.HTTPGetAction) (bool, string) {
	port, err := c.probePort(get.Port)
	if err != nil {
		return false, err.Error()
	}
	target := host.Addr.String()
	if get.Host != "" {
		target = get.Host
	}
	scheme := "http"
	if get.Scheme == corev1.URISchemeHTTPS {
		scheme = "https"
	}
	path := get.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	url := scheme + "://" + net.JoinHostPort(target, strconv.Itoa(port)) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", "kube-probe/1.36")
	req.Header.Set("Accept", "*/*")
	for _, h := range get.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
		} else {
			req.Header.Add(h.Name, h.Value)
		}
	}
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // kubelet does not verify probe certificates either
		DisableKeepAlives: true,
	}}
	resp, err := client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return false, fmt.Sprintf("GET %s: %s", url, resp.Status)
	}
	return true, ""
}

// probeExec runs an exec probe's command in the container's network
// namespace, with its environment and volumes; the command is a binary of
// the host.
func (c *podContainer) probeExec(ctx context.Context, host *Host, command []string) (bool, string) {
	if len(command) == 0 {
		return false, "exec probe without a command"
	}
	path := command[0]
	if !filepath.IsAbs(path) {
		found, err := exec.LookPath(path)
		if err != nil {
			return false, err.Error()
		}
		path = found
	}
	p := c.pod
	pod := p.object()
	env, err := p.containerEnv(pod, c.spec)
	if err != nil {
		return false, err.Error()
	}
	spec, err := p.containerSpec(pod, c.spec, env, path, command[1:])
	if err != nil {
		return false, err.Error()
	}
	specPath := filepath.Join(c.dir, "exec-probe.json")
	if err := writeJSON(specPath, spec); err != nil {
		return false, err.Error()
	}
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", host.NetNS, p.node.self)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), containerSpecEnv + "=" + specPath}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return false, fmt.Sprintf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return true, ""
}
