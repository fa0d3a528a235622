package hub_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/hub/hubtest"
)

func TestHubErrorCodesBecomeTypedErrors(t *testing.T) {
	const good, other = "hf_granted", "hf_not_granted"
	files := map[string][]byte{"config.json": []byte("{}"), "model.safetensors": []byte("weights")}
	ts := hubtest.NewServer(t,
		hubtest.WithToken(good, "alice"), hubtest.WithToken(other, "bob"),
		hubtest.WithModel("acme/public", files),
		hubtest.WithModel("acme/private", files, hubtest.Private(), hubtest.GrantAccess(good)),
		hubtest.WithModel("acme/gated", files, hubtest.Gated("auto"), hubtest.GrantAccess(good)),
		hubtest.WithModel("acme/disabled", files, hubtest.Disabled()),
	)
	ctx := context.Background()
	read := func(token, repo, rev, path string) error {
		c := newClient(t, ts, hub.WithToken(token))
		commit, err := c.ResolveRevision(ctx, hub.Reference{Namespace: "acme", Name: repo[len("acme/"):], Revision: rev})
		if err != nil {
			return err
		}
		_, err = c.ReadFile(ctx, repo, commit, path, 1<<20)
		return err
	}
	cases := []struct {
		name              string
		token, repo, path string
		rev               string
		want              error
		status            int
	}{
		{"missing repo, anonymous", "", "acme/nope", "config.json", "main", hub.ErrRepoNotFound, 401},
		{"missing repo, with token", good, "acme/nope", "config.json", "main", hub.ErrRepoNotFound, 404},
		{"private repo, anonymous", "", "acme/private", "config.json", "main", hub.ErrRepoNotFound, 401},
		{"private repo, token without access", other, "acme/private", "config.json", "main", hub.ErrRepoNotFound, 404},
		{"missing revision", "", "acme/public", "config.json", "v9", hub.ErrRevisionNotFound, 404},
		{"missing file", "", "acme/public", "nope.json", "main", hub.ErrEntryNotFound, 404},
		{"gated, anonymous", "", "acme/gated", "config.json", "main", hub.ErrGatedRepo, 401},
		{"gated, token without access", other, "acme/gated", "config.json", "main", hub.ErrGatedRepo, 403},
		{"disabled", "", "acme/disabled", "config.json", "main", hub.ErrRepoDisabled, 403},
		{"invalid token", "hf_unknown", "acme/public", "config.json", "main", hub.ErrUnauthorized, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := read(tc.token, tc.repo, tc.rev, tc.path)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			var he *hub.HubError
			if !errors.As(err, &he) || he.StatusCode != tc.status || he.Message == "" {
				t.Fatalf("error %#v: want a HubError with status %d and the Hub's message", err, tc.status)
			}
		})
	}
	for _, ok := range []struct{ token, repo string }{{good, "acme/private"}, {good, "acme/gated"}, {"", "acme/public"}} {
		if err := read(ok.token, ok.repo, "main", "model.safetensors"); err != nil {
			t.Errorf("%s with token %q: %v", ok.repo, ok.token, err)
		}
	}
}

func TestMissingFileIsRememberedInNoExist(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, modelFiles()))
	c := newClient(t, ts)
	commit, _ := ts.Resolve(repoID, "main")
	_, err := c.ReadFile(context.Background(), repoID, commit, "model.sig", 1<<20)
	if !errors.Is(err, hub.ErrEntryNotFound) {
		t.Fatalf("error %v, want ErrEntryNotFound", err)
	}
	marker := filepath.Join(c.Cache().RepoDir(repoID), ".no_exist", commit, "model.sig")
	if fi, err := os.Stat(marker); err != nil || fi.Size() != 0 {
		t.Fatalf(".no_exist marker: %v", err)
	}
	if _, err := c.Cache().Lookup(repoID, commit, "model.sig"); !errors.Is(err, hub.ErrEntryNotFound) {
		t.Errorf("cache lookup: %v, want ErrEntryNotFound", err)
	}
}

func TestReadFileRefusesOversizedBodies(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, modelFiles()))
	c := newClient(t, ts)
	commit, _ := ts.Resolve(repoID, "main")
	ctx := context.Background()
	_, err := c.ReadFile(ctx, repoID, commit, "model.safetensors", 1000)
	if !errors.Is(err, hub.ErrSizeExceeded) {
		t.Errorf("LFS file over the limit: %v, want ErrSizeExceeded", err)
	}
	// config.json is served gzip-encoded with no Content-Length: the limit must still hold.
	if _, err := c.ReadFile(ctx, repoID, commit, "config.json", 10); !errors.Is(err, hub.ErrSizeExceeded) {
		t.Errorf("gzip file over the limit: %v, want ErrSizeExceeded", err)
	}
	b, err := c.ReadFile(ctx, repoID, commit, "config.json", 1000)
	if err != nil || string(b) != string(modelFiles()["config.json"]) {
		t.Errorf("ReadFile = %q, %v", b, err)
	}
}

func TestReadFileChecksTheGitBlobID(t *testing.T) {
	ts := hubtest.NewServer(t, hubtest.WithModel(repoID, modelFiles()),
		hubtest.WithFault(hubtest.Fault{Kind: hubtest.FaultCorrupt, File: "config.json"}))
	c := newClient(t, ts)
	commit, _ := ts.Resolve(repoID, "main")
	_, err := c.ReadFile(context.Background(), repoID, commit, "config.json", 1000)
	var de *hub.DigestError
	if !errors.As(err, &de) || de.Algorithm != "git-sha1" {
		t.Fatalf("error %v, want a git-sha1 DigestError", err)
	}
}

func TestListTreeRefusesPathsThatEscapeTheSnapshot(t *testing.T) {
	for _, bad := range []string{"../../../../etc/cron.d/x", "a/../../b", "/abs/path"} {
		ts := hubtest.NewServer(t, hubtest.WithModel(repoID, map[string][]byte{"config.json": []byte("{}"), bad: []byte("x")}))
		c := newClient(t, ts)
		commit, _ := ts.Resolve(repoID, "main")
		if _, err := c.ListTree(context.Background(), repoID, commit); !errors.Is(err, hub.ErrInvalidResponse) {
			t.Errorf("%q: ListTree error %v, want ErrInvalidResponse", bad, err)
		}
		_, err := c.Download(context.Background(), repoID, commit, []hub.TreeEntry{{Path: bad, Size: 1, OID: "0123456789012345678901234567890123456789"}})
		if err == nil {
			t.Errorf("%q: Download accepted the path", bad)
		}
	}
}
