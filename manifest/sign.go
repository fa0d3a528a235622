package manifest

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// Signer signs a model's in-toto statement and returns the whole signature file: a Sigstore
// bundle v0.3 whose DSSE envelope carries the statement. NewKeySigner, NewCertificateSigner and
// NewSigstoreSigner make the three kinds model_signing has.
type Signer interface {
	// SignPayload signs payload, an in-toto statement as EncodeStatement writes it, and returns
	// the bundle's JSON.
	SignPayload(ctx context.Context, payload []byte) ([]byte, error)
}

// Sign encodes m as model_signing's in-toto statement and signs it with s. The result is the
// content of a model.sig file. A manifest without resources is refused with ErrEmptyModel:
// the OMS specification (section 6.1) requires at least one file, and Python model_signing
// signing an empty model anyway is its issue #661.
func Sign(ctx context.Context, m *Manifest, s Signer) ([]byte, error) {
	if len(m.Resources) == 0 {
		return nil, fmt.Errorf("%w: the manifest of %q lists no resources; the OMS specification (section 6.1) requires at least one", ErrEmptyModel, m.ModelName)
	}
	payload, err := EncodeStatement(m)
	if err != nil {
		return nil, err
	}
	return s.SignPayload(ctx, payload)
}

// SignDir hashes the model at modelPath (FromDir with opts) and signs its manifest with s. It
// returns the bundle, to be written to opts.SignatureFile (model.sig by default), and the
// manifest it covers. The signature file itself is always left out of the manifest. A model
// with nothing to sign (an empty directory, or one whose files are all ignored, or all empty
// under shards serialization, which gives empty files no shard) is refused with ErrEmptyModel.
func SignDir(ctx context.Context, modelPath string, opts Options, s Signer) ([]byte, *Manifest, error) {
	m, err := FromDir(ctx, modelPath, opts)
	if err != nil {
		return nil, nil, err
	}
	if len(m.Resources) == 0 {
		why := "ignored: " + strings.Join(m.Serialization.IgnorePaths, ", ")
		if m.Serialization.Method == MethodShards {
			why += "; shards serialization gives an empty file no shard"
		}
		return nil, nil, fmt.Errorf("%w: %s holds no file to sign (%s); the OMS specification (section 6.1) requires at least one", ErrEmptyModel, modelPath, why)
	}
	b, err := Sign(ctx, m, s)
	if err != nil {
		return nil, nil, err
	}
	return b, m, nil
}

// ecdsaSigner signs the DSSE envelope with a local ECDSA key and describes itself in the
// bundle either by its key hint or by its certificate chain.
type ecdsaSigner struct {
	key   *ecdsa.PrivateKey
	hint  string   // key signer: hex SHA-256 of the public key's PEM
	chain [][]byte // certificate signer: DER, leaf first
}

// NewKeySigner returns a Signer for an ECDSA private key in PEM (P-256, P-384 or P-521;
// PKCS#8 or SEC 1, and encrypted with password if it is). Its bundles name the key by
// model_signing's hint, the hex SHA-256 of the public key's PEM text.
func NewKeySigner(privPEM []byte, password []byte) (Signer, error) {
	key, err := parsePrivateKey(privPEM, password)
	if err != nil {
		return nil, err
	}
	hint, err := keyHint(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	return &ecdsaSigner{key: key, hint: hint}, nil
}

// NewCertificateSigner returns a Signer for an ECDSA private key and its signing certificate,
// both PEM, and the certificates that chain it to a root (PEM, any number per argument, the
// issuer of the previous one first). Its bundles carry the chain, leaf first, as
// model_signing's x509CertificateChain. The certificate must match the key and allow signing.
func NewCertificateSigner(privPEM, certPEM []byte, chainPEM ...[]byte) (Signer, error) {
	key, err := parsePrivateKey(privPEM, nil)
	if err != nil {
		return nil, err
	}
	leaves, err := parseCertificatesPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("signing certificate: %w", err)
	}
	leaf := leaves[0]
	if !key.PublicKey.Equal(leaf.PublicKey) {
		return nil, fmt.Errorf("%w: the signing certificate (subject %q) is for another key than the private key", ErrWrongKey, leaf.Subject.String())
	}
	if err := checkSigningUsage(leaf); err != nil {
		return nil, err
	}
	chain := [][]byte{leaf.Raw}
	for i, p := range chainPEM {
		certs, err := parseCertificatesPEM(p)
		if err != nil {
			return nil, fmt.Errorf("certificate chain %d: %w", i, err)
		}
		for _, c := range certs {
			chain = append(chain, c.Raw)
		}
	}
	if len(chain) > maxCertificates {
		return nil, fmt.Errorf("%w: %d certificates, over the limit of %d", ErrBundle, len(chain), maxCertificates)
	}
	return &ecdsaSigner{key: key, chain: chain}, nil
}

func (s *ecdsaSigner) SignPayload(ctx context.Context, payload []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := curveHash(&s.key.PublicKey)
	if err != nil {
		return nil, err
	}
	d := h.New()
	d.Write(pae(PayloadType, payload))
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, d.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	vm := &verificationMaterial{TlogEntries: []json.RawMessage{}}
	if s.chain != nil {
		vm.X509CertificateChain = &certificateChain{}
		for _, c := range s.chain {
			vm.X509CertificateChain.Certificates = append(vm.X509CertificateChain.Certificates, rawCertificate{RawBytes: base64.StdEncoding.EncodeToString(c)})
		}
	} else {
		vm.PublicKey = &publicKeyMaterial{Hint: s.hint}
	}
	b := &bundle{
		MediaType:            BundleMediaType,
		VerificationMaterial: vm,
		DSSEEnvelope: &dsseEnvelope{
			Payload:     base64.StdEncoding.EncodeToString(payload),
			PayloadType: PayloadType,
			Signatures:  []dsseSignature{{Sig: base64.StdEncoding.EncodeToString(sig)}},
		},
	}
	return b.marshal()
}

// checkSigningUsage applies model_signing's rule: the certificate must allow digital
// signatures, or carry the code-signing extended key usage.
func checkSigningUsage(c *x509.Certificate) error {
	if c.KeyUsage&x509.KeyUsageDigitalSignature != 0 {
		return nil
	}
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageCodeSigning {
			return nil
		}
	}
	return fmt.Errorf("%w: certificate %q has neither the digitalSignature key usage nor the codeSigning extended key usage", ErrCertificateUsage, c.Subject.String())
}
