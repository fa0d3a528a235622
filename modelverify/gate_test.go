package modelverify_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/hub/hubtest"
	"github.com/echelongraph/go-modelverify/manifest"
	"github.com/echelongraph/go-modelverify/modelverify"
)

// gateKey is a signing key made for one test run.
type gateKey struct {
	priv, pub []byte
}

func newGateKey(t testing.TB) gateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return gateKey{
		priv: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pub:  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}),
	}
}

// safetensorsFile is a valid safetensors file holding one F32 tensor of n values, each fill.
func safetensorsFile(n int, fill byte) []byte {
	values := make([]float32, n)
	for i := range values {
		values[i] = float32(fill)
	}
	return hubtest.Safetensors(map[string][]float32{"weight": values})
}

// maliciousPickle is a protocol-2 pickle that calls os.system("id") when loaded.
var maliciousPickle = []byte("\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.")

// baseModel is a small model's files, unsigned.
func baseModel() map[string][]byte {
	return map[string][]byte{
		"config.json":       []byte(`{"model_type":"tiny","hidden_size":4}`),
		"model.safetensors": safetensorsFile(64, 1),
		"tokenizer.json":    []byte(`{"version":"1.0","model":{"type":"BPE"}}`),
	}
}

// sign returns files plus a model.sig that signs them with key.
func sign(t testing.TB, files map[string][]byte, key gateKey) map[string][]byte {
	t.Helper()
	dir := writeModel(t, files)
	signer, err := manifest.NewKeySigner(key.priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	bundle, _, err := manifest.SignDir(context.Background(), dir, manifest.Options{}, signer)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{"model.sig": bundle}
	for k, v := range files {
		out[k] = v
	}
	return out
}

// gate is a hubtest Hub, a policy that trusts it and one signing key, and a Verifier over them.
type gate struct {
	t        *testing.T
	hub      *hubtest.TestServer
	key      gateKey
	cacheDir string
	auditLog string
	policy   *modelverify.Policy
	sent     *sentCounter // counts the requests of the verifiers made after settleable
}

type policyEdit func(p map[string]any)

func newGate(t *testing.T) *gate {
	t.Helper()
	g := &gate{t: t, key: newGateKey(t), cacheDir: t.TempDir()}
	g.auditLog = filepath.Join(t.TempDir(), "audit.jsonl")
	return g
}

// serve starts the Hub with one repository.
func (g *gate) serve(repoID string, files map[string][]byte, opts ...hubtest.Option) {
	g.t.Helper()
	g.hub = hubtest.NewServer(g.t, append([]hubtest.Option{hubtest.WithModel(repoID, files)}, opts...)...)
}

// verifier builds a Verifier for a policy that trusts the gate's Hub and key, after edits.
func (g *gate) verifier(edits ...policyEdit) *modelverify.Verifier {
	g.t.Helper()
	doc := map[string]any{
		"apiVersion": "modelverify.echelongraph.io/v1alpha1",
		"kind":       "ModelPolicy",
		"endpoints":  []any{map[string]any{"name": "test", "url": g.hub.URL, "cdnHosts": []any{g.hub.CDNHost()}}},
		"publishers": []any{map[string]any{
			"name":       "acme",
			"namespaces": []any{"acme"},
			"identities": []any{map[string]any{"publicKey": map[string]any{"pem": string(g.key.pub)}}},
		}},
		"content": map[string]any{},
		"audit":   map[string]any{"path": g.auditLog},
	}
	for _, e := range edits {
		e(doc)
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		g.t.Fatal(err)
	}
	p, err := modelverify.ParsePolicy(raw)
	if err != nil {
		g.t.Fatalf("policy: %v", err)
	}
	g.policy = p
	hubOpts := []hub.Option{hub.WithToken("")}
	if g.sent != nil {
		hubOpts = append(hubOpts, hub.WithTransport(g.sent))
	}
	v, err := modelverify.NewVerifier(p,
		modelverify.WithEndpoint(g.hub.URL),
		modelverify.WithCacheDir(g.cacheDir),
		modelverify.WithHubOptions(hubOpts...))
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { v.Close() })
	return v
}

// sentCounter is a transport that counts the requests a client got an answer to: each of them
// reached the Hub's handler, which logs it.
type sentCounter struct{ n atomic.Int64 }

func (c *sentCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		c.n.Add(1)
	}
	return resp, err
}

// settleable makes the verifiers built from now on count their requests, for settle.
func (g *gate) settleable() { g.sent = &sentCounter{} }

// settle waits until the Hub has logged every request the counted verifiers got an answer
// to. hubtest logs a request when its handler returns, which can be after the client has read
// the whole answer and moved on: a ResetRequests right after a verification may run before the
// last of its requests is logged, and that request then shows up as if made later.
func (g *gate) settle() {
	g.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); int64(len(g.hub.Requests())) < g.sent.n.Load(); {
		if time.Now().After(deadline) {
			g.t.Fatalf("the Hub logged %d requests, but %d were answered", len(g.hub.Requests()), g.sent.n.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

// resetRequests forgets the requests the Hub has received, once every answered one is logged,
// and starts counting again.
func (g *gate) resetRequests() {
	g.t.Helper()
	g.settle()
	g.hub.ResetRequests()
	g.sent.n.Store(0)
}

func publisher(p map[string]any) map[string]any {
	return p["publishers"].([]any)[0].(map[string]any)
}

// records reads the audit log.
func (g *gate) records() []modelverify.Record {
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

// assertNothingPublished checks that a refused model left nothing loadable in the cache: no
// snapshot, no blob, no staging file.
func (g *gate) assertNothingPublished(repoID string) {
	g.t.Helper()
	repoDir := filepath.Join(g.cacheDir, hub.RepoFolderName(repoID))
	for _, sub := range []string{"snapshots", "blobs"} {
		entries, _ := os.ReadDir(filepath.Join(repoDir, sub))
		for _, e := range entries {
			g.t.Errorf("refused model left %s/%s in the cache", sub, e.Name())
		}
	}
}

func (g *gate) assertRefusedRecord(reason *modelverify.Reason) {
	g.t.Helper()
	recs := g.records()
	if len(recs) == 0 {
		g.t.Fatal("no audit record")
	}
	last := recs[len(recs)-1]
	if last.Decision != modelverify.DecisionRefused || !contains(last.Reasons, reason.Name()) {
		g.t.Fatalf("audit record %+v, want refused with %s", last, reason.Name())
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestVerifyAllowsACleanSignedModel(t *testing.T) {
	g := newGate(t)
	files := sign(t, baseModel(), g.key)
	g.serve("acme/tiny", files)
	v := g.verifier()
	m, err := v.Verify(context.Background(), "hf://acme/tiny@main")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files()) != 3 {
		t.Fatalf("files %v", m.Files())
	}
	for name, want := range baseModel() {
		got, err := os.ReadFile(filepath.Join(m.Dir(), name))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s in the snapshot: %v", name, err)
		}
		f, err := m.Open(name)
		if err != nil {
			t.Fatalf("Open(%s): %v", name, err)
		}
		f.Close()
	}
	if _, err := os.Stat(filepath.Join(m.Dir(), "model.sig")); !os.IsNotExist(err) {
		t.Fatal("the signature file is not part of the model and must not be published")
	}
	ev := m.Evidence()
	if ev.Verification != modelverify.VerifiedSignature || ev.Signer.Kind != "key" || ev.Publisher != "acme" ||
		len(ev.Commit) != 40 || ev.Decision != modelverify.DecisionAllowed || !strings.HasPrefix(ev.ManifestDigest, "sha256:") {
		t.Fatalf("evidence %+v", ev)
	}
	recs := g.records()
	if len(recs) != 1 || recs[0].Decision != modelverify.DecisionAllowed || recs[0].Commit != ev.Commit ||
		recs[0].Verification != modelverify.VerifiedSignature || recs[0].ManifestDigest != ev.ManifestDigest {
		t.Fatalf("audit %+v", recs)
	}
	if _, err := m.Open("../model.sig"); !errors.Is(err, modelverify.ErrUnexpectedFile) {
		t.Fatalf("Open outside the manifest: %v", err)
	}
}

// sameIdea are the lower packages' sentinels each reason stands for (ErrDigestMismatch's doc).
var sameIdea = map[*modelverify.Reason][]error{
	modelverify.ErrDigestMismatch:     {hub.ErrDigestMismatch, manifest.ErrMismatch},
	modelverify.ErrRedirectNotAllowed: {hub.ErrRedirectNotAllowed},
	modelverify.ErrMissingFile:        {manifest.ErrMismatch},
	modelverify.ErrUnexpectedFile:     {manifest.ErrMismatch},
}

func TestVerifyRefusals(t *testing.T) {
	type tc struct {
		name   string
		repo   string
		files  func(g *gate) map[string][]byte
		ref    string
		policy []policyEdit
		want   *modelverify.Reason
	}
	signedClean := func(g *gate) map[string][]byte { return sign(t, baseModel(), g.key) }
	cases := []tc{
		{name: "unlisted publisher", repo: "evil/tiny", files: signedClean, want: modelverify.ErrPublisherNotAllowed},
		{name: "unapproved endpoint", files: signedClean, want: modelverify.ErrEndpointNotAllowed,
			policy: []policyEdit{func(p map[string]any) {
				p["endpoints"] = []any{map[string]any{"name": "hf", "url": "https://huggingface.co"}}
			}}},
		{name: "redirect to an unapproved CDN host", files: signedClean, want: modelverify.ErrRedirectNotAllowed,
			policy: []policyEdit{func(p map[string]any) {
				p["endpoints"].([]any)[0].(map[string]any)["cdnHosts"] = []any{"cdn-lfs.hf.co"}
			}}},
		{name: "unsigned where a signature is required", files: func(*gate) map[string][]byte { return baseModel() }, want: modelverify.ErrUnsigned},
		{name: "wrong signer", files: func(g *gate) map[string][]byte { return sign(t, baseModel(), newGateKey(t)) }, want: modelverify.ErrIdentity},
		{name: "tampered shard", want: modelverify.ErrDigestMismatch, files: func(g *gate) map[string][]byte {
			f := sign(t, baseModel(), g.key)
			f["model.safetensors"] = safetensorsFile(64, 2) // same size, other bytes
			return f
		}},
		{name: "tampered plain git file", want: modelverify.ErrDigestMismatch, files: func(g *gate) map[string][]byte {
			f := sign(t, baseModel(), g.key)
			f["config.json"] = []byte(`{"model_type":"evil","hidden_size":4}`)
			return f
		}},
		{name: "extra file", want: modelverify.ErrUnexpectedFile, files: func(g *gate) map[string][]byte {
			f := sign(t, baseModel(), g.key)
			f["extra.py"] = []byte("import os\n")
			return f
		}},
		{name: "missing file", want: modelverify.ErrMissingFile, files: func(g *gate) map[string][]byte {
			f := sign(t, baseModel(), g.key)
			delete(f, "tokenizer.json")
			return f
		}},
		{name: "pickle with a dangerous global", want: modelverify.ErrUnsafeContent, files: func(g *gate) map[string][]byte {
			m := baseModel()
			m["pytorch_model.bin"] = maliciousPickle
			return sign(t, m, g.key)
		}, policy: []policyEdit{func(p map[string]any) {
			p["content"] = map[string]any{"pickle": "scan", "allowFormats": []any{"safetensors", "pickle", "json", "unknown"}}
		}}},
		{name: "pickle where pickle is denied", want: modelverify.ErrFormatNotAllowed, files: func(g *gate) map[string][]byte {
			m := baseModel()
			m["pytorch_model.bin"] = maliciousPickle
			return sign(t, m, g.key)
		}},
		{name: "unpinned revision where pinning is required", files: signedClean, want: modelverify.ErrUnpinnedRevision,
			policy: []policyEdit{func(p map[string]any) { publisher(p)["requirePinnedRevision"] = true }}},
		{name: "file over the size limit", files: signedClean, want: modelverify.ErrLimitExceeded,
			policy: []policyEdit{func(p map[string]any) { p["content"] = map[string]any{"maxFileSize": 100} }}},
		{name: "organisation not verified", files: signedClean, want: modelverify.ErrUnverifiedOrg,
			policy: []policyEdit{func(p map[string]any) { publisher(p)["requireVerifiedOrg"] = true }}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newGate(t)
			repo := c.repo
			if repo == "" {
				repo = "acme/tiny"
			}
			g.serve(repo, c.files(g))
			v := g.verifier(c.policy...)
			ref := c.ref
			if ref == "" {
				ref = "hf://" + repo + "@main"
			}
			m, err := v.Verify(context.Background(), ref)
			if err == nil {
				t.Fatalf("allowed: %+v", m.Evidence())
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("refused with %v, want %s", err, c.want.Name())
			}
			// One sentinel per idea: the lower packages' sentinels for the same idea match
			// too, and only those.
			for _, lower := range []error{hub.ErrDigestMismatch, hub.ErrRedirectNotAllowed, manifest.ErrMismatch} {
				if want := slices.Contains(sameIdea[c.want], lower); errors.Is(err, lower) != want || errors.Is(c.want, lower) != want {
					t.Errorf("errors.Is(%s refusal, %v) = %v, want %v", c.want.Name(), lower, !want, want)
				}
			}
			var r *modelverify.Refusal
			if !errors.As(err, &r) || r.Ref != ref {
				t.Fatalf("not a *Refusal for %s: %#v", ref, err)
			}
			g.assertNothingPublished(repo)
			g.assertRefusedRecord(c.want)
		})
	}
}

func TestAuditModeAllowsAndRecords(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", baseModel()) // unsigned
	v := g.verifier(func(p map[string]any) { p["mode"] = "audit" })
	m, err := v.Verify(context.Background(), "acme/tiny")
	if err != nil {
		t.Fatalf("audit mode refused: %v", err)
	}
	ev := m.Evidence()
	if ev.Decision != modelverify.DecisionAuditAllowed || len(ev.Problems) == 0 || ev.Problems[0].Reason != modelverify.ErrUnsigned {
		t.Fatalf("evidence %+v", ev)
	}
	if ev.Verification != modelverify.VerifiedIntegrity {
		t.Fatalf("an unsigned model verified against the Hub's digests proves integrity only: %s", ev.Verification)
	}
	recs := g.records()
	if len(recs) != 1 || recs[0].Decision != modelverify.DecisionAuditAllowed || !contains(recs[0].Reasons, "unsigned") {
		t.Fatalf("audit %+v", recs)
	}
}

func TestUnsignedPublisherIsVerifiedAgainstTheHubsDigests(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", baseModel())
	v := g.verifier(func(p map[string]any) {
		pub := publisher(p)
		pub["requireSignature"] = false
		delete(pub, "identities")
	})
	m, err := v.Verify(context.Background(), "acme/tiny")
	if err != nil {
		t.Fatal(err)
	}
	ev := m.Evidence()
	if ev.Verification != modelverify.VerifiedIntegrity || ev.Decision != modelverify.DecisionAllowed || len(ev.Digests) != 3 {
		t.Fatalf("evidence %+v", ev)
	}
	if got := g.records()[0].Verification; got != modelverify.VerifiedIntegrity {
		t.Fatalf("audit verification %s", got)
	}
}

func TestOpenNoticesAFileChangedAfterVerification(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", sign(t, baseModel(), g.key))
	m, err := g.verifier().Verify(context.Background(), "acme/tiny")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(m.Dir(), "model.safetensors")
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(real, 0o644)
	if err := os.WriteFile(real, safetensorsFile(64, 9), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Open("model.safetensors"); !errors.Is(err, modelverify.ErrFileChanged) {
		t.Fatalf("Open after the file changed: %v", err)
	}
	if err := m.Recheck(context.Background()); !errors.Is(err, modelverify.ErrFileChanged) {
		t.Fatalf("Recheck after the file changed: %v", err)
	}
	if f, err := m.Open("config.json"); err != nil {
		t.Fatalf("an unchanged file still opens: %v", err)
	} else {
		f.Close()
	}
}

func TestConcurrentVerifyCallsShareOneDownload(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", sign(t, baseModel(), g.key))
	g.settleable()
	v := g.verifier()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = v.Verify(context.Background(), "hf://acme/tiny@main")
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Calls that overlap share one verification; later ones find the blob in the cache.
	g.settle()
	downloads := 0
	for _, r := range g.hub.Requests() {
		if r.CDN && r.Method == "GET" {
			downloads++
		}
	}
	if downloads != 1 {
		t.Fatalf("the weights were downloaded %d times, want once", downloads)
	}
	if n := len(g.records()); n < 1 || n > 8 {
		t.Fatalf("%d audit records", n)
	}
}

func TestVerifyReusesAnUnchangedCachedModelAndRechecksAChangedOne(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", sign(t, baseModel(), g.key))
	g.settleable()
	v := g.verifier()
	ctx := context.Background()
	first, err := v.Verify(ctx, "acme/tiny")
	if err != nil {
		t.Fatal(err)
	}
	if first.Evidence().Cached {
		t.Fatal("the first verification cannot come from the cache")
	}
	g.resetRequests()
	second, err := v.Verify(ctx, "acme/tiny")
	if err != nil {
		t.Fatal(err)
	}
	if !second.Evidence().Cached || second.Dir() != first.Dir() || len(second.Files()) != 3 {
		t.Fatalf("second verification: cached=%v dir=%s", second.Evidence().Cached, second.Dir())
	}
	g.settle()
	for _, r := range g.hub.Requests() {
		if r.CDN {
			t.Fatalf("an unchanged cached model was downloaded again: %+v", r)
		}
	}
	sigFetched := false
	for _, r := range g.hub.Requests() {
		sigFetched = sigFetched || strings.HasSuffix(r.Path, "/model.sig")
	}
	if !sigFetched {
		t.Fatal("the signature must be fetched and verified again on every Verify")
	}

	// A blob changed behind the cache's back is noticed by its metadata, and the model is
	// verified afresh (the Hub client re-hashes it, finds it corrupt and fetches it again).
	real, _ := filepath.EvalSymlinks(filepath.Join(first.Dir(), "model.safetensors"))
	os.Chmod(real, 0o644)
	os.WriteFile(real, safetensorsFile(64, 7), 0o644)
	third, err := v.Verify(ctx, "acme/tiny")
	if err != nil {
		t.Fatalf("re-verifying after the cache was damaged: %v", err)
	}
	if third.Evidence().Cached {
		t.Fatal("a changed file must not be trusted from the record")
	}
	got, _ := os.ReadFile(filepath.Join(third.Dir(), "model.safetensors"))
	if !bytes.Equal(got, baseModel()["model.safetensors"]) {
		t.Fatal("the damaged blob was not replaced by the verified one")
	}
}

func TestVerifyRefusesASnapshotHoldingFilesItDidNotVerify(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", sign(t, baseModel(), g.key))
	v := g.verifier()
	m, err := v.Verify(context.Background(), "acme/tiny")
	if err != nil {
		t.Fatal(err)
	}
	// Another tool drops a pickle into the same snapshot.
	if err := os.WriteFile(filepath.Join(m.Dir(), "pytorch_model.bin"), maliciousPickle, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), "acme/tiny"); !errors.Is(err, modelverify.ErrUnexpectedFile) {
		t.Fatalf("got %v, want ErrUnexpectedFile", err)
	}
}

// writeModel writes files into a new directory.
func writeModel(t testing.TB, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestVerifyDir(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", baseModel()) // the Hub is not used by VerifyDir, but the policy names it
	v := g.verifier()
	ctx := context.Background()

	t.Run("a signed directory is allowed", func(t *testing.T) {
		dir := writeModel(t, sign(t, baseModel(), g.key))
		m, err := v.VerifyDir(ctx, dir, "acme/tiny")
		if err != nil {
			t.Fatal(err)
		}
		if m.Dir() != dir || len(m.Files()) != 3 || m.Evidence().Verification != modelverify.VerifiedSignature {
			t.Fatalf("model %s %v %+v", m.Dir(), m.Files(), m.Evidence())
		}
		f, err := m.Open("model.safetensors")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	})
	cases := []struct {
		name  string
		edit  func(t *testing.T, dir string)
		files func() map[string][]byte
		ref   string
		want  *modelverify.Reason
	}{
		{name: "tampered file", want: modelverify.ErrDigestMismatch, edit: func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "model.safetensors"), safetensorsFile(64, 3), 0o644)
		}},
		{name: "extra file", want: modelverify.ErrUnexpectedFile, edit: func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "pytorch_model.bin"), maliciousPickle, 0o644)
		}},
		{name: "missing file", want: modelverify.ErrMissingFile, edit: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "tokenizer.json"))
		}},
		{name: "symlink out of the model directory", want: modelverify.ErrUnexpectedFile, edit: func(t *testing.T, dir string) {
			outside := filepath.Join(t.TempDir(), "secret")
			os.WriteFile(outside, []byte("x"), 0o644)
			os.Symlink(outside, filepath.Join(dir, "link"))
		}},
		{name: "no signature", want: modelverify.ErrUnsigned, edit: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "model.sig"))
		}},
		{name: "another publisher's namespace", want: modelverify.ErrPublisherNotAllowed, ref: "other/tiny"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeModel(t, sign(t, baseModel(), g.key))
			if c.edit != nil {
				c.edit(t, dir)
			}
			ref := c.ref
			if ref == "" {
				ref = "acme/tiny"
			}
			if _, err := v.VerifyDir(ctx, dir, ref); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %s", err, c.want.Name())
			}
			g.assertRefusedRecord(c.want)
			if recs := g.records(); recs[len(recs)-1].Dir != dir {
				t.Fatalf("the audit record does not name the directory: %+v", recs[len(recs)-1])
			}
		})
	}
}

// namedSafetensors is a valid safetensors file with one F32 tensor called name.
func namedSafetensors(name string, n int) []byte {
	return hubtest.Safetensors(map[string][]float32{name: make([]float32, n)})
}

func TestVerifyChecksASafetensorsIndexAgainstItsShardsBeforePublishing(t *testing.T) {
	shards := func(weightMap string) map[string][]byte {
		return map[string][]byte{
			"config.json":                      []byte(`{}`),
			"model-00001-of-00002.safetensors": namedSafetensors("a", 8),
			"model-00002-of-00002.safetensors": namedSafetensors("b", 8),
			"model.safetensors.index.json":     []byte(`{"metadata":{"total_size":64},"weight_map":` + weightMap + `}`),
		}
	}
	good := `{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}`
	swapped := `{"a":"model-00002-of-00002.safetensors","b":"model-00001-of-00002.safetensors"}`

	g := newGate(t)
	g.serve("acme/sharded", sign(t, shards(good), g.key))
	if _, err := g.verifier().Verify(context.Background(), "acme/sharded"); err != nil {
		t.Fatalf("a consistent index: %v", err)
	}

	g = newGate(t)
	g.serve("acme/sharded", sign(t, shards(swapped), g.key))
	_, err := g.verifier().Verify(context.Background(), "acme/sharded")
	if !errors.Is(err, modelverify.ErrUnsafeContent) {
		t.Fatalf("an index that puts tensors in the wrong shards: %v", err)
	}
	g.assertNothingPublished("acme/sharded")
	g.assertRefusedRecord(modelverify.ErrUnsafeContent)
}

func TestPickleDenyRefusesPicklesInsideOtherFormats(t *testing.T) {
	// A NumPy object array is a pickle behind a .npy header.
	npy := []byte("\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (1,), }")
	for len(npy) < 10+0x76-1 {
		npy = append(npy, ' ')
	}
	npy = append(npy, '\n')
	npy = append(npy, maliciousPickle...)
	g := newGate(t)
	m := baseModel()
	m["arrays.npy"] = npy
	g.serve("acme/tiny", sign(t, m, g.key))
	v := g.verifier(func(p map[string]any) {
		p["content"] = map[string]any{"allowFormats": []any{"safetensors", "numpy", "unknown"}}
	})
	_, err := v.Verify(context.Background(), "acme/tiny")
	if !errors.Is(err, modelverify.ErrFormatNotAllowed) {
		t.Fatalf("got %v, want ErrFormatNotAllowed (pickle: deny)", err)
	}
}

func TestIdentityRefusalNamesTheExpectedAndTheFoundSigner(t *testing.T) {
	g := newGate(t)
	other := newGateKey(t)
	g.serve("acme/tiny", sign(t, baseModel(), other))
	_, err := g.verifier().Verify(context.Background(), "acme/tiny")
	var r *modelverify.Refusal
	if !errors.As(err, &r) || !errors.Is(err, modelverify.ErrIdentity) {
		t.Fatalf("got %v", err)
	}
	p := r.Problems[0]
	if !strings.Contains(p.Expected, "public key") || !strings.HasPrefix(p.Actual, "key with hint ") {
		t.Fatalf("expected %q, found %q", p.Expected, p.Actual)
	}
	if !strings.Contains(err.Error(), p.Actual) {
		t.Fatalf("the message does not name the signer found: %v", err)
	}
}

func TestVerifyOfflineUsesTheVerifiedCacheAndMakesNoRequest(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", sign(t, baseModel(), g.key))
	g.settleable()
	if _, err := g.verifier().Verify(context.Background(), "acme/tiny"); err != nil {
		t.Fatal(err)
	}
	g.resetRequests()
	offline, err := modelverify.NewVerifier(g.policy,
		modelverify.WithEndpoint(g.hub.URL),
		modelverify.WithCacheDir(g.cacheDir),
		modelverify.WithHubOptions(hub.WithToken(""), hub.WithOffline(true)))
	if err != nil {
		t.Fatal(err)
	}
	defer offline.Close()
	m, err := offline.Verify(context.Background(), "acme/tiny")
	if err != nil {
		t.Fatalf("offline re-verification: %v", err)
	}
	if !m.Evidence().Cached || m.Evidence().Verification != modelverify.VerifiedSignature {
		t.Fatalf("evidence %+v", m.Evidence())
	}
	if reqs := g.hub.Requests(); len(reqs) != 0 {
		t.Fatalf("offline mode made %d requests: %+v", len(reqs), reqs[0])
	}
	// A model never verified online cannot be verified offline.
	if _, err := offline.Verify(context.Background(), "acme/other"); err == nil {
		t.Fatal("an uncached model was allowed offline")
	}
}

func TestVerifyDirRefusesFilesTheSignatureLeftOut(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", baseModel())
	v := g.verifier()
	// The signer ignored pytorch_model.bin; someone put a pickle there. The caller would load
	// from this directory, so it must not pass.
	dir := writeModel(t, baseModel())
	signer, err := manifest.NewKeySigner(g.key.priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	bundle, _, err := manifest.SignDir(context.Background(), dir, manifest.Options{IgnorePaths: []string{"pytorch_model.bin"}}, signer)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "model.sig"), bundle, 0o644)
	if _, err := v.VerifyDir(context.Background(), dir, "acme/tiny"); err != nil {
		t.Fatalf("without the ignored file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "pytorch_model.bin"), maliciousPickle, 0o644)
	_, err = v.VerifyDir(context.Background(), dir, "acme/tiny")
	if !errors.Is(err, modelverify.ErrUnexpectedFile) || !strings.Contains(err.Error(), "pytorch_model.bin") {
		t.Fatalf("got %v, want ErrUnexpectedFile naming pytorch_model.bin", err)
	}
	// Git metadata is not model content and may be there.
	os.Remove(filepath.Join(dir, "pytorch_model.bin"))
	os.MkdirAll(filepath.Join(dir, ".git"), 0o755)
	os.WriteFile(filepath.Join(dir, ".git", "HEAD"), []byte("ref: refs/heads/main\n"), 0o644)
	if _, err := v.VerifyDir(context.Background(), dir, "acme/tiny"); err != nil {
		t.Fatalf("with a .git directory: %v", err)
	}
}

func TestVerifyRefusesAHubThatServesOtherBytesThanItLists(t *testing.T) {
	for _, fault := range []hubtest.Fault{
		{Kind: hubtest.FaultCorrupt, File: "model.safetensors"},             // right length, wrong bytes
		{Kind: hubtest.FaultLongBody, File: "model.safetensors", Extra: 64}, // more bytes than announced
		{Kind: hubtest.FaultCorrupt, File: "config.json"},                   // a plain git file
	} {
		t.Run(fmt.Sprintf("kind %d %s", fault.Kind, fault.File), func(t *testing.T) {
			g := newGate(t)
			g.serve("acme/tiny", sign(t, baseModel(), g.key), hubtest.WithFault(fault))
			_, err := g.verifier().Verify(context.Background(), "acme/tiny")
			var r *modelverify.Refusal
			if !errors.As(err, &r) {
				t.Fatalf("got %v, want a refusal", err)
			}
			if !errors.Is(err, modelverify.ErrDigestMismatch) && !errors.Is(err, modelverify.ErrHub) {
				t.Fatalf("got %v", err)
			}
			if !strings.Contains(err.Error(), fault.File) {
				t.Fatalf("the refusal does not name %s: %v", fault.File, err)
			}
			g.assertNothingPublished("acme/tiny")
			if recs := g.records(); len(recs) != 1 || recs[0].Decision != modelverify.DecisionRefused {
				t.Fatalf("audit %+v", recs)
			}
		})
	}
}

func TestExportWritesOnlyInsideTheDestination(t *testing.T) {
	g := newGate(t)
	files := baseModel()
	files["tokenizer/vocab.txt"] = []byte("a b c")
	g.serve("acme/tiny", sign(t, files, g.key))
	m, err := g.verifier().Verify(context.Background(), "acme/tiny")
	if err != nil {
		t.Fatal(err)
	}
	dest, outside := t.TempDir(), t.TempDir()
	// A link planted in the destination must not carry a file out of it.
	if err := os.Symlink(outside, filepath.Join(dest, "tokenizer")); err != nil {
		t.Fatal(err)
	}
	if err := m.Export(context.Background(), dest); err == nil {
		t.Fatal("exported through a symbolic link out of the destination")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("files written outside the destination: %v", entries)
	}

	clean := t.TempDir()
	if err := m.Export(context.Background(), clean); err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(clean, filepath.FromSlash(name)))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if entries, _ := os.ReadDir(clean); len(entries) != len(files) { // the staging directory is gone
		t.Fatalf("export left extra entries: %v", entries)
	}
}

func TestCodeInAModelIsRefusedUnlessThePolicyAllowsIt(t *testing.T) {
	files := baseModel()
	files["modeling_tiny.py"] = []byte("import os\nos.system('id')\n")
	g := newGate(t)
	g.serve("acme/tiny", sign(t, files, g.key))
	_, err := g.verifier().Verify(context.Background(), "acme/tiny")
	if !errors.Is(err, modelverify.ErrFormatNotAllowed) || !strings.Contains(err.Error(), "modeling_tiny.py") {
		t.Fatalf("got %v, want format-not-allowed for modeling_tiny.py", err)
	}
	g.assertNothingPublished("acme/tiny")
	v := g.verifier(func(p map[string]any) { p["content"] = map[string]any{"allowCode": true} })
	if _, err := v.Verify(context.Background(), "acme/tiny"); err != nil {
		t.Fatalf("with allowCode: %v", err)
	}
}

func TestVerifyRefusesAModelWithNothingToLoad(t *testing.T) {
	g := newGate(t)
	// manifest.Sign refuses an empty model (OMS spec 6.1), but Python model_signing signs one
	// (its issue #661): sign the statement directly, as it does.
	signer, err := manifest.NewKeySigner(g.key.priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := manifest.EncodeStatement(&manifest.Manifest{ModelName: "empty",
		Serialization: manifest.Serialization{Method: manifest.MethodFiles, HashType: manifest.SHA256, IgnorePaths: []string{"model.sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := signer.SignPayload(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	g.serve("acme/empty", map[string][]byte{"model.sig": bundle})
	_, err = g.verifier().Verify(context.Background(), "acme/empty")
	if !errors.Is(err, modelverify.ErrMissingFile) {
		t.Fatalf("got %v, want ErrMissingFile", err)
	}
	g.assertRefusedRecord(modelverify.ErrMissingFile)
}
