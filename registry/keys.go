package registry

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/proto"
)

// NewKeyVerifier is a SignatureVerifier for signatures made with the private half of pubPEM
// (cosign sign --key), whatever key hint the signature carries. It requires no transparency log
// entry or timestamp, as cosign's offline key signing makes none; use it with verify.WithKey().
func NewKeyVerifier(pubPEM []byte) (*verify.Verifier, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		return nil, fmt.Errorf("registry: public key: %w", err)
	}
	sv, err := signature.LoadDefaultVerifier(pub)
	if err != nil {
		return nil, fmt.Errorf("registry: public key: %w", err)
	}
	key := root.NewExpiringKey(sv, time.Time{}, time.Time{})
	tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return key, nil })
	return verify.NewVerifier(tm, verify.WithNoObserverTimestamps())
}

// CertificateCheck judges a signer's certificate: its chain (intermediates are untrusted, as
// the signature carried them) to a CA, its usages and the names it holds. manifest's
// CheckCertificate with a policy's certificate identity is one.
type CertificateCheck func(leaf *x509.Certificate, intermediates []*x509.Certificate) error

// NewCertificateVerifier is a SignatureVerifier for signatures made with a certificate's key
// and no transparency log (cosign sign --key K --certificate C --certificate-chain CHAIN
// --tlog-upload=false): the certificate a signature carries (a bundle's certificate or
// x509CertificateChain, a .sig layer's certificate and chain annotations) is judged by check,
// and the signature is then checked by sigstore-go with that certificate's key, as a key
// signature: the same DSSE, subject and payload checks as NewKeyVerifier's. No log entry or
// timestamp is required, so the certificate must be valid now. Use it with verify.WithKey().
func NewCertificateVerifier(check CertificateCheck) SignatureVerifier {
	return certificateVerifier{check: check}
}

type certificateVerifier struct{ check CertificateCheck }

func (cv certificateVerifier) Verify(entity verify.SignedEntity, pb verify.PolicyBuilder) (*verify.VerificationResult, error) {
	b, ok := entity.(*bundle.Bundle)
	if !ok || b.Bundle == nil {
		return nil, fmt.Errorf("registry: a certificate signature must be a Sigstore bundle, not %T", entity)
	}
	chain, err := bundleCertificates(b)
	if err != nil {
		return nil, err
	}
	if len(chain) == 0 {
		return nil, errors.New("the signature carries no certificate (it was made with a bare key); a certificate identity needs cosign sign --certificate")
	}
	if err := cv.check(chain[0], chain[1:]); err != nil {
		return nil, err
	}
	// The same bundle with the certificate replaced by a bare key reference, checked with the
	// certificate's key: sigstore-go's verifier for certificates wants a Fulcio-style CA, a
	// log or timestamp, and codeSigning fixed, none of which a certificate identity asks for.
	pbKey := proto.Clone(b.Bundle).(*protobundle.Bundle)
	pbKey.VerificationMaterial = &protobundle.VerificationMaterial{
		Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{}},
	}
	keyOnly, err := bundle.NewBundle(pbKey)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(chain[0].PublicKey)
	if err != nil {
		return nil, fmt.Errorf("registry: the certificate's key: %w", err)
	}
	kv, err := NewKeyVerifier(pubPEM)
	if err != nil {
		return nil, err
	}
	return kv.Verify(keyOnly, pb)
}

// bundleCertificates returns the certificates a bundle's verification material carries, leaf
// first: its certificate, or its x509CertificateChain. None for a key signature.
func bundleCertificates(b *bundle.Bundle) ([]*x509.Certificate, error) {
	vm := b.Bundle.GetVerificationMaterial()
	var raw [][]byte
	if c := vm.GetCertificate(); c != nil {
		raw = append(raw, c.GetRawBytes())
	}
	for _, c := range vm.GetX509CertificateChain().GetCertificates() {
		raw = append(raw, c.GetRawBytes())
	}
	out := make([]*x509.Certificate, 0, len(raw))
	for i, der := range raw {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("certificate %d of the signature: %v", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}
