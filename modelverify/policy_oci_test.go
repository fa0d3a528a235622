package modelverify_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/modelverify"
)

// ociPolicy is a valid policy with a registry and a publisher claiming OCI repositories on it.
const ociPolicy = `apiVersion: modelverify.echelongraph.io/v1alpha1
kind: ModelPolicy
endpoints:
  - url: https://huggingface.co
registries:
  - name: ghcr
    host: ghcr.io
    repositories: ["acme/*"]
  - host: 127.0.0.1:5000
    plainHTTP: true
publishers:
  - name: acme
    oci: [ghcr.io/acme/*, 127.0.0.1:5000/acme/model]
    requireDigest: true
    identities:
      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}
`

func TestOCIPolicyErrorsNameTheFieldAtFault(t *testing.T) {
	for _, tc := range []struct {
		name, old, new string
		field, message string
	}{
		{"registry without host", "  - name: ghcr\n    host: ghcr.io\n", "  - name: ghcr\n", "registries[0].host", "required"},
		{"registry host is a URL", "host: ghcr.io", "host: https://ghcr.io", "registries[0].host", "not a URL"},
		{"registry host upper-case", "host: ghcr.io", "host: GHCR.io", "registries[0].host", "lower-case"},
		{"registry listed twice", "host: 127.0.0.1:5000\n    plainHTTP: true", "host: ghcr.io", "registries[1].host", "already registries[0]"},
		{"plain HTTP to a public registry", "host: ghcr.io\n", "host: ghcr.io\n    plainHTTP: true\n", "registries[0].plainHTTP", "not a loopback host"},
		{"loopback without plainHTTP", "    plainHTTP: true\n", "", "registries[1].plainHTTP", "set plainHTTP: true"},
		{"bad repository glob", `["acme/*"]`, `["acme/[a-"]`, "registries[0].repositories[0]", "path.Match glob"},
		{"misspelt registry field", "    plainHTTP: true", "    plainHttp: true", "registries[1].plainHttp", `did you mean "plainHTTP"`},
		{"misspelt publisher field", "    requireDigest: true", "    requireDigests: true", "publishers[0].requireDigests", `did you mean "requireDigest"`},
		{"claim on an unapproved registry", "oci: [ghcr.io/acme/*", "oci: [quay.io/acme/*", "publishers[0].oci[0]", "not in registries"},
		{"claim without a repository", "oci: [ghcr.io/acme/*", "oci: [ghcr.io", "publishers[0].oci[0]", "must be host/repository"},
		{"claim with a tag", "oci: [ghcr.io/acme/*", "oci: [ghcr.io/acme/model:v1", "publishers[0].oci[0]", "without a tag"},
		{"claim listed twice", "127.0.0.1:5000/acme/model]", "ghcr.io/acme/*]", "publishers[0].oci[1]", "listed twice"},
		{"requireDigest without OCI claims", "    oci: [ghcr.io/acme/*, 127.0.0.1:5000/acme/model]\n", "    namespaces: [acme]\n", "publishers[0].requireDigest", "claims no OCI repository"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(ociPolicy, tc.old) {
				t.Fatalf("the base policy has no %q", tc.old)
			}
			_, err := modelverify.ParsePolicy([]byte(strings.Replace(ociPolicy, tc.old, tc.new, 1)))
			var pe *modelverify.PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a PolicyError", err)
			}
			for _, p := range pe.Problems {
				if p.Field == tc.field && strings.Contains(p.Message, tc.message) {
					return
				}
			}
			t.Fatalf("no problem at %s saying %q in:\n%v", tc.field, tc.message, err)
		})
	}
}

func TestOCIPolicyMatchesRegistriesAndPublishers(t *testing.T) {
	p, err := modelverify.ParsePolicy([]byte(ociPolicy +
		"  - name: llama-team\n    oci: [ghcr.io/acme/llama]\n    identities:\n      - sigstore: {identity: bob@acme.example, issuer: https://accounts.google.com}\n"))
	if err != nil {
		t.Fatal(err)
	}
	reg, ok := p.Registry("GHCR.io")
	if !ok || !reg.AllowsRepository("acme/llama") || reg.AllowsRepository("evil/llama") {
		t.Fatalf("registry = %+v, %v", reg, ok)
	}
	if _, ok := p.Registry("quay.io"); ok {
		t.Fatal("quay.io is approved")
	}
	for name, want := range map[string]string{"ghcr.io/acme/llama": "llama-team", "ghcr.io/acme/tiny": "acme", "127.0.0.1:5000/acme/model": "acme"} {
		pub, err := p.OCIPublisher(name)
		if err != nil || pub.Name != want {
			t.Errorf("OCIPublisher(%s) = %v, %v; want %s", name, pub, err, want)
		}
	}
	tied, err := modelverify.ParsePolicy([]byte(ociPolicy +
		"  - name: other\n    oci: [ghcr.io/acme/t*]\n    identities:\n      - sigstore: {identity: bob@acme.example, issuer: https://accounts.google.com}\n" +
		"  - name: third\n    oci: [ghcr.io/acme/*y]\n    identities:\n      - sigstore: {identity: eve@acme.example, issuer: https://accounts.google.com}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tied.OCIPublisher("ghcr.io/acme/tiny"); !errors.Is(err, modelverify.ErrPublisherNotAllowed) || !strings.Contains(err.Error(), "equally specifically") {
		t.Errorf("a tie between publishers = %v, want refused", err)
	}
	for _, name := range []string{"ghcr.io/evil/tiny", "ghcr.io/acme/a/b", "quay.io/acme/tiny", "127.0.0.1:5000/acme/other"} {
		if _, err := p.OCIPublisher(name); !errors.Is(err, modelverify.ErrPublisherNotAllowed) {
			t.Errorf("OCIPublisher(%s) = %v, want ErrPublisherNotAllowed", name, err)
		}
	}
}
