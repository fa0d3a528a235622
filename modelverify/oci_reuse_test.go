package modelverify_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/modelverify"
	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

// reuseGate is an ociGate whose verifiers share one record key, as the Verifiers of one
// service (or its restarts) do: a record one wrote, the next can authenticate.
type reuseGate struct {
	*ociGate
	layers []string                // the modelcar's layer digests
	digest string                  // its manifest digest
	desc   registrytest.Descriptor // its manifest
}

// newReuseGate pushes a modelcar of entries to acme/tiny:v1, signed by the publisher unless
// unsigned.
func newReuseGate(t *testing.T, unsigned bool, entries ...registrytest.Entry) *reuseGate {
	t.Helper()
	g := &reuseGate{ociGate: newOCIGate(t)}
	g.keyFile = filepath.Join(t.TempDir(), "record.key")
	mc := registrytest.Modelcar(registrytest.Tar(entries...))
	d := g.ts.PushManifest(t, "acme/tiny", "v1", mc)
	for _, l := range mc.Layers {
		g.layers = append(g.layers, registrytest.Digest(l.Data))
	}
	g.digest, g.desc = d.Digest, d
	if !unsigned {
		g.key.signBundle(t, g.ts, "acme/tiny", d, d.Digest)
	}
	return g
}

// layerFetches counts the requests for the modelcar's layer blobs so far.
func (g *reuseGate) layerFetches() int {
	n := 0
	for _, req := range g.ts.Requests() {
		for _, l := range g.layers {
			if strings.HasPrefix(req, "GET ") && strings.HasSuffix(req, "/blobs/"+l) {
				n++
			}
		}
	}
	return n
}

// manifestFetches counts the GET requests for manifests so far (the reference, the signatures).
func (g *reuseGate) manifestFetches() int {
	n := 0
	for _, req := range g.ts.Requests() {
		if strings.HasPrefix(req, "GET ") && strings.Contains(req, "/manifests/") {
			n++
		}
	}
	return n
}

func (g *reuseGate) recordPath() string {
	return filepath.Join(g.cacheDir, ".modelverify", "oci", strings.ReplaceAll(g.ts.Host, ":", "_"), "acme", "tiny",
		strings.Replace(g.digest, ":", "-", 1)+".json")
}

func (g *reuseGate) lastRecord() modelverify.Record {
	g.t.Helper()
	recs := g.records()
	return recs[len(recs)-1]
}

// verify runs v.Verify of acme/tiny:v1 and reports whether it pulled the layers.
func (g *reuseGate) verify(v *modelverify.Verifier) (*modelverify.Model, bool, error) {
	g.t.Helper()
	before := g.layerFetches()
	m, err := v.Verify(context.Background(), g.ts.Ref("acme/tiny", "v1"))
	return m, g.layerFetches() > before, err
}

func TestVerifyOCIReusesAPublishedDigestWithoutFetchingItsLayers(t *testing.T) {
	g := newReuseGate(t, false, cleanEntries()...)
	first, pulled, err := g.verify(g.verifier())
	if err != nil || !pulled {
		t.Fatalf("first Verify: pulled %v, %v", pulled, err)
	}
	if first.Evidence().Cached {
		t.Fatal("first Verify says it came from the store")
	}
	if _, err := os.Stat(g.recordPath()); err != nil {
		t.Fatalf("no verification record: %v", err)
	}
	// The same Verifier, and a new one as after a restart: both reuse the store.
	for i, v := range []*modelverify.Verifier{g.verifier(), g.verifier()} {
		manifests := g.manifestFetches()
		m, pulled, err := g.verify(v)
		if err != nil {
			t.Fatalf("Verify %d: %v", i, err)
		}
		if pulled {
			t.Fatalf("Verify %d fetched the layers again", i)
		}
		// The reference was resolved and the signature looked up again, online.
		if g.manifestFetches() < manifests+2 {
			t.Fatalf("Verify %d did not resolve the tag and read the signatures again: %v", i, g.ts.Requests())
		}
		ev := m.Evidence()
		if !ev.Cached || ev.Verification != modelverify.VerifiedSignature || ev.Commit != g.digest || m.Dir() != first.Dir() ||
			ev.ManifestDigest != first.Evidence().ManifestDigest || len(m.Files()) != 2 {
			t.Fatalf("reused evidence = %+v", ev)
		}
		if err := m.Recheck(context.Background()); err != nil {
			t.Fatalf("Recheck of the reused model: %v", err)
		}
		last := g.lastRecord()
		if last.Decision != modelverify.DecisionAllowed || last.VerificationRecord != modelverify.RecordReused ||
			last.Commit != g.digest || !strings.HasPrefix(last.Signer, "key sha256:") || last.Endpoint != "oci://"+g.ts.Host {
			t.Fatalf("audit record = %+v", last)
		}
	}
}

// A record never stands in for the signature: a signature that is gone is refused. (The
// layers are pulled to look for an OMS bundle inside the model, which could sign it instead.)
func TestVerifyOCIChecksTheSignatureOnlineDespiteARecord(t *testing.T) {
	g := newReuseGate(t, false, cleanEntries()...)
	v := g.verifier()
	if _, _, err := g.verify(v); err != nil {
		t.Fatal(err)
	}
	// The signature disappears (the publisher deleted it, or the registry lost it): the
	// referrers tag-schema index is gone.
	g.ts.AddFault(registrytest.Fault{Kind: registrytest.FaultStatus, Status: 404, Route: registrytest.RouteManifests,
		Repo: "acme/tiny", Digest: strings.Replace(g.digest, ":", "-", 1)})
	_, _, err := g.verify(v)
	if !errors.Is(err, modelverify.ErrUnsigned) {
		t.Fatalf("err = %v, want unsigned", err)
	}
	if last := g.lastRecord(); last.Decision != modelverify.DecisionRefused || last.VerificationRecord == modelverify.RecordReused {
		t.Fatalf("audit record = %+v", last)
	}
}

// An OMS bundle referrer pushed after the record was written is judged as a full verification
// would judge it: one by a stranger refuses the model, although its cosign signature still
// verifies and its stored files still match the record.
func TestVerifyOCIJudgesAnOMSReferrerThatAppearedAfterTheRecord(t *testing.T) {
	g := newReuseGate(t, false, cleanEntries()...)
	v := g.verifier()
	if _, _, err := g.verify(v); err != nil {
		t.Fatal(err)
	}
	m, pulled, err := g.verify(v)
	if err != nil || pulled || !m.Evidence().Cached {
		t.Fatalf("second Verify: pulled %v, %v", pulled, err)
	}
	if sigs := m.Evidence().Signatures; len(sigs) != 1 || !strings.HasPrefix(sigs[0], "cosign ") {
		t.Fatalf("a model from the store names signatures %q, want the cosign signature verified now", sigs)
	}
	stranger := newOMSKey(t)
	pushOMSReferrer(g.ociGate, "acme/tiny", g.desc, stranger.sign(t, omsFiles()))
	if _, _, err = g.verify(v); !errors.Is(err, modelverify.ErrIdentity) {
		t.Fatalf("err = %v, want the stranger's bundle refused (%s)", err, modelverify.ErrIdentity.Name())
	}
}

func TestVerifyOCIPullsAgainWhenTheStoreOrTheRecordWasEdited(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(t *testing.T, g *reuseGate, dir string)
		use  modelverify.RecordUse
	}{
		{"a weight edited in place", func(t *testing.T, g *reuseGate, dir string) {
			p := filepath.Join(dir, "model.safetensors")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)-1] ^= 0xff // same size
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, modelverify.RecordStale},
		{"a file added beside the model", func(t *testing.T, g *reuseGate, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "pytorch_model.bin"), []byte("\x80\x02cos\nsystem\n."), 0o644); err != nil {
				t.Fatal(err)
			}
		}, modelverify.RecordStale},
		{"a file removed", func(t *testing.T, g *reuseGate, dir string) {
			if err := os.Remove(filepath.Join(dir, "config.json")); err != nil {
				t.Fatal(err)
			}
		}, modelverify.RecordStale},
		{"a file replaced by a link", func(t *testing.T, g *reuseGate, dir string) {
			p := filepath.Join(dir, "config.json")
			evil := filepath.Join(t.TempDir(), "config.json")
			if err := os.WriteFile(evil, []byte(`{"model_type":"evil"}`), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(evil, p); err != nil {
				t.Fatal(err)
			}
		}, modelverify.RecordStale},
		{"the record forged to match an edited weight", func(t *testing.T, g *reuseGate, dir string) {
			p := filepath.Join(dir, "model.safetensors")
			b, _ := os.ReadFile(p)
			b[len(b)-1] ^= 0xff
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			forgeRecordStamp(t, g.recordPath(), "model.safetensors", p)
		}, modelverify.RecordUnauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newReuseGate(t, false, cleanEntries()...)
			v := g.verifier()
			first, _, err := g.verify(v)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][]byte{}
			for _, f := range first.Files() {
				want[f.Name], _ = os.ReadFile(filepath.Join(first.Dir(), f.Name))
			}
			tc.edit(t, g, first.Dir())

			m, pulled, err := g.verify(v)
			if err != nil {
				t.Fatalf("Verify after the edit: %v", err)
			}
			if !pulled {
				t.Fatal("the edited store was reused without pulling the layers")
			}
			if last := g.lastRecord(); last.VerificationRecord != tc.use || last.Decision != modelverify.DecisionAllowed {
				t.Fatalf("audit record = %+v, want verificationRecord %s", last, tc.use)
			}
			if m.Evidence().Cached {
				t.Fatal("a re-pulled model says it came from the store")
			}
			// What is handed out is the registry's model again, and nothing else.
			n := 0
			err = filepath.WalkDir(m.Dir(), func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				n++
				rel, _ := filepath.Rel(m.Dir(), p)
				got, err := os.ReadFile(p)
				if !d.Type().IsRegular() || err != nil || !bytes.Equal(got, want[rel]) {
					t.Errorf("%s after the re-pull: regular %v, %v, content differs %v", rel, d.Type().IsRegular(), err, !bytes.Equal(got, want[rel]))
				}
				return nil
			})
			if err != nil || n != len(want) {
				t.Fatalf("store holds %d files (%v), want %d", n, err, len(want))
			}
			// The re-pull wrote a fresh record, which the next Verify reuses.
			if _, pulled, err := g.verify(v); err != nil || pulled {
				t.Fatalf("Verify after the re-pull: pulled %v, %v", pulled, err)
			}
		})
	}
}

func TestVerifyOCIDoesNotReuseARecordOfAnotherPolicy(t *testing.T) {
	g := newReuseGate(t, false, cleanEntries()...)
	if _, _, err := g.verify(g.verifier()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit policyEdit
	}{
		{"audit mode", func(p map[string]any) { p["mode"] = "audit" }},
		{"other content limits", func(p map[string]any) { p["content"] = map[string]any{"maxFiles": 100} }},
	} {
		_, pulled, err := g.verify(g.verifier(tc.edit))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if last := g.lastRecord(); !pulled || last.VerificationRecord != modelverify.RecordStale {
			t.Fatalf("%s: pulled %v, verificationRecord %q: a record of another policy was reused", tc.name, pulled, last.VerificationRecord)
		}
	}
}

// As on the Hub: a decision with problems (allowed in audit mode) leaves no record, so it is
// never reused, under audit or enforce.
func TestVerifyOCIAuditModeDecisionsWithProblemsLeaveNoRecord(t *testing.T) {
	audit := func(p map[string]any) { p["mode"] = "audit" }
	allowPickle := func(p map[string]any) {
		p["content"] = map[string]any{"pickle": "scan", "allowFormats": []any{"safetensors", "json", "pickle"}}
	}
	for _, tc := range []struct {
		name     string
		unsigned bool
		entries  []registrytest.Entry
		edits    []policyEdit
		want     *modelverify.Reason
	}{
		{"unsigned", true, cleanEntries(), []policyEdit{audit}, modelverify.ErrUnsigned},
		{"hostile pickle in a layer", false,
			append(cleanEntries(), registrytest.File("models/pytorch_model.bin", []byte("\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."))),
			[]policyEdit{audit, allowPickle}, modelverify.ErrUnsafeContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newReuseGate(t, tc.unsigned, tc.entries...)
			v := g.verifier(tc.edits...)
			for i := range 2 {
				_, pulled, err := g.verify(v)
				if err != nil {
					t.Fatalf("Verify %d in audit mode: %v", i, err)
				}
				if !pulled {
					t.Fatalf("Verify %d in audit mode reused a decision with problems", i)
				}
				last := g.lastRecord()
				if last.Decision != modelverify.DecisionAuditAllowed || !contains(last.Reasons, tc.want.Name()) || last.VerificationRecord != "" {
					t.Fatalf("audit record %d = %+v", i, last)
				}
				if _, err := os.Stat(g.recordPath()); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("a decision with problems left a record: %v", err)
				}
			}
			enforce := append(tc.edits[1:], func(p map[string]any) { p["mode"] = "enforce" })
			if _, _, err := g.verify(g.verifier(enforce...)); !errors.Is(err, tc.want) {
				t.Fatalf("enforce after audit: err = %v, want %s", err, tc.want.Name())
			}
		})
	}
}

func TestVerifyOCIRecheckFullPullsOnEveryLoad(t *testing.T) {
	g := newReuseGate(t, false, cleanEntries()...)
	v := g.verifier(func(p map[string]any) { p["records"] = map[string]any{"recheck": "full"} })
	for i := range 2 {
		m, pulled, err := g.verify(v)
		if err != nil || !pulled || m.Evidence().Cached {
			t.Fatalf("Verify %d under recheck: full: pulled %v, %v", i, pulled, err)
		}
		if last := g.lastRecord(); last.VerificationRecord != modelverify.RecordDisabled {
			t.Fatalf("audit record %d = %+v", i, last)
		}
	}
	if _, err := os.Stat(g.recordPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("recheck: full left a record: %v", err)
	}
}

// A process killed while it wrote an OCI model's record leaves the record's temporary file;
// a later verification removes it once it is old (a fresh one may be a concurrent writer's).
func TestVerifyOCIRemovesStaleRecordTemporaries(t *testing.T) {
	g := newReuseGate(t, false, cleanEntries()...)
	dir := filepath.Dir(g.recordPath())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stale, fresh := filepath.Join(dir, ".tmp-stale"), filepath.Join(dir, ".tmp-fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("{"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if _, _, err := g.verify(g.verifier()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stale record temporary is still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a fresh record temporary was removed: %v", err)
	}
}
