package manifest

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// signedModel writes a small model, signs it with s, writes model.sig beside it, and returns
// the directory and the bundle.
func signedModel(t *testing.T, s Signer) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"config.json":         `{"architectures":["Demo"]}`,
		"model.safetensors":   "not really weights",
		"tokenizer.json":      "{}",
		"tokenizer/vocab.txt": "a\nb\n",
		".git/HEAD":           "ref: refs/heads/main\n",
	})
	sig, m, err := SignDir(context.Background(), dir, Options{}, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Resources) != 4 {
		t.Fatalf("%d resources, want 4 (the .git directory is left out)", len(m.Resources))
	}
	if err := os.WriteFile(filepath.Join(dir, DefaultSignatureFile), sig, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, sig
}

// tamperings are the ways a model can drift from its signature, and what each must produce.
var tamperings = []struct {
	name   string
	change func(t *testing.T, dir string)
	check  func(d *Diff) bool
}{
	{"extra file", func(t *testing.T, dir string) { writeFiles(t, dir, map[string]string{"backdoor.py": "import os"}) },
		func(d *Diff) bool { return len(d.Extra) == 1 && d.Extra[0] == "backdoor.py" }},
	{"missing file", func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, "tokenizer.json"))) },
		func(d *Diff) bool { return len(d.Missing) == 1 && d.Missing[0] == "tokenizer.json" }},
	{"changed byte", func(t *testing.T, dir string) {
		writeFiles(t, dir, map[string]string{"model.safetensors": "not really weightS"})
	}, func(d *Diff) bool { return len(d.Mismatched) == 1 && d.Mismatched[0].Name == "model.safetensors" }},
	{"renamed file", func(t *testing.T, dir string) {
		must(t, os.Rename(filepath.Join(dir, "config.json"), filepath.Join(dir, "config.json.bak")))
	}, func(d *Diff) bool { return len(d.Missing) == 1 && len(d.Extra) == 1 && d.Extra[0] == "config.json.bak" }},
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestKeySignatureRoundTripsOnEveryCurve(t *testing.T) {
	pki := newTestPKI(t)
	for _, curve := range []string{"p256", "p384", "p521"} {
		t.Run(curve, func(t *testing.T) {
			s, err := NewKeySigner(pki.keyPEM(t, curve), nil)
			must(t, err)
			dir, sig := signedModel(t, s)
			v, err := NewKeyVerifier(pki.keyPub(t, curve))
			must(t, err)
			res, err := VerifyDir(context.Background(), dir, sig, v, CheckOptions{})
			must(t, err)
			fp, _ := KeyFingerprint(pki.key(t, curve).Public())
			if res.Signer.Kind != SignerKey || res.Signer.KeyFingerprint != fp || res.Compat || !res.SignedAt.IsZero() {
				t.Fatalf("evidence %+v", res)
			}
		})
	}
}

func TestKeySignatureRefusesEveryTampering(t *testing.T) {
	pki := newTestPKI(t)
	s, err := NewKeySigner(pki.keyPEM(t, "p256"), nil)
	must(t, err)
	v, err := NewKeyVerifier(pki.keyPub(t, "p256"))
	must(t, err)
	for _, tc := range tamperings {
		t.Run(tc.name, func(t *testing.T) {
			dir, sig := signedModel(t, s)
			tc.change(t, dir)
			_, err := VerifyDir(context.Background(), dir, sig, v, CheckOptions{})
			var d *Diff
			if !errors.As(err, &d) || !errors.Is(err, ErrMismatch) || !tc.check(d) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestKeySignatureRefusesAnotherKey(t *testing.T) {
	pki := newTestPKI(t)
	s, err := NewKeySigner(pki.keyPEM(t, "p256-signer"), nil)
	must(t, err)
	dir, sig := signedModel(t, s)
	v, err := NewKeyVerifier(pki.keyPub(t, "p256-other"))
	must(t, err)
	_, err = VerifyDir(context.Background(), dir, sig, v, CheckOptions{})
	if !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), "hint") {
		t.Fatalf("got %v, want ErrWrongKey naming the hint", err)
	}
	// Without the hint to go by, the signature itself must fail.
	noHint := []byte(strings.Replace(string(sig), `"publicKey":{"hint":"`, `"publicKey":{"x":"`, 1))
	if _, err := Verify(context.Background(), noHint, v); !errors.Is(err, ErrSignature) {
		t.Fatalf("got %v, want ErrSignature", err)
	}
}

func TestKeySignerReadsEncryptedKeys(t *testing.T) {
	for _, name := range []string{"ec-p256-pkcs8-encrypted", "ec-p521-legacy-encrypted"} {
		t.Run(name, func(t *testing.T) {
			priv := readFile(t, "../testdata/signing/"+name+".pem")
			if _, err := NewKeySigner(priv, nil); !errors.Is(err, ErrUnsupportedKey) || !strings.Contains(err.Error(), "password") {
				t.Fatalf("without a password: %v", err)
			}
			if _, err := NewKeySigner(priv, []byte("wrong-password")); err == nil {
				t.Fatal("a wrong password decrypted the key")
			}
			s, err := NewKeySigner(priv, []byte("test-password"))
			must(t, err)
			dir, sig := signedModel(t, s)
			v, err := NewKeyVerifier(readFile(t, "../testdata/signing/"+name+".pub.pem"))
			must(t, err)
			_, err = VerifyDir(context.Background(), dir, sig, v, CheckOptions{})
			must(t, err)
		})
	}
}

func TestKeySignerRefusesKeysModelSigningCannotVerify(t *testing.T) {
	if _, err := NewKeySigner([]byte("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n"), nil); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("an Ed25519 key: %v", err)
	}
	if _, err := NewKeySigner([]byte("no key here"), nil); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("no key: %v", err)
	}
	if _, err := NewKeyVerifier(readFile(t, pythonKeys+"/ca-cert.pem")); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("a certificate for a public key: %v", err)
	}
}

func TestCertificateSignatureRoundTripsWithItsChain(t *testing.T) {
	pki := newTestPKI(t)
	s, err := NewCertificateSigner(pki.keyPEM(t, "p384"), pki.signingLeaf(t, "p384"), pki.intPEM)
	must(t, err)
	dir, sig := signedModel(t, s)
	v, err := NewCertificateVerifier(CertificateVerifierOptions{Roots: [][]byte{pki.rootPEM}})
	must(t, err)
	res, err := VerifyDir(context.Background(), dir, sig, v, CheckOptions{})
	must(t, err)
	if res.Signer.Kind != SignerCertificate || res.Signer.Subject != "CN=model publisher p384,O=Example Models" ||
		res.Signer.Issuer != "CN=test intermediate CA" || len(res.Signer.SANs) != 1 || res.Signer.SerialNumber == "" {
		t.Fatalf("evidence %+v", res.Signer)
	}
	for _, tc := range tamperings {
		t.Run(tc.name, func(t *testing.T) {
			dir, sig := signedModel(t, s)
			tc.change(t, dir)
			_, err := VerifyDir(context.Background(), dir, sig, v, CheckOptions{})
			var d *Diff
			if !errors.As(err, &d) || !tc.check(d) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestCertificateSignatureRefusesAnotherCA(t *testing.T) {
	pki, other := newTestPKI(t), newTestPKI(t)
	s, err := NewCertificateSigner(pki.keyPEM(t, "p256"), pki.signingLeaf(t, "p256"), pki.intPEM)
	must(t, err)
	_, sig := signedModel(t, s)
	v, err := NewCertificateVerifier(CertificateVerifierOptions{Roots: [][]byte{other.rootPEM}})
	must(t, err)
	if _, err := Verify(context.Background(), sig, v); !errors.Is(err, ErrUntrustedChain) {
		t.Fatalf("got %v, want ErrUntrustedChain", err)
	}
	// The intermediate alone is not a trust anchor the signer can smuggle in: without it in
	// the bundle, the chain to the root breaks.
	s, err = NewCertificateSigner(pki.keyPEM(t, "p256"), pki.signingLeaf(t, "p256"))
	must(t, err)
	_, sig = signedModel(t, s)
	v, err = NewCertificateVerifier(CertificateVerifierOptions{Roots: [][]byte{pki.rootPEM}})
	must(t, err)
	if _, err := Verify(context.Background(), sig, v); !errors.Is(err, ErrUntrustedChain) {
		t.Fatalf("got %v, want ErrUntrustedChain", err)
	}
	// Several anchors, in one file or many, are all trusted.
	v, err = NewCertificateVerifier(CertificateVerifierOptions{Roots: [][]byte{append(append([]byte{}, other.rootPEM...), pki.intPEM...)}})
	must(t, err)
	if _, err := Verify(context.Background(), sig, v); err != nil {
		t.Fatalf("an intermediate given as a trust anchor: %v", err)
	}
}

func TestCertificateSignatureRefusesAnExpiredCertificate(t *testing.T) {
	pki := newTestPKI(t)
	now := time.Now()
	expired := pki.leaf(t, "p256", now.Add(-3*time.Hour), now.Add(-2*time.Hour), x509.KeyUsageDigitalSignature, x509.ExtKeyUsageCodeSigning)
	s, err := NewCertificateSigner(pki.keyPEM(t, "p256"), expired, pki.intPEM)
	must(t, err)
	_, sig := signedModel(t, s)
	v, err := NewCertificateVerifier(CertificateVerifierOptions{Roots: [][]byte{pki.rootPEM}})
	must(t, err)
	if _, err := Verify(context.Background(), sig, v); !errors.Is(err, ErrCertificateExpired) {
		t.Fatalf("got %v, want ErrCertificateExpired", err)
	}
}

func TestCertificateWithoutSigningUsageIsRefused(t *testing.T) {
	pki := newTestPKI(t)
	now := time.Now()
	leaf := pki.leaf(t, "p256", now.Add(-time.Hour), now.Add(time.Hour), x509.KeyUsageKeyAgreement, x509.ExtKeyUsageServerAuth)
	if _, err := NewCertificateSigner(pki.keyPEM(t, "p256"), leaf, pki.intPEM); !errors.Is(err, ErrCertificateUsage) {
		t.Fatalf("signer: got %v, want ErrCertificateUsage", err)
	}
	// A bundle made anyway (by another tool) is refused too.
	sig := signedWithAnyLeaf(t, pki, leaf)
	v, err := NewCertificateVerifier(CertificateVerifierOptions{Roots: [][]byte{pki.rootPEM}})
	must(t, err)
	if _, err := Verify(context.Background(), sig, v); !errors.Is(err, ErrCertificateUsage) {
		t.Fatalf("verifier: got %v, want ErrCertificateUsage", err)
	}
}

// signedWithAnyLeaf makes the bundle another tool could make with leaf (for the key called
// "p256"), which this package's signer would refuse to write.
func signedWithAnyLeaf(t *testing.T, pki *testPKI, leaf []byte) []byte {
	t.Helper()
	s, err := NewCertificateSigner(pki.keyPEM(t, "p256"), pki.signingLeaf(t, "p256"), pki.intPEM)
	must(t, err)
	s.(*ecdsaSigner).chain[0] = mustParseCert(t, leaf).Raw
	_, sig := signedModel(t, s)
	return sig
}

func TestCertificateSignerRefusesACertificateForAnotherKey(t *testing.T) {
	pki := newTestPKI(t)
	if _, err := NewCertificateSigner(pki.keyPEM(t, "p256-a"), pki.signingLeaf(t, "p256-b")); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("got %v, want ErrWrongKey", err)
	}
}

func mustParseCert(t *testing.T, p []byte) *x509.Certificate {
	t.Helper()
	certs, err := parseCertificatesPEM(p)
	must(t, err)
	return certs[0]
}

func TestVerifiersRefuseBundlesOfAnotherKind(t *testing.T) {
	pki := newTestPKI(t)
	ks, err := NewKeySigner(pki.keyPEM(t, "p256"), nil)
	must(t, err)
	_, keySig := signedModel(t, ks)
	cs, err := NewCertificateSigner(pki.keyPEM(t, "p256"), pki.signingLeaf(t, "p256"), pki.intPEM)
	must(t, err)
	_, certSig := signedModel(t, cs)
	kv, err := NewKeyVerifier(pki.keyPub(t, "p256"))
	must(t, err)
	cv, err := NewCertificateVerifier(CertificateVerifierOptions{Roots: [][]byte{pki.rootPEM}})
	must(t, err)
	sv, err := NewSigstoreVerifier(SigstoreVerifierOptions{Identity: testIdentity, Issuer: testIssuer})
	must(t, err)
	for _, c := range []struct {
		sig []byte
		v   Verifier
	}{{keySig, cv}, {keySig, sv}, {certSig, kv}} {
		if _, err := Verify(context.Background(), c.sig, c.v); !errors.Is(err, ErrVerificationMaterial) {
			t.Fatalf("%s verifier: got %v, want ErrVerificationMaterial", c.v.Kind(), err)
		}
	}
}

func TestSigningAModelWithNoFilesIsRefused(t *testing.T) {
	pki := newTestPKI(t)
	s, err := NewKeySigner(pki.keyPEM(t, "p256"), nil)
	must(t, err)
	ctx := context.Background()
	cases := map[string]struct {
		files map[string]string
		opts  Options
	}{
		"empty directory":         {},
		"only git metadata":       {files: map[string]string{".git/HEAD": "ref: refs/heads/main\n", ".gitattributes": "*.bin lfs\n"}},
		"every file ignored":      {files: map[string]string{"weights/a.bin": "a"}, opts: Options{IgnorePaths: []string{"weights"}}},
		"only an old signature":   {files: map[string]string{DefaultSignatureFile: "{}"}},
		"empty files with shards": {files: map[string]string{"a.bin": "", "b.bin": ""}, opts: Options{Method: MethodShards}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, c.files)
			sig, m, err := SignDir(ctx, dir, c.opts, s)
			if !errors.Is(err, ErrEmptyModel) || sig != nil || m != nil {
				t.Fatalf("got %v (%d bytes), want ErrEmptyModel", err, len(sig))
			}
			if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "section 6.1") {
				t.Errorf("the refusal does not name the model and the rule: %v", err)
			}
		})
	}
	// Sign refuses an empty manifest however it was made.
	if _, err := Sign(ctx, &Manifest{ModelName: "m", Serialization: Serialization{Method: MethodFiles, HashType: SHA256}}, s); !errors.Is(err, ErrEmptyModel) {
		t.Fatalf("Sign of an empty manifest: %v", err)
	}
}
