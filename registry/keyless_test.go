package registry

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

const (
	keylessIdentity = "release@acme.example"
	keylessIssuer   = "https://issuer.acme.example"
)

// pushKeylessLegacy stores a cosign v2 keyless .sig: the payload signed by a VirtualSigstore
// leaf certificate, with the certificate and the Rekor entry's signed timestamp as cosign's
// annotations.
func pushKeylessLegacy(t *testing.T, ts *registrytest.TestServer, vs *ca.VirtualSigstore, repo, digest string, payload []byte) {
	t.Helper()
	ent, err := vs.Sign(keylessIdentity, keylessIssuer, payload)
	if err != nil {
		t.Fatal(err)
	}
	vc, _ := ent.VerificationContent()
	sc, _ := ent.SignatureContent()
	tl, _ := ent.TlogEntries()
	tle := tl[0].TransparencyLogEntry()
	// The entry keeps its signed entry timestamp to itself; Rekor's signature over the same
	// payload is what cosign stores, so sign it again.
	rp := tlog.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(tle.GetCanonicalizedBody()),
		IntegratedTime: tle.GetIntegratedTime(),
		LogIndex:       tle.GetLogIndex(),
		LogID:          hex.EncodeToString(tle.GetLogId().GetKeyId()),
	}
	setSig, err := vs.RekorSignPayload(rp)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(map[string]any{"SignedEntryTimestamp": setSig, "Payload": rp})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: vc.Certificate().Raw})
	h, _ := v1.NewHash(digest)
	ts.PushManifest(t, repo, LegacySignatureTag(h), registrytest.Manifest{
		Config: registrytest.Blob{MediaType: registrytest.MediaTypeOCIConfig, Data: []byte(`{}`)},
		Layers: []registrytest.Blob{{MediaType: MediaTypeSimpleSigning, Data: payload, Annotations: map[string]string{
			annotationSignature:   base64.StdEncoding.EncodeToString(sc.Signature()),
			annotationCertificate: string(certPEM),
			annotationRekorBundle: string(set),
		}}},
	})
}

func TestKeylessLegacySignatureVerifiesTheIdentityAndTheRekorEntry(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	ts := registrytest.NewServer(t)
	d := signedModel(t, ts, "acme/model", "weights")
	pushKeylessLegacy(t, ts, vs, "acme/model", d.Digest, simpleSigningPayload(ts.Host+"/acme/model", d.Digest))

	v, err := verify.NewVerifier(vs, verify.WithTransparencyLog(1), verify.WithIntegratedTimestamps(1))
	if err != nil {
		t.Fatal(err)
	}
	c := testClient(t)
	art := openRef(t, c, ts.Ref("acme/model", "v1"))
	id, _ := verify.NewShortCertificateIdentity(keylessIssuer, "", "", `^release@acme\.example$`)
	vsig, err := c.VerifySignature(context.Background(), art, v, verify.WithCertificateIdentity(id))
	if err != nil {
		t.Fatal(err)
	}
	if got := vsig.Result.Signature.Certificate.SubjectAlternativeName; got != keylessIdentity {
		t.Fatalf("signer = %q", got)
	}
	if len(vsig.Result.VerifiedTimestamps) == 0 {
		t.Fatal("no verified timestamp from the Rekor entry")
	}
	// Another identity is refused, with sigstore-go's reason.
	other, _ := verify.NewShortCertificateIdentity(keylessIssuer, "", "", `^someone@else\.example$`)
	_, err = c.VerifySignature(context.Background(), art, v, verify.WithCertificateIdentity(other))
	if !errors.Is(err, ErrSignature) {
		t.Fatalf("wrong identity: err = %v", err)
	}
}

// keylessBundle is cosign v3's keyless signature of stmt by keylessIdentity.
func keylessBundle(t *testing.T, vs *ca.VirtualSigstore, stmt []byte) []byte {
	t.Helper()
	b, err := registrytest.KeylessBundle(vs, keylessIdentity, keylessIssuer, stmt)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKeylessBundleReferrerVerifiesTheIdentity(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.NewVerifier(vs, verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1))
	if err != nil {
		t.Fatal(err)
	}
	registryModes(t, func(t *testing.T, ts *registrytest.TestServer) {
		d := signedModel(t, ts, "acme/model", "weights")
		pushBundle(t, ts, "acme/model", d, keylessBundle(t, vs, statement(d.Digest, CosignPredicateType)))
		c := testClient(t)
		art := openRef(t, c, ts.Ref("acme/model", "v1"))
		id, _ := verify.NewShortCertificateIdentity(keylessIssuer, "", keylessIdentity, "")
		vsig, err := c.VerifySignature(context.Background(), art, v, verify.WithCertificateIdentity(id))
		if err != nil {
			t.Fatal(err)
		}
		if vsig.Signature.Form != FormBundle || vsig.Result.Signature.Certificate.Issuer != keylessIssuer {
			t.Fatalf("verified %+v", vsig.Result.Signature.Certificate)
		}
		wrongIssuer, _ := verify.NewShortCertificateIdentity("https://other-issuer.example", "", keylessIdentity, "")
		if _, err := c.VerifySignature(context.Background(), art, v, verify.WithCertificateIdentity(wrongIssuer)); !errors.Is(err, ErrSignature) {
			t.Fatalf("wrong issuer: err = %v", err)
		}
		// A key-only policy refuses a certificate signature.
		if _, err := c.VerifySignature(context.Background(), art, v, verify.WithKey()); !errors.Is(err, ErrSignature) {
			t.Fatalf("key policy on a certificate: err = %v", err)
		}
	})
}

// A certificate signer without a transparency log (cosign sign --key K --certificate C
// --certificate-chain CHAIN --tlog-upload=false) verifies against the publisher's CA with the
// current time, as a "certificate" publisher's identity would be checked.
func TestCertificateSignedLegacySignatureWithoutALogVerifiesAgainstTheCA(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	leaf, key, err := vs.GenerateLeafCert(keylessIdentity, keylessIssuer)
	if err != nil {
		t.Fatal(err)
	}
	ts := registrytest.NewServer(t)
	d := signedModel(t, ts, "acme/model", "weights")
	payload := simpleSigningPayload(ts.Host+"/acme/model", d.Digest)
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, key.(*ecdsa.PrivateKey), sum[:])
	if err != nil {
		t.Fatal(err)
	}
	h, _ := v1.NewHash(d.Digest)
	ts.PushManifest(t, "acme/model", LegacySignatureTag(h), registrytest.Manifest{
		Config: registrytest.Blob{MediaType: registrytest.MediaTypeOCIConfig, Data: []byte(`{}`)},
		Layers: []registrytest.Blob{{MediaType: MediaTypeSimpleSigning, Data: payload, Annotations: map[string]string{
			annotationSignature:   base64.StdEncoding.EncodeToString(sig),
			annotationCertificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})),
		}}},
	})
	v, err := verify.NewVerifier(vs, verify.WithCurrentTime())
	if err != nil {
		t.Fatal(err)
	}
	c := testClient(t)
	art := openRef(t, c, ts.Ref("acme/model", "v1"))
	id, _ := verify.NewShortCertificateIdentity(keylessIssuer, "", keylessIdentity, "")
	if _, err := c.VerifySignature(context.Background(), art, v, verify.WithCertificateIdentity(id)); err != nil {
		t.Fatal(err)
	}
	// Another CA does not vouch for it.
	other, _ := ca.NewVirtualSigstore()
	v2, _ := verify.NewVerifier(other, verify.WithCurrentTime())
	if _, err := c.VerifySignature(context.Background(), art, v2, verify.WithCertificateIdentity(id)); !errors.Is(err, ErrSignature) {
		t.Fatalf("another CA: err = %v", err)
	}
}
