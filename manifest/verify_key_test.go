package manifest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
)

func pemOf(t *testing.T, typ string, der []byte, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// The key verifier accepts what model_signing's key mode accepts, ECDSA on P-256, P-384 and
// P-521, and refuses Ed25519 and RSA by name, since no conforming OMS verifier checks them.
func TestKeyVerifierAcceptsTheKeysModelSigningUsesAndNamesTheOthers(t *testing.T) {
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if _, err := NewKeyVerifier(pemOf(t, "PUBLIC KEY", der, err)); err != nil {
			t.Errorf("%s: %v", c.Params().Name, err)
		}
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(edPub)
	_, err = NewKeyVerifier(pemOf(t, "PUBLIC KEY", der, err))
	if !errors.Is(err, ErrUnsupportedKey) || !strings.Contains(err.Error(), "Ed25519") || !strings.Contains(err.Error(), "ECDSA keys only") {
		t.Errorf("Ed25519: %v", err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err = x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	_, err = NewKeyVerifier(pemOf(t, "PUBLIC KEY", der, err))
	if !errors.Is(err, ErrUnsupportedKey) || !strings.Contains(err.Error(), "RSA key of 2048 bits") {
		t.Errorf("RSA: %v", err)
	}
}

// A private key given as the public key is named as such, with the command that derives the
// public half, rather than "no PEM block of type PUBLIC KEY".
func TestKeyVerifierSaysAPrivateKeyIsNotThePublicKey(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(k)
	sec1, err2 := x509.MarshalECPrivateKey(k)
	for name, key := range map[string][]byte{
		"PRIVATE KEY":    pemOf(t, "PRIVATE KEY", pkcs8, err),
		"EC PRIVATE KEY": pemOf(t, "EC PRIVATE KEY", sec1, err2),
	} {
		_, err := NewKeyVerifier(key)
		if !errors.Is(err, ErrPrivateKey) || !strings.Contains(err.Error(), "openssl pkey -in PRIVATE_KEY.pem -pubout") ||
			!strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
