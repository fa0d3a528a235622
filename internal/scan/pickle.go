package scan

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The pickle analyser runs a symbolic pickle machine over the opcode stream: it keeps a stack,
// a mark stack and a memo of abstract values (strings, numbers, containers, imported globals,
// call results), so STACK_GLOBAL operands are resolved through the memo the way an unpickler
// would, without importing or calling anything. It reads the stream once, front to back,
// holding only small values: long literals are skipped, or buffered up to a limit when they
// may be a nested pickle.

type pkind uint8

const (
	pkUnknown pkind = iota // a value the analyser cannot know (result of a lookup that failed, EXT, buffers)
	pkNone
	pkBool
	pkInt
	pkFloat
	pkStr
	pkBytes
	pkTuple
	pkList
	pkDict
	pkSet
	pkGlobal     // an imported object; str is "module.name"
	pkCall       // the result of calling something; str is the callee's name
	pkPersistent // what the loader's persistent_load returned
)

func (k pkind) String() string {
	return [...]string{"unknown", "None", "bool", "int", "float", "str", "bytes", "tuple", "list",
		"dict", "set", "global", "call result", "persistent object"}[k]
}

// pval is an abstract pickle value.
type pval struct {
	kind  pkind
	str   string // content of a short str/bytes; name for pkGlobal and pkCall
	long  bool   // a str/bytes too long to keep
	n     int64  // int value, or number of items for containers
	items []pval // first items of a tuple or list (see keepItems)
}

const (
	keepLiteral = 512 // longest str/bytes literal kept as a value
	keepItems   = 16  // tuple and list items kept
	maxFindings = 1000
)

// pickleScanner analyses one stream of stacked pickles.
type pickleScanner struct {
	cfg    *config
	rep    *Report
	member string
	base   int64 // offset of the stream's first byte within member (for findings)
	depth  int   // nesting depth (pickles within pickles)
	label  string

	r   *bufio.Reader
	pos int64 // offset of the next byte to read, relative to the stream start

	// per-pickle state
	stack    []pval
	marks    []int
	memo     map[int64]pval
	frameEnd int64
	frameBad bool
	limitHit bool

	keepAllItems bool              // keep every list item (the legacy storage-key list)
	onPersistent func(pval, int64) // called for each persistent id (BINPERSID/PERSID)
	imports      int               // import opcodes reached with decodable operands, all pickles
	plausible    int               // of which, plausible Python names
	calls        int               // calls reached (REDUCE, INST, OBJ, NEWOBJ...), all pickles
	unlistedEnd  int64             // stream offset after the first import of a plausible name off the allowlist; -1 if none
	unlisted     string            // that import's "module.name"
	seen         map[string]bool   // de-duplicates global findings
	scratch      [8]byte
}

func newPickleScanner(cfg *config, rep *Report, member string, r io.Reader, base int64, depth int) *pickleScanner {
	br, ok := r.(*bufio.Reader)
	if !ok {
		n := int64(64 << 10)
		if sized, ok := r.(interface{ Size() int64 }); ok {
			n = bufferSize(sized.Size())
		}
		br = bufio.NewReaderSize(r, int(n))
	}
	return &pickleScanner{cfg: cfg, rep: rep, member: member, r: br, base: base, depth: depth, seen: map[string]bool{}, unlistedEnd: -1}
}

// pickleError is a point where a real unpickler would raise: the pickle ends there.
type pickleError struct {
	off       int64
	op        string
	msg       string
	truncated bool
	limit     bool // a scanner limit, not the pickle's fault
}

func (e *pickleError) Error() string { return e.msg }

func (s *pickleScanner) fail(op byte, format string, args ...any) *pickleError {
	return &pickleError{off: s.pos, op: opcodeNames[op], msg: fmt.Sprintf(format, args...)}
}

func (s *pickleScanner) add(f Finding) {
	if len(s.rep.Findings) >= maxFindings {
		if !s.limitHit {
			s.limitHit = true
			s.rep.add(Finding{Verdict: Suspicious, Member: s.member, Offset: -1, Rule: "limit.findings",
				Message: fmt.Sprintf("more than %d findings; the rest are not listed", maxFindings), Err: ErrLimit})
		}
		if f.Verdict > s.rep.Verdict {
			s.rep.Verdict = f.Verdict
		}
		return
	}
	if f.Member == "" {
		f.Member = s.member
	}
	if s.label != "" {
		f.Message = s.label + f.Message
	}
	s.rep.add(f)
}

// stream results
type pickleStream struct {
	pickles  int  // pickles that reached STOP
	complete bool // the stream ended cleanly right after a STOP
	err      *pickleError
	last     pval // value returned by the last complete pickle
}

// scanAll scans stacked pickles until the stream ends. A stream that ends inside a pickle,
// or bytes after a STOP that do not form a pickle, are reported as malformed.
func (s *pickleScanner) scanAll() pickleStream {
	var res pickleStream
	for {
		if _, err := s.r.Peek(1); err != nil {
			res.complete = res.pickles > 0
			return res
		}
		v, perr := s.scanOne()
		if perr != nil {
			res.err = perr
			s.reportError(perr, res.pickles)
			return res
		}
		res.pickles++
		res.last = v
	}
}

func (s *pickleScanner) reportError(perr *pickleError, complete int) {
	rule, err, msg := "pickle.malformed", ErrMalformed, perr.msg
	if perr.truncated {
		rule, err = "pickle.truncated", ErrTruncated
	}
	if perr.limit {
		rule, err = "limit.stack", ErrLimit
	}
	if complete > 0 && s.imports == 0 {
		msg = fmt.Sprintf("bytes after pickle %d do not form a pickle: %s", complete, msg)
	}
	s.add(Finding{Verdict: Suspicious, Offset: s.base + perr.off, Opcode: perr.op, Rule: rule, Message: msg, Err: err})
}

// scanOne scans one pickle up to and including its STOP opcode and returns the value STOP pops.
func (s *pickleScanner) scanOne() (pval, *pickleError) {
	s.stack = s.stack[:0]
	s.marks = s.marks[:0]
	s.memo = map[int64]pval{}
	s.frameEnd = -1
	for {
		if s.frameEnd >= 0 && s.pos >= s.frameEnd {
			s.frameEnd = -1
		}
		opOff := s.pos
		op, err := s.readByte(0)
		if err != nil {
			return pval{}, s.eof(0, err)
		}
		if !isOpcode(op) {
			return pval{}, &pickleError{off: opOff, msg: fmt.Sprintf("byte 0x%02x is not a pickle opcode", op)}
		}
		done, v, perr := s.step(op, opOff)
		if perr != nil {
			if perr.off == 0 && perr.op == "" {
				perr.off = opOff
			}
			return pval{}, perr
		}
		if done {
			return v, nil
		}
	}
}

func (s *pickleScanner) eof(op byte, err error) *pickleError {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &pickleError{off: s.pos, op: opcodeNames[op], msg: "pickle ends before its STOP opcode", truncated: true}
	}
	return &pickleError{off: s.pos, op: opcodeNames[op], msg: "read error: " + err.Error()}
}

// checkFrame reports opcodes whose bytes straddle the end of a protocol-4 frame and frames
// opened inside frames. Picklers never write either; the C and Python unpicklers (and
// linear disassemblers) disagree on what such bytes mean, which hides payloads.
func (s *pickleScanner) checkFrame(n int64, op byte) {
	if s.frameEnd >= 0 && s.pos+n > s.frameEnd {
		s.frameViolation(op, fmt.Sprintf("%s straddles the end of its frame at offset %d", opcodeNames[op], s.base+s.frameEnd))
		s.frameEnd = -1
	}
}

func (s *pickleScanner) frameViolation(op byte, msg string) {
	if s.frameBad {
		return
	}
	s.frameBad = true
	s.add(Finding{Verdict: Dangerous, Offset: s.base + s.pos, Opcode: opcodeNames[op], Rule: "pickle.frame",
		Message: msg + ": loaders disagree on which opcodes follow", Err: ErrDangerousOpcode})
}

func (s *pickleScanner) readByte(op byte) (byte, error) {
	s.checkFrame(1, op)
	b, err := s.r.ReadByte()
	if err == nil {
		s.pos++
	}
	return b, err
}

func (s *pickleScanner) readN(n int, op byte) ([]byte, error) {
	s.checkFrame(int64(n), op)
	buf := s.scratch[:n]
	m, err := io.ReadFull(s.r, buf)
	s.pos += int64(m)
	return buf, err
}

// readLine reads a newline-terminated argument. Lines longer than keep are consumed but
// only their first keep bytes returned, with long set.
func (s *pickleScanner) readLine(op byte, keep int) (line string, long bool, err error) {
	var b []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		s.checkFrame(int64(len(chunk)), op)
		s.pos += int64(len(chunk))
		if len(b) < keep {
			take := min(len(chunk), keep-len(b))
			b = append(b, chunk[:take]...)
		} else {
			long = true
		}
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return "", false, err
		}
	}
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	} else {
		long = true
	}
	return string(b), long, nil
}

func (s *pickleScanner) push(v pval) *pickleError {
	if len(s.stack) >= s.cfg.maxStack {
		return &pickleError{off: s.pos, msg: fmt.Sprintf("stack deeper than %d; the rest is not scanned", s.cfg.maxStack), limit: true}
	}
	s.stack = append(s.stack, v)
	return nil
}

func (s *pickleScanner) pop(op byte) (pval, *pickleError) {
	floor := 0
	if len(s.marks) > 0 {
		floor = s.marks[len(s.marks)-1]
	}
	if len(s.stack) <= floor {
		return pval{}, s.fail(op, "%s on an empty stack", opcodeNames[op])
	}
	v := s.stack[len(s.stack)-1]
	s.stack = s.stack[:len(s.stack)-1]
	return v, nil
}

func (s *pickleScanner) top(op byte) (*pval, *pickleError) {
	floor := 0
	if len(s.marks) > 0 {
		floor = s.marks[len(s.marks)-1]
	}
	if len(s.stack) <= floor {
		return nil, s.fail(op, "%s on an empty stack", opcodeNames[op])
	}
	return &s.stack[len(s.stack)-1], nil
}

func (s *pickleScanner) popMark(op byte) ([]pval, *pickleError) {
	if len(s.marks) == 0 {
		return nil, s.fail(op, "%s without a MARK", opcodeNames[op])
	}
	m := s.marks[len(s.marks)-1]
	s.marks = s.marks[:len(s.marks)-1]
	items := s.stack[m:]
	s.stack = s.stack[:m]
	return items, nil
}

func container(kind pkind, items []pval, keepAll bool) pval {
	v := pval{kind: kind, n: int64(len(items))}
	keep := items
	if !keepAll && len(keep) > keepItems {
		keep = keep[:keepItems]
	}
	v.items = append([]pval(nil), keep...)
	return v
}

func (s *pickleScanner) memoPut(idx int64, v pval) {
	if len(s.memo) >= s.cfg.maxMemo {
		if _, ok := s.memo[idx]; !ok {
			if !s.limitHit {
				s.limitHit = true
				s.add(Finding{Verdict: Suspicious, Offset: s.base + s.pos, Rule: "limit.memo",
					Message: fmt.Sprintf("memo grows past %d entries; later lookups are unresolved", s.cfg.maxMemo), Err: ErrLimit})
			}
			return
		}
	}
	s.memo[idx] = v
}

// step executes one opcode symbolically. done is set by STOP.
func (s *pickleScanner) step(op byte, opOff int64) (done bool, ret pval, perr *pickleError) {
	switch op {
	case opMark:
		s.marks = append(s.marks, len(s.stack))
		if len(s.marks) > s.cfg.maxStack {
			return false, pval{}, &pickleError{off: s.pos, msg: fmt.Sprintf("more than %d open MARKs; the rest is not scanned", s.cfg.maxStack), limit: true}
		}
	case opStop:
		v, perr := s.pop(op)
		if perr != nil {
			return false, pval{}, perr
		}
		return true, v, nil
	case opPop:
		if len(s.stack) > 0 && (len(s.marks) == 0 || len(s.stack) > s.marks[len(s.marks)-1]) {
			s.stack = s.stack[:len(s.stack)-1]
		} else if _, perr := s.popMark(op); perr != nil {
			return false, pval{}, perr
		}
	case opPopMark:
		if _, perr := s.popMark(op); perr != nil {
			return false, pval{}, perr
		}
	case opDup:
		t, perr := s.top(op)
		if perr != nil {
			return false, pval{}, perr
		}
		return false, pval{}, s.push(*t)
	case opNone:
		return false, pval{}, s.push(pval{kind: pkNone})
	case opNewTrue, opNewFalse:
		return false, pval{}, s.push(pval{kind: pkBool, n: b2i(op == opNewTrue)})
	case opInt, opLong, opFloat:
		line, _, err := s.readLine(op, 64)
		if err != nil {
			return false, pval{}, s.eof(op, err)
		}
		return false, pval{}, s.pushNumberLine(op, line)
	case opBinInt:
		b, err := s.readN(4, op)
		if err != nil {
			return false, pval{}, s.eof(op, err)
		}
		return false, pval{}, s.push(pval{kind: pkInt, n: int64(int32(binary.LittleEndian.Uint32(b)))})
	case opBinInt1:
		b, err := s.readN(1, op)
		if err != nil {
			return false, pval{}, s.eof(op, err)
		}
		return false, pval{}, s.push(pval{kind: pkInt, n: int64(b[0])})
	case opBinInt2:
		b, err := s.readN(2, op)
		if err != nil {
			return false, pval{}, s.eof(op, err)
		}
		return false, pval{}, s.push(pval{kind: pkInt, n: int64(binary.LittleEndian.Uint16(b))})
	case opBinFloat:
		if _, err := s.readN(8, op); err != nil {
			return false, pval{}, s.eof(op, err)
		}
		return false, pval{}, s.push(pval{kind: pkFloat})
	case opLong1, opLong4:
		var n int64
		if op == opLong1 {
			b, err := s.readN(1, op)
			if err != nil {
				return false, pval{}, s.eof(op, err)
			}
			n = int64(b[0])
		} else {
			b, err := s.readN(4, op)
			if err != nil {
				return false, pval{}, s.eof(op, err)
			}
			n = int64(int32(binary.LittleEndian.Uint32(b)))
			if n < 0 {
				return false, pval{}, s.fail(op, "LONG4 with negative length %d", n)
			}
		}
		v, perr := s.literal(op, pkBytes, n)
		if perr != nil {
			return false, pval{}, perr
		}
		iv := pval{kind: pkInt}
		if !v.long {
			iv.n = decodeLong([]byte(v.str))
			iv.str = v.str
		}
		return false, pval{}, s.push(iv)
	case opString:
		line, long, err := s.readLine(op, keepLiteral+2)
		if err != nil {
			return false, pval{}, s.eof(op, err)
		}
		v, ok := decodeStringLine(line, long)
		if !ok {
			return false, pval{}, s.fail(op, "STRING argument is not a quoted string")
		}
		s.probeNested(op, opOff, []byte(v.str), false)
		return false, pval{}, s.push(v)
	case opUnicode:
		line, long, err := s.readLine(op, keepLiteral)
		if err != nil {
			return false, pval{}, s.eof(op, err)
		}
		v := pval{kind: pkStr, str: decodeRawUnicodeEscape(line), long: long}
		if !long {
			s.probeNested(op, opOff, []byte(v.str), true)
		}
		return false, pval{}, s.push(v)
	case opBinString, opBinUnicode, opBinBytes:
		b, err := s.readN(4, op)
		if err != nil {
			return false, pval{}, s.eof(op, err)
		}
		n := int64(binary.LittleEndian.Uint32(b))
		if op == opBinString && int32(n) < 0 {
			return false, pval{}, s.fail(op, "BINSTRING with negative length")
		}
		return s.pushLiteral(op, n)
	case opShortBinString, opShortBinUnicode, opShortBinBytes:
		b, err := s.readN(1, op)
		if err != nil {
			return false, pval{}, s.eof(op, err)
		}
		return s.pushLiteral(op, int64(b[0]))
	case opBinUnicode8, opBinBytes8, opByteArray8:
		b, err := s.readN(8, op)
		if err != nil {
			return false, pval{}, s.eof(op, err)
		}
		n := binary.LittleEndian.Uint64(b)
		if n > math.MaxInt64 {
			return false, pval{}, s.fail(op, "%s length %d is too large", opcodeNames[op], n)
		}
		return s.pushLiteral(op, int64(n))
	case opEmptyTuple:
		return false, pval{}, s.push(pval{kind: pkTuple})
	case opTuple:
		items, perr := s.popMark(op)
		if perr != nil {
			return false, pval{}, perr
		}
		return false, pval{}, s.push(container(pkTuple, items, false))
	case opTuple1, opTuple2, opTuple3:
		n := int(op-opTuple1) + 1
		items := make([]pval, n)
		for i := n - 1; i >= 0; i-- {
			v, perr := s.pop(op)
			if perr != nil {
				return false, pval{}, perr
			}
			items[i] = v
		}
		return false, pval{}, s.push(container(pkTuple, items, false))
	case opEmptyList:
		return false, pval{}, s.push(pval{kind: pkList})
	case opList:
		items, perr := s.popMark(op)
		if perr != nil {
			return false, pval{}, perr
		}
		return false, pval{}, s.push(container(pkList, items, s.keepAllItems))
	case opEmptyDict:
		return false, pval{}, s.push(pval{kind: pkDict})
	case opDict:
		items, perr := s.popMark(op)
		if perr != nil {
			return false, pval{}, perr
		}
		if len(items)%2 != 0 {
			return false, pval{}, s.fail(op, "DICT with an odd number of items")
		}
		return false, pval{}, s.push(pval{kind: pkDict, n: int64(len(items) / 2)})
	case opEmptySet:
		return false, pval{}, s.push(pval{kind: pkSet})
	case opFrozenSet:
		items, perr := s.popMark(op)
		if perr != nil {
			return false, pval{}, perr
		}
		return false, pval{}, s.push(pval{kind: pkSet, n: int64(len(items))})
	case opAppend, opSetItem, opAppends, opSetItems, opAddItems:
		return false, pval{}, s.containerOp(op, opOff)
	case opGet, opBinGet, opLongBinGet:
		idx, perr := s.memoIndex(op)
		if perr != nil {
			return false, pval{}, perr
		}
		v, ok := s.memo[idx]
		if !ok {
			s.add(Finding{Verdict: Suspicious, Offset: s.base + opOff, Opcode: opcodeNames[op], Rule: "pickle.memo-missing",
				Message: fmt.Sprintf("memo slot %d was never stored; the value is unresolved", idx), Err: ErrMalformed})
			v = pval{kind: pkUnknown}
		}
		return false, pval{}, s.push(v)
	case opPut, opBinPut, opLongBinPut:
		idx, perr := s.memoIndex(op)
		if perr != nil {
			return false, pval{}, perr
		}
		if idx < 0 {
			return false, pval{}, s.fail(op, "negative memo index")
		}
		t, perr := s.top(op)
		if perr != nil {
			return false, pval{}, perr
		}
		s.memoPut(idx, *t)
	case opMemoize:
		t, perr := s.top(op)
		if perr != nil {
			return false, pval{}, perr
		}
		s.memoPut(int64(len(s.memo)), *t)
	case opProto:
		b, err := s.readN(1, op)
		if err != nil {
			return false, pval{}, s.eof(op, err)
		}
		if b[0] > 5 {
			return false, pval{}, s.fail(op, "unsupported pickle protocol %d", b[0])
		}
	case opFrame:
		if s.frameEnd >= 0 && s.pos < s.frameEnd {
			s.frameViolation(op, "FRAME opened inside a frame")
		}
		b, err := s.readN(8, op)
		if err != nil {
			return false, pval{}, s.eof(op, err)
		}
		n := binary.LittleEndian.Uint64(b)
		if n > math.MaxInt64-uint64(s.pos) {
			return false, pval{}, s.fail(op, "frame length %d is too large", n)
		}
		s.frameEnd = s.pos + int64(n)
	case opGlobal, opInst:
		return false, pval{}, s.importOp(op, opOff)
	case opStackGlobal:
		name, perr := s.pop(op)
		if perr != nil {
			return false, pval{}, perr
		}
		module, perr := s.pop(op)
		if perr != nil {
			return false, pval{}, perr
		}
		return false, pval{}, s.push(s.stackGlobal(opOff, module, name))
	case opExt1, opExt2, opExt4:
		n := map[byte]int{opExt1: 1, opExt2: 2, opExt4: 4}[op]
		b, err := s.readN(n, op)
		if err != nil {
			return false, pval{}, s.eof(op, err)
		}
		var code uint32
		for i := n - 1; i >= 0; i-- {
			code = code<<8 | uint32(b[i])
		}
		s.imports++
		s.plausible++
		s.addGlobalFinding(opOff, op, "unknown", globalJudgement{Dangerous, "global.unresolved",
			fmt.Sprintf("imports extension code %d from the copyreg registry, which cannot be resolved statically", code), ErrDangerousGlobal})
		return false, pval{}, s.push(pval{kind: pkUnknown})
	case opReduce, opNewObj:
		return false, pval{}, s.popCall(op, opOff, 0)
	case opNewObjEx:
		return false, pval{}, s.popCall(op, opOff, 1) // kwargs above the args
	case opObj:
		items, perr := s.popMark(op)
		if perr != nil {
			return false, pval{}, perr
		}
		if len(items) == 0 {
			return false, pval{}, s.fail(op, "OBJ without a class")
		}
		return false, pval{}, s.push(s.call(op, opOff, items[0], container(pkTuple, items[1:], false)))
	case opBuild:
		if _, perr := s.pop(op); perr != nil {
			return false, pval{}, perr
		}
		t, perr := s.top(op)
		if perr != nil {
			return false, pval{}, perr
		}
		if t.kind == pkGlobal || t.kind == pkUnknown {
			what := "an unresolved object"
			if t.kind == pkGlobal {
				what = "the imported object " + t.str
			}
			s.add(Finding{Verdict: Dangerous, Offset: s.base + opOff, Opcode: "BUILD", Global: t.str, Rule: "pickle.build-on-global",
				Message: "BUILD sets attributes on " + what + ", changing what later imports resolve to", Err: ErrDangerousOpcode})
		}
	case opPersID:
		line, long, err := s.readLine(op, keepLiteral)
		if err != nil {
			return false, pval{}, s.eof(op, err)
		}
		pid := pval{kind: pkStr, str: line, long: long}
		if s.onPersistent != nil {
			s.onPersistent(pid, s.base+opOff)
		}
		return false, pval{}, s.push(pval{kind: pkPersistent})
	case opBinPersID:
		pid, perr := s.pop(op)
		if perr != nil {
			return false, pval{}, perr
		}
		if s.onPersistent != nil {
			s.onPersistent(pid, s.base+opOff)
		}
		return false, pval{}, s.push(pval{kind: pkPersistent})
	case opNextBuffer:
		return false, pval{}, s.push(pval{kind: pkUnknown})
	case opReadonlyBuffer:
		if _, perr := s.top(op); perr != nil {
			return false, pval{}, perr
		}
	default:
		return false, pval{}, s.fail(op, "unhandled opcode 0x%02x", op)
	}
	return false, pval{}, nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func (s *pickleScanner) pushNumberLine(op byte, line string) *pickleError {
	switch op {
	case opInt:
		if line == "00" || line == "01" {
			return s.push(pval{kind: pkBool, n: int64(line[1] - '0')})
		}
		n, ok := pythonInt(line)
		if !ok {
			return s.fail(op, "INT argument %q is not an integer", trunc(line))
		}
		return s.push(pval{kind: pkInt, n: n})
	case opLong:
		n, ok := pythonInt(strings.TrimSuffix(line, "L"))
		if !ok {
			return s.fail(op, "LONG argument %q is not an integer", trunc(line))
		}
		return s.push(pval{kind: pkInt, n: n})
	default:
		if !pythonFloat(line) {
			return s.fail(op, "FLOAT argument %q is not a number", trunc(line))
		}
		return s.push(pval{kind: pkFloat})
	}
}

// pythonInt accepts what the unpicklers accept for INT, LONG, GET and PUT arguments (Python's
// int(), C's strtol and PyLong_FromString): surrounding whitespace, a sign, 0x/0o/0b
// prefixes, leading zeros and single underscores between digits. It errs on accepting more:
// rejecting what a loader accepts would stop the scan early and hide what follows. Values
// beyond int64 saturate.
func pythonInt(text string) (int64, bool) {
	t := strings.TrimSpace(text)
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	base := 10
	if len(t) > 1 && t[0] == '0' {
		switch t[1] | 0x20 {
		case 'x':
			base = 16
		case 'o':
			base = 8
		case 'b':
			base = 2
		}
		if base != 10 {
			t = strings.TrimPrefix(t[2:], "_")
		}
	}
	if t == "" || t[0] == '_' || t[len(t)-1] == '_' || strings.Contains(t, "__") {
		return 0, false
	}
	digits := strings.ReplaceAll(t, "_", "")
	var v uint64
	saturated := false
	for _, c := range digits {
		var d int
		switch {
		case c >= '0' && c <= '9':
			d = int(c - '0')
		case c >= 'a' && c <= 'z':
			d = int(c-'a') + 10
		case c >= 'A' && c <= 'Z':
			d = int(c-'A') + 10
		default:
			return 0, false
		}
		if d >= base {
			return 0, false
		}
		if v > (math.MaxInt64-uint64(d))/uint64(base) {
			saturated = true
			continue
		}
		v = v*uint64(base) + uint64(d)
	}
	if saturated {
		v = math.MaxInt64
	}
	if neg {
		return -int64(v), true
	}
	return int64(v), true
}

// pythonFloat accepts what Python's float() accepts, near enough: decimal and exponent
// forms with underscores, inf, infinity and nan, any case and sign.
func pythonFloat(text string) bool {
	t := strings.ToLower(strings.TrimSpace(text))
	t = strings.TrimLeft(t, "+-")
	switch t {
	case "inf", "infinity", "nan":
		return true
	}
	if strings.Contains(t, "__") || strings.HasPrefix(t, "_") || strings.HasSuffix(t, "_") || strings.HasPrefix(t, "0x") {
		return false
	}
	_, err := strconv.ParseFloat(strings.ReplaceAll(t, "_", ""), 64)
	return err == nil
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func decodeLong(b []byte) int64 {
	if len(b) == 0 {
		return 0
	}
	if len(b) > 8 {
		return math.MaxInt64
	}
	var u uint64
	for i := len(b) - 1; i >= 0; i-- {
		u = u<<8 | uint64(b[i])
	}
	shift := uint(64 - 8*len(b))
	return int64(u<<shift) >> shift
}

// decodeStringLine decodes a protocol-0 STRING argument: a Python repr in quotes.
func decodeStringLine(line string, long bool) (pval, bool) {
	if long {
		if len(line) < 1 || (line[0] != '\'' && line[0] != '"') {
			return pval{}, false
		}
		return pval{kind: pkStr, long: true}, true
	}
	if len(line) < 2 || line[0] != line[len(line)-1] || (line[0] != '\'' && line[0] != '"') {
		return pval{}, false
	}
	body := line[1 : len(line)-1]
	if !strings.Contains(body, `\`) {
		return pval{kind: pkStr, str: body}, true
	}
	out, ok := unescapePython(body)
	if !ok {
		return pval{kind: pkStr, long: true}, true
	}
	return pval{kind: pkStr, str: out}, true
}

// unescapePython undoes the escapes Python's repr and string-escape codec produce.
func unescapePython(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			return "", false
		}
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '\\', '\'', '"':
			b.WriteByte(s[i])
		case 'x':
			if i+2 >= len(s) {
				return "", false
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", false
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			if s[i] >= '0' && s[i] <= '7' {
				j := i
				for j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '7' {
					j++
				}
				v, _ := strconv.ParseUint(s[i:j], 8, 16)
				b.WriteByte(byte(v))
				i = j - 1
				continue
			}
			b.WriteByte('\\')
			b.WriteByte(s[i])
		}
	}
	return b.String(), true
}

// decodeRawUnicodeEscape decodes the raw-unicode-escape text of UNICODE (\uXXXX, \UXXXXXXXX).
func decodeRawUnicodeEscape(s string) string {
	if !strings.Contains(s, `\u`) && !strings.Contains(s, `\U`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U') {
			n := 4
			if s[i+1] == 'U' {
				n = 8
			}
			if i+2+n <= len(s) {
				if v, err := strconv.ParseUint(s[i+2:i+2+n], 16, 32); err == nil {
					b.WriteRune(rune(v))
					i += 1 + n
					continue
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func (s *pickleScanner) memoIndex(op byte) (int64, *pickleError) {
	switch op {
	case opGet, opPut:
		line, _, err := s.readLine(op, 32)
		if err != nil {
			return 0, s.eof(op, err)
		}
		n, ok := pythonInt(line)
		if !ok {
			return 0, s.fail(op, "%s argument %q is not an integer", opcodeNames[op], trunc(line))
		}
		return n, nil
	case opBinGet, opBinPut:
		b, err := s.readN(1, op)
		if err != nil {
			return 0, s.eof(op, err)
		}
		return int64(b[0]), nil
	default:
		b, err := s.readN(4, op)
		if err != nil {
			return 0, s.eof(op, err)
		}
		return int64(binary.LittleEndian.Uint32(b)), nil
	}
}

// pushLiteral reads a length-prefixed str or bytes literal.
func (s *pickleScanner) pushLiteral(op byte, n int64) (bool, pval, *pickleError) {
	kind := pkBytes
	switch op {
	case opBinUnicode, opShortBinUnicode, opBinUnicode8:
		kind = pkStr
	}
	v, perr := s.literal(op, kind, n)
	if perr != nil {
		return false, pval{}, perr
	}
	return false, pval{}, s.push(v)
}

// literal consumes n bytes of a literal. Short ones are kept as the value; longer ones
// are skipped, except that one that may be a nested pickle (and fits the nested limit) is
// buffered and scanned as one.
func (s *pickleScanner) literal(op byte, kind pkind, n int64) (pval, *pickleError) {
	start := s.pos
	s.checkFrame(n, op)
	if n <= keepLiteral {
		buf := make([]byte, n)
		m, err := io.ReadFull(s.r, buf)
		s.pos += int64(m)
		if err != nil {
			return pval{}, s.eof(op, err)
		}
		if kind == pkStr && !utf8.Valid(buf) {
			return pval{}, &pickleError{off: start, op: opcodeNames[op], msg: "string literal is not valid UTF-8"}
		}
		if op != opLong1 && op != opLong4 {
			s.probeNested(op, start, buf, kind == pkStr)
		}
		return pval{kind: kind, str: string(buf)}, nil
	}
	head, _ := s.r.Peek(2)
	mayNest := len(head) > 0 && isOpcode(head[0]) && op != opLong1 && op != opLong4
	if kind == pkStr && len(head) == 2 && head[0] == 0xc2 && head[1] == 0x80 {
		mayNest = true // U+0080: the latin-1 text of a PROTO opcode
	}
	if mayNest && n <= s.cfg.maxNestedPickle {
		// Grown as read, so a length the stream cannot back costs no allocation.
		buf, err := io.ReadAll(io.LimitReader(s.r, n))
		s.pos += int64(len(buf))
		if err == nil && int64(len(buf)) < n {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return pval{}, s.eof(op, err)
		}
		s.probeNested(op, start, buf, kind == pkStr)
		return pval{kind: kind, long: true}, nil
	}
	if mayNest && len(head) == 2 && head[0] == opProto && head[1] <= 5 {
		s.add(Finding{Verdict: Suspicious, Offset: s.base + start, Opcode: opcodeNames[op], Rule: "limit.nested",
			Message: fmt.Sprintf("a %d-byte literal starts like a pickle but is larger than the nested-pickle limit; not scanned", n), Err: ErrLimit})
	}
	m, err := s.r.Discard(int(min(n, math.MaxInt)))
	s.pos += int64(m)
	if err != nil {
		return pval{}, s.eof(op, err)
	}
	return pval{kind: kind, long: true}, nil
}

// probeNested scans a literal as a pickle of its own (pickle.loads(b"..."), or a string
// turned to bytes with _codecs.encode(s, "latin1")), and reports what it finds if the
// literal is a pickle that imports something.
func (s *pickleScanner) probeNested(op byte, off int64, b []byte, isStr bool) {
	if len(b) == 0 || s.depth >= s.cfg.maxDepth {
		return
	}
	if isStr {
		lat, ok := latin1(b)
		if !ok {
			return
		}
		b = lat
	}
	if !isOpcode(b[0]) || !bytes.ContainsAny(b, string(importOpcodes)) {
		return
	}
	probe := &Report{}
	// A small buffer: most probes end within a few bytes, and big pickles hold many literals.
	ns := newPickleScanner(s.cfg, probe, s.member, bufio.NewReaderSize(bytes.NewReader(b), max(16, min(len(b), 64<<10))), s.base+off, s.depth+1)
	ns.label = fmt.Sprintf("in a pickle nested in the %s literal at offset %d: ", opcodeNames[op], s.base+off)
	ns.scanAll()
	if ns.imports == 0 {
		return
	}
	s.imports += ns.imports
	s.plausible += ns.plausible
	for _, g := range probe.Globals {
		s.rep.addGlobal(g)
	}
	for _, f := range probe.Findings {
		s.add(f)
	}
}

func latin1(b []byte) ([]byte, bool) {
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r > 0xff || r == utf8.RuneError && size == 1 {
			return nil, false
		}
		out = append(out, byte(r))
		b = b[size:]
	}
	return out, true
}

func (s *pickleScanner) containerOp(op byte, opOff int64) *pickleError {
	var target *pval
	var appended pval
	switch op {
	case opAppend:
		v, perr := s.pop(op)
		if perr != nil {
			return perr
		}
		appended = v
	case opSetItem:
		for range 2 {
			if _, perr := s.pop(op); perr != nil {
				return perr
			}
		}
	default:
		items, perr := s.popMark(op)
		if perr != nil {
			return perr
		}
		if op == opSetItems && len(items)%2 != 0 {
			return s.fail(op, "SETITEMS with an odd number of items")
		}
		if op == opAppends && s.keepAllItems {
			t, perr := s.top(op)
			if perr != nil {
				return perr
			}
			t.items = append(t.items, items...)
			t.n += int64(len(items))
		}
	}
	target, perr := s.top(op)
	if perr != nil {
		return perr
	}
	if op == opAppend && s.keepAllItems && target.kind == pkList {
		// Picklers write a one-item batch with APPEND (a legacy checkpoint's list of one
		// storage key): the item is kept like APPENDS items are.
		target.items = append(target.items, appended)
		target.n++
	}
	switch target.kind {
	case pkList, pkDict, pkSet, pkCall, pkPersistent:
		return nil
	case pkGlobal, pkUnknown:
		s.add(Finding{Verdict: Dangerous, Offset: s.base + opOff, Opcode: opcodeNames[op], Global: target.str, Rule: "pickle.mutate-global",
			Message: fmt.Sprintf("%s on %s calls its methods", opcodeNames[op], describe(*target)), Err: ErrDangerousOpcode})
		return nil
	}
	return s.fail(op, "%s on a %s", opcodeNames[op], target.kind)
}

func describe(v pval) string {
	switch v.kind {
	case pkGlobal:
		return "the imported object " + v.str
	case pkCall:
		return "the result of calling " + v.str
	case pkUnknown:
		return "an unresolved value"
	case pkInt:
		return "an int"
	}
	return "a " + v.kind.String()
}

// importOp handles GLOBAL and INST, whose operands are two text lines.
func (s *pickleScanner) importOp(op byte, opOff int64) *pickleError {
	module, mlong, err := s.readLine(op, 256)
	if err != nil {
		return s.eof(op, err)
	}
	name, nlong, err := s.readLine(op, 256)
	if err != nil {
		return s.eof(op, err)
	}
	if !utf8.ValidString(module) || !utf8.ValidString(name) {
		// CPython decodes both lines as UTF-8 before importing: this fails before any import.
		return s.fail(op, "%s operands are not UTF-8", opcodeNames[op])
	}
	s.imports++
	j := judgeGlobal(module, name, s.cfg.allowed)
	g := normaliseModule(module) + "." + name
	if mlong || nlong {
		j = globalJudgement{Dangerous, "global.unresolved", "import name longer than 256 bytes", ErrDangerousGlobal}
		g = "unknown"
	}
	if plausibleDotted(module) && plausibleDotted(name) {
		s.plausible++
	}
	s.addGlobalFinding(opOff, op, g, j)
	gv := pval{kind: pkGlobal, str: g}
	if op == opGlobal {
		return s.push(gv)
	}
	args, perr := s.popMark(op)
	if perr != nil {
		return perr
	}
	return s.push(s.call(op, opOff, gv, container(pkTuple, args, false)))
}

func (s *pickleScanner) stackGlobal(opOff int64, module, name pval) pval {
	s.imports++
	if module.kind == pkStr && name.kind == pkStr && !module.long && !name.long {
		j := judgeGlobal(module.str, name.str, s.cfg.allowed)
		g := normaliseModule(module.str) + "." + name.str
		if plausibleDotted(module.str) && plausibleDotted(name.str) {
			s.plausible++
		}
		s.addGlobalFinding(opOff, opStackGlobal, g, j)
		return pval{kind: pkGlobal, str: g}
	}
	s.plausible++
	show := func(v pval) string {
		if v.kind == pkStr && !v.long {
			return v.str
		}
		return "unknown"
	}
	g := show(module) + "." + show(name)
	if (module.kind != pkStr && module.kind != pkUnknown && module.kind != pkGlobal && module.kind != pkCall && module.kind != pkPersistent) ||
		(name.kind != pkStr && name.kind != pkUnknown && name.kind != pkGlobal && name.kind != pkCall && name.kind != pkPersistent) {
		// CPython requires both operands to be str and raises otherwise: nothing is imported.
		s.addGlobalFinding(opOff, opStackGlobal, g, globalJudgement{Suspicious, "global.invalid",
			fmt.Sprintf("STACK_GLOBAL operands are a %s and a %s, which loaders reject", module.kind, name.kind), ErrUnlistedGlobal})
		return pval{kind: pkUnknown}
	}
	s.addGlobalFinding(opOff, opStackGlobal, g, globalJudgement{Dangerous, "global.unresolved",
		fmt.Sprintf("STACK_GLOBAL operands are computed (%s, %s), not literal strings: the import cannot be resolved statically", describe(module), describe(name)), ErrDangerousGlobal})
	return pval{kind: pkGlobal, str: g}
}

func (s *pickleScanner) addGlobalFinding(opOff int64, op byte, g string, j globalJudgement) {
	if g != "unknown" && !strings.Contains(g, "unknown") {
		s.rep.addGlobal(g)
	}
	if j.verdict == Safe {
		return
	}
	if s.unlistedEnd < 0 && j.rule != "global.invalid" {
		// An unpickler imports the module here, before anything can fail later on.
		s.unlistedEnd, s.unlisted = s.pos, g
	}
	key := s.member + "|" + j.rule + "|" + g
	if s.seen[key] {
		if j.verdict > s.rep.Verdict {
			s.rep.Verdict = j.verdict
		}
		return
	}
	if len(s.rep.Findings) < maxFindings { // past the cap, s.add only keeps the verdict
		s.seen[key] = true
	}
	msg := j.reason
	if msg == "" {
		msg = "imports " + g
	} else {
		msg = "imports " + g + ": " + msg
	}
	s.add(Finding{Verdict: j.verdict, Offset: s.base + opOff, Opcode: opcodeNames[op], Global: g, Rule: j.rule, Message: msg, Err: j.err})
}

// call judges calling callee: allowlisted imports are what checkpoints call; calling
// anything computed (a call's result, an unresolved value) is how gadget chains run code.
// popCall pops what a calling opcode consumes (extra values, then the arguments, then the
// callable) and pushes the call's result.
func (s *pickleScanner) popCall(op byte, opOff int64, extra int) *pickleError {
	for range extra {
		if _, err := s.pop(op); err != nil {
			return err
		}
	}
	args, err := s.pop(op)
	if err != nil {
		return err
	}
	callee, err := s.pop(op)
	if err != nil {
		return err
	}
	return s.push(s.call(op, opOff, callee, args))
}

func (s *pickleScanner) call(op byte, opOff int64, callee, args pval) pval {
	s.calls++
	switch callee.kind {
	case pkGlobal:
		return pval{kind: pkCall, str: callee.str}
	case pkCall, pkUnknown, pkPersistent:
		s.add(Finding{Verdict: Dangerous, Offset: s.base + opOff, Opcode: opcodeNames[op], Global: callee.str, Rule: "pickle.call-computed",
			Message: fmt.Sprintf("%s calls %s, not an imported callable", opcodeNames[op], describe(callee)), Err: ErrDangerousOpcode})
		return pval{kind: pkCall, str: callee.str}
	}
	s.add(Finding{Verdict: Suspicious, Offset: s.base + opOff, Opcode: opcodeNames[op], Rule: "pickle.call-invalid",
		Message: fmt.Sprintf("%s calls a %s, which loaders reject", opcodeNames[op], callee.kind), Err: ErrMalformed})
	return pval{kind: pkUnknown}
}

// probeAsPickle decides whether content that matches no format is a protocol 0 or 1 pickle
// (they have no magic), scanning it into a report of its own. It is one when an unpickler
// would complete a pickle, call something, or reach an import judged dangerous. It is also
// one when an unpickler reaches an import outside the allowlist, even with no call and no
// STOP after it (importing a module runs its top-level code, and a cloned model repository
// on sys.path supplies modules), if the file would be handed to an unpickler: its name is one
// loaders unpickle (unpickledName: model.pkl, pytorch_model.bin, a tar checkpoint's pickle
// member), or the bytes up to that import are not plain text, which no text file holds.
// Otherwise the content is unknown (config.json, README.md, a PNG), including text that an
// unpickler would read as one harmless import and then reject: a word list "cat\ndog\n"
// named classes.txt parses as GLOBAL at.dog, but no loader unpickles a .txt file.
func probeAsPickle(r io.Reader, cfg *config, member string, depth int) (*Report, bool) {
	probe := &Report{}
	tw := &textWatch{r: r, binaryAt: -1}
	n := 64 << 10
	if sized, ok := r.(interface{ Size() int64 }); ok {
		n = int(bufferSize(sized.Size()))
	} else if br, ok := r.(*bufio.Reader); ok {
		n = max(16, min(n, br.Size()))
	}
	ps := newPickleScanner(cfg, probe, member, bufio.NewReaderSize(tw, n), 0, depth)
	res := ps.scanAll()
	if res.pickles > 0 || ps.calls > 0 || probe.Verdict >= Dangerous {
		return probe, true
	}
	if ps.unlistedEnd < 0 {
		return probe, false
	}
	name := cfg.name
	if member != "" {
		name = member
	}
	var why string
	switch {
	case unpickledName(name):
		why = fmt.Sprintf("loaders unpickle a file named %q", baseName(name))
	case tw.binaryAt >= 0 && tw.binaryAt < ps.unlistedEnd:
		why = fmt.Sprintf("it is not text (byte %d) and parses as a pickle up to that import", tw.binaryAt)
	default:
		return probe, false
	}
	probe.add(Finding{Verdict: Safe, Member: member, Offset: ps.unlistedEnd, Rule: "pickle.import-only",
		Message: fmt.Sprintf("read as a pickle although no pickle in it completes: %s, and an unpickler imports %s before it fails; importing a module runs its code", why, ps.unlisted),
		Err:     ErrNote})
	return probe, true
}

// unpickledSuffixes are the name endings of files that loaders hand to an unpickler:
// torch.load's checkpoints (.pt, .pth, .bin, .ckpt, and the common .pth.tar, which is not a
// tar), pickle and pandas (.pkl, .pickle, .pk, .p), joblib and scikit-learn (.joblib, .sav,
// .dat, .data), dill (.dill), gensim (.model), and numpy.load with allow_pickle, which
// unpickles any .npy or .npz that lacks the NumPy or zip magic. Other tools' conventions
// (picklescan and modelscan scan the same set) agree.
var unpickledSuffixes = []string{".pt", ".pth", ".bin", ".ckpt", ".pth.tar", ".pt.tar",
	".pkl", ".pickle", ".pk", ".p", ".joblib", ".sav", ".dat", ".data", ".dill", ".model",
	".npy", ".npz", ".torch"}

// unpickledMembers are checkpoint members loaders unpickle whatever their content: the
// pickle member of a PyTorch <= 0.1 tar checkpoint, which torch.load's legacy_load hands to
// its unpickler (it never unpickles sys_info; storages and tensors are walked by scanTar).
var unpickledMembers = setOf("pickle")

// unpickledName reports whether loaders unpickle a file (or archive member) of this name.
func unpickledName(name string) bool {
	base := strings.ToLower(baseName(name))
	if unpickledMembers[base] {
		return true
	}
	for _, suf := range unpickledSuffixes {
		if strings.HasSuffix(base, suf) && len(base) > len(suf) {
			return true
		}
	}
	return false
}

// baseName is the last element of a file or archive member path ("a.zip!dir/x.pkl": x.pkl).
func baseName(name string) string {
	if i := strings.LastIndexAny(name, "/!\\"); i >= 0 {
		return name[i+1:]
	}
	return name
}

// asciiTextBytes marks the ASCII bytes text holds: printable characters, tab, CR and LF.
var asciiTextBytes = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = true
	}
	t['\t'], t['\n'], t['\r'] = true, true, true
	return t
}()

func asciiText(b []byte) bool {
	for _, c := range b {
		if !asciiTextBytes[c] {
			return false
		}
	}
	return true
}

// textWatch passes reads through and records the offset of the first byte that plain text
// (UTF-8 without control characters other than tab, CR and LF) does not hold.
type textWatch struct {
	r        io.Reader
	n        int64 // bytes read so far
	binaryAt int64 // offset of the first non-text byte, -1 while there is none
	carry    []byte
}

func (t *textWatch) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if t.binaryAt < 0 && n > 0 {
		t.check(p[:n])
	}
	t.n += int64(n)
	return n, err
}

func (t *textWatch) check(b []byte) {
	start := t.n - int64(len(t.carry)) // offset of b's first byte, counting the carried bytes
	if len(t.carry) > 0 {
		b = append(t.carry, b...)
		t.carry = nil
	}
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for i := 0; i < len(b); {
		if i+8 <= len(b) {
			// Eight bytes at a time while all are ASCII text: first the word test for
			// printable (no byte below 0x20 by the borrow trick, none at 0x7f or above),
			// then a table for words with line ends. The rest go one character at a time.
			x := binary.LittleEndian.Uint64(b[i:])
			if ((x-ones*0x20)&^x|(x+ones)|x)&highs == 0 || asciiText(b[i:i+8]) {
				i += 8
				continue
			}
		}
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
				t.binaryAt = start + int64(i)
				return
			}
			i++
			continue
		}
		if !utf8.FullRune(b[i:]) {
			t.carry = append([]byte(nil), b[i:]...) // a character split across reads
			return
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			t.binaryAt = start + int64(i)
			return
		}
		i += size
	}
}
