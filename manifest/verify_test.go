package manifest

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// keyBundle signs payload as payloadType with key, over the standard PAE or the v0.2 compat
// one, and returns a Python-layout key bundle: what a signer other than this package's could
// have made.
func keyBundle(t *testing.T, key *ecdsa.PrivateKey, mediaType, payloadType string, payload []byte, compat bool) []byte {
	t.Helper()
	msg := pae(payloadType, payload)
	if compat {
		msg = paeCompat(payloadType, payload)
	}
	d := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, key, d[:])
	must(t, err)
	hint, err := keyHint(key.Public())
	must(t, err)
	b := &bundle{
		MediaType:            mediaType,
		VerificationMaterial: &verificationMaterial{PublicKey: &publicKeyMaterial{Hint: hint}},
		DSSEEnvelope: &dsseEnvelope{
			Payload: base64.StdEncoding.EncodeToString(payload), PayloadType: payloadType,
			Signatures: []dsseSignature{{Sig: base64.StdEncoding.EncodeToString(sig)}},
		},
	}
	out, err := b.marshal()
	must(t, err)
	return out
}

func TestVerifyNamesTheReasonForEachRefusal(t *testing.T) {
	pki := newTestPKI(t)
	key := pki.key(t, "p256")
	v, err := NewKeyVerifier(pki.keyPub(t, "p256"))
	must(t, err)
	_, good := sampleStatement(t)
	edit := func(old, new string) []byte {
		if !strings.Contains(string(good), old) {
			t.Fatalf("the sample statement has no %q", old)
		}
		return []byte(strings.Replace(string(good), old, new, 1))
	}
	// The same statement with one hex digit of its root digest changed.
	wrongRoot := []byte(string(good))
	i := strings.Index(string(wrongRoot), `"sha256": "`) + len(`"sha256": "`)
	wrongRoot[i] = flipHex(wrongRoot[i])
	cases := []struct {
		name      string
		mediaType string
		ptype     string
		payload   []byte
		want      error
	}{
		{"media type", "application/vnd.dev.sigstore.bundle+json;version=0.2", PayloadType, good, ErrMediaType},
		{"payload type", BundleMediaType, "application/json", good, ErrPayloadType},
		{"statement type", BundleMediaType, PayloadType, edit(StatementType, "https://in-toto.io/Statement/v0.1"), ErrStatementType},
		{"predicate type", BundleMediaType, PayloadType, edit(PredicateType, "https://slsa.dev/provenance/v1"), ErrPredicateType},
		{"missing subject", BundleMediaType, PayloadType, []byte(`{"_type":"` + StatementType + `","subject":[],"predicateType":"` + PredicateType + `","predicate":{"serialization":{"method":"files","hash_type":"sha256","allow_symlinks":false},"resources":[]}}`), ErrSubject},
		{"root digest", BundleMediaType, PayloadType, wrongRoot, ErrRootDigest},
		{"not JSON", BundleMediaType, PayloadType, []byte("hello"), ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Verify(context.Background(), keyBundle(t, key, c.mediaType, c.ptype, c.payload, false), v)
			var ve *VerificationError
			if !errors.Is(err, c.want) || !errors.As(err, &ve) || ve.Kind != SignerKey {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func flipHex(c byte) byte {
	if c == '0' {
		return '1'
	}
	return '0'
}

func TestCompatSignaturesAreAcceptedOnlyForTheV01Layout(t *testing.T) {
	pki := newTestPKI(t)
	key := pki.key(t, "p256")
	v, err := NewKeyVerifier(pki.keyPub(t, "p256"))
	must(t, err)
	v01 := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"weights.bin","digest":{"sha256":"` + strings.Repeat("ab", 32) + `"}}],"predicateType":"` + PredicateTypeV01 + `","predicate":{"unused":"Unused, just passed due to API requirements"}}`)
	res, err := Verify(context.Background(), keyBundle(t, key, BundleMediaType, PayloadType, v01, true), v)
	must(t, err)
	if !res.Compat || res.Manifest.Resources[0].Name != "weights.bin" {
		t.Fatalf("compat %v, manifest %+v", res.Compat, res.Manifest)
	}
	_, v1 := sampleStatement(t)
	if _, err := Verify(context.Background(), keyBundle(t, key, BundleMediaType, PayloadType, v1, true), v); !errors.Is(err, ErrSignature) {
		t.Fatalf("a compat signature over a v1.0 statement: got %v, want ErrSignature", err)
	}
}

func TestPythonBytesReprMatchesPython(t *testing.T) {
	// Expected values are Python 3's repr() of the same bytes.
	for in, want := range map[string]string{
		"{\n  \"a\": 1\n}":          `b'{\n  "a": 1\n}'`,
		"it's":                      `b"it's"`,
		"it's \"q\"":                `b'it\'s "q"'`,
		"tab\there\r\x00\x7f\xff\\": `b'tab\there\r\x00\x7f\xff\\'`,
	} {
		if got := pythonBytesRepr([]byte(in)); got != want {
			t.Errorf("repr(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestVerifyRefusesMalformedBundles(t *testing.T) {
	pki := newTestPKI(t)
	v, err := NewKeyVerifier(pki.keyPub(t, "p256"))
	must(t, err)
	for name, b := range map[string]string{
		"empty":              "",
		"not JSON":           "{",
		"no material":        `{"mediaType":"` + BundleMediaType + `","dsseEnvelope":{"payload":"e30=","payloadType":"` + PayloadType + `","signatures":[{"sig":"AA=="}]}}`,
		"no envelope":        `{"mediaType":"` + BundleMediaType + `","verificationMaterial":{"publicKey":{}}}`,
		"message signature":  `{"mediaType":"` + BundleMediaType + `","verificationMaterial":{"publicKey":{}},"messageSignature":{"signature":"AA=="}}`,
		"two signatures":     `{"mediaType":"` + BundleMediaType + `","verificationMaterial":{"publicKey":{}},"dsseEnvelope":{"payload":"e30=","payloadType":"x","signatures":[{"sig":"AA=="},{"sig":"AA=="}]}}`,
		"payload not base64": `{"mediaType":"` + BundleMediaType + `","verificationMaterial":{"publicKey":{}},"dsseEnvelope":{"payload":"%%%","payloadType":"x","signatures":[{"sig":"AA=="}]}}`,
		"empty signature":    `{"mediaType":"` + BundleMediaType + `","verificationMaterial":{"publicKey":{}},"dsseEnvelope":{"payload":"e30=","payloadType":"x","signatures":[{"sig":""}]}}`,
		"raw key not PEM":    `{"mediaType":"` + BundleMediaType + `","verificationMaterial":{"publicKey":{"rawBytes":"AAAA"}},"dsseEnvelope":{"payload":"e30=","payloadType":"x","signatures":[{"sig":"AA=="}]}}`,
	} {
		if _, err := Verify(context.Background(), []byte(b), v); !errors.Is(err, ErrBundle) {
			t.Errorf("%s: got %v, want ErrBundle", name, err)
		}
	}
}
