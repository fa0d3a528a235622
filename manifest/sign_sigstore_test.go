package manifest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	testIdentity = "release@models.example"
	testIssuer   = "https://issuer.models.example"
)

// keylessFixture signs a small model keylessly against a fake Sigstore and returns the model,
// its bundle and the path of the trusted root that describes the fake deployment.
func keylessFixture(t *testing.T, fake *fakeSigstore) (model string, sig []byte, trustRoot string) {
	t.Helper()
	model = t.TempDir()
	writeFiles(t, model, map[string]string{"config.json": `{"model_type":"demo"}`, "model.safetensors": "weights", "tokenizer/vocab.txt": "a\nb\n"})
	s, err := NewSigstoreSigner(SigstoreSignerOptions{IDToken: idToken(testIdentity, testIssuer), FulcioURL: "https://fulcio.test", RekorURL: "https://rekor.test", Transport: fake})
	if err != nil {
		t.Fatal(err)
	}
	sig, _, err = SignDir(context.Background(), model, Options{}, s)
	if err != nil {
		t.Fatal(err)
	}
	trustRoot = filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(trustRoot, fake.trustedRootJSON(t), 0o644); err != nil {
		t.Fatal(err)
	}
	return model, sig, trustRoot
}

func TestKeylessSignatureVerifiesWithIdentityIssuerAndLogTime(t *testing.T) {
	fake := newFakeSigstore(t)
	before := time.Now().Add(-time.Second)
	model, sig, trustRoot := keylessFixture(t, fake)
	if len(fake.requests) != 2 || fake.requests[0] != "POST fulcio.test/api/v2/signingCert" || fake.requests[1] != "POST rekor.test/api/v1/log/entries" {
		t.Fatalf("requests to the services: %v", fake.requests)
	}
	v, err := NewSigstoreVerifier(SigstoreVerifierOptions{Identity: testIdentity, Issuer: testIssuer, TrustRootPath: trustRoot})
	if err != nil {
		t.Fatal(err)
	}
	res, err := VerifyDir(context.Background(), model, sig, v, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Signer.Kind != SignerSigstore || res.Signer.Identity != testIdentity || res.Signer.OIDCIssuer != testIssuer {
		t.Fatalf("signer %+v", res.Signer)
	}
	if res.SignedAt.Before(before.Truncate(time.Second)) || res.SignedAt.After(time.Now()) {
		t.Fatalf("signed at %v, want the log's integrated time, now", res.SignedAt)
	}
	if res.MediaType != BundleMediaType || len(res.Manifest.Resources) != 3 {
		t.Fatalf("media type %q, %d resources", res.MediaType, len(res.Manifest.Resources))
	}
	// sigstore-python reads the bundle: a v0.3 bundle with one certificate and a dsse entry.
	for _, want := range []string{`"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"`, `"certificate":{"rawBytes":`, `"kind":"dsse"`, `"inclusionProof":`, `"payloadType":"application/vnd.in-toto+json"`} {
		if !strings.Contains(string(sig), want) {
			t.Fatalf("the bundle lacks %s:\n%s", want, sig)
		}
	}
}

func TestKeylessSignatureRefusesAnotherIdentityOrIssuer(t *testing.T) {
	_, sig, trustRoot := keylessFixture(t, newFakeSigstore(t))
	for _, o := range []SigstoreVerifierOptions{
		{Identity: "mallory@models.example", Issuer: testIssuer},
		{Identity: testIdentity, Issuer: "https://accounts.google.com"},
		{IdentityRegexp: `^.*@other\.example$`, Issuer: testIssuer},
		{Identity: testIdentity, IssuerRegexp: `^https://token\.actions\.githubusercontent\.com$`},
	} {
		o.TrustRootPath = trustRoot
		v, err := NewSigstoreVerifier(o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(context.Background(), sig, v); !errors.Is(err, ErrIdentity) {
			t.Fatalf("%+v: got %v, want ErrIdentity", o, err)
		}
	}
}

func TestKeylessSignatureRefusesAnotherDeploymentsTrustRoot(t *testing.T) {
	_, sig, _ := keylessFixture(t, newFakeSigstore(t))
	// The production root knows neither the fake Fulcio nor the fake Rekor.
	v, err := NewSigstoreVerifier(SigstoreVerifierOptions{Identity: testIdentity, Issuer: testIssuer})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(context.Background(), sig, v); !errors.Is(err, ErrTransparencyLog) {
		t.Fatalf("got %v, want ErrTransparencyLog", err)
	}
	// A root with the right Rekor but another Fulcio refuses the certificate chain.
	other := newFakeSigstore(t)
	mixed := newFakeSigstore(t)
	_, sig2, _ := keylessFixture(t, mixed)
	mixed.fulcioRoot, mixed.inter = other.fulcioRoot, other.inter
	path := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(path, mixed.trustedRootJSON(t), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err = NewSigstoreVerifier(SigstoreVerifierOptions{Identity: testIdentity, Issuer: testIssuer, TrustRootPath: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(context.Background(), sig2, v); !errors.Is(err, ErrUntrustedChain) {
		t.Fatalf("got %v, want ErrUntrustedChain", err)
	}
}

func TestKeylessSignatureRefusesACertificateExpiredAtSigningTime(t *testing.T) {
	fake := newFakeSigstore(t)
	fake.certStart = -20 * time.Minute // the ten-minute certificate ended ten minutes ago
	_, sig, trustRoot := keylessFixture(t, fake)
	v, err := NewSigstoreVerifier(SigstoreVerifierOptions{Identity: testIdentity, Issuer: testIssuer, TrustRootPath: trustRoot})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Verify(context.Background(), sig, v)
	if !errors.Is(err, ErrCertificateExpired) || !errors.Is(err, ErrUntrustedChain) {
		t.Fatalf("got %v, want ErrCertificateExpired", err)
	}
}

func TestKeylessSignatureRefusesTamperedModels(t *testing.T) {
	fake := newFakeSigstore(t)
	model, sig, trustRoot := keylessFixture(t, fake)
	v, err := NewSigstoreVerifier(SigstoreVerifierOptions{Identity: testIdentity, Issuer: testIssuer, TrustRootPath: trustRoot})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(model, "model.safetensors"), []byte("weightz"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyDir(context.Background(), model, sig, v, CheckOptions{}); !errors.Is(err, ErrMismatch) {
		t.Fatalf("got %v, want ErrMismatch", err)
	}
}

func TestSigstoreSignerChoosesServicesFromASigningConfig(t *testing.T) {
	fake := newFakeSigstore(t)
	tc, err := ParseTrustConfig([]byte(`{
	  "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
	  "trustedRoot": ` + string(fake.trustedRootJSON(t)) + `,
	  "signingConfig": {
	    "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
	    "caUrls": [{"url": "https://fulcio.private.example", "majorApiVersion": 1, "validFor": {"start": "2020-01-01T00:00:00Z"}}],
	    "rekorTlogUrls": [
	      {"url": "https://log2.private.example", "majorApiVersion": 2, "validFor": {"start": "2020-01-01T00:00:00Z"}},
	      {"url": "https://rekor.private.example", "majorApiVersion": 1, "validFor": {"start": "2020-01-01T00:00:00Z"}}
	    ],
	    "rekorTlogConfig": {"selector": "ANY"},
	    "tsaConfig": {"selector": "ANY"}
	  }
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if tc.SigningConfig == nil {
		t.Fatal("the signing config was dropped")
	}
	s, err := NewSigstoreSigner(SigstoreSignerOptions{IDToken: idToken(testIdentity, testIssuer), SigningConfig: tc.SigningConfig, TrustedRoot: tc.TrustedRoot, Transport: fake})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := sampleStatement(t)
	if _, err := Sign(context.Background(), m, s); err != nil {
		t.Fatal(err)
	}
	want := []string{"POST fulcio.private.example/api/v2/signingCert", "POST rekor.private.example/api/v1/log/entries"}
	if strings.Join(fake.requests, ",") != strings.Join(want, ",") {
		t.Fatalf("requests %v, want %v", fake.requests, want)
	}
}

func TestSigstoreSignerNeedsAnIdentityToken(t *testing.T) {
	if _, err := NewSigstoreSigner(SigstoreSignerOptions{}); err == nil {
		t.Fatal("a signer without a token was made")
	}
}

func TestSigstoreSignerReportsAServiceRefusal(t *testing.T) {
	fake := newFakeSigstore(t)
	m, _ := sampleStatement(t)
	// A token Fulcio cannot read gets no certificate, and so no bundle.
	s, err := NewSigstoreSigner(SigstoreSignerOptions{IDToken: "header.e30.sig", FulcioURL: "https://fulcio.test", RekorURL: "https://rekor.test", Transport: fake})
	must(t, err)
	if b, err := Sign(context.Background(), m, s); err == nil || b != nil {
		t.Fatalf("signed with an unusable token: %v", err)
	}
	// A Rekor that is not there fails the signature too: a keyless bundle without a log
	// entry would not verify anywhere.
	s, err = NewSigstoreSigner(SigstoreSignerOptions{IDToken: idToken(testIdentity, testIssuer), FulcioURL: "https://fulcio.test", RekorURL: "https://no-rekor.test/elsewhere", Transport: fake})
	must(t, err)
	if b, err := Sign(context.Background(), m, s); err == nil || b != nil {
		t.Fatalf("signed without a log entry: %v", err)
	}
}
