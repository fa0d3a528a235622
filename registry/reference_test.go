package registry

import (
	"errors"
	"strings"
	"testing"
)

func TestParseReference(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for in, want := range map[string]Reference{
		"oci://ghcr.io/acme/model:v1":              {Registry: "ghcr.io", Repository: "acme/model", Tag: "v1"},
		"oci://ghcr.io/acme/model@" + d:            {Registry: "ghcr.io", Repository: "acme/model", Digest: d},
		"oci://ghcr.io/acme/model:v1@" + d:         {Registry: "ghcr.io", Repository: "acme/model", Tag: "v1", Digest: d},
		"oci://127.0.0.1:5000/a/b/c:latest":        {Registry: "127.0.0.1:5000", Repository: "a/b/c", Tag: "latest"},
		"oci://localhost/m":                        {Registry: "localhost", Repository: "m", Tag: "latest"},
		"registry.example.com:443/team/llm:2024.1": {Registry: "registry.example.com:443", Repository: "team/llm", Tag: "2024.1"},
	} {
		got, err := ParseReference(in)
		if err != nil || got != want {
			t.Errorf("ParseReference(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "oci://", "oci://ghcr.io", "oci://ghcr.io/", "oci://acme/model:v1", // no registry host
		"hf://org/name", "https://ghcr.io/acme/model",
		"oci://ghcr.io/acme/model@sha256:abc", "oci://ghcr.io/acme/model@sha512:" + strings.Repeat("a", 128),
		"oci://ghcr.io/acme/model@SHA256:" + strings.Repeat("A", 64),
		"oci://ghcr.io/Acme/model:v1", "oci://ghcr.io/acme/model:", "oci://ghcr.io/acme/model:-bad",
		"oci://ghcr.io/acme//model", "oci://ghcr.io/acme/../model", "oci://docker.io/library/x:1",
	} {
		if r, err := ParseReference(in); !errors.Is(err, ErrInvalidReference) {
			t.Errorf("ParseReference(%q) = %+v, %v; want ErrInvalidReference", in, r, err)
		}
	}
}

func TestReferenceStringRoundTrips(t *testing.T) {
	for _, in := range []string{"oci://ghcr.io/acme/model:v1", "oci://h.io/a/b@sha256:" + strings.Repeat("0", 64), "oci://h.io:1/a:t@sha256:" + strings.Repeat("f", 64)} {
		r, err := ParseReference(in)
		if err != nil || r.String() != in {
			t.Errorf("%q -> %+v -> %q, %v", in, r, r.String(), err)
		}
	}
}
