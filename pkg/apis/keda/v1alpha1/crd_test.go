package v1alpha1_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

// crdDir is where hack/update-codegen.sh writes the CRD manifests.
const crdDir = "../../../../deploy/crds"

// crdSchema is one served version of a CRD, ready to check objects the way
// kube-apiserver does on create: prune unknown fields, apply defaults,
// validate the OpenAPI schema, then evaluate the CEL rules.
type crdSchema struct {
	crd        *apiextensionsv1.CustomResourceDefinition
	structural *structuralschema.Structural
	openAPI    apiservervalidation.SchemaValidator
	cel        *cel.Validator
}

// loadCRDs reads every CRD in crdDir, keyed by kind.
func loadCRDs(t *testing.T) map[string]*crdSchema {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(crdDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("No CRD manifests in %s: run hack/update-codegen.sh", crdDir)
	}
	crds := map[string]*crdSchema{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(data, crd); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Name != "v1alpha1" {
			t.Fatalf("%s: want exactly the version v1alpha1, got %d versions", file, len(crd.Spec.Versions))
		}
		version := crd.Spec.Versions[0]
		internal := &apiextensions.JSONSchemaProps{}
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(version.Schema.OpenAPIV3Schema, internal, nil); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		structural, err := structuralschema.NewStructural(internal)
		if err != nil {
			t.Fatalf("%s: schema is not structural: %v", file, err)
		}
		openAPI, _, err := apiservervalidation.NewSchemaValidator(internal)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		crds[crd.Spec.Names.Kind] = &crdSchema{
			crd:        crd,
			structural: structural,
			openAPI:    openAPI,
			cel:        cel.NewValidator(structural, true, celconfig.PerCallLimit),
		}
	}
	return crds
}

// admit checks obj as kube-apiserver would on create. It returns the paths
// of fields the schema does not know (the server would silently drop them)
// and the validation errors.
func (s *crdSchema) admit(obj map[string]interface{}) (pruned []string, errs field.ErrorList) {
	pruned = pruning.PruneWithOptions(obj, s.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	defaulting.Default(obj, s.structural)
	errs = apiservervalidation.ValidateCustomResource(nil, obj, s.openAPI)
	celErrs, _ := s.cel.Validate(context.Background(), nil, s.structural, obj, nil, celconfig.RuntimeCELCostBudget)
	return pruned, append(errs, celErrs...)
}

func TestCRDsAreValid(t *testing.T) {
	want := map[string]struct {
		plural     string
		scope      apiextensionsv1.ResourceScope
		shortNames []string
		selectable []string
	}{
		"ScaledObject": {
			plural:     "scaledobjects",
			scope:      apiextensionsv1.NamespaceScoped,
			shortNames: []string{"so"},
			selectable: []string{".spec.scaleTargetRef.kind", ".spec.scaleTargetRef.name"},
		},
		"ScaledJob":                    {plural: "scaledjobs", scope: apiextensionsv1.NamespaceScoped, shortNames: []string{"sj"}},
		"TriggerAuthentication":        {plural: "triggerauthentications", scope: apiextensionsv1.NamespaceScoped, shortNames: []string{"ta", "triggerauth"}},
		"ClusterTriggerAuthentication": {plural: "clustertriggerauthentications", scope: apiextensionsv1.ClusterScoped, shortNames: []string{"cta", "clustertriggerauth"}},
	}
	crds := loadCRDs(t)
	if len(crds) != len(want) {
		t.Errorf("Found CRDs for %d kinds, want %d", len(crds), len(want))
	}
	for kind, w := range want {
		t.Run(kind, func(t *testing.T) {
			s, ok := crds[kind]
			if !ok {
				t.Fatalf("No CRD for %s in %s", kind, crdDir)
			}
			crd := s.crd
			if crd.Spec.Group != "keda.sh" || crd.Spec.Names.Plural != w.plural || crd.Name != w.plural+".keda.sh" {
				t.Errorf("Names: group %q plural %q name %q, want keda.sh, %q, %q", crd.Spec.Group, crd.Spec.Names.Plural, crd.Name, w.plural, w.plural+".keda.sh")
			}
			if crd.Spec.Scope != w.scope {
				t.Errorf("Scope = %s, want %s", crd.Spec.Scope, w.scope)
			}
			if !slices.Equal(crd.Spec.Names.ShortNames, w.shortNames) {
				t.Errorf("ShortNames = %v, want %v", crd.Spec.Names.ShortNames, w.shortNames)
			}
			version := crd.Spec.Versions[0]
			if !version.Served || !version.Storage {
				t.Errorf("v1alpha1 served=%v storage=%v, want both true", version.Served, version.Storage)
			}
			if version.Subresources == nil || version.Subresources.Status == nil {
				t.Errorf("No status subresource")
			}
			var selectable []string
			for _, f := range version.SelectableFields {
				selectable = append(selectable, f.JSONPath)
			}
			slices.Sort(selectable)
			if !slices.Equal(selectable, w.selectable) {
				t.Errorf("SelectableFields = %v, want %v", selectable, w.selectable)
			}
			if kind == "ScaledObject" || kind == "ScaledJob" {
				if len(version.AdditionalPrinterColumns) == 0 {
					t.Errorf("No printer columns")
				}
			}

			// The same checks kube-apiserver runs when the CRD is created:
			// structural schema, CEL rules compile within cost limits,
			// selectable fields exist and are strings, printer columns.
			internal := &apiextensions.CustomResourceDefinition{}
			if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(crd, internal, nil); err != nil {
				t.Fatal(err)
			}
			// A created CRD stores its one version; the validation requires it.
			internal.Status.StoredVersions = []string{"v1alpha1"}
			if errs := crdvalidation.ValidateCustomResourceDefinition(context.Background(), internal); len(errs) > 0 {
				t.Errorf("The API server would reject this CRD:\n%v", errs.ToAggregate())
			}
		})
	}
}

// TestFixturesAreAdmitted sends every example object of testdata/ through
// the CRD schemas: none may lose a field to pruning or fail validation.
func TestFixturesAreAdmitted(t *testing.T) {
	crds := loadCRDs(t)
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("No fixtures in testdata/")
	}
	seen := map[string]int{}
	for _, file := range files {
		for _, doc := range readDocs(t, file) {
			obj := decodeObject(t, doc)
			u := objectKind(obj)
			seen[u]++
			t.Run(filepath.Base(file)+"/"+u+"/"+objectName(obj), func(t *testing.T) {
				s, ok := crds[u]
				if !ok {
					t.Fatalf("No CRD for kind %q", u)
				}
				pruned, errs := s.admit(obj)
				if len(pruned) > 0 {
					t.Errorf("The API server would drop these fields: %v", pruned)
				}
				if len(errs) > 0 {
					t.Errorf("The API server would reject this object:\n%v", errs.ToAggregate())
				}
			})
		}
	}
	for kind := range crds {
		if seen[kind] == 0 {
			t.Errorf("No fixture of kind %s", kind)
		}
	}
}

// TestCRDRulesRejectInvalidObjects proves the CRD-level admission rules:
// min ≤ max (max defaulting to 100), pollingInterval ≥ 1, at least one
// trigger, scalingModifiers.metricType not Utilization.
func TestCRDRulesRejectInvalidObjects(t *testing.T) {
	crds := loadCRDs(t)
	const scaledObject = `
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: orders, namespace: shop}
spec:
  scaleTargetRef: {name: orders}
  triggers:
  - type: cron
    metadata: {timezone: UTC, start: "0 8 * * *", end: "0 18 * * *", desiredReplicas: "3"}
`
	const scaledJob = `
apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {name: reports, namespace: shop}
spec:
  jobTargetRef:
    template:
      spec:
        restartPolicy: Never
        containers: [{name: report, image: example.com/report:1}]
  triggers:
  - type: redis
    metadata: {address: redis:6379, listName: reports}
`
	tests := map[string]struct {
		base    string
		spec    map[string]interface{}
		wantErr string // a substring of the error's path; "" means admitted
	}{
		"defaults are admitted":             {base: scaledObject},
		"min equal to max":                  {base: scaledObject, spec: map[string]interface{}{"minReplicaCount": 3, "maxReplicaCount": 3}},
		"min 0 with idle unset":             {base: scaledObject, spec: map[string]interface{}{"minReplicaCount": 0}},
		"min above max":                     {base: scaledObject, spec: map[string]interface{}{"minReplicaCount": 5, "maxReplicaCount": 2}, wantErr: "spec"},
		"min above the default max of 100":  {base: scaledObject, spec: map[string]interface{}{"minReplicaCount": 101}, wantErr: "spec"},
		"min at the default max of 100":     {base: scaledObject, spec: map[string]interface{}{"minReplicaCount": 100}},
		"pollingInterval 0":                 {base: scaledObject, spec: map[string]interface{}{"pollingInterval": 0}, wantErr: "spec.pollingInterval"},
		"pollingInterval 1":                 {base: scaledObject, spec: map[string]interface{}{"pollingInterval": 1}},
		"no triggers":                       {base: scaledObject, spec: map[string]interface{}{"triggers": []interface{}{}}, wantErr: "spec.triggers"},
		"scalingModifiers with Utilization": {base: scaledObject, spec: map[string]interface{}{"advanced": map[string]interface{}{"scalingModifiers": map[string]interface{}{"formula": "s0", "target": "2", "metricType": "Utilization"}}}, wantErr: "scalingModifiers"},
		"scalingModifiers with Value":       {base: scaledObject, spec: map[string]interface{}{"advanced": map[string]interface{}{"scalingModifiers": map[string]interface{}{"formula": "s0", "target": "2", "metricType": "Value"}}}},
		"ScaledJob defaults are admitted":   {base: scaledJob},
		"ScaledJob pollingInterval 0":       {base: scaledJob, spec: map[string]interface{}{"pollingInterval": 0}, wantErr: "spec.pollingInterval"},
		"ScaledJob no triggers":             {base: scaledJob, spec: map[string]interface{}{"triggers": []interface{}{}}, wantErr: "spec.triggers"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			obj := decodeObject(t, []byte(tc.base))
			spec := obj["spec"].(map[string]interface{})
			for k, v := range tc.spec {
				spec[k] = v
			}
			// Give the overrides the number types the API server decodes.
			data, err := yaml.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			obj = decodeObject(t, data)
			s := crds[objectKind(obj)]
			if s == nil {
				t.Fatalf("No CRD for %s", objectKind(obj))
			}
			pruned, errs := s.admit(obj)
			if len(pruned) > 0 {
				t.Errorf("Fields dropped: %v", pruned)
			}
			switch {
			case tc.wantErr == "" && len(errs) > 0:
				t.Errorf("Rejected, want admitted:\n%v", errs.ToAggregate())
			case tc.wantErr != "" && len(errs) == 0:
				t.Errorf("Admitted, want an error at %s", tc.wantErr)
			case tc.wantErr != "":
				found := false
				for _, err := range errs {
					if strings.Contains(err.Field, tc.wantErr) || strings.Contains(err.Error(), tc.wantErr) {
						found = true
					}
					if err.Detail == "" && err.BadValue == nil {
						t.Errorf("Error without a message for the user: %v", err)
					}
				}
				if !found {
					t.Errorf("Errors %v, want one at %s", errs.ToAggregate(), tc.wantErr)
				}
			}
		})
	}
}

func readDocs(t *testing.T, file string) [][]byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(bytes.TrimSpace(doc)) > 0 && !isOnlyComments(doc) {
			docs = append(docs, doc)
		}
	}
}

func isOnlyComments(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") && line != "---" {
			return false
		}
	}
	return true
}

func objectKind(obj map[string]interface{}) string {
	kind, _ := obj["kind"].(string)
	return kind
}

func objectName(obj map[string]interface{}) string {
	meta, _ := obj["metadata"].(map[string]interface{})
	name, _ := meta["name"].(string)
	return name
}

// decodeObject decodes one YAML document the way the API server decodes a
// JSON body: integers become int64, other numbers float64.
func decodeObject(t *testing.T, doc []byte) map[string]interface{} {
	t.Helper()
	data, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatal(err)
	}
	obj := map[string]interface{}{}
	if err := utiljson.Unmarshal(data, &obj); err != nil {
		t.Fatal(err)
	}
	return obj
}
