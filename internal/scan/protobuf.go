package scan

import (
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// Protocol-buffer files (ONNX models, TensorFlow SavedModels) are walked field by field with
// protowire over random access: only the structure is read, and the large byte fields
// (raw tensor data, constant values) are stepped over, never loaded. No generated code is
// needed: each format names the few fields it looks at.

// pbMaxDepth bounds message nesting (graphs inside attributes inside nodes ...), so a hostile
// file cannot recurse without end.
const pbMaxDepth = 64

// pbMaxString bounds the strings the scanner keeps (names, domains, paths): longer ones are
// reported, not read.
const pbMaxString = 1 << 16

var (
	errPBTruncated = errors.New("the file ends inside a field")
	errPBDepth     = fmt.Errorf("messages nested deeper than %d levels", pbMaxDepth)
)

// pbSource reads a protobuf encoding through a window, so walking a message costs a read per
// 64 KiB of structure and none for the bytes it skips.
type pbSource struct {
	r      io.ReaderAt
	size   int64
	win    []byte
	winOff int64
}

func newPBSource(r io.ReaderAt, size int64) *pbSource {
	return &pbSource{r: r, size: size}
}

// at returns up to n bytes at off (fewer at the end of the file).
func (s *pbSource) at(off int64, n int) []byte {
	if off < 0 || off >= s.size {
		return nil
	}
	n = int(min(int64(n), s.size-off))
	if off >= s.winOff && off+int64(n) <= s.winOff+int64(len(s.win)) {
		return s.win[off-s.winOff : off-s.winOff+int64(n)]
	}
	w := int(min(s.size-off, int64(max(n, 64<<10))))
	if cap(s.win) < w {
		s.win = make([]byte, w)
	}
	s.win = s.win[:w]
	got, _ := s.r.ReadAt(s.win, off)
	s.win, s.winOff = s.win[:got], off
	if got < n {
		return s.win
	}
	return s.win[:n]
}

// pbField is one field of a message: its number and wire type, the varint value (for VARINT),
// or the place of its bytes (for LEN).
type pbField struct {
	num   protowire.Number
	typ   protowire.Type
	value uint64
	off   int64 // LEN: where the bytes start
	n     int64 // LEN: how many
}

// walk calls fn for each field of the message at [off, end). fn returns an error to stop.
func (s *pbSource) walk(off, end int64, fn func(pbField) error) error {
	if end > s.size {
		return errPBTruncated
	}
	for off < end {
		b := s.at(off, int(min(end-off, 20)))
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return pbErr(n, off)
		}
		if num > protowire.MaxValidNumber {
			return fmt.Errorf("offset %d: field number %d out of range", off, num)
		}
		off += int64(n)
		f := pbField{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			v, m := protowire.ConsumeVarint(s.at(off, int(min(end-off, 10))))
			if m < 0 {
				return pbErr(m, off)
			}
			f.value, off = v, off+int64(m)
		case protowire.Fixed32Type:
			off += 4
		case protowire.Fixed64Type:
			off += 8
		case protowire.BytesType:
			l, m := protowire.ConsumeVarint(s.at(off, int(min(end-off, 10))))
			if m < 0 {
				return pbErr(m, off)
			}
			off += int64(m)
			if l > uint64(end-off) {
				return fmt.Errorf("offset %d: a field of %d bytes runs past its message (%d bytes left): %w", off, l, end-off, errPBTruncated)
			}
			f.off, f.n = off, int64(l)
			off += int64(l)
		default:
			// Groups (wire types 3 and 4) are proto2-only and appear in neither ONNX nor
			// TensorFlow's protos: a file using them is not one of those.
			return fmt.Errorf("offset %d: field %d has wire type %d, which these formats never use", off, num, typ)
		}
		if off > end {
			return fmt.Errorf("offset %d: a fixed-size field runs past its message: %w", off, errPBTruncated)
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// str reads a LEN field as a string, refusing ones longer than pbMaxString.
func (s *pbSource) str(f pbField) (string, error) {
	if f.typ != protowire.BytesType {
		return "", fmt.Errorf("field %d should be a string but has wire type %d", f.num, f.typ)
	}
	if f.n > pbMaxString {
		return "", fmt.Errorf("offset %d: a name of %d bytes (the limit is %d)", f.off, f.n, pbMaxString)
	}
	b := s.at(f.off, int(f.n))
	if int64(len(b)) < f.n {
		return "", errPBTruncated
	}
	return string(b), nil
}

// message checks that f can hold a sub-message.
func message(f pbField) error {
	if f.typ != protowire.BytesType {
		return fmt.Errorf("field %d should be a message but has wire type %d", f.num, f.typ)
	}
	return nil
}

func pbErr(n int, off int64) error {
	err := protowire.ParseError(n)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("offset %d: %w", off, errPBTruncated)
	}
	return fmt.Errorf("offset %d: %v", off, err)
}

// pbFinding turns a walk error into a finding: truncated or malformed.
func pbFinding(rule, format, member string, err error) Finding {
	class := ErrMalformed
	if errors.Is(err, errPBTruncated) {
		class = ErrTruncated
	}
	return Finding{Verdict: Suspicious, Member: member, Offset: -1, Rule: rule,
		Message: fmt.Sprintf("the %s file cannot be parsed: %v", format, err), Err: class}
}
