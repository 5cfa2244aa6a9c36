package cluster

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Binaries are the paths of the programs a cluster runs.
type Binaries struct {
	Etcd                  string
	KubeAPIServer         string
	KubeControllerManager string
	Kubectl               string
	Helm                  string
	// CertManager is ebb's launcher of cert-manager's controllers and CA
	// injector (hack/cert-manager); CertManagerCRDs the directory of the
	// CRD manifests shipped with that cert-manager version.
	CertManager     string
	CertManagerCRDs string
}

// RepoRoot returns the root of the ebb repository: $EBB_ROOT when set,
// otherwise the nearest parent of the working directory holding go.work
// and hack/.
func RepoRoot() (string, error) {
	if root := os.Getenv("EBB_ROOT"); root != "" {
		return root, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isRepoRoot(dir) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no ebb repository (go.work and hack/build-cluster-bins.sh) above the working directory; set EBB_ROOT")
		}
		dir = parent
	}
}

func isRepoRoot(dir string) bool {
	for _, f := range []string{"go.work", "hack/build-cluster-bins.sh"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	return true
}

// FindBinaries runs hack/build-cluster-bins.sh, which builds any pinned
// binary missing from the cache (minutes when cold, instant when warm), and
// returns their paths.
func FindBinaries(ctx context.Context) (Binaries, error) {
	root, err := RepoRoot()
	if err != nil {
		return Binaries{}, err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "hack", "build-cluster-bins.sh"))
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return Binaries{}, fmt.Errorf("hack/build-cluster-bins.sh: %w\n%s", err, stderr.String())
	}
	var b Binaries
	fields := map[string]*string{
		"etcd":                    &b.Etcd,
		"kube-apiserver":          &b.KubeAPIServer,
		"kube-controller-manager": &b.KubeControllerManager,
		"kubectl":                 &b.Kubectl,
		"helm":                    &b.Helm,
		"cert-manager":            &b.CertManager,
		"cert-manager-crds":       &b.CertManagerCRDs,
	}
	scanner := bufio.NewScanner(&stdout)
	for scanner.Scan() {
		name, path, ok := strings.Cut(scanner.Text(), "=")
		if field, known := fields[name]; ok && known {
			*field = path
		}
	}
	for name, field := range fields {
		if strings.HasPrefix(name, "cert-manager") {
			continue // optional: only needed with Options.CertManager
		}
		if *field == "" {
			return Binaries{}, fmt.Errorf("hack/build-cluster-bins.sh did not report %s", name)
		}
	}
	return b, nil
}
