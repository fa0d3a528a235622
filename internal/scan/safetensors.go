package scan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sort"
	"unicode/utf8"
)

// safetensorsMaxHeader is the reference reader's MAX_HEADER_SIZE.
const safetensorsMaxHeader = 100_000_000

// safetensorsDtypeBits are the dtypes the reference implementation knows, with their sizes
// in bits (safetensors/src/tensor.rs, Dtype::bitsize).
var safetensorsDtypeBits = map[string]uint64{
	"BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8,
	"F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
	"I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}

type safetensor struct {
	name    string
	dtype   string
	shape   []uint64
	begin   uint64
	end     uint64
	keyAt   int64 // offset of the entry's name in the file
	ordinal int
}

// safetensorsError is one broken rule, named as the reference reader's error variant.
type safetensorsError struct {
	rule      string
	offset    int64
	msg       string
	truncated bool
}

// readSafetensorsHeader reads and validates a safetensors header the way the reference
// reader does (SafeTensors::read_metadata and Metadata::validate), in its order, and also
// rejects duplicate names, which the reference silently accepts. It reads 8+N bytes only.
func readSafetensorsHeader(r io.ReaderAt, size int64) ([]safetensor, []safetensorsError) {
	fail := func(rule string, off int64, format string, args ...any) []safetensorsError {
		return []safetensorsError{{rule: rule, offset: off, msg: fmt.Sprintf(format, args...)}}
	}
	if size < 8 {
		e := fail("HeaderTooSmall", 0, "header too small: the file has %d bytes, fewer than the 8 of the header length", size)
		e[0].truncated = true
		return nil, e
	}
	var lenBuf [8]byte
	if !readFull(r, lenBuf[:], 0) {
		return nil, fail("HeaderTooSmall", 0, "header too small: cannot read the header length")
	}
	n := le64(lenBuf[:])
	if n > safetensorsMaxHeader {
		return nil, fail("HeaderTooLarge", 0, "header too large: %d bytes, more than the %d allowed", n, safetensorsMaxHeader)
	}
	if 8+int64(n) > size {
		e := fail("InvalidHeaderLength", 0, "invalid header length: the header claims %d bytes but the file has only %d after the length", n, size-8)
		e[0].truncated = true
		return nil, e
	}
	hdr := make([]byte, n)
	if !readFull(r, hdr, 8) {
		return nil, fail("InvalidHeaderLength", 8, "invalid header length: cannot read %d header bytes", n)
	}
	if !utf8.Valid(hdr) {
		return nil, fail("InvalidHeader", 8, "invalid UTF-8 in header")
	}
	tensors, dups, err := parseSafetensorsJSON(hdr)
	if err != nil {
		return nil, fail("InvalidHeaderDeserialization", 8, "invalid JSON in header: %v", err)
	}
	var errs []safetensorsError
	for _, d := range dups {
		errs = append(errs, safetensorsError{rule: "DuplicateTensor", offset: 8 + d.keyAt,
			msg: fmt.Sprintf("tensor %q is defined more than once; readers disagree on which definition they load (the reference keeps the last)", d.name)})
	}
	sorted := append([]safetensor(nil), tensors...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].begin != sorted[j].begin {
			return sorted[i].begin < sorted[j].begin
		}
		return sorted[i].end < sorted[j].end
	})
	var running uint64
	for _, t := range sorted {
		at := 8 + t.keyAt
		if t.begin != running || t.end < t.begin {
			return tensors, append(errs, safetensorsError{rule: "InvalidOffset", offset: at,
				msg: fmt.Sprintf("invalid offset for tensor %q: data_offsets [%d, %d] but the previous tensor ends at %d (tensors must be contiguous from 0, without gaps or overlaps)", t.name, t.begin, t.end, running)})
		}
		running = t.end
		nelem := uint64(1)
		for _, d := range t.shape {
			hi, lo := bits.Mul64(nelem, d)
			if hi != 0 {
				return tensors, append(errs, safetensorsError{rule: "ValidationOverflow", offset: at,
					msg: fmt.Sprintf("overflow computing buffer size from shape and/or element type of tensor %q", t.name)})
			}
			nelem = lo
		}
		hi, nbits := bits.Mul64(nelem, safetensorsDtypeBits[t.dtype])
		if hi != 0 {
			return tensors, append(errs, safetensorsError{rule: "ValidationOverflow", offset: at,
				msg: fmt.Sprintf("overflow computing buffer size from shape and/or element type of tensor %q", t.name)})
		}
		if nbits%8 != 0 {
			return tensors, append(errs, safetensorsError{rule: "MisalignedSlice", offset: at,
				msg: fmt.Sprintf("tensor %q: %d elements of %s do not fill whole bytes", t.name, nelem, t.dtype)})
		}
		if t.end-t.begin != nbits/8 {
			return tensors, append(errs, safetensorsError{rule: "TensorInvalidInfo", offset: at,
				msg: fmt.Sprintf("invalid shape, data type, or offset for tensor %q: shape %v of %s needs %d bytes, data_offsets [%d, %d] give %d", t.name, t.shape, t.dtype, nbits/8, t.begin, t.end, t.end-t.begin)})
		}
	}
	if running+8+n != uint64(size) {
		e := safetensorsError{rule: "MetadataIncompleteBuffer", offset: 8 + int64(n) + int64(min(running, uint64(size))),
			msg: fmt.Sprintf("incomplete metadata, file not fully covered: tensors end at byte %d of the data but the data is %d bytes", running, uint64(size)-8-n)}
		e.truncated = running+8+n > uint64(size)
		return tensors, append(errs, e)
	}
	return tensors, errs
}

type dupTensor struct {
	name  string
	keyAt int64
}

// parseSafetensorsJSON decodes the header the way serde does for the reference's Metadata
// type, and keeps every tensor entry in file order (so duplicates are seen).
func parseSafetensorsJSON(hdr []byte) ([]safetensor, []dupTensor, error) {
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	if err := expectDelim(dec, '{'); err != nil {
		return nil, nil, err
	}
	var tensors []safetensor
	var dups []dupTensor
	seen := map[string]int{}
	metaSeen := false
	for dec.More() {
		keyAt := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		key := tok.(string)
		if key == "__metadata__" {
			if metaSeen {
				return nil, nil, errors.New("duplicate field `__metadata__`")
			}
			metaSeen = true
			if err := decodeStringMap(dec); err != nil {
				return nil, nil, fmt.Errorf("__metadata__: %w", err)
			}
			continue
		}
		t, err := decodeTensorInfo(dec)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", key, err)
		}
		t.name, t.keyAt, t.ordinal = key, skipSpaceOffset(hdr, keyAt), len(tensors)
		if i, dup := seen[key]; dup {
			dups = append(dups, dupTensor{name: key, keyAt: t.keyAt})
			tensors[i] = t // serde's HashMap keeps the last definition
			continue
		}
		seen[key] = len(tensors)
		tensors = append(tensors, t)
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("trailing characters after the header object")
	}
	return tensors, dups, nil
}

func skipSpaceOffset(b []byte, off int64) int64 {
	for off < int64(len(b)) && (isJSONSpace(b[off]) || b[off] == ',') {
		off++
	}
	return off
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if got, ok := tok.(json.Delim); !ok || got != d {
		return fmt.Errorf("expected %q, found %v", rune(d), tok)
	}
	return nil
}

func decodeStringMap(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("expected an object of strings")
	}
	seen := map[string]bool{}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return err
		}
		v, err := dec.Token()
		if err != nil {
			return err
		}
		if _, ok := v.(string); !ok {
			return fmt.Errorf("value of %q is not a string", k)
		}
		if seen[k.(string)] {
			return fmt.Errorf("duplicate key %q", k)
		}
		seen[k.(string)] = true
	}
	return expectDelim(dec, '}')
}

func decodeTensorInfo(dec *json.Decoder) (safetensor, error) {
	var t safetensor
	if err := expectDelim(dec, '{'); err != nil {
		return t, err
	}
	got := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return t, err
		}
		field := tok.(string)
		if got[field] {
			return t, fmt.Errorf("duplicate field `%s`", field)
		}
		got[field] = true
		switch field {
		case "dtype":
			v, err := dec.Token()
			if err != nil {
				return t, err
			}
			s, ok := v.(string)
			if !ok {
				return t, errors.New("dtype is not a string")
			}
			if _, known := safetensorsDtypeBits[s]; !known {
				return t, fmt.Errorf("unknown dtype %q", s)
			}
			t.dtype = s
		case "shape":
			if t.shape, err = decodeUintArray(dec, -1); err != nil {
				return t, fmt.Errorf("shape: %w", err)
			}
			if t.shape == nil {
				t.shape = []uint64{}
			}
		case "data_offsets":
			offs, err := decodeUintArray(dec, 2)
			if err != nil {
				return t, fmt.Errorf("data_offsets: %w", err)
			}
			t.begin, t.end = offs[0], offs[1]
		default:
			var skip json.RawMessage // the reference ignores unknown fields
			if err := dec.Decode(&skip); err != nil {
				return t, err
			}
		}
	}
	for _, f := range []string{"dtype", "shape", "data_offsets"} {
		if !got[f] {
			return t, fmt.Errorf("missing field `%s`", f)
		}
	}
	return t, expectDelim(dec, '}')
}

func decodeUintArray(dec *json.Decoder, want int) ([]uint64, error) {
	if err := expectDelim(dec, '['); err != nil {
		return nil, err
	}
	var out []uint64
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%v is not a number", tok)
		}
		v, ok := parseJSONUint(string(num))
		if !ok {
			return nil, fmt.Errorf("%s is not a non-negative 64-bit integer", num)
		}
		out = append(out, v)
		if len(out) > 1<<16 {
			return nil, errors.New("too many elements")
		}
	}
	if err := expectDelim(dec, ']'); err != nil {
		return nil, err
	}
	if want >= 0 && len(out) != want {
		return nil, fmt.Errorf("has %d elements, want %d", len(out), want)
	}
	return out, nil
}

func parseJSONUint(s string) (uint64, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	var v uint64
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		hi, lo := bits.Mul64(v, 10)
		if hi != 0 || lo+uint64(c-'0') < lo {
			return 0, false
		}
		v = lo + uint64(c-'0')
	}
	return v, true
}

// scanSafetensors validates a safetensors file. Only its header is read.
func scanSafetensors(r io.ReaderAt, size int64, rep *Report, member string) {
	_, errs := readSafetensorsHeader(r, size)
	for _, e := range errs {
		err := ErrMalformed
		if e.truncated {
			err = ErrTruncated
		}
		rep.add(Finding{Verdict: Suspicious, Member: member, Offset: e.offset, Rule: "safetensors." + e.rule, Message: e.msg, Err: err})
	}
}
