package modelverify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/hub/hubtest"
	"github.com/echelongraph/go-modelverify/manifest"
	"github.com/echelongraph/go-modelverify/modelverify"
)

// An endpoint the policy does not approve is reachable in audit mode, and must never see the
// service's credentials: not HF_TOKEN from the environment, not a token the caller passed.
func TestAuditModeNeverSendsTheTokenToAnUnapprovedEndpoint(t *testing.T) {
	const token = "hf_servicetoken"
	t.Setenv("HF_TOKEN", token)
	for _, tc := range []struct {
		name string
		opts []hub.Option
	}{
		{"HF_TOKEN", nil},
		{"WithToken", []hub.Option{hub.WithToken(token)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate(t)
			g.serve("acme/tiny", sign(t, baseModel(), g.key), hubtest.WithToken(token, "svc"))
			p, err := modelverify.ParsePolicy([]byte(`
apiVersion: modelverify.echelongraph.io/v1alpha1
kind: ModelPolicy
mode: audit
endpoints: [{url: "https://hub.internal.example"}]
publishers: [{name: acme, namespaces: [acme], requireSignature: false}]
`))
			if err != nil {
				t.Fatal(err)
			}
			v, err := modelverify.NewVerifier(p, modelverify.WithEndpoint(g.hub.URL),
				modelverify.WithCacheDir(g.cacheDir), modelverify.WithAuditSink(modelverify.DiscardSink{}),
				modelverify.WithHubOptions(tc.opts...))
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			m, verr := v.Verify(context.Background(), "acme/tiny")
			reqs := g.hub.Requests()
			if len(reqs) == 0 {
				t.Fatalf("no request reached the endpoint (verify: %v)", verr)
			}
			for _, r := range reqs {
				if r.Authorization != "" {
					t.Errorf("the unapproved endpoint received %q on %s %s", r.Authorization, r.Method, r.Path)
				}
			}
			if verr == nil && m.Evidence().Decision != modelverify.DecisionAuditAllowed {
				t.Fatalf("an unapproved endpoint was %s", m.Evidence().Decision)
			}
		})
	}

	// The same Hub, approved, does get the token: the header is recorded when it is sent.
	g := newGate(t)
	g.serve("acme/tiny", sign(t, baseModel(), g.key), hubtest.WithToken(token, "svc"))
	v, err := modelverify.NewVerifier(g.verifierPolicy(), modelverify.WithEndpoint(g.hub.URL),
		modelverify.WithCacheDir(g.cacheDir))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, err := v.Verify(context.Background(), "acme/tiny"); err != nil {
		t.Fatal(err)
	}
	sent := false
	for _, r := range g.hub.Requests() {
		sent = sent || r.Authorization == "Bearer "+token
	}
	if !sent {
		t.Fatal("the approved endpoint never received the token: the test cannot see headers")
	}
}

// verifierPolicy is the policy g.verifier builds, for tests that make their own Verifier.
func (g *gate) verifierPolicy(edits ...policyEdit) *modelverify.Policy {
	g.t.Helper()
	g.verifier(edits...)
	return g.policy
}

// A model allowed in audit mode despite a digest mismatch must not come back allowed, from the
// cache, once the policy enforces: the mismatch is in a plain git file (config.json), which
// the tree gives no LFS sha256 for, so only hashing it again finds it.
func TestAnAuditAllowedMismatchIsVerifiedInFullUnderEnforce(t *testing.T) {
	g := newGate(t)
	files := sign(t, baseModel(), g.key)
	files["config.json"] = []byte(`{"model_type":"tiny","hidden_size":8}`)
	g.serve("acme/tiny", files)
	ctx := context.Background()

	m, err := g.verifier(func(p map[string]any) { p["mode"] = "audit" }).Verify(ctx, "acme/tiny")
	if err != nil {
		t.Fatalf("audit mode refused: %v", err)
	}
	if ev := m.Evidence(); ev.Decision != modelverify.DecisionAuditAllowed || len(ev.Problems) != 1 ||
		ev.Problems[0].Reason != modelverify.ErrDigestMismatch || ev.Problems[0].File != "config.json" {
		t.Fatalf("audit evidence %+v", ev)
	}

	_, err = g.verifier().Verify(ctx, "acme/tiny")
	if !errors.Is(err, modelverify.ErrDigestMismatch) {
		t.Fatalf("enforce after audit: %v", err)
	}
	var ref *modelverify.Refusal
	if !errors.As(err, &ref) || ref.Problems[0].File != "config.json" {
		t.Fatalf("refusal %+v", err)
	}
	recs := g.records()
	if len(recs) != 2 {
		t.Fatalf("%d audit records", len(recs))
	}
	if r := recs[0]; r.Decision != modelverify.DecisionAuditAllowed || !contains(r.Reasons, "digest-mismatch") {
		t.Fatalf("first record %+v", r)
	}
	if r := recs[1]; r.Decision != modelverify.DecisionRefused || !contains(r.Reasons, "digest-mismatch") ||
		r.Verification != modelverify.VerifiedNone {
		t.Fatalf("second record %+v", r)
	}
}

// A record is bound to the policy that made it: the same model, clean, verified under audit
// and then under enforce, or under enforce with one more rule, is verified in full each time.
func TestAVerificationRecordIsReusedOnlyUnderThePolicyThatMadeIt(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", sign(t, baseModel(), g.key))
	ctx := context.Background()
	cached := func(v *modelverify.Verifier) bool {
		t.Helper()
		m, err := v.Verify(ctx, "acme/tiny")
		if err != nil {
			t.Fatal(err)
		}
		if m.Evidence().Decision != modelverify.DecisionAllowed {
			t.Fatalf("decision %s", m.Evidence().Decision)
		}
		return m.Evidence().Cached
	}
	audit := func(p map[string]any) { p["mode"] = "audit" }
	limit := func(p map[string]any) { p["content"] = map[string]any{"maxFiles": 100} }
	steps := []struct {
		name   string
		v      *modelverify.Verifier
		cached bool
	}{
		{"audit, first", g.verifier(audit), false},
		{"audit, again", g.verifier(audit), true},
		{"enforce", g.verifier(), false},
		{"enforce, again", g.verifier(), true},
		{"enforce, one more rule", g.verifier(limit), false},
		{"back to the first enforce policy", g.verifier(), false},
	}
	for i, s := range steps {
		if got := cached(s.v); got != s.cached {
			t.Fatalf("%s: cached=%v, want %v", s.name, got, s.cached)
		}
		want := modelverify.RecordReused
		switch {
		case i == 0:
			want = ""
		case !s.cached:
			want = modelverify.RecordStale
		}
		if r := g.records(); r[len(r)-1].VerificationRecord != want {
			t.Fatalf("%s: audit record says %q, want %q", s.name, r[len(r)-1].VerificationRecord, want)
		}
	}
}

// The re-check compares every file's signed digests with those it was verified with, for
// manifests the tree's LFS sha256 says nothing about (sharded, BLAKE2b) and for plain git
// files.
func TestReuseComparesEveryFilesSignedDigestsWithTheVerifiedOnes(t *testing.T) {
	for _, opts := range []manifest.Options{
		{Method: manifest.MethodShards, ShardSize: 64},
		{HashType: manifest.BLAKE2b},
		{},
	} {
		t.Run(opts.Method+opts.HashType, func(t *testing.T) {
			g := newGate(t)
			g.serve("acme/tiny", signWith(t, baseModel(), g.key, opts))
			v := g.verifier()
			ctx := context.Background()
			first, err := v.Verify(ctx, "acme/tiny")
			if err != nil {
				t.Fatal(err)
			}
			if m, err := v.Verify(ctx, "acme/tiny"); err != nil || !m.Evidence().Cached {
				t.Fatalf("an unchanged model was not reused: %v", err)
			}
			if !modelverify.EditRecordSignedDigests(v, "acme/tiny", first.Evidence().Commit, func(file string, signed []string) []string {
				if file != "config.json" {
					return signed
				}
				return []string{"config.json sha256:" + strings.Repeat("0", 64)}
			}) {
				t.Fatal("no record to edit")
			}
			m, err := v.Verify(ctx, "acme/tiny")
			if err != nil {
				t.Fatal(err)
			}
			if m.Evidence().Cached {
				t.Fatal("a record whose verified digests are not the signed ones was reused")
			}
		})
	}
}

// signWith is sign with manifest options.
func signWith(t testing.TB, files map[string][]byte, key gateKey, opts manifest.Options) map[string][]byte {
	t.Helper()
	signer, err := manifest.NewKeySigner(key.priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	bundle, _, err := manifest.SignDir(context.Background(), writeModel(t, files), opts, signer)
	if err != nil {
		t.Fatal(err)
	}
	out := maps.Clone(files)
	out["model.sig"] = bundle
	return out
}

// Someone who can write the cache, but cannot read the record key, changes a weight file and
// edits the verification record to match its new metadata. The record no longer authenticates:
// the model is verified in full, the changed blob is found and replaced, and the audit log
// says the record was not trusted.
func TestAnEditedVerificationRecordIsNeverTrusted(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", sign(t, baseModel(), g.key))
	v := g.verifier()
	ctx := context.Background()
	first, err := v.Verify(ctx, "acme/tiny")
	if err != nil {
		t.Fatal(err)
	}

	blob, _ := filepath.EvalSymlinks(filepath.Join(first.Dir(), "model.safetensors"))
	os.Chmod(blob, 0o644)
	if err := os.WriteFile(blob, safetensorsFile(64, 66), 0o644); err != nil {
		t.Fatal(err)
	}
	recordPath := filepath.Join(g.cacheDir, ".modelverify", hub.RepoFolderName("acme/tiny"), first.Evidence().Commit+".json")
	forgeRecordStamp(t, recordPath, "model.safetensors", blob)

	second, err := v.Verify(ctx, "acme/tiny")
	if err != nil {
		t.Fatal(err)
	}
	if second.Evidence().Cached {
		t.Fatal("a record edited without the key was trusted")
	}
	got, _ := os.ReadFile(filepath.Join(second.Dir(), "model.safetensors"))
	if !bytes.Equal(got, baseModel()["model.safetensors"]) {
		t.Fatal("the changed blob was allowed")
	}
	recs := g.records()
	if r := recs[len(recs)-1]; r.Decision != modelverify.DecisionAllowed || r.VerificationRecord != modelverify.RecordUnauthenticated {
		t.Fatalf("audit record %+v", r)
	}
	// The full verification left a record of its own, which the next load reuses.
	if m, err := v.Verify(ctx, "acme/tiny"); err != nil || !m.Evidence().Cached {
		t.Fatalf("after the full verification: %v", err)
	}
	if r := g.records(); r[len(r)-1].VerificationRecord != modelverify.RecordReused {
		t.Fatalf("audit record %+v", r[len(r)-1])
	}
}

// forgeRecordStamp edits the record file as a cache writer would: the named file's recorded
// metadata becomes that of path now.
func forgeRecordStamp(t *testing.T, recordPath, name, path string) {
	t.Helper()
	data, err := os.ReadFile(recordPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	rec := doc["record"].(map[string]any)
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	edited := false
	for _, f := range rec["files"].([]any) {
		f := f.(map[string]any)
		if f["name"] == name {
			f["stamp"] = map[string]any{"Dev": st.Dev, "Ino": st.Ino, "Size": st.Size,
				"Mtime": st.Mtim.Nano(), "Ctime": st.Ctim.Nano()}
			edited = true
		}
	}
	if !edited {
		t.Fatalf("%s is not in the record", name)
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(recordPath, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// recheck: full hashes and scans every file on every load, from the cache, and keeps no record.
func TestRecheckFullVerifiesEveryLoadInFull(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", sign(t, baseModel(), g.key))
	v := g.verifier(func(p map[string]any) { p["records"] = map[string]any{"recheck": "full"} })
	ctx := context.Background()
	first, err := v.Verify(ctx, "acme/tiny")
	if err != nil {
		t.Fatal(err)
	}
	g.hub.ResetRequests()
	second, err := v.Verify(ctx, "acme/tiny")
	if err != nil {
		t.Fatal(err)
	}
	if second.Evidence().Cached {
		t.Fatal("recheck: full reused a record")
	}
	for _, r := range g.hub.Requests() {
		if r.CDN {
			t.Fatalf("a cached model was downloaded again: %+v", r)
		}
	}
	if r := g.records(); r[len(r)-1].VerificationRecord != modelverify.RecordDisabled {
		t.Fatalf("audit record %+v", r[len(r)-1])
	}
	recordPath := filepath.Join(g.cacheDir, ".modelverify", hub.RepoFolderName("acme/tiny"), first.Evidence().Commit+".json")
	if _, err := os.Stat(recordPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("recheck: full wrote a record: %v", err)
	}

	// Offline, the model is verified in full from the cache and the kept signature.
	offline, err := modelverify.NewVerifier(g.policy, modelverify.WithEndpoint(g.hub.URL), modelverify.WithCacheDir(g.cacheDir),
		modelverify.WithHubOptions(hub.WithToken(""), hub.WithOffline(true)))
	if err != nil {
		t.Fatal(err)
	}
	defer offline.Close()
	g.hub.ResetRequests()
	m, err := offline.Verify(ctx, "acme/tiny")
	if err != nil {
		t.Fatalf("offline with recheck: full: %v", err)
	}
	if m.Evidence().Cached || m.Evidence().Verification != modelverify.VerifiedSignature || len(g.hub.Requests()) != 0 {
		t.Fatalf("offline evidence %+v, %d requests", m.Evidence(), len(g.hub.Requests()))
	}
}

func TestTheRecordKey(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", sign(t, baseModel(), g.key))
	p := g.verifierPolicy()
	newVerifier := func(opts ...modelverify.Option) (*modelverify.Verifier, error) {
		v, err := modelverify.NewVerifier(p, append([]modelverify.Option{modelverify.WithEndpoint(g.hub.URL),
			modelverify.WithCacheDir(g.cacheDir), modelverify.WithHubOptions(hub.WithToken(""))}, opts...)...)
		if err == nil {
			t.Cleanup(func() { v.Close() })
		}
		return v, err
	}

	t.Run("made on first use, 0600", func(t *testing.T) {
		keyFile := filepath.Join(t.TempDir(), "record.key")
		if _, err := newVerifier(modelverify.WithRecordKeyFile(keyFile)); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(keyFile)
		if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() < 32 {
			t.Fatalf("key file %v %v", fi, err)
		}
		before, _ := os.ReadFile(keyFile)
		if _, err := newVerifier(modelverify.WithRecordKeyFile(keyFile)); err != nil {
			t.Fatal(err)
		}
		if after, _ := os.ReadFile(keyFile); !bytes.Equal(before, after) {
			t.Fatal("an existing key was replaced")
		}
	})
	t.Run("from the environment", func(t *testing.T) {
		keyFile := filepath.Join(t.TempDir(), "env.key")
		t.Setenv(modelverify.RecordKeyEnv, keyFile)
		if _, err := newVerifier(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(keyFile); err != nil {
			t.Fatalf("the key named by %s was not made: %v", modelverify.RecordKeyEnv, err)
		}
	})
	t.Run("inside the cache is refused", func(t *testing.T) {
		_, err := newVerifier(modelverify.WithRecordKeyFile(filepath.Join(g.cacheDir, "record.key")))
		if err == nil || !strings.Contains(err.Error(), "inside the cache") {
			t.Fatalf("a key inside the cache: %v", err)
		}
	})
	t.Run("too short is refused", func(t *testing.T) {
		keyFile := filepath.Join(t.TempDir(), "short.key")
		os.WriteFile(keyFile, []byte("secret\n"), 0o600)
		if _, err := newVerifier(modelverify.WithRecordKeyFile(keyFile)); err == nil || !strings.Contains(err.Error(), "at least 32") {
			t.Fatalf("a short key: %v", err)
		}
	})
	t.Run("a named key that cannot be made is an error", func(t *testing.T) {
		if _, err := newVerifier(modelverify.WithRecordKeyFile(filepath.Join(t.TempDir(), "no", "such", "dir", "k"))); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("no default key means every load is verified in full", func(t *testing.T) {
		// A read-only or missing home, as in many pods: the configuration directory cannot
		// be made.
		notADir := filepath.Join(t.TempDir(), "file")
		os.WriteFile(notADir, nil, 0o600)
		t.Setenv("XDG_CONFIG_HOME", notADir)
		var logged bytes.Buffer
		v, err := newVerifier(modelverify.WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logged.String(), "every load is verified in full") {
			t.Fatalf("the service is not told that records are off: %q", logged.String())
		}
		for range 2 {
			m, err := v.Verify(context.Background(), "acme/tiny")
			if err != nil {
				t.Fatal(err)
			}
			if m.Evidence().Cached {
				t.Fatal("a record was reused without a key")
			}
		}
		if r := g.records(); r[len(r)-1].VerificationRecord != modelverify.RecordDisabled {
			t.Fatalf("audit record %+v", r[len(r)-1])
		}
	})
}

// Substitution: the publisher signed acme/other; its files and signature, served as
// acme/tiny, verify against the publisher's key. requireSubjectName refuses them.
func TestRequireSubjectNameRefusesAnotherModelOfTheSameNamespace(t *testing.T) {
	g := newGate(t)
	other := signWith(t, baseModel(), g.key, manifest.Options{ModelName: "other"})
	g.serve("acme/tiny", other, hubtest.WithModel("acme/other", other),
		hubtest.WithModel("acme/named", signWith(t, baseModel(), g.key, manifest.Options{ModelName: "acme/named"})))
	ctx := context.Background()

	m, err := g.verifier().Verify(ctx, "acme/tiny")
	if err != nil {
		t.Fatalf("without the rule, any model the publisher signed passes: %v", err)
	}
	if ev := m.Evidence(); ev.SubjectName != "other" || ev.ManifestDigest == "" {
		t.Fatalf("evidence %+v", ev)
	}

	v := g.verifier(func(p map[string]any) { publisher(p)["requireSubjectName"] = true })
	_, err = v.Verify(ctx, "acme/tiny")
	if !errors.Is(err, modelverify.ErrSubjectMismatch) {
		t.Fatalf("substituted model: %v", err)
	}
	var ref *modelverify.Refusal
	errors.As(err, &ref)
	if p := ref.Problems[0]; p.Expected != "tiny or acme/tiny" || p.Actual != "other" || p.File != "model.sig" {
		t.Fatalf("problem %+v", p)
	}
	recs := g.records()
	if r := recs[len(recs)-1]; r.Decision != modelverify.DecisionRefused || r.SubjectName != "other" ||
		r.ManifestDigest != m.Evidence().ManifestDigest || !contains(r.Reasons, "subject-mismatch") {
		t.Fatalf("audit record %+v", r)
	}

	// The repository's own signature passes, by name or by id.
	for _, repo := range []string{"acme/other", "acme/named"} {
		m, err := v.Verify(ctx, repo)
		if err != nil {
			t.Fatalf("%s: %v", repo, err)
		}
		if r := g.records(); r[len(r)-1].SubjectName != m.Evidence().SubjectName || m.Evidence().SubjectName == "" {
			t.Fatalf("%s: audit record %+v, evidence %+v", repo, r[len(r)-1], m.Evidence())
		}
	}
}

// Rollback: an older commit of the repository, signed by the same publisher, verifies as well
// as the newest. A pinned manifest digest refuses it, and refuses another model as well.
func TestPinnedManifestsRefuseRollbackAndSubstitution(t *testing.T) {
	g := newGate(t)
	old := sign(t, baseModel(), g.key)
	newer := baseModel()
	newer["model.safetensors"] = safetensorsFile(64, 2)
	g.serve("acme/tiny", old, hubtest.WithModel("acme/other", sign(t, newer, g.key)))
	oldCommit, err := g.hub.Resolve("acme/tiny", "main")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.hub.Commit("acme/tiny", "main", sign(t, newer, g.key)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	latest, err := g.verifier().Verify(ctx, "acme/tiny")
	if err != nil {
		t.Fatal(err)
	}
	rollback, err := g.verifier().Verify(ctx, "acme/tiny@"+oldCommit)
	if err != nil {
		t.Fatalf("without a pin, the older signed commit passes: %v", err)
	}
	pinned := latest.Evidence().ManifestDigest

	pin := func(p map[string]any) {
		publisher(p)["pinnedManifests"] = []any{map[string]any{"repo": "acme/tiny", "digest": pinned}}
	}
	v := g.verifier(pin)
	_, err = v.Verify(ctx, "acme/tiny@"+oldCommit)
	if !errors.Is(err, modelverify.ErrManifestNotPinned) {
		t.Fatalf("rollback to %s: %v", oldCommit, err)
	}
	var ref *modelverify.Refusal
	errors.As(err, &ref)
	if p := ref.Problems[0]; p.Expected != pinned || p.Actual != rollback.Evidence().ManifestDigest {
		t.Fatalf("problem %+v", p)
	}
	recs := g.records()
	if r := recs[len(recs)-1]; r.Decision != modelverify.DecisionRefused || r.ManifestDigest != rollback.Evidence().ManifestDigest ||
		!contains(r.Reasons, "manifest-not-pinned") {
		t.Fatalf("audit record %+v", r)
	}
	// The pinned manifest loads, and a repository without pins is not affected.
	if m, err := v.Verify(ctx, "acme/tiny"); err != nil || m.Evidence().ManifestDigest != pinned {
		t.Fatalf("the pinned manifest: %v", err)
	}
	if _, err := v.Verify(ctx, "acme/other"); err != nil {
		t.Fatalf("an unpinned repository: %v", err)
	}
	// acme/other signs the same files as the pinned manifest (another model name aside):
	// pinning acme/other to acme/tiny's old manifest refuses it.
	v = g.verifier(func(p map[string]any) {
		publisher(p)["pinnedManifests"] = []any{map[string]any{"repo": "acme/other", "digest": rollback.Evidence().ManifestDigest}}
	})
	if _, err := v.Verify(ctx, "acme/other"); !errors.Is(err, modelverify.ErrManifestNotPinned) {
		t.Fatalf("another model under a pinned repository: %v", err)
	}
}

func TestPinnedManifestsAreValidated(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	key := newGateKey(t)
	pubKey := strings.ReplaceAll(string(key.pub), "\n", `\n`)
	for _, tc := range []struct {
		name, publisher, want string
	}{
		{"a pattern", `pinnedManifests: [{repo: "acme/*", digest: "` + digest + `"}]`, `pinnedManifests[0].repo: "acme/*" must be one repository`},
		{"another publisher's repository", `pinnedManifests: [{repo: "beta/x", digest: "` + digest + `"}]`, `belongs to publisher "beta"`},
		{"an unclaimed repository", `pinnedManifests: [{repo: "gamma/x", digest: "` + digest + `"}]`, `no publisher in the policy claims`},
		{"an upper-case digest", `pinnedManifests: [{repo: "acme/x", digest: "` + strings.ToUpper(digest) + `"}]`, `64 lower-case hex digits`},
		{"no algorithm", `pinnedManifests: [{repo: "acme/x", digest: "` + strings.Repeat("ab", 32) + `"}]`, `64 lower-case hex digits`},
		{"a duplicate", `pinnedManifests: [{repo: "acme/x", digest: "` + digest + `"}, {repo: "acme/x", digest: "` + digest + `"}]`, `repeats pinnedManifests[0]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := `
apiVersion: modelverify.echelongraph.io/v1alpha1
kind: ModelPolicy
endpoints: [{url: "https://huggingface.co"}]
publishers:
  - {name: acme, namespaces: [acme], identities: [{publicKey: {pem: "` + pubKey + `"}}], ` + tc.publisher + `}
  - {name: beta, namespaces: [beta], identities: [{publicKey: {pem: "` + pubKey + `"}}]}
`
			_, err := modelverify.ParsePolicy([]byte(doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	for _, field := range []string{`pinnedManifests: [{repo: "acme/x", digest: "` + digest + `"}]`, `requireSubjectName: true`} {
		doc := `
apiVersion: modelverify.echelongraph.io/v1alpha1
kind: ModelPolicy
endpoints: [{url: "https://huggingface.co"}]
publishers: [{name: acme, namespaces: [acme], requireSignature: false, ` + field + `}]
`
		if _, err := modelverify.ParsePolicy([]byte(doc)); err == nil || !strings.Contains(err.Error(), "requireSignature is false") {
			t.Fatalf("%s without a signature: %v", field, err)
		}
	}
}

// VerifyDir binds the signature to the repository the directory claims to hold, as Verify does.
func TestVerifyDirBindsTheSignatureToTheRepository(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", baseModel())
	other := signWith(t, baseModel(), g.key, manifest.Options{ModelName: "other"})
	dir := writeModel(t, other)
	ctx := context.Background()
	m, err := g.verifier().VerifyDir(ctx, dir, "acme/other")
	if err != nil {
		t.Fatal(err)
	}
	root := m.Evidence().ManifestDigest
	if m.Evidence().SubjectName != "other" {
		t.Fatalf("evidence %+v", m.Evidence())
	}

	v := g.verifier(func(p map[string]any) { publisher(p)["requireSubjectName"] = true })
	if _, err := v.VerifyDir(ctx, dir, "acme/tiny"); !errors.Is(err, modelverify.ErrSubjectMismatch) {
		t.Fatalf("acme/other's model claimed as acme/tiny: %v", err)
	}
	v = g.verifier(func(p map[string]any) {
		publisher(p)["pinnedManifests"] = []any{map[string]any{"repo": "acme/other", "digest": "sha256:" + strings.Repeat("0", 64)}}
	})
	if _, err := v.VerifyDir(ctx, dir, "acme/other"); !errors.Is(err, modelverify.ErrManifestNotPinned) {
		t.Fatalf("an unpinned manifest: %v", err)
	}
	if r := g.records(); r[len(r)-1].ManifestDigest != root || r[len(r)-1].SubjectName != "other" {
		t.Fatalf("audit record %+v", r[len(r)-1])
	}
}
