package modelverify_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/modelverify"
)

// The certificate fixtures of testdata/oci (make.sh's certificate part): a test CA made with
// openssl (root and intermediate), a modelcar holding a valid config.json and safetensors file,
// signed by the real cosign CLI with the CA's code-signing leaf (e-mail SAN
// releases@acme.example; cosign sign --key K --certificate C --certificate-chain CHAIN
// --tlog-upload=false) in both forms, and with its TLS server leaf (--certificate alone).
var ociCADir = filepath.Join("..", "testdata", "oci", "ca")

func ociCAPEM(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ociCADir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// certificateIdentity makes the publisher's only identity a certificate one with roots and
// subject.
func certificateIdentity(subject map[string]any, roots ...string) policyEdit {
	return func(p map[string]any) {
		var rs []any
		for _, r := range roots {
			rs = append(rs, map[string]any{"pem": r})
		}
		publisher(p)["identities"] = []any{map[string]any{"certificate": map[string]any{"roots": rs, "subject": subject}}}
	}
}

// TestVerifyOCIAllowsTheRealCosignCLICertificateSignatures runs the gate on the modelcar the
// real cosign CLI signed with the test CA's code-signing certificate, in both signature forms:
// a publisher whose certificate identity has the CA's root as its only root and the leaf's SAN
// as its subject allows it whole (signature, every file hashed and scanned, published), and the
// evidence and the audit log name the certificate. A signature made without
// --certificate-chain carries the leaf alone, and is allowed when the policy lists the
// intermediate too.
func TestVerifyOCIAllowsTheRealCosignCLICertificateSignatures(t *testing.T) {
	g := newOCIGate(t)
	g.ts.PushLayout(t, filepath.Join("..", "testdata", "oci", "layout"))
	release := map[string]any{"email": "releases@acme.example"}
	rootOnly := g.verifier(certificateIdentity(release, ociCAPEM(t, "root.pem")))
	withIntermediate := g.verifier(certificateIdentity(release, ociCAPEM(t, "root.pem"), ociCAPEM(t, "intermediate.pem")))
	for repo, v := range map[string]*modelverify.Verifier{
		"acme/cert-modelcar-bundle": rootOnly, "acme/cert-modelcar-legacy": rootOnly,
		"acme/cert-leafonly-bundle": withIntermediate, "acme/cert-leafonly-legacy": withIntermediate,
	} {
		m, err := v.Verify(context.Background(), g.ts.Ref(repo, "v1"))
		if err != nil {
			t.Fatalf("%s: %v", repo, err)
		}
		if got, err := os.ReadFile(filepath.Join(m.Dir(), "config.json")); err != nil || string(got) != "{\"model_type\":\"test\",\"hidden_size\":4}\n" {
			t.Fatalf("%s: config.json = %q, %v", repo, got, err)
		}
		// make.sh writes the safetensors file hubtest would: one F32 tensor "weight" of four ones.
		if got, err := os.ReadFile(filepath.Join(m.Dir(), "model.safetensors")); err != nil || !bytes.Equal(got, safetensorsFile(4, 1)) {
			t.Fatalf("%s: model.safetensors = %q, %v", repo, got, err)
		}
		if len(m.Files()) != 2 {
			t.Fatalf("%s: files %+v", repo, m.Files())
		}
		ev := m.Evidence()
		s := ev.Signer
		if ev.Verification != modelverify.VerifiedSignature || ev.Publisher != "acme" || s.Kind != "certificate" ||
			s.Identity != "CN=Acme release,O=Acme ML" || s.Issuer != "CN=Acme Test Signing CA,O=Acme ML" || s.KeyFingerprint == "" {
			t.Fatalf("%s: evidence %+v", repo, ev)
		}
		recs := g.records()
		if last := recs[len(recs)-1]; last.Decision != modelverify.DecisionAllowed || last.Repo != repo || last.Signer != "CN=Acme release,O=Acme ML" {
			t.Fatalf("%s: audit record %+v", repo, last)
		}
	}
}

// TestVerifyOCIRefusesTheRealCosignCLISignaturesOfAWrongCertificate: the TLS server leaf of the
// same CA, which names the release SAN too, is refused for its usage (the policy lists the
// intermediate, as cosign put none in that signature), another CA and another SAN refuse the
// release leaf, each as wrong-identity naming what it found, and nothing is published.
func TestVerifyOCIRefusesTheRealCosignCLISignaturesOfAWrongCertificate(t *testing.T) {
	g := newOCIGate(t)
	g.ts.PushLayout(t, filepath.Join("..", "testdata", "oci", "layout"))
	root, inter := ociCAPEM(t, "root.pem"), ociCAPEM(t, "intermediate.pem")
	release := map[string]any{"email": "releases@acme.example"}
	for _, tc := range []struct {
		name, repo string
		identity   policyEdit
		detail     string
	}{
		{"TLS server leaf, bundle", "acme/cert-tls-bundle", certificateIdentity(release, root, inter),
			`certificate "CN=models.acme.example,O=Acme ML" has extended key usages [serverAuth]; want one of [codeSigning]`},
		{"TLS server leaf, legacy", "acme/cert-tls-legacy", certificateIdentity(release, root, inter),
			`certificate "CN=models.acme.example,O=Acme ML" has extended key usages [serverAuth]; want one of [codeSigning]`},
		{"another CA, bundle", "acme/cert-modelcar-bundle", certificateIdentity(release, newTestCA(t).pem), "certificate signed by unknown authority"},
		{"another CA, legacy", "acme/cert-modelcar-legacy", certificateIdentity(release, newTestCA(t).pem), "certificate signed by unknown authority"},
		{"a leaf without its chain, the root alone", "acme/cert-leafonly-bundle", certificateIdentity(release, root), "certificate signed by unknown authority"},
		{"another SAN", "acme/cert-modelcar-bundle", certificateIdentity(map[string]any{"email": "ops@acme.example"}, root),
			`certificate e-mail SAN: want "ops@acme.example", found "releases@acme.example"`},
	} {
		_, err := g.verifier(tc.identity).Verify(context.Background(), g.ts.Ref(tc.repo, "v1"))
		var r *modelverify.Refusal
		if !errors.As(err, &r) || !errors.Is(err, modelverify.ErrIdentity) || len(r.Problems) != 1 {
			t.Fatalf("%s: err = %v, want one wrong-identity problem", tc.name, err)
		}
		if !strings.Contains(r.Problems[0].Detail, tc.detail) {
			t.Fatalf("%s: detail %q, want %q", tc.name, r.Problems[0].Detail, tc.detail)
		}
		recs := g.records()
		if last := recs[len(recs)-1]; last.Decision == modelverify.DecisionAllowed || last.Repo != tc.repo {
			t.Fatalf("%s: audit record %+v", tc.name, last)
		}
	}
	g.assertNothingPublished()
}
