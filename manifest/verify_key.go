package manifest

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
)

type keyVerifier struct {
	pub         *ecdsa.PublicKey
	hint        string
	fingerprint string
}

// NewKeyVerifier returns a Verifier for bundles signed with the private half of pubPEM, an
// ECDSA public key (P-256, P-384 or P-521) in PEM. Like model_signing it checks the bundle's
// key hint against the key, and it reads the older bundles (model_signing v0.3.1 to v1.0.1)
// that carry the public key's PEM instead of a hint.
func NewKeyVerifier(pubPEM []byte) (Verifier, error) {
	pub, err := parsePublicKey(pubPEM)
	if err != nil {
		return nil, err
	}
	hint, err := keyHint(pub)
	if err != nil {
		return nil, err
	}
	fp, err := KeyFingerprint(pub)
	if err != nil {
		return nil, err
	}
	return &keyVerifier{pub: pub, hint: hint, fingerprint: fp}, nil
}

func (v *keyVerifier) Kind() SignerKind { return SignerKey }

func (v *keyVerifier) verifySignature(_ context.Context, data []byte) (*verifiedEnvelope, error) {
	b, err := parseBundleV03(data)
	if err != nil {
		return nil, err
	}
	vm := b.VerificationMaterial
	if vm.PublicKey == nil {
		if vm.X509CertificateChain != nil || vm.Certificate != nil {
			return nil, fmt.Errorf("%w: the bundle is signed with a certificate, not a public key; verify it as a certificate or Sigstore signature", ErrVerificationMaterial)
		}
		return nil, fmt.Errorf("%w: verificationMaterial has no publicKey", ErrBundle)
	}
	switch {
	case vm.PublicKey.Hint != "":
		if vm.PublicKey.Hint != v.hint {
			return nil, fmt.Errorf("%w: the bundle's key hint is %s, but the public key given hashes to %s", ErrWrongKey, vm.PublicKey.Hint, v.hint)
		}
	case vm.PublicKey.RawBytes != "":
		// model_signing ignores this field; a key that differs is still worth naming as the
		// reason, rather than leaving it to the signature check.
		if err := v.checkRawKey(vm.PublicKey.RawBytes); err != nil {
			return nil, err
		}
	}
	payload, err := b.payload()
	if err != nil {
		return nil, err
	}
	sig, err := b.signature()
	if err != nil {
		return nil, err
	}
	compat, err := verifyDSSE(v.pub, b.DSSEEnvelope.PayloadType, payload, sig)
	if err != nil {
		if errors.Is(err, ErrSignature) {
			return nil, fmt.Errorf("%w: the DSSE signature does not verify with key sha256:%s", ErrSignature, v.fingerprint)
		}
		return nil, err
	}
	return &verifiedEnvelope{
		payload:     payload,
		payloadType: b.DSSEEnvelope.PayloadType,
		mediaType:   b.MediaType,
		signer:      SignerInfo{Kind: SignerKey, KeyFingerprint: v.fingerprint},
		compat:      compat,
	}, nil
}

// checkRawKey compares the PEM public key an older bundle carries with the verifier's key.
func (v *keyVerifier) checkRawKey(raw string) error {
	p, err := decodeBase64(raw)
	if err != nil {
		return fmt.Errorf("%w: publicKey.rawBytes: %v", ErrBundle, err)
	}
	pub, err := parsePublicKey(p)
	if err != nil {
		return fmt.Errorf("%w: publicKey.rawBytes: %v", ErrBundle, err)
	}
	if !pub.Equal(v.pub) {
		fp, _ := KeyFingerprint(pub)
		return fmt.Errorf("%w: the bundle carries key sha256:%s, but the key given is sha256:%s", ErrWrongKey, fp, v.fingerprint)
	}
	return nil
}
