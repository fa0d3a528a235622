package modelverify_test

import (
	"context"
	"errors"
	"maps"
	"strings"
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
				modelverify.WithCacheDir(g.cacheDir), modelverify.WithAuditSink(modelverify.MultiSink()),
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
	for _, s := range steps {
		if got := cached(s.v); got != s.cached {
			t.Fatalf("%s: cached=%v, want %v", s.name, got, s.cached)
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
