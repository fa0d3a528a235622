package registry

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

// The fixtures in testdata/oci were signed by the real cosign CLI (v3.1.3) with a test key, in
// both of its signature forms, and saved as an OCI image layout by crane (testdata/oci/make.sh).
const ociFixtures = "../testdata/oci"

// loadCosignFixtures pushes every tagged manifest of the fixture layout into ts.
func loadCosignFixtures(t testing.TB, ts *registrytest.TestServer) {
	t.Helper()
	ts.PushLayout(t, filepath.Join(ociFixtures, "layout"))
}

func TestCosignCLISignaturesVerifyInBothForms(t *testing.T) {
	pub, err := os.ReadFile(filepath.Join(ociFixtures, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewKeyVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := map[string]string{
		"config.json":       "{\"model_type\":\"test\",\"hidden_size\":4}\n",
		"model.safetensors": "not really safetensors, but fixed bytes for a fixture\n",
	}
	registryModes(t, func(t *testing.T, ts *registrytest.TestServer) {
		loadCosignFixtures(t, ts)
		c := testClient(t)
		for repo, want := range map[string]struct {
			format Format
			form   SignatureForm
		}{
			"acme/modelcar-bundle":  {FormatModelcar, FormBundle},
			"acme/modelcar-legacy":  {FormatModelcar, FormSimpleSigning},
			"acme/modelpack-bundle": {FormatModelPack, FormBundle},
			"acme/modelpack-legacy": {FormatModelPack, FormSimpleSigning},
		} {
			art := openRef(t, c, ts.Ref(repo, "v1"))
			if art.Format != want.format {
				t.Fatalf("%s: format %s, want %s", repo, art.Format, want.format)
			}
			vs, err := c.VerifySignature(context.Background(), art, v, verify.WithKey())
			if err != nil {
				t.Fatalf("%s: %v", repo, err)
			}
			if vs.Signature.Form != want.form {
				t.Fatalf("%s: verified a %s signature, want %s", repo, vs.Signature.Form, want.form)
			}
			if want.form == FormSimpleSigning && !strings.HasSuffix(vs.DockerReference, repo) {
				t.Fatalf("%s: docker-reference %q", repo, vs.DockerReference)
			}
			p, err := c.Pull(context.Background(), art, filepath.Join(t.TempDir(), "m"), Limits{})
			if err != nil {
				t.Fatalf("%s: %v", repo, err)
			}
			if got := readTree(t, p); !maps.Equal(got, wantFiles) {
				t.Fatalf("%s: files %v", repo, got)
			}
			// Another key refuses cosign's signature.
			if _, err := c.VerifySignature(context.Background(), art, newSigner(t).verifier(t), verify.WithKey()); !errors.Is(err, ErrSignature) {
				t.Fatalf("%s: another key: err = %v", repo, err)
			}
		}
	})
}

func TestCosignCLILegacySignatureCopiedToAnotherImageIsRefused(t *testing.T) {
	pub, _ := os.ReadFile(filepath.Join(ociFixtures, "cosign.pub"))
	v, err := NewKeyVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	ts := registrytest.NewServer(t)
	loadCosignFixtures(t, ts)
	c := testClient(t)
	car := openRef(t, c, ts.Ref("acme/modelcar-legacy", "v1"))
	pack := openRef(t, c, ts.Ref("acme/modelpack-legacy", "v1"))
	// The modelcar's genuine .sig, re-tagged as the ModelPack's.
	sigDesc := registrytest.Descriptor{MediaType: registrytest.MediaTypeOCIManifest}
	var idx struct {
		Manifests []registrytest.Descriptor `json:"manifests"`
	}
	b, _ := os.ReadFile(filepath.Join(ociFixtures, "layout", "index.json"))
	_ = json.Unmarshal(b, &idx)
	for _, m := range idx.Manifests {
		if m.Annotations["org.opencontainers.image.ref.name"] == "acme/modelcar-legacy:"+LegacySignatureTag(car.Digest) {
			sigDesc.Digest = m.Digest
		}
	}
	// Its blobs are in acme/modelcar-legacy; the copy needs them in this repository too.
	raw, err := os.ReadFile(filepath.Join(ociFixtures, "layout", "blobs", strings.Replace(sigDesc.Digest, ":", "/", 1)))
	if err != nil {
		t.Fatal(err)
	}
	var sigManifest struct {
		Config registrytest.Descriptor   `json:"config"`
		Layers []registrytest.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(raw, &sigManifest); err != nil {
		t.Fatal(err)
	}
	for _, d := range append(sigManifest.Layers, sigManifest.Config) {
		b, err := os.ReadFile(filepath.Join(ociFixtures, "layout", "blobs", strings.Replace(d.Digest, ":", "/", 1)))
		if err != nil {
			t.Fatal(err)
		}
		ts.PushBlob(t, "acme/modelpack-legacy", b)
	}
	ts.PushRaw(t, "acme/modelpack-legacy", LegacySignatureTag(pack.Digest), sigDesc.MediaType, raw)
	_, err = c.VerifySignature(context.Background(), pack, v, verify.WithKey())
	if !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "another image") {
		t.Fatalf("err = %v, want a refusal naming the copy", err)
	}
}
