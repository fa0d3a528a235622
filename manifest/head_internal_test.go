package manifest

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

func TestHeadReaderAtReadsLikeTheFile(t *testing.T) {
	for _, size := range []int{0, 1, 100, headSize - 1, headSize, headSize + 1, 3 * headSize} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i * 7)
		}
		file := bytes.NewReader(data)
		h := newHeadReaderAt(file, int64(size))
		rng := rand.New(rand.NewPCG(uint64(size), 1))
		for range 2000 {
			off := rng.Int64N(int64(size) + 10)
			n := rng.IntN(2*headSize) + 1
			if rng.IntN(2) == 0 {
				n = rng.IntN(64) + 1
			}
			want := make([]byte, n)
			wn, werr := file.ReadAt(want, off)
			got := make([]byte, n)
			gn, gerr := h.ReadAt(got, off)
			if gn != wn || !bytes.Equal(got[:gn], want[:wn]) || (gerr == nil) != (werr == nil) {
				t.Fatalf("size %d: ReadAt(%d bytes, %d) = %d, %v; the file gives %d, %v", size, n, off, gn, gerr, wn, werr)
			}
			if gerr != nil && gerr != io.EOF {
				t.Fatalf("size %d: unexpected error %v", size, gerr)
			}
		}
	}
}
