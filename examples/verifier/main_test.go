package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// verifierBin is the verifier built once for the tests that run it as a user would.
var verifierBin string

// raceEnabled is set by race_test.go when the tests run with -race.
var raceEnabled bool

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "verifier-test")
	if err != nil {
		panic(err)
	}
	verifierBin = filepath.Join(dir, "verifier")
	args := []string{"build", "-o", verifierBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("building verifier: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testEnv is the environment the binary runs with: the test's own, without any Hugging Face or
// Sigstore setting that could send it to the real Hub or a user's cache, plus extra.
func testEnv(t *testing.T, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "HF_") || strings.HasPrefix(kv, "HUGGING_FACE_") || strings.HasPrefix(kv, "SIGSTORE_") {
			continue
		}
		env = append(env, kv)
	}
	home := t.TempDir()
	// A race-enabled binary (go test -race) otherwise sleeps a second at every exit. Progress,
	// logged on a stderr that is not a terminal, is off but where a test turns it on (passing
	// HF_HUB_DISABLE_PROGRESS_BARS= in extra), so that the others see only what they check.
	env = append(env, "HOME="+home, "HF_HOME="+filepath.Join(home, "hf"), "GORACE=atexit_sleep_ms=0",
		disableProgressEnv+"=1")
	return append(env, extra...)
}

// runVerifier runs the built binary in dir and returns its stdout, stderr and exit status.
func runVerifier(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	return runVerifierEnv(t, dir, testEnv(t), args...)
}

func runVerifierEnv(t *testing.T, dir string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(verifierBin, args...)
	cmd.Dir = dir
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	// Progress bars are for terminals only; the tests' stderr is a pipe.
	if strings.Contains(errb.String(), "\r") {
		t.Errorf("%v: progress drawn on a stderr that is not a terminal: %q", args, errb.String())
	}
	return out.String(), errb.String(), code
}

// wantExit fails the test unless the command exited with code, and returns its output.
func wantExit(t *testing.T, code int, dir string, args ...string) (string, string) {
	t.Helper()
	out, errOut, got := runVerifier(t, dir, args...)
	if got != code {
		t.Fatalf("verifier %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), got, code, out, errOut)
	}
	return out, errOut
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

func TestNoCommandPrintsUsageAndExitsTwo(t *testing.T) {
	_, stderr := wantExit(t, 2, t.TempDir())
	for _, c := range commands() {
		if !strings.Contains(stderr, "  "+c.name+" ") {
			t.Errorf("usage does not list %s:\n%s", c.name, stderr)
		}
	}
	if !strings.Contains(stderr, "0 verified, 1 refused, 2 usage or I/O error") {
		t.Errorf("usage does not document the exit codes:\n%s", stderr)
	}
	_, helpOut := wantExit(t, 0, t.TempDir(), "help")
	if helpOut != stderr {
		t.Error("help and no command print different usage")
	}
}

func TestCommandHelpListsItsFlagsAndExitsZero(t *testing.T) {
	_, stderr := wantExit(t, 0, t.TempDir(), "verify", "--help")
	for _, flag := range []string{"-signature", "-public-key", "-certificate-chain", "-identity", "-identity-provider",
		"-ignore-paths", "-ignore-git-paths", "-allow-symlinks", "-ignore-unsigned-files", "-trust-config", "-trust-root"} {
		if !strings.Contains(stderr, flag) {
			t.Errorf("verify --help does not list %s", flag)
		}
	}
}

func TestJSONErrorsGoToStdoutForMachines(t *testing.T) {
	out, stderr := wantExit(t, 2, t.TempDir(), "--json", "digest", "/does/not/exist")
	var res struct {
		OK      bool   `json:"ok"`
		Refused bool   `json:"refused"`
		Error   string `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.OK || res.Refused || !strings.Contains(res.Error, "/does/not/exist") {
		t.Errorf("--json error: %q (%v)", out, err)
	}
	if strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr %q", stderr)
	}
}
