// Package testtools finds the external programs that tests run against (the kyverno CLI, gator,
// kubeconform, crane, cosign), which .ci/tools.sh builds once per version into a cache. The
// versions are read from .ci/tools.sh itself, so the script and the tests cannot disagree.
package testtools

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// RequireEnv names the variable that turns a missing tool from a skip into a failure; CI sets it,
// so that a test of a real implementation can never pass by not running.
const RequireEnv = "MODELVERIFY_REQUIRE_ENGINES"

// Find returns the path of the tool that .ci/tools.sh builds under name. When it is not built
// the test is skipped, saying how to build it, or fails if RequireEnv is set.
func Find(t testing.TB, name string) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join(root, ".ci", "tools.sh"))
	if err != nil {
		t.Fatal(err)
	}
	key := strings.ToUpper(name) + "_VERSION"
	m := regexp.MustCompile(`(?m)^` + key + `=(\S+)`).FindSubmatch(script)
	if m == nil {
		t.Fatalf(".ci/tools.sh sets no %s", key)
	}
	version := string(m[1])
	dir := os.Getenv("MODELVERIFY_TOOLS_DIR")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(cache, "modelverify-tools")
	}
	bin := filepath.Join(dir, name+"-"+version, name)
	if _, err := os.Stat(bin); err != nil {
		msg := name + " " + version + " is not built (" + bin + "): run .ci/tools.sh " + name
		if os.Getenv(RequireEnv) != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// moduleRoot is the directory holding go.mod, found upwards from the test's working directory
// (a package's own directory under go test).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
