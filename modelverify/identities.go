package modelverify

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/echelongraph/go-modelverify/manifest"
)

// signers are the manifest verifiers for one publisher's identities, built once when the
// Verifier is made, so that a bad key or trust root is reported at start-up, not per model.
type signers struct {
	verifiers []manifest.Verifier
	names     []string // Identity.String() of each, for messages
}

func newSigners(pub *Publisher) (*signers, error) {
	s := &signers{}
	for i, id := range pub.Identities {
		v, field, err := identityVerifier(pub, id)
		if err != nil {
			return nil, fmt.Errorf("publishers[%s].identities[%d]%s: %w", pub.Name, i, field, err)
		}
		s.add(v, id)
	}
	return s, nil
}

// identityVerifier builds the signature verifier for one of pub's identities, reading the key,
// certificates or trust root it names. It is the one code path by which both loading a policy
// (Policy.Validate) and NewVerifier judge that material, so a policy that loads has signers
// that build. On failure, field is the path of the part at fault below the identity
// (".publicKey", ".certificate.roots[1]", ".sigstore").
func identityVerifier(pub *Publisher, id Identity) (v manifest.Verifier, field string, err error) {
	switch {
	case id.Sigstore != nil:
		opts := manifest.SigstoreVerifierOptions{
			Identity:       id.Sigstore.Identity,
			IdentityRegexp: id.Sigstore.IdentityRegexp,
			Issuer:         id.Sigstore.Issuer,
			IssuerRegexp:   id.Sigstore.IssuerRegexp,
			TrustRootPath:  pub.TrustRoot,
		}
		if id.Sigstore.Extensions != nil {
			opts.Extensions = *id.Sigstore.Extensions
		}
		v, err = manifest.NewSigstoreVerifier(opts)
		return v, ".sigstore", err
	case id.PublicKey != nil:
		at := sourceField(id.PublicKey, ".publicKey")
		pem, err := id.PublicKey.Bytes()
		if err != nil {
			return nil, at, err
		}
		v, err = manifest.NewKeyVerifier(pem)
		return v, at, err
	case id.Certificate != nil:
		var roots [][]byte
		for j, r := range id.Certificate.Roots {
			pem, err := r.Bytes()
			if err != nil {
				return nil, sourceField(&r, fmt.Sprintf(".certificate.roots[%d]", j)), err
			}
			roots = append(roots, pem)
		}
		opts := manifest.CertificateVerifierOptions{Roots: roots, ExtendedKeyUsages: id.Certificate.ExtendedKeyUsages}
		if id.Certificate.Subject != nil {
			opts.Subject = *id.Certificate.Subject
		}
		v, err = manifest.NewCertificateVerifier(opts)
		return v, ".certificate", err
	}
	return nil, "", errors.New("exactly one of sigstore, publicKey or certificate is required")
}

func (s *signers) add(v manifest.Verifier, id Identity) {
	s.verifiers = append(s.verifiers, v)
	s.names = append(s.names, id.String())
}

// verify checks bundle against each identity in turn and returns the first that accepts it.
// When none does, the problem says whether the signature itself is bad or it is good but made
// by someone the publisher does not list.
func (s *signers) verify(ctx context.Context, bundle []byte) (*manifest.Result, *Problem, error) {
	if len(s.verifiers) == 0 {
		return nil, &Problem{Reason: ErrIdentity, Detail: "the publisher lists no identities to check the signature against"}, nil
	}
	var errs []error
	identityOnly := true
	for _, v := range s.verifiers {
		res, err := manifest.Verify(ctx, bundle, v)
		if err == nil {
			return res, nil, nil
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		errs = append(errs, err)
		if !isIdentityError(err) {
			identityOnly = false
		}
	}
	joined := errors.Join(errs...)
	switch {
	case anyIs(errs, manifest.ErrStatementType, manifest.ErrPredicateType, manifest.ErrSubject, manifest.ErrRootDigest, manifest.ErrInvalid, manifest.ErrUnsafeName):
		// The signature verified but what it signed is not a usable manifest.
		return nil, &Problem{Reason: ErrManifest, Detail: firstLine(joined)}, joined
	case identityOnly:
		// Say who the bundle claims signed it; the claim is unverified, and only named.
		found := "an unknown signer"
		if info, err := manifest.InspectBundle(bundle); err == nil {
			found = info.String()
		}
		return nil, &Problem{Reason: ErrIdentity, Expected: joinNames(s.names), Actual: found, Detail: identityDetail(errs)}, joined
	default:
		return nil, &Problem{Reason: ErrSignature, Expected: joinNames(s.names), Detail: firstLine(joined)}, joined
	}
}

// identityDetail says why each identity of the signer's kind refused the bundle ("certificate
// extension sourceRepositoryRef ...: want ..., found ..."); identities of another kind (a key
// for a Sigstore bundle) only add noise, and are left out when others remain.
func identityDetail(errs []error) string {
	var lines []string
	for _, err := range errs {
		if !errors.Is(err, manifest.ErrVerificationMaterial) {
			lines = append(lines, firstLine(err))
		}
	}
	if len(lines) == 0 {
		return firstLine(errs[0])
	}
	return strings.Join(lines, "; ")
}

// isIdentityError reports whether a verifier refused a bundle because it was made by another
// signer (another key, another identity, another CA, another kind, a certificate not for code
// signing), not because it is broken.
func isIdentityError(err error) bool {
	return errors.Is(err, manifest.ErrIdentity) || errors.Is(err, manifest.ErrWrongKey) ||
		errors.Is(err, manifest.ErrUntrustedChain) || errors.Is(err, manifest.ErrVerificationMaterial) ||
		errors.Is(err, manifest.ErrCertificateUsage)
}

func anyIs(errs []error, targets ...error) bool {
	for _, err := range errs {
		for _, t := range targets {
			if errors.Is(err, t) {
				return true
			}
		}
	}
	return false
}
