package scan

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// Native executables and libraries are recognised by their headers, because a loader picks
// them up by whatever name it is told (ctypes.CDLL("weights.bin"), a Python extension module
// renamed to .so.1 or .pyd, a binary inside a tar): no list of extensions can be complete.
// The checks go a little past the magic, so text or tensor data that happens to start with
// the same two or four bytes is not called code.

// nativeKind names the kind of native code at the start of a file, or "" when there is none.
// r is only read when the bytes in head are not enough (a PE's header offset points past it).
func nativeKind(head []byte, r io.ReaderAt, size int64) string {
	switch {
	case len(head) >= 16 && string(head[:4]) == "\x7fELF" &&
		(head[4] == 1 || head[4] == 2) && (head[5] == 1 || head[5] == 2) && head[6] == 1:
		// e_ident: class 32/64-bit, data little/big endian, version 1.
		return "ELF"
	case len(head) >= 8 && isMachO(head):
		return "Mach-O"
	case len(head) >= 8 && isFatMachO(head):
		return "Mach-O universal"
	case len(head) >= 0x40 && head[0] == 'M' && head[1] == 'Z':
		// The DOS stub's e_lfanew (offset 0x3c) points to the "PE\0\0" signature.
		off := int64(binary.LittleEndian.Uint32(head[0x3c:0x40]))
		if off < 0x40 || off > size-4 {
			return ""
		}
		var sig [4]byte
		if off+4 <= int64(len(head)) {
			copy(sig[:], head[off:off+4])
		} else if r == nil || !readFull(r, sig[:], off) {
			return ""
		}
		if string(sig[:]) == "PE\x00\x00" {
			return "PE"
		}
	}
	return ""
}

// isMachO checks a thin Mach-O header: magic in either byte order, then a CPU type with a
// known architecture family (the low byte: x86 7, ARM 12, PowerPC 18, ...).
func isMachO(head []byte) bool {
	var cpu uint32
	switch binary.BigEndian.Uint32(head) {
	case 0xfeedface, 0xfeedfacf:
		cpu = binary.BigEndian.Uint32(head[4:])
	case 0xcefaedfe, 0xcffaedfe:
		cpu = binary.LittleEndian.Uint32(head[4:])
	default:
		return false
	}
	switch cpu &^ 0x01000000 { // CPU_ARCH_ABI64
	case 1, 6, 7, 10, 12, 13, 14, 18: // VAX, MC680x0, x86, MC98000, ARM, MC88000, SPARC, PowerPC
		return true
	}
	return false
}

// isFatMachO checks a universal binary: 0xcafebabe (or the 64-bit 0xcafebabf), big-endian,
// then the number of architectures. A Java class file shares 0xcafebabe, but there the next
// word holds the class version (45 and up), so a small count tells them apart, as file(1) does.
func isFatMachO(head []byte) bool {
	magic := binary.BigEndian.Uint32(head)
	n := binary.BigEndian.Uint32(head[4:])
	return (magic == 0xcafebabe || magic == 0xcafebabf) && n >= 1 && n < 45
}

// scanNative reports native code. It is not a weight format: the load gate counts it as code.
func scanNative(kind string, rep *Report, member string) {
	rep.add(Finding{Verdict: Safe, Member: member, Offset: 0, Rule: "code.native",
		Message: fmt.Sprintf("%s executable or library: native code, which ctypes or Python's import system runs as it is", kind), Err: ErrNote})
}

// streamNativeKind is nativeKind for a stream: a PE header offset past head is peeked at,
// as far as the buffer reaches (linkers put it within the first few hundred bytes).
func streamNativeKind(br *bufio.Reader, head []byte) string {
	if kind := nativeKind(head, nil, int64(len(head))); kind != "" || len(head) < 0x40 || head[0] != 'M' || head[1] != 'Z' {
		return kind
	}
	need := int(binary.LittleEndian.Uint32(head[0x3c:0x40])) + 4
	if need > br.Size() {
		return ""
	}
	more, _ := br.Peek(need)
	return nativeKind(more, nil, int64(len(more)))
}
