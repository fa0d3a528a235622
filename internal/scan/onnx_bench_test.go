package scan

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// onnxWithTensor encodes a ModelProto (ir_version 8, opset 13) whose graph has one Add node
// and one initializer: raw_data of rawSize bytes written by the caller after the returned
// prefix, or (external != "") a tensor stored in that file.
func onnxWithTensor(rawSize int64, external string, extLen int64) []byte {
	var tensor []byte
	tensor = protowire.AppendTag(tensor, 1, protowire.VarintType)
	tensor = protowire.AppendVarint(tensor, uint64(rawSize/4))
	tensor = protowire.AppendTag(tensor, 2, protowire.VarintType)
	tensor = protowire.AppendVarint(tensor, 1) // FLOAT
	tensor = protowire.AppendTag(tensor, 8, protowire.BytesType)
	tensor = protowire.AppendString(tensor, "w")
	if external != "" {
		for _, kv := range [][2]string{{"location", external}, {"offset", "0"}, {"length", strconv.FormatInt(extLen, 10)}} {
			var e []byte
			e = protowire.AppendTag(e, 1, protowire.BytesType)
			e = protowire.AppendString(e, kv[0])
			e = protowire.AppendTag(e, 2, protowire.BytesType)
			e = protowire.AppendString(e, kv[1])
			tensor = protowire.AppendTag(tensor, 13, protowire.BytesType)
			tensor = protowire.AppendBytes(tensor, e)
		}
		tensor = protowire.AppendTag(tensor, 14, protowire.VarintType)
		tensor = protowire.AppendVarint(tensor, 1)
	}
	var node []byte
	for _, in := range []string{"x", "w"} {
		node = protowire.AppendTag(node, 1, protowire.BytesType)
		node = protowire.AppendString(node, in)
	}
	node = protowire.AppendTag(node, 2, protowire.BytesType)
	node = protowire.AppendString(node, "y")
	node = protowire.AppendTag(node, 4, protowire.BytesType)
	node = protowire.AppendString(node, "Add")
	var graph []byte
	graph = protowire.AppendTag(graph, 1, protowire.BytesType)
	graph = protowire.AppendBytes(graph, node)
	graph = protowire.AppendTag(graph, 2, protowire.BytesType)
	graph = protowire.AppendString(graph, "g")
	// The initializer goes last so its raw_data can follow the prefix on disk.
	if external == "" {
		tensor = protowire.AppendTag(tensor, 9, protowire.BytesType)
		tensor = protowire.AppendVarint(tensor, uint64(rawSize))
	}
	graph = protowire.AppendTag(graph, 5, protowire.BytesType)
	graph = protowire.AppendVarint(graph, uint64(int64(len(tensor))+rawSize*b2i(external == "")))
	graph = append(graph, tensor...)
	var opset []byte
	opset = protowire.AppendTag(opset, 2, protowire.VarintType)
	opset = protowire.AppendVarint(opset, 13)
	var m []byte
	m = protowire.AppendTag(m, 1, protowire.VarintType)
	m = protowire.AppendVarint(m, 8)
	m = protowire.AppendTag(m, 8, protowire.BytesType)
	m = protowire.AppendBytes(m, opset)
	m = protowire.AppendTag(m, 7, protowire.BytesType)
	m = protowire.AppendVarint(m, uint64(int64(len(graph))+rawSize*b2i(external == "")))
	return append(m, graph...)
}

// writeSparse writes prefix then extends the file to size bytes (a hole, read as zeros).
func writeSparse(tb testing.TB, path string, prefix []byte, size int64) {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(prefix); err != nil {
		tb.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkONNXScan1GiB scans a 1 GiB ONNX model two ways (the tensor inline, and the tensor
// in a 1 GiB external-data file) and reports the bytes the scan read and its time against
// io.Copy of the same file(s).
func BenchmarkONNXScan1GiB(b *testing.B) {
	const size = 1 << 30
	dir := b.TempDir()
	inline := onnxWithTensor(size, "", 0)
	writeSparse(b, filepath.Join(dir, "inline.onnx"), inline, int64(len(inline))+size)
	if err := os.WriteFile(filepath.Join(dir, "external.onnx"), onnxWithTensor(size, "weights.data", size), 0o600); err != nil {
		b.Fatal(err)
	}
	writeSparse(b, filepath.Join(dir, "weights.data"), nil, size)
	copyAll := func(names ...string) time.Duration {
		start := time.Now()
		for _, n := range names {
			f, err := os.Open(filepath.Join(dir, n))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, f); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
		return time.Since(start)
	}
	for _, tc := range []struct{ name, model, data string }{
		{"inline", "inline.onnx", ""},
		{"external", "external.onnx", "weights.data"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			files := []string{tc.model}
			if tc.data != "" {
				files = append(files, tc.data)
			}
			copyTime := copyAll(files...)
			b.ResetTimer()
			start := time.Now()
			var read int64
			for range b.N {
				rep, err := ScanFile(context.Background(), filepath.Join(dir, tc.model))
				if err != nil || rep.Verdict != Safe || rep.Format != FormatONNX {
					b.Fatalf("%v\n%s", err, dump(rep))
				}
				read = rep.BytesRead
			}
			scanTime := time.Since(start) / time.Duration(b.N)
			b.ReportMetric(float64(read), "bytes-read")
			b.ReportMetric(float64(scanTime)/float64(max(copyTime, 1)), "x-io.Copy")
			b.ReportMetric(float64(copyTime.Microseconds()), "io.Copy-µs")
		})
	}
}
