package manifest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
)

const specVectors = "../testdata/interop/oms-spec/test-vectors/v1.0"

func TestOMSSpecValidVectorsVerify(t *testing.T) {
	for name, kind := range map[string]SignerKind{"key": SignerKey, "certificate": SignerCertificate, "sigstore": SignerSigstore} {
		t.Run(name, func(t *testing.T) {
			res, err := Verify(context.Background(), readFile(t, filepath.Join(specVectors, "valid", name+".bundle.json")), pythonVerifier(t, kind))
			must(t, err)
			if res.Statement.PredicateType != PredicateType || len(res.Manifest.Resources) != 2 {
				t.Fatalf("statement %+v", res.Statement)
			}
		})
	}
}

func TestOMSSpecInvalidVectorsAreRefusedAsMalformed(t *testing.T) {
	for _, name := range []string{"empty", "missing-envelope", "missing-tlog-entries", "missing-verification-material"} {
		for _, kind := range []SignerKind{SignerKey, SignerCertificate, SignerSigstore} {
			data := readFile(t, filepath.Join(specVectors, "invalid", name+".bundle.json"))
			_, err := Verify(context.Background(), data, pythonVerifier(t, kind))
			want := ErrBundle
			if name == "missing-tlog-entries" && kind != SignerSigstore {
				// A Sigstore bundle given to another verifier is refused for that first.
				want = ErrVerificationMaterial
				if kind == SignerCertificate {
					// The certificate verifier reads the Fulcio certificate, whose ten
					// minutes are long over.
					want = ErrCertificateExpired
				}
			}
			if !errors.Is(err, want) {
				t.Errorf("%s, %s verifier: got %v, want %v", name, kind, err, want)
			}
		}
	}
}

func TestOMSSpecWrongPredicateVectorIsRefused(t *testing.T) {
	data := readFile(t, filepath.Join(specVectors, "invalid-payload", "wrong-predicate.bundle.json"))
	// The vector reuses valid/key's signature over an edited payload, so the signature check,
	// which comes first, refuses it; the payload is never read.
	if _, err := Verify(context.Background(), data, pythonVerifier(t, SignerKey)); !errors.Is(err, ErrSignature) {
		t.Fatalf("got %v, want ErrSignature", err)
	}
	// Had it been signed, its statement would be refused for its predicate type.
	var b struct{ DSSEEnvelope struct{ Payload string } }
	must(t, json.Unmarshal(data, &b))
	payload, err := base64.StdEncoding.DecodeString(b.DSSEEnvelope.Payload)
	must(t, err)
	if _, err := DecodeStatement(payload); !errors.Is(err, ErrPredicateType) {
		t.Fatalf("got %v, want ErrPredicateType", err)
	}
}
