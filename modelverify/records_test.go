package modelverify_test

import (
	"context"
	"testing"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/hub/hubtest"
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
