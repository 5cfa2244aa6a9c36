// Command ebb-cluster runs ebb's local cluster (etcd, kube-apiserver,
// kube-controller-manager, cert-manager, and a pod network of network
// namespaces) outside of tests, for `make cluster`, `make up` and
// `make down`.
//
//	ebb-cluster up [--state-dir .ebb] [--detach] [--cert-manager] [--image REPO=BINARY]...
//	ebb-cluster down [--state-dir .ebb]
//
// up runs the cluster until SIGINT or SIGTERM; with --detach it starts
// itself in the background and returns once the cluster is ready. Each
// --image maps a container image repository to a local binary; with any,
// up also runs the harness's node, which schedules and runs the pods whose
// images it knows (Helm charts' Deployments included). down
// stops a cluster started by up and removes whatever a crashed run left
// behind (processes, network namespaces, links, routes).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ebb-autoscaler/ebb/e2e/cluster"
)

// state is what up records in <state-dir>/cluster.json for down.
type state struct {
	Name       string `json:"name"`
	PID        int    `json:"pid"`
	Dir        string `json:"dir"`
	Kubeconfig string `json:"kubeconfig"`
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	stateDir := fs.String("state-dir", ".ebb", "Directory for the kubeconfig, the cluster's state and logs.")
	var err error
	switch os.Args[1] {
	case "up":
		detach := fs.Bool("detach", false, "Start in the background and return once the cluster is ready.")
		certManager := fs.Bool("cert-manager", true, "Also run cert-manager's controllers and CA injector.")
		images := imageFlag{}
		fs.Var(images, "image", "REPOSITORY=BINARY: run containers of this image as this local binary (repeatable); any --image starts the node.")
		_ = fs.Parse(os.Args[2:])
		if *detach {
			err = upDetached(*stateDir, os.Args[2:])
		} else {
			err = up(*stateDir, *certManager, images)
		}
	case "down":
		_ = fs.Parse(os.Args[2:])
		err = down(*stateDir)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ebb-cluster:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: ebb-cluster up [--state-dir DIR] [--detach] [--cert-manager=false] [--image REPOSITORY=BINARY]... | down [--state-dir DIR]")
	os.Exit(2)
}

// imageFlag collects --image REPOSITORY=BINARY.
type imageFlag map[string]string

func (f imageFlag) String() string { return fmt.Sprint(map[string]string(f)) }

func (f imageFlag) Set(v string) error {
	repo, bin, ok := strings.Cut(v, "=")
	if !ok || repo == "" || bin == "" {
		return fmt.Errorf("want REPOSITORY=BINARY, got %q", v)
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("image %s: %w", repo, err)
	}
	f[repo] = abs
	return nil
}

func up(stateDir string, certManager bool, images map[string]string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	stateDir, err := filepath.Abs(stateDir)
	if err != nil {
		return err
	}
	statePath := filepath.Join(stateDir, "cluster.json")
	if old, err := readState(statePath); err == nil && processAlive(old.PID) {
		return fmt.Errorf("a cluster (%s, pid %d) is already running from %s: run 'make down' first", old.Name, old.PID, stateDir)
	}
	clusterDir := filepath.Join(stateDir, "cluster")
	if err := os.RemoveAll(clusterDir); err != nil {
		return err
	}
	start := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{Dir: clusterDir, CertManager: certManager})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("Stopping the cluster")
		if err := c.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "ebb-cluster: stopping:", err)
		}
		_ = os.Remove(statePath)
		_ = os.Remove(filepath.Join(stateDir, "kubeconfig"))
	}()

	if len(images) > 0 {
		node, err := c.StartNode(ctx, cluster.NodeOptions{Images: images})
		if err != nil {
			return fmt.Errorf("starting the node: %w", err)
		}
		fmt.Printf("Node %s runs pods of %d images (log: %s)\n", node.Name, len(images), node.LogPath())
	}

	kubeconfig := filepath.Join(stateDir, "kubeconfig")
	data, err := os.ReadFile(c.KubeconfigPath)
	if err != nil {
		return err
	}
	if err := os.WriteFile(kubeconfig, data, 0o600); err != nil {
		return err
	}
	if err := writeState(statePath, state{Name: c.Name, PID: os.Getpid(), Dir: c.Dir, Kubeconfig: kubeconfig}); err != nil {
		return err
	}
	fmt.Printf("Cluster %s is ready after %s: API server https://%s, logs in %s\n",
		c.Name, time.Since(start).Round(time.Millisecond), c.APIServerAddr, c.LogDir)
	fmt.Printf("  kubectl --kubeconfig %s get --raw /readyz\n", kubeconfig)
	fmt.Printf("  (a kubectl of the cluster's version: %s)\n", c.Bins.Kubectl)

	<-ctx.Done()
	return nil
}

// upDetached starts `up` in the background (its own session, output to
// <state-dir>/ebb-cluster.log) and waits until it reports ready or dies.
func upDetached(stateDir string, args []string) error {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(stateDir, "ebb-cluster.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var rest []string
	for _, a := range args {
		if a != "--detach" && a != "-detach" && a != "--detach=true" {
			rest = append(rest, a)
		}
	}
	cmd := exec.Command(self, append([]string{"up"}, rest...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	statePath := filepath.Join(stateDir, "cluster.json")
	deadline := time.After(15 * time.Minute) // a cold start builds the binaries first
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("the cluster did not start (%v):\n%s", err, log)
		case <-deadline:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return fmt.Errorf("the cluster was not ready after 15 minutes; see %s", logPath)
		case <-tick.C:
			if s, err := readState(statePath); err == nil && s.PID == cmd.Process.Pid {
				log, _ := os.ReadFile(logPath)
				fmt.Print(string(log))
				fmt.Printf("Running in the background (pid %d, log %s); stop it with 'make down'.\n", s.PID, logPath)
				return nil
			}
		}
	}
}

func down(stateDir string) error {
	statePath := filepath.Join(stateDir, "cluster.json")
	s, err := readState(statePath)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Println("No cluster is running from", stateDir)
		return nil
	}
	if err != nil {
		return err
	}
	if processAlive(s.PID) {
		fmt.Printf("Stopping cluster %s (pid %d)\n", s.Name, s.PID)
		_ = syscall.Kill(s.PID, syscall.SIGTERM)
		deadline := time.Now().Add(60 * time.Second)
		for processAlive(s.PID) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if processAlive(s.PID) {
			fmt.Printf("Cluster %s did not stop within 60s; killing it\n", s.Name)
			_ = syscall.Kill(s.PID, syscall.SIGKILL)
		}
	}
	// Whatever a crashed or killed run left behind.
	if err := cluster.CleanupLeftovers(s.Name); err != nil {
		return fmt.Errorf("removing what cluster %s left behind: %w", s.Name, err)
	}
	for _, p := range []string{statePath, filepath.Join(stateDir, "kubeconfig"), s.Dir} {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	fmt.Printf("Cluster %s is down\n", s.Name)
	return nil
}

func readState(path string) (state, error) {
	var s state
	data, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func writeState(path string, s state) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// processAlive reports whether a process with pid exists and is not a
// zombie.
func processAlive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses: "pid (comm) S ...".
	for i := len(stat) - 1; i >= 0; i-- {
		if stat[i] == ')' {
			return i+2 < len(stat) && stat[i+2] != 'Z'
		}
	}
	return true
}
