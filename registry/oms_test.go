package registry

import (
	"context"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

// A model_signing bundle stored as a referrer is an OMS bundle, not a cosign signature: the
// two are told apart by the statement's predicate type, whatever the referrer's annotations say.
func TestOMSBundleReferrersAreNotCosignSignatures(t *testing.T) {
	registryModes(t, func(t *testing.T, ts *registrytest.TestServer) {
		k := newSigner(t)
		d := signedModel(t, ts, "acme/model", "weights")
		pushBundle(t, ts, "acme/model", d, k.bundleJSON(t, statement(d.Digest, CosignPredicateType)))
		// pushBundle annotates cosign's predicate: the bundle's own statement decides.
		oms := k.bundleJSON(t, statement("sha256:"+strings.Repeat("b", 64), OMSPredicateType))
		pushBundle(t, ts, "acme/model", d, oms)
		c := testClient(t)
		art := openRef(t, c, ts.Ref("acme/model", "v1"))
		sigs, err := c.Signatures(context.Background(), art.Reference, art.Digest)
		if err != nil || len(sigs) != 1 {
			t.Fatalf("signatures = %d, %v; want the cosign one only", len(sigs), err)
		}
		bundles, err := c.OMSBundles(context.Background(), art.Reference, art.Digest)
		if err != nil || len(bundles) != 1 || string(bundles[0].Bundle) != string(oms) || !strings.HasPrefix(bundles[0].Source, "referrer sha256:") {
			t.Fatalf("OMS bundles = %+v, %v", bundles, err)
		}
		// The cosign signature still verifies; the OMS bundle is not in its way.
		if _, err := c.VerifySignature(context.Background(), art, k.verifier(t), verify.WithKey()); err != nil {
			t.Fatalf("the cosign signature beside an OMS bundle: %v", err)
		}
	})
}

func TestIsOMSBundle(t *testing.T) {
	k := newSigner(t)
	for pt, want := range map[string]bool{OMSPredicateType: true, OMSPredicateTypeV01: true, CosignPredicateType: false, "https://slsa.dev/provenance/v1": false} {
		if got := IsOMSBundle(k.bundleJSON(t, statement("sha256:"+strings.Repeat("c", 64), pt))); got != want {
			t.Errorf("IsOMSBundle(%s) = %v, want %v", pt, got, want)
		}
	}
	for _, b := range []string{``, `{}`, `{"dsseEnvelope":{"payload":"!!"}}`, `{"messageSignature":{}}`} {
		if IsOMSBundle([]byte(b)) {
			t.Errorf("IsOMSBundle(%q) = true", b)
		}
	}
}
