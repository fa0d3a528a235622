package scan

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
)

// The zip readers that load models do not agree on where an archive's central directory is:
//
//   - PyTorch (caffe2's PyTorchStreamReader on miniz) takes the last end-of-central-directory
//     (EOCD) signature with 22 bytes after it, reads the zip64 end record where the zip64
//     locator points, and trusts the directory offset the record gives. It reads exactly the
//     number of entries the record announces, and local header offsets as they stand.
//   - Python's zipfile (numpy.load of .npz, torch's tarfile/zip fallbacks, most tools) takes
//     the EOCD in the last 22 bytes when it has no comment, else the last signature in the
//     last 64 KiB; it assumes the zip64 end record sits just before its locator; and it finds
//     the directory just before the end record, whatever the record's offset says, shifting
//     every member's offset by the difference ("concat"). It reads entries until the
//     directory's size is used up.
//   - Go's archive/zip computes the same shift, but drops a positive shift when a directory
//     entry also sits at the stated offset, and uses zip64 only when the end record's fields
//     overflow. It reads entries until one fails to parse.
//
// zipReadings computes each reader's view of the archive. The scanner reads every distinct
// view, and any disagreement between them is a finding of its own: the file is ambiguous.

const (
	sigLocalHeader = 0x04034b50
	sigCentralDir  = 0x02014b50
	sigEOCD        = 0x06054b50
	sigEOCD64      = 0x06064b50
	sigEOCD64Loc   = 0x07064b50

	eocdLen      = 22
	eocd64Len    = 56
	eocd64LocLen = 20
	cdHeaderLen  = 46
	localLen     = 30
)

// zipRecord is one central directory entry as a reader resolves it.
type zipRecord struct {
	name         string
	flags        uint16
	method       uint16
	crc32        uint32
	csize, usize uint64
	headerOffset int64 // the local header, after the reader's shift
}

// zipView is the archive as one group of readers sees it.
type zipView struct {
	readers  string // who reads the archive this way
	dirStart int64
	records  []zipRecord
	err      string // why these readers refuse the archive; records is then empty
}

// zipEnd is a parsed end-of-central-directory record (with zip64 values applied).
type zipEnd struct {
	pos                  int64 // of the classic EOCD record
	records              uint64
	dirSize, dirOffset   uint64
	dirEnd               int64 // where Python and Go expect the directory to end
	recordsClassic       uint64
	dirSizeC, dirOffsetC uint64
}

// zipTailLen covers the farthest any reader looks for the end record: miniz scans 4 KiB
// blocks backwards until one starts 64 KiB + 22 bytes from the end, which is 69,584 bytes.
const zipTailLen = 72 << 10

var sigEOCDBytes = []byte("PK\x05\x06")

// endsLikeZip reports whether the last 64 KiB hold an end-of-central-directory record whose
// directory fits in the file: what zipfile.is_zipfile accepts.
func endsLikeZip(r io.ReaderAt, size int64) bool {
	if size < eocdLen {
		return false
	}
	tail := make([]byte, min(size, (1<<16)+eocdLen))
	if !readFull(r, tail, size-int64(len(tail))) {
		return false
	}
	pos := pythonFindEnd(tail, size-int64(len(tail)), size)
	if pos < 0 {
		return false
	}
	rec := tail[pos-(size-int64(len(tail))):]
	dirSize, dirOffset := int64(binary.LittleEndian.Uint32(rec[12:])), int64(binary.LittleEndian.Uint32(rec[16:]))
	return dirSize <= pos && dirOffset <= pos
}

func wholeEndRecordIn(tail []byte) bool {
	i := bytes.LastIndex(tail, sigEOCDBytes)
	return i >= 0 && len(tail)-i >= eocdLen
}

func isEndSig(tail []byte, i int64) bool {
	return i >= 0 && i+4 <= int64(len(tail)) && bytes.Equal(tail[i:i+4], sigEOCDBytes)
}

// minizFindEnd is mz_zip_reader_locate_header_sig: 4 KiB blocks from the end, overlapping by
// 3 bytes, the last signature with a whole record after it; it gives up after the block that
// reaches 64 KiB + 22 bytes back.
func minizFindEnd(tail []byte, tailStart, size int64) int64 {
	if size < eocdLen {
		return -1
	}
	cur := max(size-4096, 0)
	for {
		n := min(4096, size-cur)
		for i := n - 4; i >= 0; i-- {
			if p := cur + i; size-p >= eocdLen && isEndSig(tail, p-tailStart) {
				return p
			}
		}
		if cur == 0 || size-cur >= 0xffff+eocdLen {
			return -1
		}
		cur = max(cur-(4096-3), 0)
	}
}

// pythonFindEnd is zipfile._EndRecData: a record without comment in the last 22 bytes, or
// else the last signature in the last 64 KiB + 22 bytes, which must have 22 bytes after it.
func pythonFindEnd(tail []byte, tailStart, size int64) int64 {
	if size < eocdLen {
		return -1
	}
	if last := size - eocdLen - tailStart; isEndSig(tail, last) && tail[len(tail)-2] == 0 && tail[len(tail)-1] == 0 {
		return size - eocdLen
	}
	// The tail may be shorter than the window: only when it holds the last signature.
	from := max(size-(1<<16)-eocdLen-tailStart, 0)
	i := bytes.LastIndex(tail[from:], sigEOCDBytes)
	if i < 0 {
		return -1
	}
	if pos := tailStart + from + int64(i); size-pos >= eocdLen {
		return pos
	}
	return -1
}

// goFindEnd is archive/zip's readDirectoryEnd: the last signature with a whole record after
// it in the last 65 KiB, whose comment must fit in the file.
func goFindEnd(tail []byte, tailStart, size int64) int64 {
	from := max(size-65*1024, 0)
	for p := size - eocdLen; p >= from; p-- {
		if isEndSig(tail, p-tailStart) {
			comment := int64(binary.LittleEndian.Uint16(tail[p-tailStart+20:]))
			if p+eocdLen+comment > size {
				return -1
			}
			return p
		}
	}
	return -1
}

// zipReadings returns the distinct views of the archive (PyTorch's first) and the ways they
// disagree. An archive every reader sees alike yields one view and no disagreements.
func zipReadings(r io.ReaderAt, size int64, maxRecords int) (views []zipView, disagree []string) {
	// Every reader takes the last signature with a whole record after it, if there is one,
	// so when the last 4 KiB hold one, they are all the readers need; otherwise read as far
	// back as the farthest-looking reader goes.
	var tail []byte
	for _, n := range []int64{4 << 10, zipTailLen} {
		tailLen := min(size, n)
		tail = make([]byte, tailLen)
		if !readFull(r, tail, size-tailLen) {
			return []zipView{{readers: "every reader", err: "the file cannot be read"}}, nil
		}
		if tailLen == size || wholeEndRecordIn(tail) {
			break
		}
	}
	tailStart := size - int64(len(tail))
	miniz := minizFindEnd(tail, tailStart, size)
	python := pythonFindEnd(tail, tailStart, size)
	goPos := goFindEnd(tail, tailStart, size)
	if miniz != python || miniz != goPos {
		disagree = append(disagree, fmt.Sprintf("the readers pick different end-of-central-directory records (PyTorch's miniz at %d, Python's zipfile at %d, Go's archive/zip at %d; -1 is none)", miniz, python, goPos))
	}

	seen := map[[2]int64]int{} // (end record, directory start) -> index in views
	add := func(readers string, end *zipEnd, dirStart int64, shift int64, errText string) {
		if errText == "" {
			key := [2]int64{end.pos, dirStart}
			if i, ok := seen[key]; ok {
				views[i].readers += ", " + readers
				return
			}
			seen[key] = len(views)
		}
		v := zipView{readers: readers, dirStart: dirStart, err: errText}
		if errText == "" {
			v.records, v.err = readCentralDirectory(r, size, end, dirStart, shift, maxRecords, &disagree)
		}
		views = append(views, v)
	}

	for _, reader := range []struct {
		name string
		pos  int64
	}{{"PyTorch (miniz)", miniz}, {"Python's zipfile", python}, {"Go's archive/zip", goPos}} {
		if reader.pos < 0 {
			add(reader.name, nil, 0, 0, "no end-of-central-directory record")
			continue
		}
		end, err := readZipEnd(r, size, reader.pos, &disagree)
		if err != "" {
			add(reader.name, nil, 0, 0, err)
			continue
		}
		var start int64
		switch reader.name {
		case "PyTorch (miniz)":
			if end.dirOffset > uint64(size) || end.dirSize > uint64(size)-end.dirOffset {
				add(reader.name, nil, 0, 0, "the central directory lies outside the file")
				continue
			}
			start = int64(end.dirOffset)
			add(reader.name, end, start, 0, "")
		case "Python's zipfile":
			start = end.dirEnd - int64(min(end.dirSize, uint64(size)))
			if start < 0 {
				add(reader.name, nil, 0, 0, "bad offset for central directory")
				continue
			}
			add(reader.name, end, start, start-int64(min(end.dirOffset, uint64(size))), "")
		default:
			start = end.dirEnd - int64(min(end.dirSize, uint64(size)))
			shift := start - int64(min(end.dirOffset, uint64(size)))
			if start < 0 || start >= size {
				add(reader.name, nil, 0, 0, "the central directory lies outside the file")
				continue
			}
			if shift > 0 && startsWith(r, int64(end.dirOffset), sigCentralDir) {
				start, shift = int64(end.dirOffset), 0
			}
			add(reader.name, end, start, shift, "")
		}
	}
	if len(views) > 1 {
		var parts []string
		for _, v := range views {
			if v.err != "" {
				parts = append(parts, fmt.Sprintf("%s refuses the archive (%s)", v.readers, v.err))
			} else {
				parts = append(parts, fmt.Sprintf("%s read a directory of %d entries at offset %d", v.readers, len(v.records), v.dirStart))
			}
		}
		disagree = append(disagree, "the readers see different archives: "+joinSemi(parts))
	}
	return views, disagree
}

func joinSemi(parts []string) string {
	var b bytes.Buffer
	for i, p := range parts {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p)
	}
	return b.String()
}

func startsWith(r io.ReaderAt, off int64, sig uint32) bool {
	var b [4]byte
	return off >= 0 && readFull(r, b[:], off) && binary.LittleEndian.Uint32(b[:]) == sig
}

// readZipEnd parses the end record at pos and its zip64 records. A zip64 end record that
// the readers would locate differently, or whose values differ from the classic record's
// non-overflowing fields, is a disagreement.
func readZipEnd(r io.ReaderAt, size, pos int64, disagree *[]string) (*zipEnd, string) {
	var b [eocdLen]byte
	if !readFull(r, b[:], pos) {
		return nil, "the end record is truncated"
	}
	le := binary.LittleEndian
	end := &zipEnd{pos: pos, dirEnd: pos,
		recordsClassic: uint64(le.Uint16(b[10:])), dirSizeC: uint64(le.Uint32(b[12:])), dirOffsetC: uint64(le.Uint32(b[16:]))}
	if le.Uint16(b[4:]) != 0 || le.Uint16(b[6:]) != 0 {
		return nil, "the archive spans several disks"
	}
	end.records, end.dirSize, end.dirOffset = end.recordsClassic, end.dirSizeC, end.dirOffsetC
	var loc [eocd64LocLen]byte
	if pos < eocd64LocLen || !readFull(r, loc[:], pos-eocd64LocLen) || le.Uint32(loc[:]) != sigEOCD64Loc {
		return end, ""
	}
	if le.Uint32(loc[4:]) != 0 || le.Uint32(loc[16:]) > 1 {
		return nil, "the zip64 locator names several disks"
	}
	// Python reads the zip64 record just before the locator; miniz and Go where it points.
	expected := pos - eocd64LocLen - eocd64Len
	if pointed := le.Uint64(loc[8:]); pointed != uint64(expected) {
		*disagree = append(*disagree, fmt.Sprintf("the zip64 locator points to offset %d, but Python's zipfile reads the zip64 end record at %d", pointed, expected))
	}
	var z [eocd64Len]byte
	if expected < 0 || !readFull(r, z[:], expected) || le.Uint32(z[:]) != sigEOCD64 {
		*disagree = append(*disagree, "a zip64 locator without a zip64 end record before it: miniz refuses the archive, Python's zipfile ignores the locator")
		return end, ""
	}
	end.records, end.dirSize, end.dirOffset = le.Uint64(z[32:]), le.Uint64(z[40:]), le.Uint64(z[48:])
	end.dirEnd = expected
	// Go reads the zip64 record only when a classic field overflows; elsewhere the classic
	// value must be the same, or Go reads another directory than miniz and Python.
	if (end.recordsClassic != 0xffff && end.recordsClassic != end.records) ||
		(end.dirSizeC != 0xffffffff && end.dirSizeC != end.dirSize) ||
		(end.dirOffsetC != 0xffffffff && end.dirOffsetC != end.dirOffset) {
		*disagree = append(*disagree, "the classic end record and the zip64 end record give different directories: Go's archive/zip reads the first, miniz and Python's zipfile the second")
	}
	return end, ""
}

// readCentralDirectory reads the directory entries at start, as far as any reader would, and
// notes where the readers' entry counts part: miniz reads the announced number, Python as
// many as fill the directory's size, Go every entry until one fails to parse.
func readCentralDirectory(r io.ReaderAt, size int64, end *zipEnd, start, shift int64, maxRecords int, disagree *[]string) ([]zipRecord, string) {
	le := binary.LittleEndian
	var recs []zipRecord
	pos := start
	dirEnd := start + int64(min(end.dirSize, uint64(size)))
	filled := -1 // entries whose bytes end exactly at the directory's size
	// One buffered pass over the directory, as the readers make it: a syscall per entry
	// would cost more than the rest of a checkpoint's scan.
	br := bufio.NewReaderSize(io.NewSectionReader(r, start, max(0, size-start)), int(min(max(end.dirSize, 512), 1<<20)))
	var hdr [cdHeaderLen]byte
	for len(recs) <= maxRecords {
		if pos == dirEnd {
			filled = len(recs)
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil || le.Uint32(hdr[:]) != sigCentralDir {
			break
		}
		n, m, k := int64(le.Uint16(hdr[28:])), int64(le.Uint16(hdr[30:])), int64(le.Uint16(hdr[32:]))
		varLen := make([]byte, n+m+k)
		if _, err := io.ReadFull(br, varLen); err != nil {
			break
		}
		rec := zipRecord{name: string(varLen[:n]), flags: le.Uint16(hdr[8:]), method: le.Uint16(hdr[10:]), crc32: le.Uint32(hdr[16:]),
			csize: uint64(le.Uint32(hdr[20:])), usize: uint64(le.Uint32(hdr[24:]))}
		off := uint64(le.Uint32(hdr[42:]))
		applyZip64Extra(varLen[n:n+m], &rec.usize, &rec.csize, &off)
		if off > uint64(size) {
			off = uint64(size) // a local header past the end is reported when it is read
		}
		rec.headerOffset = int64(off) + shift
		recs = append(recs, rec)
		pos += cdHeaderLen + n + m + k
	}
	if len(recs) > maxRecords {
		return recs, ""
	}
	announced := end.records
	var parts []string
	switch {
	case filled < 0:
		parts = append(parts, fmt.Sprintf("the entries do not fill the directory's %d bytes exactly, which Python's zipfile refuses", end.dirSize))
	case uint64(filled) != announced:
		parts = append(parts, fmt.Sprintf("the directory's %d bytes hold %d entries (Python's zipfile), the end record announces %d (miniz)", end.dirSize, filled, announced))
	}
	if uint64(len(recs)) != announced && uint64(len(recs))%65536 == announced%65536 {
		parts = append(parts, fmt.Sprintf("%d entries follow one another (Go's archive/zip), the end record announces %d (miniz)", len(recs), announced))
	} else if uint64(len(recs))%65536 != announced%65536 {
		parts = append(parts, fmt.Sprintf("%d entries follow one another, the end record announces %d: Go's archive/zip refuses the archive", len(recs), announced))
	}
	*disagree = append(*disagree, parts...)
	if announced > uint64(len(recs)) && announced <= 0xffff {
		return recs, fmt.Sprintf("the end record announces %d entries but only %d can be read", announced, len(recs))
	}
	return recs, ""
}

// applyZip64Extra replaces the overflowing 32-bit fields by the zip64 extra field's values,
// in the order the format gives them (uncompressed size, compressed size, header offset).
func applyZip64Extra(extra []byte, usize, csize *uint64, off *uint64) {
	le := binary.LittleEndian
	for len(extra) >= 4 {
		tag, n := le.Uint16(extra), int(le.Uint16(extra[2:]))
		extra = extra[4:]
		if n > len(extra) {
			return
		}
		if tag == 0x0001 {
			f := extra[:n]
			for _, p := range []*uint64{usize, csize, off} {
				if *p == 0xffffffff && len(f) >= 8 {
					*p = le.Uint64(f)
					f = f[8:]
				}
			}
			return
		}
		extra = extra[n:]
	}
}

// zipLocal is where a member's data starts, as every reader finds it from the local header.
type zipLocal struct {
	dataOffset int64
	name       string
	err        string
}

func readLocalHeader(r io.ReaderAt, size int64, rec *zipRecord) zipLocal {
	// One read for the header and, when it matches the directory's, the name.
	h := make([]byte, localLen+len(rec.name))
	if rec.headerOffset < 0 || rec.headerOffset > size-localLen {
		return zipLocal{err: fmt.Sprintf("local header at %d lies outside the file", rec.headerOffset)}
	}
	n, _ := r.ReadAt(h, rec.headerOffset)
	if n < localLen {
		return zipLocal{err: fmt.Sprintf("local header at %d lies outside the file", rec.headerOffset)}
	}
	le := binary.LittleEndian
	if le.Uint32(h) != sigLocalHeader {
		return zipLocal{err: fmt.Sprintf("no local header signature at %d", rec.headerOffset)}
	}
	nameLen, m := int64(le.Uint16(h[26:])), int64(le.Uint16(h[28:]))
	name := h[localLen:n]
	if int64(len(name)) != nameLen {
		name = make([]byte, nameLen)
		if !readFull(r, name, rec.headerOffset+localLen) {
			return zipLocal{err: "local header is truncated"}
		}
	}
	return zipLocal{dataOffset: rec.headerOffset + localLen + nameLen + m, name: string(name)}
}

// zipOverlaps finds members whose bytes (local header to the end of the data) run into the
// next member or the central directory. Python's zipfile refuses such a member ("overlapped
// entries", its zip-bomb guard); miniz reads it.
func zipOverlaps(recs []zipRecord, locals []zipLocal, dirStart int64) []string {
	type span struct {
		start, end int64
		name       string
	}
	var spans []span
	for i, rec := range recs {
		if locals[i].err != "" {
			continue
		}
		end := locals[i].dataOffset + int64(min(rec.csize, uint64(1)<<62))
		spans = append(spans, span{rec.headerOffset, end, rec.name})
	}
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	var out []string
	for i, s := range spans {
		limit, next := dirStart, "the central directory"
		if i+1 < len(spans) {
			limit, next = spans[i+1].start, fmt.Sprintf("member %q", spans[i+1].name)
		}
		if s.end > limit {
			out = append(out, fmt.Sprintf("member %q (bytes %d to %d) runs into %s at %d", s.name, s.start, s.end, next, limit))
		}
	}
	return out
}
