package modelverify_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/hub/hubtest"
	"github.com/echelongraph/go-modelverify/modelverify"
)

// BenchmarkVerify times the whole gate on a signed 64 MiB model served by hubtest on loopback:
// a fresh verification (download, hash, scan, publish) and a re-verification of the cached,
// unchanged model, in the same run. It reports the re-check's cost as a fraction of the fresh
// one ("cached/fresh"), and the fresh path's throughput.
func BenchmarkVerify(b *testing.B) {
	key := newGateKey(b)
	files := map[string][]byte{"config.json": []byte(`{"model_type":"bench"}`)}
	for i := range 4 {
		files[fmt.Sprintf("model-%05d-of-00004.safetensors", i+1)] = safetensorsFile(4<<20, byte(i)) // 16 MiB each
	}
	signedFiles := sign(b, files, key)
	srv := hubtest.NewServer(b, hubtest.WithModel("acme/bench", signedFiles))
	policy, err := modelverify.ParsePolicy([]byte(fmt.Sprintf(`{"apiVersion":"modelverify.echelongraph.io/v1alpha1","kind":"ModelPolicy",
"endpoints":[{"url":%q,"cdnHosts":[%q]}],
"publishers":[{"name":"acme","namespaces":["acme"],"identities":[{"publicKey":{"pem":%q}}]}]}`, srv.URL, srv.CDNHost(), key.pub)))
	if err != nil {
		b.Fatal(err)
	}
	newVerifier := func(cache string) *modelverify.Verifier {
		v, err := modelverify.NewVerifier(policy, modelverify.WithEndpoint(srv.URL), modelverify.WithCacheDir(cache),
			modelverify.WithAuditSink(modelverify.DiscardSink{}), modelverify.WithHubOptions(hub.WithToken("")))
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	var size int64
	for _, f := range files {
		size += int64(len(f))
	}
	ctx := context.Background()
	var fresh, cached time.Duration
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		cache, err := os.MkdirTemp("", "bench-cache")
		if err != nil {
			b.Fatal(err)
		}
		v := newVerifier(cache)
		t0 := time.Now()
		if _, err := v.Verify(ctx, "acme/bench"); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		m, err := v.Verify(ctx, "acme/bench")
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if !m.Evidence().Cached {
			b.Fatal("the second verification did not use the cache")
		}
		fresh += t1.Sub(t0)
		cached += t2.Sub(t1)
		v.Close()
		os.RemoveAll(cache)
	}
	b.ReportMetric(float64(cached)/float64(fresh), "cached/fresh")
	b.ReportMetric(float64(size)*float64(b.N)/fresh.Seconds()/1e6, "fresh-MB/s")
	b.ReportMetric(float64(cached.Microseconds())/float64(b.N), "cached-µs/op")
}
