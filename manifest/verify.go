package manifest

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// SignerKind says how a model was signed.
type SignerKind string

// The kinds of signers model_signing has.
const (
	SignerKey         SignerKind = "key"
	SignerCertificate SignerKind = "certificate"
	SignerSigstore    SignerKind = "sigstore"
)

// SignerInfo is who signed a verified bundle.
type SignerInfo struct {
	Kind SignerKind
	// KeyFingerprint is hex SHA-256 of the signing key's DER SubjectPublicKeyInfo, for every
	// kind (for certificates, the leaf's key).
	KeyFingerprint string
	// Certificate and Sigstore signers: the leaf certificate and what it names.
	Certificate  *x509.Certificate
	Subject      string   // the leaf's subject DN
	Issuer       string   // the leaf's issuer DN
	SerialNumber string   // the leaf's serial number, hex
	SANs         []string // the leaf's subject alternative names: emails, DNS names, URIs, IPs
	// KeyHint is the bundle's key hint (model_signing's hex SHA-256 of the key's PEM text),
	// when the bundle names its key that way.
	KeyHint string
	// Sigstore signers: the identity (the certificate's SAN) and the OIDC issuer that vouched
	// for it, both checked against the verifier's expectations.
	Identity   string
	OIDCIssuer string
	// Extensions are the other Fulcio extensions of a Sigstore certificate that carry a value,
	// by their FulcioExtensions names ("sourceRepositoryRef": "refs/tags/v1.0"): for a CI
	// signer, which repository, ref, commit and workflow signed.
	Extensions map[string]string
}

// Result is the evidence a verification produced: what was signed, by whom, and when.
type Result struct {
	// Statement is the signed in-toto statement, decoded from the exact bytes whose signature
	// was checked (Statement.Payload).
	Statement *Statement
	// Manifest is the signed manifest (Statement.Manifest).
	Manifest *Manifest
	Signer   SignerInfo
	// SignedAt is when the signature was made, as a transparency log or timestamp authority
	// attested it (Sigstore: the log's integrated time, else the TSA's time). It is zero when
	// nothing attests it, as for key and certificate signatures.
	SignedAt time.Time
	// Compat reports a model_signing v0.2 signature over its non-standard "DSSEV1" encoding.
	Compat bool
	// MediaType is the bundle's media type.
	MediaType string
}

// Verifier checks a bundle's signature. NewKeyVerifier, NewCertificateVerifier and
// NewSigstoreVerifier make the three kinds model_signing has.
type Verifier interface {
	// Kind is the kind of signer this verifier accepts.
	Kind() SignerKind
	// verifySignature checks the bundle's signature and returns the exact bytes it covers.
	verifySignature(ctx context.Context, bundleJSON []byte) (*verifiedEnvelope, error)
}

// verifiedEnvelope is what a verifier vouches for: the payload bytes and type whose signature
// it checked, and the signer.
type verifiedEnvelope struct {
	payload     []byte
	payloadType string
	mediaType   string
	signer      SignerInfo
	signedAt    time.Time
	compat      bool
}

// Verify checks bundleJSON (the content of a model.sig file) with v, then decodes the signed
// statement: an in-toto statement v1 with model_signing's predicate, one subject, and a root
// digest that matches its resources. It does not look at the model's files; VerifyDir does.
// Every refusal is a *VerificationError wrapping the sentinel that names the reason.
func Verify(ctx context.Context, bundleJSON []byte, v Verifier) (*Result, error) {
	if v == nil {
		return nil, errors.New("manifest: Verify needs a Verifier")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	env, err := v.verifySignature(ctx, bundleJSON)
	if err != nil {
		return nil, &VerificationError{Kind: v.Kind(), Err: err}
	}
	// Only now, with the signature checked, is the payload read, from the very bytes checked.
	if env.payloadType != PayloadType {
		return nil, &VerificationError{Kind: v.Kind(), Err: fmt.Errorf("%w: %q, want %q", ErrPayloadType, env.payloadType, PayloadType)}
	}
	st, err := DecodeStatement(env.payload)
	if err != nil {
		return nil, &VerificationError{Kind: v.Kind(), Err: err}
	}
	if env.compat && st.PredicateType != PredicateTypeV01 {
		// model_signing v0.2 is the only writer of the compat encoding, and it wrote only
		// the v0.1 layout; a v1.0 statement under it was not made by any real signer.
		return nil, &VerificationError{Kind: v.Kind(), Err: fmt.Errorf("%w: the v0.2 compat signature encoding is accepted only for %s statements, not %s", ErrSignature, PredicateTypeV01, st.PredicateType)}
	}
	return &Result{
		Statement: st,
		Manifest:  st.Manifest,
		Signer:    env.signer,
		SignedAt:  env.signedAt,
		Compat:    env.compat,
		MediaType: env.mediaType,
	}, nil
}

// VerifyDir verifies bundleJSON with v (as Verify does), then hashes the model at modelPath
// as the signed manifest says it was hashed, and compares. A model that differs from its
// manifest is refused with a *Diff (matching ErrMismatch) that lists every extra, missing and
// changed file.
func VerifyDir(ctx context.Context, modelPath string, bundleJSON []byte, v Verifier, opts CheckOptions) (*Result, error) {
	res, err := Verify(ctx, bundleJSON, v)
	if err != nil {
		return nil, err
	}
	if _, err := CheckDir(ctx, modelPath, res.Manifest, opts); err != nil {
		return nil, &VerificationError{Kind: v.Kind(), Err: err}
	}
	return res, nil
}

// describeCertificate fills in what a certificate says about its holder.
func describeCertificate(info *SignerInfo, c *x509.Certificate) {
	info.Certificate = c
	info.Subject = c.Subject.String()
	info.Issuer = c.Issuer.String()
	info.SerialNumber = c.SerialNumber.Text(16)
	info.SANs = append(info.SANs, c.EmailAddresses...)
	info.SANs = append(info.SANs, c.DNSNames...)
	for _, u := range c.URIs {
		info.SANs = append(info.SANs, u.String())
	}
	for _, ip := range c.IPAddresses {
		info.SANs = append(info.SANs, ip.String())
	}
	if fp, err := KeyFingerprint(c.PublicKey); err == nil {
		info.KeyFingerprint = fp
	}
}
