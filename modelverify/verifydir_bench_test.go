package modelverify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/manifest"
	"github.com/echelongraph/go-modelverify/modelverify"
)

// manySmallFiles writes a signed model of n small JSON files, 1,000 to a folder, and returns
// its directory and the public key that verifies it.
func manySmallFiles(b *testing.B, n int) (string, []byte) {
	b.Helper()
	dir := b.TempDir()
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("part-%03d", i/1000), fmt.Sprintf("file-%06d.json", i))
		if i%1000 == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.WriteFile(p, fmt.Appendf(nil, `{"index":%d,"pad":"%0200d"}`, i, i), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir, signInPlace(b, dir)
}

// dirVerifier is a Verifier for VerifyDir of models in the namespace acme signed by the key
// pub, with no audit log. The endpoint its policy needs is never asked anything.
func dirVerifier(tb testing.TB, pub []byte) *modelverify.Verifier {
	tb.Helper()
	policy, err := modelverify.ParsePolicy(fmt.Appendf(nil, `{"apiVersion":"modelverify.echelongraph.io/v1alpha1","kind":"ModelPolicy",
"endpoints":[{"url":"http://127.0.0.1:9"}],
"publishers":[{"name":"acme","namespaces":["acme"],"identities":[{"publicKey":{"pem":%q}}]}],
"content":{"allowFormats":%s}}`, pub, allowFormatsJSON(tb)))
	if err != nil {
		tb.Fatal(err)
	}
	v, err := modelverify.NewVerifier(policy, modelverify.WithEndpoint("http://127.0.0.1:9"), modelverify.WithCacheDir(tb.TempDir()),
		modelverify.WithAuditSink(modelverify.MultiSink()), modelverify.WithHubOptions(hub.WithToken("")))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { v.Close() })
	return v
}

// allowFormatsJSON is the default format list and "unknown": the export tests' sparse shards
// are all zeros, which no format claims.
func allowFormatsJSON(tb testing.TB) []byte {
	b, err := json.Marshal(append(slices.Clone(modelverify.DefaultAllowFormats), "unknown"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkVerifyDirManyFiles times VerifyDir on models of many small files against what
// `verifier digest` does on the same directory (manifest.FromDir), in the same run, and
// reports the ratio ("verifydir/digest"). VerifyDir does more per file than hashing it (the
// signature's comparison, a content scan of the bytes hashed, a stamp for Open), so the ratio
// says whether that extra work stays a constant factor (the target is 2x at most); the sizes
// show that it grows linearly.
//
//	go test -run '^$' -bench VerifyDirManyFiles -benchtime 3x ./modelverify/
func BenchmarkVerifyDirManyFiles(b *testing.B) {
	for _, n := range []int{10_000, 50_000, 100_000} {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			dir, pub := manySmallFiles(b, n)
			v := dirVerifier(b, pub)
			ctx := context.Background()
			var digest, verify, digestCPU, verifyCPU time.Duration
			b.ResetTimer()
			for range b.N {
				t0, c0 := time.Now(), cpuTime(b)
				if _, err := manifest.FromDir(ctx, dir, manifest.Options{}); err != nil {
					b.Fatal(err)
				}
				t1, c1 := time.Now(), cpuTime(b)
				m, err := v.VerifyDir(ctx, dir, "acme/many")
				if err != nil {
					b.Fatal(err)
				}
				t2, c2 := time.Now(), cpuTime(b)
				if len(m.Files()) != n {
					b.Fatalf("%d files verified, want %d", len(m.Files()), n)
				}
				digest += t1.Sub(t0)
				verify += t2.Sub(t1)
				digestCPU += c1 - c0
				verifyCPU += c2 - c1
			}
			b.ReportMetric(verify.Seconds()/float64(b.N), "verifydir-s/op")
			b.ReportMetric(digest.Seconds()/float64(b.N), "digest-s/op")
			b.ReportMetric(float64(verify)/float64(digest), "verifydir/digest")
			// On a machine shared with other work, wall time swings with the neighbours; the CPU
			// time this process spent is the steadier comparison.
			b.ReportMetric(float64(verifyCPU)/float64(digestCPU), "verifydir/digest-cpu")
			b.ReportMetric(float64(verify.Microseconds())/float64(b.N)/float64(n), "verifydir-µs/file")
		})
	}
}
