package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// CertManagerNamespace is cert-manager's cluster resource namespace: where
// the Secrets of ClusterIssuers live.
const CertManagerNamespace = "cert-manager"

// fieldManager is the field manager of the harness's server-side applies.
const fieldManager = "ebb-e2e-cluster"

// StartCertManager installs cert-manager's CRDs, creates the cert-manager
// namespace and runs cert-manager's controllers and CA injector as one host
// process (hack/cert-manager, Bins.CertManager) with the admin kubeconfig.
// It returns once the process reports that every controller runs with
// synced caches. The process stops with the cluster.
//
// It runs the selfSigned and CA issuers, CertificateRequest approval, the
// whole Certificate lifecycle (issuance, renewal, revisions) and the CA
// injector (cert-manager.io/inject-ca-from and inject-ca-from-secret on
// webhook configurations, APIServices and CRDs). There is no ACME and no
// cert-manager admission webhook, so invalid cert-manager objects are not
// rejected at admission.
func (c *Cluster) StartCertManager(ctx context.Context) error {
	if c.Bins.CertManager == "" || c.Bins.CertManagerCRDs == "" {
		return errors.New("no cert-manager binary or CRD directory in Bins (hack/build-cluster-bins.sh reports cert-manager= and cert-manager-crds=)")
	}
	if err := c.ApplyCRDs(ctx, c.Bins.CertManagerCRDs); err != nil {
		return fmt.Errorf("installing cert-manager's CRDs: %w", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: CertManagerNamespace}}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", CertManagerNamespace, err)
	}

	readyFile := filepath.Join(c.Dir, "cert-manager.ready")
	if err := os.Remove(readyFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	p, err := c.StartProcess(ProcessSpec{
		Name: "cert-manager",
		Path: c.Bins.CertManager,
		Args: []string{
			"--kubeconfig=" + c.KubeconfigPath,
			"--namespace=" + CertManagerNamespace,
			"--ready-file=" + readyFile,
			"--v=2",
		},
	})
	if err != nil {
		return err
	}
	if err := c.waitFor(ctx, "cert-manager to be ready", func(context.Context) (bool, error) {
		_, err := os.Stat(readyFile)
		return err == nil, nil
	}); err != nil {
		return fmt.Errorf("%w; cert-manager's log: %s", err, p.LogPath)
	}
	return nil
}

// ApplyCRDs server-side applies every CustomResourceDefinition in the
// *.yaml files of dir and waits until each is Established.
func (c *Cluster) ApplyCRDs(ctx context.Context, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	if len(files) == 0 {
		return fmt.Errorf("no *.yaml files in %s", dir)
	}
	client, err := apiextensionsclient.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	crds := client.ApiextensionsV1().CustomResourceDefinitions()
	var names []string
	for _, file := range files {
		docs, err := readYAMLDocuments(file)
		if err != nil {
			return err
		}
		for _, doc := range docs {
			var meta struct {
				metav1.TypeMeta `json:",inline"`
				Metadata        struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if err := json.Unmarshal(doc, &meta); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			if meta.Kind != "CustomResourceDefinition" || meta.Metadata.Name == "" {
				return fmt.Errorf("%s: expected named CustomResourceDefinitions, found %s %q", file, meta.Kind, meta.Metadata.Name)
			}
			force := true
			if _, err := crds.Patch(ctx, meta.Metadata.Name, types.ApplyPatchType, doc,
				metav1.PatchOptions{FieldManager: fieldManager, Force: &force}); err != nil {
				return fmt.Errorf("applying %s from %s: %w", meta.Metadata.Name, file, err)
			}
			names = append(names, meta.Metadata.Name)
		}
	}
	for _, name := range names {
		if err := c.waitFor(ctx, "CRD "+name+" to be established", func(ctx context.Context) (bool, error) {
			crd, err := crds.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return crdCondition(crd, apiextensionsv1.Established) && crdCondition(crd, apiextensionsv1.NamesAccepted), nil
		}); err != nil {
			return err
		}
	}
	return nil
}

func crdCondition(crd *apiextensionsv1.CustomResourceDefinition, typ apiextensionsv1.CustomResourceDefinitionConditionType) bool {
	for _, cond := range crd.Status.Conditions {
		if cond.Type == typ {
			return cond.Status == apiextensionsv1.ConditionTrue
		}
	}
	return false
}

// readYAMLDocuments returns the non-empty documents of a YAML file, each
// converted to JSON.
func readYAMLDocuments(file string) ([][]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if strings.TrimSpace(string(doc)) == "" {
			continue
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if string(j) == "null" {
			continue // only comments
		}
		docs = append(docs, j)
	}
}
