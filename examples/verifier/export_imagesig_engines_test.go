package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

// The kyverno-image-signatures export, run by the real kyverno CLI (kyverno apply --registry)
// against a loopback registry holding testdata/oci: a modelcar and a ModelPack artefact that the
// real cosign CLI signed with testdata/oci/cosign.pub's key, each in both signature forms (the
// Sigstore bundle referrer in the referrers tag schema, and the legacy .sig tag).

const (
	ociFixtureLayout = "../../testdata/oci/layout"
	ociFixtureKey    = "../../testdata/oci/cosign.pub"
	// The fixtures' manifest digests (testdata/oci/layout/index.json): the modelcar image is
	// the same in acme/modelcar-bundle and acme/modelcar-legacy, so is the ModelPack.
	modelcarDigest  = "sha256:47cfd9aff0a7915ce128c4c3c7c7c486a9bf4387ed5507924f393d0575cb357f"
	modelpackDigest = "sha256:fef5f74e44fbe59ef15fc5afa69522b1dd8506ef2963c188529f579f6ddf2929"
)

// copyFromLayout pushes one manifest of the fixture layout, with its config and layers, into
// repo under tag, byte for byte.
func copyFromLayout(t *testing.T, ts *registrytest.TestServer, repo, tag, digest string) {
	t.Helper()
	blob := func(d string) []byte {
		b, err := os.ReadFile(filepath.Join(ociFixtureLayout, "blobs", strings.Replace(d, ":", "/", 1)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	raw := blob(digest)
	var m struct {
		MediaType string                    `json:"mediaType"`
		Config    registrytest.Descriptor   `json:"config"`
		Layers    []registrytest.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, d := range append([]registrytest.Descriptor{m.Config}, m.Layers...) {
		ts.PushBlob(t, repo, blob(d.Digest))
	}
	ts.PushRaw(t, repo, tag, m.MediaType, raw)
}

// legacySignatureOf is the digest of the .sig manifest the layout holds for repo's subject.
func legacySignatureOf(t *testing.T, repo, subject string) string {
	t.Helper()
	var idx struct {
		Manifests []registrytest.Descriptor `json:"manifests"`
	}
	b, err := os.ReadFile(filepath.Join(ociFixtureLayout, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	want := repo + ":" + strings.Replace(subject, ":", "-", 1) + ".sig"
	for _, m := range idx.Manifests {
		if m.Annotations[registrytest.AnnotationRefName] == want {
			return m.Digest
		}
	}
	t.Fatalf("the layout has no %s", want)
	return ""
}

// bundleIndexOf is the referrers tag schema's index the layout holds for repo's subject.
func bundleIndexOf(t *testing.T, repo, subject string) []byte {
	t.Helper()
	var idx struct {
		Manifests []registrytest.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal([]byte(mustRead(t, filepath.Join(ociFixtureLayout, "index.json"))), &idx); err != nil {
		t.Fatal(err)
	}
	want := repo + ":" + strings.Replace(subject, ":", "-", 1)
	for _, m := range idx.Manifests {
		if m.Annotations[registrytest.AnnotationRefName] == want {
			return []byte(mustRead(t, filepath.Join(ociFixtureLayout, "blobs", strings.Replace(m.Digest, ":", "/", 1))))
		}
	}
	t.Fatalf("the layout has no %s", want)
	return nil
}

// exportImageSignatures writes a policy for the registry and key into dir and exports
// kyverno-image-signatures from it with the verifier itself.
func exportImageSignatures(t *testing.T, dir, host, keyPath string) string {
	t.Helper()
	key, err := filepath.Abs(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	policy := `apiVersion: modelverify.echelongraph.io/v1alpha1
kind: ModelPolicy
endpoints: [{name: hf, url: "https://huggingface.co"}]
registries:
  - host: "` + host + `"
    plainHTTP: true
publishers:
  - name: acme
    oci: ["` + host + `/acme/*"]
    requireDigest: true
    identities:
      - publicKey: {path: "` + key + `"}
`
	writeFile(t, filepath.Join(dir, "policy.yaml"), []byte(policy))
	out, _ := wantExit(t, 0, ".", "policy", "export", "kyverno-image-signatures", filepath.Join(dir, "policy.yaml"), "--image-registry", host+"/")
	dst := filepath.Join(dir, "image-signatures.yaml")
	writeFile(t, dst, []byte(out))
	return dst
}

// TestImageSignaturePolicyInKyverno: with the signer's key, pods running the signed modelcar
// or ModelPack by digest pass in either signature form; an unsigned image, an image by tag only,
// and an image carrying a .sig copied from another image are refused; an image outside the
// publisher's repositories is left alone. With another key, every signed image is refused.
// Both with and without the registry's referrers API (go-containerregistry's, which misreports
// referrer artifact types: the bundle must still be found).
func TestImageSignaturePolicyInKyverno(t *testing.T) {
	bin := engineTool(t, "kyverno")
	for _, mode := range []struct {
		name string
		opts []registrytest.Option
	}{{"tag-schema", nil}, {"referrers-api", []registrytest.Option{registrytest.WithReferrersAPI()}}} {
		t.Run(mode.name, func(t *testing.T) {
			ts := registrytest.NewServer(t, mode.opts...)
			ts.PushLayout(t, ociFixtureLayout)
			unsigned := ts.PushManifest(t, "acme/unsigned", "v1", registrytest.Modelcar(registrytest.Tar(registrytest.File("models/config.json", []byte("{}")))))
			// A .sig made for the modelcar, tagged for the ModelPack: it names the wrong digest.
			copyFromLayout(t, ts, "acme/copied", "v1", modelpackDigest)
			copyFromLayout(t, ts, "acme/copied", strings.Replace(modelpackDigest, ":", "-", 1)+".sig", legacySignatureOf(t, "acme/modelcar-legacy", modelcarDigest))
			// The modelcar's bundle referrer, listed for the ModelPack in the referrers tag
			// schema: its statement names the modelcar's digest.
			copyFromLayout(t, ts, "acme/copied-bundle", "v1", modelpackDigest)
			bundleIndex := bundleIndexOf(t, "acme/modelcar-bundle", modelcarDigest)
			var idx struct {
				Manifests []registrytest.Descriptor `json:"manifests"`
			}
			if err := json.Unmarshal(bundleIndex, &idx); err != nil || len(idx.Manifests) != 1 {
				t.Fatalf("bundle index: %v", err)
			}
			copyFromLayout(t, ts, "acme/copied-bundle", "", idx.Manifests[0].Digest)
			ts.PushRaw(t, "acme/copied-bundle", strings.Replace(modelpackDigest, ":", "-", 1), registrytest.MediaTypeOCIIndex, bundleIndex)
			other := ts.PushManifest(t, "other/x", "v1", registrytest.Modelcar(registrytest.Tar(registrytest.File("models/x", []byte("x")))))

			dir := t.TempDir()
			pods := map[string]string{
				"signed-modelcar-bundle":  "acme/modelcar-bundle@" + modelcarDigest,
				"signed-modelcar-legacy":  "acme/modelcar-legacy@" + modelcarDigest,
				"signed-modelpack-bundle": "acme/modelpack-bundle@" + modelpackDigest,
				"signed-modelpack-legacy": "acme/modelpack-legacy@" + modelpackDigest,
				"unsigned":                "acme/unsigned@" + unsigned.Digest,
				"tag-only":                "acme/modelcar-bundle:v1",
				"copied-signature":        "acme/copied@" + modelpackDigest,
				"copied-bundle":           "acme/copied-bundle@" + modelpackDigest,
				"unclaimed":               "other/x@" + other.Digest,
			}
			var docs []string
			for name, img := range pods {
				// The modelcar layout KServe makes: the model server, and the image as a sidecar.
				docs = append(docs, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: "+name+"\n  namespace: models\nspec:\n  containers:\n"+
					"  - name: kserve-container\n    image: ghcr.io/echelongraph/server@sha256:"+strings.Repeat("a", 64)+"\n"+
					"  - name: modelcar\n    image: "+ts.Host+"/"+img+"\n")
			}
			writeFile(t, filepath.Join(dir, "pods.yaml"), []byte(strings.Join(docs, "---\n")))
			signedBy := map[string]bool{"signed-modelcar-bundle": true, "signed-modelcar-legacy": true, "signed-modelpack-bundle": true,
				"signed-modelpack-legacy": true, "unclaimed": true}
			otherKey := newTestKey(t)
			for _, k := range []struct {
				name, path string
				pass       map[string]bool
			}{{"signer's key", ociFixtureKey, signedBy}, {"another key", otherKey.pubPath, map[string]bool{"unclaimed": true}}} {
				pol := exportImageSignatures(t, t.TempDir(), ts.Host, k.path)
				out, _ := runTool(t, dir, bin, "apply", pol, "--resource", "pods.yaml", "--registry", "--detailed-results", "--remove-color")
				failed := map[string]bool{}
				for _, m := range regexp.MustCompile(`resource models/Pod/(\S+) failed`).FindAllStringSubmatch(out, -1) {
					failed[m[1]] = true
				}
				if !strings.Contains(out, "error: 0") {
					t.Errorf("%s: kyverno apply reports errors:\n%s", k.name, out)
				}
				var names []string
				for name := range pods {
					names = append(names, name)
				}
				slices.Sort(names)
				for _, name := range names {
					if failed[name] == k.pass[name] {
						t.Errorf("%s: pod %s (%s): refused %v, want %v\n%s", k.name, name, pods[name], failed[name], !k.pass[name], out)
					}
				}
			}
		})
	}
}

// TestShippedImageSignaturePoliciesCarryThePublishers checks the shipped file against
// examples/policy.yaml without an engine: an ImageValidatingPolicy for acme-ml, the OCI publisher
// that requires a signature, with the identity Kyverno can check, digests required, failing
// closed; the identity with extensions left out, and google-bert (no signature) skipped, each
// said in a comment.
func TestShippedImageSignaturePoliciesCarryThePublishers(t *testing.T) {
	data, err := os.ReadFile("../admission/kyverno-image-signatures.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Publisher google-bert (registry.internal.example.com/mirror/google-bert/*) has requireSignature: false",
		"# Publisher acme-ml: identities[0] (sigstore https://github.com/acme-ml/models/.github/workflows/release.yml@refs/heads/main"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("the shipped file does not say %q", want)
		}
	}
	docs := strings.Split(string(data), "\n---\n")
	if len(docs) != 1 {
		t.Fatalf("%d policies, want 1", len(docs))
	}
	var p struct {
		APIVersion string `json:"apiVersion"`
		Kind       string
		Metadata   struct{ Name string }
		Spec       struct {
			FailurePolicy            string
			ValidationActions        []string
			ValidationConfigurations struct{ MutateDigest, VerifyDigest, Required bool }
			MatchImageReferences     []struct{ Expression string }
			Attestors                []struct {
				Name   string
				Cosign struct {
					Key     *struct{ Data string }
					Keyless *struct{ Identities []map[string]string }
					CTLog   *struct{ InsecureIgnoreTlog, InsecureIgnoreSCT bool }
				}
			}
			Validations []struct{ Expression string }
		}
	}
	if err := yaml.Unmarshal([]byte(docs[0]), &p); err != nil {
		t.Fatal(err)
	}
	s := p.Spec
	if p.APIVersion != "policies.kyverno.io/v1" || p.Kind != "ImageValidatingPolicy" || p.Metadata.Name != "modelverify-image-signatures-acme-ml" ||
		s.FailurePolicy != "Fail" || !slices.Equal(s.ValidationActions, []string{"Deny"}) ||
		!s.ValidationConfigurations.MutateDigest || !s.ValidationConfigurations.VerifyDigest || !s.ValidationConfigurations.Required ||
		len(s.Validations) != 1 || !strings.Contains(s.Validations[0].Expression, "verifyImageSignatures(i, [attestors.keyless1]) > 0") {
		t.Errorf("policy %+v", p)
	}
	a := s.Attestors
	want := map[string]string{"subjectRegExp": `^(?:^[a-z.]+@acme-ml\.example$)$`, "issuer": "https://accounts.google.com"}
	if len(a) != 1 || a[0].Name != "keyless1" || a[0].Cosign.Keyless == nil || len(a[0].Cosign.Keyless.Identities) != 1 ||
		fmt.Sprint(a[0].Cosign.Keyless.Identities[0]) != fmt.Sprint(want) || a[0].Cosign.CTLog != nil || a[0].Cosign.Key != nil {
		t.Errorf("attestors %+v", a)
	}
	if len(s.MatchImageReferences) != 1 || !strings.Contains(s.MatchImageReferences[0].Expression, `^ghcr\.io/acme-ml/models/`) {
		t.Errorf("images %+v", s.MatchImageReferences)
	}
}

// TestImageSignatureExportLeavesOutWhatKyvernoCannotCheck: a keyless identity with extension
// constraints, which Kyverno's ImageValidatingPolicy would silently ignore, is left out (its
// signatures refused), and a publisher with no other identity is an error; a policy without OCI
// publishers has nothing to export (all skips the file, the format alone fails).
func TestImageSignatureExportLeavesOutWhatKyvernoCannotCheck(t *testing.T) {
	dir := t.TempDir()
	ext := `apiVersion: modelverify.echelongraph.io/v1alpha1
kind: ModelPolicy
endpoints: [{name: hf, url: "https://huggingface.co"}]
registries: [{host: ghcr.io}]
publishers:
  - name: acme
    oci: ["ghcr.io/acme/*"]
    identities:
      - sigstore:
          identity: https://github.com/acme/models/.github/workflows/release.yml@refs/heads/main
          issuer: https://token.actions.githubusercontent.com
          extensions:
            buildTrigger: push
`
	writeFile(t, filepath.Join(dir, "ext.yaml"), []byte(ext))
	_, errOut := wantExit(t, 2, ".", "policy", "export", "kyverno-image-signatures", filepath.Join(dir, "ext.yaml"), "--image-registry", "ghcr.io/acme/")
	if !strings.Contains(errOut, "publisher acme: none of its identities can be checked by Kyverno") || !strings.Contains(errOut, "has extensions") {
		t.Errorf("stderr %q", errOut)
	}
	// A certificate identity (cosign sign --certificate, a leaf of the publisher's own CA) is
	// left out too: Kyverno's attestors cannot say "any leaf of this CA with this usage and SAN".
	ca := newTestCA(t)
	cert := `apiVersion: modelverify.echelongraph.io/v1alpha1
kind: ModelPolicy
registries: [{host: ghcr.io}]
publishers:
  - name: acme
    oci: ["ghcr.io/acme/*"]
    identities:
      - certificate:
          roots: [{path: "` + ca.rootPath + `"}]
`
	writeFile(t, filepath.Join(dir, "cert.yaml"), []byte(cert))
	_, errOut = wantExit(t, 2, ".", "policy", "export", "kyverno-image-signatures", filepath.Join(dir, "cert.yaml"), "--image-registry", "ghcr.io/acme/")
	if !strings.Contains(errOut, "publisher acme: none of its identities can be checked by Kyverno") || !strings.Contains(errOut, "identities[0] (certificate) is a leaf of a private CA") ||
		strings.Contains(strings.TrimSpace(errOut), "\n") {
		t.Errorf("stderr %q", errOut)
	}

	key := newTestKey(t)
	writeFile(t, filepath.Join(dir, "ext.yaml"), []byte(ext+"      - publicKey: {path: \""+key.pubPath+"\"}\n"))
	out, _ := wantExit(t, 0, ".", "policy", "export", "kyverno-image-signatures", filepath.Join(dir, "ext.yaml"), "--image-registry", "ghcr.io/acme/")
	if !strings.Contains(out, "# Publisher acme: identities[0] (sigstore https://github.com/acme/models/") || strings.Contains(out, "keyless:") ||
		!strings.Contains(out, "verifyImageSignatures(i, [attestors.key1])") {
		t.Errorf("export:\n%s", out)
	}
	policy := mustRead(t, "../policy.yaml")
	hfOnly := regexp.MustCompile(`(?s)\nregistries:.*?\n\n`).ReplaceAllString(policy, "\n")
	hfOnly = regexp.MustCompile(`(?m)^    oci:\n(      - .*\n)+|^    requireDigest: true\n`).ReplaceAllString(hfOnly, "")
	// Beside examples/policy.yaml, so that its relative key paths resolve.
	hf, _ := filepath.Abs("../hf-only-" + filepath.Base(dir) + ".yaml")
	writeFile(t, hf, []byte(hfOnly))
	t.Cleanup(func() { os.Remove(hf) })
	_, errOut = wantExit(t, 2, ".", "policy", "export", "kyverno-image-signatures", hf, "--image-registry", "ghcr.io/acme/")
	if !strings.Contains(errOut, "no publisher of the policy claims OCI repositories") {
		t.Errorf("stderr %q", errOut)
	}
	outDir := t.TempDir()
	_, errOut = wantExit(t, 0, ".", "policy", "export", "all", hf, "--out", outDir, "--image-registry", "ghcr.io/acme/")
	if !strings.Contains(errOut, "skipped kyverno-image-signatures") {
		t.Errorf("stderr %q", errOut)
	}
	if _, err := os.Stat(filepath.Join(outDir, "kyverno-image-signatures.yaml")); err == nil {
		t.Error("all wrote kyverno-image-signatures.yaml for a policy without OCI publishers")
	}
}

func mustRead(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestImageSignatureKeylessCarriesTheTrustRoot: a sigstore identity's publisher trustRoot (a
// trusted_root.json, or a ClientTrustConfig holding one) becomes the attestor's trustedRoot, so
// Kyverno verifies against the same root as the gate.
func TestImageSignatureKeylessCarriesTheTrustRoot(t *testing.T) {
	for _, file := range []string{"../../testdata/interop/sigstore/public-good-trusted_root.json",
		"../../testdata/interop/model-transparency/golden-payloads/custom_trust_config.json"} {
		abs, _ := filepath.Abs(file)
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "p.yaml"), []byte(`apiVersion: modelverify.echelongraph.io/v1alpha1
kind: ModelPolicy
endpoints: [{name: hf, url: "https://huggingface.co"}]
registries: [{host: ghcr.io}]
publishers:
  - name: acme
    oci: ["ghcr.io/acme/*"]
    trustRoot: "`+abs+`"
    identities:
      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}
`))
		out, _ := wantExit(t, 0, ".", "policy", "export", "kyverno-image-signatures", filepath.Join(dir, "p.yaml"), "--image-registry", "ghcr.io/acme/")
		var p struct {
			Spec struct {
				Attestors []struct {
					Cosign struct {
						Keyless     struct{ Identities []map[string]string }
						TrustedRoot struct{ Value string }
					}
				}
			}
		}
		if err := yaml.Unmarshal([]byte(out), &p); err != nil || len(p.Spec.Attestors) != 1 {
			t.Fatalf("%s: %v\n%s", file, err, out)
		}
		c := p.Spec.Attestors[0].Cosign
		var root struct {
			MediaType string `json:"mediaType"`
			Tlogs     []any  `json:"tlogs"`
		}
		if err := json.Unmarshal([]byte(c.TrustedRoot.Value), &root); err != nil || !strings.HasPrefix(root.MediaType, "application/vnd.dev.sigstore.trustedroot+json") || len(root.Tlogs) == 0 {
			t.Errorf("%s: trustedRoot %.200q (%v)", file, c.TrustedRoot.Value, err)
		}
		if fmt.Sprint(c.Keyless.Identities) != "[map[issuer:https://accounts.google.com subject:alice@acme.example]]" {
			t.Errorf("%s: identities %v", file, c.Keyless.Identities)
		}
	}
}
