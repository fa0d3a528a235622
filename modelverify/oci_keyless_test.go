package modelverify_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"

	"github.com/echelongraph/go-modelverify/modelverify"
	"github.com/echelongraph/go-modelverify/registry"
	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

// keylessOCIBundle is cosign v3's keyless signature of the digest as a Sigstore bundle, made by
// a VirtualSigstore for identity and issuer: a Fulcio leaf, the Rekor entry, a TSA timestamp.
func keylessOCIBundle(t *testing.T, vs *ca.VirtualSigstore, identity, issuer, digest string) []byte {
	t.Helper()
	stmt, _ := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": "", "digest": map[string]string{"sha256": strings.TrimPrefix(digest, "sha256:")}}},
		"predicateType": registry.CosignPredicateType, "predicate": map[string]any{},
	})
	b, err := registrytest.KeylessBundle(vs, identity, issuer, stmt)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVerifyOCIChecksAKeylessSignersIdentity maps a publisher's sigstore identity onto
// sigstore-go for a cosign keyless signature: the trust root from the policy, the SAN matched
// whole by a regexp, the issuer exactly; another signer of the same CA is refused.
func TestVerifyOCIChecksAKeylessSignersIdentity(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), vs.CTLogs(), vs.TimestampingAuthorities(), vs.RekorLogs())
	if err != nil {
		t.Fatal(err)
	}
	trJSON, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	// TrustedRoot.MarshalJSON writes a log's id as the bytes of its hex form; the id is the raw
	// bytes that hex encodes, which is what a bundle's entry names and what a real root holds.
	var doc map[string]any
	if err := json.Unmarshal(trJSON, &doc); err != nil {
		t.Fatal(err)
	}
	// VirtualSigstore's certificates carry no SCTs: a root without CT logs requires none.
	delete(doc, "ctlogs")
	for _, l := range doc["tlogs"].([]any) {
		id := l.(map[string]any)["logId"].(map[string]any)
		ascii, _ := base64.StdEncoding.DecodeString(id["keyId"].(string))
		raw, err := hex.DecodeString(string(ascii))
		if err != nil {
			t.Fatal(err)
		}
		id["keyId"] = base64.StdEncoding.EncodeToString(raw)
	}
	if trJSON, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	trPath := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(trPath, trJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	g := newOCIGate(t)
	const issuer = "https://token.actions.example"
	push := func(repo, identity string) string {
		d := g.ts.PushManifest(t, repo, "v1", registrytest.Modelcar(registrytest.Tar(cleanEntries()...)))
		g.ts.PushReferrer(t, repo, registrytest.Manifest{
			ArtifactType: registry.MediaTypeSigstoreBundle,
			Config:       registrytest.Blob{MediaType: registrytest.MediaTypeEmptyJSON, Data: []byte("{}")},
			Layers:       []registrytest.Blob{{MediaType: registry.MediaTypeSigstoreBundle, Data: keylessOCIBundle(t, vs, identity, issuer, d.Digest)}},
			Subject:      &registrytest.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size},
		})
		return g.ts.Ref(repo, "v1")
	}
	good := push("acme/tiny", "https://github.com/acme/models/.github/workflows/release.yml@refs/tags/v1")
	// The same CA, an identity the regexp would match if it were not anchored at the end.
	evil := push("acme/evil", "https://github.com/acme/models/.github/workflows/release.yml@refs/tags/v1.evil.example")
	v := g.verifier(func(p map[string]any) {
		pub := publisher(p)
		pub["trustRoot"] = trPath
		pub["identities"] = []any{map[string]any{"sigstore": map[string]any{
			"identityRegexp": `https://github\.com/acme/models/\.github/workflows/release\.yml@refs/tags/v[0-9]+`, "issuer": issuer}}}
	})
	m, err := v.Verify(context.Background(), good)
	if err != nil {
		t.Fatalf("keyless: %v", err)
	}
	if s := m.Evidence().Signer; s.Kind != "sigstore" || !strings.HasSuffix(s.Identity, "refs/tags/v1") || s.Issuer != issuer {
		t.Fatalf("signer = %+v", s)
	}
	if _, err := v.Verify(context.Background(), evil); !errors.Is(err, modelverify.ErrIdentity) {
		t.Fatalf("another identity: err = %v, want ErrIdentity", err)
	}
	// Extension constraints hold on the verified certificate: this one records no source ref.
	strict := g.verifier(func(p map[string]any) {
		pub := publisher(p)
		pub["trustRoot"] = trPath
		pub["identities"] = []any{map[string]any{"sigstore": map[string]any{
			"identityRegexp": `https://github\.com/acme/models/.+`, "issuer": issuer,
			"extensions": map[string]any{"sourceRepositoryRef": "refs/tags/v1"}}}}
	})
	_, err = strict.Verify(context.Background(), good)
	if !errors.Is(err, modelverify.ErrIdentity) || !strings.Contains(err.Error(), "sourceRepositoryRef") {
		t.Fatalf("extension constraint: err = %v, want ErrIdentity naming sourceRepositoryRef", err)
	}
}
