package manifest

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
)

// InspectBundle reports who a signature bundle says signed it, WITHOUT verifying anything. It is
// for messages that name the signer that was found beside the one that was expected ("signed
// by X, want Y"); never use it to decide whom to trust.
func InspectBundle(data []byte) (*SignerInfo, error) {
	b, err := parseBundle(data)
	if err != nil {
		return nil, err
	}
	vm := b.VerificationMaterial
	info := &SignerInfo{}
	switch {
	case vm.PublicKey != nil:
		info.Kind = SignerKey
		info.KeyHint = vm.PublicKey.Hint
		if vm.PublicKey.RawBytes != "" {
			if raw, err := decodeBase64(vm.PublicKey.RawBytes); err == nil {
				if blk, _ := pem.Decode(raw); blk != nil {
					if pub, err := x509.ParsePKIXPublicKey(blk.Bytes); err == nil {
						info.KeyFingerprint, _ = KeyFingerprint(pub)
					}
				}
			}
		}
		return info, nil
	case vm.X509CertificateChain != nil:
		info.Kind = SignerCertificate
	case vm.Certificate != nil:
		info.Kind = SignerSigstore
	default:
		return nil, fmt.Errorf("%w: no public key or certificate in the verification material", ErrBundle)
	}
	ders, err := vm.certificates()
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(ders[0])
	if err != nil {
		return nil, fmt.Errorf("%w: leaf certificate: %v", ErrBundle, err)
	}
	describeCertificate(info, leaf)
	if info.Kind == SignerSigstore {
		// Read as sigstore-go reads it when verifying (URI SAN first, then e-mail), so that the
		// signer named here is the one the identity was compared with.
		if summary, err := certificate.SummarizeCertificate(leaf); err == nil {
			info.Identity = summary.SubjectAlternativeName
			info.OIDCIssuer = summary.Extensions.Issuer
			info.Extensions = fulcioExtensionValues(summary.Extensions)
		} else if len(info.SANs) > 0 {
			info.Identity = info.SANs[0]
		}
	}
	return info, nil
}

// String names the signer in one phrase: a Sigstore identity and issuer, a certificate subject,
// or a key.
func (s SignerInfo) String() string {
	switch {
	case s.Kind == SignerSigstore:
		return fmt.Sprintf("sigstore identity %s issued by %s", s.Identity, s.OIDCIssuer)
	case s.Kind == SignerCertificate:
		return fmt.Sprintf("certificate %q issued by %q", s.Subject, s.Issuer)
	case s.KeyFingerprint != "":
		return "key sha256:" + s.KeyFingerprint
	case s.KeyHint != "":
		return "key with hint " + s.KeyHint
	}
	return string(s.Kind) + " signer"
}
