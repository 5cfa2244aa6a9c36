package v1alpha1

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Path segments that stand for "any element" of a list and "any value" of
// a map.
const (
	anyItem  = "[]"
	anyValue = "{}"
)

// ownPkgPath is the import path of this package: the walk below descends
// only into types defined here and treats every other type (ObjectMeta,
// JobSpec, HorizontalPodAutoscalerBehavior, Quantity, Time, ...) as a leaf.
var ownPkgPath = reflect.TypeFor[ScaledObject]().PkgPath()

// fieldPath is one JSON path of ebb's types, as segments, with the Go
// field it ends at ("AuthPodIdentity.RoleArn").
type fieldPath struct {
	segs  []string
	field string
}

func (p fieldPath) String() string { return strings.Join(p.segs, ".") }

// jsonPaths lists every JSON path of ebb's own types below t. A path ends
// at a scalar, at a type from another package, or at an element of a list
// or map of those; field is the Go field that leads to it.
func jsonPaths(t reflect.Type, prefix []string, field string) []fieldPath {
	switch t.Kind() {
	case reflect.Pointer:
		return jsonPaths(t.Elem(), prefix, field)
	case reflect.Slice:
		return jsonPaths(t.Elem(), appendPath(prefix, anyItem), field)
	case reflect.Map:
		return jsonPaths(t.Elem(), appendPath(prefix, anyValue), field)
	case reflect.Struct:
		if t.PkgPath() != ownPkgPath {
			return []fieldPath{{segs: prefix, field: field}}
		}
		var paths []fieldPath
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			// The embedded TypeMeta and ObjectMeta belong to Kubernetes.
			if f.Anonymous && f.Type.PkgPath() != ownPkgPath {
				continue
			}
			if name == "" {
				name = f.Name
			}
			paths = append(paths, jsonPaths(f.Type, appendPath(prefix, name), t.Name()+"."+f.Name)...)
		}
		if len(paths) == 0 {
			return []fieldPath{{segs: prefix, field: field}}
		}
		return paths
	default:
		return []fieldPath{{segs: prefix, field: field}}
	}
}

func appendPath(prefix []string, seg string) []string {
	return append(slices.Clone(prefix), seg)
}

// parent returns the path of the struct that holds the last field of p,
// dropping any trailing list or map element segments first.
func parent(segs []string) []string {
	end := len(segs)
	for end > 0 && (segs[end-1] == anyItem || segs[end-1] == anyValue) {
		end--
	}
	if end == 0 {
		return nil
	}
	return segs[:end-1]
}

// present reports whether the generic JSON value v has a value at path.
func present(v any, path []string) bool {
	if len(path) == 0 {
		return v != nil
	}
	switch seg := path[0]; seg {
	case anyItem:
		items, _ := v.([]any)
		return slices.ContainsFunc(items, func(item any) bool { return present(item, path[1:]) })
	case anyValue:
		m, _ := v.(map[string]any)
		for _, value := range m {
			if present(value, path[1:]) {
				return true
			}
		}
		return false
	default:
		m, _ := v.(map[string]any)
		value, ok := m[seg]
		return ok && present(value, path[1:])
	}
}

// TestFixturesCoverEveryField fails when a field of ebb's API types appears
// in no fixture, so every new field must come with an example manifest that
// the round trip then checks.
func TestFixturesCoverEveryField(t *testing.T) {
	fixtures := loadFixtures(t)
	tests := map[string]struct {
		goType reflect.Type
		// kinds whose fixtures may cover the paths: the two authentication
		// kinds share their spec and status types.
		kinds []string
	}{
		ScaledObjectKind: {
			goType: reflect.TypeFor[ScaledObject](),
			kinds:  []string{ScaledObjectKind},
		},
		ScaledJobKind: {
			goType: reflect.TypeFor[ScaledJob](),
			kinds:  []string{ScaledJobKind},
		},
		TriggerAuthenticationKind: {
			goType: reflect.TypeFor[TriggerAuthentication](),
			kinds:  []string{TriggerAuthenticationKind, ClusterTriggerAuthenticationKind},
		},
		ClusterTriggerAuthenticationKind: {
			goType: reflect.TypeFor[ClusterTriggerAuthentication](),
			kinds:  []string{TriggerAuthenticationKind, ClusterTriggerAuthenticationKind},
		},
	}
	for kind, tc := range tests {
		t.Run(kind, func(t *testing.T) {
			var docs []any
			ownKind := 0
			for _, f := range fixtures {
				if slices.Contains(tc.kinds, f.kind) {
					docs = append(docs, any(f.doc))
				}
				if f.kind == kind {
					ownKind++
				}
			}
			if ownKind == 0 {
				t.Fatalf("No fixture of kind %s", kind)
			}
			paths := jsonPaths(tc.goType, nil, "")
			if len(paths) < 10 {
				t.Fatalf("Only %d paths found in %s; the walk is broken", len(paths), tc.goType)
			}
			inAnyDoc := func(segs []string) bool {
				return slices.ContainsFunc(docs, func(doc any) bool { return present(doc, segs) })
			}
			// A type used in several places (AuthPodIdentity, SecretValue)
			// must have each field set somewhere and appear at each place,
			// but need not have every field set at every place: that would
			// force nonsense such as an AWS role in an Azure Key Vault.
			fieldSet := map[string]bool{}
			for _, p := range paths {
				if inAnyDoc(p.segs) {
					fieldSet[p.field] = true
				}
			}
			for _, p := range paths {
				switch {
				case inAnyDoc(p.segs):
				case fieldSet[p.field] && inAnyDoc(parent(p.segs)):
				default:
					t.Errorf("No fixture sets %s (%s)", p, p.field)
				}
			}
		})
	}
}

// TestCoverageWalk checks the walk and the presence test on a small
// example, so a silently empty walk cannot pass the coverage test.
func TestCoverageWalk(t *testing.T) {
	paths := map[string]bool{}
	for _, p := range jsonPaths(reflect.TypeFor[ScaledObject](), nil, "") {
		paths[p.String()] = true
	}
	for _, want := range []string{
		"spec.scaleTargetRef.name",
		"spec.triggers.[].metadata.{}",
		"spec.triggers.[].authenticationRef.kind",
		"spec.advanced.horizontalPodAutoscalerConfig.behavior",
		"status.health.{}.numberOfFailures",
		"status.conditions.[].type",
		"status.lastActiveTime",
	} {
		if !paths[want] {
			t.Errorf("Path %s not found", want)
		}
	}
	for _, notWanted := range []string{"metadata", "kind", "apiVersion", "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleUp"} {
		if paths[notWanted] {
			t.Errorf("Path %s should not be walked", notWanted)
		}
	}

	parents := map[string]struct{ path, want []string }{
		"field":           {path: []string{"spec", "fallback", "replicas"}, want: []string{"spec", "fallback"}},
		"list of scalars": {path: []string{"status", "externalMetricNames", anyItem}, want: []string{"status"}},
		"map value":       {path: []string{"status", "health", anyValue, "status"}, want: []string{"status", "health", anyValue}},
		"top level":       {path: []string{"spec"}, want: []string{}},
	}
	for name, tc := range parents {
		t.Run("parent/"+name, func(t *testing.T) {
			if got := parent(tc.path); !slices.Equal(got, tc.want) {
				t.Errorf("parent(%v) = %v, want %v", tc.path, got, tc.want)
			}
		})
	}

	doc := map[string]any{"spec": map[string]any{
		"triggers": []any{map[string]any{"type": "cpu", "metadata": map[string]any{}}},
	}}
	tests := map[string]struct {
		path []string
		want bool
	}{
		"field":                {path: []string{"spec", "triggers", anyItem, "type"}, want: true},
		"missing field":        {path: []string{"spec", "triggers", anyItem, "name"}},
		"empty map has no key": {path: []string{"spec", "triggers", anyItem, "metadata", anyValue}},
		"empty map is present": {path: []string{"spec", "triggers", anyItem, "metadata"}, want: true},
		"not a list":           {path: []string{"spec", anyItem}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := present(doc, tc.path); got != tc.want {
				t.Errorf("present(%v) = %v, want %v", tc.path, got, tc.want)
			}
		})
	}
}

// TestAlwaysEncodedFields pins the fields encoded even when empty (no
// omitempty or omitzero). They are exactly the fields KEDA v2.21's CRDs list
// as required, plus isActive, which KEDA always writes; the fixtures cannot
// catch a lost omitempty, since they set every field, so this list does.
func TestAlwaysEncodedFields(t *testing.T) {
	want := []string{
		"AuthEnvironment.name", "AuthEnvironment.parameter",
		"AuthPodIdentity.provider",
		"AuthenticationRef.name",
		"AuthConfigMapTargetRef.key", "AuthConfigMapTargetRef.name", "AuthConfigMapTargetRef.parameter",
		"AuthSecretTargetRef.key", "AuthSecretTargetRef.name", "AuthSecretTargetRef.parameter",
		"AwsSecretManager.secrets",
		"AwsSecretManagerCredentials.accessKey", "AwsSecretManagerCredentials.accessSecretKey",
		"AwsSecretManagerSecret.name", "AwsSecretManagerSecret.parameter",
		"AzureKeyVault.secrets", "AzureKeyVault.vaultUri",
		"AzureKeyVaultCloudInfo.type",
		"AzureKeyVaultCredentials.clientId", "AzureKeyVaultCredentials.clientSecret", "AzureKeyVaultCredentials.tenantId",
		"AzureKeyVaultSecret.name", "AzureKeyVaultSecret.parameter",
		"AzureServicePrincipal.clientId", "AzureServicePrincipal.tenantId",
		"BoundServiceAccountToken.parameter", "BoundServiceAccountToken.serviceAccountName",
		"ClusterTriggerAuthentication.spec",
		"Condition.status", "Condition.type",
		"Fallback.failureThreshold", "Fallback.replicas",
		"GCPCredentials.clientSecret",
		"GCPSecretManager.secrets",
		"GCPSecretManagerSecret.id", "GCPSecretManagerSecret.parameter",
		"GroupVersionKindResource.group", "GroupVersionKindResource.kind",
		"GroupVersionKindResource.resource", "GroupVersionKindResource.version",
		"HashiCorpVault.address", "HashiCorpVault.authentication", "HashiCorpVault.secrets",
		"OAuth2.clientId", "OAuth2.tokenUrl", "OAuth2.type",
		"ScaleTarget.name",
		"ScaleTrigger.metadata", "ScaleTrigger.type",
		"ScaledJobSpec.jobTargetRef", "ScaledJobSpec.triggers",
		"ScaledObject.spec",
		"ScaledObjectSpec.scaleTargetRef", "ScaledObjectSpec.triggers",
		"SecretKeyRef.key", "SecretKeyRef.name",
		"SecretValue.valueFrom",
		"TriggerActivityStatus.isActive",
		"TriggerAuthentication.spec",
		"ValueFromSecret.secretKeyRef",
		"VaultSecret.key", "VaultSecret.parameter", "VaultSecret.path",
	}
	var got []string
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t.PkgPath() != ownPkgPath || seen[t] {
			return
		}
		seen[t] = true
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() || f.Anonymous {
				continue
			}
			optional := slices.ContainsFunc(strings.Split(opts, ","), func(o string) bool {
				return o == "omitempty" || o == "omitzero"
			})
			if !optional {
				got = append(got, t.Name()+"."+name)
			}
			walk(f.Type)
		}
	}
	for _, root := range []reflect.Type{
		reflect.TypeFor[ScaledObject](), reflect.TypeFor[ScaledJob](),
		reflect.TypeFor[TriggerAuthentication](), reflect.TypeFor[ClusterTriggerAuthentication](),
	} {
		walk(root)
	}
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Fields encoded even when empty (-want +got):\n%s", diff)
	}
}
