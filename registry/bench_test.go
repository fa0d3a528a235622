package registry

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

// BenchmarkPullVerifyVersusGGCRPull times a verified pull of a signed modelcar (resolve, cosign
// signature, parallel layer downloads hashed as they stream, extraction into a staging
// directory) against go-containerregistry pulling the same image from the same in-process
// registry into an OCI layout (what `crane pull --format=oci` does), in the same run, and
// reports the ratio as "x-ggcr" (1.00 = as fast as ggcr). The model is two files of
// REGISTRY_BENCH_MIB MiB each (default 32) in two uncompressed layers; random bytes, so that
// nothing compresses.
func BenchmarkPullVerifyVersusGGCRPull(b *testing.B) {
	mib := 32
	if s := os.Getenv("REGISTRY_BENCH_MIB"); s != "" {
		mib, _ = strconv.Atoi(s)
	}
	size := int64(mib) << 20
	ts := registrytest.NewServer(b)
	var tars [][]byte
	for i := range 2 {
		data := make([]byte, size)
		_, _ = rand.Read(data)
		tars = append(tars, registrytest.Tar(registrytest.File("models/shard-"+strconv.Itoa(i)+".bin", data)))
	}
	m := registrytest.Modelcar() // its config; the layers stay uncompressed (Modelcar would gzip them)
	for _, tr := range tars {
		m.Layers = append(m.Layers, registrytest.Blob{MediaType: registrytest.MediaTypeLayerTar, Data: tr})
	}
	d := ts.PushManifest(b, "bench/model", "v1", m)
	s := newSigner(b)
	pushBundle(b, ts, "bench/model", d, s.bundleJSON(b, statement(d.Digest, CosignPredicateType)))
	v := s.verifier(b)
	c := testClient(b)
	ref := mustParse(b, ts.Ref("bench/model", "v1"))
	ggcrRef, err := name.ParseReference(ts.Host + "/bench/model:v1")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	work := b.TempDir()
	var ours, baseline, open, sig time.Duration
	b.SetBytes(2 * size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(work, "ggcr")
		start := time.Now()
		img, err := remote.Image(ggcrRef, remote.WithContext(ctx))
		if err != nil {
			b.Fatal(err)
		}
		p, err := layout.Write(dir, empty.Index)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.AppendImage(img); err != nil {
			b.Fatal(err)
		}
		baseline += time.Since(start)
		_ = os.RemoveAll(dir)

		dir = filepath.Join(work, "ours")
		start = time.Now()
		art, err := c.Open(ctx, ref)
		if err != nil {
			b.Fatal(err)
		}
		open += time.Since(start)
		t1 := time.Now()
		if _, err := c.VerifySignature(ctx, art, v, verify.WithKey()); err != nil {
			b.Fatal(err)
		}
		sig += time.Since(t1)
		if _, err := c.Pull(ctx, art, dir, Limits{}); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		_ = os.RemoveAll(dir)
	}
	b.ReportMetric(float64(ours)/float64(baseline), "x-ggcr")
	b.ReportMetric(float64(open.Milliseconds())/float64(b.N), "open-ms/op")
	b.ReportMetric(float64(sig.Milliseconds())/float64(b.N), "signature-ms/op")
}
