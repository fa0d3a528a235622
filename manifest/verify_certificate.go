package manifest

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

type certificateVerifier struct {
	roots *x509.CertPool
	now   func() time.Time
}

// NewCertificateVerifier returns a Verifier for bundles signed with a certificate that chains
// to one of roots (each a PEM file that may hold several certificates). It reads
// model_signing's x509CertificateChain (leaf first, then untrusted intermediates) under the
// v0.3 media type, which sigstore-go alone refuses. The leaf must allow signing
// (digitalSignature or codeSigning) and the whole chain must be valid now: a bundle made with
// a plain key and certificate carries no trusted time of signing, so the time of verification
// is the only one that can be checked, as the OMS spec asks.
func NewCertificateVerifier(roots ...[]byte) (Verifier, error) {
	pool := x509.NewCertPool()
	n := 0
	for i, r := range roots {
		certs, err := parseCertificatesPEM(r)
		if err != nil {
			return nil, fmt.Errorf("trust anchor %d: %w", i, err)
		}
		for _, c := range certs {
			pool.AddCert(c)
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: no trust anchor certificates given", ErrUntrustedChain)
	}
	return &certificateVerifier{roots: pool, now: time.Now}, nil
}

func (v *certificateVerifier) Kind() SignerKind { return SignerCertificate }

func (v *certificateVerifier) verifySignature(_ context.Context, data []byte) (*verifiedEnvelope, error) {
	b, err := parseBundleV03(data)
	if err != nil {
		return nil, err
	}
	vm := b.VerificationMaterial
	if vm.X509CertificateChain == nil && vm.Certificate == nil {
		if vm.PublicKey != nil {
			return nil, fmt.Errorf("%w: the bundle is signed with a bare public key, not a certificate; verify it as a key signature", ErrVerificationMaterial)
		}
		return nil, fmt.Errorf("%w: verificationMaterial has no x509CertificateChain", ErrBundle)
	}
	ders, err := vm.certificates()
	if err != nil {
		return nil, err
	}
	certs := make([]*x509.Certificate, len(ders))
	for i, der := range ders {
		if certs[i], err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("%w: certificate %d: %v", ErrBundle, i, err)
		}
	}
	leaf := certs[0]
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: the signing certificate %q holds a %T key; model_signing signs with ECDSA only", ErrUnsupportedKey, leaf.Subject.String(), leaf.PublicKey)
	}
	if err := checkSigningUsage(leaf); err != nil {
		return nil, err
	}
	now := v.now()
	intermediates := x509.NewCertPool()
	for _, c := range certs[1:] {
		intermediates.AddCert(c)
	}
	if err := checkValidity(leaf, now); err != nil {
		return nil, err
	}
	_, err = leaf.Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: intermediates,
		CurrentTime:   now,
		// Which extended key usages the chain may carry is model_signing's rule, checked
		// above on the leaf; Go's default (server authentication) does not apply.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return nil, fmt.Errorf("%w: %v", ErrCertificateExpired, err)
		}
		return nil, fmt.Errorf("%w: signing certificate %q (issuer %q): %v", ErrUntrustedChain, leaf.Subject.String(), leaf.Issuer.String(), err)
	}
	payload, err := b.payload()
	if err != nil {
		return nil, err
	}
	sig, err := b.signature()
	if err != nil {
		return nil, err
	}
	compat, err := verifyDSSE(pub, b.DSSEEnvelope.PayloadType, payload, sig)
	if err != nil {
		if errors.Is(err, ErrSignature) {
			return nil, fmt.Errorf("%w: the DSSE signature does not verify with the key of certificate %q", ErrSignature, leaf.Subject.String())
		}
		return nil, err
	}
	info := SignerInfo{Kind: SignerCertificate}
	describeCertificate(&info, leaf)
	return &verifiedEnvelope{
		payload:     payload,
		payloadType: b.DSSEEnvelope.PayloadType,
		mediaType:   b.MediaType,
		signer:      info,
		compat:      compat,
	}, nil
}

// checkValidity names an expired (or not yet valid) leaf as such, with its dates.
func checkValidity(c *x509.Certificate, at time.Time) error {
	if at.Before(c.NotBefore) || at.After(c.NotAfter) {
		return fmt.Errorf("%w: certificate %q is valid from %s to %s, not at %s", ErrCertificateExpired,
			c.Subject.String(), c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	return nil
}
