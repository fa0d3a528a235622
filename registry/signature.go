package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"google.golang.org/protobuf/encoding/protojson"
)

// cosign's storage conventions (see ../shared/reference/oci-models.md).
const (
	// MediaTypeSigstoreBundle is a cosign v3 signature referrer's artifactType and layer type.
	MediaTypeSigstoreBundle = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// MediaTypeSimpleSigning is a legacy .sig layer holding a simple-signing payload.
	MediaTypeSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	// CosignPredicateType is the predicate of the in-toto statement cosign signs.
	CosignPredicateType = "https://sigstore.dev/cosign/sign/v1"
	// SimpleSigningType is critical.type of a legacy payload.
	SimpleSigningType = "cosign container image signature"

	annotationSignature   = "dev.cosignproject.cosign/signature"
	annotationCertificate = "dev.sigstore.cosign/certificate"
	annotationChain       = "dev.sigstore.cosign/chain"
	annotationRekorBundle = "dev.sigstore.cosign/bundle"

	inTotoPayloadType = "application/vnd.in-toto+json"
	// maxReferrers bounds how many referrers of one digest are read.
	maxReferrers = 256
	// maxSignatureLayers bounds the layers of one .sig manifest.
	maxSignatureLayers = 64
)

// SignatureForm says how cosign stored a signature.
type SignatureForm string

const (
	// FormBundle is a Sigstore bundle (a DSSE envelope over an in-toto statement) stored as an
	// OCI 1.1 referrer of the signed manifest, found through the referrers API or its tag schema
	// (cosign v3's default).
	FormBundle SignatureForm = "bundle"
	// FormSimpleSigning is a layer of the sha256-<hex>.sig tag: a simple-signing payload and its
	// signature in annotations (cosign v2's default).
	FormSimpleSigning SignatureForm = "simple-signing"
)

// Signature is cosign signature material found in a registry for one digest. It is not verified:
// Verify checks it.
type Signature struct {
	// Form says how it was stored.
	Form SignatureForm
	// Subject is the digest it was found for: the one Verify requires it to sign.
	Subject v1.Hash
	// Source says where it was found: "referrer sha256:..." or "tag sha256-<hex>.sig layer 0".
	Source string
	// Bundle is the Sigstore bundle as JSON. For FormBundle it is the stored bundle; for
	// FormSimpleSigning it is a v0.1 bundle assembled from the layer's annotations (a message
	// signature over Payload, the key hint or certificate, the Rekor entry if any), which
	// sigstore-go verifies like any other.
	Bundle []byte
	// Payload is the simple-signing payload (FormSimpleSigning): the bytes that are signed.
	Payload []byte

	entity *bundle.Bundle
}

// SignatureVerifier checks a Sigstore entity's signature and its signer against trust material:
// sigstore-go's *verify.Verifier, made with the publisher's key (root.NewTrustedPublicKeyMaterial)
// or a trusted root (Fulcio, Rekor, timestamp authorities).
type SignatureVerifier interface {
	Verify(entity verify.SignedEntity, pb verify.PolicyBuilder) (*verify.VerificationResult, error)
}

// VerifiedSignature is the evidence of a signature that verified.
type VerifiedSignature struct {
	// Signature is the material that verified.
	Signature *Signature
	// Result is sigstore-go's result: the signer's certificate summary (SAN, issuer, Fulcio
	// extensions) or key, the verified timestamps, and for FormBundle the signed statement.
	Result *verify.VerificationResult
	// DockerReference is what a simple-signing payload says it signed ("ghcr.io/acme/model");
	// empty for bundles.
	DockerReference string
	// Certificates are the certificates the signature carried, leaf first (a certificate or
	// keyless signer's); none for a key signature.
	Certificates []*x509.Certificate
}

// Signatures finds cosign signatures of digest in ref's repository: bundle referrers first
// (through the referrers API, or its tag schema where the registry has none), then the legacy
// sha256-<hex>.sig tag, as cosign 3 looks for them. Nothing is verified here. No signature is
// not an error: the result is empty.
func (c *Client) Signatures(ctx context.Context, ref Reference, digest v1.Hash) ([]*Signature, error) {
	bundles, _, err := c.bundleReferrers(ctx, ref, digest)
	if err != nil {
		return nil, err
	}
	legacy, err := c.legacySignatures(ctx, ref, digest)
	if err != nil {
		return nil, err
	}
	return append(bundles, legacy...), nil
}

// bundleReferrers reads the Sigstore bundle referrers of digest: cosign signatures, and
// model_signing bundles (IsOMSBundle), which are not cosign signatures.
func (c *Client) bundleReferrers(ctx context.Context, ref Reference, digest v1.Hash) ([]*Signature, []*OMSBundle, error) {
	refs, err := c.Referrers(ctx, ref, digest, MediaTypeSigstoreBundle)
	if err != nil {
		return nil, nil, err
	}
	var out []*Signature
	var oms []*OMSBundle
	for _, r := range refs {
		for _, l := range r.Manifest.Layers {
			if !strings.HasPrefix(string(l.MediaType), "application/vnd.dev.sigstore.bundle") {
				continue
			}
			data, err := c.smallBlob(ctx, ref, l, "signature bundle")
			if err != nil {
				return nil, nil, err
			}
			if IsOMSBundle(data) {
				oms = append(oms, &OMSBundle{Subject: digest, Source: "referrer " + r.Digest.String(), Bundle: data})
				continue
			}
			out = append(out, &Signature{Form: FormBundle, Subject: digest, Source: "referrer " + r.Digest.String(), Bundle: data})
		}
	}
	return out, oms, nil
}

// Referrer is an artefact that names a manifest as its subject, as its own manifest says.
type Referrer struct {
	// Digest is the referrer manifest's digest.
	Digest v1.Hash
	// ArtifactType is the referrer manifest's artifactType, else its config media type.
	ArtifactType string
	// Manifest is the referrer's manifest, read by digest.
	Manifest *v1.Manifest
}

// Referrers lists the artefacts in ref's repository whose subject is digest, through the OCI
// 1.1 referrers API or, where the registry has none, the sha256-<hex> tag schema. Each is read
// from its own manifest, whose subject must be digest and whose artifactType must be
// artifactType (unless that is ""): an index entry's word is not taken for either (see
// registrytest on go-containerregistry's registry). At most 256 referrers are read.
func (c *Client) Referrers(ctx context.Context, ref Reference, digest v1.Hash, artifactType string) ([]Referrer, error) {
	dn, err := ref.digestName(false, digest.String())
	if err != nil {
		return nil, err
	}
	opts, err := c.remoteOptions(ctx, ref)
	if err != nil {
		return nil, err
	}
	idx, err := remote.Referrers(dn, opts...)
	if err != nil {
		return nil, fmt.Errorf("registry: referrers of %s in %s: %w", digest, ref.Name(), registryError(http.MethodGet, err))
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("registry: referrers of %s in %s: %w", digest, ref.Name(), err)
	}
	if len(im.Manifests) > maxReferrers {
		return nil, fmt.Errorf("registry: %s in %s has %d referrers, more than the %d read", digest, ref.Name(), len(im.Manifests), maxReferrers)
	}
	var out []Referrer
	for _, d := range im.Manifests {
		raw, _, err := c.manifest(ctx, ref, d.Digest)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				continue // a stale tag-schema entry
			}
			return nil, err
		}
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil {
			continue // an index or something else that is not a referrer manifest
		}
		at := m.ArtifactType
		if at == "" {
			at = string(m.Config.MediaType)
		}
		if (artifactType != "" && at != artifactType) || m.Subject == nil || m.Subject.Digest != digest {
			continue
		}
		out = append(out, Referrer{Digest: d.Digest, ArtifactType: at, Manifest: m})
	}
	return out, nil
}

// ReadBlob reads a small blob of ref's repository (at most 4 MiB: a signature, a config, an
// OMS bundle), checked against desc's digest and size.
func (c *Client) ReadBlob(ctx context.Context, ref Reference, desc v1.Descriptor) ([]byte, error) {
	return c.smallBlob(ctx, ref, desc, "blob")
}

// LegacySignatureTag is the tag cosign's legacy form stores digest's signatures under.
func LegacySignatureTag(digest v1.Hash) string { return digest.Algorithm + "-" + digest.Hex + ".sig" }

func (c *Client) legacySignatures(ctx context.Context, ref Reference, digest v1.Hash) ([]*Signature, error) {
	repo, err := ref.repository(false)
	if err != nil {
		return nil, err
	}
	tag := LegacySignatureTag(digest)
	opts, err := c.remoteOptions(ctx, ref)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(repo.Tag(tag), opts...)
	if err != nil {
		err = registryError(http.MethodGet, err)
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("registry: signature tag %s in %s: %w", tag, ref.Name(), err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return nil, fmt.Errorf("registry: signature tag %s in %s: %w", tag, ref.Name(), err)
	}
	if len(m.Layers) > maxSignatureLayers {
		return nil, fmt.Errorf("registry: signature tag %s in %s has %d layers, more than the %d read", tag, ref.Name(), len(m.Layers), maxSignatureLayers)
	}
	var out []*Signature
	for i, l := range m.Layers {
		if l.MediaType != MediaTypeSimpleSigning {
			continue
		}
		payload, err := c.smallBlob(ctx, ref, l, "signature payload")
		if err != nil {
			return nil, err
		}
		s := &Signature{Form: FormSimpleSigning, Subject: digest, Source: fmt.Sprintf("tag %s layer %d", tag, i), Payload: payload}
		b, err := legacyBundle(payload, l.Annotations)
		if err != nil {
			// Unreadable material is kept, so that Verify names it rather than it vanishing.
			s.Source += " (unreadable: " + err.Error() + ")"
			out = append(out, s)
			continue
		}
		s.entity = b
		if s.Bundle, err = b.MarshalJSON(); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// legacyBundle assembles a Sigstore bundle v0.1 from a .sig layer: a message signature over the
// payload, the certificate (and chain) or a bare key hint, and the Rekor entry with its signed
// entry timestamp (v0.1 is the version that accepts an inclusion promise without a proof).
func legacyBundle(payload []byte, ann map[string]string) (*bundle.Bundle, error) {
	sig, err := base64.StdEncoding.DecodeString(ann[annotationSignature])
	if err != nil || len(sig) == 0 {
		return nil, fmt.Errorf("annotation %s: no base64 signature", annotationSignature)
	}
	sum := sha256.Sum256(payload)
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle+json;version=0.1",
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]},
			Signature:     sig,
		}},
		VerificationMaterial: &protobundle.VerificationMaterial{},
	}
	if certPEM := ann[annotationCertificate]; certPEM != "" {
		var certs []*protocommon.X509Certificate
		rest := []byte(certPEM + "\n" + ann[annotationChain])
		for {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			if blk.Type == "CERTIFICATE" {
				certs = append(certs, &protocommon.X509Certificate{RawBytes: blk.Bytes})
			}
		}
		if len(certs) == 0 {
			return nil, fmt.Errorf("annotation %s: no PEM certificate", annotationCertificate)
		}
		pb.VerificationMaterial.Content = &protobundle.VerificationMaterial_X509CertificateChain{
			X509CertificateChain: &protocommon.X509CertificateChain{Certificates: certs}}
	} else {
		pb.VerificationMaterial.Content = &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{}}
	}
	if set := ann[annotationRekorBundle]; set != "" {
		entry, err := rekorEntry([]byte(set))
		if err != nil {
			return nil, fmt.Errorf("annotation %s: %w", annotationRekorBundle, err)
		}
		pb.VerificationMaterial.TlogEntries = []*protorekor.TransparencyLogEntry{entry}
	}
	return bundle.NewBundle(pb)
}

// rekorEntry converts cosign's Rekor bundle annotation (a signed entry timestamp and the entry)
// to a transparency log entry with an inclusion promise.
func rekorEntry(data []byte) (*protorekor.TransparencyLogEntry, error) {
	var rb struct {
		SignedEntryTimestamp []byte `json:"SignedEntryTimestamp"`
		Payload              struct {
			Body           string `json:"body"`
			IntegratedTime int64  `json:"integratedTime"`
			LogIndex       int64  `json:"logIndex"`
			LogID          string `json:"logID"`
		} `json:"Payload"`
	}
	if err := json.Unmarshal(data, &rb); err != nil {
		return nil, err
	}
	body, err := base64.StdEncoding.DecodeString(rb.Payload.Body)
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	logID, err := hex.DecodeString(rb.Payload.LogID)
	if err != nil {
		return nil, fmt.Errorf("logID: %w", err)
	}
	var kind struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(body, &kind); err != nil || kind.Kind == "" || kind.APIVersion == "" {
		return nil, errors.New("body: no kind and apiVersion")
	}
	return &protorekor.TransparencyLogEntry{
		LogIndex:          rb.Payload.LogIndex,
		LogId:             &protocommon.LogId{KeyId: logID},
		KindVersion:       &protorekor.KindVersion{Kind: kind.Kind, Version: kind.APIVersion},
		IntegratedTime:    rb.Payload.IntegratedTime,
		InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: rb.SignedEntryTimestamp},
		CanonicalizedBody: body,
	}, nil
}

// Verify checks the signature with v and identity (verify.WithKey() for a key, or
// verify.WithCertificateIdentity(...) for a certificate signer), then checks that what was
// signed is a cosign signature of s.Subject and of nothing else:
//   - a bundle must be a DSSE envelope over an in-toto statement whose predicate type is
//     cosign's (https://sigstore.dev/cosign/sign/v1; an SBOM or provenance attestation of the
//     same image is not a signature) and whose subject is the digest;
//   - a simple-signing payload must be of type "cosign container image signature" and name the
//     digest as its docker-manifest-digest (a .sig copied from another image is refused).
//
// Every refusal is a *SignatureError matching ErrSignature.
func (s *Signature) Verify(v SignatureVerifier, identity verify.PolicyOption) (*VerifiedSignature, error) {
	refuse := func(format string, args ...any) error {
		return &SignatureError{Digest: s.Subject.String(), Source: s.Source, Reason: fmt.Sprintf(format, args...), Err: ErrSignature}
	}
	if v == nil || identity == nil {
		return nil, errors.New("registry: Signature.Verify needs a verifier and an identity policy")
	}
	want, err := hex.DecodeString(s.Subject.Hex)
	if err != nil || s.Subject.Algorithm != "sha256" {
		return nil, refuse("subject %s is not a sha256 digest", s.Subject)
	}
	switch s.Form {
	case FormBundle:
		b, err := parseBundle(s.Bundle)
		if err != nil {
			return nil, refuse("not a Sigstore bundle: %v", err)
		}
		env := b.GetDsseEnvelope()
		if env == nil {
			return nil, refuse("the bundle holds a message signature, not cosign's DSSE statement over the manifest digest")
		}
		if env.PayloadType != inTotoPayloadType {
			return nil, refuse("DSSE payload type %q, want %q", env.PayloadType, inTotoPayloadType)
		}
		res, err := v.Verify(b, verify.NewPolicy(verify.WithArtifactDigest("sha256", want), identity))
		if err != nil {
			return nil, &SignatureError{Digest: s.Subject.String(), Source: s.Source, Reason: err.Error(), Err: ErrSignature}
		}
		// Read the statement from the verified envelope bytes: its type and subject decide.
		if err := checkCosignStatement(env.Payload, s.Subject); err != nil {
			return nil, refuse("%v", err)
		}
		certs, _ := bundleCertificates(b) // parsed once already by the verifier
		return &VerifiedSignature{Signature: s, Result: res, Certificates: certs}, nil
	case FormSimpleSigning:
		if s.entity == nil {
			return nil, refuse("the .sig layer's annotations do not make a signature")
		}
		res, err := v.Verify(s.entity, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(s.Payload)), identity))
		if err != nil {
			return nil, &SignatureError{Digest: s.Subject.String(), Source: s.Source, Reason: err.Error(), Err: ErrSignature}
		}
		ref, err := CheckSimpleSigningPayload(s.Payload, s.Subject)
		if err != nil {
			return nil, refuse("%v", err)
		}
		certs, _ := bundleCertificates(s.entity)
		return &VerifiedSignature{Signature: s, Result: res, DockerReference: ref, Certificates: certs}, nil
	}
	return nil, refuse("unknown signature form %q", s.Form)
}

// parseBundle reads a Sigstore bundle as cosign writes it. A v0.3 bundle may carry an
// x509CertificateChain (leaf, then intermediates): cosign sign --certificate C
// --certificate-chain CHAIN writes one, which sigstore-go accepts only when told to.
func parseBundle(data []byte) (*bundle.Bundle, error) {
	pb := new(protobundle.Bundle)
	if err := protojson.Unmarshal(data, pb); err != nil {
		return nil, err
	}
	var opts []bundle.Option
	if pb.GetMediaType() == MediaTypeSigstoreBundle && pb.GetVerificationMaterial().GetX509CertificateChain() != nil {
		opts = append(opts, bundle.AllowCertificateChain())
	}
	return bundle.NewBundle(pb, opts...)
}

// maxPayload bounds a signed payload or statement read into memory.
const maxPayload = 1 << 20

// CheckSimpleSigningPayload checks that a simple-signing payload is a cosign image signature of
// digest, and returns the docker-reference it names. It does not check the signature: call it
// only on bytes whose signature verified.
func CheckSimpleSigningPayload(payload []byte, digest v1.Hash) (dockerReference string, err error) {
	if len(payload) > maxPayload {
		return "", fmt.Errorf("payload of %d bytes, more than %d", len(payload), maxPayload)
	}
	var p struct {
		Critical *struct {
			Identity struct {
				DockerReference string `json:"docker-reference"`
			} `json:"identity"`
			Image struct {
				DockerManifestDigest string `json:"docker-manifest-digest"`
			} `json:"image"`
			Type string `json:"type"`
		} `json:"critical"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return "", fmt.Errorf("the signed payload is not simple-signing JSON: %v", err)
	}
	if p.Critical == nil {
		return "", errors.New("the signed payload has no critical section")
	}
	if p.Critical.Type != SimpleSigningType {
		return "", fmt.Errorf("the signed payload's type is %q, want %q", p.Critical.Type, SimpleSigningType)
	}
	if got := p.Critical.Image.DockerManifestDigest; got != digest.String() {
		return "", fmt.Errorf("the signed payload names the manifest digest %q, not %s: the signature was made for another image and copied here", got, digest)
	}
	return p.Critical.Identity.DockerReference, nil
}

// checkCosignStatement checks that a verified in-toto statement is cosign's signature of digest.
func checkCosignStatement(payload []byte, digest v1.Hash) error {
	if len(payload) > maxPayload {
		return fmt.Errorf("statement of %d bytes, more than %d", len(payload), maxPayload)
	}
	var st struct {
		Type          string `json:"_type"`
		PredicateType string `json:"predicateType"`
		Subject       []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	if err := json.Unmarshal(payload, &st); err != nil {
		return fmt.Errorf("the signed statement is not JSON: %v", err)
	}
	if st.Type != "https://in-toto.io/Statement/v1" && st.Type != "https://in-toto.io/Statement/v0.1" {
		return fmt.Errorf("the signed statement's _type is %q, not an in-toto statement", st.Type)
	}
	if st.PredicateType != CosignPredicateType {
		return fmt.Errorf("the signed statement's predicate type is %q, not cosign's signature %q: an attestation is not a signature", st.PredicateType, CosignPredicateType)
	}
	if len(st.Subject) != 1 || st.Subject[0].Digest[digest.Algorithm] != digest.Hex {
		var got []string
		for _, s := range st.Subject {
			got = append(got, fmt.Sprint(s.Digest))
		}
		return fmt.Errorf("the signed statement's subjects are %v, want exactly %s: the signature was made for another image", got, digest)
	}
	return nil
}

// VerifySignature finds the signatures of art.Digest and returns the first that verifies with v
// and identity. With none found it fails with a *SignatureError matching ErrUnsigned; with none
// verifying, with one that lists every refusal (matching ErrSignature).
func (c *Client) VerifySignature(ctx context.Context, art *Artifact, v SignatureVerifier, identity verify.PolicyOption) (*VerifiedSignature, error) {
	sigs, err := c.Signatures(ctx, art.Reference, art.Digest)
	if err != nil {
		return nil, err
	}
	if len(sigs) == 0 {
		return nil, &SignatureError{Digest: art.Digest.String(), Reason: fmt.Sprintf("no cosign signature in %s: neither a bundle referrer nor the %s tag; sign it with cosign sign", art.Reference.Name(), LegacySignatureTag(art.Digest)), Err: ErrUnsigned}
	}
	var reasons []string
	for _, s := range sigs {
		vs, err := s.Verify(v, identity)
		if err == nil {
			return vs, nil
		}
		reasons = append(reasons, err.Error())
	}
	return nil, &SignatureError{Digest: art.Digest.String(), Reason: fmt.Sprintf("%d signature(s) found, none verifies: %s", len(sigs), strings.Join(reasons, "; ")), Err: ErrSignature}
}
