package modelverify_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/internal/testtools"
	"github.com/echelongraph/go-modelverify/modelverify"
	"github.com/echelongraph/go-modelverify/registry"
	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

// A registry that cannot be reached, or answers 5xx past the retry budget, says nothing about
// the model: the refusal matches ErrTemporary, as the Hub's failures do (the CLI exits 2, a
// service retries), while a refusal of the model does not.
func TestVerifyOCIRegistryFailuresAreTemporary(t *testing.T) {
	retry := registry.WithRetry(1, time.Millisecond, time.Millisecond, 50*time.Millisecond)
	for _, tc := range []struct {
		name      string
		ref       func(g *ociGate) string
		temporary bool
	}{
		{"registry answers 503", func(g *ociGate) string {
			g.modelcar("acme/tiny", cleanEntries()...)
			g.ts.AddFault(registrytest.Fault{Kind: registrytest.FaultStatus, Status: 503, Route: registrytest.RouteManifests})
			return g.ts.Ref("acme/tiny", "v1")
		}, true},
		{"a signed model's layer answers 503", func(g *ociGate) string {
			d := g.modelcar("acme/tiny", cleanEntries()...)
			g.key.signBundle(g.t, g.ts, "acme/tiny", d, d.Digest)
			g.ts.AddFault(registrytest.Fault{Kind: registrytest.FaultStatus, Status: 503, Route: registrytest.RouteBlobs})
			return g.ts.Ref("acme/tiny", "v1")
		}, true},
		{"registry not listening", func(g *ociGate) string {
			// A port that refuses connections for the whole test, approved below like the
			// test registry (a closed server's port could be taken by another meanwhile).
			return "oci://" + testtools.RefusingAddr(g.t) + "/acme/tiny:v1"
		}, true},
		{"unsigned model", func(g *ociGate) string {
			g.modelcar("acme/tiny", cleanEntries()...)
			return g.ts.Ref("acme/tiny", "v1")
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newOCIGate(t)
			ref := tc.ref(g)
			// The gate's policy, with a retry budget a test can wait for.
			host := strings.SplitN(strings.TrimPrefix(ref, registry.Scheme), "/", 2)[0]
			approve := func(p map[string]any) { // the policy names the registry the reference does
				p["registries"] = []any{map[string]any{"host": host, "plainHTTP": true}}
				publisher(p)["oci"] = []any{host + "/acme/*"}
			}
			vr, err := modelverify.NewVerifier(g.verifier(approve).Policy(), modelverify.WithEnvironment(false), modelverify.WithEndpoint("https://huggingface.co"),
				modelverify.WithCacheDir(g.cacheDir), modelverify.WithRecordKeyFile(g.t.TempDir()+"/record.key"),
				modelverify.WithAuditSink(modelverify.DiscardSink{}), modelverify.WithRegistryOptions(retry))
			if err != nil {
				t.Fatal(err)
			}
			defer vr.Close()
			_, err = vr.Verify(context.Background(), ref)
			var r *modelverify.Refusal
			if !errors.As(err, &r) {
				t.Fatalf("err = %v, want a refusal", err)
			}
			if got := errors.Is(err, modelverify.ErrTemporary); got != tc.temporary {
				t.Fatalf("errors.Is(err, ErrTemporary) = %v, want %v: %v", got, tc.temporary, err)
			}
			if tc.temporary && errors.Is(err, modelverify.ErrUnsafeContent) {
				t.Fatalf("an outage refused as unsafe content: %v", err)
			}
		})
	}
}
