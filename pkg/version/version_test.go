package version

import (
	"runtime"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	old := gitVersion
	t.Cleanup(func() { gitVersion = old })
	gitVersion = "v1.2.3"

	info := Get()
	if info.GitVersion != "v1.2.3" {
		t.Errorf("GitVersion = %q, want %q", info.GitVersion, "v1.2.3")
	}
	if info.GoVersion != runtime.Version() {
		t.Errorf("GoVersion = %q, want %q", info.GoVersion, runtime.Version())
	}
	if s := info.String(); !strings.HasPrefix(s, "v1.2.3 (commit ") || !strings.Contains(s, runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("String() = %q, want the version first and the platform included", s)
	}
}
