package manifest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Media types of a Sigstore bundle. model_signing writes BundleMediaType; its key and
// certificate verifiers accept nothing else.
const (
	BundleMediaType    = "application/vnd.dev.sigstore.bundle.v0.3+json"
	maxBundleSize      = 512 << 20 // the payload lists every file of a model, base64 encoded
	maxCertificates    = 10
	maxCertificateSize = 64 << 10
)

// bundle is the part of a Sigstore bundle that key and certificate verification reads, and the
// exact layout Python model_signing v1.1 writes: fields in this order, "tlogEntries": [] and
// "keyid": "" present, compact JSON with no trailing newline.
type bundle struct {
	MediaType            string                `json:"mediaType"`
	VerificationMaterial *verificationMaterial `json:"verificationMaterial,omitempty"`
	DSSEEnvelope         *dsseEnvelope         `json:"dsseEnvelope,omitempty"`
	MessageSignature     json.RawMessage       `json:"messageSignature,omitempty"`
}

type verificationMaterial struct {
	PublicKey            *publicKeyMaterial `json:"publicKey,omitempty"`
	X509CertificateChain *certificateChain  `json:"x509CertificateChain,omitempty"`
	Certificate          *rawCertificate    `json:"certificate,omitempty"`
	TlogEntries          []json.RawMessage  `json:"tlogEntries"`
	// Kept only so that reading and writing a bundle loses nothing; key and certificate
	// verification do not use it.
	TimestampVerificationData json.RawMessage `json:"timestampVerificationData,omitempty"`
}

type publicKeyMaterial struct {
	Hint string `json:"hint,omitempty"`
	// RawBytes and KeyDetails are the v0.3.1 to v1.0.1 layout: RawBytes holds the PEM text of
	// the public key (not DER), base64 encoded.
	RawBytes   string `json:"rawBytes,omitempty"`
	KeyDetails string `json:"keyDetails,omitempty"`
}

type certificateChain struct {
	Certificates []rawCertificate `json:"certificates"`
}

type rawCertificate struct {
	RawBytes string `json:"rawBytes"`
}

type dsseEnvelope struct {
	Payload     string          `json:"payload"`
	PayloadType string          `json:"payloadType"`
	Signatures  []dsseSignature `json:"signatures"`
}

type dsseSignature struct {
	Sig string `json:"sig"`
	// KeyID is "" in Python v1.1 bundles, null in older ones and absent in sigstore ones; all
	// three read as "".
	KeyID string `json:"keyid"`
}

// parseBundle reads a bundle's JSON and checks the parts every kind of verification needs: a
// DSSE envelope with exactly one signature, and verification material.
func parseBundle(data []byte) (*bundle, error) {
	if len(data) > maxBundleSize {
		return nil, fmt.Errorf("%w: %d bytes, over the %d-byte limit", ErrBundle, len(data), maxBundleSize)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: the signature file is empty", ErrBundle)
	}
	var b bundle
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%w: not valid bundle JSON: %v", ErrBundle, err)
	}
	if b.VerificationMaterial == nil {
		return nil, fmt.Errorf("%w: no verificationMaterial", ErrBundle)
	}
	if b.DSSEEnvelope == nil {
		if len(b.MessageSignature) > 0 {
			return nil, fmt.Errorf("%w: a messageSignature bundle signs a blob, not a model manifest; want a dsseEnvelope", ErrBundle)
		}
		return nil, fmt.Errorf("%w: no dsseEnvelope", ErrBundle)
	}
	if n := len(b.DSSEEnvelope.Signatures); n != 1 {
		return nil, fmt.Errorf("%w: the DSSE envelope has %d signatures, want 1", ErrBundle, n)
	}
	return &b, nil
}

// parseBundleV03 parses a bundle for key or certificate verification, which model_signing
// writes only under the v0.3 media type and checks it exactly.
func parseBundleV03(data []byte) (*bundle, error) {
	b, err := parseBundle(data)
	if err != nil {
		return nil, err
	}
	if b.MediaType != BundleMediaType {
		return nil, fmt.Errorf("%w: %q, want %q", ErrMediaType, b.MediaType, BundleMediaType)
	}
	return b, nil
}

// payload returns the envelope's payload bytes: the exact bytes the signature covers.
func (b *bundle) payload() ([]byte, error) {
	p, err := decodeBase64(b.DSSEEnvelope.Payload)
	if err != nil {
		return nil, fmt.Errorf("%w: dsseEnvelope.payload: %v", ErrBundle, err)
	}
	return p, nil
}

// signature returns the envelope's one signature, ASN.1 DER for ECDSA.
func (b *bundle) signature() ([]byte, error) {
	s, err := decodeBase64(b.DSSEEnvelope.Signatures[0].Sig)
	if err != nil {
		return nil, fmt.Errorf("%w: dsseEnvelope.signatures[0].sig: %v", ErrBundle, err)
	}
	if len(s) == 0 {
		return nil, fmt.Errorf("%w: dsseEnvelope.signatures[0].sig is empty", ErrBundle)
	}
	return s, nil
}

// certificates returns the DER certificates of an x509CertificateChain (leaf first) or of a
// single certificate.
func (vm *verificationMaterial) certificates() ([][]byte, error) {
	var raws []rawCertificate
	switch {
	case vm.X509CertificateChain != nil:
		raws = vm.X509CertificateChain.Certificates
	case vm.Certificate != nil:
		raws = []rawCertificate{*vm.Certificate}
	}
	if len(raws) == 0 {
		return nil, fmt.Errorf("%w: the bundle holds no certificate", ErrBundle)
	}
	if len(raws) > maxCertificates {
		return nil, fmt.Errorf("%w: the certificate chain has %d certificates, over the limit of %d", ErrBundle, len(raws), maxCertificates)
	}
	ders := make([][]byte, len(raws))
	for i, r := range raws {
		der, err := decodeBase64(r.RawBytes)
		if err != nil || len(der) == 0 || len(der) > maxCertificateSize {
			return nil, fmt.Errorf("%w: certificate %d is not base64 DER of a sensible size", ErrBundle, i)
		}
		ders[i] = der
	}
	return ders, nil
}

// marshal writes the bundle as Python model_signing v1.1 does.
func (b *bundle) marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// decodeBase64 accepts what protobuf's JSON reader accepts for bytes: standard or URL-safe
// base64, padded or not.
func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.Strict().DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("not base64")
}

// pae is DSSE's pre-authentication encoding, what a DSSE signature covers.
func pae(payloadType string, payload []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(payload) + len(payloadType) + 32)
	fmt.Fprintf(&b, "DSSEv1 %d %s %d ", len(payloadType), payloadType, len(payload))
	b.Write(payload)
	return b.Bytes()
}

// paeCompat is the encoding model_signing v0.2 signed by mistake: "DSSEV1" with a capital V,
// and the payload written as Python's repr() of a bytes object. Only verification uses it.
func paeCompat(payloadType string, payload []byte) []byte {
	return []byte(fmt.Sprintf("DSSEV1 %d %s %d %s", len(payloadType), payloadType, len(payload), pythonBytesRepr(payload)))
}

// pythonBytesRepr reproduces repr(b) for a Python bytes object: b'...' (or b"..." when the
// bytes hold a single quote and no double quote), with \\, \t, \n, \r and the quote escaped,
// other bytes outside printable ASCII as \xNN.
func pythonBytesRepr(p []byte) string {
	quote := byte('\'')
	if bytes.IndexByte(p, '\'') >= 0 && bytes.IndexByte(p, '"') < 0 {
		quote = '"'
	}
	var s strings.Builder
	s.Grow(len(p) + 3)
	s.WriteByte('b')
	s.WriteByte(quote)
	for _, c := range p {
		switch {
		case c == quote || c == '\\':
			s.WriteByte('\\')
			s.WriteByte(c)
		case c == '\t':
			s.WriteString(`\t`)
		case c == '\n':
			s.WriteString(`\n`)
		case c == '\r':
			s.WriteString(`\r`)
		case c < 0x20 || c >= 0x7f:
			s.WriteString(`\x`)
			h := strconv.FormatUint(uint64(c), 16)
			if len(h) == 1 {
				s.WriteByte('0')
			}
			s.WriteString(h)
		default:
			s.WriteByte(c)
		}
	}
	s.WriteByte(quote)
	return s.String()
}
