package hubtest_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"testing"

	"github.com/echelongraph/go-modelverify/hub/hubtest"
)

// The bytes are a safetensors file as the format defines it: a little-endian header length, a
// JSON header padded to 8 bytes, and each tensor's F32 values at its offsets, in name order.
func TestSafetensorsMakesAValidFile(t *testing.T) {
	b := hubtest.Safetensors(map[string][]float32{"b": {1.5}, "a": {1, 2}})
	n := binary.LittleEndian.Uint64(b)
	if n%8 != 0 || 8+n > uint64(len(b)) {
		t.Fatalf("header length %d in %d bytes", n, len(b))
	}
	var header map[string]struct {
		DType       string   `json:"dtype"`
		Shape       []int    `json:"shape"`
		DataOffsets [2]int64 `json:"data_offsets"`
	}
	if err := json.Unmarshal(bytes.TrimRight(b[8:8+n], " "), &header); err != nil {
		t.Fatal(err)
	}
	data := b[8+n:]
	a, bb := header["a"], header["b"]
	if a.DType != "F32" || a.Shape[0] != 2 || a.DataOffsets != [2]int64{0, 8} || bb.DataOffsets != [2]int64{8, 12} || len(data) != 12 {
		t.Fatalf("header %+v, %d data bytes", header, len(data))
	}
	if got := math.Float32frombits(binary.LittleEndian.Uint32(data[8:])); got != 1.5 {
		t.Errorf("b[0] = %v", got)
	}
	if !bytes.Equal(b, hubtest.Safetensors(map[string][]float32{"a": {1, 2}, "b": {1.5}})) {
		t.Error("the same tensors gave other bytes")
	}
}
