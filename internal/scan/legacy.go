package scan

import (
	"fmt"
	"io"
	"math"
	"math/bits"
)

// storageElemSize is the element size of each PyTorch storage class a checkpoint's
// persistent ids name (torch._utils._element_size of the storage's dtype).
var storageElemSize = map[string]int64{
	"DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2,
	"LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1,
	"BoolStorage": 1, "ComplexFloatStorage": 8, "ComplexDoubleStorage": 16, "QUInt8Storage": 1,
	"QInt8Storage": 1, "QInt32Storage": 4, "QUInt4x2Storage": 1, "QUInt2x4Storage": 1,
	"UntypedStorage": 1,
}

// storageRef is what a checkpoint's persistent id says about one storage:
// ("storage", storage_type, key, location, numel).
type storageRef struct {
	key      string
	typeName string // "torch.FloatStorage"
	elemSize int64
	numel    int64
	offset   int64 // where the persistent id is, for findings
}

// collectStorages returns an onPersistent callback that records storage references and
// reports persistent ids that are not the ones torch.save writes.
func collectStorages(rep *Report, member string, refs map[string]storageRef) func(pval, int64) {
	return func(pid pval, off int64) {
		bad := func(msg string) {
			rep.add(Finding{Verdict: Suspicious, Member: member, Offset: off, Opcode: "BINPERSID", Rule: "pytorch.persistent-id",
				Message: msg, Err: ErrMalformed})
		}
		if pid.kind != pkTuple || len(pid.items) < 5 {
			bad(fmt.Sprintf("persistent id is a %s, not the (\"storage\", type, key, location, numel) tuple torch.save writes", pid.kind))
			return
		}
		it := pid.items
		if it[0].kind != pkStr || it[0].str != "storage" {
			bad("persistent id does not start with \"storage\"")
			return
		}
		if it[1].kind != pkGlobal || it[2].kind != pkStr || it[2].long || it[4].kind != pkInt {
			bad("persistent id fields have the wrong types")
			return
		}
		name := it[1].str
		elem, ok := int64(0), false
		if i := lastDot(name); i >= 0 {
			elem, ok = storageElemSize[name[i+1:]]
		}
		if !ok {
			bad("persistent id names storage type " + name + ", which is not a PyTorch storage class")
			return
		}
		ref := storageRef{key: it[2].str, typeName: name, elemSize: elem, numel: it[4].n, offset: off}
		if prev, dup := refs[ref.key]; dup && (prev.numel != ref.numel || prev.elemSize != ref.elemSize) {
			bad(fmt.Sprintf("storage %q is declared twice with different sizes", ref.key))
		}
		if ref.numel < 0 {
			bad(fmt.Sprintf("storage %q has negative numel %d", ref.key, ref.numel))
			return
		}
		refs[ref.key] = ref
	}
}

func lastDot(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}

// scanLegacy scans torch.save(..., _use_new_zipfile_serialization=False): five stacked
// pickles (magic number, protocol version 1001, sys_info, the object, the storage keys) and
// then, for each key, an int64 element count and the storage's raw bytes, which torch reads
// without unpickling. The storages are walked by their headers, not read.
func scanLegacy(r io.ReaderAt, size int64, cfg *config, rep *Report, member string, depth int) {
	ps := newPickleScanner(cfg, rep, member, sectionReader(r, size), 0, depth)
	refs := map[string]storageRef{}
	malformed := func(off int64, rule, msg string) {
		rep.add(Finding{Verdict: Suspicious, Member: member, Offset: off, Rule: rule, Message: msg, Err: ErrMalformed})
	}
	parts := []string{"magic number", "protocol version", "sys_info", "object", "storage keys"}
	var vals [5]pval
	for i := range parts {
		if i == 3 {
			ps.onPersistent = collectStorages(rep, member, refs)
		}
		if i == 4 {
			ps.onPersistent = nil
			ps.keepAllItems = true
		}
		start := ps.pos
		v, perr := ps.scanOne()
		if perr != nil {
			ps.reportError(perr, i)
			malformed(start, "pytorch.legacy", fmt.Sprintf("legacy checkpoint: the %s pickle (%d of 5) is broken", parts[i], i+1))
			return
		}
		vals[i] = v
	}
	if vals[1].kind != pkInt || vals[1].n != 1001 {
		malformed(-1, "pytorch.legacy", "legacy checkpoint: protocol version is not 1001")
	}
	keys := vals[4]
	if keys.kind != pkList {
		malformed(-1, "pytorch.legacy", "legacy checkpoint: the storage keys pickle is not a list")
		return
	}
	off := ps.pos
	for _, k := range keys.items {
		if k.kind != pkStr || k.long {
			malformed(off, "pytorch.legacy", "legacy checkpoint: a storage key is not a string")
			return
		}
		ref, ok := refs[k.str]
		if !ok {
			malformed(off, "pytorch.legacy", fmt.Sprintf("legacy checkpoint: storage %q is listed but no tensor uses it", k.str))
			return
		}
		var hdr [8]byte
		if !readFull(r, hdr[:], off) {
			rep.add(Finding{Verdict: Suspicious, Member: member, Offset: off, Rule: "pytorch.storage-truncated",
				Message: fmt.Sprintf("legacy checkpoint: file ends before storage %q", k.str), Err: ErrTruncated})
			return
		}
		numel := le64(hdr[:])
		hi, nbytes := bits.Mul64(numel, uint64(ref.elemSize))
		if hi != 0 || nbytes > math.MaxInt64-uint64(off)-8 || off+8+int64(nbytes) > size {
			rep.add(Finding{Verdict: Suspicious, Member: member, Offset: off, Rule: "pytorch.storage-truncated",
				Message: fmt.Sprintf("legacy checkpoint: storage %q claims %d elements of %d bytes, past the end of the file", k.str, numel, ref.elemSize), Err: ErrTruncated})
			return
		}
		if int64(numel) < ref.numel {
			malformed(off, "pytorch.storage-size", fmt.Sprintf("storage %q holds %d elements but the checkpoint declares %d", k.str, numel, ref.numel))
		}
		off += 8 + int64(nbytes)
	}
	if int64(len(keys.items)) != int64(len(refs)) {
		malformed(off, "pytorch.legacy", fmt.Sprintf("legacy checkpoint: %d storages are used but %d are stored", len(refs), len(keys.items)))
	}
	if off != size {
		malformed(off, "pytorch.trailing", fmt.Sprintf("legacy checkpoint: %d bytes after the last storage", size-off))
	}
}
