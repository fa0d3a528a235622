package manifest

import (
	"errors"
	"fmt"
)

// Sentinel errors for signing and verification. Every refusal from Verify wraps one of them
// (or one of the statement sentinels in errors.go: ErrStatementType, ErrPredicateType,
// ErrSubject, ErrRootDigest, ErrUnsafeName, ErrInvalid, and ErrMismatch from VerifyDir),
// inside a *VerificationError that says which kind of verifier refused. A Sigstore certificate
// that had expired when the log saw the signature matches both ErrUntrustedChain and
// ErrCertificateExpired.
var (
	// ErrBundle means the signature file is not a well-formed Sigstore bundle.
	ErrBundle = errors.New("malformed signature bundle")
	// ErrMediaType means the bundle's media type is not one this verifier accepts.
	ErrMediaType = errors.New("unexpected bundle media type")
	// ErrPayloadType means the DSSE envelope does not carry an in-toto statement.
	ErrPayloadType = errors.New("unexpected DSSE payload type")
	// ErrVerificationMaterial means the bundle was signed in a way this verifier does not
	// check: a certificate chain given to a key verifier, for example.
	ErrVerificationMaterial = errors.New("bundle verification material does not fit the verifier")
	// ErrSignature means the signature does not verify over the payload.
	ErrSignature = errors.New("signature does not verify")
	// ErrWrongKey means the bundle names, or was signed by, a key other than the one given.
	ErrWrongKey = errors.New("signed by a different key")
	// ErrUnsupportedKey means a key is not ECDSA on P-256, P-384 or P-521, the keys
	// model_signing uses: Ed25519 and RSA keys are refused, since model_signing neither makes
	// nor verifies bundles signed with them.
	ErrUnsupportedKey = errors.New("unsupported key")
	// ErrPrivateKey means a private key was given where its public half is wanted; the message
	// says how to derive the public key.
	ErrPrivateKey = errors.New("a private key was given where the public key is wanted")
	// ErrUntrustedChain means the signing certificate does not chain to a trusted root.
	ErrUntrustedChain = errors.New("certificate does not chain to a trusted root")
	// ErrCertificateUsage means the signing certificate may not be used to sign models: its key
	// usage leaves out digitalSignature, or it carries none of the extended key usages the
	// verifier wants (codeSigning by default), as a TLS server certificate does.
	ErrCertificateUsage = errors.New("certificate is not for signing")
	// ErrCertificateExpired means the signing certificate was not valid at the time checked.
	ErrCertificateExpired = errors.New("certificate is expired or not yet valid")
	// ErrIdentity means the signing certificate names someone else than the verifier wants: a
	// Sigstore certificate's identity, OIDC issuer or Fulcio extension, or a certificate
	// signer's subject or subject alternative names. Options that cannot be used (a bad
	// regular expression) are reported with it too, as *OptionError values.
	ErrIdentity = errors.New("signer identity does not match")
	// ErrTransparencyLog means Sigstore's transparency log or timestamp evidence is missing or
	// does not verify.
	ErrTransparencyLog = errors.New("transparency log evidence does not verify")
	// ErrTrustRoot means a trusted root or client trust configuration could not be read.
	ErrTrustRoot = errors.New("invalid Sigstore trust root")
	// ErrEmptyModel means Sign was given a manifest with no resources. The OMS specification
	// (section 6.1) requires a model to hold at least one file, so such a signature would be
	// one that conforming verifiers refuse.
	ErrEmptyModel = errors.New("the model has no files to sign")
)

// VerificationError is the error Verify and VerifyDir return: which kind of verifier refused
// the bundle, and why. It unwraps to the reason, so errors.Is matches the sentinels.
type VerificationError struct {
	Kind SignerKind // the verifier's kind
	Err  error
}

func (e *VerificationError) Error() string {
	return fmt.Sprintf("verify %s signature: %v", e.Kind, e.Err)
}

func (e *VerificationError) Unwrap() error { return e.Err }
