package main

import (
	"fmt"
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
