package hub_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/hub/hubtest"
)

func TestOfflineModeAnswersFromTheCacheWithoutRequests(t *testing.T) {
	files := modelFiles()
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, files))
	cacheDir := filepath.Join(t.TempDir(), "hub")
	online := newClient(t, ts, hub.WithCacheDir(cacheDir))
	ctx := context.Background()
	ref := hub.Reference{Namespace: "acme", Name: "tiny-model", Revision: "main"}
	commit, err := online.ResolveRevision(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := online.ListTree(ctx, repoID, commit)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := online.Download(ctx, repoID, commit, tree, hub.WithRef("main")); err != nil {
		t.Fatal(err)
	}
	resetRequests(t, ts)

	offline := newClient(t, ts, hub.WithCacheDir(cacheDir), hub.WithEnv(func(k string) string {
		if k == "HF_HUB_OFFLINE" {
			return "1"
		}
		return ""
	}))
	if !offline.Offline() {
		t.Fatal("HF_HUB_OFFLINE=1 did not turn offline mode on")
	}
	if gotCommit, dir, err := offline.Cache().Snapshot(repoID, "main"); err != nil || gotCommit != commit || dir != offline.Cache().SnapshotDir(repoID, commit) {
		t.Errorf("Cache.Snapshot: %s %s %v", gotCommit, dir, err)
	}
	got, err := offline.ResolveRevision(ctx, ref)
	if err != nil || got != commit {
		t.Fatalf("offline resolve: %s, %v", got, err)
	}
	offTree, err := offline.ListTree(ctx, repoID, commit)
	if err != nil || len(offTree) != len(tree) {
		t.Fatalf("offline tree: %d entries, %v", len(offTree), err)
	}
	for i := range tree {
		// huggingface_hub's tree cache does not keep the pointer size.
		if tree[i].LFS != nil {
			tree[i].LFS.PointerSize = 0
		}
		if !reflect.DeepEqual(tree[i], offTree[i]) {
			t.Errorf("offline entry %+v, online %+v", offTree[i], tree[i])
		}
	}
	b, err := offline.ReadFile(ctx, repoID, commit, "config.json", 1<<20)
	if err != nil || string(b) != string(files["config.json"]) {
		t.Errorf("offline ReadFile: %q, %v", b, err)
	}
	var cached atomic.Int32
	snap, err := offline.Download(ctx, repoID, commit, offTree, hub.WithStagedCheck(func(_ context.Context, f hub.StagedFile) error {
		if f.Cached {
			cached.Add(1)
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if int(cached.Load()) != len(files) || len(snap.Files) != len(files) {
		t.Errorf("offline download: %d cached files, %d in snapshot", cached.Load(), len(snap.Files))
	}
	if reqs := settled(t, ts); len(reqs) != 0 {
		t.Fatalf("offline mode made %d requests: %+v", len(reqs), reqs[0])
	}
	// What the cache does not hold is an ErrOffline, still without a request.
	if _, err := offline.ResolveRevision(ctx, hub.Reference{Namespace: "acme", Name: "tiny-model", Revision: "dev"}); !errors.Is(err, hub.ErrOffline) {
		t.Errorf("uncached ref: %v, want ErrOffline", err)
	}
	if _, err := offline.FileMetadata(ctx, repoID, "main", "config.json"); !errors.Is(err, hub.ErrOffline) {
		t.Errorf("offline HEAD: %v, want ErrOffline", err)
	}
	if reqs := settled(t, ts); len(reqs) != 0 {
		t.Fatalf("offline mode made %d requests", len(reqs))
	}
}

func TestStagedCheckRefusalPublishesNothing(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, modelFiles()))
	c := newClient(t, ts)
	ctx := context.Background()
	commit, _ := ts.Resolve(repoID, "main")
	tree, _ := c.ListTree(ctx, repoID, commit)
	errUnsafe := errors.New("unsafe pickle")
	var mu sync.Mutex
	seen := map[string]hub.StagedFile{}
	_, err := c.Download(ctx, repoID, commit, tree, hub.WithRef("main"), hub.WithStagedCheck(func(_ context.Context, f hub.StagedFile) error {
		mu.Lock()
		seen[f.Path] = f
		mu.Unlock()
		if _, err := os.Stat(f.LocalPath); err != nil {
			return fmt.Errorf("staged file not readable: %w", err)
		}
		if f.Path == "onnx/deep/model.onnx" {
			return errUnsafe
		}
		return nil
	}))
	if !errors.Is(err, hub.ErrStagedCheck) || !errors.Is(err, errUnsafe) {
		t.Fatalf("error %v, want ErrStagedCheck wrapping the hook's error", err)
	}
	var fe *hub.FileError
	if !errors.As(err, &fe) || fe.Path != "onnx/deep/model.onnx" {
		t.Fatalf("error %v does not name the refused file", err)
	}
	assertCleanFailure(t, c, err, nil, "")
	for p, f := range seen {
		if f.SHA256 == "" || f.Size <= 0 || f.Cached {
			t.Errorf("%s: staged file %+v", p, f)
		}
		if (f.Entry.LFS == nil) != (f.GitSHA1 != "") {
			t.Errorf("%s: git sha1 %q for LFS=%v", p, f.GitSHA1, f.Entry.LFS != nil)
		}
		if f.Entry.LFS != nil && f.SHA256.Encoded() != f.Entry.LFS.SHA256 {
			t.Errorf("%s: sha256 %s, want %s", p, f.SHA256, f.Entry.LFS.SHA256)
		}
	}
}

func TestCorruptCachedBlobIsReplaced(t *testing.T) {
	files := modelFiles()
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, files))
	var states []hub.ProgressState
	var mu sync.Mutex
	c := newClient(t, ts, hub.WithProgress(func(p hub.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if p.Path == "model.safetensors" {
			states = append(states, p.State)
		}
	}))
	ctx := context.Background()
	commit, _ := ts.Resolve(repoID, "main")
	tree, _ := c.ListTree(ctx, repoID, commit)
	if _, err := c.Download(ctx, repoID, commit, tree); err != nil {
		t.Fatal(err)
	}
	blob := c.Cache().BlobPath(repoID, sha256Hex(files["model.safetensors"]))
	if err := os.WriteFile(blob, []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	states = nil
	snap, err := c.Download(ctx, repoID, commit, tree)
	assertComplete(t, snap, err, files)
	want := []hub.ProgressState{hub.ProgressCacheCorrupt, hub.ProgressStarted}
	if len(states) < 2 || states[0] != want[0] || states[1] != want[1] || states[len(states)-1] != hub.ProgressVerified {
		t.Errorf("progress %v, want cache-corrupt, started, ..., verified", states)
	}
}

// TestHelperProcessDownload is not a test: TestTwoProcessesShareTheCache runs it in child processes.
func TestHelperProcessDownload(t *testing.T) {
	endpoint, cdn, cacheDir := os.Getenv("HUBTEST_ENDPOINT"), os.Getenv("HUBTEST_CDN"), os.Getenv("HUBTEST_CACHE")
	if endpoint == "" {
		t.Skip("helper for TestTwoProcessesShareTheCache")
	}
	c, err := hub.NewClient(hub.WithEnv(func(string) string { return "" }), hub.WithEndpoint(endpoint),
		hub.WithCacheDir(cacheDir), hub.WithAllowedRedirectHosts(cdn))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	commit, err := c.ResolveRevision(ctx, hub.Reference{Namespace: "acme", Name: "tiny-model"})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := c.ListTree(ctx, repoID, commit)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Download(ctx, repoID, commit, tree, hub.WithRef("main")); err != nil {
		t.Fatal(err)
	}
}

func TestTwoProcessesShareTheCache(t *testing.T) {
	files := modelFiles()
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, files))
	cacheDir := filepath.Join(t.TempDir(), "hub")
	var wg sync.WaitGroup
	outs := make([][]byte, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessDownload$", "-test.count=1")
			cmd.Env = append(os.Environ(), "HUBTEST_ENDPOINT="+ts.URL, "HUBTEST_CDN="+ts.CDNHost(), "HUBTEST_CACHE="+cacheDir)
			outs[i], errs[i] = cmd.CombinedOutput()
		}()
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("process %d: %v\n%s", i, errs[i], outs[i])
		}
	}
	c := newClient(t, ts, hub.WithCacheDir(cacheDir))
	commit, _ := ts.Resolve(repoID, "main")
	tree, _ := c.ListTree(context.Background(), repoID, commit)
	var want []string
	for _, e := range tree {
		want = append(want, e.BlobName())
	}
	sort.Strings(want)
	want = compact(want)
	if got := listDir(t, filepath.Join(c.Cache().RepoDir(repoID), "blobs")); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("blobs %v, want exactly %v", got, want)
	}
	assertNoStaging(t, cacheDir)
	// The blob locks make the second process wait and find the blobs published: each LFS blob
	// crossed the wire once.
	perBlob := map[string]int{}
	for _, r := range settled(t, ts) {
		if r.CDN {
			perBlob[r.Path]++
		}
	}
	for p, n := range perBlob {
		if n != 1 {
			t.Errorf("%s downloaded %d times", p, n)
		}
	}
	snapDir := c.Cache().SnapshotDir(repoID, commit)
	for p, content := range files {
		got, err := os.ReadFile(filepath.Join(snapDir, p))
		if err != nil || string(got) != string(content) {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func TestCacheLockExcludesASecondHolder(t *testing.T) {
	cache := hub.NewCache(t.TempDir())
	blob := strings.Repeat("ab", 32)
	unlock, err := cache.Lock(context.Background(), repoID, blob)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a second holder must wait, so with a dead context it fails
	if _, err := cache.Lock(ctx, repoID, blob); !errors.Is(err, context.Canceled) {
		t.Fatalf("second Lock: %v, want context.Canceled while the first holds it", err)
	}
	unlock()
	unlock2, err := cache.Lock(context.Background(), repoID, blob)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock2()
	if _, err := os.Stat(cache.LockPath(repoID, blob)); err != nil {
		t.Error(err)
	}
	if _, err := cache.Lock(context.Background(), "../x/y", blob); err == nil {
		t.Error("Lock accepted an invalid repo id")
	}
}

func TestStagedSetCheckSeesEveryFileBeforePublishingAndCanRefuse(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, modelFiles()))
	c := newClient(t, ts)
	ctx := context.Background()
	commit, _ := ts.Resolve(repoID, "main")
	tree, _ := c.ListTree(ctx, repoID, commit)
	errSpan := errors.New("index names a tensor its shard lacks")
	var got []hub.StagedFile
	_, err := c.Download(ctx, repoID, commit, tree, hub.WithRef("main"),
		hub.WithStagedSetCheck(func(_ context.Context, files []hub.StagedFile) error {
			got = files
			for _, f := range files {
				if _, err := os.Stat(f.LocalPath); err != nil {
					return fmt.Errorf("%s not on disk: %w", f.Path, err)
				}
			}
			if _, err := os.Stat(c.Cache().SnapshotDir(repoID, commit)); !os.IsNotExist(err) {
				return errors.New("the snapshot exists before the set check ran")
			}
			return errSpan
		}))
	if !errors.Is(err, hub.ErrStagedCheck) || !errors.Is(err, errSpan) {
		t.Fatalf("error %v, want ErrStagedCheck wrapping the hook's error", err)
	}
	if len(got) != len(tree) {
		t.Fatalf("the set check saw %d files, want %d", len(got), len(tree))
	}
	for i := range tree {
		if got[i].Path != tree[i].Path {
			t.Fatalf("file %d is %s, want %s (request order)", i, got[i].Path, tree[i].Path)
		}
	}
	assertCleanFailure(t, c, err, nil, "")
}

func TestDownloadSweepsStagingFilesACrashedDownloadLeft(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, modelFiles()))
	c := newClient(t, ts)
	ctx := context.Background()
	commit, _ := ts.Resolve(repoID, "main")
	tree, _ := c.ListTree(ctx, repoID, commit)
	var lfs hub.TreeEntry
	for _, e := range tree {
		if e.LFS != nil {
			lfs = e
			break
		}
	}
	if lfs.LFS == nil {
		t.Fatal("the fixture has no LFS file")
	}
	// What a killed process leaves: our staging name and huggingface_hub's.
	blob := c.Cache().BlobPath(repoID, lfs.BlobName())
	os.MkdirAll(filepath.Dir(blob), 0o755)
	for _, p := range []string{blob + ".3f2a.incomplete", blob + ".incomplete"} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Download(ctx, repoID, commit, tree); err != nil {
		t.Fatal(err)
	}
	assertNoStaging(t, c.Cache().Dir)
}
