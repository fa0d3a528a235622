package manifest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// jsonShape describes a JSON document's layout: every object's keys in their order, and each
// value's kind, with arrays shown by their first element and length. Two bundles with the same
// shape differ only in their values.
func jsonShape(t *testing.T, data []byte) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	var b strings.Builder
	var walk func() error
	walk = func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' {
				b.WriteString("{")
				for i := 0; dec.More(); i++ {
					k, err := dec.Token()
					if err != nil {
						return err
					}
					if i > 0 {
						b.WriteString(",")
					}
					fmt.Fprintf(&b, "%s:", k)
					if err := walk(); err != nil {
						return err
					}
				}
				b.WriteString("}")
			} else {
				b.WriteString("[")
				n := 0
				for ; dec.More(); n++ {
					mark := b.Len()
					if err := walk(); err != nil {
						return err
					}
					if n > 0 {
						s := b.String()[:mark]
						b.Reset()
						b.WriteString(s)
					}
				}
				fmt.Fprintf(&b, "]x%d", n)
			}
			_, err := dec.Token() // the closing delimiter
			return err
		case string:
			b.WriteString("string")
		case float64:
			b.WriteString("number")
		case bool:
			b.WriteString("bool")
		case nil:
			b.WriteString("null")
		}
		return nil
	}
	if err := walk(); err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("trailing data after the bundle: %v", err)
	}
	return b.String()
}

func TestBundlesHaveTheLayoutPythonV11Writes(t *testing.T) {
	pythonKey := readFile(t, pythonKeys+"/signing-key.pem")
	keySigner, err := NewKeySigner(pythonKey, nil)
	must(t, err)
	certSigner, err := NewCertificateSigner(pythonKey, readFile(t, pythonKeys+"/signing-key-cert.pem"), readFile(t, pythonKeys+"/int-ca-cert.pem"))
	must(t, err)
	for _, c := range []struct {
		golden string
		s      Signer
		v      Verifier
	}{
		{"v1.1.0-elliptic-key", keySigner, pythonVerifier(t, SignerKey)},
		{"v1.1.0-certificate", certSigner, pythonVerifier(t, SignerCertificate)},
	} {
		t.Run(c.golden, func(t *testing.T) {
			golden := readFile(t, filepath.Join(signedDir, c.golden, "model.sig"))
			model := filepath.Join(signedDir, c.golden)
			// Signed as model_signing v1.1's CLI signs this model: --ignore-paths ignore-me.
			ours, m, err := SignDir(context.Background(), model, Options{IgnorePaths: []string{"ignore-me"}}, c.s)
			must(t, err)
			if got, want := jsonShape(t, ours), jsonShape(t, golden); got != want {
				t.Fatalf("layout differs from Python's:\n ours   %s\n python %s", got, want)
			}
			// Both are compact JSON with no trailing newline.
			var compact bytes.Buffer
			must(t, json.Compact(&compact, ours))
			if !bytes.Equal(compact.Bytes(), ours) || !bytes.Equal(bytes.TrimSpace(golden), golden) {
				t.Fatal("the bundle is not compact JSON without a trailing newline")
			}
			// The verification material is byte-identical: the same key gives the same hint,
			// the same chain the same certificates.
			var o, p struct{ VerificationMaterial json.RawMessage }
			must(t, json.Unmarshal(ours, &o))
			must(t, json.Unmarshal(golden, &p))
			if !bytes.Equal(o.VerificationMaterial, p.VerificationMaterial) {
				t.Fatalf("verification material differs:\n ours   %s\n python %s", o.VerificationMaterial, p.VerificationMaterial)
			}
			// And the manifest is the one Python signed: same files, same digests.
			pres, err := Verify(context.Background(), golden, c.v)
			must(t, err)
			must(t, Compare(pres.Manifest, m, CompareOptions{}))
			if _, err := VerifyDir(context.Background(), model, ours, c.v, CheckOptions{}); err != nil {
				t.Fatalf("this library's bundle does not verify: %v", err)
			}
		})
	}
}

func TestKeyHintIsSHA256OfThePEMText(t *testing.T) {
	pub, err := parsePublicKey(readFile(t, pythonKeys+"/signing-key-pub.pem"))
	must(t, err)
	hint, err := keyHint(pub)
	must(t, err)
	// The value in every model_signing v1.1 bundle signed with this key.
	if hint != "e8450dec4eb99dae995da9af1bc2cc9f76ed669ee2e744f57abba763df3e3f8e" {
		t.Fatalf("hint %s", hint)
	}
	fp, err := KeyFingerprint(pub)
	must(t, err)
	if fp != "c1e49d63327f85c7e2971aefd30b5a0d1c6b9b5e1a892e7f5fba995adace816d" {
		t.Fatalf("fingerprint %s", fp)
	}
}

func TestParseBundleAcceptsEveryKeyIDForm(t *testing.T) {
	for _, keyid := range []string{`,"keyid":""`, `,"keyid":null`, ``} {
		b, err := parseBundle([]byte(`{"mediaType":"m","verificationMaterial":{"publicKey":{"hint":"h"}},"dsseEnvelope":{"payload":"e30","payloadType":"t","signatures":[{"sig":"AA=="` + keyid + `}]}}`))
		must(t, err)
		if p, err := b.payload(); err != nil || string(p) != "{}" {
			t.Fatalf("keyid %q: payload %q, %v", keyid, p, err)
		}
	}
	if _, err := parseBundle(bytes.Repeat([]byte(" "), 10)); !errors.Is(err, ErrBundle) {
		t.Fatalf("blank bundle: %v", err)
	}
}
