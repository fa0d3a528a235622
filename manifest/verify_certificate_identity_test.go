package manifest

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

// certSignature signs a model with a leaf made from tmpl by the test PKI's intermediate, for the
// key called "p256", and returns the bundle. The signer accepts any leaf whose key usage allows
// signing, as another tool might, so that the verifier is what is tested.
func certSignature(t *testing.T, pki *testPKI, tmpl *x509.Certificate) []byte {
	t.Helper()
	now := time.Now()
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(time.Hour)
	leaf := certPEM(pki.issue(t, tmpl, pki.inter, pki.key(t, "p256")))
	s, err := NewCertificateSigner(pki.keyPEM(t, "p256"), leaf, pki.intPEM)
	must(t, err)
	_, sig := signedModel(t, s)
	return sig
}

// A TLS server certificate from the same CA that issues the code-signing ones cannot sign
// models, and the refusal names the usages found and wanted.
func TestCertificateSignatureRefusesATLSServerCertificateFromTheSameRoot(t *testing.T) {
	pki := newTestPKI(t)
	sig := certSignature(t, pki, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "models.example"},
		DNSNames:    []string{"models.example"},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	v, err := NewCertificateVerifier(CertificateVerifierOptions{Roots: [][]byte{pki.rootPEM}})
	must(t, err)
	_, err = Verify(context.Background(), sig, v)
	want := `certificate "CN=models.example" has extended key usages [serverAuth, clientAuth]; want one of [codeSigning]`
	if !errors.Is(err, ErrCertificateUsage) || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want ErrCertificateUsage with %s", err, want)
	}
	// The same CA's code-signing certificate verifies.
	good := certSignature(t, pki, &x509.Certificate{Subject: pkix.Name{CommonName: "release"}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}})
	if _, err := Verify(context.Background(), good, v); err != nil {
		t.Fatal(err)
	}
}

func TestCertificateExtendedKeyUsagesAreConfigurable(t *testing.T) {
	pki := newTestPKI(t)
	noEKU := certSignature(t, pki, &x509.Certificate{Subject: pkix.Name{CommonName: "legacy signer"}, KeyUsage: x509.KeyUsageDigitalSignature})
	anyEKU := certSignature(t, pki, &x509.Certificate{Subject: pkix.Name{CommonName: "any"}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	custom := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}
	customEKU := certSignature(t, pki, &x509.Certificate{Subject: pkix.Name{CommonName: "custom"}, KeyUsage: x509.KeyUsageDigitalSignature, UnknownExtKeyUsage: []asn1.ObjectIdentifier{custom}})
	codeSigningNoKU := certSignature(t, pki, &x509.Certificate{Subject: pkix.Name{CommonName: "no key usage"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}})
	for _, c := range []struct {
		ekus    []string
		sig     []byte
		refused string // "" when accepted
	}{
		{nil, noEKU, `"CN=legacy signer" has no extended key usage extension; want one of [codeSigning]`},
		{[]string{"codeSigning", "none"}, noEKU, ""},
		// anyExtendedKeyUsage is not codeSigning: a CA that hands it out did not say "code".
		{nil, anyEKU, `has extended key usages [anyExtendedKeyUsage]; want one of [codeSigning]`},
		{[]string{"anyExtendedKeyUsage"}, anyEKU, ""},
		{nil, customEKU, `has extended key usages [1.3.6.1.4.1.99999.1]; want one of [codeSigning]`},
		{[]string{"1.3.6.1.4.1.99999.1"}, customEKU, ""},
		// codeSigning's OID names codeSigning.
		{[]string{"1.3.6.1.5.5.7.3.3"}, codeSigningNoKU, ""},
		{[]string{"timeStamping"}, codeSigningNoKU, `has extended key usages [codeSigning]; want one of [timeStamping]`},
	} {
		v, err := NewCertificateVerifier(CertificateVerifierOptions{Roots: [][]byte{pki.rootPEM}, ExtendedKeyUsages: c.ekus})
		must(t, err)
		_, err = Verify(context.Background(), c.sig, v)
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("%v: %v", c.ekus, err)
		case c.refused != "" && (!errors.Is(err, ErrCertificateUsage) || !strings.Contains(err.Error(), c.refused)):
			t.Errorf("%v: got %v, want ErrCertificateUsage with %s", c.ekus, err, c.refused)
		}
	}
}

// A key usage that leaves out digitalSignature forbids signing, whatever the extended usages say.
func TestCertificateWithAKeyUsageWithoutDigitalSignatureIsRefused(t *testing.T) {
	pki := newTestPKI(t)
	now := time.Now()
	leaf := certPEM(pki.issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "encipher only"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageKeyAgreement, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}, pki.inter, pki.key(t, "p256")))
	sig := signedWithAnyLeaf(t, pki, leaf)
	v, err := NewCertificateVerifier(CertificateVerifierOptions{Roots: [][]byte{pki.rootPEM}})
	must(t, err)
	if _, err := Verify(context.Background(), sig, v); !errors.Is(err, ErrCertificateUsage) || !strings.Contains(err.Error(), "without digitalSignature") {
		t.Fatalf("got %v, want ErrCertificateUsage naming digitalSignature", err)
	}
}

// An intermediate restricted to TLS cannot vouch for a code-signing leaf under it.
func TestCertificateChainThroughATLSOnlyIntermediateIsRefused(t *testing.T) {
	pki := newTestPKI(t)
	now := time.Now()
	tlsCA := pki.issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "TLS issuing CA"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, pki.root, pki.intKey) // the intermediate's key: pki.issue signs with it below
	leaf := certPEM(pki.issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "release"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}, tlsCA, pki.key(t, "p256")))
	s, err := NewCertificateSigner(pki.keyPEM(t, "p256"), leaf, certPEM(tlsCA))
	must(t, err)
	_, sig := signedModel(t, s)
	v, err := NewCertificateVerifier(CertificateVerifierOptions{Roots: [][]byte{pki.rootPEM}})
	must(t, err)
	if _, err := Verify(context.Background(), sig, v); !errors.Is(err, ErrUntrustedChain) || !strings.Contains(err.Error(), "key usage") {
		t.Fatalf("got %v, want ErrUntrustedChain naming the key usage", err)
	}
}

func TestCertificateSubjectConstraintsCheckTheLeafsNames(t *testing.T) {
	pki := newTestPKI(t)
	spiffe, _ := url.Parse("spiffe://acme.example/ci/release")
	sig := certSignature(t, pki, &x509.Certificate{
		Subject:        pkix.Name{CommonName: "Acme release signer", Organization: []string{"Acme ML"}, OrganizationalUnit: []string{"Platform"}},
		EmailAddresses: []string{"ops@acme.example", "release@acme.example"},
		URIs:           []*url.URL{spiffe},
		DNSNames:       []string{"signer.acme.example"},
		KeyUsage:       x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	})
	for _, c := range []struct {
		subject CertificateSubject
		refused string // "" when accepted
	}{
		{CertificateSubject{Email: "release@acme.example", Organization: "Acme ML"}, ""},
		{CertificateSubject{EmailRegexp: `[a-z]+@acme\.example`, URI: "spiffe://acme.example/ci/release", DNSName: "signer.acme.example"}, ""},
		{CertificateSubject{CommonNameRegexp: `Acme .+ signer`, OrganizationalUnit: "Platform", URIRegexp: `spiffe://acme\.example/ci/.+`}, ""},
		{CertificateSubject{Email: "alice@acme.example"},
			`certificate e-mail SAN: want "alice@acme.example", found "ops@acme.example", "release@acme.example"`},
		// The alternation trick: as written, the second half would find "release@acme.example".
		{CertificateSubject{EmailRegexp: `^alice@acme\.example|acme\.example$`},
			`certificate e-mail SAN: want a whole match for "^alice@acme\\.example|acme\\.example$"`},
		{CertificateSubject{Organization: "Acme"}, `certificate subject organization (O): want "Acme", found "Acme ML"`},
		{CertificateSubject{CommonNameRegexp: `Acme`}, `certificate subject commonName (CN): want a whole match for "Acme", found "Acme release signer"`},
		{CertificateSubject{DNSNameRegexp: `signer\.acme\.example\..+`}, `certificate DNS SAN`},
		{CertificateSubject{Email: "release@acme.example", URI: "spiffe://acme.example/ci/nightly"}, `certificate URI SAN: want "spiffe://acme.example/ci/nightly", found "spiffe://acme.example/ci/release"`},
	} {
		v, err := NewCertificateVerifier(CertificateVerifierOptions{Roots: [][]byte{pki.rootPEM}, Subject: c.subject})
		must(t, err)
		res, err := Verify(context.Background(), sig, v)
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("%+v: %v", c.subject, err)
		case c.refused == "" && res.Signer.Subject != "CN=Acme release signer,OU=Platform,O=Acme ML":
			t.Errorf("signer subject %q", res.Signer.Subject)
		case c.refused != "" && (!errors.Is(err, ErrIdentity) || !strings.Contains(err.Error(), c.refused)):
			t.Errorf("%+v:\n got %v\nwant ErrIdentity with %s", c.subject, err, c.refused)
		}
	}
	// A leaf without the kind of name asked for says it has none.
	bare := certSignature(t, pki, &x509.Certificate{Subject: pkix.Name{CommonName: "bare"}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}})
	v, err := NewCertificateVerifier(CertificateVerifierOptions{Roots: [][]byte{pki.rootPEM}, Subject: CertificateSubject{Organization: "Acme ML"}})
	must(t, err)
	if _, err := Verify(context.Background(), bare, v); !errors.Is(err, ErrIdentity) || !strings.Contains(err.Error(), `want "Acme ML", found none`) {
		t.Fatalf("got %v", err)
	}
}

func TestCertificateVerifierRefusesUnusableOptions(t *testing.T) {
	pki := newTestPKI(t)
	for _, c := range []struct {
		o    CertificateVerifierOptions
		want []string
	}{
		{CertificateVerifierOptions{ExtendedKeyUsages: []string{"codesigning", "1.3.6..1"}},
			[]string{`extendedKeyUsages[0]: "codesigning" is not an extended key usage`, `extendedKeyUsages[1]: "1.3.6..1"`}},
		{CertificateVerifierOptions{ExtendedKeyUsages: []string{}}, []string{"extendedKeyUsages: is empty"}},
		{CertificateVerifierOptions{Subject: CertificateSubject{Email: "a@b.example", EmailRegexp: ".+"}}, []string{"email and emailRegexp are exclusive"}},
		{CertificateVerifierOptions{Subject: CertificateSubject{OrganizationRegexp: "Acme|"}}, []string{"organizationRegexp: ", "matches an empty value"}},
	} {
		c.o.Roots = [][]byte{pki.rootPEM}
		_, err := NewCertificateVerifier(c.o)
		for _, w := range c.want {
			if !errors.Is(err, ErrIdentity) || !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: got %v, want ErrIdentity with %s", c.o, err, w)
			}
		}
	}
}
