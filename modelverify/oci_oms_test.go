package modelverify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/manifest"
	"github.com/echelongraph/go-modelverify/modelverify"
	"github.com/echelongraph/go-modelverify/registry"
	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

// omsKey is a model_signing key: it signs OMS bundles with this repository's manifest package.
type omsKey struct {
	signer manifest.Signer
	pubPEM string
}

func newOMSKey(t testing.TB) omsKey {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	s, err := manifest.NewKeySigner(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	return omsKey{signer: s, pubPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))}
}

// sign is model_signing sign key over files, as a model directory holding them.
func (k omsKey) sign(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	b, _, err := manifest.SignFiles(context.Background(), files, manifest.Options{ModelName: "tiny"}, k.signer)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// omsFiles is cleanEntries' model as files.
func omsFiles() map[string][]byte {
	out := map[string][]byte{}
	for _, e := range cleanEntries() {
		out[strings.TrimPrefix(e.Name, "models/")] = e.Body
	}
	return out
}

// modelcarOf pushes a modelcar holding files under /models.
func modelcarOf(g *ociGate, repo string, files map[string][]byte) registrytest.Descriptor {
	var entries []registrytest.Entry
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range files {
			if !yield(k) {
				return
			}
		}
	}) {
		entries = append(entries, registrytest.File("models/"+name, files[name]))
	}
	return g.modelcar(repo, entries...)
}

// pushOMSReferrer stores an OMS bundle as a Sigstore bundle referrer of subject, as
// oras attach --artifact-type application/vnd.dev.sigstore.bundle.v0.3+json model.sig does.
func pushOMSReferrer(g *ociGate, repo string, subject registrytest.Descriptor, bundle []byte) {
	g.ts.PushReferrer(g.t, repo, registrytest.Manifest{
		ArtifactType: registry.MediaTypeSigstoreBundle,
		Config:       registrytest.Blob{MediaType: registrytest.MediaTypeEmptyJSON, Data: []byte("{}")},
		Layers:       []registrytest.Blob{{MediaType: registry.MediaTypeSigstoreBundle, Data: bundle}},
		Subject:      &registrytest.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations:  map[string]string{"dev.sigstore.bundle.content": "dsse-envelope", "dev.sigstore.bundle.predicateType": registry.OMSPredicateType},
	})
}

// withOMSIdentity adds the model_signing key to the publisher's identities, beside cosign's.
func withOMSIdentity(k omsKey) policyEdit {
	return func(p map[string]any) {
		pub := publisher(p)
		pub["identities"] = append(pub["identities"].([]any), map[string]any{"publicKey": map[string]any{"pem": k.pubPEM}})
	}
}

func refusal(t *testing.T, err error, want *modelverify.Reason) modelverify.Problem {
	t.Helper()
	var r *modelverify.Refusal
	if !errors.As(err, &r) || !errors.Is(err, want) {
		t.Fatalf("err = %v, want %s", err, want.Name())
	}
	for _, p := range r.Problems {
		if p.Reason == want {
			return p
		}
	}
	t.Fatalf("no %s problem in %+v", want.Name(), r.Problems)
	return modelverify.Problem{}
}

// A modelcar carrying model_signing's model.sig under /models, and no cosign signature, is
// verified like a Hub model: the bundle with the publisher's identities, every file against
// its signed digest; the signature file is not part of the published model.
func TestVerifyOCIAllowsAModelcarSignedByAModelSigFile(t *testing.T) {
	g := newOCIGate(t)
	k := newOMSKey(t)
	files := omsFiles()
	files["model.sig"] = k.sign(t, files)
	d := modelcarOf(g, "acme/tiny", files)
	m, err := g.verifier(withOMSIdentity(k)).Verify(context.Background(), g.ts.Ref("acme/tiny", "v1"))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	ev := m.Evidence()
	if ev.Verification != modelverify.VerifiedSignature || ev.Signer.Kind != "key" || ev.SubjectName != "tiny" || ev.Commit != d.Digest {
		t.Fatalf("evidence = %+v", ev)
	}
	if len(ev.Signatures) != 1 || !strings.HasPrefix(ev.Signatures[0], "oms model.sig by key sha256:") {
		t.Fatalf("signatures = %q", ev.Signatures)
	}
	if ev.ManifestDigest != m.Manifest().RootDigest().String() || len(m.Files()) != 2 {
		t.Fatalf("manifest %s, files %+v", ev.ManifestDigest, m.Files())
	}
	if _, err := os.Stat(filepath.Join(m.Dir(), "model.sig")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the signature file was published: %v", err)
	}
	recs := g.records()
	if last := recs[len(recs)-1]; last.Decision != modelverify.DecisionAllowed || !slices.Equal(last.Signatures, ev.Signatures) ||
		last.ManifestDigest != ev.ManifestDigest || last.SubjectName != "tiny" {
		t.Fatalf("audit record = %+v", last)
	}

	// A ModelPack layer or a KitOps tar carrying model.sig is found the same way, and a
	// tampered file in either is refused.
	tampered := omsFiles()
	tampered["model.safetensors"] = safetensorsFile(64, 3)
	tampered["model.sig"] = files["model.sig"]
	for repo, mf := range map[string]registrytest.Manifest{
		"acme/pack": registrytest.ModelPack(files), "acme/kit": registrytest.ModelKit(files),
		"acme/pack-bad": registrytest.ModelPack(tampered), "acme/kit-bad": registrytest.ModelKit(tampered),
	} {
		g.ts.PushManifest(t, repo, "v1", mf)
		m, err := g.verifier(withOMSIdentity(k)).Verify(context.Background(), g.ts.Ref(repo, "v1"))
		if strings.HasSuffix(repo, "-bad") {
			if p := refusal(t, err, modelverify.ErrDigestMismatch); p.File != "model.safetensors" {
				t.Fatalf("%s: problem %+v", repo, p)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", repo, err)
		}
		if sigs := m.Evidence().Signatures; len(sigs) != 1 || !strings.HasPrefix(sigs[0], "oms model.sig by ") || len(m.Files()) != 2 {
			t.Fatalf("%s: signatures %q, files %+v", repo, sigs, m.Files())
		}
	}
}

// The Python model_signing CLI's own bundle (v1.1.0, key-signed, with the ignored file
// recorded in the manifest) verifies inside a modelcar; the ignored file is left out.
func TestVerifyOCIAcceptsAPythonModelSigningBundleInAModelcar(t *testing.T) {
	g := newOCIGate(t)
	dir := filepath.Join("..", "testdata", "interop", "model-transparency", "signed", "v1.1.0-elliptic-key")
	files := map[string][]byte{}
	for _, name := range []string{"signme-1", "signme-2", "ignore-me", "model.sig"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = b
	}
	modelcarOf(g, "acme/tiny", files)
	v := g.verifier(func(p map[string]any) {
		publisher(p)["identities"] = []any{map[string]any{"publicKey": map[string]any{"path": interopPublicKey}}}
		p["content"] = map[string]any{"allowFormats": []any{"text", "unknown"}}
	})
	m, err := v.Verify(context.Background(), g.ts.Ref("acme/tiny", "v1"))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	var names []string
	for _, f := range m.Files() {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, []string{"signme-1", "signme-2"}) || m.Evidence().SubjectName != "v1.1.0-elliptic-key" {
		t.Fatalf("files %v, evidence %+v", names, m.Evidence())
	}
}

func TestVerifyOCIRefusesFilesTheModelSigDoesNotSign(t *testing.T) {
	k := newOMSKey(t)
	signed := omsFiles()
	sig := k.sign(t, signed)
	signedDigest := registrytest.Digest(signed["model.safetensors"])
	for _, tc := range []struct {
		name     string
		files    func() map[string][]byte
		want     *modelverify.Reason
		file     string
		expected string
		actual   string
	}{
		{"a file not covered", func() map[string][]byte {
			f := omsFiles()
			f["extra.json"] = []byte(`{}`)
			return f
		}, modelverify.ErrUnexpectedFile, "extra.json", "", ""},
		{"a tampered file", func() map[string][]byte {
			f := omsFiles()
			f["model.safetensors"] = safetensorsFile(64, 2)
			return f
		}, modelverify.ErrDigestMismatch, "model.safetensors", signedDigest, registrytest.Digest(safetensorsFile(64, 2))},
		{"a missing file", func() map[string][]byte {
			f := omsFiles()
			delete(f, "config.json")
			return f
		}, modelverify.ErrMissingFile, "config.json", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newOCIGate(t)
			files := tc.files()
			files["model.sig"] = sig
			d := modelcarOf(g, "acme/tiny", files)
			// A valid cosign signature does not excuse a bad OMS bundle.
			g.key.signBundle(g.t, g.ts, "acme/tiny", d, d.Digest)
			_, err := g.verifier(withOMSIdentity(k)).Verify(context.Background(), g.ts.Ref("acme/tiny", "v1"))
			p := refusal(t, err, tc.want)
			if p.File != tc.file || p.Expected != tc.expected || p.Actual != tc.actual {
				t.Fatalf("problem = %+v, want file %q expected %q actual %q", p, tc.file, tc.expected, tc.actual)
			}
			g.assertNothingPublished()
		})
	}
}

// An OMS bundle stored as a referrer of the manifest signs the model's files; it is found
// through the referrers API and through its tag schema, and checked like model.sig.
func TestVerifyOCIChecksAnOMSBundleReferrer(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts []registrytest.Option
	}{{"tag-schema", nil}, {"referrers-api", []registrytest.Option{registrytest.WithReferrersAPI()}}} {
		t.Run(mode.name, func(t *testing.T) {
			g := newOCIGate(t, mode.opts...)
			k := newOMSKey(t)
			d := modelcarOf(g, "acme/tiny", omsFiles())
			pushOMSReferrer(g, "acme/tiny", d, k.sign(t, omsFiles()))
			m, err := g.verifier(withOMSIdentity(k)).Verify(context.Background(), g.ts.Ref("acme/tiny", "v1"))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if sigs := m.Evidence().Signatures; len(sigs) != 1 || !strings.HasPrefix(sigs[0], "oms referrer sha256:") {
				t.Fatalf("signatures = %q", sigs)
			}

			// Beside a valid cosign signature, both are named.
			g.key.signBundle(g.t, g.ts, "acme/tiny", d, d.Digest)
			m, err = g.verifier(withOMSIdentity(k)).Verify(context.Background(), g.ts.Ref("acme/tiny", "v1"))
			if err != nil {
				t.Fatalf("Verify with both: %v", err)
			}
			if ev := m.Evidence(); len(ev.Signatures) != 2 || !strings.HasPrefix(ev.Signatures[0], "cosign referrer sha256:") || ev.Signer.Identity != ev.Signatures[0][strings.Index(ev.Signatures[0], " by ")+4:] {
				t.Fatalf("evidence = %+v", ev)
			}

			// A bundle referrer by someone the publisher does not list refuses the model,
			// even with the valid cosign signature.
			stranger := newOMSKey(t)
			pushOMSReferrer(g, "acme/tiny", d, stranger.sign(t, omsFiles()))
			_, err = g.verifier(withOMSIdentity(k)).Verify(context.Background(), g.ts.Ref("acme/tiny", "v1"))
			if p := refusal(t, err, modelverify.ErrIdentity); !strings.HasPrefix(p.File, "referrer sha256:") {
				t.Fatalf("problem = %+v", p)
			}
		})
	}
}

func TestVerifyOCIRefusesAnOMSBundleReferrerForOtherFiles(t *testing.T) {
	g := newOCIGate(t)
	k := newOMSKey(t)
	d := modelcarOf(g, "acme/tiny", omsFiles())
	other := omsFiles()
	other["config.json"] = []byte(`{"model_type":"other"}`)
	pushOMSReferrer(g, "acme/tiny", d, k.sign(t, other))
	_, err := g.verifier(withOMSIdentity(k)).Verify(context.Background(), g.ts.Ref("acme/tiny", "v1"))
	p := refusal(t, err, modelverify.ErrDigestMismatch)
	if p.File != "config.json" || p.Expected != registrytest.Digest(other["config.json"]) || p.Actual != registrytest.Digest(omsFiles()["config.json"]) {
		t.Fatalf("problem = %+v", p)
	}
	g.assertNothingPublished()
}

// A cosign signature alone still suffices, and is named in the evidence; with neither kind of
// signature the refusal names both.
func TestVerifyOCICosignOnlyAndUnsignedModels(t *testing.T) {
	g := newOCIGate(t)
	d := g.modelcar("acme/tiny", cleanEntries()...)
	g.key.signLegacy(g.t, g.ts, "acme/tiny", d.Digest, d.Digest)
	m, err := g.verifier().Verify(context.Background(), g.ts.Ref("acme/tiny", "v1"))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if sigs := m.Evidence().Signatures; len(sigs) != 1 || !strings.HasPrefix(sigs[0], "cosign tag sha256-") || !strings.Contains(sigs[0], " by key sha256:") {
		t.Fatalf("signatures = %q", sigs)
	}
	g.modelcar("acme/unsigned", cleanEntries()...)
	_, err = g.verifier().Verify(context.Background(), g.ts.Ref("acme/unsigned", "v1"))
	if p := refusal(t, err, modelverify.ErrUnsigned); !strings.Contains(p.Detail, "no cosign signature") || !strings.Contains(p.Detail, "no OMS bundle (model.sig in the model") {
		t.Fatalf("problem = %+v", p)
	}
}

// BenchmarkVerifyOCIModelSig compares a modelcar of 16 files (32 MiB) signed by cosign alone
// with the same model carrying model.sig: the OMS check of whole-file SHA-256 manifests uses
// the digests computed while the layers streamed, so it should cost little more than reading
// the bundle.
func BenchmarkVerifyOCIModelSig(b *testing.B) {
	files := map[string][]byte{"config.json": []byte(`{"model_type":"tiny"}`)}
	for i := range 15 {
		files[fmt.Sprintf("shard-%02d.safetensors", i)] = safetensorsFile(512*1024, byte(i))
	}
	for _, withOMS := range []bool{false, true} {
		b.Run(map[bool]string{false: "cosign-only", true: "cosign+model.sig"}[withOMS], func(b *testing.B) {
			g := &ociGate{t: b, ts: registrytest.NewServer(b), key: newOCIKey(b), cacheDir: b.TempDir(),
				auditLog: filepath.Join(b.TempDir(), "audit.jsonl")}
			k := newOMSKey(b)
			model := maps.Clone(files)
			if withOMS {
				s, _, err := manifest.SignFiles(context.Background(), files, manifest.Options{ModelName: "tiny"}, k.signer)
				if err != nil {
					b.Fatal(err)
				}
				model["model.sig"] = s
			}
			var entries []registrytest.Entry
			for _, name := range slices.Sorted(maps.Keys(model)) {
				entries = append(entries, registrytest.File("models/"+name, model[name]))
			}
			d := g.ts.PushManifest(b, "acme/tiny", "v1", registrytest.Modelcar(registrytest.Tar(entries...)))
			g.key.signBundle(b, g.ts, "acme/tiny", d, d.Digest)
			v := g.verifier(withOMSIdentity(k))
			b.SetBytes(int64(len(registrytest.Tar(entries...))))
			b.ResetTimer()
			for b.Loop() {
				if _, err := v.Verify(context.Background(), g.ts.Ref("acme/tiny", d.Digest)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// An OMS bundle referrer that does not verify refuses the model before a layer is pulled.
func TestVerifyOCIRefusesABadOMSBundleReferrerBeforePulling(t *testing.T) {
	g := newOCIGate(t)
	k, stranger := newOMSKey(t), newOMSKey(t)
	mc := registrytest.Modelcar(registrytest.Tar(cleanEntries()...))
	d := g.ts.PushManifest(t, "acme/tiny", "v1", mc)
	g.key.signBundle(g.t, g.ts, "acme/tiny", d, d.Digest)
	pushOMSReferrer(g, "acme/tiny", d, stranger.sign(t, omsFiles()))
	// Were the layer read, its corrupted bytes would be the refusal.
	g.ts.AddFault(registrytest.Fault{Kind: registrytest.FaultCorrupt, Route: registrytest.RouteBlobs, Repo: "acme/tiny",
		Digest: registrytest.Digest(mc.Layers[0].Data)})
	_, err := g.verifier(withOMSIdentity(k)).Verify(context.Background(), g.ts.Ref("acme/tiny", "v1"))
	if errors.Is(err, modelverify.ErrDigestMismatch) {
		t.Fatalf("the layer was pulled: %v", err)
	}
	refusal(t, err, modelverify.ErrIdentity)
	g.assertNothingPublished()
}
