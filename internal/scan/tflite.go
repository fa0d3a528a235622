package scan

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// A TFLite model is a FlatBuffer (tensorflow/lite/schema/schema.fbs, file identifier "TFL3")
// whose Model table lists every operator code the graph uses. Builtin operators are
// TFLite's own kernels; a CUSTOM operator is looked up by name in whatever the loading
// program registered, i.e. native code outside the model (counted as code), except the
// few custom ops TFLite's builtin resolver ships; a "Flex" custom operator runs the
// TensorFlow op of that name through the Select TF ops delegate, so it is judged like a
// SavedModel op. Offsets are checked against the file before every read; tensor buffers are
// never read.

var tfliteIdentifier = []byte("TFL3")

// tfliteCustomBuiltin are custom operators that TFLite's BuiltinOpResolver registers itself.
var tfliteCustomBuiltin = setOf("TFLite_Detection_PostProcess", "Mfcc", "AudioSpectrogram")

const (
	tfliteCustom     = 32 // BuiltinOperator_CUSTOM
	tfliteMaxOpCodes = 1 << 16
)

var errFBBounds = errors.New("an offset points outside the file")

type flatBuffer struct {
	src  *pbSource
	size int64
}

func (fb *flatBuffer) u32(off int64) (uint32, error) {
	b := fb.src.at(off, 4)
	if off < 0 || len(b) < 4 {
		return 0, fmt.Errorf("offset %d: %w", off, errFBBounds)
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (fb *flatBuffer) u16(off int64) (uint16, error) {
	b := fb.src.at(off, 2)
	if off < 0 || len(b) < 2 {
		return 0, fmt.Errorf("offset %d: %w", off, errFBBounds)
	}
	return binary.LittleEndian.Uint16(b), nil
}

// field returns the position of field id of the table at t, or 0 when it is absent.
func (fb *flatBuffer) field(t int64, id int) (int64, error) {
	so, err := fb.u32(t)
	if err != nil {
		return 0, err
	}
	vt := t - int64(int32(so))
	vtSize, err := fb.u16(vt)
	if err != nil {
		return 0, err
	}
	if vtSize < 4 || vtSize%2 != 0 {
		return 0, fmt.Errorf("vtable at %d has size %d", vt, vtSize)
	}
	if 4+2*id >= int(vtSize) {
		return 0, nil
	}
	rel, err := fb.u16(vt + 4 + 2*int64(id))
	if err != nil || rel == 0 {
		return 0, err
	}
	return t + int64(rel), nil
}

// indirect follows the uoffset at p (to a table, vector or string).
func (fb *flatBuffer) indirect(p int64) (int64, error) {
	off, err := fb.u32(p)
	if err != nil {
		return 0, err
	}
	q := p + int64(off)
	if q >= fb.size {
		return 0, fmt.Errorf("offset %d: %w", q, errFBBounds)
	}
	return q, nil
}

// vector returns the position of the first element and the length of the vector at p,
// checking that elemSize*length bytes fit in the file.
func (fb *flatBuffer) vector(p int64, elemSize int64) (int64, int64, error) {
	v, err := fb.indirect(p)
	if err != nil {
		return 0, 0, err
	}
	n, err := fb.u32(v)
	if err != nil {
		return 0, 0, err
	}
	if int64(n)*elemSize > fb.size-v-4 {
		return 0, 0, fmt.Errorf("a vector of %d elements at %d runs past the file: %w", n, v, errFBBounds)
	}
	return v + 4, int64(n), nil
}

func (fb *flatBuffer) string(p int64) (string, error) {
	start, n, err := fb.vector(p, 1)
	if err != nil {
		return "", err
	}
	if n > pbMaxString {
		return "", fmt.Errorf("a name of %d bytes", n)
	}
	return string(fb.src.at(start, int(n))), nil
}

func looksLikeTFLite(head []byte) bool {
	return len(head) >= 8 && string(head[4:8]) == string(tfliteIdentifier)
}

// scanTFLite checks a TFLite model's operator codes.
func scanTFLite(r io.ReaderAt, size int64, rep *Report, member string) {
	fb := &flatBuffer{src: newPBSource(r, size), size: size}
	customs, flex, err := fb.operatorCodes()
	if err == nil {
		err = fb.checkOperators()
	}
	if err != nil {
		class := ErrMalformed
		if errors.Is(err, errFBBounds) {
			class = ErrTruncated
		}
		rep.add(Finding{Verdict: Suspicious, Member: member, Offset: -1, Rule: "tflite.malformed",
			Message: "the TFLite model cannot be parsed: " + err.Error(), Err: class})
	}
	for _, op := range flex {
		tfOp := strings.TrimPrefix(op, "Flex")
		if why, ok := tfDangerousOps[tfOp]; ok {
			rep.add(Finding{Verdict: Dangerous, Member: member, Offset: -1, Rule: "tflite.flex-op", Err: ErrDangerousOpcode,
				Message: fmt.Sprintf("operator %s runs TensorFlow's %s through the Select TF ops delegate, which %s", op, tfOp, why)})
		} else if why, ok := tfSuspiciousOps[tfOp]; ok {
			rep.add(Finding{Verdict: Suspicious, Member: member, Offset: -1, Rule: "tflite.flex-op", Err: ErrDangerousOpcode,
				Message: fmt.Sprintf("operator %s runs TensorFlow's %s through the Select TF ops delegate, which %s", op, tfOp, why)})
		}
	}
	for _, op := range customs {
		rep.add(Finding{Verdict: Safe, Member: member, Offset: -1, Rule: "code.tflite-custom-op", Err: ErrNote,
			Message: fmt.Sprintf("custom operator %q: the interpreter runs it from native code the loading program registers", op)})
	}
}

// operatorCodes returns the model's custom operator names (other than TFLite's own and the
// Flex ones) and its Flex operator names.
func (fb *flatBuffer) operatorCodes() (customs, flex []string, err error) {
	root, err := fb.indirect(0)
	if err != nil {
		return nil, nil, err
	}
	codes, err := fb.field(root, 1) // Model.operator_codes
	if err != nil || codes == 0 {
		return nil, nil, err
	}
	start, n, err := fb.vector(codes, 4)
	if err != nil {
		return nil, nil, err
	}
	if n > tfliteMaxOpCodes {
		return nil, nil, fmt.Errorf("%d operator codes (the limit is %d)", n, tfliteMaxOpCodes)
	}
	seen := map[string]bool{}
	for i := range n {
		oc, err := fb.indirect(start + 4*i)
		if err != nil {
			return customs, flex, err
		}
		// builtin_code (field 3, int32) supersedes deprecated_builtin_code (field 0, byte)
		// when the latter is 127 or the former is larger.
		code := int32(0)
		if p, err := fb.field(oc, 0); err != nil {
			return customs, flex, err
		} else if p != 0 {
			b := fb.src.at(p, 1)
			if len(b) < 1 {
				return customs, flex, errFBBounds
			}
			code = int32(int8(b[0]))
		}
		if p, err := fb.field(oc, 3); err != nil {
			return customs, flex, err
		} else if p != 0 {
			v, err := fb.u32(p)
			if err != nil {
				return customs, flex, err
			}
			code = max(code, int32(v))
		}
		if code != tfliteCustom {
			continue
		}
		name := ""
		if p, err := fb.field(oc, 1); err != nil {
			return customs, flex, err
		} else if p != 0 {
			if name, err = fb.string(p); err != nil {
				return customs, flex, err
			}
		}
		if seen[name] || tfliteCustomBuiltin[name] {
			continue
		}
		seen[name] = true
		if strings.HasPrefix(name, "Flex") {
			flex = append(flex, name)
		} else {
			customs = append(customs, name)
		}
	}
	return customs, flex, nil
}

// tfliteMaxOperators bounds the operators walked across all subgraphs.
const tfliteMaxOperators = 1 << 20

// vectorAt returns the vector in field id of table t (position of the first element and
// its length), or a zero length when the field is absent.
func (fb *flatBuffer) vectorAt(t int64, id int, elemSize int64) (int64, int64, error) {
	p, err := fb.field(t, id)
	if err != nil || p == 0 {
		return 0, 0, err
	}
	return fb.vector(p, elemSize)
}

// checkOperators checks that every operator of every subgraph names an operator code the
// model has (Operator.opcode_index), as the interpreter does before it runs anything.
func (fb *flatBuffer) checkOperators() error {
	root, err := fb.indirect(0)
	if err != nil {
		return err
	}
	_, nCodes, err := fb.vectorAt(root, 1, 4)
	if err != nil {
		return err
	}
	graphs, nGraphs, err := fb.vectorAt(root, 2, 4)
	if err != nil {
		return err
	}
	walked := int64(0)
	for g := range nGraphs {
		sg, err := fb.indirect(graphs + 4*g)
		if err != nil {
			return err
		}
		ops, nOps, err := fb.vectorAt(sg, 3, 4)
		if err != nil {
			return err
		}
		if walked += nOps; walked > tfliteMaxOperators {
			return fmt.Errorf("more than %d operators", tfliteMaxOperators)
		}
		for o := range nOps {
			op, err := fb.indirect(ops + 4*o)
			if err != nil {
				return err
			}
			p, err := fb.field(op, 0)
			if err != nil {
				return err
			}
			idx := uint32(0)
			if p != 0 {
				if idx, err = fb.u32(p); err != nil {
					return err
				}
			}
			if int64(idx) >= nCodes {
				return fmt.Errorf("operator %d of subgraph %d names operator code %d of %d", o, g, idx, nCodes)
			}
		}
	}
	return nil
}
