package manifest

import (
	"os"
	"path/filepath"
	"reflect"
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
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"m","digest":{"sha256":"0000000000000000000000000000000000000000000000000000000000000000"}}],"predicateType":"https://model_signing/signature/v1.0","predicate":{"serialization":{"method":"files","hash_type":"sha256","allow_symlinks":false}},"PREDICATE":{"resources":[]}}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		// The one-pass decode, when it answers, answers as the general path does.
		if fast, ok := decodeV1Once(payload); ok {
			slow, err := decodeStatement(payload)
			if err != nil || !reflect.DeepEqual(fast, slow) {
				t.Fatalf("one pass gives %+v, the general path %+v, %v", fast, slow, err)
			}
		}
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
