package v1alpha1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// newForKind returns an empty object of the Go type that serves a kind.
var newForKind = map[string]func() any{
	ScaledObjectKind:                 func() any { return &ScaledObject{} },
	ScaledJobKind:                    func() any { return &ScaledJob{} },
	TriggerAuthenticationKind:        func() any { return &TriggerAuthentication{} },
	ClusterTriggerAuthenticationKind: func() any { return &ClusterTriggerAuthentication{} },
}

// fixture is one YAML document of a file in testdata/.
type fixture struct {
	name string // file#index/kind/name, for test names and messages
	kind string
	raw  []byte
	// doc is the document as generic JSON: what a client sends.
	doc map[string]any
}

// docSeparator splits multi-document YAML files.
var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// loadFixtures reads every document of testdata/*.yaml.
func loadFixtures(t *testing.T) []fixture {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("No fixtures in testdata/")
	}
	var fixtures []fixture
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, raw := range docSeparator.Split(string(data), -1) {
			doc, err := toGeneric([]byte(raw))
			if err != nil {
				t.Fatalf("%s document %d: %v", file, i, err)
			}
			if doc == nil {
				continue // only comments
			}
			kind, _ := doc["kind"].(string)
			meta, _ := doc["metadata"].(map[string]any)
			name, _ := meta["name"].(string)
			fixtures = append(fixtures, fixture{
				name: fmt.Sprintf("%s#%d/%s/%s", filepath.Base(file), i, kind, name),
				kind: kind,
				raw:  []byte(raw),
				doc:  doc,
			})
		}
	}
	return fixtures
}

// toGeneric converts YAML to the generic JSON value a client would send;
// nil for a document without content.
func toGeneric(raw []byte) (map[string]any, error) {
	data, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return nil, nil
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// roundTrip decodes a YAML document strictly into the Go type of its kind,
// encodes it back to JSON, and returns how the result differs from the
// document ("" when it is identical). Unknown or duplicated fields are
// errors.
func roundTrip(raw []byte) (string, error) {
	want, err := toGeneric(raw)
	if err != nil {
		return "", err
	}
	kind, _ := want["kind"].(string)
	newObj, ok := newForKind[kind]
	if !ok {
		return "", fmt.Errorf("no Go type for kind %q", kind)
	}
	obj := newObj()
	if err := yaml.UnmarshalStrict(raw, obj); err != nil {
		return "", fmt.Errorf("strict decode: %w", err)
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return "", err
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		return "", err
	}
	return cmp.Diff(want, got), nil
}

// TestFixturesRoundTrip proves that no field of any example manifest is lost
// or altered by decoding it into ebb's types and encoding it again.
func TestFixturesRoundTrip(t *testing.T) {
	for _, f := range loadFixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			diff, err := roundTrip(f.raw)
			if err != nil {
				t.Fatal(err)
			}
			if diff != "" {
				t.Errorf("Decoding and re-encoding changed the object (-fixture +re-encoded):\n%s", diff)
			}
		})
	}
}

// TestRoundTripDetectsLoss proves the round trip fails on the mistakes it
// exists to catch, so a passing TestFixturesRoundTrip means something.
func TestRoundTripDetectsLoss(t *testing.T) {
	const head = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: web}\n"
	tests := map[string]struct {
		doc       string
		wantErr   string // substring of the decode error
		wantDiffs bool   // the round trip must report a difference
	}{
		"faithful object": {
			doc: head + "spec:\n  scaleTargetRef: {name: web}\n  triggers: [{type: cpu, metadata: {value: '50'}}]\n",
		},
		"unknown field": {
			doc:     head + "spec:\n  scaleTargetRef: {name: web}\n  pollingIntervall: 5\n  triggers: []\n",
			wantErr: "pollingIntervall",
		},
		"unknown nested field": {
			doc:     head + "spec:\n  scaleTargetRef: {name: web, container: app}\n  triggers: []\n",
			wantErr: "container",
		},
		"duplicate field": {
			doc:     head + "spec:\n  scaleTargetRef: {name: web}\n  triggers: []\n  triggers: []\n",
			wantErr: "triggers",
		},
		"wrong capitalisation is matched by Go but renamed on the way out": {
			doc:       head + "spec:\n  scaleTargetRef: {name: web}\n  PollingInterval: 5\n  triggers: []\n",
			wantDiffs: true,
		},
		"unknown kind": {
			doc:     "apiVersion: keda.sh/v1alpha1\nkind: ScaledThing\nmetadata: {name: web}\n",
			wantErr: "ScaledThing",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			diff, err := roundTrip([]byte(tc.doc))
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Error = %v, want one mentioning %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatalf("Unexpected error: %v", err)
			case tc.wantDiffs && diff == "":
				t.Errorf("No difference reported, want one")
			case !tc.wantDiffs && diff != "":
				t.Errorf("Unexpected difference:\n%s", diff)
			}
		})
	}
}
