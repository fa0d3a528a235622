package scan

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
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

// periodicReaderAt serves head, then body repeated, then tail, without holding the whole
// file: a 1 GiB input costs one body's memory.
type periodicReaderAt struct {
	head, body, tail []byte
	reps             int64
}

func (p *periodicReaderAt) size() int64 {
	return int64(len(p.head)) + p.reps*int64(len(p.body)) + int64(len(p.tail))
}

func (p *periodicReaderAt) ReadAt(b []byte, off int64) (int, error) {
	n := 0
	bodyEnd := int64(len(p.head)) + p.reps*int64(len(p.body))
	for n < len(b) {
		o := off + int64(n)
		var src []byte
		switch {
		case o < int64(len(p.head)):
			src = p.head[o:]
		case o < bodyEnd:
			src = p.body[(o-int64(len(p.head)))%int64(len(p.body)):]
		case o < p.size():
			src = p.tail[o-bodyEnd:]
		default:
			return n, io.EOF
		}
		n += copy(b[n:], src)
	}
	return n, nil
}

// oneGiBPickle is a ~1 GiB protocol-2 pickle: a list of memoized strings of itemSize bytes
// (opcodes and memo indices included) appended in batches of 64, the opcode mix of a large
// pickled object.
func oneGiBPickle(itemSize int) *periodicReaderAt {
	var body bytes.Buffer
	body.WriteByte('(')
	for i := range 64 {
		body.WriteByte('X')
		body.Write(binary.LittleEndian.AppendUint32(nil, uint32(itemSize-10)))
		body.WriteString(strings.Repeat("w", itemSize-10))
		body.WriteByte('r')
		body.Write(binary.LittleEndian.AppendUint32(nil, uint32(i)))
	}
	body.WriteByte('e')
	return &periodicReaderAt{head: []byte("\x80\x02]"), body: body.Bytes(), tail: []byte("."),
		reps: (1 << 30) / int64(body.Len())}
}

// oneGiBProtocol0Pickle is a ~1 GiB protocol-0 pickle (text, no magic: it goes through the
// probe for content without magic): a list of memoized 54-character strings.
func oneGiBProtocol0Pickle() *periodicReaderAt {
	var body bytes.Buffer
	for range 1024 {
		body.WriteString("V" + strings.Repeat("w", 54) + "\np1\na")
	}
	return &periodicReaderAt{head: []byte("(lp0\n"), body: body.Bytes(), tail: []byte("."),
		reps: (1 << 30) / int64(body.Len())}
}

// BenchmarkPickleScan1GiB scans 1 GiB pickles held in no more than 64 KiB of memory, so
// the figure is the analyser's own throughput: a protocol-0 pickle (text, found by the probe
// for content without magic), 1 KiB strings (mostly skipped bytes) and 64-byte strings (mostly
// opcodes). Run: go test -bench PickleScan1GiB -benchtime 3x ./internal/scan/
func BenchmarkPickleScan1GiB(b *testing.B) {
	b.Run("protocol0", func(b *testing.B) {
		p := oneGiBProtocol0Pickle()
		b.SetBytes(p.size())
		for range b.N {
			rep, err := Scan(context.Background(), p, p.size(), WithName("model.pkl"))
			if err != nil || rep.Verdict != Safe || rep.Format != FormatPickle {
				b.Fatalf("%v %s", err, dump(rep))
			}
		}
	})
	for _, size := range []int{1024, 64} {
		b.Run(fmt.Sprintf("items%dB", size), func(b *testing.B) {
			p := oneGiBPickle(size)
			b.SetBytes(p.size())
			for range b.N {
				rep, err := Scan(context.Background(), p, p.size(), WithName("model.pkl"))
				if err != nil || rep.Verdict != Safe || rep.Format != FormatPickle {
					b.Fatalf("%v %s", err, dump(rep))
				}
			}
		})
	}
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
