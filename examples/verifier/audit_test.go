package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/modelverify"
)

// writeAuditLog writes records through the library's own file sink.
func writeAuditLog(t *testing.T, recs ...modelverify.Record) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	sink, err := modelverify.OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := sink.Write(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	sink.Close()
	return path
}

func auditFixture(t *testing.T) (string, time.Time) {
	now := time.Now().UTC().Truncate(time.Second)
	return writeAuditLog(t,
		modelverify.Record{Time: now.Add(-72 * time.Hour), Decision: modelverify.DecisionRefused, Ref: "hf://acme/old@main", Repo: "acme/old",
			Reasons: []string{"unsigned"}, Message: "model is not signed"},
		modelverify.Record{Time: now.Add(-2 * time.Hour), Decision: modelverify.DecisionAllowed, Ref: "hf://acme/llm@main", Repo: "acme/llm",
			Publisher: "acme", Verification: modelverify.VerifiedSignature, Commit: strings.Repeat("a", 40)},
		modelverify.Record{Time: now.Add(-1 * time.Hour), Decision: modelverify.DecisionRefused, Ref: "hf://acme/llm-tampered@main", Repo: "acme/llm-tampered",
			Publisher: "acme", Reasons: []string{"digest-mismatch"}, Message: "digest mismatch: model.safetensors"},
		modelverify.Record{Time: now.Add(-30 * time.Minute), Decision: modelverify.DecisionAllowed, Ref: "hf://acme/llm@main", Repo: "acme/llm",
			Publisher: "acme", Verification: modelverify.VerifiedSignature},
	), now
}

func TestAuditLastBlocked(t *testing.T) {
	log, now := auditFixture(t)
	out, _ := wantExit(t, 0, t.TempDir(), "audit", "--log", log, "--last-blocked")
	want := "last blocked: " + now.Add(-time.Hour).Format(time.RFC3339) + "\n"
	if !strings.HasPrefix(out, want) || !strings.Contains(out, "hf://acme/llm-tampered@main") || !strings.Contains(out, "reasons digest-mismatch") {
		t.Errorf("got:\n%s\nwant it to start with %q", out, want)
	}
	// Narrowed to a repository, the answer is that repository's last refusal.
	out, _ = wantExit(t, 0, t.TempDir(), "audit", "--log", log, "--last-blocked", "--repo", "acme/old", "--json")
	var res struct{ LastBlocked *modelverify.Record }
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.LastBlocked == nil || res.LastBlocked.Ref != "hf://acme/old@main" {
		t.Errorf("--repo --json: %v\n%s", err, out)
	}
	// Within the last 30 minutes nothing was blocked.
	out, _ = wantExit(t, 0, t.TempDir(), "audit", "--log", log, "--last-blocked", "--since", "30m")
	if !strings.HasPrefix(out, "no model was blocked") {
		t.Errorf("--since 30m: %q", out)
	}
}

func TestAuditListsDecisionsWithFilters(t *testing.T) {
	log, now := auditFixture(t)
	out, _ := wantExit(t, 0, t.TempDir(), "audit", "--log", log)
	if !strings.HasSuffix(out, "4 decisions: 2 allowed, 2 refused, 0 audit-allowed\n") {
		t.Errorf("all:\n%s", out)
	}
	out, _ = wantExit(t, 0, t.TempDir(), "audit", "--log", log, "--since", "1d")
	if !strings.HasSuffix(out, "3 decisions: 2 allowed, 1 refused, 0 audit-allowed\n") {
		t.Errorf("--since 1d:\n%s", out)
	}
	out, _ = wantExit(t, 0, t.TempDir(), "audit", "--log", log, "--since", now.Add(-90*time.Minute).Format(time.RFC3339), "--decision", "allowed")
	if !strings.HasSuffix(out, "1 decision: 1 allowed, 0 refused, 0 audit-allowed\n") {
		t.Errorf("--since RFC3339 --decision allowed:\n%s", out)
	}
	out, _ = wantExit(t, 0, t.TempDir(), "audit", "--log", log, "--unverified", "--json")
	var res struct{ Records []modelverify.Record }
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Records) != 2 {
		t.Errorf("--unverified --json: %v\n%s", err, out)
	}
}

func TestAuditReadsThePolicysLogAndRotatedCopies(t *testing.T) {
	log, _ := auditFixture(t)
	// logrotate renamed the old log; new decisions go to a fresh file.
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	fresh := writeAuditLog(t, modelverify.Record{Time: time.Now().UTC(), Decision: modelverify.DecisionRefused, Ref: "hf://acme/newest@main", Reasons: []string{"bad-signature"}})
	data, _ := os.ReadFile(fresh)
	writeFile(t, log, data)
	key := newTestKey(t)
	policy := writePolicy(t, "https://huggingface.co", "cdn-lfs.hf.co", key, log, nil)
	out, _ := wantExit(t, 0, t.TempDir(), "audit", "--policy", policy)
	if !strings.HasSuffix(out, "5 decisions: 2 allowed, 3 refused, 0 audit-allowed\n") {
		t.Errorf("rotated logs:\n%s", out)
	}
	out, _ = wantExit(t, 0, t.TempDir(), "audit", "--policy", policy, "--last-blocked")
	if !strings.Contains(out, "hf://acme/newest@main") {
		t.Errorf("last blocked across rotation:\n%s", out)
	}
}

func TestAuditDamagedLogAnswersAndExitsTwo(t *testing.T) {
	log, _ := auditFixture(t)
	f, _ := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("{not json}\n")
	f.Close()
	out, stderr := wantExit(t, 2, t.TempDir(), "audit", "--log", log, "--last-blocked")
	if !strings.Contains(out, "hf://acme/llm-tampered@main") || !strings.Contains(stderr, "damaged") || !strings.Contains(stderr, "line 5") {
		t.Errorf("damaged log: stdout %q, stderr %q", out, stderr)
	}
}

func TestAuditUsageErrorsExitTwo(t *testing.T) {
	log, _ := auditFixture(t)
	for _, args := range [][]string{
		{"audit"},
		{"audit", "--log", log, "--policy", "p.yaml"},
		{"audit", "--log", log, "--since", "yesterday"},
		{"audit", "--log", log, "--decision", "maybe"},
		{"audit", "--log", log, "extra"},
		{"audit", "--log", "/does/not/exist.jsonl"},
	} {
		_, stderr, code := runVerifier(t, t.TempDir(), args...)
		if code != 2 || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, %q", args, code, stderr)
		}
	}
}

func TestParseAuditTime(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"24h":                  now.Add(-24 * time.Hour),
		"90m":                  now.Add(-90 * time.Minute),
		"7d":                   now.AddDate(0, 0, -7),
		"2026-11-01":           time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-01T10:00:00Z": time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC),
	} {
		got, err := parseAuditTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"yesterday", "-1h", "d", "1.5d", "2026-13-01"} {
		if _, err := parseAuditTime(in, now); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}
