package registrytest

import (
	"encoding/base64"
	"fmt"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"google.golang.org/protobuf/proto"
)

// KeylessBundle is a keyless Sigstore bundle v0.3 of an in-toto statement, as cosign v3 stores
// it beside an image, made by sigstore-go's VirtualSigstore for identity (the certificate's SAN)
// and issuer: a Fulcio leaf certificate, the Rekor entry with its inclusion proof, and a
// timestamp authority's timestamp. Verify it with verify.NewVerifier(vs, ...) and the
// certificate identity; push it with PushReferrer as a referrer of the signed manifest.
func KeylessBundle(vs *ca.VirtualSigstore, identity, issuer string, statement []byte) ([]byte, error) {
	// A signing time a little ahead, as VirtualSigstore's own examples do, so that the leaf's
	// validity window covers it on a machine whose clock is behind.
	ent, err := vs.AttestAtTime(identity, issuer, statement, time.Now().Add(5*time.Minute), true)
	if err != nil {
		return nil, err
	}
	vc, err := ent.VerificationContent()
	if err != nil {
		return nil, err
	}
	sc, err := ent.SignatureContent()
	if err != nil {
		return nil, err
	}
	env := sc.EnvelopeContent().RawEnvelope()
	if len(env.Signatures) != 1 {
		return nil, fmt.Errorf("registrytest: the envelope holds %d signatures, want 1", len(env.Signatures))
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, err
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if err != nil {
		return nil, err
	}
	tl, err := ent.TlogEntries()
	if err != nil || len(tl) == 0 {
		return nil, fmt.Errorf("registrytest: no transparency log entry: %v", err)
	}
	tle := proto.Clone(tl[0].TransparencyLogEntry()).(*protorekor.TransparencyLogEntry)
	// VirtualSigstore leaves the kind unset; loading a bundle needs it.
	tle.KindVersion = &protorekor.KindVersion{Kind: "dsse", Version: "0.0.1"}
	tss, err := ent.Timestamps()
	if err != nil {
		return nil, err
	}
	var rfc []*protocommon.RFC3161SignedTimestamp
	for _, ts := range tss {
		rfc = append(rfc, &protocommon.RFC3161SignedTimestamp{SignedTimestamp: ts})
	}
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:                   &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: vc.Certificate().Raw}},
			TlogEntries:               []*protorekor.TransparencyLogEntry{tle},
			TimestampVerificationData: &protobundle.TimestampVerificationData{Rfc3161Timestamps: rfc},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: payload, PayloadType: env.PayloadType,
			Signatures: []*protodsse.Signature{{Sig: sig, Keyid: env.Signatures[0].KeyID}},
		}},
	}
	return (&bundle.Bundle{Bundle: pb}).MarshalJSON()
}
