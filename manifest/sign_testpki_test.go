package manifest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

// testPKI is a throwaway certificate authority made for one test: a root, an intermediate,
// and ECDSA keys on each curve model_signing supports. Nothing here is a real secret.
type testPKI struct {
	rootKey, intKey *ecdsa.PrivateKey
	root, inter     *x509.Certificate
	rootPEM         []byte
	intPEM          []byte
	keys            map[string]*ecdsa.PrivateKey
}

var testCurves = map[string]elliptic.Curve{"p256": elliptic.P256(), "p384": elliptic.P384(), "p521": elliptic.P521()}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{keys: map[string]*ecdsa.PrivateKey{}}
	p.rootKey = p.key(t, "root")
	p.intKey = p.key(t, "intermediate")
	now := time.Now()
	p.root = p.issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "test root CA"}, NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, nil, p.rootKey)
	p.inter = p.issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "test intermediate CA"}, NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, p.root, p.intKey)
	p.rootPEM = certPEM(p.root)
	p.intPEM = certPEM(p.inter)
	return p
}

// key returns the test key called name, on the curve its name starts with (P-256 otherwise).
func (p *testPKI) key(t testing.TB, name string) *ecdsa.PrivateKey {
	t.Helper()
	if k, ok := p.keys[name]; ok {
		return k
	}
	curve := elliptic.P256()
	for prefix, c := range testCurves {
		if len(name) >= len(prefix) && name[:len(prefix)] == prefix {
			curve = c
		}
	}
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.keys[name] = k
	return k
}

func (p *testPKI) keyPEM(t testing.TB, name string) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(p.key(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func (p *testPKI) keyPub(t testing.TB, name string) []byte {
	t.Helper()
	b, err := publicKeyPEM(p.key(t, name).Public())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// issue signs template with parentKey (self-signed when parent is nil) for the template's key
// or the parent-less key given.
func (p *testPKI) issue(t testing.TB, tmpl *x509.Certificate, parent *x509.Certificate, key *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	signer := key
	if parent != nil {
		signer = p.intKey
		if parent == p.root {
			signer = p.rootKey
		}
	} else {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// leaf issues a signing certificate from the intermediate for the key called name, valid from
// notBefore to notAfter, with the given usages.
func (p *testPKI) leaf(t testing.TB, name string, notBefore, notAfter time.Time, ku x509.KeyUsage, eku ...x509.ExtKeyUsage) []byte {
	t.Helper()
	c := p.issue(t, &x509.Certificate{
		Subject:        pkix.Name{CommonName: "model publisher " + name, Organization: []string{"Example Models"}},
		EmailAddresses: []string{"release@models.example"},
		NotBefore:      notBefore, NotAfter: notAfter, KeyUsage: ku, ExtKeyUsage: eku,
	}, p.inter, p.key(t, name))
	return certPEM(c)
}

// signingLeaf is a certificate valid now that allows signing.
func (p *testPKI) signingLeaf(t testing.TB, name string) []byte {
	now := time.Now()
	return p.leaf(t, name, now.Add(-time.Hour), now.Add(time.Hour), x509.KeyUsageDigitalSignature, x509.ExtKeyUsageCodeSigning)
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}
