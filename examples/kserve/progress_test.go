package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/modelverify"
)

// fakeClock is a clock the test moves by hand: the summary's rate and time left are computed
// from it, never from how fast the test runs.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func decodeLines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		out = append(out, rec)
	}
	b.Reset()
	return out
}

func TestPullLogSummarisesBytesRateTimeLeftAndStalls(t *testing.T) {
	var buf bytes.Buffer
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	p := newPullLog(slog.New(slog.NewJSONHandler(&buf, nil)), clock.now)

	p.report(modelverify.Progress{Step: "resolve"})
	p.summary() // before the download, the summary still says the pull is alive and where
	p.report(modelverify.Progress{Step: "download", Total: 1000})
	p.report(modelverify.Progress{Step: "download", File: "a.safetensors", State: "started", Size: 600})
	p.report(modelverify.Progress{Step: "download", File: "b.json", State: "started", Size: 400})
	lines := decodeLines(t, &buf)
	if lines[1]["step"] != "resolve" || !strings.HasPrefix(lines[1]["msg"].(string), "pull progress") {
		t.Errorf("summary before the download: %v", lines[1])
	}
	if lines[2]["bytes_total"] != 1000.0 || lines[3]["file"] != "a.safetensors" || lines[3]["size_bytes"] != 600.0 {
		t.Errorf("download and file lines: %v", lines[2:])
	}

	// 10 s in, 300 bytes: 30 B/s, and 700 bytes left at that rate is about 23 s.
	clock.advance(10 * time.Second)
	p.report(modelverify.Progress{Step: "download", File: "a.safetensors", State: "bytes", Bytes: 300, Size: 600})
	p.summary()
	s := decodeLines(t, &buf)[0]
	for k, want := range map[string]float64{"bytes_done": 300, "bytes_total": 1000, "percent": 30,
		"rate_bytes_per_second": 30, "eta_seconds": 23, "files_done": 0} {
		if s[k] != want {
			t.Errorf("%s = %v, want %v (%v)", k, s[k], want, s)
		}
	}
	if _, ok := s["idle_seconds"]; ok {
		t.Errorf("a moving pull reported idle: %v", s)
	}

	// Then nothing for 30 s, and a retry: the summary says so.
	clock.advance(30 * time.Second)
	p.report(modelverify.Progress{Step: "download", File: "a.safetensors", State: "retrying", Err: errors.New("connection reset")})
	p.summary()
	lines = decodeLines(t, &buf)
	if lines[0]["level"] != "WARN" || lines[0]["file"] != "a.safetensors" || lines[0]["error"] != "connection reset" {
		t.Errorf("retry line: %v", lines[0])
	}
	if s := lines[1]; s["idle_seconds"] != 30.0 || s["rate_bytes_per_second"] != 0.0 || !strings.Contains(s["msg"].(string), "no bytes for 30s") {
		t.Errorf("stalled summary: %v", s)
	}

	// Both files finish: one line each, and the summary says the rest is checking.
	clock.advance(5 * time.Second)
	p.report(modelverify.Progress{Step: "download", File: "a.safetensors", State: "verified", Bytes: 600, Size: 600})
	p.report(modelverify.Progress{Step: "download", File: "b.json", State: "cached", Bytes: 400, Size: 400})
	p.summary()
	lines = decodeLines(t, &buf)
	if lines[0]["file"] != "a.safetensors" || lines[0]["seconds"] != 45.0 || lines[1]["file"] != "b.json" {
		t.Errorf("file lines: %v", lines[:2])
	}
	if s := lines[2]; s["bytes_done"] != 1000.0 || s["files_done"] != 2.0 || !strings.Contains(s["msg"].(string), "checking and publishing") {
		t.Errorf("final summary: %v", s)
	}
}

// A registry pull announces no download step and no total: its first layer report starts the
// download, the lines name layers checked against the manifest, and the summary gives bytes and
// rate without inventing a percentage or a time left.
func TestPullLogOfARegistryPull(t *testing.T) {
	var buf bytes.Buffer
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	p := newPullLog(slog.New(slog.NewJSONHandler(&buf, nil)), clock.now)
	p.oci = true
	layer := "layer sha256:" + strings.Repeat("ab", 32)

	p.report(modelverify.Progress{Ref: "oci://ghcr.io/acme/tiny:v1", Step: "resolve"})
	p.report(modelverify.Progress{Ref: "oci://ghcr.io/acme/tiny:v1", Step: "signature"})
	p.report(modelverify.Progress{Step: "download", File: layer, State: "started", Size: 2000})
	clock.advance(10 * time.Second)
	p.report(modelverify.Progress{Step: "download", File: layer, State: "bytes", Bytes: 500, Size: 2000})
	p.summary()
	lines := decodeLines(t, &buf)
	for i, want := range []string{"resolving the tag to a digest and reading the manifest", "verifying the cosign signature of the digest",
		"downloading and checking the layers", "downloading layer", "pull progress: 500 B, 50 B/s"} {
		if i >= len(lines) || lines[i]["msg"] != want {
			t.Fatalf("line %d: %v, want %q (all: %v)", i, lines, want, lines)
		}
	}
	if s := lines[4]; s["bytes_done"] != 500.0 || s["step"] != "download" || s["percent"] != nil || s["eta_seconds"] != nil {
		t.Errorf("summary %v", s)
	}
	p.report(modelverify.Progress{Step: "download", File: layer, State: "verified", Bytes: 2000, Size: 2000})
	p.report(modelverify.Progress{Ref: "oci://ghcr.io/acme/tiny:v1", Step: "scan"})
	lines = decodeLines(t, &buf)
	if lines[0]["msg"] != "layer downloaded; it matches its digest in the manifest" || lines[0]["file"] != layer ||
		lines[1]["msg"] != "scanning every file with the policy's content rules" {
		t.Errorf("lines %v", lines)
	}
}

func TestInitializerLogsEachFileAndEndsWithOneDecisionLine(t *testing.T) {
	f := newFixture(t)
	code, lines := inProcess(t, f, nil, nil, "hf://acme/tiny-llm", t.TempDir())
	if code != 0 {
		t.Fatalf("exit %d: %v", code, lines)
	}
	started, downloaded := map[string]bool{}, map[string]bool{}
	for _, l := range lines {
		switch l["msg"] {
		case "downloading file":
			started[l["file"].(string)] = true
		case "file downloaded; it matches the Hub's digest":
			downloaded[l["file"].(string)] = true
		}
	}
	for name := range modelFiles() {
		if !started[name] || !downloaded[name] {
			t.Errorf("%s: started %v, downloaded %v", name, started[name], downloaded[name])
		}
	}
	last := lines[len(lines)-1]
	ev, _ := last["evidence"].(map[string]any)
	commit, _ := f.hub.Resolve("acme/tiny-llm", "main")
	if last["msg"] != "model verified and ready" || last["decision"] != "allowed" || ev == nil ||
		ev["commit"] != commit || ev["publisher"] != "acme" || ev["verification"] != "signature" ||
		!strings.HasPrefix(ev["manifestDigest"].(string), "sha256:") || ev["files"] != 3.0 || last["bytes"] == nil {
		t.Fatalf("last line %v", last)
	}
	if signer, _ := ev["signer"].(map[string]any); signer["kind"] != "key" || !strings.HasPrefix(signer["identity"].(string), "key sha256:") {
		t.Errorf("signer %v", ev["signer"])
	}

	// A refusal ends the same way: the decision, the reasons and each problem in one line.
	code, lines = inProcess(t, f, nil, nil, "hf://acme/tiny-llm-tampered", t.TempDir())
	if code != exitRefused {
		t.Fatalf("exit %d: %v", code, lines)
	}
	last = lines[len(lines)-1]
	problems, _ := last["problems"].([]any)
	if last["decision"] != "refused" || len(problems) == 0 || !strings.Contains(problems[0].(string), "digest-mismatch: file model.safetensors") ||
		!strings.Contains(last["error"].(string), "digest-mismatch") {
		t.Fatalf("last line of a refusal %v", last)
	}
}

func TestInitializerRefusesAnInvalidProgressInterval(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		env  map[string]string
		args []string
	}{
		{map[string]string{progressEnv: "soon"}, nil},
		{nil, []string{"--progress-interval", "-1s"}},
	} {
		dest := t.TempDir()
		code, lines := inProcess(t, f, nil, tc.env, append(tc.args, "hf://acme/tiny-llm", dest)...)
		if code != exitError {
			t.Errorf("%v %v: exit %d: %v", tc.env, tc.args, code, lines)
		}
	}
	// 0 turns the summaries off, and is not an error.
	if code, lines := inProcess(t, f, nil, map[string]string{progressEnv: "0"}, "hf://acme/tiny-llm", t.TempDir()); code != 0 {
		t.Errorf("interval 0: exit %d: %v", code, lines)
	}
}
