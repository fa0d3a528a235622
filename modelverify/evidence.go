package modelverify

import (
	"encoding/hex"
	"strings"
	"time"
)

// Evidence is what a verification proved about a model: where it came from, who signed it,
// which digests its files had, and when it was checked. It is what an auditor asks for.
type Evidence struct {
	// Ref is the reference as requested (for VerifyDir, the repository the directory claims to
	// hold; Model.Dir is the directory).
	Ref string `json:"ref"`
	// Repo, Revision and Commit name what was verified; Commit is the resolved 40-hex commit.
	Repo     string `json:"repo"`
	Revision string `json:"revision,omitempty"`
	Commit   string `json:"commit,omitempty"`
	// Endpoint is the Hub the files came from (empty for VerifyDir).
	Endpoint string `json:"endpoint,omitempty"`
	// Publisher is the policy publisher that claimed the repository.
	Publisher string `json:"publisher,omitempty"`
	// Verification is VerifiedSignature (integrity and authenticity), VerifiedIntegrity (the
	// files are the Hub's, but no signature says who made them) or VerifiedNone.
	Verification Verification `json:"verification"`
	// Signer is who signed the manifest, when Verification is VerifiedSignature.
	Signer Signer `json:"signer,omitzero"`
	// Signatures name each signature that verified, where it was found and by whom, for a
	// model that may carry several (an OCI model: "cosign referrer sha256:... by key
	// sha256:...", "oms model.sig by CN=...", "oms referrer sha256:... by ..."). Empty for Hub
	// models, whose one signature is the signature file.
	Signatures []string `json:"signatures,omitempty"`
	// SignedAt is when a transparency log or timestamp authority says the signature was made;
	// zero for key and certificate signatures, which carry no trusted time.
	SignedAt time.Time `json:"signedAt,omitzero"`
	// ManifestDigest is the manifest's root digest ("sha256:..."): for a signed model, the
	// digest the signed statement's subject carries, which a policy can pin
	// (Publisher.PinnedManifests).
	ManifestDigest string `json:"manifestDigest,omitempty"`
	// SubjectName is the signed statement's subject name: the model's name as its signer gave
	// it (model_signing uses the model directory's name). Empty when nothing was signed.
	SubjectName string `json:"subjectName,omitempty"`
	// Digests maps each file to its SHA-256 ("sha256:...").
	Digests map[string]string `json:"digests,omitempty"`
	// Formats maps each file to the format the scanner found.
	Formats map[string]string `json:"formats,omitempty"`
	// VerifiedAt is when the decision was made.
	VerifiedAt time.Time `json:"verifiedAt"`
	// Decision is DecisionAllowed, or DecisionAuditAllowed when the policy is in audit mode
	// and Problems lists what enforce mode would have refused.
	Decision Decision  `json:"decision"`
	Problems []Problem `json:"problems,omitempty"`
	// Cached is true when the files were already in the cache and, being unchanged since they
	// were last verified, were not downloaded or hashed again (see Verifier.Verify).
	Cached bool `json:"cached,omitempty"`
}

// Signer identifies who signed a model's manifest.
type Signer struct {
	// Kind is "key", "certificate" or "sigstore".
	Kind string `json:"kind"`
	// Identity is a Sigstore signer's identity (the certificate's SAN), or a certificate's
	// subject, or "key sha256:<fingerprint>".
	Identity string `json:"identity,omitempty"`
	// Issuer is the OIDC issuer of a Sigstore identity, or a certificate's issuer.
	Issuer string `json:"issuer,omitempty"`
	// KeyFingerprint is the hex SHA-256 of the signing key's SubjectPublicKeyInfo.
	KeyFingerprint string `json:"keyFingerprint,omitempty"`
	// Extensions are the Fulcio extensions of a Sigstore signer's certificate that carry a
	// value, by the names a policy's sigstore.extensions uses ("sourceRepositoryRef":
	// "refs/tags/v1.0"): for a CI signer, which repository, ref, commit and workflow signed.
	Extensions map[string]string `json:"extensions,omitempty"`
}

// firstLine keeps the first line of an error's text, for one-line problem details.
func firstLine(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func joinNames(names []string) string {
	if len(names) > 3 {
		return strings.Join(names[:3], " or ") + " or others"
	}
	return strings.Join(names, " or ")
}

func hexBytes(s string) ([]byte, error) { return hex.DecodeString(s) }
