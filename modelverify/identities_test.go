package modelverify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/manifest"
	"github.com/echelongraph/go-modelverify/modelverify"
)

// interopSigstoreModel was signed keylessly by model_signing 1.0.0 as stefanb@us.ibm.com; it
// verifies offline against the public-good root, and its certificate has no CI extensions.
var interopSigstoreModel = filepath.Join("..", "testdata", "interop", "model-transparency", "signed", "v1.0.0-sigstore")

// identityRefusal verifies dir under the publisher identity given and returns the problem of
// the refusal, failing unless it is a wrong-identity one.
func identityRefusal(t *testing.T, g *gate, dir string, identity map[string]any, trustRoot string) modelverify.Problem {
	t.Helper()
	_, err := verifyDirAs(g, dir, identity, trustRoot)
	var r *modelverify.Refusal
	if !errors.As(err, &r) || !errors.Is(err, modelverify.ErrIdentity) {
		t.Fatalf("%v: got %v, want a wrong-identity refusal", identity, err)
	}
	return r.Problems[0]
}

func verifyDirAs(g *gate, dir string, identity map[string]any, trustRoot string) (*modelverify.Model, error) {
	v := g.verifier(func(p map[string]any) {
		publisher(p)["identities"] = []any{identity}
		if trustRoot != "" {
			publisher(p)["trustRoot"] = trustRoot
		}
	})
	return v.VerifyDir(context.Background(), dir, "acme/tiny")
}

// The policy's identity regular expressions reach the verifier matched against the whole value.
func TestPolicySigstoreIdentityRegexpMatchesTheWholeIdentity(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", baseModel())
	sigstore := func(fields map[string]any) map[string]any { return map[string]any{"sigstore": fields} }
	// Written without anchors, it still means exactly this identity, and the model loads.
	if _, err := verifyDirAs(g, interopSigstoreModel, sigstore(map[string]any{"identityRegexp": `stefanb@us\.ibm\.com`, "issuer": "https://sigstore.verify.ibm.com/oauth2"}), interopTrustedRoot); err != nil {
		t.Fatal(err)
	}
	// As written, the second alternative would find "us.ibm.com" at the end of the identity.
	p := identityRefusal(t, g, interopSigstoreModel, sigstore(map[string]any{"identityRegexp": `^alice@us\.ibm\.com|us\.ibm\.com$`, "issuer": "https://sigstore.verify.ibm.com/oauth2"}), interopTrustedRoot)
	if want := `certificate identity (SAN): want a whole match for "^alice@us\\.ibm\\.com|us\\.ibm\\.com$", found "stefanb@us.ibm.com"`; !strings.Contains(p.Detail, want) {
		t.Errorf("detail %q, want %s", p.Detail, want)
	}
	if !strings.Contains(p.Expected, `matching ^alice@us\.ibm\.com|us\.ibm\.com$`) || !strings.Contains(p.Actual, "stefanb@us.ibm.com") {
		t.Errorf("expected %q, found %q", p.Expected, p.Actual)
	}
	// A constraint on a Fulcio extension the certificate lacks refuses it, naming the extension.
	p = identityRefusal(t, g, interopSigstoreModel, sigstore(map[string]any{
		"identity": "stefanb@us.ibm.com", "issuer": "https://sigstore.verify.ibm.com/oauth2",
		"extensions": map[string]any{"sourceRepositoryURI": "https://github.com/acme/models", "sourceRepositoryRefRegexp": "refs/tags/v.+"},
	}), interopTrustedRoot)
	if want := `certificate extension sourceRepositoryURI (OID 1.3.6.1.4.1.57264.1.12): want "https://github.com/acme/models", found none`; !strings.Contains(p.Detail, want) {
		t.Errorf("detail %q, want %s", p.Detail, want)
	}
	if want := `with sourceRepositoryURI "https://github.com/acme/models", sourceRepositoryRef matching "refs/tags/v.+"`; !strings.Contains(p.Expected, want) {
		t.Errorf("expected %q, want it to name the constraints: %s", p.Expected, want)
	}
}

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Acme internal CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// signWithLeaf signs files with a fresh key certified by ca as tmpl says.
func (ca *testCA) signWithLeaf(t *testing.T, files map[string][]byte, tmpl *x509.Certificate) string {
	t.Helper()
	s := ca.issue(t, tmpl)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(s.key)
	signer, err := manifest.NewCertificateSigner(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.leaf.Raw}))
	if err != nil {
		t.Fatal(err)
	}
	dir := writeModel(t, files)
	bundle, _, err := manifest.SignDir(context.Background(), dir, manifest.Options{}, signer)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{"model.sig": bundle}
	for k, v := range files {
		out[k] = v
	}
	return writeModel(t, out)
}

// The company CA also issues TLS server certificates; holding one is no licence to publish
// models, and the refusal says which usages were found and which wanted.
func TestPolicyCertificateIdentityRefusesATLSServerCertificateFromTheSameCA(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", baseModel())
	ca := newTestCA(t)
	tlsSigned := ca.signWithLeaf(t, baseModel(), &x509.Certificate{
		Subject: pkix.Name{CommonName: "models.acme.example", Organization: []string{"Acme ML"}}, DNSNames: []string{"models.acme.example"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	releaseSigned := ca.signWithLeaf(t, baseModel(), &x509.Certificate{
		Subject: pkix.Name{CommonName: "Acme release", Organization: []string{"Acme ML"}}, EmailAddresses: []string{"release@acme.example"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	})
	roots := []any{map[string]any{"pem": ca.pem}}

	p := identityRefusal(t, g, tlsSigned, map[string]any{"certificate": map[string]any{"roots": roots}}, "")
	if want := `certificate "CN=models.acme.example,O=Acme ML" has extended key usages [serverAuth]; want one of [codeSigning]`; !strings.Contains(p.Detail, want) {
		t.Errorf("detail %q, want %s", p.Detail, want)
	}
	if !strings.Contains(p.Expected, "for codeSigning") {
		t.Errorf("expected %q does not name the usage", p.Expected)
	}
	g.assertRefusedRecord(modelverify.ErrIdentity)

	if _, err := verifyDirAs(g, releaseSigned, map[string]any{"certificate": map[string]any{"roots": roots, "subject": map[string]any{"organization": "Acme ML", "emailRegexp": `release@acme\.example`}}}, ""); err != nil {
		t.Fatalf("the code-signing certificate with the subject asked for: %v", err)
	}
	p = identityRefusal(t, g, releaseSigned, map[string]any{"certificate": map[string]any{"roots": roots, "subject": map[string]any{"emailRegexp": `^ops@acme\.example|acme\.example$`}}}, "")
	if want := `certificate e-mail SAN: want a whole match for "^ops@acme\\.example|acme\\.example$", found "release@acme.example"`; !strings.Contains(p.Detail, want) {
		t.Errorf("detail %q, want %s", p.Detail, want)
	}
}

func TestPolicyFillsInTheDefaultExtendedKeyUsage(t *testing.T) {
	doc := policyWith(t, "      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}",
		"      - certificate: {roots: [{path: "+interopCACert+"}], subject: {commonName: release}}\n"+
			"      - sigstore: {identityRegexp: 'alice@acme\\.example', issuer: https://token.actions.githubusercontent.com, extensions: {githubWorkflowRepository: acme/models, sourceRepositoryRefRegexp: 'refs/tags/v.+'}}")
	p, err := modelverify.ParsePolicy([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	ids := p.Publishers[0].Identities
	if got := ids[0].Certificate.ExtendedKeyUsages; len(got) != 1 || got[0] != "codeSigning" {
		t.Errorf("extendedKeyUsages after loading = %v, want the default [codeSigning]", got)
	}
	if got, want := ids[0].String(), "certificate chaining to "+interopCACert+` for codeSigning naming commonName "release"`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := ids[1].String(), `sigstore identity matching alice@acme\.example issued by https://token.actions.githubusercontent.com with githubWorkflowRepository "acme/models", sourceRepositoryRef matching "refs/tags/v.+"`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
