package registry

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Versions of the tools testdata/oci/tools.sh builds.
const (
	craneVersion  = "v0.21.7"
	cosignVersion = "v3.1.3"
)

// tool finds a tool built by testdata/oci/tools.sh, or skips the test saying how to build it.
func tool(t *testing.T, name, version string) string {
	t.Helper()
	cache := os.Getenv("GO_MODELVERIFY_TOOLS")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "go-modelverify", "tools")
	}
	p := filepath.Join(cache, name+"-"+version, name)
	if _, err := exec.LookPath(p); err != nil {
		t.Skipf("%s %s is not built; run testdata/oci/tools.sh %s", name, version, name)
	}
	return p
}
