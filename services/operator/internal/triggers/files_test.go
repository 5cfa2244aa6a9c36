package triggers

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedafake "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned/fake"
)

// fileSecrets are values in the filePath fixtures; no error may hold one.
var fileSecrets = []string{"f1le-pw", "f1le-bad", "1234567", "f1le-arr", "f1le-outside"}

// writeFiles lays out a root directory for credential files as a mounted
// Secret looks (files are links through ..data to a timestamped
// directory), plus a few bad files, and a file outside the root.
func writeFiles(t *testing.T) (root string) {
	t.Helper()
	dir := t.TempDir()
	root = filepath.Join(dir, "root")
	outside := filepath.Join(dir, "outside")
	for _, d := range []string{filepath.Join(root, "..2026_01_01"), filepath.Join(root, "sub"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		filepath.Join(root, "..2026_01_01", "creds.json"): `{"password": "f1le-pw", "username": "reader"}`,
		filepath.Join(root, "plain.json"):                 `{"host": "redis:6379"}`,
		filepath.Join(root, "sub", "nested.json"):         `{"token": "f1le-pw"}`,
		filepath.Join(root, "bad.json"):                   `{"password": f1le-bad}`,
		filepath.Join(root, "number.json"):                `{"port": 1234567}`,
		filepath.Join(root, "array.json"):                 `["f1le-arr"]`,
		filepath.Join(root, "null.json"):                  `null`,
		filepath.Join(root, "large.json"):                 `{"x": "` + strings.Repeat("a", MaxFilePathSize) + `"}`,
		filepath.Join(outside, "secret.json"):             `{"password": "f1le-outside"}`,
	}
	for p, content := range files {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		filepath.Join(root, "..data"):      "..2026_01_01",
		filepath.Join(root, "creds.json"):  filepath.Join("..data", "creds.json"),
		filepath.Join(root, "escape.json"): filepath.Join(outside, "secret.json"),
		filepath.Join(root, "up.json"):     filepath.Join("..", "outside", "secret.json"),
	}
	for link, target := range links {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestFilePath(t *testing.T) {
	root := writeFiles(t)
	tests := map[string]struct {
		path     string
		noRoot   bool
		want     map[string]string
		wantErr  []string
		wantRead bool // the file is tracked (a change to it is watched)
	}{
		"a Secret-mounted file, through ..data": {
			path: "creds.json", want: map[string]string{"password": "f1le-pw", "username": "reader"}, wantRead: true,
		},
		"a plain file":               {path: "plain.json", want: map[string]string{"host": "redis:6379"}, wantRead: true},
		"a file in a subdirectory":   {path: "sub/nested.json", want: map[string]string{"token": "f1le-pw"}, wantRead: true},
		"a path cleaned to its file": {path: "sub/../plain.json", want: map[string]string{"host": "redis:6379"}, wantRead: true},
		"no root directory": {
			path: "creds.json", noRoot: true,
			wantErr: []string{`filePath "creds.json"`, "no root directory for credential files", "--filepath-auth-root-path"},
		},
		"parent directory": {
			path: "../outside/secret.json", wantErr: []string{"must be a relative path inside the operator's root directory", `without ".."`},
		},
		"parent directory after a subdirectory": {
			path: "sub/../../outside/secret.json", wantErr: []string{"must be a relative path inside"},
		},
		"absolute path":   {path: "/etc/passwd", wantErr: []string{"must be a relative path inside"}},
		"the root itself": {path: ".", wantErr: []string{`filePath "."`, "cannot be read"}, wantRead: true},
		"a link out of the root": {
			path: "escape.json", wantErr: []string{`filePath "escape.json"`, "cannot be opened under " + root}, wantRead: true,
		},
		"a relative link out of the root": {
			path: "up.json", wantErr: []string{"cannot be opened under " + root}, wantRead: true,
		},
		"missing file": {
			path: "absent.json", wantErr: []string{`filePath "absent.json"`, "no such file under " + root}, wantRead: true,
		},
		"a directory": {path: "sub", wantErr: []string{`filePath "sub"`, "cannot be read"}, wantRead: true},
		"bad JSON": {
			path: "bad.json", wantErr: []string{`filePath "bad.json"`, "is not valid JSON (error at byte", "want a JSON object of string parameters"}, wantRead: true,
		},
		"a number": {
			path: "number.json", wantErr: []string{`parameter "port" is not a string`}, wantRead: true,
		},
		"an array":  {path: "array.json", wantErr: []string{"is not a JSON object of string parameters"}, wantRead: true},
		"null":      {path: "null.json", wantErr: []string{"is not a JSON object of string parameters"}, wantRead: true},
		"too large": {path: "large.json", wantErr: []string{"is larger than 1048576 bytes"}, wantRead: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cta := &v1alpha1.ClusterTriggerAuthentication{
				ObjectMeta: metav1.ObjectMeta{Name: "files", ResourceVersion: "7"},
				Spec: v1alpha1.TriggerAuthenticationSpec{
					FilePath: tc.path,
					// Ignored beside filePath, as in KEDA.
					SecretTargetRef: []v1alpha1.AuthSecretTargetRef{{Parameter: "other", Name: "absent", Key: "k"}},
				},
			}
			kube := kubefake.NewClientset()
			opts := []AuthOption{WithFilePathRoot(root)}
			if tc.noRoot {
				opts = nil
			}
			r := NewAuthResolver(kube, kedafake.NewClientset(cta), clusterNS, opts...)
			so := &v1alpha1.ScaledObject{
				ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "so"},
				Spec: v1alpha1.ScaledObjectSpec{Triggers: []v1alpha1.ScaleTrigger{{
					Type: "redis", AuthenticationRef: &v1alpha1.AuthenticationRef{Name: "files", Kind: v1alpha1.ClusterTriggerAuthenticationKind},
				}}},
			}
			var reads []Ref
			track := func(ref Ref) func(string) {
				reads = append(reads, ref)
				return func(string) {}
			}

			got, err := r.resolveContext(context.Background(), so, 0, track)

			if a := kube.Actions(); len(a) != 0 {
				t.Errorf("filePath read the API: %v", a)
			}
			fileRead := false
			for _, ref := range reads {
				if ref.Kind == RefFile {
					fileRead = true
					if ref.Name != filepath.Clean(tc.path) {
						t.Errorf("tracked file %q, want %q", ref.Name, filepath.Clean(tc.path))
					}
				}
			}
			if fileRead != tc.wantRead {
				t.Errorf("file tracked = %v, want %v (reads %v)", fileRead, tc.wantRead, reads)
			}
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("got no error, want one containing %q", tc.wantErr)
				}
				t.Logf("error: %v", err)
				for _, s := range append([]string{"ClusterTriggerAuthentication files"}, tc.wantErr...) {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				for _, v := range fileSecrets {
					if strings.Contains(err.Error(), v) {
						t.Errorf("error %q leaks %q from a file", err, v)
					}
				}
				var re *ResolveError
				if !errors.As(err, &re) || re.Retry {
					t.Errorf("error %q: want a *ResolveError without Retry (a change to the file or the object fixes it)", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolve: %v", err)
			}
			if diff := cmp.Diff(tc.want, got.AuthParams); diff != "" {
				t.Errorf("AuthParams (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFileVersion(t *testing.T) {
	root := writeFiles(t)
	f := &fileRoot{dir: root}
	_, v1, err := f.read("creds.json")
	if err != nil || !strings.HasPrefix(v1, "sha256:") {
		t.Fatalf("read = %q, %v; want a sha256 version", v1, err)
	}
	if _, again, _ := f.read("creds.json"); again != v1 {
		t.Errorf("version of an unchanged file changed: %q, then %q", v1, again)
	}
	// A Secret volume update: a new timestamped directory, ..data swapped.
	if err := os.MkdirAll(filepath.Join(root, "..2026_01_02"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "..2026_01_02", "creds.json"), []byte(`{"password": "f1le-pw2"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..2026_01_02", filepath.Join(root, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "..data_tmp"), filepath.Join(root, "..data")); err != nil {
		t.Fatal(err)
	}
	if _, v2, err := f.read("creds.json"); err != nil || v2 == v1 {
		t.Errorf("after the update: version %q (%v), want a new one (was %q)", v2, err, v1)
	}
	if _, v, _ := f.read("absent.json"); v != versionAbsent {
		t.Errorf("version of a missing file = %q, want absent", v)
	}
	_, u1, _ := f.read("escape.json")
	_, u2, _ := f.read("escape.json")
	if u1 != versionUnreadable || u2 != u1 {
		t.Errorf("versions of an unreadable file = %q, %q; want %q both times", u1, u2, versionUnreadable)
	}
}
