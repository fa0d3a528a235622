package main

import (
	"bufio"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/echelongraph/go-modelverify/modelverify"
)

var (
	hubtestOnce sync.Once
	hubtestBin  string
	hubtestErr  error
)

// startHubtestProcess builds the hubtest command and runs it as its own process, serving the
// repositories under reposDir, and returns the Hub's URL and its CDN's host:port.
func startHubtestProcess(t *testing.T, reposDir string) (hubURL, cdnHost string) {
	t.Helper()
	hubtestOnce.Do(func() {
		hubtestBin = filepath.Join(filepath.Dir(verifierBin), "hubtest")
		build := exec.Command("go", "build", "-o", hubtestBin, "../../hub/hubtest/cmd/hubtest")
		out, err := build.CombinedOutput()
		if err != nil {
			hubtestErr = err
			t.Logf("%s", out)
		}
	})
	if hubtestErr != nil {
		t.Fatal("building hubtest:", hubtestErr)
	}
	cmd := exec.Command(hubtestBin, "-repos", reposDir, "-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	sc := bufio.NewScanner(stdout)
	var lines []string
	for len(lines) < 2 && sc.Scan() {
		lines = append(lines, strings.TrimSpace(sc.Text()))
	}
	if len(lines) < 2 {
		t.Fatalf("hubtest printed %q, want its Hub and CDN URLs", lines)
	}
	cdn, err := url.Parse(lines[1])
	if err != nil {
		t.Fatal(err)
	}
	return lines[0], cdn.Host
}

// pullFixture is a hubtest process serving a signed model, a tampered copy and a model of an
// unknown publisher, and a policy that trusts the signing key.
type pullFixture struct {
	hubURL, cdnHost   string
	key               testKey
	policy, auditLog  string
	cacheDir, workDir string
}

func newPullFixture(t *testing.T, edit func(map[string]any)) *pullFixture {
	t.Helper()
	key := newTestKey(t)
	repos := t.TempDir()
	signed := signFiles(t, tinyModel(), key)
	writeModel(t, filepath.Join(repos, "acme", "tiny-llm"), signed)
	writeModel(t, filepath.Join(repos, "acme", "tiny-llm-tampered"), tamper(signed, "model.safetensors"))
	writeModel(t, filepath.Join(repos, "mallory", "tiny-llm"), signed)
	f := &pullFixture{key: key, cacheDir: t.TempDir(), workDir: t.TempDir()}
	f.hubURL, f.cdnHost = startHubtestProcess(t, repos)
	f.auditLog = filepath.Join(t.TempDir(), "audit.jsonl")
	f.policy = writePolicy(t, f.hubURL, f.cdnHost, key, f.auditLog, edit)
	return f
}

func (f *pullFixture) pull(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runVerifier(t, f.workDir, append([]string{"pull", "--policy", f.policy, "--endpoint", f.hubURL, "--cache-dir", f.cacheDir}, args...)...)
}

func TestPullAllowsTheSignedModelAndPrintsItsSnapshot(t *testing.T) {
	f := newPullFixture(t, nil)
	out, stderr, code := f.pull(t, "hf://acme/tiny-llm@main")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	dir := strings.TrimSpace(out)
	if !strings.HasPrefix(dir, f.cacheDir) || !strings.Contains(dir, "models--acme--tiny-llm/snapshots/") {
		t.Fatalf("printed %q, want a snapshot in %s", out, f.cacheDir)
	}
	for name, want := range tinyModel() {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s in the snapshot: %v", name, err)
		}
	}

	// --json gives the evidence; a second pull finds the verified cache.
	out, _, code = f.pull(t, "hf://acme/tiny-llm@main", "--json")
	var ev struct {
		OK           bool              `json:"ok"`
		Commit       string            `json:"commit"`
		Publisher    string            `json:"publisher"`
		Verification string            `json:"verification"`
		Digests      map[string]string `json:"digests"`
		Dir          string            `json:"dir"`
		Signer       struct{ Kind string }
	}
	if err := json.Unmarshal([]byte(out), &ev); err != nil || code != 0 {
		t.Fatalf("--json: exit %d, %q: %v", code, out, err)
	}
	if !ev.OK || len(ev.Commit) != 40 || ev.Publisher != "acme" || ev.Verification != "signature" ||
		len(ev.Digests) != len(tinyModel()) || ev.Dir != dir || ev.Signer.Kind != "key" {
		t.Errorf("evidence %+v", ev)
	}
}

func TestPullDestCopiesOnlyAfterVerification(t *testing.T) {
	f := newPullFixture(t, nil)
	dest := filepath.Join(t.TempDir(), "models")
	out, stderr, code := f.pull(t, "hf://acme/tiny-llm@main", "--dest", dest)
	if code != 0 || strings.TrimSpace(out) != dest {
		t.Fatalf("exit %d, stdout %q: %s", code, out, stderr)
	}
	for name, want := range tinyModel() {
		got, err := os.ReadFile(filepath.Join(dest, filepath.FromSlash(name)))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s in --dest: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dest, "model.sig")); err == nil {
		t.Error("the signature file was exported as a model file")
	}

	refusedDest := filepath.Join(t.TempDir(), "refused")
	_, _, code = f.pull(t, "hf://acme/tiny-llm-tampered@main", "--dest", refusedDest)
	if code != 1 {
		t.Fatalf("tampered model: exit %d, want 1", code)
	}
	if entries, _ := os.ReadDir(refusedDest); len(entries) != 0 {
		t.Errorf("a refused model left %d entries in --dest", len(entries))
	}
}

func TestPullRefusalsExitOneWithTheirReason(t *testing.T) {
	f := newPullFixture(t, func(doc map[string]any) {
		doc["publishers"] = append(doc["publishers"].([]any), map[string]any{
			"name": "pinned", "namespaces": []any{"acme/tiny-llm"}, "requirePinnedRevision": true,
			"identities": firstPublisher(doc)["identities"],
		})
	})
	for _, tc := range []struct {
		name, ref, reason string
		extra             []string
	}{
		{"tampered weights", "hf://acme/tiny-llm-tampered@main", "digest-mismatch", nil},
		{"unknown publisher", "hf://mallory/tiny-llm@main", "publisher-not-allowed", nil},
		{"unpinned revision", "hf://acme/tiny-llm@main", "unpinned-revision", nil},
		{"missing repository", "hf://acme/absent@main", "hub-error", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := f.pull(t, append([]string{tc.ref}, tc.extra...)...)
			// One prefix: not "verifier: refused: modelverify: refused ...".
			if code != 1 || !strings.HasPrefix(stderr, "verifier: refused hf://") || !strings.Contains(stderr, tc.reason) ||
				strings.Count(stderr, "refused") != 1 || strings.Contains(stderr, "modelverify:") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want 1 and one line with %q", code, stderr, tc.reason)
			}
		})
	}
	// An endpoint the policy does not list.
	_, stderr, code := runVerifier(t, f.workDir, "pull", "--policy", f.policy, "--endpoint", "https://huggingface.co",
		"--cache-dir", f.cacheDir, "hf://acme/tiny-llm@main")
	if code != 1 || !strings.Contains(stderr, "endpoint-not-allowed") {
		t.Errorf("unlisted endpoint: exit %d, %q", code, stderr)
	}

	// --json: the refusal for machines on stdout, the line on stderr.
	out, _, code := f.pull(t, "hf://acme/tiny-llm-tampered@main", "--json")
	var res struct {
		OK      bool `json:"ok"`
		Refusal struct {
			Reasons []string `json:"reasons"`
		} `json:"refusal"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 || res.OK {
		t.Fatalf("--json refusal: exit %d, %q: %v", code, out, err)
	}
	if !strings.Contains(out, "digest-mismatch") {
		t.Errorf("--json refusal does not name the reason: %s", out)
	}

	// Every decision is in the audit log, and nothing refused reached the cache.
	recs, err := modelverify.FindAudit(modelverify.ReadAuditFiles(f.auditLog), modelverify.AuditQuery{Decisions: []modelverify.Decision{modelverify.DecisionRefused}})
	if err != nil || len(recs) < 5 {
		t.Errorf("audit log has %d refusals (%v), want at least 5", len(recs), err)
	}
	if entries, _ := os.ReadDir(filepath.Join(f.cacheDir, "models--acme--tiny-llm-tampered", "snapshots")); len(entries) != 0 {
		t.Error("the tampered model has a snapshot in the cache")
	}
}

func TestPullUsageErrorsExitTwo(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pull", "hf://acme/x"}, "--policy is required"},
		{[]string{"pull", "--policy", "p.yaml"}, "want one hf://"},
		{[]string{"pull", "--policy", "p.yaml", "hf://not a repo"}, "reference"},
		{[]string{"pull", "--policy", "/does/not/exist.yaml", "hf://acme/x"}, "exist.yaml"},
	} {
		_, stderr, code := runVerifier(t, dir, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, %q; want 2 and one line with %q", tc.args, code, stderr, tc.want)
		}
	}
}
