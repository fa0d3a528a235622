package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/hub/hubtest"
)

func downloadArgs(ts *hubtest.TestServer, cacheDir string, extra ...string) []string {
	return append([]string{"download", "--endpoint", ts.URL, "--cache-dir", cacheDir, "--allow-redirect-host", ts.CDNHost()}, extra...)
}

func snapshotFiles(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(names)
	return names
}

func TestDownloadFetchesEveryFileIntoTheCache(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel("acme/tiny-llm", tinyModel()))
	cache := t.TempDir()
	out, _ := wantExit(t, 0, t.TempDir(), downloadArgs(ts, cache, "hf://acme/tiny-llm")...)
	dir := strings.TrimSpace(out)
	commit, _ := ts.Resolve("acme/tiny-llm", "main")
	if want := filepath.Join(cache, "models--acme--tiny-llm", "snapshots", commit); dir != want {
		t.Fatalf("printed %q, want %q", dir, want)
	}
	for name, want := range tinyModel() {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// huggingface_hub's layout: refs/main names the commit.
	if ref, _ := os.ReadFile(filepath.Join(cache, "models--acme--tiny-llm", "refs", "main")); string(ref) != commit {
		t.Errorf("refs/main = %q, want %q", ref, commit)
	}
}

func TestDownloadIncludeSelectsFiles(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel("acme/tiny-llm", tinyModel()))
	cache := t.TempDir()
	out, _ := wantExit(t, 0, t.TempDir(), downloadArgs(ts, cache, "hf://acme/tiny-llm@main", "--include", "*.json", "--json")...)
	var res struct {
		Commit   string `json:"commit"`
		Snapshot string `json:"snapshot"`
		Files    []struct {
			Path   string `json:"path"`
			Digest string `json:"digest"`
		} `json:"files"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err, out)
	}
	got := snapshotFiles(t, res.Snapshot)
	want := []string{"config.json", "nested/extra.json", "nested/weights.json", "tokenizer.json"}
	if strings.Join(got, ",") != strings.Join(want, ",") || len(res.Files) != len(want) {
		t.Errorf("--include *.json fetched %v (json lists %d)", got, len(res.Files))
	}
	for _, f := range res.Files {
		if !strings.HasPrefix(f.Digest, "git-sha1:") && !strings.HasPrefix(f.Digest, "sha256:") {
			t.Errorf("%s: digest %q", f.Path, f.Digest)
		}
	}

	_, stderr := wantExit(t, 2, t.TempDir(), downloadArgs(ts, cache, "hf://acme/tiny-llm", "--include", "*.onnx")...)
	if !strings.Contains(stderr, "no file") {
		t.Errorf("no match: %q", stderr)
	}
	_, stderr = wantExit(t, 2, t.TempDir(), downloadArgs(ts, cache, "hf://acme/tiny-llm", "--include", "[")...)
	if !strings.Contains(stderr, "--include") {
		t.Errorf("bad glob: %q", stderr)
	}
}

func TestDownloadRefusesBytesThatDoNotMatchTheHubsDigest(t *testing.T) {
	// The CDN serves the weights with one byte changed, every time.
	ts := hubtest.NewServer(t, hubtest.WithModel("acme/tiny-llm", tinyModel()),
		hubtest.WithFault(hubtest.Fault{Kind: hubtest.FaultCorrupt, File: "model.safetensors"}))
	cache := t.TempDir()
	_, stderr := wantExit(t, 1, t.TempDir(), downloadArgs(ts, cache, "hf://acme/tiny-llm")...)
	if !strings.Contains(stderr, "model.safetensors") || !strings.Contains(stderr, "sha256 mismatch") {
		t.Errorf("corrupt download: %q", stderr)
	}
	if names := snapshotFiles(t, filepath.Join(cache, "models--acme--tiny-llm", "snapshots")); len(names) != 0 {
		t.Errorf("a failed download published %v", names)
	}
}

func TestDownloadRefusesARedirectToAnUnapprovedHost(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel("acme/tiny-llm", tinyModel()))
	// Without --allow-redirect-host the CDN's host is not approved for a non-Hub endpoint.
	_, stderr := wantExit(t, 1, t.TempDir(), "download", "--endpoint", ts.URL, "--cache-dir", t.TempDir(), "hf://acme/tiny-llm")
	if !strings.Contains(stderr, "redirect") {
		t.Errorf("unapproved redirect: %q", stderr)
	}
}

func TestDownloadReadsTheHubFromTheEnvironment(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel("acme/tiny-llm", tinyModel()))
	cache := t.TempDir()
	out, stderr, code := runVerifierEnv(t, t.TempDir(), testEnv(t, "HF_ENDPOINT="+ts.URL, "HF_HUB_CACHE="+cache),
		"download", "hf://acme/tiny-llm", "--include", "config.json", "--allow-redirect-host", ts.CDNHost())
	if code != 0 || !strings.HasPrefix(out, cache) {
		t.Fatalf("exit %d, %q: %s", code, out, stderr)
	}
	// A token the Hub does not know is refused: HF_TOKEN reached it.
	_, stderr, code = runVerifierEnv(t, t.TempDir(), testEnv(t, "HF_ENDPOINT="+ts.URL, "HF_HUB_CACHE="+cache, "HF_TOKEN=hf_unknown"),
		"download", "hf://acme/tiny-llm@main", "--include", "tokenizer.json")
	if code != 2 || !strings.Contains(stderr, "401") && !strings.Contains(strings.ToLower(stderr), "unauthorized") {
		t.Errorf("unknown token: exit %d, %q", code, stderr)
	}
}
