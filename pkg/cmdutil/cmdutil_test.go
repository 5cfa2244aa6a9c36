package cmdutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateBindAddress(t *testing.T) {
	tests := map[string]struct {
		addr string
		want []string // substrings of the errors; none: valid
	}{
		"disabled":     {addr: "0"},
		"port only":    {addr: ":8080"},
		"ip and port":  {addr: "127.0.0.1:9443"},
		"host name":    {addr: "ebb-operator.ebb-system.svc:9443"},
		"no port":      {addr: "localhost", want: []string{"not a host:port", `"0" turns the server off`}},
		"bad port":     {addr: ":http", want: []string{"not a number"}},
		"port too big": {addr: ":70000", want: []string{"not a number"}},
		"bad host":     {addr: "a_b:80", want: []string{"neither an IP address nor a host name"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			errs := ValidateBindAddress("--x", tc.addr)
			var msgs []string
			for _, err := range errs {
				msgs = append(msgs, err.Error())
			}
			all := strings.Join(msgs, "\n")
			if len(tc.want) == 0 && len(errs) > 0 {
				t.Fatalf("unexpected errors: %s", all)
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("errors %q lack %q", all, w)
				}
			}
		})
	}
	if errs := ValidateHostPort("--x", "0"); len(errs) == 0 {
		t.Error(`ValidateHostPort("0") passed: only bind addresses may be disabled`)
	}
}

func TestValidateCertDir(t *testing.T) {
	dir := t.TempDir()
	if errs := ValidateCertDir(dir, "the server needs it"); len(errs) != 3 {
		t.Fatalf("empty dir: %v, want one error per file", errs)
	}
	for _, f := range CertFiles {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if errs := ValidateCertDir(dir, "the server needs it"); len(errs) != 0 {
		t.Errorf("full dir: %v", errs)
	}
	errs := ValidateCertDir("", "the server needs it")
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "must not be empty: the server needs it") {
		t.Errorf("no dir: %v", errs)
	}
}
