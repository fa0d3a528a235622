package manifest

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// reasons are the sentinels a refusal may wrap; a refusal that wraps none has not said why.
var reasons = []error{
	ErrBundle, ErrMediaType, ErrPayloadType, ErrVerificationMaterial, ErrSignature, ErrWrongKey,
	ErrUnsupportedKey, ErrUntrustedChain, ErrCertificateUsage, ErrCertificateExpired, ErrIdentity,
	ErrTransparencyLog, ErrInvalid, ErrStatementType, ErrPredicateType, ErrSubject, ErrRootDigest,
	ErrUnsafeName,
}

// FuzzVerifyBundle feeds arbitrary signature files to all three verifiers. None may panic;
// every refusal must be a *VerificationError naming one of the reasons; and whatever is
// accepted must be a self-consistent statement from the bytes the signature covers.
func FuzzVerifyBundle(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(signedDir, "*", "model.sig"))
	vectors, _ := filepath.Glob(filepath.Join(specVectors, "*", "*.json"))
	for _, p := range append(seeds, vectors...) {
		f.Add(readFile(f, p))
	}
	f.Add([]byte(`{"mediaType":"` + BundleMediaType + `","verificationMaterial":{"publicKey":{"rawBytes":"AAAA"}},"dsseEnvelope":{"payload":"e30","payloadType":"t","signatures":[{"sig":"AA=="}]}}`))
	// A certificate bundle from a test CA with an all-ECDSA chain, beside the Python CA's
	// RSA-rooted ones.
	pki := newTestPKI(f)
	cs, err := NewCertificateSigner(pki.keyPEM(f, "p384"), pki.signingLeaf(f, "p384"), pki.intPEM)
	if err != nil {
		f.Fatal(err)
	}
	m, err := FromDir(context.Background(), filepath.Join(signedDir, "v1.1.0-certificate"), Options{IgnorePaths: []string{"ignore-me"}})
	if err != nil {
		f.Fatal(err)
	}
	certBundle, err := Sign(context.Background(), m, cs)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(certBundle)
	cv, err := NewCertificateVerifier(CertificateVerifierOptions{Roots: [][]byte{pki.rootPEM}})
	if err != nil {
		f.Fatal(err)
	}
	verifiers := []Verifier{pythonVerifier(f, SignerKey), pythonVerifier(f, SignerCertificate), cv, pythonVerifier(f, SignerSigstore)}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range verifiers {
			res, err := Verify(context.Background(), data, v)
			if err != nil {
				var ve *VerificationError
				if !errors.As(err, &ve) || ve.Kind != v.Kind() {
					t.Fatalf("%s verifier: refusal is not a *VerificationError: %v", v.Kind(), err)
				}
				named := false
				for _, r := range reasons {
					named = named || errors.Is(err, r)
				}
				if !named {
					t.Fatalf("%s verifier: refusal names no reason: %v", v.Kind(), err)
				}
				continue
			}
			if res.Signer.Kind != v.Kind() || res.Manifest != res.Statement.Manifest {
				t.Fatalf("inconsistent result %+v", res)
			}
			if res.Statement.PredicateType == PredicateType && res.Statement.SubjectDigest != res.Manifest.RootDigest() {
				t.Fatal("accepted a root digest that does not match the resources")
			}
		}
	})
}

// FuzzParseTrustConfig feeds arbitrary trust files to the trusted root and client trust config
// reader. None may panic, and whatever is accepted has a trusted root.
func FuzzParseTrustConfig(f *testing.F) {
	f.Add(productionTrustedRoot)
	f.Add(readFile(f, interop+"/golden-payloads/custom_trust_config.json"))
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tc, err := ParseTrustConfig(data)
		if err != nil {
			if !errors.Is(err, ErrTrustRoot) {
				t.Fatalf("refusal names no reason: %v", err)
			}
			return
		}
		if tc.TrustedRoot == nil {
			t.Fatal("accepted a trust config without a trusted root")
		}
	})
}
