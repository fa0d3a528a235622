package registry

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/echelongraph/go-modelverify/manifest"
	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

// The fixtures in testdata/oci were signed by the real cosign CLI (v3.1.3) with a test key, in
// both of its signature forms, and saved as an OCI image layout by crane (testdata/oci/make.sh).
const ociFixtures = "../testdata/oci"

// loadCosignFixtures pushes every tagged manifest of the fixture layout into ts.
func loadCosignFixtures(t testing.TB, ts *registrytest.TestServer) {
	t.Helper()
	ts.PushLayout(t, filepath.Join(ociFixtures, "layout"))
}

// fixtureKeyVerifier verifies signatures made with the fixtures' test key, cosign.key.
func fixtureKeyVerifier(t testing.TB) SignatureVerifier {
	t.Helper()
	pub, err := os.ReadFile(filepath.Join(ociFixtures, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewKeyVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCosignCLISignaturesVerifyInBothForms(t *testing.T) {
	v := fixtureKeyVerifier(t)
	wantFiles := map[string]string{
		"config.json":       "{\"model_type\":\"test\",\"hidden_size\":4}\n",
		"model.safetensors": "not really safetensors, but fixed bytes for a fixture\n",
	}
	registryModes(t, func(t *testing.T, ts *registrytest.TestServer) {
		loadCosignFixtures(t, ts)
		c := testClient(t)
		for repo, want := range map[string]struct {
			format Format
			form   SignatureForm
		}{
			"acme/modelcar-bundle":  {FormatModelcar, FormBundle},
			"acme/modelcar-legacy":  {FormatModelcar, FormSimpleSigning},
			"acme/modelpack-bundle": {FormatModelPack, FormBundle},
			"acme/modelpack-legacy": {FormatModelPack, FormSimpleSigning},
		} {
			art := openRef(t, c, ts.Ref(repo, "v1"))
			if art.Format != want.format {
				t.Fatalf("%s: format %s, want %s", repo, art.Format, want.format)
			}
			vs, err := c.VerifySignature(context.Background(), art, v, verify.WithKey())
			if err != nil {
				t.Fatalf("%s: %v", repo, err)
			}
			if vs.Signature.Form != want.form {
				t.Fatalf("%s: verified a %s signature, want %s", repo, vs.Signature.Form, want.form)
			}
			if want.form == FormSimpleSigning && !strings.HasSuffix(vs.DockerReference, repo) {
				t.Fatalf("%s: docker-reference %q", repo, vs.DockerReference)
			}
			p, err := c.Pull(context.Background(), art, filepath.Join(t.TempDir(), "m"), Limits{})
			if err != nil {
				t.Fatalf("%s: %v", repo, err)
			}
			if got := readTree(t, p); !maps.Equal(got, wantFiles) {
				t.Fatalf("%s: files %v", repo, got)
			}
			// Another key refuses cosign's signature.
			if _, err := c.VerifySignature(context.Background(), art, newSigner(t).verifier(t), verify.WithKey()); !errors.Is(err, ErrSignature) {
				t.Fatalf("%s: another key: err = %v", repo, err)
			}
		}
	})
}

func TestCosignCLILegacySignatureCopiedToAnotherImageIsRefused(t *testing.T) {
	v := fixtureKeyVerifier(t)
	ts := registrytest.NewServer(t)
	loadCosignFixtures(t, ts)
	c := testClient(t)
	car := openRef(t, c, ts.Ref("acme/modelcar-legacy", "v1"))
	pack := openRef(t, c, ts.Ref("acme/modelpack-legacy", "v1"))
	// The modelcar's genuine .sig, re-tagged as the ModelPack's.
	sigDesc := registrytest.Descriptor{MediaType: registrytest.MediaTypeOCIManifest}
	var idx struct {
		Manifests []registrytest.Descriptor `json:"manifests"`
	}
	b, _ := os.ReadFile(filepath.Join(ociFixtures, "layout", "index.json"))
	_ = json.Unmarshal(b, &idx)
	for _, m := range idx.Manifests {
		if m.Annotations["org.opencontainers.image.ref.name"] == "acme/modelcar-legacy:"+LegacySignatureTag(car.Digest) {
			sigDesc.Digest = m.Digest
		}
	}
	// Its blobs are in acme/modelcar-legacy; the copy needs them in this repository too.
	raw, err := os.ReadFile(filepath.Join(ociFixtures, "layout", "blobs", strings.Replace(sigDesc.Digest, ":", "/", 1)))
	if err != nil {
		t.Fatal(err)
	}
	var sigManifest struct {
		Config registrytest.Descriptor   `json:"config"`
		Layers []registrytest.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(raw, &sigManifest); err != nil {
		t.Fatal(err)
	}
	for _, d := range append(sigManifest.Layers, sigManifest.Config) {
		b, err := os.ReadFile(filepath.Join(ociFixtures, "layout", "blobs", strings.Replace(d.Digest, ":", "/", 1)))
		if err != nil {
			t.Fatal(err)
		}
		ts.PushBlob(t, "acme/modelpack-legacy", b)
	}
	ts.PushRaw(t, "acme/modelpack-legacy", LegacySignatureTag(pack.Digest), sigDesc.MediaType, raw)
	_, err = c.VerifySignature(context.Background(), pack, v, verify.WithKey())
	if !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "another image") {
		t.Fatalf("err = %v, want a refusal naming the copy", err)
	}
}

// The certificate fixtures (make.sh's certificate part): a test CA made with openssl, a root and
// an intermediate, whose code-signing leaf (e-mail SAN releases@acme.example) signed
// acme/cert-modelcar-bundle and acme/cert-modelcar-legacy with cosign sign --key K
// --certificate C --certificate-chain CHAIN --tlog-upload=false, and whose TLS server leaf
// signed acme/cert-tls-bundle and acme/cert-tls-legacy with --certificate alone (cosign will
// not sign with a TLS server certificate and its chain).
const ociCA = ociFixtures + "/ca"

// fixtureCerts reads a PEM file of testdata/oci/ca.
func fixtureCerts(t testing.TB, name string) []*x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ociCA, name))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := cryptoutils.UnmarshalCertificatesFromPEM(b)
	if err != nil || len(cs) == 0 {
		t.Fatalf("%s: %d certificates, %v", name, len(cs), err)
	}
	return cs
}

// fixtureCheck is a certificate identity's check with the PEM files of testdata/oci/ca named
// by roots as its roots, as modelverify builds it from a policy.
func fixtureCheck(t testing.TB, subject manifest.CertificateSubject, roots ...string) CertificateCheck {
	t.Helper()
	opts := manifest.CertificateVerifierOptions{Subject: subject}
	for _, r := range roots {
		b, err := os.ReadFile(filepath.Join(ociCA, r))
		if err != nil {
			t.Fatal(err)
		}
		opts.Roots = append(opts.Roots, b)
	}
	v, err := manifest.NewCertificateVerifier(opts)
	if err != nil {
		t.Fatal(err)
	}
	return func(leaf *x509.Certificate, inter []*x509.Certificate) error {
		_, err := manifest.CheckCertificate(v, leaf, inter)
		return err
	}
}

// The real cosign CLI's certificate signatures, in both forms, verify with a certificate
// identity whose only root is the test CA's: cosign puts the intermediate in both (the v3
// bundle's x509CertificateChain, the .sig layer's chain annotation), so the policy need not
// list it. Another CA, or another SAN, refuses them, and so does the fixtures' cosign.pub.
func TestCosignCLICertificateSignaturesVerifyAgainstTheTestCAInBothForms(t *testing.T) {
	leaf, inter := fixtureCerts(t, "release.pem")[0], fixtureCerts(t, "intermediate.pem")[0]
	release := fixtureCheck(t, manifest.CertificateSubject{Email: "releases@acme.example"}, "root.pem")
	registryModes(t, func(t *testing.T, ts *registrytest.TestServer) {
		loadCosignFixtures(t, ts)
		c := testClient(t)
		for repo, want := range map[string]struct {
			form SignatureForm
		}{
			"acme/cert-modelcar-bundle": {FormBundle},
			"acme/cert-modelcar-legacy": {FormSimpleSigning},
		} {
			art := openRef(t, c, ts.Ref(repo, "v1"))
			vs, err := c.VerifySignature(context.Background(), art, NewCertificateVerifier(release), verify.WithKey())
			if err != nil {
				t.Fatalf("%s: %v", repo, err)
			}
			if vs.Signature.Form != want.form {
				t.Fatalf("%s: verified a %s signature, want %s", repo, vs.Signature.Form, want.form)
			}
			// cosign 3.1 leaves the self-signed root of --certificate-chain out of both forms
			// (the .sig annotations are written from the bundle it makes first).
			if !slices.EqualFunc(vs.Certificates, []*x509.Certificate{leaf, inter}, (*x509.Certificate).Equal) {
				t.Fatalf("%s: the signature carried %d certificates, want the release leaf and the intermediate", repo, len(vs.Certificates))
			}
			for name, tc := range map[string]struct {
				check  CertificateCheck
				reason string
			}{
				"another CA":  {newPKI(t).check(t, manifest.CertificateSubject{}), "certificate signed by unknown authority"},
				"another SAN": {fixtureCheck(t, manifest.CertificateSubject{Email: "ops@acme.example"}, "root.pem"), `want "ops@acme.example", found "releases@acme.example"`},
			} {
				_, err := c.VerifySignature(context.Background(), art, NewCertificateVerifier(tc.check), verify.WithKey())
				if !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), tc.reason) {
					t.Fatalf("%s, %s: err = %v, want ErrSignature saying %q", repo, name, err, tc.reason)
				}
			}
			// A key identity is no certificate identity's stand-in: the fixtures' cosign.pub
			// did not sign these.
			if _, err := c.VerifySignature(context.Background(), art, fixtureKeyVerifier(t), verify.WithKey()); !errors.Is(err, ErrSignature) {
				t.Fatalf("%s: cosign.pub: err = %v", repo, err)
			}
		}
	})
}

// cosign sign --certificate without --certificate-chain puts the leaf alone in the signature,
// in both forms: the signature verifies with a policy that lists the intermediate among its
// roots, and is refused, the chain being incomplete, by one that lists only the root.
func TestCosignCLICertificateSignaturesWithoutAChainNeedTheIntermediateInTheRoots(t *testing.T) {
	leaf := fixtureCerts(t, "release.pem")[0]
	release := manifest.CertificateSubject{Email: "releases@acme.example"}
	ts := registrytest.NewServer(t)
	loadCosignFixtures(t, ts)
	c := testClient(t)
	for repo, form := range map[string]SignatureForm{"acme/cert-leafonly-bundle": FormBundle, "acme/cert-leafonly-legacy": FormSimpleSigning} {
		art := openRef(t, c, ts.Ref(repo, "v1"))
		_, err := c.VerifySignature(context.Background(), art, NewCertificateVerifier(fixtureCheck(t, release, "root.pem")), verify.WithKey())
		if !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
			t.Fatalf("%s, the root alone: err = %v, want the unknown intermediate refused", repo, err)
		}
		vs, err := c.VerifySignature(context.Background(), art, NewCertificateVerifier(fixtureCheck(t, release, "root.pem", "intermediate.pem")), verify.WithKey())
		if err != nil {
			t.Fatalf("%s, root and intermediate: %v", repo, err)
		}
		if vs.Signature.Form != form || !slices.EqualFunc(vs.Certificates, []*x509.Certificate{leaf}, (*x509.Certificate).Equal) {
			t.Fatalf("%s: a %s signature carrying %d certificates, want a %s one carrying the leaf alone", repo, vs.Signature.Form, len(vs.Certificates), form)
		}
	}
}

// A TLS server certificate of the test CA does not sign models, though it names the release
// SAN: the real cosign CLI's signatures with one (made with --certificate alone, so they carry
// only the leaf) are refused for its usage, by a policy that lists the intermediate (so the
// chain is complete) as by one that lists only the root.
func TestCosignCLISignaturesWithATLSServerCertificateAreRefused(t *testing.T) {
	ts := registrytest.NewServer(t)
	loadCosignFixtures(t, ts)
	c := testClient(t)
	release := manifest.CertificateSubject{Email: "releases@acme.example"}
	for _, repo := range []string{"acme/cert-tls-bundle", "acme/cert-tls-legacy"} {
		art := openRef(t, c, ts.Ref(repo, "v1"))
		for name, tc := range map[string]struct {
			check  CertificateCheck
			reason string
		}{
			"root and intermediate": {fixtureCheck(t, release, "root.pem", "intermediate.pem"),
				`certificate "CN=models.acme.example,O=Acme ML" has extended key usages [serverAuth]; want one of [codeSigning]`},
			"root only": {fixtureCheck(t, release, "root.pem"), "has extended key usages [serverAuth]; want one of [codeSigning]"},
		} {
			_, err := c.VerifySignature(context.Background(), art, NewCertificateVerifier(tc.check), verify.WithKey())
			if !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("%s, %s: err = %v, want ErrSignature saying %q", repo, name, err, tc.reason)
			}
		}
	}
}
