package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// OpenSSF Model Signing (OMS, model_signing) bundles stored with an OCI model. model_signing
// defines no OCI storage of its own: its signature is a file beside the model (model.sig). An
// OCI model carries one either as a file in the model (a modelcar's /models/model.sig, a
// ModelPack or KitOps layer holding it), which Pull delivers like any file, or as an OCI 1.1
// referrer of the manifest stored the way cosign stores its bundles (artifactType and layer
// application/vnd.dev.sigstore.bundle.v0.3+json, found through the referrers API or its tag
// schema; oras attach --artifact-type application/vnd.dev.sigstore.bundle.v0.3+json model.sig
// makes one), which OMSBundles finds. What sets such a referrer apart from a cosign signature
// is the predicate type of the statement it signs, model_signing's instead of cosign's.
const (
	// OMSPredicateType is the predicate of model_signing v1.0 statements.
	OMSPredicateType = "https://model_signing/signature/v1.0"
	// OMSPredicateTypeV01 is model_signing's earlier predicate, still verified.
	OMSPredicateTypeV01 = "https://model_signing/Digests/v0.1"
)

// OMSBundle is a model_signing bundle found as a referrer of a manifest. It is not verified:
// package manifest verifies it and checks the model's files against what it signs.
type OMSBundle struct {
	// Subject is the digest of the manifest it was found for.
	Subject v1.Hash
	// Source says where it was found: "referrer sha256:...".
	Source string
	// Bundle is the Sigstore bundle as JSON, the content of a model.sig.
	Bundle []byte
}

// OMSBundles finds the model_signing bundles stored as referrers of digest in ref's
// repository: Sigstore bundle referrers whose statement has model_signing's predicate type
// (as the bundle says, unverified: Client.Signatures leaves them out, and the caller verifies
// them). None is not an error: the result is empty.
func (c *Client) OMSBundles(ctx context.Context, ref Reference, digest v1.Hash) ([]*OMSBundle, error) {
	_, oms, err := c.bundleReferrers(ctx, ref, digest)
	return oms, err
}

// IsOMSBundle reports whether a Sigstore bundle's DSSE statement claims model_signing's
// predicate type. The claim is not verified: it only says which verifier is to judge it.
func IsOMSBundle(bundleJSON []byte) bool {
	if len(bundleJSON) > maxConfigSize { // what smallBlob reads at most
		return false
	}
	var b struct {
		DSSE *struct {
			Payload string `json:"payload"`
		} `json:"dsseEnvelope"`
	}
	if json.Unmarshal(bundleJSON, &b) != nil || b.DSSE == nil {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(b.DSSE.Payload)
	if err != nil {
		return false
	}
	var st struct {
		PredicateType string `json:"predicateType"`
	}
	if json.Unmarshal(raw, &st) != nil {
		return false
	}
	return st.PredicateType == OMSPredicateType || st.PredicateType == OMSPredicateTypeV01
}
