package scan

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"strings"
)

// GGUF validation follows the checks of ggml's reader (gguf.cpp gguf_init_from_file_impl):
// only the header (metadata and tensor infos) is read; tensor data is checked by offsets.

const (
	ggufMaxString    = 1 << 30
	ggufMaxArray     = 1 << 30
	ggufMaxDims      = 4
	ggufMaxName      = 64
	ggufDefaultAlign = 32
	ggufTypeArray    = 9
	ggufTypeString   = 8
	maxChatTemplate  = 1 << 20
)

// ggmlTypeSizes: ggml type id -> (block size in elements, bytes per block); gguf-py
// GGML_QUANT_SIZES. Removed ids are absent.
var ggmlTypeSizes = map[uint32][2]uint64{
	0: {1, 4}, 1: {1, 2}, 2: {32, 18}, 3: {32, 20}, 6: {32, 22}, 7: {32, 24}, 8: {32, 34},
	9: {32, 40}, 10: {256, 84}, 11: {256, 110}, 12: {256, 144}, 13: {256, 176}, 14: {256, 210},
	15: {256, 292}, 16: {256, 66}, 17: {256, 74}, 18: {256, 98}, 19: {256, 50}, 20: {32, 18},
	21: {256, 110}, 22: {256, 82}, 23: {256, 136}, 24: {1, 1}, 25: {1, 2}, 26: {1, 4}, 27: {1, 8},
	28: {1, 8}, 29: {256, 56}, 30: {1, 2}, 34: {256, 54}, 35: {256, 66}, 39: {32, 17},
}

// ggufScalarSize is the size of each fixed-size value type (0..12 without STRING and ARRAY).
var ggufScalarSize = map[uint32]int64{0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

// jinjaEscapes are what server-side template injection in a chat template reaches for
// (CVE-2024-34359, "Llama Drama").
var jinjaEscapes = []string{"__class__", "__subclasses__", "__globals__", "__builtins__", "__import__",
	"__mro__", "__base__", "__init__", "__getattribute__", "os.popen", "subprocess", "lipsum", "cycler", "joiner"}

type ggufReader struct {
	r    *bufio.Reader
	pos  int64
	size int64
}

var errGGUFEOF = errors.New("file ends inside the GGUF header")

func (g *ggufReader) read(n int) ([]byte, error) {
	if g.pos+int64(n) > g.size {
		return nil, errGGUFEOF
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(g.r, b); err != nil {
		return nil, errGGUFEOF
	}
	g.pos += int64(n)
	return b, nil
}

func (g *ggufReader) u32() (uint32, error) {
	b, err := g.read(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (g *ggufReader) u64() (uint64, error) {
	b, err := g.read(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (g *ggufReader) skip(n int64) error {
	if n < 0 || g.pos+n > g.size {
		return errGGUFEOF
	}
	if _, err := g.r.Discard(int(n)); err != nil {
		return errGGUFEOF
	}
	g.pos += n
	return nil
}

// str reads a gguf_string, keeping at most keep bytes of it.
func (g *ggufReader) str(keep int64) (string, uint64, error) {
	n, err := g.u64()
	if err != nil {
		return "", 0, err
	}
	if n > ggufMaxString || int64(n) > g.size-g.pos {
		return "", n, fmt.Errorf("string of %d bytes runs past the end of the file", n)
	}
	if int64(n) <= keep {
		b, err := g.read(int(n))
		return string(b), n, err
	}
	return "", n, g.skip(int64(n))
}

type ggufError struct {
	rule      string
	off       int64
	msg       string
	truncated bool
	verdict   Verdict
}

// scanGGUF validates a GGUF file's header.
func scanGGUF(r io.ReaderAt, size int64, rep *Report, member string) {
	for _, e := range checkGGUF(r, size) {
		err := ErrMalformed
		if e.truncated {
			err = ErrTruncated
		}
		v := e.verdict
		if v == Safe {
			v = Suspicious
		}
		if e.rule == "gguf.chat-template" {
			err = ErrDangerousOpcode
		}
		rep.add(Finding{Verdict: v, Member: member, Offset: e.off, Rule: e.rule, Message: e.msg, Err: err})
	}
}

func checkGGUF(r io.ReaderAt, size int64) []ggufError {
	g := &ggufReader{r: sectionReader(r, size), size: size}
	var found []ggufError
	fail := func(rule string, format string, args ...any) []ggufError {
		return append(found, ggufError{rule: rule, off: g.pos, msg: fmt.Sprintf(format, args...)})
	}
	trunc := func(err error) []ggufError {
		if errors.Is(err, errGGUFEOF) {
			return append(found, ggufError{rule: "gguf.truncated", off: g.pos, msg: err.Error(), truncated: true})
		}
		return append(found, ggufError{rule: "gguf.header", off: g.pos, msg: err.Error()})
	}
	magic, err := g.read(4)
	if err != nil || string(magic) != "GGUF" {
		return fail("gguf.magic", "invalid magic characters")
	}
	version, err := g.u32()
	if err != nil {
		return trunc(err)
	}
	switch {
	case version == 0:
		return fail("gguf.version", "bad GGUF version 0")
	case version == 1:
		return fail("gguf.version", "GGUFv1 is no longer supported")
	case version&0xffff == 0:
		return fail("gguf.version", "version %#x: the file's byte order does not match the reader's", version)
	case version > 3:
		return fail("gguf.version", "GGUF version %d is not supported", version)
	}
	nTensors, err := g.u64()
	if err != nil {
		return trunc(err)
	}
	nKV, err := g.u64()
	if err != nil {
		return trunc(err)
	}
	// Each tensor info and key/value takes at least 8+4+8 bytes: counts past that cannot fit.
	if nTensors > uint64(size)/20 || nKV > uint64(size)/12 {
		return fail("gguf.counts", "header claims %d tensors and %d metadata keys, more than the file can hold", nTensors, nKV)
	}
	keys := map[string]bool{}
	align := uint64(ggufDefaultAlign)
	for i := uint64(0); i < nKV; i++ {
		keyAt := g.pos
		key, n, err := g.str(1 << 16)
		if err != nil {
			return trunc(err)
		}
		if n == 0 {
			return fail("gguf.key", "metadata key %d is empty", i)
		}
		if n > 1<<16 {
			return fail("gguf.key", "metadata key %d is %d bytes long", i, n)
		}
		if keys[key] {
			return append(found, ggufError{rule: "gguf.duplicate-key", off: keyAt, msg: fmt.Sprintf("duplicate key %q", key)})
		}
		keys[key] = true
		typ, err := g.u32()
		if err != nil {
			return trunc(err)
		}
		switch {
		case key == "general.alignment":
			if typ != 4 {
				return fail("gguf.alignment", "general.alignment has type %d, not UINT32", typ)
			}
			v, err := g.u32()
			if err != nil {
				return trunc(err)
			}
			if v == 0 || v&(v-1) != 0 {
				return fail("gguf.alignment", "general.alignment %d is not a power of two", v)
			}
			align = uint64(v)
		case typ == ggufTypeString && strings.HasPrefix(key, "tokenizer.chat_template"):
			at := g.pos
			tmpl, n, err := g.str(maxChatTemplate)
			if err != nil {
				return trunc(err)
			}
			if n > maxChatTemplate {
				found = append(found, ggufError{rule: "gguf.chat-template", off: at, verdict: Suspicious,
					msg: fmt.Sprintf("%s is %d bytes, too long to inspect", key, n)})
			}
			for _, esc := range jinjaEscapes {
				if strings.Contains(tmpl, esc) {
					found = append(found, ggufError{rule: "gguf.chat-template", off: at, verdict: Dangerous,
						msg: fmt.Sprintf("%s uses %q: Jinja templates with it escape the sandbox-less renderers (CVE-2024-34359)", key, esc)})
					break
				}
			}
		default:
			if err := g.skipValue(typ, false); err != nil {
				if errors.Is(err, errGGUFEOF) {
					return trunc(err)
				}
				return fail("gguf.value", "key %q: %v", key, err)
			}
		}
	}
	names := map[string]bool{}
	type tinfo struct {
		name   string
		off    uint64
		nbytes uint64
		at     int64
	}
	var infos []tinfo
	for i := uint64(0); i < nTensors; i++ {
		at := g.pos
		name, n, err := g.str(ggufMaxName)
		if err != nil {
			return trunc(err)
		}
		if n >= ggufMaxName {
			return fail("gguf.tensor-name", "tensor %d's name is %d bytes, longer than %d", i, n, ggufMaxName-1)
		}
		if names[name] {
			return append(found, ggufError{rule: "gguf.duplicate-tensor", off: at, msg: fmt.Sprintf("duplicate tensor name %q", name)})
		}
		names[name] = true
		nDims, err := g.u32()
		if err != nil {
			return trunc(err)
		}
		if nDims > ggufMaxDims {
			return fail("gguf.tensor-dims", "tensor %q has %d dimensions, more than %d", name, nDims, ggufMaxDims)
		}
		dims := make([]uint64, nDims)
		nelem := uint64(1)
		for d := range dims {
			if dims[d], err = g.u64(); err != nil {
				return trunc(err)
			}
			if dims[d] > math.MaxInt64 {
				return fail("gguf.tensor-dims", "tensor %q has a negative dimension", name)
			}
			hi, lo := bits.Mul64(nelem, dims[d])
			if hi != 0 || lo > math.MaxInt64 {
				return fail("gguf.tensor-dims", "tensor %q: element count overflows", name)
			}
			nelem = lo
		}
		typ, err := g.u32()
		if err != nil {
			return trunc(err)
		}
		ts, ok := ggmlTypeSizes[typ]
		if !ok {
			return fail("gguf.tensor-type", "tensor %q has ggml type %d, which is not a valid type", name, typ)
		}
		if nDims > 0 && dims[0]%ts[0] != 0 || nDims == 0 && ts[0] != 1 {
			return fail("gguf.tensor-type", "tensor %q: row length is not a multiple of the block size %d", name, ts[0])
		}
		off, err := g.u64()
		if err != nil {
			return trunc(err)
		}
		hi, nbytes := bits.Mul64(nelem/ts[0], ts[1])
		if hi != 0 {
			return fail("gguf.tensor-size", "tensor %q: byte size overflows", name)
		}
		infos = append(infos, tinfo{name: name, off: off, nbytes: nbytes, at: at})
	}
	dataStart := (uint64(g.pos) + align - 1) / align * align
	var expect uint64
	for _, t := range infos {
		if t.off != expect {
			return append(found, ggufError{rule: "gguf.tensor-offset", off: t.at,
				msg: fmt.Sprintf("tensor %q has offset %d, expected %d (tensors must be in order, aligned to %d, without gaps)", t.name, t.off, expect, align)})
		}
		padded := (t.nbytes + align - 1) / align * align
		if padded < t.nbytes || expect+padded < expect {
			return append(found, ggufError{rule: "gguf.tensor-size", off: t.at, msg: fmt.Sprintf("tensor %q: data size overflows", t.name)})
		}
		if dataStart+t.off+t.nbytes > uint64(size) || dataStart+t.off+t.nbytes < dataStart {
			return append(found, ggufError{rule: "gguf.truncated", off: t.at, truncated: true,
				msg: fmt.Sprintf("tensor %q's data (%d bytes at %d) runs past the end of the file", t.name, t.nbytes, dataStart+t.off)})
		}
		expect += padded
	}
	return found
}

// skipValue skips one metadata value of type typ. Nested arrays are rejected, as ggml does.
func (g *ggufReader) skipValue(typ uint32, inArray bool) error {
	if sz, ok := ggufScalarSize[typ]; ok {
		if typ == 7 { // BOOL: only 0 and 1
			b, err := g.read(1)
			if err != nil {
				return err
			}
			if b[0] > 1 {
				return fmt.Errorf("BOOL value %d is neither 0 nor 1", b[0])
			}
			return nil
		}
		return g.skip(sz)
	}
	switch typ {
	case ggufTypeString:
		_, _, err := g.str(0)
		return err
	case ggufTypeArray:
		if inArray {
			return errors.New("nested arrays are not supported")
		}
		et, err := g.u32()
		if err != nil {
			return err
		}
		n, err := g.u64()
		if err != nil {
			return err
		}
		if n > ggufMaxArray {
			return fmt.Errorf("array of %d elements is too long", n)
		}
		if sz, ok := ggufScalarSize[et]; ok && et != 7 {
			if n > uint64(g.size-g.pos)/uint64(sz) {
				return errGGUFEOF
			}
			return g.skip(int64(n) * sz)
		}
		if et != ggufTypeString && et != 7 && et != ggufTypeArray {
			return fmt.Errorf("array element type %d is not a GGUF type", et)
		}
		if n > uint64(g.size-g.pos) {
			return errGGUFEOF
		}
		for i := uint64(0); i < n; i++ {
			if err := g.skipValue(et, true); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("value type %d is not a GGUF type", typ)
}
