package manifest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// fakeSigstore is Fulcio and Rekor behind an http.RoundTripper, backed by sigstore-go's
// VirtualSigstore: the signer under test talks HTTP to it exactly as to sigstore.dev, and its
// certificates and log entries verify against the trusted root it describes.
type fakeSigstore struct {
	vs                *ca.VirtualSigstore
	fulcioRoot, inter *x509.Certificate
	interKey          *ecdsa.PrivateKey
	certStart         time.Duration // leaf NotBefore relative to the request; it lives ten minutes
	requests          []string
	// uriSAN and extensions, when set, make the fake issue what Fulcio issues for a CI
	// workflow: the workflow's URI as the SAN instead of the token's e-mail, and these
	// extensions besides the OIDC issuer.
	uriSAN     string
	extensions []pkix.Extension
}

// fulcioExtension encodes a Fulcio extension as Fulcio does: the v2 ones (OID .1.8 and up) as a
// DER UTF8String, the deprecated GitHub ones (.1.2 to .1.6) as raw bytes.
func fulcioExtension(oid asn1.ObjectIdentifier, value string) pkix.Extension {
	if len(oid) == 9 && oid[8] < 8 {
		return pkix.Extension{Id: oid, Value: []byte(value)}
	}
	der, err := asn1.MarshalWithParams(value, "utf8")
	if err != nil {
		panic(err)
	}
	return pkix.Extension{Id: oid, Value: der}
}

// workflowLeaf issues a certificate as Fulcio does for a GitHub Actions token.
func (f *fakeSigstore) workflowLeaf(issuer, email string, notBefore time.Time, pub crypto.PublicKey) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		NotBefore:    notBefore, NotAfter: notBefore.Add(10 * time.Minute),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: append([]pkix.Extension{fulcioExtension(certificate.OIDIssuerV2, issuer)}, f.extensions...),
	}
	if f.uriSAN != "" {
		u, err := url.Parse(f.uriSAN)
		if err != nil {
			return nil, err
		}
		tmpl.URIs = []*url.URL{u}
	} else {
		tmpl.EmailAddresses = []string{email}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.inter, pub, f.interKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func newFakeSigstore(t testing.TB) *fakeSigstore {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	rootCert, rootKey, err := ca.GenerateRootCa()
	if err != nil {
		t.Fatal(err)
	}
	inter, interKey, err := ca.GenerateFulcioIntermediate(rootCert, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeSigstore{vs: vs, fulcioRoot: rootCert, inter: inter, interKey: interKey, certStart: -time.Minute}
}

// trustedRootJSON is the trusted_root.json that describes this deployment.
func (f *fakeSigstore) trustedRootJSON(t testing.TB) []byte {
	t.Helper()
	fulcio := &root.FulcioCertificateAuthority{
		Root: f.fulcioRoot, Intermediates: []*x509.Certificate{f.inter},
		ValidityPeriodStart: time.Now().Add(-time.Hour), ValidityPeriodEnd: time.Now().Add(time.Hour),
		URI: "https://fulcio.test",
	}
	logs := map[string]*root.TransparencyLog{}
	for k, l := range f.vs.RekorLogs() {
		c := *l
		// VirtualSigstore keeps the log ID as hex text; the trusted root holds the raw bytes.
		id, err := hex.DecodeString(string(l.ID))
		if err != nil {
			t.Fatal(err)
		}
		c.ID = id
		logs[k] = &c
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, []root.CertificateAuthority{fulcio}, nil, nil, logs)
	if err != nil {
		t.Fatal(err)
	}
	js, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// idToken is an unsigned JWT: Fulcio would check it, the signer only reads its subject.
func idToken(email, issuer string) string {
	enc := base64.RawURLEncoding
	claims, _ := json.Marshal(map[string]any{"iss": issuer, "sub": email, "email": email, "email_verified": true, "aud": "sigstore"})
	return enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString(claims) + ".c2ln"
}

func (f *fakeSigstore) RoundTrip(req *http.Request) (*http.Response, error) {
	f.requests = append(f.requests, req.Method+" "+req.URL.Host+req.URL.Path)
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	switch {
	case req.Method == http.MethodPost && req.URL.Path == "/api/v2/signingCert":
		return f.fulcio(req, body)
	case req.Method == http.MethodPost && req.URL.Path == "/api/v1/log/entries":
		return f.rekor(body)
	}
	return respond(http.StatusNotFound, nil, "not found"), nil
}

func respond(status int, header http.Header, body string) *http.Response {
	if header == nil {
		header = http.Header{}
	}
	header.Set("Content-Type", "application/json")
	return &http.Response{StatusCode: status, Header: header, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}
}

// pubOnly lets ca.GenerateLeafCert certify a key whose private half stays with the signer.
type pubOnly struct{ pub crypto.PublicKey }

func (p pubOnly) Public() crypto.PublicKey { return p.pub }
func (p pubOnly) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("public key only")
}

func (f *fakeSigstore) fulcio(req *http.Request, body []byte) (*http.Response, error) {
	var r struct {
		PublicKeyRequest struct {
			PublicKey         struct{ Content string } `json:"publicKey"`
			ProofOfPossession string                   `json:"proofOfPossession"`
		} `json:"publicKeyRequest"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return respond(http.StatusBadRequest, nil, err.Error()), nil
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey([]byte(r.PublicKeyRequest.PublicKey.Content))
	if err != nil {
		return respond(http.StatusBadRequest, nil, err.Error()), nil
	}
	token := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
	parts := strings.Split(token, ".")
	var claims struct{ Iss, Email string }
	if len(parts) != 3 {
		return respond(http.StatusUnauthorized, nil, "no token"), nil
	}
	if raw, err := base64.RawURLEncoding.DecodeString(parts[1]); err != nil || json.Unmarshal(raw, &claims) != nil {
		return respond(http.StatusUnauthorized, nil, "bad token"), nil
	}
	// As Fulcio does, insist that the caller holds the key: it signs the token's subject.
	pop, err := base64.StdEncoding.DecodeString(r.PublicKeyRequest.ProofOfPossession)
	ecPub, ok := pub.(*ecdsa.PublicKey)
	subject := sha256.Sum256([]byte(claims.Email))
	if err != nil || !ok || !ecdsa.VerifyASN1(ecPub, subject[:], pop) {
		return respond(http.StatusBadRequest, nil, "proof of possession does not verify"), nil
	}
	now := time.Now()
	var leaf *x509.Certificate
	if f.uriSAN != "" || len(f.extensions) > 0 {
		leaf, err = f.workflowLeaf(claims.Iss, claims.Email, now.Add(f.certStart), pub)
	} else {
		leaf, err = ca.GenerateLeafCert(claims.Email, claims.Iss, now.Add(f.certStart), pubOnly{pub}, f.inter, f.interKey)
	}
	if err != nil {
		return nil, err
	}
	var chain []string
	for _, c := range []*x509.Certificate{leaf, f.inter, f.fulcioRoot} {
		chain = append(chain, string(certPEM(c)))
	}
	out, _ := json.Marshal(map[string]any{"signedCertificateEmbeddedSct": map[string]any{"chain": map[string]any{"certificates": chain}}})
	return respond(http.StatusOK, nil, string(out)), nil
}

func (f *fakeSigstore) rekor(body []byte) (*http.Response, error) {
	var proposed struct {
		Kind string
		Spec struct {
			ProposedContent struct {
				Envelope  string
				Verifiers []string
			} `json:"proposedContent"`
		}
	}
	if err := json.Unmarshal(body, &proposed); err != nil || proposed.Kind != "dsse" || len(proposed.Spec.ProposedContent.Verifiers) != 1 {
		return respond(http.StatusBadRequest, nil, "want one dsse entry"), nil
	}
	var env dsse.Envelope
	if err := json.Unmarshal([]byte(proposed.Spec.ProposedContent.Envelope), &env); err != nil || len(env.Signatures) != 1 {
		return respond(http.StatusBadRequest, nil, "bad envelope"), nil
	}
	certPEMBytes, err := base64.StdEncoding.DecodeString(proposed.Spec.ProposedContent.Verifiers[0])
	if err != nil {
		return respond(http.StatusBadRequest, nil, "bad verifier"), nil
	}
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM(certPEMBytes)
	if err != nil || len(certs) == 0 {
		return respond(http.StatusBadRequest, nil, "bad verifier"), nil
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if err != nil {
		return respond(http.StatusBadRequest, nil, "bad signature"), nil
	}
	// As Rekor does, log only an envelope whose signature verifies with the certificate's key.
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	certKey, ok := certs[0].PublicKey.(*ecdsa.PublicKey)
	if err != nil || !ok || !verifyECDSA(certKey, crypto.SHA256, pae(env.PayloadType, payload), sig) {
		return respond(http.StatusBadRequest, nil, "envelope signature does not verify"), nil
	}
	entry, err := f.vs.GenerateTlogEntry(certs[0], &env, sig, time.Now().Unix(), true)
	if err != nil {
		return nil, err
	}
	tle := entry.TransparencyLogEntry()
	proof := tle.GetInclusionProof()
	hashes := []string{}
	for _, h := range proof.GetHashes() {
		hashes = append(hashes, hex.EncodeToString(h))
	}
	// The SET is the log's signature over the entry; VirtualSigstore keeps its own copy
	// private, so sign the same canonical payload again with the log's key.
	set, err := f.vs.RekorSignPayload(tlog.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(tle.GetCanonicalizedBody()),
		IntegratedTime: tle.GetIntegratedTime(),
		LogIndex:       tle.GetLogIndex(),
		LogID:          hex.EncodeToString(tle.GetLogId().GetKeyId()),
	})
	if err != nil {
		return nil, err
	}
	const uuid = "24296fb24b8ad77a0000000000000000000000000000000000000000000000000000000000000000"
	out, _ := json.Marshal(map[string]any{uuid: map[string]any{
		"body":           base64.StdEncoding.EncodeToString(tle.GetCanonicalizedBody()),
		"integratedTime": tle.GetIntegratedTime(),
		"logID":          hex.EncodeToString(tle.GetLogId().GetKeyId()),
		"logIndex":       tle.GetLogIndex(),
		"verification": map[string]any{
			"signedEntryTimestamp": base64.StdEncoding.EncodeToString(set),
			"inclusionProof": map[string]any{
				"checkpoint": proof.GetCheckpoint().GetEnvelope(),
				"hashes":     hashes,
				"logIndex":   proof.GetLogIndex(),
				"rootHash":   hex.EncodeToString(proof.GetRootHash()),
				"treeSize":   proof.GetTreeSize(),
			},
		},
	}})
	h := http.Header{}
	h.Set("ETag", uuid)
	h.Set("Location", "/api/v1/log/entries/"+uuid)
	return respond(http.StatusCreated, h, string(bytes.TrimSpace(out))), nil
}
