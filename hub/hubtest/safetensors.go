package hubtest

import (
	"encoding/binary"
	"encoding/json"
	"maps"
	"math"
	"slices"
)

// Safetensors returns a valid safetensors file holding tensors: each name a vector of F32
// values, laid out in name order, so the same tensors always give the same bytes. It is for
// test models that a scanner or a loader must accept as real weights:
//
//	files := map[string][]byte{
//		"config.json":       []byte(`{"model_type":"tiny"}`),
//		"model.safetensors": hubtest.Safetensors(map[string][]float32{"weight": {1, 2, 3}}),
//	}
func Safetensors(tensors map[string][]float32) []byte {
	type entry struct {
		DType       string   `json:"dtype"`
		Shape       []int    `json:"shape"`
		DataOffsets [2]int64 `json:"data_offsets"`
	}
	header := map[string]entry{}
	var data []byte
	for _, name := range slices.Sorted(maps.Keys(tensors)) {
		start := int64(len(data))
		for _, f := range tensors[name] {
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(f))
		}
		header[name] = entry{DType: "F32", Shape: []int{len(tensors[name])}, DataOffsets: [2]int64{start, int64(len(data))}}
	}
	h, err := json.Marshal(header)
	if err != nil {
		panic(err) // a map of plain structs always encodes
	}
	// The format pads the header with spaces so the data starts 8-byte aligned.
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	out = append(out, h...)
	return append(out, data...)
}
