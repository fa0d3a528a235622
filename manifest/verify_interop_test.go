package manifest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	signedDir      = interop + "/signed"
	pythonKeys     = signedDir + "/keys/certificate"
	pythonIdentity = "stefanb@us.ibm.com"
	pythonIssuer   = "https://sigstore.verify.ibm.com/oauth2"
)

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pythonSet is one model signed by a released Python model_signing.
type pythonSet struct {
	dir       string
	model     string // relative to dir: "." for the directory, or the single file signed
	ignore    []string
	kind      SignerKind
	compat    bool
	predicate string
}

var pythonSets = []pythonSet{
	{dir: "v0.2.0-certificate", model: ".", kind: SignerCertificate, compat: true, predicate: PredicateTypeV01},
	{dir: "v0.3.1-certificate", model: ".", kind: SignerCertificate},
	{dir: "v1.0.0-certificate", model: ".", kind: SignerCertificate},
	{dir: "v1.0.1-certificate", model: ".", kind: SignerCertificate, ignore: []string{"ignore-me"}},
	{dir: "v1.1.0-certificate", model: ".", kind: SignerCertificate},
	{dir: "v0.3.1-elliptic-key", model: "signme-1", kind: SignerKey},
	{dir: "v1.0.0-elliptic-key", model: "signme-1", kind: SignerKey},
	{dir: "v1.0.1-elliptic-key", model: ".", kind: SignerKey, ignore: []string{"ignore-me"}},
	{dir: "v1.1.0-elliptic-key", model: ".", kind: SignerKey},
	{dir: "v0.3.1-sigstore", model: ".", kind: SignerSigstore},
	{dir: "v1.0.0-sigstore", model: ".", kind: SignerSigstore},
	{dir: "v1.0.1-sigstore", model: ".", kind: SignerSigstore, ignore: []string{"ignore-me"}},
	{dir: "v1.1.0-sigstore", model: ".", kind: SignerSigstore},
}

func pythonVerifier(t testing.TB, kind SignerKind) Verifier {
	t.Helper()
	var v Verifier
	var err error
	switch kind {
	case SignerKey:
		v, err = NewKeyVerifier(readFile(t, pythonKeys+"/signing-key-pub.pem"))
	case SignerCertificate:
		v, err = NewCertificateVerifier(CertificateVerifierOptions{Roots: [][]byte{readFile(t, pythonKeys+"/ca-cert.pem")}})
	case SignerSigstore:
		v, err = NewSigstoreVerifier(SigstoreVerifierOptions{Identity: pythonIdentity, Issuer: pythonIssuer})
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// copyModel copies a signed Python model into a temporary directory, so a test may change it.
func copyModel(t *testing.T, dir string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(filepath.Join(signedDir, dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.WriteFile(filepath.Join(dst, e.Name()), readFile(t, filepath.Join(signedDir, dir, e.Name())), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestEveryPythonBundleVerifiesAgainstItsFiles(t *testing.T) {
	for _, s := range pythonSets {
		t.Run(s.dir, func(t *testing.T) {
			dir := filepath.Join(signedDir, s.dir)
			sig := readFile(t, filepath.Join(dir, "model.sig"))
			res, err := VerifyDir(context.Background(), filepath.Join(dir, s.model), sig, pythonVerifier(t, s.kind), CheckOptions{IgnorePaths: s.ignore})
			if err != nil {
				t.Fatal(err)
			}
			if res.Signer.Kind != s.kind || res.Compat != s.compat || res.MediaType != BundleMediaType {
				t.Fatalf("signer %q compat %v media type %q", res.Signer.Kind, res.Compat, res.MediaType)
			}
			want := s.predicate
			if want == "" {
				want = PredicateType
			}
			if res.Statement.PredicateType != want {
				t.Fatalf("predicate type %q", res.Statement.PredicateType)
			}
			if len(res.Manifest.Resources) == 0 || len(res.Signer.KeyFingerprint) != 64 {
				t.Fatalf("empty evidence: %+v", res.Signer)
			}
			switch s.kind {
			case SignerCertificate:
				if res.Signer.Subject != "CN=intermediate-ca" || res.Signer.Certificate == nil || !res.SignedAt.IsZero() {
					t.Fatalf("certificate evidence %+v at %v", res.Signer, res.SignedAt)
				}
			case SignerSigstore:
				if res.Signer.Identity != pythonIdentity || res.Signer.OIDCIssuer != pythonIssuer {
					t.Fatalf("sigstore evidence %+v", res.Signer)
				}
				// The log entries were made in 2025; the certificates lived ten minutes then.
				if res.SignedAt.Year() != 2025 || res.SignedAt.Before(res.Signer.Certificate.NotBefore) || res.SignedAt.After(res.Signer.Certificate.NotAfter) {
					t.Fatalf("signed at %v, certificate valid %v to %v", res.SignedAt, res.Signer.Certificate.NotBefore, res.Signer.Certificate.NotAfter)
				}
			}
		})
	}
}

func TestPythonBundlesRefuseAChangedFile(t *testing.T) {
	for _, s := range pythonSets {
		t.Run(s.dir, func(t *testing.T) {
			dst := copyModel(t, s.dir)
			target := "signme-2"
			if s.model != "." {
				target = s.model
			}
			p := filepath.Join(dst, target)
			b := readFile(t, p)
			b[0] ^= 1
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := VerifyDir(context.Background(), filepath.Join(dst, s.model), readFile(t, filepath.Join(dst, "model.sig")), pythonVerifier(t, s.kind), CheckOptions{IgnorePaths: s.ignore})
			var d *Diff
			if !errors.Is(err, ErrMismatch) || !errors.As(err, &d) || len(d.Mismatched) != 1 {
				t.Fatalf("got %v, want one digest mismatch", err)
			}
		})
	}
}

func TestPythonBundlesRefuseAChangedBundleByte(t *testing.T) {
	for _, s := range pythonSets {
		t.Run(s.dir, func(t *testing.T) {
			sig := readFile(t, filepath.Join(signedDir, s.dir, "model.sig"))
			v := pythonVerifier(t, s.kind)
			// Flip one bit inside the base64 of the payload, and then of the signature: the
			// bundle still parses, and must not verify.
			for _, field := range []string{`"payload"`, `"sig"`} {
				i := bytes.Index(sig, []byte(field))
				j := i + len(field) + 40
				for sig[j] == ' ' || sig[j] == ':' || sig[j] == '"' {
					j++
				}
				bad := bytes.Clone(sig)
				bad[j] = flipBase64(bad[j])
				_, err := Verify(context.Background(), bad, v)
				if err == nil {
					t.Fatalf("a changed %s byte verified", field)
				}
				var ve *VerificationError
				if !errors.As(err, &ve) || ve.Kind != s.kind {
					t.Fatalf("%s: got %v, want a *VerificationError from the %s verifier", field, err, s.kind)
				}
				if !errors.Is(err, ErrSignature) && !errors.Is(err, ErrTransparencyLog) && !errors.Is(err, ErrBundle) {
					t.Fatalf("%s: got %v, want a signature, log or bundle refusal", field, err)
				}
			}
		})
	}
}

// flipBase64 changes a base64 character into another valid one.
func flipBase64(c byte) byte {
	if c == 'A' {
		return 'B'
	}
	return 'A'
}

func TestPythonSigstoreBundlesRefuseAnotherIdentityOrIssuer(t *testing.T) {
	for _, s := range pythonSets {
		if s.kind != SignerSigstore {
			continue
		}
		t.Run(s.dir, func(t *testing.T) {
			sig := readFile(t, filepath.Join(signedDir, s.dir, "model.sig"))
			for _, o := range []SigstoreVerifierOptions{
				{Identity: "someone@us.ibm.com", Issuer: pythonIssuer},
				{Identity: pythonIdentity, Issuer: "https://accounts.google.com"},
				{IdentityRegexp: `^stefanb@example\.com$`, Issuer: pythonIssuer},
			} {
				v, err := NewSigstoreVerifier(o)
				if err != nil {
					t.Fatal(err)
				}
				_, err = Verify(context.Background(), sig, v)
				if !errors.Is(err, ErrIdentity) {
					t.Fatalf("%+v: got %v, want ErrIdentity", o, err)
				}
				if !strings.Contains(err.Error(), pythonIdentity) && !strings.Contains(err.Error(), pythonIssuer) {
					t.Fatalf("the refusal should name what was found: %v", err)
				}
			}
			v, err := NewSigstoreVerifier(SigstoreVerifierOptions{IdentityRegexp: `^stefanb@us\.ibm\.com$`, Issuer: pythonIssuer})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(context.Background(), sig, v); err != nil {
				t.Fatalf("a matching identity regexp was refused: %v", err)
			}
		})
	}
}

func TestPythonBundlesRefuseTheWrongKeyOrCA(t *testing.T) {
	other := newTestPKI(t)
	for _, s := range pythonSets {
		if s.kind == SignerSigstore {
			continue
		}
		t.Run(s.dir, func(t *testing.T) {
			sig := readFile(t, filepath.Join(signedDir, s.dir, "model.sig"))
			var v Verifier
			var err error
			var want error
			if s.kind == SignerKey {
				v, err = NewKeyVerifier(other.keyPub(t, "p384"))
				want = ErrWrongKey
			} else {
				v, err = NewCertificateVerifier(CertificateVerifierOptions{Roots: [][]byte{other.rootPEM}})
				want = ErrUntrustedChain
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(context.Background(), sig, v); !errors.Is(err, want) {
				t.Fatalf("got %v, want %v", err, want)
			}
		})
	}
}

func TestSigstoreVerifierReadsAClientTrustConfig(t *testing.T) {
	v, err := NewSigstoreVerifier(SigstoreVerifierOptions{
		Identity: pythonIdentity, Issuer: pythonIssuer,
		TrustRootPath: interop + "/golden-payloads/custom_trust_config.json",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"v1.0.1-sigstore", "v1.1.0-sigstore"} {
		if _, err := Verify(context.Background(), readFile(t, filepath.Join(signedDir, dir, "model.sig")), v); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
	}
}
