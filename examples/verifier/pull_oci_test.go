package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"

	"github.com/echelongraph/go-modelverify/registry"
	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

// ociFixture is a registry holding a modelcar signed with cosign's bundle form, and a policy
// approving the registry, claiming acme/* and trusting the key.
type ociFixture struct {
	ts                                 *registrytest.TestServer
	digest, policy, cacheDir, auditLog string
}

func newOCIFixture(t *testing.T) *ociFixture {
	t.Helper()
	ts := registrytest.NewServer(t)
	d := ts.PushManifest(t, "acme/tiny", "v1", registrytest.Modelcar(registrytest.Tar(
		registrytest.File("models/config.json", tinyModel()["config.json"]),
		registrytest.File("models/model.safetensors", tinyModel()["model.safetensors"]))))
	ts.PushManifest(t, "acme/unsigned", "v1", registrytest.Modelcar(registrytest.Tar(
		registrytest.File("models/config.json", tinyModel()["config.json"]))))
	kp, err := sgsign.NewEphemeralKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.GetPublicKeyPem()
	if err != nil {
		t.Fatal(err)
	}
	stmt, _ := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": "", "digest": map[string]string{"sha256": strings.TrimPrefix(d.Digest, "sha256:")}}},
		"predicateType": registry.CosignPredicateType, "predicate": map[string]any{},
	})
	pb, err := sgsign.Bundle(&sgsign.DSSEData{Data: stmt, PayloadType: "application/vnd.in-toto+json"}, kp, sgsign.BundleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := (&bundle.Bundle{Bundle: pb}).MarshalJSON()
	ts.PushReferrer(t, "acme/tiny", registrytest.Manifest{
		ArtifactType: registry.MediaTypeSigstoreBundle,
		Config:       registrytest.Blob{MediaType: registrytest.MediaTypeEmptyJSON, Data: []byte("{}")},
		Layers:       []registrytest.Blob{{MediaType: registry.MediaTypeSigstoreBundle, Data: b}},
		Subject:      &registrytest.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size},
	})
	f := &ociFixture{ts: ts, digest: d.Digest, cacheDir: t.TempDir(), auditLog: filepath.Join(t.TempDir(), "audit.jsonl")}
	f.policy = writePolicy(t, "https://huggingface.co", "cdn-lfs.hf.co", newTestKey(t), f.auditLog, func(doc map[string]any) {
		doc["registries"] = []any{map[string]any{"host": ts.Host, "plainHTTP": true}}
		doc["publishers"] = []any{map[string]any{"name": "acme", "oci": []any{ts.Host + "/acme/*"},
			"identities": []any{map[string]any{"publicKey": map[string]any{"pem": pub}}}}}
	})
	return f
}

func TestPullOCIVerifiesAndExportsASignedModelcar(t *testing.T) {
	f := newOCIFixture(t)
	dest := filepath.Join(t.TempDir(), "model")
	out, stderr, code := runVerifier(t, t.TempDir(), "pull", f.ts.Ref("acme/tiny", "v1"), "--policy", f.policy,
		"--cache-dir", f.cacheDir, "--dest", dest, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var ev struct {
		Commit, Endpoint, Repo, Verification, Dir string
	}
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	if ev.Commit != f.digest || ev.Endpoint != "oci://"+f.ts.Host || ev.Repo != "acme/tiny" || ev.Verification != "signature" || ev.Dir != dest {
		t.Fatalf("evidence %+v", ev)
	}
	got, err := os.ReadFile(filepath.Join(dest, "model.safetensors"))
	if err != nil || string(got) != string(tinyModel()["model.safetensors"]) {
		t.Fatalf("model.safetensors in --dest: %v", err)
	}

	// Unsigned: refused with its reason, exit 1, nothing in --dest.
	refused := filepath.Join(t.TempDir(), "refused")
	_, stderr, code = runVerifier(t, t.TempDir(), "pull", f.ts.Ref("acme/unsigned", "v1"), "--policy", f.policy,
		"--cache-dir", f.cacheDir, "--dest", refused)
	if code != 1 || !strings.Contains(stderr, "unsigned") {
		t.Fatalf("unsigned: exit %d: %s", code, stderr)
	}
	if entries, _ := os.ReadDir(refused); len(entries) != 0 {
		t.Fatalf("a refused model left %d entries in --dest", len(entries))
	}
}

func TestPolicyShowListsTheApprovedOCIRegistries(t *testing.T) {
	f := newOCIFixture(t)
	out, _ := wantExit(t, 0, t.TempDir(), "policy", "show", f.policy)
	for _, want := range []string{
		"approved registries (oci://):\n  -          " + f.ts.Host + " (plain HTTP, loopback): every repository\n",
		"    oci:             " + f.ts.Host + "/acme/* (digest not required)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
}

func TestPolicyExplainOCIReferences(t *testing.T) {
	f := newOCIFixture(t)
	out, _ := wantExit(t, 0, t.TempDir(), "policy", "explain", f.policy, f.ts.Ref("acme/tiny", "v1"))
	for _, want := range []string{"registry", f.ts.Host + " is an approved registry", "acme claims " + f.ts.Host + "/acme/tiny",
		"cosign signature of the digest", "decision: proceeds to the online checks"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
	out, _ = wantExit(t, 1, t.TempDir(), "policy", "explain", f.policy, "oci://quay.io/acme/tiny:v1")
	if !strings.Contains(out, "quay.io is not one of the policy's registries") || !strings.Contains(out, "refused by the policy alone: endpoint-not-allowed") {
		t.Errorf("explain of an unapproved registry:\n%s", out)
	}
	// --online runs the verification, in a temporary cache.
	out, _ = wantExit(t, 0, t.TempDir(), "policy", "explain", f.policy, f.ts.Ref("acme/tiny", "v1"), "--online")
	if !strings.Contains(out, "online: allowed") {
		t.Errorf("explain --online:\n%s", out)
	}
	out, _ = wantExit(t, 1, t.TempDir(), "policy", "explain", f.policy, f.ts.Ref("acme/unsigned", "v1"), "--online")
	if !strings.Contains(out, "unsigned") {
		t.Errorf("explain --online of an unsigned image:\n%s", out)
	}
}
