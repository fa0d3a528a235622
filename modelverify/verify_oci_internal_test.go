package modelverify

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/registry"
)

// FuzzSignedDigest reads what an unverified signature claims to sign, from bytes a registry
// serves: it must never panic, and what it returns is "" or a sha256 digest string.
func FuzzSignedDigest(f *testing.F) {
	stmt := `{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"` + strings.Repeat("ab", 32) + `"}}]}`
	f.Add(true, []byte(`{"dsseEnvelope":{"payload":"`+base64.StdEncoding.EncodeToString([]byte(stmt))+`"}}`))
	f.Add(false, []byte(`{"critical":{"image":{"docker-manifest-digest":"sha256:`+strings.Repeat("cd", 32)+`"}}}`))
	f.Add(true, []byte(`{"dsseEnvelope":{"payload":"!!"}}`))
	f.Add(false, []byte(`[]`))
	f.Fuzz(func(t *testing.T, bundle bool, data []byte) {
		sig := &registry.Signature{Form: registry.FormSimpleSigning, Payload: data}
		if bundle {
			sig = &registry.Signature{Form: registry.FormBundle, Bundle: data}
		}
		got := signedDigest(sig)
		if bundle && got != "" && !strings.HasPrefix(got, "sha256:") {
			t.Fatalf("signedDigest = %q", got)
		}
	})
}

// FuzzParseOCIPattern checks that a policy's oci entry either parses into a host and a glob
// that match themselves consistently, or is refused; never a panic.
func FuzzParseOCIPattern(f *testing.F) {
	for _, s := range []string{"ghcr.io/acme/*", "127.0.0.1:5000/a", "ghcr.io", "a/../b", "[::1]:5000/x/[a-", "oci://ghcr.io/acme/m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseOCIPattern(s)
		if err != nil {
			return
		}
		if p.host == "" || p.repo == "" || strings.Contains(p.repo, "..") && !strings.Contains(s, "..") {
			t.Fatalf("parseOCIPattern(%q) = %+v", s, p)
		}
		_ = p.match(p.host, p.repo)
	})
}

func TestSignedDigestReadsBothSignatureForms(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	stmt := `{"subject":[{"digest":{"sha256":"` + strings.Repeat("ab", 32) + `"}}]}`
	b := &registry.Signature{Form: registry.FormBundle, Bundle: []byte(`{"dsseEnvelope":{"payload":"` + base64.StdEncoding.EncodeToString([]byte(stmt)) + `"}}`)}
	s := &registry.Signature{Form: registry.FormSimpleSigning, Payload: []byte(`{"critical":{"image":{"docker-manifest-digest":"` + d + `"}}}`)}
	if signedDigest(b) != d || signedDigest(s) != d {
		t.Fatalf("signedDigest = %q, %q; want %s", signedDigest(b), signedDigest(s), d)
	}
}
