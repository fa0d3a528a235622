package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The bundles model_signing v0.2.0 to v1.1.0 wrote (testdata/interop, see oms-format.md §5),
// verified with the same command lines model_signing takes.
func TestVerifyPythonSignedBundles(t *testing.T) {
	keys := absPath(t, pythonKeys)
	entries, err := os.ReadDir(signedDir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if name == "keys" {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			dir := absPath(t, filepath.Join(signedDir, name))
			model := "."
			if _, err := os.Stat(filepath.Join(dir, "signme-2")); err != nil {
				model = "signme-1" // the single-file models of v0.3.1 and v1.0.0
			}
			args := []string{"verify"}
			switch {
			case strings.HasSuffix(name, "-certificate"):
				args = append(args, "certificate", model, "--certificate-chain", keys+"/ca-cert.pem")
			case strings.HasSuffix(name, "-elliptic-key"):
				args = append(args, "key", model, "--public-key", keys+"/signing-key-pub.pem")
			case strings.HasSuffix(name, "-sigstore"):
				args = append(args, "sigstore", model, "--identity", "stefanb@us.ibm.com",
					"--identity-provider", "https://sigstore.verify.ibm.com/oauth2")
			default:
				t.Fatalf("unknown bundle set %s", name)
			}
			args = append(args, "--signature", "model.sig", "--ignore-paths", "ignore-me")
			out, _ := wantExit(t, 0, dir, args...)
			if out != "Verification succeeded\n" {
				t.Errorf("printed %q", out)
			}
		})
	}
	if n != 13 {
		t.Errorf("verified %d bundle sets, want the 13 in testdata", n)
	}
}

func TestVerifyPythonSignedBundlesRefusesWrongSigner(t *testing.T) {
	keys := absPath(t, pythonKeys)
	sig := absPath(t, filepath.Join(signedDir, "v1.1.0-sigstore"))
	_, stderr := wantExit(t, 1, sig, "verify", "sigstore", ".", "--signature", "model.sig", "--ignore-paths", "ignore-me",
		"--identity", "someone-else@example.com", "--identity-provider", "https://sigstore.verify.ibm.com/oauth2")
	if !strings.Contains(stderr, "identity") {
		t.Errorf("wrong identity: %q", stderr)
	}
	_, stderr = wantExit(t, 1, sig, "verify", "sigstore", ".", "--signature", "model.sig", "--ignore-paths", "ignore-me",
		"--identity", "stefanb@us.ibm.com", "--identity-provider", "https://accounts.google.com")
	if !strings.Contains(stderr, "refused") {
		t.Errorf("wrong issuer: %q", stderr)
	}
	// A certificate bundle checked as a key bundle, with the right key: the method matters.
	cert := absPath(t, filepath.Join(signedDir, "v1.1.0-certificate"))
	wantExit(t, 1, cert, "verify", "key", ".", "--signature", "model.sig", "--ignore-paths", "ignore-me",
		"--public-key", keys+"/signing-key-pub.pem")
	// v1.1.0 records ignore-me in its manifest; v1.0.1 does not, so without --ignore-paths the
	// unsigned empty file is refused.
	v101 := absPath(t, filepath.Join(signedDir, "v1.0.1-elliptic-key"))
	_, stderr = wantExit(t, 1, v101, "verify", "key", ".", "--signature", "model.sig", "--public-key", keys+"/signing-key-pub.pem")
	if !strings.Contains(stderr, "ignore-me") {
		t.Errorf("unsigned file not named: %q", stderr)
	}
}

func TestVerifySigstoreWithAnExplicitTrustRoot(t *testing.T) {
	dir := absPath(t, filepath.Join(signedDir, "v1.1.0-sigstore"))
	root := absPath(t, "../../testdata/interop/sigstore/public-good-trusted_root.json")
	args := []string{"verify", "sigstore", ".", "--signature", "model.sig", "--ignore-paths", "ignore-me",
		"--identity", "stefanb@us.ibm.com", "--identity-provider", "https://sigstore.verify.ibm.com/oauth2"}
	out, _ := wantExit(t, 0, dir, append(args, "--trust-root", root, "--json")...)
	if !strings.Contains(out, `"signedAt": "2025-10-10T02:12:20Z"`) || !strings.Contains(out, `"identity": "stefanb@us.ibm.com"`) {
		t.Errorf("--json evidence:\n%s", out)
	}
	// A trust root that is not one cannot be used: an error, not a verdict on the model.
	notRoot := filepath.Join(t.TempDir(), "root.json")
	writeFile(t, notRoot, []byte(`{"mediaType": "something else"}`))
	_, stderr := wantExit(t, 2, dir, append(args, "--trust-config", notRoot)...)
	if !strings.Contains(stderr, "trust") {
		t.Errorf("bad trust root: %q", stderr)
	}
}

// The command line says who may sign as a policy does: regular expressions over the whole
// value, and Fulcio extension constraints by the policy's names.
func TestVerifySigstoreIdentityRegexpsAndExtensions(t *testing.T) {
	dir := absPath(t, filepath.Join(signedDir, "v1.1.0-sigstore"))
	base := []string{"verify", "sigstore", ".", "--signature", "model.sig", "--ignore-paths", "ignore-me"}
	wantExit(t, 0, dir, append(base, "--identity-regexp", `stefanb@us\.ibm\.com`, "--identity-provider-regexp", `https://sigstore\.verify\.ibm\.com/.+`)...)
	// Matched as written, the second alternative would accept the identity.
	_, stderr := wantExit(t, 1, dir, append(base, "--identity-regexp", `^alice@us\.ibm\.com|us\.ibm\.com$`, "--identity-provider", "https://sigstore.verify.ibm.com/oauth2")...)
	if !strings.Contains(stderr, `want a whole match for "^alice@us\\.ibm\\.com|us\\.ibm\\.com$", found "stefanb@us.ibm.com"`) {
		t.Errorf("alternation: %q", stderr)
	}
	id := append(base, "--identity", "stefanb@us.ibm.com", "--identity-provider", "https://sigstore.verify.ibm.com/oauth2")
	_, stderr = wantExit(t, 1, dir, append(id, "--extension", "sourceRepositoryURI=https://github.com/acme/models")...)
	if !strings.Contains(stderr, `certificate extension sourceRepositoryURI (OID 1.3.6.1.4.1.57264.1.12): want "https://github.com/acme/models", found none`) {
		t.Errorf("extension: %q", stderr)
	}
	_, stderr = wantExit(t, 2, dir, append(id, "--extension", "sourceRepositoryUri=x")...)
	if !strings.Contains(stderr, `unknown name "sourceRepositoryUri"`) || !strings.Contains(stderr, "sourceRepositoryURI") {
		t.Errorf("unknown extension: %q", stderr)
	}
	_, stderr = wantExit(t, 2, dir, append(id, "--extension", "buildTriggerRegexp=push|")...)
	if !strings.Contains(stderr, "matches an empty value") {
		t.Errorf("empty-matching pattern: %q", stderr)
	}
}
