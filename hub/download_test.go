package hub_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/hub/hubtest"
)

func TestDownloadPublishesVerifiedSnapshotInHubCacheLayout(t *testing.T) {
	files := modelFiles()
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, files))
	c := newClient(t, ts)
	ctx := context.Background()

	ref, err := hub.ParseReference("hf://" + repoID + "@main")
	if err != nil {
		t.Fatal(err)
	}
	commit, err := c.ResolveRevision(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := ts.Resolve(repoID, "main"); commit != want {
		t.Fatalf("commit %s, want %s", commit, want)
	}
	tree, err := c.ListTree(ctx, repoID, commit)
	if err != nil {
		t.Fatal(err)
	}
	if len(tree) != len(files) {
		t.Fatalf("tree has %d files, want %d", len(tree), len(files))
	}
	snap, err := c.Download(ctx, repoID, commit, tree, hub.WithRef("main"))
	if err != nil {
		t.Fatal(err)
	}

	cache := c.Cache()
	repoDir := cache.RepoDir(repoID)
	if filepath.Base(repoDir) != "models--acme--tiny-model" {
		t.Errorf("repo folder %s", repoDir)
	}
	if snap.Dir != filepath.Join(repoDir, "snapshots", commit) {
		t.Errorf("snapshot dir %s", snap.Dir)
	}
	var wantBlobs []string
	for _, e := range tree {
		content := files[e.Path]
		link := filepath.Join(snap.Dir, filepath.FromSlash(e.Path))
		target, err := os.Readlink(link)
		if err != nil {
			t.Fatalf("%s: %v", e.Path, err)
		}
		blob := e.OID
		if e.LFS != nil {
			blob = sha256Hex(content)
			if e.LFS.SHA256 != blob {
				t.Errorf("%s: tree lfs sha256 %s, want %s", e.Path, e.LFS.SHA256, blob)
			}
		}
		wantTarget := strings.Repeat("../", 2+strings.Count(e.Path, "/")) + "blobs/" + blob
		if target != wantTarget {
			t.Errorf("%s links to %s, want %s", e.Path, target, wantTarget)
		}
		got, err := os.ReadFile(link)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(content) {
			t.Errorf("%s: content differs", e.Path)
		}
		wantBlobs = append(wantBlobs, blob)
	}
	// config.json and its .bak copy share one blob.
	sort.Strings(wantBlobs)
	wantBlobs = compact(wantBlobs)
	if got := listDir(t, filepath.Join(repoDir, "blobs")); strings.Join(got, ",") != strings.Join(wantBlobs, ",") {
		t.Errorf("blobs %v, want %v", got, wantBlobs)
	}
	ref40, err := os.ReadFile(filepath.Join(repoDir, "refs", "main"))
	if err != nil || string(ref40) != commit {
		t.Errorf("refs/main = %q (%v), want exactly %q", ref40, err, commit)
	}
	if _, err := os.Stat(filepath.Join(cache.Dir, "CACHEDIR.TAG")); err != nil {
		t.Error(err)
	}
	for _, b := range wantBlobs {
		if _, err := os.Stat(filepath.Join(cache.Dir, ".locks", "models--acme--tiny-model", b+".lock")); err != nil {
			t.Errorf("lock file for %s: %v", b, err)
		}
	}
	if _, err := os.Stat(filepath.Join(repoDir, "trees", commit+".json")); err != nil {
		t.Errorf("tree cache: %v", err)
	}
	assertNoStaging(t, cache.Dir)
	for _, r := range settled(t, ts) {
		if r.CDN && r.Authorization != "" {
			t.Errorf("CDN got Authorization")
		}
	}
}

func compact(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
