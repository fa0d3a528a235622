package scan

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"
	"time"
)

// BenchmarkPickleScan measures the pickle analyser's throughput against a plain io.Copy of
// the same bytes in the same run, and reports the ratio (scan time / copy time).
func BenchmarkPickleScan(b *testing.B) {
	p := bigPickle(8<<10, 1024) // ~8 MiB of memoized strings: many opcodes and memo entries
	var copyTime time.Duration
	for range 5 {
		start := time.Now()
		if _, err := io.Copy(io.Discard, io.NewSectionReader(bytes.NewReader(p), 0, int64(len(p)))); err != nil {
			b.Fatal(err)
		}
		copyTime += time.Since(start)
	}
	copyTime /= 5
	b.SetBytes(int64(len(p)))
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		rep, err := Scan(context.Background(), bytes.NewReader(p), int64(len(p)))
		if err != nil || rep.Verdict != Safe {
			b.Fatalf("%v %v", err, rep)
		}
	}
	scanTime := time.Since(start) / time.Duration(b.N)
	b.ReportMetric(float64(scanTime)/float64(max(copyTime, 1)), "x-io.Copy")
}

// BenchmarkTorchCheckpointScan scans a real torch.save zip checkpoint from disk and reports
// the ratio to reading the same file with io.Copy in the same run.
func BenchmarkTorchCheckpointScan(b *testing.B) {
	path := fixture("torch_state_dict_zip.pt")
	readFile := func() {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if _, err := io.Copy(io.Discard, f); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	const baselineRuns = 50
	for range baselineRuns {
		readFile()
	}
	copyTime := time.Since(start) / baselineRuns
	b.ResetTimer()
	start = time.Now()
	for range b.N {
		if rep := scanPath(b, path); rep.Verdict != Safe {
			b.Fatal(dump(rep))
		}
	}
	scanTime := time.Since(start) / time.Duration(b.N)
	b.ReportMetric(float64(scanTime)/float64(max(copyTime, 1)), "x-io.Copy")
}

// BenchmarkLargeCheckpoint scans the checkpoint named by MODELVERIFY_BENCH_CHECKPOINT (for
// example a 1 GiB torch.save file; none is committed), to compare the scanner's speed across
// changes. It is skipped when the variable is unset.
func BenchmarkLargeCheckpoint(b *testing.B) {
	path := os.Getenv("MODELVERIFY_BENCH_CHECKPOINT")
	if path == "" {
		b.Skip("MODELVERIFY_BENCH_CHECKPOINT is not set")
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	for range b.N {
		if rep := scanPath(b, path); rep.Verdict != Safe {
			b.Fatal(dump(rep))
		}
	}
}
