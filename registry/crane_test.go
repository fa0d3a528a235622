package registry

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

// The registry helper must be a registry real tools accept, not one only this client reads.
func TestCranePullsWhatTheRegistryHelperServes(t *testing.T) {
	crane := tool(t, "crane", craneVersion)
	registryModes(t, func(t *testing.T, ts *registrytest.TestServer) {
		d := ts.PushManifest(t, "acme/car", "v1", registrytest.Modelcar(registrytest.Tar(registrytest.File("models/model.bin", []byte("weights")))))
		ts.PushManifest(t, "acme/pack", "v1", registrytest.ModelPack(map[string][]byte{"w.safetensors": []byte("w")}))
		out, err := exec.Command(crane, "digest", ts.Host+"/acme/car:v1").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != d.Digest {
			t.Fatalf("crane digest: %s %v, want %s", out, err, d.Digest)
		}
		dir := filepath.Join(t.TempDir(), "layout")
		if out, err := exec.Command(crane, "pull", "--format=oci", ts.Host+"/acme/car:v1", dir).CombinedOutput(); err != nil {
			t.Fatalf("crane pull: %s %v", out, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
			t.Fatal(err)
		}
		out, err = exec.Command(crane, "export", ts.Host+"/acme/car:v1", "-").Output()
		if err != nil || !strings.Contains(string(out), "models/model.bin") {
			t.Fatalf("crane export: %v", err)
		}
		out, err = exec.Command(crane, "manifest", ts.Host+"/acme/pack:v1").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "application/vnd.cncf.model.manifest.v1+json") {
			t.Fatalf("crane manifest: %s %v", out, err)
		}
	})
}
