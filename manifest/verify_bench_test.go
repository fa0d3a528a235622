package manifest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"
)

// BenchmarkVerifyKeyBundle measures Verify on a key-signed bundle whose manifest lists 1,000
// files, against the baseline of decoding the same statement alone, in the same loop. The
// verify/decode metric is the ratio: what checking the bundle and the signature adds on top of
// reading the manifest.
func BenchmarkVerifyKeyBundle(b *testing.B) {
	m := &Manifest{ModelName: "bench", Serialization: Serialization{Method: MethodFiles, HashType: SHA256, IgnorePaths: GitPaths}}
	for i := range 1000 {
		name := fmt.Sprintf("shards/model-%05d-of-01000.safetensors", i)
		sum := sha256.Sum256([]byte(name))
		m.Resources = append(m.Resources, Resource{Name: name, Algorithm: SHA256, Digest: sum[:]})
	}
	pki := newTestPKI(b)
	s, err := NewKeySigner(pki.keyPEM(b, "p256"), nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	bundle, err := Sign(ctx, m, s)
	if err != nil {
		b.Fatal(err)
	}
	payload, err := EncodeStatement(m)
	if err != nil {
		b.Fatal(err)
	}
	v, err := NewKeyVerifier(pki.keyPub(b, "p256"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(bundle)))
	var decode, verify time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := DecodeStatement(payload); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := Verify(ctx, bundle, v); err != nil {
			b.Fatal(err)
		}
		verify += time.Since(t1)
		decode += t1.Sub(t0)
	}
	b.ReportMetric(float64(decode.Nanoseconds())/float64(b.N), "decode-ns/op")
	b.ReportMetric(float64(verify.Nanoseconds())/float64(b.N), "verify-ns/op")
	b.ReportMetric(float64(verify)/float64(decode), "verify/decode")
}
