package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/modelverify"
)

const pythonKeys = signedDir + "/keys/certificate"

func absPath(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestSignThenVerifyKeyRoundTrip(t *testing.T) {
	key := newTestKey(t)
	dir := t.TempDir()
	writeModel(t, dir, tinyModel())

	out, _ := wantExit(t, 0, dir, "sign", "key", ".", "--private-key", key.privPath)
	if out != "Signing succeeded\n" {
		t.Fatalf("sign printed %q", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "model.sig")); err != nil {
		t.Fatal("no model.sig written in the working directory:", err)
	}
	out, _ = wantExit(t, 0, dir, "verify", "key", ".", "--signature", "model.sig", "--public-key", key.pubPath)
	if out != "Verification succeeded\n" {
		t.Fatalf("verify printed %q", out)
	}

	// Another key: refused, exit 1, one line that says why.
	other := newTestKey(t)
	_, stderr := wantExit(t, 1, dir, "verify", "key", ".", "--signature", "model.sig", "--public-key", other.pubPath)
	if !strings.HasPrefix(stderr, "verifier: refused: verification failed:") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("wrong-key refusal: %q", stderr)
	}

	// A changed weight: refused, naming the file.
	w := filepath.Join(dir, "model.safetensors")
	data, _ := os.ReadFile(w)
	data[len(data)-1] ^= 1
	writeFile(t, w, data)
	_, stderr = wantExit(t, 1, dir, "verify", "key", ".", "--signature", "model.sig", "--public-key", key.pubPath)
	if !strings.Contains(stderr, "model.safetensors") || !strings.Contains(stderr, "digest mismatch") {
		t.Errorf("tampered-file refusal does not name the file: %q", stderr)
	}
	// --verbose adds the details on further lines.
	_, stderr, _ = runVerifier(t, dir, "--verbose", "verify", "key", ".", "--signature", "model.sig", "--public-key", key.pubPath)
	if !strings.Contains(stderr, "\n  changed: model.safetensors: signed sha256:") {
		t.Errorf("--verbose does not list the changed file: %q", stderr)
	}
}

func TestVerifyRefusesAddedAndRemovedFilesUnlessIgnored(t *testing.T) {
	key := newTestKey(t)
	dir := t.TempDir()
	writeModel(t, dir, tinyModel())
	wantExit(t, 0, dir, "sign", "key", ".", "--private-key", key.privPath)
	verify := []string{"verify", "key", ".", "--signature", "model.sig", "--public-key", key.pubPath}

	writeFile(t, filepath.Join(dir, "extra.bin"), []byte("not signed"))
	_, stderr := wantExit(t, 1, dir, verify...)
	if !strings.Contains(stderr, "extra.bin") {
		t.Errorf("extra file not named: %q", stderr)
	}
	wantExit(t, 0, dir, append(verify, "--ignore-unsigned-files")...)
	wantExit(t, 0, dir, append(verify, "--ignore-paths", "extra.bin")...)
	wantExit(t, 1, dir, append(verify, "--no-ignore-unsigned-files")...)

	os.Remove(filepath.Join(dir, "extra.bin"))
	os.Remove(filepath.Join(dir, "tokenizer.json"))
	_, stderr = wantExit(t, 1, dir, verify...)
	if !strings.Contains(stderr, "tokenizer.json") {
		t.Errorf("missing file not named: %q", stderr)
	}
}

func TestSignThenVerifyCertificateRoundTrip(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	writeModel(t, dir, tinyModel())
	sig := filepath.Join(t.TempDir(), "cert.sig") // a signature outside the model
	wantExit(t, 0, dir, "sign", "certificate", ".", "--signature", sig,
		"--private-key", ca.leafKeyPath, "--signing-certificate", ca.leafCertPath)
	out, _ := wantExit(t, 0, dir, "verify", "certificate", ".", "--signature", sig, "--certificate-chain", ca.rootPath)
	if out != "Verification succeeded\n" {
		t.Fatalf("verify printed %q", out)
	}
	// A certificate from another CA is refused.
	other := newTestCA(t)
	_, stderr := wantExit(t, 1, dir, "verify", "certificate", ".", "--signature", sig, "--certificate-chain", other.rootPath)
	if !strings.Contains(stderr, "refused") {
		t.Errorf("untrusted chain: %q", stderr)
	}
}

func TestSignWithModelSigningsOwnKeysVerifies(t *testing.T) {
	keys := absPath(t, pythonKeys)
	dir := t.TempDir()
	writeModel(t, dir, tinyModel())
	// The key and certificate chain model_signing's own tests sign with (P-384, an
	// intermediate CA, certtool text around the PEM).
	wantExit(t, 0, dir, "sign", "certificate", ".", "--private_key", keys+"/signing-key.pem",
		"--signing_certificate", keys+"/signing-key-cert.pem", "--certificate_chain", keys+"/int-ca-cert.pem")
	wantExit(t, 0, dir, "verify", "certificate", ".", "--signature", "model.sig", "--certificate_chain", keys+"/ca-cert.pem")
	// A second signature of the same model leaves the first out of it, as model_signing would.
	wantExit(t, 0, dir, "sign", "key", ".", "--private-key", keys+"/signing-key.pem", "--signature", "key.sig",
		"--ignore-paths", "model.sig")
	wantExit(t, 0, dir, "verify", "key", ".", "--signature", "key.sig", "--public_key", keys+"/signing-key-pub.pem",
		"--ignore-paths", "model.sig")
}

func TestSignHashAndShardOptionsRoundTrip(t *testing.T) {
	key := newTestKey(t)
	for _, extra := range [][]string{{"--hash", "blake3"}, {"--hash", "blake2b", "--shard-size", "50"}, {"--shard-size", "7"}} {
		dir := t.TempDir()
		writeModel(t, dir, tinyModel())
		wantExit(t, 0, dir, append([]string{"--json", "sign", "key", ".", "--private-key", key.privPath}, extra...)...)
		out, _ := wantExit(t, 0, dir, "verify", "key", ".", "--signature", "model.sig", "--public-key", key.pubPath, "--json")
		var res struct {
			Verified bool   `json:"verified"`
			Digest   string `json:"digest"`
			Signer   struct {
				Kind string `json:"kind"`
			} `json:"signer"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil || !res.Verified || res.Signer.Kind != "key" || !strings.HasPrefix(res.Digest, "sha256:") {
			t.Errorf("%v: verify --json gave %q (%v)", extra, out, err)
		}
	}
}

func TestSignAndVerifyUsageErrorsExitTwo(t *testing.T) {
	key := newTestKey(t)
	dir := t.TempDir()
	writeModel(t, dir, tinyModel())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sign", "key", "."}, "--private-key is required"},
		{[]string{"sign", "key", ".", "--private-key", key.privPath, "--public-key", key.pubPath}, "unknown flag --public-key"},
		{[]string{"sign", "key"}, "want one MODEL_PATH"},
		{[]string{"sign", "pkcs11-key", "."}, "not supported"},
		{[]string{"sign", "key", ".", "--private-key", "/does/not/exist"}, "--private-key"},
		{[]string{"sign", "key", ".", "--private-key", key.pubPath}, "--private-key"},
		{[]string{"verify", "key", "."}, "--signature is required"},
		{[]string{"verify", "key", ".", "--signature", "model.sig"}, "--public-key is required"},
		{[]string{"verify", "certificate", ".", "--signature", "model.sig"}, "--certificate-chain"},
		{[]string{"verify", "sigstore", ".", "--signature", "model.sig", "--identity", "a@b"}, "--identity-provider (or --identity-provider-regexp) are required"},
		{[]string{"verify", "sigstore", ".", "--signature", "model.sig", "--identity", "a@b", "--identity-provider", "https://x", "--use-staging"}, "--trust-config"},
		{[]string{"verify", "key", ".", "--signature", "absent.sig", "--public-key", key.pubPath}, "absent.sig"},
	} {
		_, stderr, code := runVerifier(t, dir, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line with %q", tc.args, code, stderr, tc.want)
		}
	}
}

// Sigstore signing needs Fulcio and Rekor, which cannot be reached here, and the manifest
// package has no test seam for them that examples/ can reach: these pin the argument handling
// up to the first request.
func TestSignSigstoreArgumentHandling(t *testing.T) {
	dir := t.TempDir()
	writeModel(t, dir, tinyModel())
	_, stderr := wantExit(t, 2, dir, "sign", ".")
	if !strings.Contains(stderr, "OIDC token is required") {
		t.Errorf("sign without a method defaults to sigstore and needs a token: %q", stderr)
	}
	_, stderr = wantExit(t, 2, dir, "sign", "sigstore", ".", "--use-ambient-credentials")
	if !strings.Contains(stderr, "--use-ambient-credentials is not supported") {
		t.Errorf("ambient credentials: %q", stderr)
	}
	// A token from the environment reaches Fulcio at the URL given: connection refused.
	token := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	_, stderr, code := runVerifierEnv(t, dir, testEnv(t, "SIGSTORE_ID_TOKEN="+token),
		"sign", "sigstore", ".", "--fulcio-url", "http://127.0.0.1:1", "--rekor-url", "http://127.0.0.1:1")
	if code != 2 || !strings.Contains(stderr, "127.0.0.1:1") {
		t.Errorf("signing against an unreachable Fulcio: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "model.sig")); err == nil {
		t.Error("a failed signing left a model.sig")
	}
}

func TestSignRefusesSymbolicLinksUnlessAllowed(t *testing.T) {
	key := newTestKey(t)
	dir := t.TempDir()
	writeModel(t, dir, tinyModel())
	if err := os.Symlink("model.safetensors", filepath.Join(dir, "alias.safetensors")); err != nil {
		t.Skip("no symbolic links here:", err)
	}
	_, stderr := wantExit(t, 2, dir, "sign", "key", ".", "--private-key", key.privPath)
	if !strings.Contains(stderr, "symbolic link") || !strings.Contains(stderr, "alias.safetensors") {
		t.Errorf("link without --allow-symlinks: %q", stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "model.sig")); err == nil {
		t.Error("a refused signing wrote model.sig")
	}
	wantExit(t, 0, dir, "sign", "key", ".", "--private-key", key.privPath, "--allow-symlinks")
	wantExit(t, 0, dir, "verify", "key", ".", "--signature", "model.sig", "--public-key", key.pubPath)
	// The link is signed with its target's content: pointing it elsewhere is noticed.
	os.Remove(filepath.Join(dir, "alias.safetensors"))
	os.Symlink("config.json", filepath.Join(dir, "alias.safetensors"))
	_, stderr = wantExit(t, 1, dir, "verify", "key", ".", "--signature", "model.sig", "--public-key", key.pubPath)
	if !strings.Contains(stderr, "alias.safetensors") {
		t.Errorf("retargeted link: %q", stderr)
	}
}

func TestSignRefusesAModelWithNoFiles(t *testing.T) {
	key := newTestKey(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "model"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, stderr := wantExit(t, 2, dir, "sign", "key", "model", "--private-key", key.privPath, "--signature", "model.sig")
	if !strings.Contains(stderr, "no file to sign") || !strings.Contains(stderr, "section 6.1") {
		t.Errorf("empty model: %q", stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "model.sig")); err == nil {
		t.Error("a refused signing wrote model.sig")
	}
}

func TestVerifyCertificateChecksTheLeafsUsageAndSubject(t *testing.T) {
	ca := newTestCA(t) // its leaf: CN "model signer", codeSigning
	dir := t.TempDir()
	writeModel(t, dir, tinyModel())
	wantExit(t, 0, dir, "sign", "certificate", ".", "--private-key", ca.leafKeyPath, "--signing-certificate", ca.leafCertPath)
	verify := []string{"verify", "certificate", ".", "--signature", "model.sig", "--certificate-chain", ca.rootPath}
	wantExit(t, 0, dir, append(verify, "--subject", "commonNameRegexp=model .+")...)
	_, stderr := wantExit(t, 1, dir, append(verify, "--subject", "commonName=release signer")...)
	if !strings.Contains(stderr, `certificate subject commonName (CN): want "release signer", found "model signer"`) {
		t.Errorf("subject: %q", stderr)
	}
	_, stderr = wantExit(t, 1, dir, append(verify, "--extended-key-usage", "serverAuth")...)
	if !strings.Contains(stderr, `has extended key usages [codeSigning]; want one of [serverAuth]`) {
		t.Errorf("usage: %q", stderr)
	}
	_, stderr = wantExit(t, 2, dir, append(verify, "--extended-key-usage", "code-signing")...)
	if !strings.Contains(stderr, `"code-signing" is not an extended key usage`) {
		t.Errorf("unknown usage: %q", stderr)
	}
}

// A private key given as --public-key is named as such, with the command that derives the
// public key, in one line with one "verifier:" prefix.
func TestVerifyKeySaysAPrivateKeyIsNotThePublicKey(t *testing.T) {
	key := newTestKey(t)
	dir := t.TempDir()
	writeModel(t, dir, tinyModel())
	wantExit(t, 0, dir, "sign", "key", ".", "--private-key", key.privPath)
	_, stderr := wantExit(t, 2, dir, "verify", "key", ".", "--signature", "model.sig", "--public-key", key.privPath)
	if !strings.Contains(stderr, "a private key was given where the public key is wanted") ||
		!strings.Contains(stderr, "openssl pkey -in PRIVATE_KEY.pem -pubout -out public.pem") ||
		strings.Count(stderr, "verifier:") != 1 || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr %q", stderr)
	}
}

// --verbose shows a Sigstore signer's Fulcio extensions (which repository, ref and workflow
// signed), one a line under the signer, by the names a policy uses.
func TestEvidenceShowsTheSignersFulcioExtensions(t *testing.T) {
	var b strings.Builder
	printEvidence(&b, modelverify.Evidence{Repo: "acme/tiny", Signer: modelverify.Signer{Kind: "sigstore",
		Identity: "https://github.com/acme/models/.github/workflows/release.yml@refs/tags/v1.0", Issuer: "https://token.actions.githubusercontent.com",
		Extensions: map[string]string{"sourceRepositoryURI": "https://github.com/acme/models", "buildTrigger": "push"}}}, "  ")
	want := "  signer:       sigstore https://github.com/acme/models/.github/workflows/release.yml@refs/tags/v1.0 (issuer https://token.actions.githubusercontent.com)\n" +
		"    extension buildTrigger: push\n" +
		"    extension sourceRepositoryURI: https://github.com/acme/models\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("got:\n%s\nwant it to hold:\n%s", b.String(), want)
	}
}
