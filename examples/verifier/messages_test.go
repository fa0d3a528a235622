package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/internal/testtools"
)

// A CDN on another port than the policy's "127.0.0.1" allows: pull and download say which
// host:port was refused and exactly what to add, once, without the signed URL's query.
func TestRedirectRefusalSaysWhatToAddOnce(t *testing.T) {
	f := newPullFixture(t, func(doc map[string]any) {
		doc["endpoints"].([]any)[0].(map[string]any)["cdnHosts"] = []any{"127.0.0.1"}
	})
	check := func(t *testing.T, stderr string, code int, fix string) {
		t.Helper()
		if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "redirect") {
			t.Fatalf("exit %d, %q; want 1 and one line", code, stderr)
		}
		for _, want := range []string{fix, f.cdnHost, `"127.0.0.1" without a port allows only ports 80 and 443`} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr does not say %q: %s", want, stderr)
			}
		}
		if strings.Count(stderr, fix) != 1 || strings.Contains(stderr, "?") || strings.Contains(stderr, "Signature=") ||
			strings.Contains(stderr, "expected (none)") || len(stderr) > 600 {
			t.Errorf("stderr repeats itself, carries the URL's query or says nothing was expected (%d characters): %s", len(stderr), stderr)
		}
	}
	t.Run("pull", func(t *testing.T) {
		_, stderr, code := f.pull(t, "hf://acme/tiny-llm@main")
		check(t, stderr, code, fmt.Sprintf("endpoints[].cdnHosts: [%q]", f.cdnHost))
	})
	t.Run("download", func(t *testing.T) {
		_, stderr, code := runVerifier(t, f.workDir, "download", "--endpoint", f.hubURL, "--cache-dir", f.cacheDir,
			"--allow-redirect-host", "127.0.0.1", "hf://acme/tiny-llm@main")
		check(t, stderr, code, "--allow-redirect-host "+f.cdnHost)
	})
}

// A Hub nobody answers at: --verbose prints a line per retry, so the wait does not look like a
// hang, and the error names the Hub once, where its address came from, and to check HF_ENDPOINT.
func TestUnreachableHubSaysWhichAndPrintsRetriesAtVerbose(t *testing.T) {
	dead := "http://" + testtools.RefusingAddr(t)
	key := newTestKey(t)
	policy := writePolicy(t, dead, "127.0.0.1:1", key, filepath.Join(t.TempDir(), "audit.jsonl"), nil)
	cache, work := t.TempDir(), t.TempDir()
	for _, tc := range []struct {
		name    string
		env     []string
		args    []string
		source  string
		retries bool
	}{
		{"--endpoint, --verbose", nil, []string{"--verbose", "--endpoint", dead}, "(--endpoint)", true},
		{"HF_ENDPOINT", []string{"HF_ENDPOINT=" + dead}, nil, "(HF_ENDPOINT)", false},
		// A progress log (stderr not a terminal, progress on) shows the retries too.
		{"HF_ENDPOINT, progress log", []string{"HF_ENDPOINT=" + dead, disableProgressEnv + "="}, nil, "(HF_ENDPOINT)", true},
		{"download", []string{"HF_ENDPOINT=" + dead}, []string{"download", "--verbose"}, "(HF_ENDPOINT)", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"pull", "--policy", policy, "--cache-dir", cache}, tc.args...)
			if len(tc.args) > 0 && tc.args[0] == "download" {
				args = append([]string{"download", "--cache-dir", cache}, tc.args[1:]...)
			}
			_, stderr, code := runVerifierEnv(t, work, testEnv(t, tc.env...), append(args, "hf://acme/tiny-llm@main")...)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			var last string // the error's line; --verbose adds its details after it
			for _, l := range lines {
				if strings.HasPrefix(l, "verifier: failed") {
					last = l
				}
			}
			if code != 2 || !strings.HasPrefix(last, "verifier: failed, retry later: ") {
				t.Fatalf("exit %d, %q; want 2 and a temporary failure", code, stderr)
			}
			if !strings.Contains(last, "could not reach the Hub at "+dead+" "+tc.source) || !strings.Contains(last, "check HF_ENDPOINT") ||
				strings.Count(last, dead) != 2 || strings.Contains(last, "?") {
				t.Errorf("the error should name the Hub once in the failure, once in the hint, and say where it came from: %s", last)
			}
			var retries int
			for _, l := range lines {
				if strings.HasPrefix(l, "verifier: retrying ") && strings.Contains(l, "connection refused") {
					retries++
				}
			}
			if tc.retries != (retries > 0) {
				t.Errorf("%d retry lines, want them only at --verbose or in a progress log: %s", retries, stderr)
			}
		})
	}
}

// A mistyped method or flag gets the nearest right one; a missing method is said, not silently
// taken to be sigstore; flags are spelt --flag, as the README writes them.
func TestCommandLineMistakesSuggestTheFix(t *testing.T) {
	dir := t.TempDir()
	writeModel(t, dir, tinyModel())
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"verify", "kee", dir, "--signature", "x"}, `verify: unknown method "kee" (did you mean key?); the methods are key, certificate, sigstore`, 2},
		{[]string{"sign", "sigstor", dir}, `(did you mean sigstore?)`, 2},
		{[]string{"verify", "blah", dir}, `unknown method "blah"; the methods are key, certificate, sigstore`, 2},
		{[]string{"verify", dir, "--signature", "x", "--public-key", "k.pub"}, `verify: no method given, and --public-key belongs to key: write 'verifier verify key MODEL_PATH ...'`, 2},
		{[]string{"sign", dir, "--private-key", "k.pem"}, `belongs to key or certificate`, 2},
		{[]string{"verify", "key", dir, "--signatur", "x"}, `verify: unknown flag --signatur (did you mean --signature?)`, 2},
		{[]string{"verify", "key", dir, "--public_kee", "x"}, `unknown flag --public-kee (did you mean --public-key?)`, 2},
		{[]string{"pull", "--polcy", "p.yaml"}, `pull: unknown flag --polcy (did you mean --policy?)`, 2},
		{[]string{"pull", "--zzzzzz"}, `pull: unknown flag --zzzzzz (run 'verifier pull --help' for its flags)`, 2},
		{[]string{"verify", "key", dir, "--signature"}, `verify: flag needs an argument: --signature`, 2},
		{[]string{"veify", "key", dir}, `unknown command "veify" (did you mean verify?)`, 2},
		{[]string{"frobnicate"}, `unknown command "frobnicate" (run 'verifier help')`, 2},
	} {
		_, stderr, code := runVerifier(t, dir, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, %q; want %d and one line with %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
	// With no method and no other method's flags: sigstore, as in model_signing, and said so.
	_, stderr, _ := runVerifier(t, dir, "verify", dir, "--signature", "x", "--identity", "a@b", "--identity-provider", "https://issuer")
	if !strings.HasPrefix(stderr, "verifier: no method given; using sigstore, as model_signing does (the methods are key, certificate, sigstore)\n") {
		t.Errorf("a missing method was taken to be sigstore without saying so: %q", stderr)
	}
}
