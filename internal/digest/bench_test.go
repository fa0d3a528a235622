package digest

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"testing"
	"time"
)

// BenchmarkManyFiles hashes a model of 8 files with the worker pool and, in the same
// iteration, with a plain sequential io.Copy into SHA-256, and reports the pool's speed-up over
// that baseline as "speedup" (about the core count when the files are in the page cache).
func BenchmarkManyFiles(b *testing.B) {
	dir := b.TempDir()
	const n, size = 8, 32 << 20
	var tasks []Task
	for i := range n {
		p, _ := writeRandom(b, dir, string(rune('a'+i)), size, uint64(i))
		tasks = append(tasks, Task{Path: p, Length: size})
	}
	h, err := New(SHA256)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(n * size)
	var pool, seq time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := h.Hash(context.Background(), tasks); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		for _, t := range tasks {
			f, err := os.Open(t.Path)
			if err != nil {
				b.Fatal(err)
			}
			hh := sha256.New()
			if _, err := io.Copy(hh, f); err != nil {
				b.Fatal(err)
			}
			hh.Sum(nil)
			f.Close()
		}
		pool += t1.Sub(t0)
		seq += time.Since(t1)
	}
	b.ReportMetric(float64(seq)/float64(pool), "speedup")
	b.ReportMetric(float64(n*size)*float64(b.N)/pool.Seconds()/1e6, "pool-MB/s")
	b.ReportMetric(float64(n*size)*float64(b.N)/seq.Seconds()/1e6, "seq-MB/s")
}

// BenchmarkAlgorithms reports each algorithm's single-file throughput through the pool.
func BenchmarkAlgorithms(b *testing.B) {
	dir := b.TempDir()
	p, _ := writeRandom(b, dir, "f", 64<<20, 1)
	for _, alg := range Algorithms {
		b.Run(string(alg), func(b *testing.B) {
			h, _ := New(alg)
			b.SetBytes(64 << 20)
			for range b.N {
				if _, err := h.HashFile(context.Background(), p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
