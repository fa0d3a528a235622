package scan

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A .npy file is "\x93NUMPY", a version, a header length, a Python dict literal (descr,
// fortran_order, shape) and the array bytes. An array whose dtype holds Python objects is
// stored as a pickle instead of raw bytes (np.save's pickle.dump(array, protocol=3)), and that
// pickle is what np.load(allow_pickle=True) runs.

const maxNumPyHeader = 1 << 20

// scanNumPy scans a .npy stream of size bytes.
func scanNumPy(br *bufio.Reader, size int64, cfg *config, rep *Report, member string, depth int) {
	bad := func(off int64, rule, format string, args ...any) {
		rep.add(Finding{Verdict: Suspicious, Member: member, Offset: off, Rule: rule, Message: fmt.Sprintf(format, args...), Err: ErrMalformed})
	}
	var pre [10]byte
	if _, err := io.ReadFull(br, pre[:8]); err != nil {
		rep.add(Finding{Verdict: Suspicious, Member: member, Offset: 0, Rule: "numpy.truncated", Message: "NumPy file ends inside its preamble", Err: ErrTruncated})
		return
	}
	major := pre[6]
	var hlen, hdrStart int64
	switch major {
	case 1:
		if _, err := io.ReadFull(br, pre[8:10]); err != nil {
			rep.add(Finding{Verdict: Suspicious, Member: member, Offset: 8, Rule: "numpy.truncated", Message: "NumPy file ends inside its header length", Err: ErrTruncated})
			return
		}
		hlen, hdrStart = int64(binary.LittleEndian.Uint16(pre[8:10])), 10
	case 2, 3:
		var l [4]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			rep.add(Finding{Verdict: Suspicious, Member: member, Offset: 8, Rule: "numpy.truncated", Message: "NumPy file ends inside its header length", Err: ErrTruncated})
			return
		}
		hlen, hdrStart = int64(binary.LittleEndian.Uint32(l[:])), 12
	default:
		bad(6, "numpy.version", "NumPy format version %d.%d is not one NumPy reads", pre[6], pre[7])
		return
	}
	if hlen > maxNumPyHeader || hdrStart+hlen > size {
		rep.add(Finding{Verdict: Suspicious, Member: member, Offset: hdrStart - 4, Rule: "numpy.header-length",
			Message: fmt.Sprintf("header length %d runs past the end of the file or the %d-byte limit", hlen, maxNumPyHeader), Err: ErrTruncated})
		return
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(br, hdr); err != nil {
		rep.add(Finding{Verdict: Suspicious, Member: member, Offset: hdrStart, Rule: "numpy.truncated", Message: "NumPy file ends inside its header", Err: ErrTruncated})
		return
	}
	if (major < 3 && !isASCII(hdr)) || !utf8.Valid(hdr) {
		bad(hdrStart, "numpy.header", "header is not %s text", map[bool]string{true: "ASCII", false: "UTF-8"}[major < 3])
		return
	}
	d, err := parseNumPyHeader(string(hdr))
	if err != nil {
		bad(hdrStart, "numpy.header", "header is not a valid array description: %v", err)
		return
	}
	dataStart := hdrStart + hlen
	if d.hasObject {
		// The rest is a pickle: scan it, streamed.
		ps := newPickleScanner(cfg, rep, member, br, dataStart, depth)
		res := ps.scanAll()
		if res.err == nil && res.pickles == 0 {
			rep.add(Finding{Verdict: Suspicious, Member: member, Offset: dataStart, Rule: "numpy.object-data",
				Message: "object array without its pickle", Err: ErrTruncated})
		}
		return
	}
	count := uint64(1)
	for _, n := range d.shape {
		hi, lo := bits.Mul64(count, n)
		if hi != 0 {
			bad(hdrStart, "numpy.shape", "shape %v overflows", d.shape)
			return
		}
		count = lo
	}
	hi, need := bits.Mul64(count, d.itemsize)
	have := uint64(size - dataStart)
	switch {
	case hi != 0 || need > have:
		rep.add(Finding{Verdict: Suspicious, Member: member, Offset: dataStart, Rule: "numpy.truncated",
			Message: fmt.Sprintf("array of shape %v and item size %d needs %d bytes, the file has %d", d.shape, d.itemsize, need, have), Err: ErrTruncated})
	case need < have:
		bad(dataStart+int64(need), "numpy.trailing", "%d bytes after the array data", have-need)
	}
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

type numpyHeader struct {
	shape     []uint64
	itemsize  uint64
	hasObject bool
}

// parseNumPyHeader parses the header dict the way numpy's ast.literal_eval does, for the
// literal forms NumPy writes.
func parseNumPyHeader(s string) (numpyHeader, error) {
	var h numpyHeader
	p := &pyLiteral{s: s}
	v, err := p.value()
	if err != nil {
		return h, err
	}
	p.space()
	if p.i != len(p.s) {
		return h, fmt.Errorf("unexpected text after the header dict at %d", p.i)
	}
	d, ok := v.(map[string]any)
	if !ok {
		return h, errors.New("header is not a dict")
	}
	if len(d) != 3 {
		return h, errors.New("header must have exactly the keys descr, fortran_order, shape")
	}
	if _, ok := d["fortran_order"].(bool); !ok {
		return h, errors.New("fortran_order is not a bool")
	}
	shape, ok := d["shape"].([]any)
	if !ok {
		return h, errors.New("shape is not a tuple")
	}
	for _, x := range shape {
		n, ok := x.(int64)
		if !ok || n < 0 {
			return h, errors.New("shape holds something other than non-negative integers")
		}
		h.shape = append(h.shape, uint64(n))
	}
	descr, ok := d["descr"]
	if !ok {
		return h, errors.New("descr is missing")
	}
	h.itemsize, h.hasObject, err = dtypeSize(descr, 0)
	return h, err
}

// dtypeSize returns the item size of a NumPy descr and whether it holds Python objects.
func dtypeSize(descr any, depth int) (uint64, bool, error) {
	if depth > 32 {
		return 0, false, errors.New("dtype nested too deeply")
	}
	switch d := descr.(type) {
	case string:
		return typestrSize(d)
	case []any: // structured: [(name, descr[, shape]), ...]
		var total uint64
		obj := false
		for _, f := range d {
			field, ok := f.([]any)
			if !ok || len(field) < 2 || len(field) > 3 {
				return 0, false, errors.New("structured dtype field is not (name, descr[, shape])")
			}
			size, o, err := dtypeSize(field[1], depth+1)
			if err != nil {
				return 0, false, err
			}
			if len(field) == 3 {
				sh, ok := field[2].([]any)
				if !ok {
					if n, isInt := field[2].(int64); isInt {
						sh = []any{n}
					} else {
						return 0, false, errors.New("structured dtype field shape is not a tuple")
					}
				}
				for _, x := range sh {
					n, ok := x.(int64)
					if !ok || n < 0 {
						return 0, false, errors.New("bad subarray shape")
					}
					hi, lo := bits.Mul64(size, uint64(n))
					if hi != 0 {
						return 0, false, errors.New("subarray size overflows")
					}
					size = lo
				}
			}
			obj = obj || o
			if total+size < total {
				return 0, false, errors.New("structured dtype size overflows")
			}
			total += size
		}
		return total, obj, nil
	}
	return 0, false, errors.New("descr is neither a type string nor a list of fields")
}

func typestrSize(t string) (uint64, bool, error) {
	if t == "" {
		return 0, false, errors.New("empty type string")
	}
	if strings.ContainsRune("<>|=", rune(t[0])) {
		t = t[1:]
	}
	if t == "" {
		return 0, false, errors.New("type string has no kind")
	}
	kind, rest := t[0], t[1:]
	if i := strings.IndexByte(rest, '['); i >= 0 && (kind == 'M' || kind == 'm') && strings.HasSuffix(rest, "]") {
		rest = rest[:i]
	}
	if kind == 'O' {
		if rest != "" && rest != "8" && rest != "4" {
			return 0, true, fmt.Errorf("object type string %q", t)
		}
		return 8, true, nil
	}
	if kind == '?' && rest == "" {
		return 1, false, nil
	}
	n, err := strconv.ParseUint(rest, 10, 32)
	if err != nil {
		return 0, false, fmt.Errorf("type string %q has no valid size", t)
	}
	switch kind {
	case 'b', 'i', 'u', 'f', 'c', 'M', 'm', 'S', 'a', 'V':
		return n, false, nil
	case 'U':
		return 4 * n, false, nil
	}
	return 0, false, fmt.Errorf("type string %q has an unknown kind", t)
}

// pyLiteral parses the subset of Python literals that NumPy headers use.
type pyLiteral struct {
	s     string
	i     int
	depth int
}

func (p *pyLiteral) space() {
	for p.i < len(p.s) && strings.ContainsRune(" \t\n\r", rune(p.s[p.i])) {
		p.i++
	}
}

func (p *pyLiteral) value() (any, error) {
	p.space()
	if p.i >= len(p.s) {
		return nil, errors.New("unexpected end of header")
	}
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > 64 {
		return nil, errors.New("header nested too deeply")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		p.i++
		m := map[string]any{}
		for {
			p.space()
			if p.i < len(p.s) && p.s[p.i] == '}' {
				p.i++
				return m, nil
			}
			k, err := p.value()
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				return nil, errors.New("dict key is not a string")
			}
			p.space()
			if p.i >= len(p.s) || p.s[p.i] != ':' {
				return nil, errors.New("expected ':' in dict")
			}
			p.i++
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			if _, dup := m[ks]; dup {
				return nil, fmt.Errorf("duplicate key %q", ks)
			}
			m[ks] = v
			if !p.sep('}') {
				return nil, errors.New("expected ',' or '}' in dict")
			}
		}
	case c == '(' || c == '[':
		closer := map[byte]byte{'(': ')', '[': ']'}[c]
		p.i++
		var items []any
		for {
			p.space()
			if p.i < len(p.s) && p.s[p.i] == closer {
				p.i++
				if items == nil {
					items = []any{}
				}
				return items, nil
			}
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			items = append(items, v)
			if !p.sep(closer) {
				return nil, fmt.Errorf("expected ',' or %q", closer)
			}
		}
	case c == '\'' || c == '"':
		j := strings.IndexByte(p.s[p.i+1:], c)
		if j < 0 {
			return nil, errors.New("unterminated string")
		}
		v := p.s[p.i+1 : p.i+1+j]
		if strings.ContainsRune(v, '\\') {
			return nil, errors.New("escapes in header strings are not supported")
		}
		p.i += j + 2
		return v, nil
	case c == '-' || (c >= '0' && c <= '9'):
		j := p.i + 1
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		n, err := strconv.ParseInt(p.s[p.i:j], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("integer %q: %w", p.s[p.i:j], err)
		}
		p.i = j
		if p.i < len(p.s) && p.s[p.i] == 'L' {
			p.i++
		}
		return n, nil
	}
	for _, w := range []struct {
		word string
		v    any
	}{{"True", true}, {"False", false}, {"None", nil}} {
		if strings.HasPrefix(p.s[p.i:], w.word) {
			p.i += len(w.word)
			return w.v, nil
		}
	}
	return nil, fmt.Errorf("unexpected %q in header", p.s[p.i])
}

// sep consumes a ',' (optionally followed by the closer) or the closer; false otherwise.
func (p *pyLiteral) sep(closer byte) bool {
	p.space()
	if p.i >= len(p.s) {
		return false
	}
	if p.s[p.i] == ',' {
		p.i++
		return true
	}
	if p.s[p.i] == closer {
		return true
	}
	return false
}
