package modelverify_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/echelongraph/go-modelverify/registry"
	"github.com/echelongraph/go-modelverify/registry/registrytest"
)

// BenchmarkVerifyOCI measures the whole gate on a signed 64 MiB modelcar (resolve, signature,
// pull with digest checks, scan, publish) against the registry client's pull of the same image
// alone, from the same in-process registry, so the ratio is the gate's own cost.
func BenchmarkVerifyOCI(b *testing.B) {
	const size = 64 << 20
	g := &ociGate{t: b, ts: registrytest.NewServer(b), key: newOCIKey(b), cacheDir: b.TempDir(), auditLog: filepath.Join(b.TempDir(), "audit.jsonl")}
	weights := safetensorsFile(size/4, 1)
	d := g.ts.PushManifest(b, "acme/big", "v1", registrytest.Modelcar(registrytest.Tar(
		registrytest.File("models/config.json", []byte(`{"model_type":"big"}`)),
		registrytest.File("models/model.safetensors", weights))))
	g.key.signBundle(b, g.ts, "acme/big", d, d.Digest)
	ref := g.ts.Ref("acme/big", d.Digest)

	// recheck: full, so that every round pulls: otherwise the rounds after the first would
	// load the published digest from the store (verify-reused).
	b.Run("verify", func(b *testing.B) {
		v := g.verifier(func(p map[string]any) { p["records"] = map[string]any{"recheck": "full"} })
		b.SetBytes(int64(len(weights)))
		for b.Loop() {
			if _, err := v.Verify(context.Background(), ref); err != nil {
				b.Fatal(err)
			}
		}
	})
	// A digest already published: resolve and signature online, the store's files checked
	// against the verification record, no layer pulled.
	b.Run("verify-reused", func(b *testing.B) {
		v := g.verifier()
		if _, err := v.Verify(context.Background(), ref); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(weights)))
		for b.Loop() {
			m, err := v.Verify(context.Background(), ref)
			if err != nil || !m.Evidence().Cached {
				b.Fatal("not reused: ", err)
			}
		}
	})
	b.Run("pull-only", func(b *testing.B) {
		c, err := registry.NewClient(registry.WithEnv(func(string) string { return "" }))
		if err != nil {
			b.Fatal(err)
		}
		r, _ := registry.ParseReference(ref)
		b.SetBytes(int64(len(weights)))
		for b.Loop() {
			art, err := c.Open(context.Background(), r)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.Pull(context.Background(), art, filepath.Join(b.TempDir(), "m"), registry.Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
