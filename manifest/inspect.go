package manifest

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
)

// Fulcio's certificate extensions for the OIDC issuer: the original raw-string form and the
// DER-encoded v2 form.
var (
	oidFulcioIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidFulcioIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
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
		if len(info.SANs) > 0 {
			info.Identity = info.SANs[0]
		}
		for _, ext := range leaf.Extensions {
			switch {
			case ext.Id.Equal(oidFulcioIssuerV2):
				var s string
				if _, err := asn1.Unmarshal(ext.Value, &s); err == nil {
					info.OIDCIssuer = s
				}
			case ext.Id.Equal(oidFulcioIssuerV1) && info.OIDCIssuer == "":
				info.OIDCIssuer = string(ext.Value)
			}
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
