package manifest

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeStatement feeds arbitrary payloads to the statement decoder. Whatever it accepts
// must be self-consistent: safe names, and a root digest that matches the resources.
func FuzzDecodeStatement(f *testing.F) {
	goldens, _ := filepath.Glob(filepath.Join(interop, "golden-payloads/signing/TestPayload/*"))
	for _, g := range goldens {
		if b, err := os.ReadFile(g); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"x"}}],"predicateType":"https://model_signing/Digests/v0.1"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		st, err := DecodeStatement(payload)
		if err != nil {
			return
		}
		for _, r := range st.Manifest.Resources {
			if err := ValidateName(pathOf(r)); err != nil {
				t.Fatalf("accepted unsafe name %q", r.Name)
			}
		}
		if st.PredicateType == PredicateType && st.SubjectDigest != st.Manifest.RootDigest() {
			t.Fatalf("accepted a root digest that does not match")
		}
	})
}
