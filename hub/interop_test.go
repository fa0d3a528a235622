package hub_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/hub/hubtest"
)

// pythonWithHuggingfaceHub finds a python3 that can import huggingface_hub.
func pythonWithHuggingfaceHub() string {
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if p, err := exec.LookPath(py); err == nil && exec.Command(p, "-c", "import huggingface_hub").Run() == nil {
			return p
		}
	}
	return ""
}

// TestPythonHuggingfaceHubReadsOurCache is the real proof that the layout is huggingface_hub's:
// Python resolves main and every file from a cache this library wrote, without the network.
// The layout itself (blob names, exact symlink targets, refs, locks) is asserted against the
// published spec by TestDownloadPublishesVerifiedSnapshotInHubCacheLayout.
func TestPythonHuggingfaceHubReadsOurCache(t *testing.T) {
	py := pythonWithHuggingfaceHub()
	if py == "" {
		t.Skip("no python3 with huggingface_hub here (Debian bookworm does not package it and PyPI is unreachable); " +
			"the layout is asserted against the spec by TestDownloadPublishesVerifiedSnapshotInHubCacheLayout")
	}
	files := modelFiles()
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, files))
	c := newClient(t, ts)
	ctx := context.Background()
	commit, _ := ts.Resolve(repoID, "main")
	tree, err := c.ListTree(ctx, repoID, commit)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := c.Download(ctx, repoID, commit, tree, hub.WithRef("main"))
	if err != nil {
		t.Fatal(err)
	}
	script := `
import sys
from huggingface_hub import snapshot_download, try_to_load_from_cache
cache, repo = sys.argv[1], sys.argv[2]
print(snapshot_download(repo, cache_dir=cache, local_files_only=True))
for f in sys.argv[3:]:
    p = try_to_load_from_cache(repo, f, cache_dir=cache)
    if not isinstance(p, str):
        sys.exit("not found in cache: " + f)
    print(p)
`
	args := []string{"-c", script, c.Cache().Dir, repoID}
	for p := range files {
		args = append(args, p)
	}
	cmd := exec.Command(py, args...)
	cmd.Env = append(os.Environ(), "HF_HUB_OFFLINE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if lines[0] != snap.Dir {
		t.Errorf("snapshot_download returned %s, want %s", lines[0], snap.Dir)
	}
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, snap.Dir+string(filepath.Separator)) {
			t.Errorf("try_to_load_from_cache returned %s", l)
		}
	}
}
