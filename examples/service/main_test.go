package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/hub/hubtest"
	"github.com/echelongraph/go-modelverify/manifest"
)

// TestServiceLoadsASignedModelAndRefusesATamperedOne builds the service and runs it as an
// operator would, against a local Hub serving a signed model and a tampered copy.
func TestServiceLoadsASignedModelAndRefusesATamperedOne(t *testing.T) {
	work := t.TempDir()
	bin := filepath.Join(work, "service")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	os.WriteFile(filepath.Join(work, "key.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
	signer, err := manifest.NewKeySigner(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil)
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(work, "model")
	os.MkdirAll(model, 0o755)
	files := map[string][]byte{
		"config.json":       []byte(`{"model_type":"tiny"}`),
		"model.safetensors": []byte("\x13\x00\x00\x00\x00\x00\x00\x00{\"__metadata__\":{}}"),
	}
	for name, data := range files {
		os.WriteFile(filepath.Join(model, name), data, 0o644)
	}
	bundle, _, err := manifest.SignDir(context.Background(), model, manifest.Options{}, signer)
	if err != nil {
		t.Fatal(err)
	}
	signed := map[string][]byte{"model.sig": bundle, "model.safetensors": files["model.safetensors"], "config.json": files["config.json"]}
	tampered := map[string][]byte{"model.sig": bundle, "model.safetensors": files["model.safetensors"], "config.json": []byte(`{"model_type":"evil"}`)}
	ts := hubtest.NewServer(t, hubtest.WithModel("acme/tiny", signed), hubtest.WithModel("acme/tiny-tampered", tampered))

	policy := fmt.Sprintf(`apiVersion: modelverify.echelongraph.io/v1alpha1
kind: ModelPolicy
endpoints:
  - url: %s
    cdnHosts: [%q]
publishers:
  - name: acme
    namespaces: [acme]
    identities:
      - publicKey: {path: key.pub}
audit:
  path: audit.jsonl
`, ts.URL, ts.CDNHost())
	os.WriteFile(filepath.Join(work, "policy.yaml"), []byte(policy), 0o644)

	run := func(ref string) (string, int) {
		cmd := exec.Command(bin, "--policy", "policy.yaml", ref)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "HF_ENDPOINT="+ts.URL, "HF_HUB_CACHE="+filepath.Join(work, "cache"), "HF_TOKEN=", "HF_HUB_OFFLINE=",
			"XDG_CONFIG_HOME="+filepath.Join(work, "config")) // the record key, out of the home directory
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), code
	}
	out, code := run("hf://acme/tiny")
	if code != 0 || !strings.Contains(out, "signature by key sha256:") || !strings.Contains(out, `config.json: {"model_type":"tiny"}`) {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	out, code = run("hf://acme/tiny-tampered")
	if code != 1 || !strings.HasPrefix(out, "tampered weights: ") || !strings.Contains(out, "config.json") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	out, code = run("hf://other/tiny")
	if code != 1 || !strings.Contains(out, "refused [publisher-not-allowed]") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	audit, _ := os.ReadFile(filepath.Join(work, "audit.jsonl"))
	if n := bytes.Count(audit, []byte("\n")); n != 3 {
		t.Fatalf("%d audit records, want 3:\n%s", n, audit)
	}
}
