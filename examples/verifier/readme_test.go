package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeBlock returns the first ```sh block of the repository's README.md that follows the line
// containing marker.
func readmeBlock(t *testing.T, marker string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, marker)
	if i < 0 {
		t.Fatalf("README.md has no %q", marker)
	}
	s = s[i:]
	start := strings.Index(s, "```sh\n")
	if start < 0 {
		t.Fatalf("README.md has no sh block after %q", marker)
	}
	s = s[start+len("```sh\n"):]
	end := strings.Index(s, "```\n")
	if end < 0 {
		t.Fatalf("README.md's sh block after %q does not end", marker)
	}
	return s[:end]
}

// The README's walkthrough is run as written, from the repository root, as a newcomer pastes it
// into a shell: it builds the tools, signs a model, serves it from hubtest on free ports and
// pulls it and a tampered copy through a policy.
func TestREADMEWalkthroughRunsAsWritten(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the tools and runs the walkthrough")
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("the walkthrough needs openssl")
	}
	script := readmeBlock(t, "Sign a model of your own")
	tmp := t.TempDir()
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = filepath.Join("..", "..")
	// The walkthrough's mktemp directory, the Go caches and any per-user state stay in this test's
	// own directories; HF_* variables of the machine must not leak in.
	cmd.Env = append(filteredEnv("HF_", "TMPDIR", "MODELVERIFY_"), "TMPDIR="+tmp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	text := out.String()
	if err != nil {
		t.Fatalf("walkthrough failed: %v\n%s", err, text)
	}
	for _, want := range []string{
		"Signing succeeded",
		"Verification succeeded",
		"\n./tiny\n",                        // the allowed pull prints where it put the files
		"digest-mismatch: file config.json", // the tampered copy is refused, naming the file
		"last blocked:",                     // and the audit log answers "when was a load last blocked"
	} {
		if !strings.Contains(text, want) {
			t.Errorf("walkthrough output lacks %q:\n%s", want, text)
		}
	}
	if !regexp.MustCompile(`refused +hf://acme/tiny-tampered`).MatchString(text) {
		t.Errorf("the audit log does not show the tampered model as blocked:\n%s", text)
	}
	got, _ := filepath.Glob(filepath.Join(tmp, "*", "tiny", "config.json"))
	if len(got) != 1 {
		t.Errorf("the allowed pull did not put config.json into ./tiny (found %v)", got)
	}
	bad, _ := filepath.Glob(filepath.Join(tmp, "*", "bad", "*"))
	if len(bad) != 0 {
		t.Errorf("the refused pull left files in ./bad: %v", bad)
	}
	if strings.Contains(text, "hubtest did not start") || strings.Contains(text, "command not found") {
		t.Errorf("walkthrough did not run cleanly:\n%s", text)
	}
}

// filteredEnv is the environment without the variables that start with any of the prefixes.
func filteredEnv(prefixes ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		keep := true
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				keep = false
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	return env
}
