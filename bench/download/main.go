// Command download is bench/download.sh's client: it downloads every file of a model at a
// revision through hub.Client (resolve, list, parallel ranges, sha256 while streaming, verify,
// publish into the cache) and prints the elapsed seconds and bytes on one line.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/echelongraph/go-modelverify/hub"
)

func main() {
	endpoint := flag.String("endpoint", "", "Hub URL")
	cdn := flag.String("cdn", "", "CDN host:port to allow redirects to")
	ref := flag.String("ref", "", "model reference, org/name[@rev]")
	cache := flag.String("cache", "", "cache directory")
	jobs := flag.Int("jobs", 8, "parallel transfers")
	chunk := flag.Int64("chunk", 64<<20, "range size for parallel downloads")
	flag.Parse()
	if err := run(*endpoint, *cdn, *ref, *cache, *jobs, *chunk); err != nil {
		fmt.Fprintln(os.Stderr, "download:", err)
		os.Exit(1)
	}
}

func run(endpoint, cdn, refStr, cache string, jobs int, chunk int64) error {
	c, err := hub.NewClient(hub.WithEndpoint(endpoint), hub.WithToken(""), hub.WithCacheDir(cache),
		hub.WithAllowedRedirectHosts(cdn), hub.WithJobs(jobs), hub.WithChunkSize(chunk))
	if err != nil {
		return err
	}
	ref, err := hub.ParseReference(refStr)
	if err != nil {
		return err
	}
	ctx := context.Background()
	start := time.Now()
	commit, err := c.ResolveRevision(ctx, ref)
	if err != nil {
		return err
	}
	tree, err := c.ListTree(ctx, ref.RepoID(), commit)
	if err != nil {
		return err
	}
	snap, err := c.Download(ctx, ref.RepoID(), commit, tree, hub.WithRef(ref.Rev()))
	if err != nil {
		return err
	}
	var total int64
	for _, f := range snap.Files {
		total += f.Size
	}
	fmt.Printf("%.3f %d\n", time.Since(start).Seconds(), total)
	return nil
}
