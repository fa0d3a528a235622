package manifest

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"
)

func parseLeaf(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(pemBytes)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// CheckCertificate judges a certificate for another tool's signature as the certificate
// verifier judges a bundle's: usages, validity, the chain through the given intermediates, the
// subject; and it says who the leaf names.
func TestCheckCertificateJudgesAsTheCertificateVerifierDoes(t *testing.T) {
	pki := newTestPKI(t)
	now := time.Now()
	good := parseLeaf(t, pki.signingLeaf(t, "release"))
	v, err := NewCertificateVerifier(CertificateVerifierOptions{Roots: [][]byte{pki.rootPEM}, Subject: CertificateSubject{Email: "release@models.example"}})
	must(t, err)
	info, err := CheckCertificate(v, good, []*x509.Certificate{pki.inter})
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != SignerCertificate || info.Subject != "CN=model publisher release,O=Example Models" || info.KeyFingerprint == "" {
		t.Fatalf("info = %+v", info)
	}
	tls := parseLeaf(t, pki.leaf(t, "tls", now.Add(-time.Hour), now.Add(time.Hour), x509.KeyUsageDigitalSignature, x509.ExtKeyUsageServerAuth))
	expired := parseLeaf(t, pki.leaf(t, "old", now.Add(-2*time.Hour), now.Add(-time.Hour), x509.KeyUsageDigitalSignature, x509.ExtKeyUsageCodeSigning))
	other, err := NewCertificateVerifier(CertificateVerifierOptions{Roots: [][]byte{newTestPKI(t).rootPEM}})
	must(t, err)
	ops, err := NewCertificateVerifier(CertificateVerifierOptions{Roots: [][]byte{pki.rootPEM}, Subject: CertificateSubject{Email: "ops@models.example"}})
	must(t, err)
	for _, tc := range []struct {
		name  string
		v     Verifier
		leaf  *x509.Certificate
		inter []*x509.Certificate
		want  error
	}{
		{"a TLS server certificate", v, tls, []*x509.Certificate{pki.inter}, ErrCertificateUsage},
		{"an expired certificate", v, expired, []*x509.Certificate{pki.inter}, ErrCertificateExpired},
		{"another CA", other, good, []*x509.Certificate{pki.inter}, ErrUntrustedChain},
		{"no intermediate", v, good, nil, ErrUntrustedChain},
		{"another subject", ops, good, []*x509.Certificate{pki.inter}, ErrIdentity},
	} {
		_, err := CheckCertificate(tc.v, tc.leaf, tc.inter)
		var ve *VerificationError
		if !errors.Is(err, tc.want) || !errors.As(err, &ve) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	key, err := NewKeyVerifier(pki.keyPub(t, "release"))
	must(t, err)
	if _, err := CheckCertificate(key, good, nil); err == nil || !strings.Contains(err.Error(), "NewCertificateVerifier") {
		t.Errorf("a key verifier: err = %v", err)
	}
}
