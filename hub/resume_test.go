package hub_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/hub/hubtest"
)

// treeOf resolves main and lists it.
func treeOf(t *testing.T, c *hub.Client, ts *hubtest.TestServer) (string, []hub.TreeEntry) {
	t.Helper()
	commit, _ := ts.Resolve(repoID, "main")
	tree, err := c.ListTree(context.Background(), repoID, commit)
	if err != nil {
		t.Fatal(err)
	}
	return commit, tree
}

func entry(t *testing.T, tree []hub.TreeEntry, path string) hub.TreeEntry {
	t.Helper()
	for _, e := range tree {
		if e.Path == path {
			return e
		}
	}
	t.Fatalf("no %s in the tree", path)
	return hub.TreeEntry{}
}

func TestInterruptedTransferResumesFromItsIncompleteFile(t *testing.T) {
	files := faultRepo()
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, files))
	c := newClient(t, ts, hub.WithChunkSize(0))
	commit, tree := treeOf(t, c, ts)
	e := entry(t, tree, "model.safetensors")
	// What a killed download (or huggingface_hub) leaves: the first bytes, in order.
	incomplete := c.Cache().BlobPath(repoID, e.BlobName()) + ".incomplete"
	os.MkdirAll(filepath.Dir(incomplete), 0o755)
	if err := os.WriteFile(incomplete, files["model.safetensors"][:100_000], 0o600); err != nil {
		t.Fatal(err)
	}
	snap, err := c.Download(context.Background(), repoID, commit, tree)
	assertComplete(t, snap, err, files)
	assertNoStaging(t, c.Cache().Dir)
	if r := rangesFor(t, ts, "model.safetensors"); len(r) != 1 || r[0] != "bytes=100000-" {
		t.Errorf("ranges %v, want the rest only: [bytes=100000-]", r)
	}
}

func TestParallelTransferResumesUpToItsPrefixMarker(t *testing.T) {
	files := faultRepo()
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, files))
	c := newClient(t, ts, hub.WithChunkSize(256<<10))
	commit, tree := treeOf(t, c, ts)
	e := entry(t, tree, "big.bin")
	incomplete := c.Cache().BlobPath(repoID, e.BlobName()) + ".incomplete"
	os.MkdirAll(filepath.Dir(incomplete), 0o755)
	// Two ranges were complete in order; a third was half written, with a hole before it.
	partial := bytes.Clone(bigFile[:768<<10])
	clear(partial[512<<10 : 600<<10])
	if err := os.WriteFile(incomplete, partial, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(incomplete+".prefix", []byte(fmt.Sprintf("%020d\n", 512<<10)), 0o600); err != nil {
		t.Fatal(err)
	}
	snap, err := c.Download(context.Background(), repoID, commit, tree)
	assertComplete(t, snap, err, files)
	assertNoStaging(t, c.Cache().Dir)
	r := rangesFor(t, ts, "big.bin")
	slices.Sort(r)
	if strings.Join(r, ",") != "bytes=524288-786431,bytes=786432-1048575" {
		t.Errorf("ranges %v, want the two ranges after the marker only", r)
	}
}

func TestWrongBytesInAnIncompleteFileAreFetchedAgain(t *testing.T) {
	files := faultRepo()
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, files))
	c := newClient(t, ts, hub.WithChunkSize(0))
	commit, tree := treeOf(t, c, ts)
	e := entry(t, tree, "model.safetensors")
	incomplete := c.Cache().BlobPath(repoID, e.BlobName()) + ".incomplete"
	os.MkdirAll(filepath.Dir(incomplete), 0o755)
	if err := os.WriteFile(incomplete, bytes.Repeat([]byte("X"), 50_000), 0o600); err != nil {
		t.Fatal(err)
	}
	snap, err := c.Download(context.Background(), repoID, commit, tree)
	assertComplete(t, snap, err, files)
	assertNoStaging(t, c.Cache().Dir)
	if r := rangesFor(t, ts, "model.safetensors"); len(r) != 1 || r[0] != "bytes=50000-" {
		t.Errorf("ranges %v, want one resume, then a whole fetch", r)
	}
}

func TestLeftoversOfACrashedPublicationAreCleaned(t *testing.T) {
	files := faultRepo()
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, files))
	c := newClient(t, ts)
	commit, tree := treeOf(t, c, ts)
	ctx := context.Background()
	if _, err := c.Download(ctx, repoID, commit, tree); err != nil {
		t.Fatal(err)
	}
	snapDir := c.Cache().SnapshotDir(repoID, commit)
	cfg := entry(t, tree, "config.json")
	// An earlier version killed while linking left config.json.{hex}.tmp; this one may leave a
	// .modelverify-link-* link or a snapshot being built aside.
	if err := os.Symlink("../../blobs/"+cfg.BlobName(), filepath.Join(snapDir, "config.json.1a2b3c4d.tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../blobs/"+cfg.BlobName(), filepath.Join(snapDir, ".modelverify-link-0badcafe")); err != nil {
		t.Fatal(err)
	}
	aside := filepath.Join(c.Cache().RepoDir(repoID), ".modelverify-snapshot-"+commit+"-deadbeef")
	os.MkdirAll(aside, 0o755)
	// A dead download's staging folder, its lock free.
	staging := filepath.Join(c.Cache().RepoDir(repoID), "blobs", ".modelverify-staging-0dead0")
	os.MkdirAll(staging, 0o700)
	os.WriteFile(filepath.Join(staging, cfg.BlobName()), files["config.json"], 0o644)
	// Not ours: a regular file with a similar name stays.
	notOurs := filepath.Join(snapDir, "notes.1a2b3c4d.tmp")
	os.WriteFile(notOurs, []byte("mine"), 0o644)
	snap, err := c.Download(ctx, repoID, commit, tree)
	assertComplete(t, snap, err, files)
	os.Remove(notOurs)
	assertNoStaging(t, c.Cache().Dir)
	if got := listDir(t, snapDir); len(got) != len(files) {
		t.Errorf("snapshot holds %v, want only the model's files", got)
	}
}

func TestAHalfBuiltSnapshotIsReplacedWhole(t *testing.T) {
	files := faultRepo()
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, files))
	c := newClient(t, ts)
	commit, tree := treeOf(t, c, ts)
	// A publication killed while building: its folder has one link, snapshots/ has nothing.
	aside := filepath.Join(c.Cache().RepoDir(repoID), ".modelverify-snapshot-"+commit+"-0000dead")
	os.MkdirAll(aside, 0o755)
	os.Symlink("../../blobs/"+entry(t, tree, "config.json").BlobName(), filepath.Join(aside, "config.json"))
	snap, err := c.Download(context.Background(), repoID, commit, tree)
	assertComplete(t, snap, err, files)
	assertNoStaging(t, c.Cache().Dir)
}

func TestDownloadOfManyFilesHoldsFewDescriptors(t *testing.T) {
	const n = 600
	files := map[string][]byte{}
	for i := range n {
		files[fmt.Sprintf("shards/part-%05d.json", i)] = []byte(fmt.Sprintf(`{"part":%d}`, i))
	}
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, files))
	c := newClient(t, ts)
	commit, tree := treeOf(t, c, ts)
	// Far fewer descriptors than files: one lock per file held at once would run out.
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = 128
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skip("cannot lower the open-file limit:", err)
	}
	snap, err := c.Download(context.Background(), repoID, commit, tree)
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Files) != n {
		t.Fatalf("%d files published, want %d", len(snap.Files), n)
	}
	assertNoStaging(t, c.Cache().Dir)
}

func TestALiveDownloadsStagingIsLeftAlone(t *testing.T) {
	files := faultRepo()
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, files))
	c := newClient(t, ts)
	commit, tree := treeOf(t, c, ts)
	staging := filepath.Join(c.Cache().RepoDir(repoID), "blobs", ".modelverify-staging-a11ve0")
	os.MkdirAll(staging, 0o700)
	lockPath := filepath.Join(c.Cache().Dir, ".locks", hub.RepoFolderName(repoID), ".modelverify-staging-a11ve0.lock")
	os.MkdirAll(filepath.Dir(lockPath), 0o755)
	f, err := os.Create(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	snap, err := c.Download(context.Background(), repoID, commit, tree)
	assertComplete(t, snap, err, files)
	if _, err := os.Stat(staging); err != nil {
		t.Errorf("a live download's staging folder was removed: %v", err)
	}
}

func TestAnIncompleteNameThatIsALinkIsNotWrittenThrough(t *testing.T) {
	files := faultRepo()
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, files))
	c := newClient(t, ts)
	commit, tree := treeOf(t, c, ts)
	e := entry(t, tree, "model.safetensors")
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("precious"), 0o644)
	incomplete := c.Cache().BlobPath(repoID, e.BlobName()) + ".incomplete"
	os.MkdirAll(filepath.Dir(incomplete), 0o755)
	if err := os.Symlink(victim, incomplete); err != nil {
		t.Fatal(err)
	}
	snap, err := c.Download(context.Background(), repoID, commit, tree)
	assertComplete(t, snap, err, files)
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Errorf("the download wrote through a planted link: %q", b)
	}
}

func TestTemporaryFilesOfAKilledRefOrTreeWriteAreCleaned(t *testing.T) {
	files := faultRepo()
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, files))
	c := newClient(t, ts)
	commit, _ := ts.Resolve(repoID, "main")
	repoDir := c.Cache().RepoDir(repoID)
	refTmp := filepath.Join(repoDir, "refs", "main.1a2b3c4d.tmp")
	treeTmp := filepath.Join(repoDir, "trees", commit+".json.0badcafe.tmp")
	for _, p := range []string{refTmp, treeTmp} {
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("half"), 0o644)
	}
	tree, err := c.ListTree(context.Background(), repoID, commit)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := c.Download(context.Background(), repoID, commit, tree, hub.WithRef("main"))
	assertComplete(t, snap, err, files)
	assertNoStaging(t, c.Cache().Dir)
	if got, err := c.Cache().ReadRef(repoID, "main"); err != nil || got != commit {
		t.Errorf("ref main: %s, %v", got, err)
	}
	// A reuse without a download cleans them too.
	for _, p := range []string{refTmp, treeTmp} {
		os.WriteFile(p, []byte("half"), 0o644)
	}
	if err := c.Cache().CleanSnapshot(context.Background(), repoID, commit); err != nil {
		t.Fatal(err)
	}
	assertNoStaging(t, c.Cache().Dir)
}
