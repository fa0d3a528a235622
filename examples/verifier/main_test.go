package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// verifierBin is the verifier built once for the tests that run it as a user would.
var verifierBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "verifier-test")
	if err != nil {
		panic(err)
	}
	verifierBin = filepath.Join(dir, "verifier")
	build := exec.Command("go", "build", "-o", verifierBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("building verifier: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runVerifier runs the built binary and returns its stdout, stderr and exit status.
func runVerifier(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(verifierBin, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

const signedDir = "../../testdata/interop/model-transparency/signed"

func TestDigestPrintsThePythonSignedRootDigest(t *testing.T) {
	dir, _ := filepath.Abs(filepath.Join(signedDir, "v1.1.0-sigstore"))
	// model_signing resolves --ignore-paths against the working directory.
	out, stderr, code := runVerifier(t, dir, "digest", ".", "--ignore-paths", "ignore-me")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// The subject digest of the bundle model_signing v1.1.0 wrote for these files.
	if want := "sha256:61d4849d9d90076d6215f4d525f13d6574af8e3f67aef3e6f36fc40a14fdd226\n"; out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
	// Without the ignore path the empty file is part of the model, and the digest changes.
	out2, _, _ := runVerifier(t, dir, "digest", ".")
	if out2 == out {
		t.Fatal("ignore-me made no difference")
	}
}

func TestDigestOptionsChangeTheDigest(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "w.bin"), bytes.Repeat([]byte("x"), 1000), 0o644)
	seen := map[string]string{}
	for _, args := range [][]string{{}, {"--hash", "blake3"}, {"--hash=blake2b"}, {"--shard-size", "100"}, {"--shard_size=100", "--hash", "blake3"}} {
		out, stderr, code := runVerifier(t, dir, append([]string{"digest", "."}, args...)...)
		if code != 0 || !strings.HasPrefix(out, "sha256:") {
			t.Fatalf("%v: exit %d %q %s", args, code, out, stderr)
		}
		key := strings.Join(args, " ")
		for k, v := range seen {
			if v == out {
				t.Errorf("%q and %q give the same digest", k, key)
			}
		}
		seen[key] = out
	}
}

func TestDigestUsageAndIOErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{
		{"digest"},
		{"digest", "a", "b"},
		{"digest", "/does/not/exist"},
		{"digest", ".", "--hash", "md5"},
		{"digest", ".", "--no-such-flag"},
		{"no-such-command"},
	} {
		_, stderr, code := runVerifier(t, t.TempDir(), args...)
		if code != 2 || !strings.HasPrefix(stderr, "verifier: ") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line", args, code, stderr)
		}
	}
}
