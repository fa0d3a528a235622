package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

// signer is a cosign-style key signer for tests.
type signer struct {
	kp     *sign.EphemeralKeypair
	pubPEM []byte
}

func newSigner(t testing.TB) *signer {
	t.Helper()
	kp, err := sign.NewEphemeralKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := kp.GetPublicKeyPem()
	if err != nil {
		t.Fatal(err)
	}
	return &signer{kp: kp, pubPEM: []byte(pem)}
}

func (s *signer) verifier(t testing.TB) *verify.Verifier {
	t.Helper()
	v, err := NewKeyVerifier(s.pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// statement is cosign's in-toto statement over a manifest digest.
func statement(digest, predicateType string) []byte {
	hex := strings.TrimPrefix(digest, "sha256:")
	b, _ := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": "", "digest": map[string]string{"sha256": hex}}},
		"predicateType": predicateType,
		"predicate":     map[string]any{},
	})
	return b
}

// bundleJSON signs stmt as a DSSE envelope, as cosign v3 does.
func (s *signer) bundleJSON(t testing.TB, stmt []byte) []byte {
	t.Helper()
	pb, err := sign.Bundle(&sign.DSSEData{Data: stmt, PayloadType: "application/vnd.in-toto+json"}, s.kp, sign.BundleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := (&bundle.Bundle{Bundle: pb}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pushBundle stores a cosign v3 signature referrer of subject.
func pushBundle(t testing.TB, ts *registrytest.TestServer, repo string, subject registrytest.Descriptor, bundleJSON []byte) {
	t.Helper()
	ts.PushReferrer(t, repo, registrytest.Manifest{
		ArtifactType: MediaTypeSigstoreBundle,
		Config:       registrytest.Blob{MediaType: registrytest.MediaTypeEmptyJSON, Data: []byte("{}")},
		Layers:       []registrytest.Blob{{MediaType: MediaTypeSigstoreBundle, Data: bundleJSON}},
		Subject:      &registrytest.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations: map[string]string{
			"dev.sigstore.bundle.content":       "dsse-envelope",
			"dev.sigstore.bundle.predicateType": CosignPredicateType,
		},
	})
}

// simpleSigningPayload is cosign's legacy payload.
func simpleSigningPayload(repo, digest string) []byte {
	b, _ := json.Marshal(map[string]any{
		"critical": map[string]any{
			"identity": map[string]string{"docker-reference": repo},
			"image":    map[string]string{"docker-manifest-digest": digest},
			"type":     SimpleSigningType,
		},
		"optional": nil,
	})
	return b
}

// pushLegacy stores a cosign v2 .sig tag for tagDigest holding payload signed by s.
func (s *signer) pushLegacy(t testing.TB, ts *registrytest.TestServer, repo, tagDigest string, payload []byte) {
	t.Helper()
	sig, _, err := s.kp.SignData(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := v1.NewHash(tagDigest)
	ts.PushManifest(t, repo, LegacySignatureTag(h), registrytest.Manifest{
		Config: registrytest.Blob{MediaType: registrytest.MediaTypeOCIConfig, Data: []byte(`{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`)},
		Layers: []registrytest.Blob{{MediaType: MediaTypeSimpleSigning, Data: payload,
			Annotations: map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig)}}},
	})
}

// signedModel pushes a small modelcar and returns its descriptor.
func signedModel(t testing.TB, ts *registrytest.TestServer, repo, body string) registrytest.Descriptor {
	t.Helper()
	return ts.PushManifest(t, repo, "v1", registrytest.Modelcar(registrytest.Tar(registrytest.File("models/model.bin", []byte(body)))))
}

func openRef(t *testing.T, c *Client, ref string) *Artifact {
	t.Helper()
	art, err := c.Open(context.Background(), mustParse(t, ref))
	if err != nil {
		t.Fatal(err)
	}
	return art
}

func TestBundleReferrerSignatureVerifiesWithThePublishersKey(t *testing.T) {
	registryModes(t, func(t *testing.T, ts *registrytest.TestServer) {
		s := newSigner(t)
		d := signedModel(t, ts, "acme/model", "weights")
		pushBundle(t, ts, "acme/model", d, s.bundleJSON(t, statement(d.Digest, CosignPredicateType)))
		c := testClient(t)
		art := openRef(t, c, ts.Ref("acme/model", "v1"))
		vs, err := c.VerifySignature(context.Background(), art, s.verifier(t), verify.WithKey())
		if err != nil {
			t.Fatal(err)
		}
		if vs.Signature.Form != FormBundle || vs.Result == nil || vs.Result.Statement == nil {
			t.Fatalf("verified = %+v", vs)
		}
		// Another key does not verify it.
		_, err = c.VerifySignature(context.Background(), art, newSigner(t).verifier(t), verify.WithKey())
		if !errors.Is(err, ErrSignature) || errors.Is(err, ErrUnsigned) {
			t.Fatalf("wrong key: err = %v, want ErrSignature", err)
		}
	})
}

func TestLegacySigTagVerifiesAndNamesItsDockerReference(t *testing.T) {
	ts := registrytest.NewServer(t)
	s := newSigner(t)
	d := signedModel(t, ts, "acme/model", "weights")
	s.pushLegacy(t, ts, "acme/model", d.Digest, simpleSigningPayload(ts.Host+"/acme/model", d.Digest))
	c := testClient(t)
	art := openRef(t, c, ts.Ref("acme/model", "v1"))
	vs, err := c.VerifySignature(context.Background(), art, s.verifier(t), verify.WithKey())
	if err != nil {
		t.Fatal(err)
	}
	if vs.Signature.Form != FormSimpleSigning || vs.DockerReference != ts.Host+"/acme/model" {
		t.Fatalf("verified = %+v", vs)
	}
}

func TestUnsignedModelIsRefusedAsUnsigned(t *testing.T) {
	registryModes(t, func(t *testing.T, ts *registrytest.TestServer) {
		signedModel(t, ts, "acme/model", "weights")
		c := testClient(t)
		art := openRef(t, c, ts.Ref("acme/model", "v1"))
		_, err := c.VerifySignature(context.Background(), art, newSigner(t).verifier(t), verify.WithKey())
		if !errors.Is(err, ErrUnsigned) || errors.Is(err, ErrSignature) {
			t.Fatalf("err = %v, want ErrUnsigned only", err)
		}
	})
}

func TestSignatureCopiedFromAnotherImageIsRefused(t *testing.T) {
	registryModes(t, func(t *testing.T, ts *registrytest.TestServer) {
		s := newSigner(t)
		other := signedModel(t, ts, "acme/other", "other weights")
		d := signedModel(t, ts, "acme/model", "weights")
		// The other image's genuine signatures, copied under this digest.
		pushBundle(t, ts, "acme/model", d, s.bundleJSON(t, statement(other.Digest, CosignPredicateType)))
		s.pushLegacy(t, ts, "acme/model", d.Digest, simpleSigningPayload(ts.Host+"/acme/other", other.Digest))
		c := testClient(t)
		art := openRef(t, c, ts.Ref("acme/model", "v1"))
		sigs, err := c.Signatures(context.Background(), art.Reference, art.Digest)
		if err != nil || len(sigs) != 2 {
			t.Fatalf("signatures = %d, %v; want both forms found", len(sigs), err)
		}
		for _, sig := range sigs {
			_, err := sig.Verify(s.verifier(t), verify.WithKey())
			if !errors.Is(err, ErrSignature) {
				t.Fatalf("%s: err = %v, want ErrSignature", sig.Form, err)
			}
			if sig.Form == FormSimpleSigning && !strings.Contains(err.Error(), "another image") {
				t.Fatalf("legacy refusal does not say why: %v", err)
			}
		}
	})
}

func TestAnAttestationOfTheImageIsNotASignature(t *testing.T) {
	ts := registrytest.NewServer(t)
	s := newSigner(t)
	d := signedModel(t, ts, "acme/model", "weights")
	pushBundle(t, ts, "acme/model", d, s.bundleJSON(t, statement(d.Digest, "https://spdx.dev/Document")))
	c := testClient(t)
	art := openRef(t, c, ts.Ref("acme/model", "v1"))
	_, err := c.VerifySignature(context.Background(), art, s.verifier(t), verify.WithKey())
	if !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "not cosign's signature") {
		t.Fatalf("err = %v, want a refusal naming the predicate type", err)
	}
}

func TestSimpleSigningPayloadChecks(t *testing.T) {
	d, _ := v1.NewHash("sha256:" + strings.Repeat("a", 64))
	other := "sha256:" + strings.Repeat("b", 64)
	for name, tc := range map[string]struct {
		payload string
		want    string
	}{
		"ok":           {string(simpleSigningPayload("r", d.String())), ""},
		"other digest": {string(simpleSigningPayload("r", other)), "another image"},
		"wrong type":   {`{"critical":{"type":"something else","image":{"docker-manifest-digest":"` + d.String() + `"}}}`, "type"},
		"no critical":  {`{"optional":{}}`, "no critical"},
		"not json":     {`nope`, "not simple-signing"},
		"empty digest": {`{"critical":{"type":"cosign container image signature","image":{}}}`, "another image"},
	} {
		_, err := CheckSimpleSigningPayload([]byte(tc.payload), d)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
}

func TestReferrersAreFilteredByTheirOwnManifestsArtifactType(t *testing.T) {
	registryModes(t, func(t *testing.T, ts *registrytest.TestServer) {
		d := signedModel(t, ts, "acme/model", "weights")
		empty := registrytest.Blob{MediaType: registrytest.MediaTypeEmptyJSON, Data: []byte("{}")}
		subject := &registrytest.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}
		sbom := ts.PushReferrer(t, "acme/model", registrytest.Manifest{ArtifactType: "application/spdx+json", Config: empty,
			Layers: []registrytest.Blob{{MediaType: "application/spdx+json", Data: []byte(`{"spdxVersion":"SPDX-2.3"}`)}}, Subject: subject})
		oms := ts.PushReferrer(t, "acme/model", registrytest.Manifest{ArtifactType: MediaTypeSigstoreBundle, Config: empty,
			Layers: []registrytest.Blob{{MediaType: MediaTypeSigstoreBundle, Data: []byte(`{}`)}}, Subject: subject})
		c := testClient(t)
		art := openRef(t, c, ts.Ref("acme/model", "v1"))
		all, err := c.Referrers(context.Background(), art.Reference, art.Digest, "")
		if err != nil || len(all) != 2 {
			t.Fatalf("all referrers: %d, %v", len(all), err)
		}
		only, err := c.Referrers(context.Background(), art.Reference, art.Digest, "application/spdx+json")
		if err != nil || len(only) != 1 || only[0].Digest.String() != sbom.Digest {
			t.Fatalf("filtered: %+v, %v (want %s, not %s)", only, err, sbom.Digest, oms.Digest)
		}
		b, err := c.ReadBlob(context.Background(), art.Reference, only[0].Manifest.Layers[0])
		if err != nil || !strings.Contains(string(b), "SPDX-2.3") {
			t.Fatalf("blob %q, %v", b, err)
		}
	})
}
