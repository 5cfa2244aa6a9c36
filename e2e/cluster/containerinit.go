package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// containerSpecEnv names the file describing the container that a
// re-executed harness binary is to become (see init).
const containerSpecEnv = "EBB_CLUSTER_CONTAINER_SPEC"

// oPath is O_PATH (amd64, arm64 and most Linux architectures), missing
// from package syscall: a handle on a file that is only a name for it.
const oPath = 0x200000

// containerSpec is what the node agent asks the container init to do
// before it executes a container's binary.
type containerSpec struct {
	// Hostname is set in a UTS namespace of the container's own, as a
	// container runtime does (the pod's name).
	Hostname string `json:"hostname,omitempty"`
	// Path, Args and Env are the container's process; Dir its working
	// directory.
	Path string   `json:"path"`
	Args []string `json:"args,omitempty"`
	Env  []string `json:"env,omitempty"`
	Dir  string   `json:"dir,omitempty"`
	// Mounts are bind-mounted in the container's mount namespace only.
	Mounts []containerMount `json:"mounts,omitempty"`
	// ScratchDir is an empty host directory of the container's; a tmpfs
	// is mounted on it (in the container's mount namespace only) to hold
	// the directories that stand in for the host's where a mount point is
	// missing.
	ScratchDir string `json:"scratchDir"`
}

// containerMount is one volume mount of a container.
type containerMount struct {
	// Source is the host file or directory (the prepared volume).
	Source string `json:"source"`
	// Target is the container's path (volumeMounts[].mountPath).
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// init turns any binary that links this package into the node agent's
// container init when containerSpecEnv is set: the agent starts
// `ip netns exec <netns> <this binary>`, which runs here, in the pod's
// network namespace and in a private mount namespace (`ip netns exec`
// unshares one, with / recursively slave, so nothing done here is seen by
// the host), and this sets the container's hostname, mounts its volumes at
// their mount paths and executes the container's binary in place (same
// PID, so the agent's process handle is the container's process). It runs
// before any other code of the binary (tests' TestMain included).
func init() {
	path := os.Getenv(containerSpecEnv)
	if path == "" {
		return
	}
	err := execContainer(path)
	fmt.Fprintf(os.Stderr, "ebb container init: %v\n", err)
	os.Exit(127)
}

// execContainer prepares the container described by the file at path and
// executes its binary; it returns only on error.
func execContainer(path string) error {
	// Namespaces are per thread until execve: stay on this one.
	runtime.LockOSThread()
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var spec containerSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if spec.Hostname != "" {
		if err := syscall.Unshare(syscall.CLONE_NEWUTS); err != nil {
			return fmt.Errorf("unsharing the UTS namespace: %w", err)
		}
		if err := syscall.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("setting the hostname: %w", err)
		}
	}
	// The binary is opened now: a mount (an emptyDir on /tmp) may hide it.
	binary, err := syscall.Open(spec.Path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", spec.Path, err)
	}
	if len(spec.Mounts) > 0 {
		if err := mountVolumes(spec); err != nil {
			return err
		}
	}
	dir := spec.Dir
	if dir == "" {
		dir = "/"
	}
	if err := os.Chdir(dir); err != nil {
		return fmt.Errorf("working directory %s: %w", dir, err)
	}
	fmt.Fprintf(os.Stderr, "ebb container init: exec %s %q\n", spec.Path, spec.Args)
	return syscall.Exec(fdPath(binary), append([]string{spec.Path}, spec.Args...), spec.Env)
}

// fdPath names an open file by its descriptor, which reaches it whatever
// is mounted over its path since it was opened.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// mounter mounts a container's volumes.
type mounter struct {
	// scratch is the tmpfs holding the stand-in directories.
	scratch int
	n       int
	// writable are the directories where a missing mount point can be
	// created without touching the host: the stand-ins and what was
	// created in them, and the mounted volumes (the agent's own
	// directories).
	writable map[string]bool
}

// mountVolumes bind-mounts every volume at its target, creating missing
// mount points in stand-in directories, then makes the read-only ones
// read-only.
func mountVolumes(spec containerSpec) error {
	// Nothing mounted here may propagate to the host.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("making / slave: %w", err)
	}
	if err := syscall.Mount("tmpfs", spec.ScratchDir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=755"); err != nil {
		return fmt.Errorf("mounting a tmpfs on %s: %w", spec.ScratchDir, err)
	}
	scratch, err := syscall.Open(spec.ScratchDir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", spec.ScratchDir, err)
	}
	m := &mounter{scratch: scratch, writable: map[string]bool{}}

	// Sources are opened first, so later mounts cannot hide them.
	type prepared struct {
		containerMount
		src int
		dir bool
	}
	mounts := make([]prepared, 0, len(spec.Mounts))
	for _, cm := range spec.Mounts {
		if !filepath.IsAbs(cm.Target) {
			return fmt.Errorf("mount path %q is not absolute", cm.Target)
		}
		cm.Target = filepath.Clean(cm.Target)
		src, err := syscall.Open(cm.Source, oPath|syscall.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("volume for %s: opening %s: %w", cm.Target, cm.Source, err)
		}
		var st syscall.Stat_t
		if err := syscall.Fstat(src, &st); err != nil {
			return err
		}
		mounts = append(mounts, prepared{cm, src, st.Mode&syscall.S_IFMT == syscall.S_IFDIR})
	}
	// Parents first.
	slices.SortStableFunc(mounts, func(a, b prepared) int {
		return strings.Count(a.Target, "/") - strings.Count(b.Target, "/")
	})

	// A mount point missing right under / needs a root of the container's
	// own: a stand-in for / that holds the host's entries.
	for _, pm := range mounts {
		first := "/" + strings.SplitN(strings.TrimPrefix(pm.Target, "/"), "/", 2)[0]
		if _, err := os.Lstat(first); errors.Is(err, fs.ErrNotExist) {
			if err := m.newRoot(); err != nil {
				return err
			}
			break
		}
	}

	for _, pm := range mounts {
		target, err := m.mountPoint(pm.Target, pm.dir)
		if err != nil {
			return fmt.Errorf("mount point %s: %w", pm.Target, err)
		}
		if err := syscall.Mount(fdPath(pm.src), target, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return fmt.Errorf("mounting %s on %s: %w", pm.Source, pm.Target, err)
		}
		if pm.dir {
			m.writable[target] = true
		}
	}
	// Read-only last (children first), so mount points could still be
	// created inside.
	for i := len(mounts) - 1; i >= 0; i-- {
		if !mounts[i].ReadOnly {
			continue
		}
		target, err := resolvePath(mounts[i].Target)
		if err != nil {
			return err
		}
		if err := syscall.Mount("", target, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY|syscall.MS_NOSUID|syscall.MS_NODEV, ""); err != nil {
			return fmt.Errorf("making %s read-only: %w", mounts[i].Target, err)
		}
	}
	return nil
}

// resolvePath resolves the symbolic links of the longest existing prefix of
// path (/var/run/secrets → /run/secrets).
func resolvePath(path string) (string, error) {
	existing, rest := path, ""
	for {
		if _, err := os.Lstat(existing); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		rest = filepath.Join(filepath.Base(existing), rest)
		existing = filepath.Dir(existing)
	}
	resolved, err := filepath.EvalSymlinks(existing)
	if err != nil {
		return "", err
	}
	return filepath.Join(resolved, rest), nil
}

// mountPoint returns the resolved target, creating it (a directory, or an
// empty file for a file volume) when missing, in a stand-in directory so
// the host is untouched.
func (m *mounter) mountPoint(target string, dir bool) (string, error) {
	target, err := resolvePath(target)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(target); err == nil {
		return target, nil
	}
	existing := filepath.Dir(target)
	for {
		if _, err := os.Lstat(existing); err == nil {
			break
		}
		existing = filepath.Dir(existing)
	}
	if !m.writable[existing] {
		if err := m.shadow(existing); err != nil {
			return "", err
		}
	}
	for d := filepath.Dir(target); d != existing; d = filepath.Dir(d) {
		m.writable[d] = true
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return "", err
	}
	if dir {
		if err := os.Mkdir(target, 0o755); err != nil {
			return "", err
		}
		m.writable[target] = true
		return target, nil
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
	}
	return target, f.Close()
}

// standIn creates a new directory on the scratch tmpfs holding, by bind
// mounts and copied symbolic links, every entry of dir, and returns its
// path.
func (m *mounter) standIn(dir string) (string, error) {
	m.n++
	stage := filepath.Join(fdPath(m.scratch), strconv.Itoa(m.n))
	info, err := os.Stat(dir)
	if err != nil {
		return "", err
	}
	if err := os.Mkdir(stage, info.Mode().Perm()); err != nil {
		return "", err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		src, dst := filepath.Join(dir, e.Name()), filepath.Join(stage, e.Name())
		switch {
		case e.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(src)
			if err != nil {
				return "", err
			}
			if err := os.Symlink(link, dst); err != nil {
				return "", err
			}
			continue
		case e.IsDir():
			if err := os.Mkdir(dst, 0o755); err != nil {
				return "", err
			}
		default:
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return "", err
			}
			f.Close()
		}
		if err := syscall.Mount(src, dst, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return "", fmt.Errorf("bind-mounting %s: %w", src, err)
		}
	}
	return stage, nil
}

// shadow mounts a stand-in over dir, so entries can be created in dir
// without touching the host.
func (m *mounter) shadow(dir string) error {
	stage, err := m.standIn(dir)
	if err != nil {
		return err
	}
	if err := syscall.Mount(stage, dir, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return fmt.Errorf("mounting a stand-in over %s: %w", dir, err)
	}
	m.writable[dir] = true
	return nil
}

// newRoot changes the root to a stand-in for /.
func (m *mounter) newRoot() error {
	stage, err := m.standIn("/")
	if err != nil {
		return err
	}
	if err := syscall.Chroot(stage); err != nil {
		return fmt.Errorf("changing the root: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	m.writable["/"] = true
	return nil
}
