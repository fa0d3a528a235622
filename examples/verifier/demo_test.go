package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDemoShowsOneModelAllowedAndOneRefused(t *testing.T) {
	out, stderr := wantExit(t, 0, t.TempDir(), "demo")
	for _, want := range []string{
		"1. pull hf://acme/tiny-llm@main\n   ALLOWED: signature\n",
		"   signer:       key sha256:",
		"   digest:       sha256:",
		"     model.safetensors        safetensors  sha256:",
		"2. pull hf://acme/tiny-llm-tampered@main\n   REFUSED: digest-mismatch\n",
		"   - digest-mismatch: file model.safetensors, expected sha256:",
		"audit log: the last model blocked was hf://acme/tiny-llm-tampered@main",
		"demo passed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if stderr != "" {
		t.Errorf("demo wrote to stderr: %q", stderr)
	}
}

func TestDemoJSONAndKeep(t *testing.T) {
	out, stderr := wantExit(t, 0, t.TempDir(), "demo", "--json", "--keep")
	var res struct {
		OK      bool
		Allowed struct {
			Repo, Commit, Verification string
		}
		Refused struct {
			Reasons []string
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !res.OK || res.Allowed.Repo != "acme/tiny-llm" || len(res.Allowed.Commit) != 40 || res.Allowed.Verification != "signature" ||
		len(res.Refused.Reasons) != 1 || res.Refused.Reasons[0] != "digest-mismatch" {
		t.Errorf("demo --json: %+v", res)
	}
	kept, ok := strings.CutPrefix(strings.TrimSpace(stderr), "demo files kept in ")
	if !ok {
		t.Fatalf("--keep: stderr %q", stderr)
	}
	defer os.RemoveAll(kept)
	for _, name := range []string{"audit.jsonl", "policy.json", "cache"} {
		if _, err := os.Stat(filepath.Join(kept, name)); err != nil {
			t.Errorf("--keep did not keep %s: %v", name, err)
		}
	}
	wantExit(t, 2, t.TempDir(), "demo", "extra-argument")
}
