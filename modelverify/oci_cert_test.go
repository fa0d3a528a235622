package modelverify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/echelongraph/go-modelverify/modelverify"
	"github.com/echelongraph/go-modelverify/registry"
	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

// certSigner is a key certified by a test CA, as cosign sign --key K --certificate C uses it.
type certSigner struct {
	key  *ecdsa.PrivateKey
	leaf *x509.Certificate
}

// issue certifies a fresh key as tmpl says.
func (ca *testCA) issue(t *testing.T, tmpl *x509.Certificate) certSigner {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return certSigner{key: key, leaf: leaf}
}

func (s certSigner) sign(t *testing.T, data []byte) []byte {
	t.Helper()
	sum := sha256.Sum256(data)
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// signLegacy stores cosign's legacy .sig for d made with the certificate's key, the leaf in the
// dev.sigstore.cosign/certificate annotation, and no Rekor entry (--tlog-upload=false).
func (s certSigner) signLegacy(t *testing.T, ts *registrytest.TestServer, repo string, d registrytest.Descriptor) {
	t.Helper()
	payload, _ := json.Marshal(map[string]any{"critical": map[string]any{
		"identity": map[string]string{"docker-reference": ts.Host + "/" + repo},
		"image":    map[string]string{"docker-manifest-digest": d.Digest},
		"type":     registry.SimpleSigningType,
	}, "optional": nil})
	ts.PushManifest(t, repo, "sha256-"+strings.TrimPrefix(d.Digest, "sha256:")+".sig", registrytest.Manifest{
		Config: registrytest.Blob{MediaType: registrytest.MediaTypeOCIConfig, Data: []byte(`{}`)},
		Layers: []registrytest.Blob{{MediaType: registry.MediaTypeSimpleSigning, Data: payload, Annotations: map[string]string{
			"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(s.sign(t, payload)),
			"dev.sigstore.cosign/certificate":    string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.leaf.Raw})),
			"dev.sigstore.cosign/chain":          "",
		}}},
	})
}

// signBundle stores cosign v3's bundle for d: a DSSE envelope over cosign's statement, signed
// with the certificate's key, no log entry, and the leaf as the bundle's certificate
// (--certificate) or, with chain, as a one-certificate x509CertificateChain (what cosign 3.1
// writes for --certificate-chain holding only the root, which it leaves out).
func (s certSigner) signBundle(t *testing.T, ts *registrytest.TestServer, repo string, d registrytest.Descriptor, chain bool) {
	t.Helper()
	stmt, _ := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": "", "digest": map[string]string{"sha256": strings.TrimPrefix(d.Digest, "sha256:")}}},
		"predicateType": registry.CosignPredicateType,
		"predicate":     map[string]any{},
	})
	const pt = "application/vnd.in-toto+json"
	sig := s.sign(t, fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(pt), pt, len(stmt), stmt))
	vm := &protobundle.VerificationMaterial{
		Content: &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: s.leaf.Raw}},
	}
	if chain {
		vm.Content = &protobundle.VerificationMaterial_X509CertificateChain{X509CertificateChain: &protocommon.X509CertificateChain{
			Certificates: []*protocommon.X509Certificate{{RawBytes: s.leaf.Raw}}}}
	}
	b, err := (&bundle.Bundle{Bundle: &protobundle.Bundle{
		MediaType:            registry.MediaTypeSigstoreBundle,
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: stmt, PayloadType: pt, Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	ts.PushReferrer(t, repo, registrytest.Manifest{
		ArtifactType: registry.MediaTypeSigstoreBundle,
		Config:       registrytest.Blob{MediaType: registrytest.MediaTypeEmptyJSON, Data: []byte("{}")},
		Layers:       []registrytest.Blob{{MediaType: registry.MediaTypeSigstoreBundle, Data: b}},
		Subject:      &registrytest.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size},
	})
}

// TestVerifyOCIChecksACertificateSignerAgainstThePublishersCA: a publisher's certificate
// identity verifies cosign signatures made with a certificate's key (both forms), with the
// Hub's checks: the chain to the policy's CA, the code-signing usage, the subject constraints.
func TestVerifyOCIChecksACertificateSignerAgainstThePublishersCA(t *testing.T) {
	ca := newTestCA(t)
	release := ca.issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "Acme release", Organization: []string{"Acme ML"}}, EmailAddresses: []string{"release@acme.example"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	})
	tlsServer := ca.issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "models.acme.example", Organization: []string{"Acme ML"}}, DNSNames: []string{"models.acme.example"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	otherCA := newTestCA(t)
	stranger := otherCA.issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "Acme release", Organization: []string{"Acme ML"}}, EmailAddresses: []string{"release@acme.example"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	})
	identity := func(subject map[string]any) policyEdit {
		return func(p map[string]any) {
			publisher(p)["identities"] = []any{map[string]any{"certificate": map[string]any{
				"roots": []any{map[string]any{"pem": ca.pem}}, "subject": subject}}}
		}
	}
	releaseOnly := identity(map[string]any{"organization": "Acme ML", "emailRegexp": `release@acme\.example`})
	for _, form := range []struct {
		name string
		opts []registrytest.Option
		sign func(s certSigner, g *ociGate, repo string, d registrytest.Descriptor)
	}{
		{"legacy-sig-tag", nil, func(s certSigner, g *ociGate, repo string, d registrytest.Descriptor) {
			s.signLegacy(g.t.(*testing.T), g.ts, repo, d)
		}},
		{"bundle-referrers-api", []registrytest.Option{registrytest.WithReferrersAPI()}, func(s certSigner, g *ociGate, repo string, d registrytest.Descriptor) {
			s.signBundle(g.t.(*testing.T), g.ts, repo, d, false)
		}},
		{"bundle-tag-schema", nil, func(s certSigner, g *ociGate, repo string, d registrytest.Descriptor) {
			s.signBundle(g.t.(*testing.T), g.ts, repo, d, false)
		}},
		{"bundle-with-chain", nil, func(s certSigner, g *ociGate, repo string, d registrytest.Descriptor) {
			s.signBundle(g.t.(*testing.T), g.ts, repo, d, true)
		}},
	} {
		t.Run(form.name, func(t *testing.T) {
			g := newOCIGate(t, form.opts...)
			push := func(repo string, s certSigner) string {
				d := g.modelcar(repo, cleanEntries()...)
				form.sign(s, g, repo, d)
				return g.ts.Ref(repo, "v1")
			}
			good, tls, foreign := push("acme/tiny", release), push("acme/tls", tlsServer), push("acme/foreign", stranger)

			m, err := g.verifier(releaseOnly).Verify(context.Background(), good)
			if err != nil {
				t.Fatalf("the release certificate: %v", err)
			}
			s := m.Evidence().Signer
			if s.Kind != "certificate" || s.Identity != "CN=Acme release,O=Acme ML" || s.Issuer != "CN=Acme internal CA" || s.KeyFingerprint == "" {
				t.Fatalf("signer = %+v", s)
			}
			if recs := g.records(); recs[len(recs)-1].Signer != "CN=Acme release,O=Acme ML" {
				t.Fatalf("audit signer = %q", recs[len(recs)-1].Signer)
			}

			for _, tc := range []struct {
				name, ref string
				edit      policyEdit
				detail    string
			}{
				{"another CA", foreign, releaseOnly, "certificate signed by unknown authority"},
				{"a TLS server certificate of the same CA", tls, identity(nil), `has extended key usages [serverAuth]; want one of [codeSigning]`},
				{"another SAN", good, identity(map[string]any{"email": "ops@acme.example"}), `certificate e-mail SAN: want "ops@acme.example", found "release@acme.example"`},
			} {
				_, err := g.verifier(tc.edit).Verify(context.Background(), tc.ref)
				var r *modelverify.Refusal
				if !errors.As(err, &r) || !errors.Is(err, modelverify.ErrIdentity) {
					t.Fatalf("%s: err = %v, want ErrIdentity", tc.name, err)
				}
				if !strings.Contains(r.Problems[0].Detail, tc.detail) {
					t.Fatalf("%s: detail %q, want %q", tc.name, r.Problems[0].Detail, tc.detail)
				}
			}
		})
	}
}

func TestOCIPolicyAcceptsACertificateIdentity(t *testing.T) {
	_, err := modelverify.ParsePolicy([]byte(strings.Replace(ociPolicy,
		"      - sigstore: {identity: alice@acme.example, issuer: https://accounts.google.com}",
		"      - certificate: {roots: [{path: "+interopCACert+"}], subject: {commonName: release}}", 1)))
	if err != nil {
		t.Fatalf("a certificate identity on a publisher with oci entries: %v", err)
	}
}
