package hub_test

import (
	"context"
	"strings"
	"testing"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/hub/hubtest"
)

func TestRevisionsResolveToTheirCommits(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, modelFiles(), hubtest.Tag("v1.0"), hubtest.Branch("dev")))
	first, _ := ts.Resolve(repoID, "main")
	second, err := ts.Commit(repoID, "main", map[string][]byte{"config.json": []byte(`{"v":2}`)})
	if err != nil {
		t.Fatal(err)
	}
	prRef, prCommit, err := ts.OpenPR(repoID, map[string][]byte{"config.json": []byte(`{"v":3}`)})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, ts)
	ctx := context.Background()
	for rev, want := range map[string]string{"": second, "main": second, "v1.0": first, "dev": first, prRef: prCommit, first: first} {
		ref, err := hub.ParseReference(repoID + "@" + rev)
		if rev == "" {
			ref, err = hub.ParseReference(repoID)
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.ResolveRevision(ctx, ref)
		if err != nil || got != want {
			t.Errorf("%q resolved to %s (%v), want %s", rev, got, err, want)
		}
	}
	var sawEscapedPR bool
	for _, r := range settled(t, ts) {
		sawEscapedPR = sawEscapedPR || strings.Contains(r.Path, "/revision/refs%2Fpr%2F1")
	}
	if !sawEscapedPR {
		t.Error("refs/pr/1 was not escaped as one path segment")
	}
	// A PR revision's files download and are linked under the PR's commit, with refs/refs/pr/1.
	tree, err := c.ListTree(ctx, repoID, prCommit)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := c.Download(ctx, repoID, prCommit, tree, hub.WithRef(prRef))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Cache().ReadRef(repoID, prRef); err != nil || got != prCommit {
		t.Errorf("refs/%s = %s, %v", prRef, got, err)
	}
	if len(snap.Files) != 1 {
		t.Errorf("PR snapshot has %d files", len(snap.Files))
	}
}

func TestRepoInfoReportsCommitSiblingsAndLFSDigests(t *testing.T) {
	files := modelFiles()
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, files, hubtest.Gated("manual")))
	c := newClient(t, ts)
	info, err := c.RepoInfo(context.Background(), hub.Reference{Namespace: "acme", Name: "tiny-model"})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ts.Resolve(repoID, "main")
	if info.SHA != want || info.ID != repoID || info.Author != "acme" || info.Gated != "manual" || info.Private {
		t.Errorf("info %+v", info)
	}
	if len(info.Siblings) != len(files) {
		t.Fatalf("%d siblings, want %d", len(info.Siblings), len(files))
	}
	for _, s := range info.Siblings {
		if s.Size != int64(len(files[s.Path])) {
			t.Errorf("%s size %d", s.Path, s.Size)
		}
		isLFS := hubtest.IsLFS(s.Path, s.Size)
		if (s.LFS != nil) != isLFS {
			t.Errorf("%s: LFS %v, want %v", s.Path, s.LFS, isLFS)
		}
		if s.LFS != nil && s.LFS.SHA256 != sha256Hex(files[s.Path]) {
			t.Errorf("%s: lfs sha256 %s", s.Path, s.LFS.SHA256)
		}
	}
}

func TestRenamedRepoFollowsTheRelativeRedirect(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, modelFiles(), hubtest.RenamedFrom("acme/old-name")))
	c := newClient(t, ts)
	info, err := c.RepoInfo(context.Background(), hub.Reference{Namespace: "acme", Name: "old-name"})
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != repoID {
		t.Errorf("renamed repo reports id %s", info.ID)
	}
}

func TestFileMetadataReadsTheRedirectNotTheCDN(t *testing.T) {
	files := modelFiles()
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, files))
	c := newClient(t, ts)
	ctx := context.Background()
	commit, _ := ts.Resolve(repoID, "main")
	md, err := c.FileMetadata(ctx, repoID, "main", "model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if !md.LFS || md.ETag != sha256Hex(files["model.safetensors"]) || md.Size != int64(len(files["model.safetensors"])) ||
		md.Commit != commit || !strings.HasPrefix(md.Location, ts.CDNURL) {
		t.Errorf("LFS metadata %+v", md)
	}
	md, err = c.FileMetadata(ctx, repoID, "main", "config.json")
	if err != nil {
		t.Fatal(err)
	}
	tree, _ := c.ListTree(ctx, repoID, commit)
	var oid string
	for _, e := range tree {
		if e.Path == "config.json" {
			oid = e.OID
		}
	}
	if md.LFS || md.ETag != oid || md.Size != int64(len(files["config.json"])) {
		t.Errorf("git metadata %+v, want etag %s", md, oid)
	}
	for _, r := range settled(t, ts) {
		if r.CDN {
			t.Errorf("HEAD followed the redirect to the CDN: %+v", r)
		}
	}
}

func TestListTreePaginatesTenThousandFiles(t *testing.T) {
	files := make(map[string][]byte, 10_000)
	for i := range 10_000 {
		files["shards/"+strings.Repeat("0", 5-len(itoa(i)))+itoa(i)+".txt"] = []byte(itoa(i))
	}
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, files))
	c := newClient(t, ts)
	commit, _ := ts.Resolve(repoID, "main")
	tree, err := c.ListTree(context.Background(), repoID, commit)
	if err != nil {
		t.Fatal(err)
	}
	if len(tree) != 10_000 {
		t.Fatalf("listed %d files, want 10000", len(tree))
	}
	pages := 0
	for _, r := range settled(t, ts) {
		if strings.Contains(r.Path, "/tree/") {
			pages++
		}
	}
	if pages != 11 { // 10,000 files plus the "shards" directory, 1000 a page
		t.Errorf("%d pages, want 11", pages)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestSameHostRedirectsAreFollowedForDownloadsAndMetadata(t *testing.T) {
	files := modelFiles()
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, files), hubtest.WithResolveCacheRedirects())
	c := newClient(t, ts)
	commit, _ := ts.Resolve(repoID, "main")
	md, err := c.FileMetadata(context.Background(), repoID, "main", "config.json")
	if err != nil {
		t.Fatal(err)
	}
	if md.Commit != commit || md.Size != int64(len(files["config.json"])) || md.LFS || !strings.Contains(md.Location, "/api/resolve-cache/") {
		t.Errorf("metadata through resolve-cache: %+v", md)
	}
	snap, _, err := download(t, ts)
	assertComplete(t, snap, err, files)
	var sawCache bool
	for _, r := range settled(t, ts) {
		sawCache = sawCache || strings.HasPrefix(r.Path, "/api/resolve-cache/models/acme/tiny-model/"+commit+"/")
	}
	if !sawCache {
		t.Error("no request went through /api/resolve-cache/")
	}
}

func TestOrganizationVerifiedReadsTheHubsBadge(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, modelFiles()),
		hubtest.WithOrganization("acme", true), hubtest.WithOrganization("plain-org", false))
	c := newClient(t, ts)
	ctx := context.Background()
	for name, want := range map[string]bool{"acme": true, "plain-org": false, "nobody": false} {
		got, err := c.OrganizationVerified(ctx, name)
		if err != nil || got != want {
			t.Errorf("%s: verified=%v (%v), want %v", name, got, err, want)
		}
	}
	if _, err := c.OrganizationVerified(ctx, "../x"); err == nil {
		t.Error("an invalid organisation name was accepted")
	}
}
