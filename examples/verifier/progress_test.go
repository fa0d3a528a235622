package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestRenderBar(t *testing.T) {
	for _, tc := range []struct {
		done, total int64
		want        string
	}{
		{0, 1000, "dl [>         ]   0% 0 B / 1.0 kB"},
		{500, 1000, "dl [=====>    ]  50% 500 B / 1.0 kB"},
		{1000, 1000, "dl [==========] 100% 1.0 kB / 1.0 kB"},
		{2000, 1000, "dl [==========] 100% 1.0 kB / 1.0 kB"},
		{1_500_000, 0, "dl 1.5 MB"},
		{0, 0, "dl"},
	} {
		if got := renderBar("dl", tc.done, tc.total, 10); got != tc.want {
			t.Errorf("renderBar(%d, %d) = %q, want %q", tc.done, tc.total, got, tc.want)
		}
	}
}

func TestProgressDrawsOnlyOnATerminal(t *testing.T) {
	var b bytes.Buffer
	if p := newProgress(&env{stderr: &b, terminal: true, noProgress: true}, "x"); p != nil {
		t.Fatal("progress when HF_HUB_DISABLE_PROGRESS_BARS turned it off")
	}
	p := newProgress(&env{stderr: &b}, "x")
	p.set(1, 2)
	p.file("a", 1, 2)
	p.finish()
	if p == nil || !p.log || strings.Contains(b.String(), "\r") {
		t.Fatalf("a bar drawn on a stderr that is not a terminal: %q", b.String())
	}
	b.Reset()
	var nilBar *progressBar
	nilBar.set(1, 2)
	nilBar.file("a", 1, 2)
	nilBar.fileDone("a", 2, false)
	nilBar.step("s")
	nilBar.clear()
	nilBar.finish()

	p = newProgress(&env{stderr: &b, terminal: true}, "downloading")
	p.file("a.bin", 0, 100)
	p.file("b.bin", 0, 300)
	p.step("check")
	p.finish()
	out := b.String()
	if !strings.HasPrefix(out, "\r\033[Kdownloading [") || !strings.Contains(out, "\r\033[Kcheck [") || !strings.HasSuffix(out, "0 B / 400 B\r\033[K") {
		t.Errorf("drawn %q", out)
	}
}

// On a stderr that is not a terminal, progress is a log: a line per step and per file, and a
// summary (bytes, percent, rate, time left) each interval, driven here by a fake clock.
func TestProgressLogsLinesAndSummariesWhenNotATerminal(t *testing.T) {
	var b bytes.Buffer
	clock := time.Date(2026, 12, 1, 17, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	p := newProgress(&env{stderr: &b, progressEvery: 0, now: now}, "resolving")
	clock = clock.Add(3 * time.Second)
	p.summary()
	p.step("downloading and checking the files")
	p.file("model.safetensors", 0, 4_000_000)
	p.fileDone("config.json", 1000, true)
	clock = clock.Add(10 * time.Second)
	p.file("model.safetensors", 1_000_000, 4_000_000)
	p.summary()
	clock = clock.Add(10 * time.Second)
	p.summary() // nothing arrived: the rate says so
	p.fileDone("model.safetensors", 4_000_000, false)
	p.finish()
	want := `verifier: progress: still resolving after 3s
verifier: downloading and checking the files
verifier: config.json (1.0 kB) already in the cache; its digest matches
verifier: progress: downloading and checking the files 1.0 MB of 4.0 MB (25%), 100.1 kB/s, about 30s left
verifier: progress: downloading and checking the files 1.0 MB of 4.0 MB (25%), 0 B/s, about 1m0s left
verifier: model.safetensors (4.0 MB) downloaded; it matches the Hub's digest
`
	if got := b.String(); got != want {
		t.Errorf("logged:\n%s\nwant:\n%s", got, want)
	}
}

// A pull whose stderr is a pipe (CI, kubectl logs) logs a line per step and per file; the
// result on stdout is unchanged. HF_HUB_DISABLE_PROGRESS_BARS=1 turns the lines off.
func TestPullLogsProgressWhenStderrIsNotATerminal(t *testing.T) {
	f := newPullFixture(t, nil)
	args := []string{"pull", "--policy", f.policy, "--endpoint", f.hubURL, "--cache-dir", f.cacheDir, "hf://acme/tiny-llm@main"}
	out, stderr, code := runVerifierEnv(t, f.workDir, testEnv(t, disableProgressEnv+"="), args...)
	if code != 0 || !strings.Contains(out, "snapshots/") {
		t.Fatalf("exit %d, stdout %q, stderr %s", code, out, stderr)
	}
	for _, want := range []string{"verifier: resolving the revision and listing the files\n", "verifier: verifying the signature\n",
		"verifier: downloading and checking the files\n"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("no step line %q in:\n%s", want, stderr)
		}
	}
	for name := range tinyModel() {
		if n := strings.Count(stderr, "verifier: "+name+" ("); n != 1 {
			t.Errorf("%d lines for %s, want one:\n%s", n, name, stderr)
		}
	}
	// Summaries as often as possible, to exercise the timer against the reports (the binary is
	// built with -race under go test -race): every line is whole, and the result unchanged.
	out, stderr, code = runVerifierEnv(t, f.workDir, testEnv(t, disableProgressEnv+"=", progressIntervalEnv+"=1ms"), args...)
	if code != 0 || !strings.Contains(out, "snapshots/") {
		t.Fatalf("with summaries every 1ms: exit %d, stdout %q, stderr %s", code, out, stderr)
	}
	for _, l := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
		if !strings.HasPrefix(l, "verifier: ") {
			t.Errorf("a malformed progress line %q", l)
		}
	}
	// The second pull finds the verified cache: still a result, and no bar drawn.
	_, stderr, code = runVerifierEnv(t, f.workDir, testEnv(t, disableProgressEnv+"=1"), args...)
	if code != 0 || stderr != "" {
		t.Errorf("with %s=1: exit %d, stderr %q; want nothing", disableProgressEnv, code, stderr)
	}
	_, stderr, code = runVerifierEnv(t, f.workDir, testEnv(t, progressIntervalEnv+"=soon"), args...)
	if code != 2 || !strings.Contains(stderr, progressIntervalEnv) {
		t.Errorf("a bad interval: exit %d, %q", code, stderr)
	}
}

// download logs a line per file too.
func TestDownloadLogsALinePerFile(t *testing.T) {
	f := newPullFixture(t, nil)
	_, stderr, code := runVerifierEnv(t, f.workDir, testEnv(t, disableProgressEnv+"="), "download", "--endpoint", f.hubURL,
		"--cache-dir", f.cacheDir, "--allow-redirect-host", f.cdnHost, "hf://acme/tiny-llm@main")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for name := range tinyModel() {
		if n := strings.Count(stderr, "verifier: "+name+" ("); n != 1 {
			t.Errorf("%d lines for %s, want one:\n%s", n, name, stderr)
		}
	}
}
