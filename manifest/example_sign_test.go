package manifest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/echelongraph/go-modelverify/manifest"
)

// Python model_signing's test keys and signed models, used here as a publisher's would be.
const (
	interopSigned = "../testdata/interop/model-transparency/signed"
	interopKeys   = interopSigned + "/keys/certificate"
)

func mustRead(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	return b
}

// A publisher signs a model directory with an EC key and writes model.sig beside it; a
// consumer verifies the directory against the publisher's public key. Any change to the
// files is refused with the list of what changed.
func Example_signAndVerifyWithKey() {
	ctx := context.Background()
	model, err := os.MkdirTemp("", "model")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(model)
	os.WriteFile(filepath.Join(model, "config.json"), []byte(`{"model_type":"demo"}`), 0o644)
	os.WriteFile(filepath.Join(model, "model.safetensors"), []byte("weights"), 0o644)

	signer, err := manifest.NewKeySigner(mustRead(interopKeys+"/signing-key.pem"), nil)
	if err != nil {
		log.Fatal(err)
	}
	sig, m, err := manifest.SignDir(ctx, model, manifest.Options{}, signer)
	if err != nil {
		log.Fatal(err)
	}
	os.WriteFile(filepath.Join(model, manifest.DefaultSignatureFile), sig, 0o644)
	fmt.Println("signed", len(m.Resources), "files")

	verifier, err := manifest.NewKeyVerifier(mustRead(interopKeys + "/signing-key-pub.pem"))
	if err != nil {
		log.Fatal(err)
	}
	res, err := manifest.VerifyDir(ctx, model, sig, verifier, manifest.CheckOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("verified, signed by key sha256:" + res.Signer.KeyFingerprint)

	os.WriteFile(filepath.Join(model, "model.safetensors"), []byte("weightz"), 0o644)
	_, err = manifest.VerifyDir(ctx, model, sig, verifier, manifest.CheckOptions{})
	var diff *manifest.Diff
	if errors.Is(err, manifest.ErrMismatch) && errors.As(err, &diff) {
		fmt.Println("refused, changed:", diff.Mismatched[0].Name)
	}
	// Output:
	// signed 2 files
	// verified, signed by key sha256:c1e49d63327f85c7e2971aefd30b5a0d1c6b9b5e1a892e7f5fba995adace816d
	// refused, changed: model.safetensors
}

// A model signed keylessly with Sigstore by Python model_signing verifies offline against the
// production trusted root shipped in this package, for the expected identity and issuer. The
// result says who signed, and when the transparency log recorded it.
func ExampleNewSigstoreVerifier() {
	dir := interopSigned + "/v1.1.0-sigstore"
	verifier, err := manifest.NewSigstoreVerifier(manifest.SigstoreVerifierOptions{
		Identity: "stefanb@us.ibm.com",
		Issuer:   "https://sigstore.verify.ibm.com/oauth2",
	})
	if err != nil {
		log.Fatal(err)
	}
	res, err := manifest.VerifyDir(context.Background(), dir, mustRead(dir+"/model.sig"), verifier, manifest.CheckOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Signer.Identity, "via", res.Signer.OIDCIssuer)
	fmt.Println("logged at", res.SignedAt.Format("2006-01-02 15:04:05 MST"))
	fmt.Println("root digest", res.Statement.SubjectDigest)
	// Output:
	// stefanb@us.ibm.com via https://sigstore.verify.ibm.com/oauth2
	// logged at 2025-10-10 02:12:20 UTC
	// root digest sha256:61d4849d9d90076d6215f4d525f13d6574af8e3f67aef3e6f36fc40a14fdd226
}

// A model signed with a certificate chain verifies against the publisher's root CA; the
// result names the signing certificate.
func ExampleNewCertificateVerifier() {
	dir := interopSigned + "/v1.1.0-certificate"
	verifier, err := manifest.NewCertificateVerifier(manifest.CertificateVerifierOptions{Roots: [][]byte{mustRead(interopKeys + "/ca-cert.pem")}})
	if err != nil {
		log.Fatal(err)
	}
	res, err := manifest.VerifyDir(context.Background(), dir, mustRead(dir+"/model.sig"), verifier, manifest.CheckOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("signed by", res.Signer.Subject, "issued by", res.Signer.Issuer)
	for _, r := range res.Manifest.Resources {
		fmt.Println(r.Name, r.Algorithm+":"+r.Hex()[:16])
	}
	// Output:
	// signed by CN=intermediate-ca issued by CN=intermediate-ca
	// signme-1 sha256:f6310066c7320497
	// signme-2 sha256:32dcb1f8e1ae52d5
}

// A policy for a CI signer says more than the identity: which repository's workflow, on which
// ref. This model was signed by a person, so its certificate carries no workflow extensions, and
// the refusal names the first constraint it fails, what was wanted and what was found.
func ExampleFulcioExtensions() {
	dir := interopSigned + "/v1.1.0-sigstore"
	verifier, err := manifest.NewSigstoreVerifier(manifest.SigstoreVerifierOptions{
		IdentityRegexp: `stefanb@us\.ibm\.com`, // matched against the whole identity
		Issuer:         "https://sigstore.verify.ibm.com/oauth2",
		Extensions: manifest.FulcioExtensions{
			SourceRepositoryURI:       "https://github.com/acme/models",
			SourceRepositoryRefRegexp: `refs/tags/v.+`,
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	_, err = manifest.Verify(context.Background(), mustRead(dir+"/model.sig"), verifier)
	fmt.Println(errors.Is(err, manifest.ErrIdentity))
	fmt.Println(err)
	// Output:
	// true
	// verify sigstore signature: signer identity does not match: certificate extension sourceRepositoryURI (OID 1.3.6.1.4.1.57264.1.12): want "https://github.com/acme/models", found none
}
