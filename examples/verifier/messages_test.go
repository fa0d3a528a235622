package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"pull", "--policy", policy, "--cache-dir", cache}, tc.args...)
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
				t.Errorf("%d retry lines, want them only at --verbose: %s", retries, stderr)
			}
		})
	}
}
