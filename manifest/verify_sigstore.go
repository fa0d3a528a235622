package manifest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

// SigstoreVerifierOptions says whose Sigstore signature to accept and what to trust.
type SigstoreVerifierOptions struct {
	// Identity is the signer's identity, exactly as Fulcio wrote it in the certificate's
	// subject alternative name (an email address, or a workflow URI). Set it or
	// IdentityRegexp.
	Identity string
	// IdentityRegexp matches the identity instead: a Go regular expression that must match
	// the whole SAN, as if written ^(?:IdentityRegexp)$ (see CompileAnchored).
	IdentityRegexp string
	// Issuer is the OIDC issuer that vouched for the identity, e.g.
	// "https://accounts.google.com". Set it or IssuerRegexp.
	Issuer string
	// IssuerRegexp matches the whole issuer instead, as IdentityRegexp does the SAN.
	IssuerRegexp string
	// Extensions constrain what else Fulcio recorded about the signer: for a CI workflow, the
	// repository, ref, commit and triggering event. Every constraint set must hold.
	Extensions FulcioExtensions
	// TrustedRoot is the Sigstore deployment to trust. If nil, TrustRootPath is read; if that is
	// empty too, the production root embedded in this package is used.
	TrustedRoot root.TrustedMaterial
	// TrustRootPath is a trusted_root.json or a ClientTrustConfig file (model_signing's
	// --trust-config), for private Sigstore deployments.
	TrustRootPath string
}

type sigstoreVerifier struct {
	trusted  root.TrustedMaterial
	verifier *verify.Verifier
	identity verify.CertificateIdentity
	// san and issuer are the identity again, with extensions: this package checks them on
	// the verified certificate too, so that every refusal names the value, what was wanted
	// and what was found in the same words.
	san, issuer valueConstraint
	extensions  []valueConstraint
}

// NewSigstoreVerifier returns a Verifier for Sigstore keyless bundles: a Fulcio certificate
// for the expected identity and OIDC issuer, chaining to the trusted root's Fulcio CA, with a
// Rekor log entry (inclusion proof or promise) and, when the root lists CT logs, an embedded
// SCT. The certificate must have been valid when the log (or a trusted timestamp authority)
// says the signature was made. It works offline.
func NewSigstoreVerifier(opts SigstoreVerifierOptions) (Verifier, error) {
	if opts.Identity == "" && opts.IdentityRegexp == "" {
		return nil, fmt.Errorf("%w: set one of Identity and IdentityRegexp", ErrIdentity)
	}
	if opts.Issuer == "" && opts.IssuerRegexp == "" {
		return nil, fmt.Errorf("%w: set one of Issuer and IssuerRegexp", ErrIdentity)
	}
	san, sanProblem := newValueConstraint("identity", opts.Identity, "identityRegexp", opts.IdentityRegexp)
	issuer, issuerProblem := newValueConstraint("issuer", opts.Issuer, "issuerRegexp", opts.IssuerRegexp)
	extensions, problems := compileConstraints(&opts.Extensions)
	for _, p := range []*OptionError{issuerProblem, sanProblem} {
		if p != nil {
			problems = append([]*OptionError{p}, problems...)
		}
	}
	if err := optionErrors(problems); err != nil {
		return nil, err
	}
	// sigstore-go checks the identity too, as the last step of its verification. It matches
	// a regular expression anywhere in the value, so it is given the anchored form.
	id, err := verify.NewShortCertificateIdentity(issuer.exact, anchoredText(issuer), san.exact, anchoredText(san))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIdentity, err)
	}
	trusted := opts.TrustedRoot
	switch {
	case trusted != nil:
	case opts.TrustRootPath != "":
		tc, err := LoadTrustConfig(opts.TrustRootPath)
		if err != nil {
			return nil, err
		}
		trusted = tc.TrustedRoot
	default:
		if trusted, err = ProductionTrustedRoot(); err != nil {
			return nil, err
		}
	}
	vopts := []verify.VerifierOption{
		verify.WithTransparencyLog(1),
		verify.WithObserverTimestamps(1),
		// The manifest is decoded from the payload bytes here; sigstore-go need not build a
		// second copy of a predicate that may list many thousands of files.
		verify.WithoutStatementPredicate(),
	}
	if len(trusted.CTLogs()) > 0 {
		vopts = append(vopts, verify.WithSignedCertificateTimestamps(1))
	}
	v, err := verify.NewVerifier(trusted, vopts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTrustRoot, err)
	}
	return &sigstoreVerifier{trusted: trusted, verifier: v, identity: id, san: *san, issuer: *issuer, extensions: extensions}, nil
}

func (v *sigstoreVerifier) Kind() SignerKind { return SignerSigstore }

func (v *sigstoreVerifier) verifySignature(_ context.Context, data []byte) (*verifiedEnvelope, error) {
	// A first pass with the lenient reader names what is missing before sigstore-go is asked.
	b, err := parseBundle(data)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(b.MediaType, "application/vnd.dev.sigstore.bundle") {
		return nil, fmt.Errorf("%w: %q is not a Sigstore bundle media type", ErrMediaType, b.MediaType)
	}
	vm := b.VerificationMaterial
	if vm.Certificate == nil && vm.X509CertificateChain == nil {
		if vm.PublicKey != nil {
			return nil, fmt.Errorf("%w: the bundle is signed with a bare public key, not a Sigstore certificate; verify it as a key signature", ErrVerificationMaterial)
		}
		return nil, fmt.Errorf("%w: verificationMaterial has no certificate", ErrBundle)
	}
	if len(vm.TlogEntries) == 0 {
		return nil, fmt.Errorf("%w: a Sigstore bundle must carry a transparency log entry, and this one has none", ErrBundle)
	}
	var sb sgbundle.Bundle
	if err := sb.UnmarshalJSON(data); err != nil {
		if strings.Contains(err.Error(), "media type") || strings.Contains(err.Error(), "mediaType") {
			return nil, fmt.Errorf("%w: %v", ErrMediaType, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrBundle, err)
	}
	env := sb.GetDsseEnvelope()
	if env == nil {
		return nil, fmt.Errorf("%w: no dsseEnvelope", ErrBundle)
	}
	if env.GetPayloadType() != PayloadType {
		// sigstore-go reads the statement as part of verifying, so a foreign payload type
		// would come back as an unexplained failure; name it here instead.
		return nil, fmt.Errorf("%w: %q, want %q", ErrPayloadType, env.GetPayloadType(), PayloadType)
	}
	res, err := v.verifier.Verify(&sb, verify.NewPolicy(verify.WithoutArtifactUnsafe(), verify.WithCertificateIdentity(v.identity)))
	var noID *verify.ErrNoMatchingCertificateIdentity
	if errors.As(err, &noID) {
		// sigstore-go checks the identity last, so everything else verified: say which
		// constraint the certificate fails, in this package's words.
		if vc, cerr := sb.VerificationContent(); cerr == nil && vc.Certificate() != nil {
			if summary, serr := certificate.SummarizeCertificate(vc.Certificate()); serr == nil {
				if merr := v.checkIdentity(summary); merr != nil {
					return nil, merr
				}
			}
		}
	}
	if err != nil {
		return nil, classifySigstoreError(err)
	}
	if res.Signature == nil || res.Signature.Certificate == nil {
		return nil, fmt.Errorf("%w: the bundle verified without a certificate to check the identity of", ErrVerificationMaterial)
	}
	// The summary is of the certificate sigstore-go verified, so its extensions can be trusted.
	if err := v.checkIdentity(*res.Signature.Certificate); err != nil {
		return nil, err
	}
	info := SignerInfo{Kind: SignerSigstore}
	if vc, err := sb.VerificationContent(); err == nil && vc.Certificate() != nil {
		describeCertificate(&info, vc.Certificate())
	}
	info.Identity = res.Signature.Certificate.SubjectAlternativeName
	info.OIDCIssuer = res.Signature.Certificate.Issuer
	info.Extensions = fulcioExtensionValues(res.Signature.Certificate.Extensions)
	return &verifiedEnvelope{
		payload:     env.GetPayload(),
		payloadType: env.GetPayloadType(),
		mediaType:   sb.GetMediaType(),
		signer:      info,
		signedAt:    signingTime(res.VerifiedTimestamps),
	}, nil
}

// checkIdentity tests a certificate's SAN, OIDC issuer and extensions against the verifier's
// constraints.
func (v *sigstoreVerifier) checkIdentity(c certificate.Summary) error {
	if err := v.san.matchAny("certificate identity (SAN)", nonEmpty(c.SubjectAlternativeName)); err != nil {
		return err
	}
	if err := v.issuer.matchAny("certificate OIDC issuer", nonEmpty(c.Extensions.Issuer)); err != nil {
		return err
	}
	return checkFulcioExtensions(v.extensions, c.Extensions)
}

func nonEmpty(v string) []string {
	if v == "" {
		return nil
	}
	return []string{v}
}

// anchoredText is the regular expression of c as it must be matched, for sigstore-go.
func anchoredText(c *valueConstraint) string {
	if c.re == nil {
		return ""
	}
	return c.re.String()
}

// signingTime prefers the transparency log's integrated time, then a timestamp authority's.
func signingTime(ts []verify.TimestampVerificationResult) time.Time {
	for _, want := range []string{"Tlog", "TimestampAuthority"} {
		for _, t := range ts {
			if t.Type == want {
				return t.Timestamp.UTC()
			}
		}
	}
	return time.Time{}
}

// classifySigstoreError maps sigstore-go's refusal to this package's reasons. sigstore-go
// reports which step failed in the message's prefix (pinned at v1.3.0).
func classifySigstoreError(err error) error {
	var noID *verify.ErrNoMatchingCertificateIdentity
	if errors.As(err, &noID) {
		return fmt.Errorf("%w: %v", ErrIdentity, err)
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "outside certificate validity"), strings.Contains(msg, "expired or is not yet valid"):
		// The certificate was not valid when the log (or a timestamp authority) saw the
		// signature: a short-lived Fulcio certificate used after its ten minutes.
		return fmt.Errorf("%w: %w: %v", ErrUntrustedChain, ErrCertificateExpired, err)
	case strings.HasPrefix(msg, "failed to verify log inclusion"), strings.HasPrefix(msg, "failed to verify timestamps"):
		return fmt.Errorf("%w: %v", ErrTransparencyLog, err)
	case strings.HasPrefix(msg, "failed to verify leaf certificate"):
		return fmt.Errorf("%w: %v", ErrUntrustedChain, err)
	case strings.HasPrefix(msg, "failed to verify signed certificate timestamp"):
		return fmt.Errorf("%w: %v", ErrUntrustedChain, err)
	case strings.HasPrefix(msg, "failed to verify signature"), strings.HasPrefix(msg, "failed to get signature verifier"):
		return fmt.Errorf("%w: %v", ErrSignature, err)
	}
	return fmt.Errorf("%w: %v", ErrSignature, err)
}
