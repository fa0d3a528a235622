package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// explainPolicy has one publisher per rule explain must describe.
func explainPolicy(t *testing.T) string {
	t.Helper()
	key := newTestKey(t)
	doc := `apiVersion: modelverify.echelongraph.io/v1alpha1
kind: ModelPolicy
endpoints:
  - name: hf
    url: https://huggingface.co
    cdnHosts: [cdn-lfs.hf.co]
  - name: internal
    url: https://models.internal.example.com
publishers:
  - name: acme-ml
    namespaces: [acme-ml, acme-labs/Acme-*]
    endpoints: [hf]
    requirePinnedRevision: true
    requireVerifiedOrg: true
    identities:
      - sigstore:
          identity: https://github.com/acme-ml/models/.github/workflows/release.yml@refs/heads/main
          issuer: https://token.actions.githubusercontent.com
  - name: acme-special
    namespaces: [acme-labs/Acme-Special]
    identities:
      - publicKey:
          path: ` + key.pubPath + `
  - name: platform
    namespaces: [platform-team]
    endpoints: [internal]
    identities:
      - publicKey:
          path: ` + key.pubPath + `
  - name: google-bert
    namespaces: [google-bert/bert-base-uncased]
    requireSignature: false
content:
  maxFileSize: 50GB
`
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, []byte(doc))
	return path
}

// policy check runs the gate's own start-up checks: a policy whose audit log would land in a
// directory that does not exist is not "valid", and the shipped example is.
func TestPolicyCheckRunsTheGatesStartUpChecks(t *testing.T) {
	p := explainPolicy(t)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "no-such-dir", "audit.jsonl")
	writeFile(t, p, append(data, []byte("audit: {path: "+missing+"}\n")...))
	out, _ := wantExit(t, 1, t.TempDir(), "policy", "check", p)
	if !strings.Contains(out, "invalid, 1 problem") || !strings.Contains(out, "audit.path: the directory "+filepath.Dir(missing)+" does not exist") {
		t.Errorf("missing audit directory:\n%s", out)
	}
	// With a typo too, both come in one round.
	writeFile(t, p, append(data, []byte("audit: {path: "+missing+", slg: true}\n")...))
	out, _ = wantExit(t, 1, t.TempDir(), "policy", "check", p)
	if !strings.Contains(out, "invalid, 2 problems") || !strings.Contains(out, `audit.slg: unknown field (did you mean "slog"?)`) ||
		!strings.Contains(out, "audit.path: the directory") {
		t.Errorf("typo and missing audit directory:\n%s", out)
	}
	example, _ := filepath.Abs(filepath.Join("..", "policy.yaml"))
	out, _ = wantExit(t, 0, t.TempDir(), "policy", "check", example)
	if !strings.Contains(out, ": valid:") {
		t.Errorf("the shipped example:\n%s", out)
	}
}

func TestPolicyCheck(t *testing.T) {
	p := explainPolicy(t)
	out, _ := wantExit(t, 0, t.TempDir(), "policy", "check", p)
	if out != p+": valid: mode enforce, 2 endpoints, 4 publishers\n" {
		t.Errorf("check printed %q", out)
	}
	wantExit(t, 0, t.TempDir(), "policy", "check", "--policy", p)

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, bad, []byte("apiVersion: modelverify.echelongraph.io/v1alpha1\nkind: ModelPolicy\nmode: permissive\nendpoints: []\npublishers:\n  - name: x\n    namespaces: ['*']\n"))
	out, _ = wantExit(t, 1, t.TempDir(), "policy", "check", bad)
	if !strings.Contains(out, "invalid, 4 problems") || !strings.Contains(out, "mode:") || !strings.Contains(out, "publishers[0].namespaces[0]") {
		t.Errorf("invalid policy:\n%s", out)
	}
	out, _ = wantExit(t, 1, t.TempDir(), "policy", "check", bad, "--json")
	var res struct {
		Valid    bool
		Problems []struct{ Field, Message string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Valid || len(res.Problems) != 4 {
		t.Errorf("--json: %q (%v)", out, err)
	}
	_, stderr := wantExit(t, 2, t.TempDir(), "policy", "check", "/does/not/exist.yaml")
	if strings.Count(stderr, "\n") != 1 {
		t.Errorf("unreadable policy: %q", stderr)
	}
}

func TestPolicyShowListsTheApprovedRegistriesAndPublishers(t *testing.T) {
	p := explainPolicy(t)
	out, _ := wantExit(t, 0, t.TempDir(), "policy", "show", p)
	for _, want := range []string{
		"hf         https://huggingface.co\n",
		"redirects allowed to: cdn-lfs.hf.co",
		"internal   https://models.internal.example.com",
		"  acme-ml\n    namespaces:      acme-ml, acme-labs/Acme-*\n    endpoints:       hf\n",
		"signature:       required (model.sig), by any of:\n      - sigstore identity https://github.com/acme-ml/",
		"pinned revision: required",
		"signature:       not required",
		"largest file: 50GB",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	out, _ = wantExit(t, 0, t.TempDir(), "policy", "show", p, "--json")
	var doc struct {
		Endpoints  []struct{ URL string }
		Publishers []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Endpoints) != 2 || len(doc.Publishers) != 4 {
		t.Errorf("show --json: %v\n%s", err, out)
	}
}

func TestPolicyExplainStepByStep(t *testing.T) {
	p := explainPolicy(t)
	commit := strings.Repeat("ab", 20)
	for _, tc := range []struct {
		ref      string
		code     int
		contains []string
	}{
		{"hf://acme-ml/llm@" + commit, 0, []string{
			"endpoint               pass    https://huggingface.co (the default) is an approved endpoint (\"hf\")",
			"publisher              pass    acme-ml claims acme-ml/llm through namespace \"acme-ml\"",
			"pinned revision        pass    required, and " + commit + " is a commit",
			"verified organisation  online  required",
			"signature              online  required: model.sig at the commit must verify, signed by any of: sigstore identity https://github.com/acme-ml/",
			"decision: proceeds to the online checks",
		}},
		{"hf://acme-ml/llm@main", 1, []string{"pinned revision        refuse  required, and \"main\" is not a 40-hex commit", "decision: refused by the policy alone: unpinned-revision"}},
		{"hf://acme-labs/Acme-7B@" + commit, 0, []string{"through namespace \"acme-labs/Acme-*\""}},
		// The exact namespace of another publisher wins over acme-ml's glob.
		{"hf://acme-labs/Acme-Special", 0, []string{"acme-special claims acme-labs/Acme-Special through namespace \"acme-labs/Acme-Special\""}},
		{"hf://mallory/llm", 1, []string{"publisher              refuse", "publisher-not-allowed"}},
		{"hf://platform-team/embedder", 1, []string{"publisher endpoint     refuse  platform may be pulled only from internal", "endpoint-not-allowed"}},
		{"hf://google-bert/bert-base-uncased", 0, []string{"signature              pass    not required"}},
	} {
		out, stderr, code := runVerifier(t, t.TempDir(), "policy", "explain", p, tc.ref)
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d\n%s%s", tc.ref, code, tc.code, out, stderr)
		}
		for _, want := range tc.contains {
			if !strings.Contains(out, want) {
				t.Errorf("%s: explanation lacks %q:\n%s", tc.ref, want, out)
			}
		}
	}

	// An endpoint from the environment that the policy does not list.
	out, _, code := runVerifierEnv(t, t.TempDir(), testEnv(t, "HF_ENDPOINT=https://mirror.example.com"), "policy", "explain", p, "hf://acme-ml/llm@"+commit, "--json")
	var res struct {
		Refused bool
		Steps   []explainStep
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 || !res.Refused || res.Steps[1].Result != "refuse" ||
		res.Steps[1].Reason != "endpoint-not-allowed" || !strings.Contains(res.Steps[1].Detail, "$HF_ENDPOINT") {
		t.Errorf("explain --json with HF_ENDPOINT: exit %d, %v\n%s", code, err, out)
	}
}

// explain --online answers a question and loads nothing: its table shows the online results, and
// it leaves no audit record and nothing in the user's cache or temporary directory.
func TestPolicyExplainOnlineRunsTheVerificationWithoutSideEffects(t *testing.T) {
	f := newPullFixture(t, nil)
	tmp := t.TempDir()
	env := append(testEnv(t, "HF_HUB_CACHE="+f.cacheDir), "TMPDIR="+tmp)
	out, stderr, code := runVerifierEnv(t, f.workDir, env, "policy", "explain", f.policy, "hf://acme/tiny-llm@main", "--online",
		"--endpoint", f.hubURL)
	if code != 0 || !strings.Contains(out, "online: allowed") || !strings.Contains(out, "decision:     allowed (signature)") {
		t.Errorf("exit %d:\n%s%s", code, out, stderr)
	}
	if !regexp.MustCompile(`signature +pass`).MatchString(out) || !regexp.MustCompile(`manifest +pass`).MatchString(out) {
		t.Errorf("the online table does not show the online checks passed:\n%s", out)
	}

	out, stderr, code = runVerifierEnv(t, f.workDir, env, "policy", "explain", f.policy, "hf://acme/tiny-llm-tampered@main", "--online",
		"--endpoint", f.hubURL, "--json")
	var res struct {
		Refused bool
		Steps   []explainStep
		Refusal struct{ Reasons []string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 || !res.Refused || !slices.Equal(res.Refusal.Reasons, []string{"digest-mismatch"}) {
		t.Fatalf("tampered, online: exit %d, %v, %q\n%s", code, err, stderr, out)
	}
	results := map[string]explainStep{}
	for _, s := range res.Steps {
		results[s.Step] = s
	}
	if s := results["manifest"]; s.Result != "refuse" || s.Reason != "digest-mismatch" {
		t.Errorf("manifest step %+v, want refused as digest-mismatch", s)
	}
	if s := results["signature"]; s.Result != "pass" {
		t.Errorf("signature step %+v, want pass", s)
	}
	if s := results["decision"]; !strings.Contains(s.Detail, "model.safetensors") {
		t.Errorf("decision step %+v does not name the file", s)
	}

	for what, dir := range map[string]string{"the user's cache": f.cacheDir, "the temporary directory": tmp} {
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("explain --online left %d entries in %s (%s)", len(entries), what, entries[0].Name())
		}
	}
	if _, err := os.Stat(f.auditLog); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("explain --online wrote the audit log: %v", err)
	}
	_, stderr, code = runVerifier(t, f.workDir, "policy", "explain", f.policy, "hf://acme/tiny-llm@main", "--online", "--cache-dir", f.cacheDir)
	if code != 2 || !strings.Contains(stderr, "temporary cache") {
		t.Errorf("--cache-dir: exit %d, %q", code, stderr)
	}
}

func TestPolicyUsageErrorsExitTwo(t *testing.T) {
	p := explainPolicy(t)
	for _, args := range [][]string{
		{"policy"},
		{"policy", "frobnicate", p},
		{"policy", "show"},
		{"policy", "explain", p},
		{"policy", "check", p, "--online"},
		{"policy", "explain", p, "hf://not a ref"},
	} {
		_, stderr, code := runVerifier(t, t.TempDir(), args...)
		if code != 2 || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, %q", args, code, stderr)
		}
	}
}
