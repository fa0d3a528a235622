package manifest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	_ "crypto/sha512" // registers SHA-384 and SHA-512 for P-384 and P-521
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/youmark/pkcs8"
)

// parsePrivateKey reads an ECDSA private key from PEM: PKCS#8 ("PRIVATE KEY"), SEC 1
// ("EC PRIVATE KEY"), encrypted PKCS#8 ("ENCRYPTED PRIVATE KEY"), or SEC 1 with OpenSSL's
// legacy "Proc-Type: 4,ENCRYPTED" header; the last two need the password. Text around the
// PEM block (as certtool writes) is skipped.
func parsePrivateKey(privPEM, password []byte) (*ecdsa.PrivateKey, error) {
	block, err := firstPEM(privPEM, "PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY")
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	der := block.Bytes
	//nolint:staticcheck // legacy PEM encryption is what OpenSSL's "ec -aes256" writes
	if x509.IsEncryptedPEMBlock(block) {
		if len(password) == 0 {
			return nil, fmt.Errorf("%w: the private key is encrypted; a password is needed", ErrUnsupportedKey)
		}
		//nolint:staticcheck
		if der, err = x509.DecryptPEMBlock(block, password); err != nil {
			return nil, fmt.Errorf("%w: cannot decrypt the private key: %v", ErrUnsupportedKey, err)
		}
	}
	var key any
	switch block.Type {
	case "ENCRYPTED PRIVATE KEY":
		if len(password) == 0 {
			return nil, fmt.Errorf("%w: the private key is encrypted; a password is needed", ErrUnsupportedKey)
		}
		key, err = pkcs8.ParsePKCS8PrivateKey(der, password)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(der)
	default:
		key, err = x509.ParsePKCS8PrivateKey(der)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: cannot parse the %s: %v", ErrUnsupportedKey, block.Type, err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: the private key is %T; model_signing signs with ECDSA only", ErrUnsupportedKey, key)
	}
	if _, err := curveHash(&ec.PublicKey); err != nil {
		return nil, err
	}
	return ec, nil
}

// parsePublicKey reads an ECDSA public key (SubjectPublicKeyInfo) from PEM. Ed25519 and RSA
// keys are refused by name: model_signing signs and verifies key-mode bundles with ECDSA on
// P-256, P-384 and P-521 only, so a bundle made with any other key is one that it, and every
// conforming OMS verifier, refuses.
func parsePublicKey(pubPEM []byte) (*ecdsa.PublicKey, error) {
	block, err := firstPEM(pubPEM, "PUBLIC KEY")
	if err != nil {
		if private := privateKeyBlock(pubPEM); private != "" {
			return nil, fmt.Errorf("%w (PEM %q); derive the public key with: "+
				"openssl pkey -in PRIVATE_KEY.pem -pubout -out public.pem", ErrPrivateKey, private)
		}
		return nil, fmt.Errorf("public key: %w", err)
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot parse the public key: %v", ErrUnsupportedKey, err)
	}
	ec, ok := key.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: the public key is %s; model_signing signs and verifies with ECDSA keys only "+
			"(P-256, P-384 or P-521; make one with: openssl ecparam -name prime256v1 -genkey -noout -out key.pem)",
			ErrUnsupportedKey, keyTypeName(key))
	}
	if _, err := curveHash(ec); err != nil {
		return nil, err
	}
	return ec, nil
}

// privateKeyBlock returns the type of the first private key PEM block in data, or "".
func privateKeyBlock(data []byte) string {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return ""
		}
		if strings.HasSuffix(block.Type, "PRIVATE KEY") {
			return block.Type
		}
	}
}

// keyTypeName names a public key's algorithm for messages.
func keyTypeName(key any) string {
	switch k := key.(type) {
	case ed25519.PublicKey:
		return "an Ed25519 key"
	case *rsa.PublicKey:
		return fmt.Sprintf("an RSA key of %d bits", k.N.BitLen())
	}
	return fmt.Sprintf("of type %T", key)
}

// firstPEM returns the first PEM block of one of the given types, skipping any text and other
// blocks around it.
func firstPEM(data []byte, types ...string) (*pem.Block, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("%w: no PEM block of type %q", ErrUnsupportedKey, types)
		}
		for _, t := range types {
			if block.Type == t {
				return block, nil
			}
		}
	}
}

// parseCertificatesPEM reads every CERTIFICATE block in data.
func parseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs), err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return certs, nil
}

// curveHash is the hash model_signing pairs with each curve.
func curveHash(pub *ecdsa.PublicKey) (crypto.Hash, error) {
	switch pub.Curve {
	case elliptic.P256():
		return crypto.SHA256, nil
	case elliptic.P384():
		return crypto.SHA384, nil
	case elliptic.P521():
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("%w: ECDSA curve %s; want P-256, P-384 or P-521", ErrUnsupportedKey, pub.Curve.Params().Name)
}

// publicKeyPEM is the key as Python's cryptography writes it: PEM SubjectPublicKeyInfo, 64
// characters a line, with a final newline.
func publicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// keyHint is model_signing's publicKey.hint: hex SHA-256 of the key's PEM text (not of its DER,
// as sigstore-go and cosign compute theirs).
func keyHint(pub crypto.PublicKey) (string, error) {
	p, err := publicKeyPEM(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(p)
	return hex.EncodeToString(sum[:]), nil
}

// KeyFingerprint is hex SHA-256 of the key's DER SubjectPublicKeyInfo, the fingerprint a
// Result reports for every kind of signer.
func KeyFingerprint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// verifyECDSA checks an ASN.1 signature over msg, hashing msg with h.
func verifyECDSA(pub *ecdsa.PublicKey, h crypto.Hash, msg, sig []byte) bool {
	d := h.New()
	d.Write(msg)
	return ecdsa.VerifyASN1(pub, d.Sum(nil), sig)
}

// verifyDSSE checks sig over the envelope the way model_signing does: the standard PAE with the
// curve's hash, and failing that the v0.2 compat PAE (with the curve's hash, or SHA-256, which
// v0.2's certificate signer hard-coded). compat reports that the compat PAE matched.
func verifyDSSE(pub *ecdsa.PublicKey, payloadType string, payload, sig []byte) (compat bool, err error) {
	h, err := curveHash(pub)
	if err != nil {
		return false, err
	}
	if verifyECDSA(pub, h, pae(payloadType, payload), sig) {
		return false, nil
	}
	old := paeCompat(payloadType, payload)
	if verifyECDSA(pub, h, old, sig) || (h != crypto.SHA256 && verifyECDSA(pub, crypto.SHA256, old, sig)) {
		return true, nil
	}
	return false, ErrSignature
}
