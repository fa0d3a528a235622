package modelverify_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"

	"github.com/echelongraph/go-modelverify/modelverify"
	"github.com/echelongraph/go-modelverify/registry"
	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

// ociKey is a cosign-style signing key for tests.
type ociKey struct {
	kp     *sgsign.EphemeralKeypair
	pubPEM string
}

func newOCIKey(t testing.TB) ociKey {
	t.Helper()
	kp, err := sgsign.NewEphemeralKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := kp.GetPublicKeyPem()
	if err != nil {
		t.Fatal(err)
	}
	return ociKey{kp: kp, pubPEM: pem}
}

// signBundle stores a cosign v3 signature of the digest `signs` as a referrer of subject.
func (k ociKey) signBundle(t testing.TB, ts *registrytest.TestServer, repo string, subject registrytest.Descriptor, signs string) {
	t.Helper()
	stmt, _ := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": "", "digest": map[string]string{"sha256": strings.TrimPrefix(signs, "sha256:")}}},
		"predicateType": registry.CosignPredicateType,
		"predicate":     map[string]any{},
	})
	pb, err := sgsign.Bundle(&sgsign.DSSEData{Data: stmt, PayloadType: "application/vnd.in-toto+json"}, k.kp, sgsign.BundleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := (&bundle.Bundle{Bundle: pb}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	ts.PushReferrer(t, repo, registrytest.Manifest{
		ArtifactType: registry.MediaTypeSigstoreBundle,
		Config:       registrytest.Blob{MediaType: registrytest.MediaTypeEmptyJSON, Data: []byte("{}")},
		Layers:       []registrytest.Blob{{MediaType: registry.MediaTypeSigstoreBundle, Data: b}},
		Subject:      &registrytest.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations:  map[string]string{"dev.sigstore.bundle.content": "dsse-envelope", "dev.sigstore.bundle.predicateType": registry.CosignPredicateType},
	})
}

// signLegacy stores a cosign v2 sha256-<hex>.sig tag for tagDigest whose payload names signs.
func (k ociKey) signLegacy(t testing.TB, ts *registrytest.TestServer, repo, tagDigest, signs string) {
	t.Helper()
	payload, _ := json.Marshal(map[string]any{"critical": map[string]any{
		"identity": map[string]string{"docker-reference": ts.Host + "/" + repo},
		"image":    map[string]string{"docker-manifest-digest": signs},
		"type":     registry.SimpleSigningType,
	}, "optional": nil})
	sig, _, err := k.kp.SignData(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	tag := "sha256-" + strings.TrimPrefix(tagDigest, "sha256:") + ".sig"
	ts.PushManifest(t, repo, tag, registrytest.Manifest{
		Config: registrytest.Blob{MediaType: registrytest.MediaTypeOCIConfig, Data: []byte(`{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`)},
		Layers: []registrytest.Blob{{MediaType: registry.MediaTypeSimpleSigning, Data: payload,
			Annotations: map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig)}}},
	})
}

// ociGate is a registry, a signing key and a policy approving both.
type ociGate struct {
	t        testing.TB
	ts       *registrytest.TestServer
	key      ociKey
	cacheDir string
	auditLog string
	// keyFile, when set, is the record key of every verifier; otherwise each has its own.
	keyFile string
}

func newOCIGate(t *testing.T, opts ...registrytest.Option) *ociGate {
	t.Helper()
	return &ociGate{t: t, ts: registrytest.NewServer(t, opts...), key: newOCIKey(t), cacheDir: t.TempDir(),
		auditLog: filepath.Join(t.TempDir(), "audit.jsonl")}
}

func (g *ociGate) verifier(edits ...policyEdit) *modelverify.Verifier {
	g.t.Helper()
	doc := map[string]any{
		"apiVersion": "modelverify.echelongraph.io/v1alpha1",
		"kind":       "ModelPolicy",
		"endpoints":  []any{map[string]any{"url": "https://huggingface.co"}},
		"registries": []any{map[string]any{"host": g.ts.Host, "plainHTTP": true}},
		"publishers": []any{map[string]any{
			"name":       "acme",
			"oci":        []any{g.ts.Host + "/acme/*"},
			"identities": []any{map[string]any{"publicKey": map[string]any{"pem": g.key.pubPEM}}},
		}},
		"audit": map[string]any{"path": g.auditLog},
	}
	for _, e := range edits {
		e(doc)
	}
	raw, _ := json.Marshal(doc)
	p, err := modelverify.ParsePolicy(raw)
	if err != nil {
		g.t.Fatalf("policy: %v", err)
	}
	keyFile := g.keyFile
	if keyFile == "" {
		keyFile = filepath.Join(g.t.TempDir(), "record.key")
	}
	v, err := modelverify.NewVerifier(p, modelverify.WithEnvironment(false), modelverify.WithEndpoint("https://huggingface.co"),
		modelverify.WithCacheDir(g.cacheDir), modelverify.WithRecordKeyFile(keyFile))
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { v.Close() })
	return v
}

func (g *ociGate) records() []modelverify.Record {
	g.t.Helper()
	f, err := os.Open(g.auditLog)
	if err != nil {
		g.t.Fatalf("audit log: %v", err)
	}
	defer f.Close()
	var out []modelverify.Record
	for rec, err := range modelverify.ReadAudit(f) {
		if err != nil {
			g.t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

// assertNothingPublished checks that the OCI store holds no model and no staging left over.
func (g *ociGate) assertNothingPublished() {
	g.t.Helper()
	store := filepath.Join(g.cacheDir, "oci")
	_ = filepath.WalkDir(store, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			g.t.Errorf("refused model left %s in the store", p)
		}
		if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), ".staging-") {
			g.t.Errorf("refused model left staging %s", p)
		}
		return nil
	})
}

// modelcar pushes a modelcar holding files under models/ with tag v1.
func (g *ociGate) modelcar(repo string, entries ...registrytest.Entry) registrytest.Descriptor {
	return g.ts.PushManifest(g.t, repo, "v1", registrytest.Modelcar(registrytest.Tar(entries...)))
}

func cleanEntries() []registrytest.Entry {
	return []registrytest.Entry{
		registrytest.File("models/config.json", []byte(`{"model_type":"tiny"}`)),
		registrytest.File("models/model.safetensors", safetensorsFile(64, 1)),
	}
}

func TestVerifyOCIAllowsASignedModelcarAndRecordsRegistryRepositoryDigestSigner(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts []registrytest.Option
		sign func(g *ociGate, d registrytest.Descriptor)
	}{
		{"bundle-tag-schema", nil, func(g *ociGate, d registrytest.Descriptor) { g.key.signBundle(g.t, g.ts, "acme/tiny", d, d.Digest) }},
		{"bundle-referrers-api", []registrytest.Option{registrytest.WithReferrersAPI()}, func(g *ociGate, d registrytest.Descriptor) {
			g.key.signBundle(g.t, g.ts, "acme/tiny", d, d.Digest)
		}},
		{"legacy-sig-tag", nil, func(g *ociGate, d registrytest.Descriptor) {
			g.key.signLegacy(g.t, g.ts, "acme/tiny", d.Digest, d.Digest)
		}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			g := newOCIGate(t, mode.opts...)
			d := g.modelcar("acme/tiny", cleanEntries()...)
			mode.sign(g, d)
			v := g.verifier()
			ref := g.ts.Ref("acme/tiny", "v1")
			m, err := v.Verify(context.Background(), ref)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			wantDir := filepath.Join(g.cacheDir, "oci", strings.ReplaceAll(g.ts.Host, ":", "_"), "acme", "tiny", strings.Replace(d.Digest, ":", "-", 1))
			if m.Dir() != wantDir {
				t.Fatalf("Dir = %s, want %s", m.Dir(), wantDir)
			}
			got, err := os.ReadFile(filepath.Join(m.Dir(), "config.json"))
			if err != nil || string(got) != `{"model_type":"tiny"}` {
				t.Fatalf("config.json = %q, %v", got, err)
			}
			if len(m.Files()) != 2 {
				t.Fatalf("files = %+v", m.Files())
			}
			f, err := m.Open("model.safetensors")
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			f.Close()
			ev := m.Evidence()
			if ev.Endpoint != "oci://"+g.ts.Host || ev.Repo != "acme/tiny" || ev.Commit != d.Digest || ev.Revision != "v1" ||
				ev.Verification != modelverify.VerifiedSignature || ev.Signer.Kind != "key" || ev.Publisher != "acme" {
				t.Fatalf("evidence = %+v", ev)
			}
			recs := g.records()
			last := recs[len(recs)-1]
			if last.Decision != modelverify.DecisionAllowed || last.Endpoint != "oci://"+g.ts.Host || last.Repo != "acme/tiny" ||
				last.Commit != d.Digest || !strings.HasPrefix(last.Signer, "key sha256:") || last.Files != 2 {
				t.Fatalf("audit record = %+v", last)
			}
			// A second verification of the same digest republishes it in place.
			if _, err := v.Verify(context.Background(), g.ts.Ref("acme/tiny", d.Digest)); err != nil {
				t.Fatalf("second Verify: %v", err)
			}
		})
	}
}

func TestVerifyOCIRefusals(t *testing.T) {
	hostilePickle := []byte("\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.")
	for _, tc := range []struct {
		name  string
		setup func(g *ociGate) string // returns the reference
		edits []policyEdit
		want  *modelverify.Reason
	}{
		{"unapproved registry", func(g *ociGate) string {
			d := g.modelcar("acme/tiny", cleanEntries()...)
			g.key.signBundle(g.t, g.ts, "acme/tiny", d, d.Digest)
			return g.ts.Ref("acme/tiny", "v1")
		}, []policyEdit{func(p map[string]any) {
			p["registries"] = []any{map[string]any{"host": "ghcr.io"}}
			publisher(p)["oci"] = []any{"ghcr.io/acme/*"}
		}}, modelverify.ErrEndpointNotAllowed},
		{"repository not on the registry's list", func(g *ociGate) string {
			d := g.modelcar("acme/tiny", cleanEntries()...)
			g.key.signBundle(g.t, g.ts, "acme/tiny", d, d.Digest)
			return g.ts.Ref("acme/tiny", "v1")
		}, []policyEdit{func(p map[string]any) {
			p["registries"].([]any)[0].(map[string]any)["repositories"] = []any{"prod/*"}
		}}, modelverify.ErrEndpointNotAllowed},
		{"repository no publisher claims", func(g *ociGate) string {
			d := g.modelcar("evil/tiny", cleanEntries()...)
			g.key.signBundle(g.t, g.ts, "evil/tiny", d, d.Digest)
			return g.ts.Ref("evil/tiny", "v1")
		}, nil, modelverify.ErrPublisherNotAllowed},
		{"tag where a digest is required", func(g *ociGate) string {
			d := g.modelcar("acme/tiny", cleanEntries()...)
			g.key.signBundle(g.t, g.ts, "acme/tiny", d, d.Digest)
			return g.ts.Ref("acme/tiny", "v1")
		}, []policyEdit{func(p map[string]any) { publisher(p)["requireDigest"] = true }}, modelverify.ErrUnpinnedRevision},
		{"unsigned", func(g *ociGate) string {
			g.modelcar("acme/tiny", cleanEntries()...)
			return g.ts.Ref("acme/tiny", "v1")
		}, nil, modelverify.ErrUnsigned},
		{"wrong identity", func(g *ociGate) string {
			d := g.modelcar("acme/tiny", cleanEntries()...)
			other := newOCIKey(g.t)
			other.signBundle(g.t, g.ts, "acme/tiny", d, d.Digest)
			other.signLegacy(g.t, g.ts, "acme/tiny", d.Digest, d.Digest)
			return g.ts.Ref("acme/tiny", "v1")
		}, nil, modelverify.ErrIdentity},
		{"signature copied from another image", func(g *ociGate) string {
			o := g.ts.PushManifest(g.t, "acme/other", "v1", registrytest.Modelcar(registrytest.Tar(registrytest.File("models/x.json", []byte(`{}`)))))
			d := g.modelcar("acme/tiny", cleanEntries()...)
			g.key.signBundle(g.t, g.ts, "acme/tiny", d, o.Digest)
			g.key.signLegacy(g.t, g.ts, "acme/tiny", d.Digest, o.Digest)
			return g.ts.Ref("acme/tiny", "v1")
		}, nil, modelverify.ErrSignature},
		{"layer bytes differ from the digest", func(g *ociGate) string {
			mc := registrytest.Modelcar(registrytest.Tar(cleanEntries()...))
			d := g.ts.PushManifest(g.t, "acme/tiny", "v1", mc)
			g.key.signBundle(g.t, g.ts, "acme/tiny", d, d.Digest)
			// The layer, not the config: the bytes change on the way, the digest does not.
			g.ts.AddFault(registrytest.Fault{Kind: registrytest.FaultCorrupt, Route: registrytest.RouteBlobs, Repo: "acme/tiny",
				Digest: registrytest.Digest(mc.Layers[0].Data)})
			return g.ts.Ref("acme/tiny", "v1")
		}, nil, modelverify.ErrDigestMismatch},
		{"path traversal in a layer", func(g *ociGate) string {
			d := g.modelcar("acme/tiny", append(cleanEntries(), registrytest.File("models/../../etc/evil.json", []byte(`{}`)))...)
			g.key.signBundle(g.t, g.ts, "acme/tiny", d, d.Digest)
			return g.ts.Ref("acme/tiny", "v1")
		}, nil, modelverify.ErrUnsafeContent},
		{"hostile pickle in a layer", func(g *ociGate) string {
			d := g.modelcar("acme/tiny", append(cleanEntries(), registrytest.File("models/pytorch_model.bin", hostilePickle))...)
			g.key.signBundle(g.t, g.ts, "acme/tiny", d, d.Digest)
			return g.ts.Ref("acme/tiny", "v1")
		}, []policyEdit{func(p map[string]any) {
			p["content"] = map[string]any{"pickle": "scan", "allowFormats": []any{"safetensors", "json", "pickle"}}
		}}, modelverify.ErrUnsafeContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newOCIGate(t)
			ref := tc.setup(g)
			v := g.verifier(tc.edits...)
			m, err := v.Verify(context.Background(), ref)
			if err == nil {
				t.Fatalf("Verify allowed %s: %+v", ref, m.Evidence())
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %s", err, tc.want.Name())
			}
			t.Log(err)
			var r *modelverify.Refusal
			if !errors.As(err, &r) || len(r.Problems) == 0 || r.Problems[0].Detail == "" {
				t.Fatalf("refusal without details: %#v", err)
			}
			recs := g.records()
			last := recs[len(recs)-1]
			if last.Decision != modelverify.DecisionRefused || !contains(last.Reasons, tc.want.Name()) || last.Ref != ref ||
				last.Endpoint != "oci://"+g.ts.Host || last.Repo == "" {
				t.Fatalf("audit record = %+v", last)
			}
			g.assertNothingPublished()
		})
	}
}

func TestVerifyOCIUsesTheDigestNotWhereTheTagMovedTo(t *testing.T) {
	g := newOCIGate(t)
	old := g.modelcar("acme/tiny", cleanEntries()...)
	g.key.signBundle(g.t, g.ts, "acme/tiny", old, old.Digest)
	// The tag moves to an unsigned image; a reference with both keeps to its digest.
	moved := g.modelcar("acme/tiny", registrytest.File("models/config.json", []byte(`{"model_type":"moved"}`)))
	v := g.verifier()
	m, err := v.Verify(context.Background(), g.ts.Ref("acme/tiny", "v1")+"@"+old.Digest)
	if err != nil {
		t.Fatalf("Verify by digest: %v", err)
	}
	if m.Evidence().Commit != old.Digest {
		t.Fatalf("verified %s, want %s", m.Evidence().Commit, old.Digest)
	}
	// The tag alone now names the unsigned image, and is refused as such, at its digest.
	_, err = v.Verify(context.Background(), g.ts.Ref("acme/tiny", "v1"))
	if !errors.Is(err, modelverify.ErrUnsigned) {
		t.Fatalf("moved tag: err = %v, want ErrUnsigned", err)
	}
	if recs := g.records(); recs[len(recs)-1].Commit != moved.Digest {
		t.Fatalf("record of the moved tag = %+v, want commit %s", recs[len(recs)-1], moved.Digest)
	}
}

func TestVerifyOCIAuditModeRecordsWhatEnforceWouldRefuse(t *testing.T) {
	g := newOCIGate(t)
	d := g.modelcar("acme/tiny", cleanEntries()...)
	v := g.verifier(func(p map[string]any) { p["mode"] = "audit" })
	m, err := v.Verify(context.Background(), g.ts.Ref("acme/tiny", "v1"))
	if err != nil {
		t.Fatalf("audit mode: %v", err)
	}
	ev := m.Evidence()
	if ev.Decision != modelverify.DecisionAuditAllowed || len(ev.Problems) == 0 || ev.Problems[0].Reason != modelverify.ErrUnsigned ||
		ev.Verification != modelverify.VerifiedIntegrity || ev.Commit != d.Digest {
		t.Fatalf("evidence = %+v", ev)
	}
	recs := g.records()
	if last := recs[len(recs)-1]; last.Decision != modelverify.DecisionAuditAllowed || !contains(last.Reasons, "unsigned") {
		t.Fatalf("audit record = %+v", last)
	}
}

func TestVerifyOCIRefusesWhenThePolicyHasNoRegistries(t *testing.T) {
	g := newOCIGate(t)
	d := g.modelcar("acme/tiny", cleanEntries()...)
	g.key.signBundle(g.t, g.ts, "acme/tiny", d, d.Digest)
	v := g.verifier(func(p map[string]any) {
		delete(p, "registries")
		p["publishers"] = []any{map[string]any{"name": "acme", "namespaces": []any{"acme"},
			"identities": []any{map[string]any{"publicKey": map[string]any{"pem": g.key.pubPEM}}}}}
	})
	_, err := v.Verify(context.Background(), g.ts.Ref("acme/tiny", "v1"))
	if !errors.Is(err, modelverify.ErrEndpointNotAllowed) || !strings.Contains(err.Error(), "the policy has no registries") {
		t.Fatalf("err = %v", err)
	}
	for _, r := range g.ts.Requests() {
		if strings.HasPrefix(r, "GET ") || strings.HasPrefix(r, "HEAD ") {
			t.Fatalf("a registry the policy does not approve was read from: %s", r)
		}
	}
	g.assertNothingPublished()
}

// TestVerifyOCIAcceptsTheRealCosignCLISignatures runs the gate on artefacts the real cosign
// CLI signed (testdata/oci, see make.sh): a modelcar and a ModelPack artefact, each in both
// signature forms, with the fixture's public key as the publisher's identity. The signatures
// verify; the fixture's model.safetensors is fixed text, not a safetensors file, so the content
// rules then refuse it, and the audit record names the signer.
func TestVerifyOCIAcceptsTheRealCosignCLISignatures(t *testing.T) {
	pub, err := os.ReadFile(filepath.Join("..", "testdata", "oci", "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	g := newOCIGate(t)
	g.key.pubPEM = string(pub)
	g.ts.PushLayout(t, filepath.Join("..", "testdata", "oci", "layout"))
	v := g.verifier()
	for _, repo := range []string{"acme/modelcar-bundle", "acme/modelcar-legacy", "acme/modelpack-bundle", "acme/modelpack-legacy"} {
		_, err := v.Verify(context.Background(), g.ts.Ref(repo, "v1"))
		var r *modelverify.Refusal
		if !errors.As(err, &r) || len(r.Problems) != 1 || r.Problems[0].Reason != modelverify.ErrUnsafeContent || r.Problems[0].File != "model.safetensors" {
			t.Fatalf("%s: err = %v, want only the fake safetensors file refused", repo, err)
		}
		recs := g.records()
		if last := recs[len(recs)-1]; !strings.HasPrefix(last.Signer, "key sha256:") || last.Publisher != "acme" {
			t.Fatalf("%s: record %+v, want the cosign key as signer", repo, last)
		}
	}
	g.assertNothingPublished()
}

// A second verification of a digest keeps the published tree when it holds exactly the verified
// bytes, so a Model handed out earlier still opens; a tree changed in the store is replaced.
func TestVerifyOCIRepublishesOnlyAChangedStoreTree(t *testing.T) {
	g := newOCIGate(t)
	d := g.modelcar("acme/tiny", cleanEntries()...)
	g.key.signBundle(g.t, g.ts, "acme/tiny", d, d.Digest)
	v := g.verifier()
	first, err := v.Verify(context.Background(), g.ts.Ref("acme/tiny", "v1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), g.ts.Ref("acme/tiny", d.Digest)); err != nil {
		t.Fatal(err)
	}
	f, err := first.Open("config.json")
	if err != nil {
		t.Fatalf("the first Model after a second verification: %v", err)
	}
	f.Close()

	// Someone edits the store: the next verification publishes the verified bytes again.
	p := filepath.Join(first.Dir(), "config.json")
	if err := os.WriteFile(p, []byte(`{"model_type":"evil"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := v.Verify(context.Background(), g.ts.Ref("acme/tiny", "v1"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(m.Dir(), "config.json")); string(got) != `{"model_type":"tiny"}` {
		t.Fatalf("config.json after re-verification = %q", got)
	}
	if _, err := first.Open("config.json"); !errors.Is(err, modelverify.ErrFileChanged) {
		t.Fatalf("the first Model's edited file: err = %v, want ErrFileChanged", err)
	}
}

// ModelPack artefacts and KitOps ModelKits go through the same gate as modelcars.
func TestVerifyOCIAllowsSignedModelPackAndModelKitArtefacts(t *testing.T) {
	g := newOCIGate(t)
	files := map[string][]byte{"config.json": []byte(`{"model_type":"tiny"}`), "weights/model.safetensors": safetensorsFile(16, 2)}
	v := g.verifier()
	for repo, m := range map[string]registrytest.Manifest{"acme/pack": registrytest.ModelPack(files), "acme/kit": registrytest.ModelKit(files)} {
		d := g.ts.PushManifest(t, repo, "v1", m)
		g.key.signLegacy(t, g.ts, repo, d.Digest, d.Digest)
		model, err := v.Verify(context.Background(), g.ts.Ref(repo, "v1"))
		if err != nil {
			t.Fatalf("%s: %v", repo, err)
		}
		got, err := os.ReadFile(filepath.Join(model.Dir(), "weights", "model.safetensors"))
		if err != nil || string(got) != string(files["weights/model.safetensors"]) {
			t.Fatalf("%s: weights/model.safetensors: %v", repo, err)
		}
		if ev := model.Evidence(); ev.Formats["weights/model.safetensors"] != "safetensors" || ev.Verification != modelverify.VerifiedSignature {
			t.Fatalf("%s: evidence %+v", repo, ev)
		}
	}
}

// In audit mode a registry the policy does not approve is still reached, to record what enforce
// mode would refuse, but never with the service's registry credentials.
func TestVerifyOCISendsNoCredentialsToAnUnapprovedRegistryInAuditMode(t *testing.T) {
	g := newOCIGate(t, registrytest.WithBasicAuth("svc", "s3cret"))
	d := g.modelcar("acme/tiny", cleanEntries()...)
	g.key.signBundle(g.t, g.ts, "acme/tiny", d, d.Digest)
	cfg := filepath.Join(t.TempDir(), "config.json")
	auth := base64.StdEncoding.EncodeToString([]byte("svc:s3cret"))
	if err := os.WriteFile(cfg, []byte(`{"auths":{"`+g.ts.Host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	build := func(repos ...any) *modelverify.Verifier {
		raw, _ := json.Marshal(map[string]any{
			"apiVersion": "modelverify.echelongraph.io/v1alpha1", "kind": "ModelPolicy",
			"endpoints":  []any{map[string]any{"url": "https://huggingface.co"}},
			"registries": []any{map[string]any{"host": g.ts.Host, "plainHTTP": true, "repositories": repos}},
			"publishers": []any{map[string]any{"name": "acme", "oci": []any{g.ts.Host + "/acme/*"},
				"identities": []any{map[string]any{"publicKey": map[string]any{"pem": g.key.pubPEM}}}}},
			"mode": "audit", "audit": map[string]any{"path": g.auditLog},
		})
		p, err := modelverify.ParsePolicy(raw)
		if err != nil {
			t.Fatal(err)
		}
		v, err := modelverify.NewVerifier(p, modelverify.WithEnvironment(false), modelverify.WithCacheDir(g.cacheDir),
			modelverify.WithRecordKeyFile(filepath.Join(t.TempDir(), "record.key")), modelverify.WithRegistryOptions(registry.WithDockerConfig(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		return v
	}
	// Approved, the repository is read with the credentials, and allowed.
	if _, err := build("acme/*").Verify(context.Background(), g.ts.Ref("acme/tiny", "v1")); err != nil {
		t.Fatalf("approved repository with credentials: %v", err)
	}
	v := build("approved/*")
	// acme/tiny is outside the registry's approved repositories: reached without credentials,
	// which this registry requires, so the verification cannot complete.
	_, err := v.Verify(context.Background(), g.ts.Ref("acme/tiny", "v1"))
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("unapproved repository in audit mode: err = %v, want the registry's refusal of an anonymous client", err)
	}
}

// A policy for registries alone needs no Hub endpoint: its oci:// models verify, and every
// hf:// reference is refused as coming from an unapproved endpoint. A policy approving no
// source at all is a mistake, said at load.
func TestAPolicyForRegistriesAloneNeedsNoHubEndpoint(t *testing.T) {
	g := newOCIGate(t)
	d := g.modelcar("acme/tiny", cleanEntries()...)
	g.key.signBundle(g.t, g.ts, "acme/tiny", d, d.Digest)
	v := g.verifier(func(p map[string]any) { delete(p, "endpoints") })
	if _, err := v.Verify(context.Background(), g.ts.Ref("acme/tiny", "v1")); err != nil {
		t.Fatalf("Verify oci://: %v", err)
	}
	_, err := v.Verify(context.Background(), "hf://acme/tiny")
	if !errors.Is(err, modelverify.ErrEndpointNotAllowed) {
		t.Fatalf("Verify hf:// with no endpoints: %v", err)
	}

	doc := `{"apiVersion": "modelverify.echelongraph.io/v1alpha1", "kind": "ModelPolicy",
		"publishers": [{"name": "acme", "namespaces": ["acme"], "identities": [{"publicKey": {"pem": "x"}}]}]}`
	_, err = modelverify.ParsePolicy([]byte(doc))
	if err == nil || !strings.Contains(err.Error(), "approves no source") {
		t.Fatalf("a policy with neither endpoints nor registries: %v", err)
	}
}
