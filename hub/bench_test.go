package hub_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/hub/hubtest"
)

// BenchmarkDownloadVersusIOCopy times a verified download (parallel ranges, sha256 while
// streaming, staging, publish) against a plain io.Copy of the same bytes from the same server
// into a file, in the same run, and reports the ratio as "x-iocopy" (1.00 = as fast as io.Copy).
func BenchmarkDownloadVersusIOCopy(b *testing.B) {
	const size = 64 << 20
	data := make([]byte, size)
	_, _ = rand.Read(data)
	ts := hubtest.NewServer(b, hubtest.WithModel(repoID, map[string][]byte{"model.safetensors": data}))
	commit, _ := ts.Resolve(repoID, "main")
	ctx := context.Background()
	dir := b.TempDir()
	c, err := hub.NewClient(hub.WithEnv(func(string) string { return "" }), hub.WithEndpoint(ts.URL),
		hub.WithCacheDir(dir), hub.WithAllowedRedirectHosts(ts.CDNHost()), hub.WithChunkSize(16<<20))
	if err != nil {
		b.Fatal(err)
	}
	tree, err := c.ListTree(ctx, repoID, commit)
	if err != nil {
		b.Fatal(err)
	}
	url := ts.URL + "/" + repoID + "/resolve/" + commit + "/model.safetensors"
	var ours, baseline time.Duration
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		f, err := os.Create(filepath.Join(dir, "copy"))
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(f, resp.Body)
		resp.Body.Close()
		f.Close()
		if err != nil || n != size {
			b.Fatalf("io.Copy: %d bytes, %v", n, err)
		}
		baseline += time.Since(start)

		if err := os.RemoveAll(c.Cache().RepoDir(repoID)); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		snap, err := c.Download(ctx, repoID, commit, tree)
		if err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		if i == 0 {
			got, _ := os.ReadFile(snap.Files[0].LocalPath)
			if !bytes.Equal(got, data) {
				b.Fatal("downloaded bytes differ")
			}
		}
	}
	b.ReportMetric(float64(ours)/float64(baseline), "x-iocopy")
	b.ReportMetric(float64(baseline.Nanoseconds())/float64(b.N)/1e6, "iocopy-ms/op")
}
