package cluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// ProcessSpec describes a child process of the harness.
type ProcessSpec struct {
	// Name identifies the process in errors and names its log file
	// (<LogDir>/<Name>.log).
	Name string
	// Path is the binary to run.
	Path string
	// Args are the arguments after the binary's name.
	Args []string
	// Env is added to a minimal environment (PATH, HOME); the harness's own
	// environment is not inherited, so a process sees only what it is given.
	Env []string
	// Dir is the working directory; the log directory when empty.
	Dir string
	// LogDir receives the combined stdout and stderr.
	LogDir string
	// NetNS, when set, runs the process inside that network namespace with
	// `ip netns exec`, which also bind-mounts /etc/netns/<NetNS>/* over
	// /etc (so a per-namespace hosts file is seen as /etc/hosts).
	NetNS string
}

// Process is a running child process. Its whole process group is killed by
// Stop, and the kernel kills it if the harness dies (parent-death signal),
// so a crashed test never leaves it behind.
type Process struct {
	Name    string
	LogPath string

	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	err  error
}

// StartProcess starts the process described by spec.
func StartProcess(spec ProcessSpec) (*Process, error) {
	if spec.Name == "" || spec.Path == "" || spec.LogDir == "" {
		return nil, fmt.Errorf("process spec needs a name, a path and a log directory: %+v", spec)
	}
	if err := os.MkdirAll(spec.LogDir, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(spec.LogDir, spec.Name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()

	path, args := spec.Path, spec.Args
	if spec.NetNS != "" {
		ip, err := exec.LookPath("ip")
		if err != nil {
			return nil, fmt.Errorf("running %s in network namespace %s needs the ip command (Debian package iproute2): %w", spec.Name, spec.NetNS, err)
		}
		path, args = ip, append([]string{"netns", "exec", spec.NetNS, spec.Path}, spec.Args...)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, spec.Env...)
	cmd.Dir = spec.Dir
	if cmd.Dir == "" {
		cmd.Dir = spec.LogDir
	}
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,
		Pdeathsig: syscall.SIGKILL,
	}
	fmt.Fprintf(logFile, "=== %s: %s %q\n", time.Now().Format(time.RFC3339Nano), path, args)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", spec.Name, err)
	}
	p := &Process{Name: spec.Name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// Pid returns the process's PID (also its process group ID).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err returns how the process exited; nil while it runs or after a clean
// exit.
func (p *Process) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the process group, waits up to grace for it to
// exit, then kills the group. It returns once the process has exited.
func (p *Process) Stop(grace time.Duration) error {
	if p.Exited() {
		return nil
	}
	pgid := p.cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stopping %s: %w", p.Name, err)
	}
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// Children that outlived the leader (none expected) go with the group.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return nil
}

// Kill kills the process group at once (SIGKILL), as a crash would, and
// waits for the process to exit.
func (p *Process) Kill() {
	if p.Exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}
