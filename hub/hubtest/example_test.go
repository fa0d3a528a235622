package hubtest_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"net/url"
	"os"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/hub/hubtest"
)

// A repository holding model files and a model.sig signature, served as the Hub would, and
// fetched through the hub client's whole verified pipeline: resolve, list, read the signature,
// download with a staged check, publish.
func Example() {
	srv := hubtest.New(hubtest.WithModel("acme/bert-tiny", map[string][]byte{
		"config.json":       []byte(`{"model_type":"bert"}`),
		"model.safetensors": []byte("\x08\x00\x00\x00\x00\x00\x00\x00{}      "),
		"model.sig":         []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`),
	}))
	defer srv.Close()
	cdn := httptest.NewServer(srv.CDN()) // LFS downloads redirect here
	defer cdn.Close()
	srv.SetCDNURL(cdn.URL)
	hubServer := httptest.NewServer(srv)
	defer hubServer.Close()

	cacheDir, _ := os.MkdirTemp("", "hf-cache")
	defer os.RemoveAll(cacheDir)
	cdnURL, _ := url.Parse(cdn.URL)
	client, err := hub.NewClient(
		hub.WithEndpoint(hubServer.URL),
		hub.WithToken(""),
		hub.WithCacheDir(cacheDir),
		hub.WithAllowedRedirectHosts(cdnURL.Host),
	)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	ref, _ := hub.ParseReference("hf://acme/bert-tiny@main")
	commit, err := client.ResolveRevision(ctx, ref)
	if err != nil {
		log.Fatal(err)
	}
	tree, err := client.ListTree(ctx, ref.RepoID(), commit)
	if err != nil {
		log.Fatal(err)
	}
	sig, err := client.ReadFile(ctx, ref.RepoID(), commit, "model.sig", 1<<20)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("commit %s, %d files, signature of %d bytes\n", commit, len(tree), len(sig))
	snap, err := client.Download(ctx, ref.RepoID(), commit, tree, hub.WithRef(ref.Rev()),
		hub.WithStagedCheck(func(ctx context.Context, f hub.StagedFile) error {
			// Here the load gate compares f.SHA256 with the signed manifest and scans f.LocalPath.
			fmt.Printf("staged %s %s\n", f.Path, f.SHA256)
			return nil
		}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("published %d files\n", len(snap.Files))
	// Unordered output:
	// commit 3ba01dd391fe4feee8b0d2180436c500fe19d459, 3 files, signature of 61 bytes
	// staged config.json sha256:7b5017c2bd719d8fee6106f62db9f686d79f1b86b2efb14fcbd581f41dd637d2
	// staged model.safetensors sha256:9bbcbf73561f6bc5d0a17ea6a2081feed2d1304e87602d8c502d9a5c4bd85576
	// staged model.sig sha256:f2168ec310ea3d35dc929b480c85a91c21775cbbf36db3a37e041e5fe815f586
	// published 3 files
}
