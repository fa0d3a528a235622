package scan

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"path"
	"strings"

	"github.com/klauspost/compress/flate"
	"github.com/ulikunitz/xz/lzma"
)

// maxBufferedMember bounds how much of a compressed archive member is buffered in memory for a
// format that needs random access (a zip or safetensors file inside a zip); larger content
// goes to a temporary file. Pickles always stream.
const maxBufferedMember = 64 << 20

// Zip members are read the way PyTorch's reader (miniz) reads them, not the way CPython's
// zipfile does: the central directory names the members, the local header only gives the
// data offset, and the general-purpose flags (encrypted, patched, strong encryption) and
// the CRC are ignored for reading. CPython refuses such members, so scanners built on it
// skipped them while torch.load ran them (weight-formats.md §4, bypasses 1 to 4). Every
// member is scanned by content, whatever its name or extension.

func memberPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "!" + name
}

func scanZip(r io.ReaderAt, size int64, cfg *config, rep *Report, member string, depth int) Format {
	if depth >= cfg.maxDepth {
		rep.add(Finding{Verdict: Suspicious, Member: member, Offset: 0, Rule: "limit.depth",
			Message: fmt.Sprintf("archive nested deeper than %d levels; not scanned", cfg.maxDepth), Err: ErrLimit})
		return FormatZip
	}
	// Offsets in a hostile central directory can point anywhere: out-of-range reads are
	// the archive's fault, not an I/O failure.
	r = boundedReaderAt{r: r, size: size}
	views, disagree := zipReadings(r, size, cfg.maxMembers)
	for _, d := range disagree {
		rep.add(Finding{Verdict: Dangerous, Member: member, Offset: -1, Rule: "zip.ambiguous",
			Message: d + "; every reading was scanned. Write the archive again with one tool (torch.save, zipfile) so every reader sees the same members", Err: ErrAmbiguous})
	}
	format := FormatZip
	scanned := map[zipMemberKey]bool{}
	var refusals []string
	read := false
	for _, v := range views {
		if v.err != "" {
			refusals = append(refusals, v.readers+": "+v.err)
		}
		if v.err != "" && len(v.records) == 0 {
			continue
		}
		f := scanZipView(r, size, v, scanned, cfg, rep, member, depth)
		if !read {
			format, read = f, true // PyTorch's reading names the format when it has one
		}
	}
	if format == FormatZip && kerasArchive(rep, member) {
		format = FormatKeras
	}
	if !read {
		rep.add(Finding{Verdict: Suspicious, Member: member, Offset: 0, Rule: "zip.unreadable",
			Message: "starts like a zip but its central directory cannot be read: " + strings.Join(refusals, "; "), Err: ErrMalformed})
	}
	return format
}

// zipMemberKey identifies a member's bytes, so a member two readings share is scanned once.
type zipMemberKey struct {
	name       string
	dataOffset int64
	csize      uint64
	method     uint16
}

// scanZipView scans the members of one reading of the archive and returns its format.
func scanZipView(r io.ReaderAt, size int64, v zipView, scanned map[zipMemberKey]bool, cfg *config, rep *Report, member string, depth int) Format {
	files := v.records
	if len(files) > cfg.maxMembers {
		rep.add(Finding{Verdict: Suspicious, Member: member, Offset: -1, Rule: "limit.members",
			Message: fmt.Sprintf("archive has more than %d members; only the first %d are scanned", cfg.maxMembers, cfg.maxMembers), Err: ErrLimit})
		files = files[:cfg.maxMembers]
	}
	locals := make([]zipLocal, len(files))
	for i := range files {
		locals[i] = readLocalHeader(r, size, &files[i])
		if l := locals[i]; l.err == "" && l.name != files[i].name {
			rep.add(Finding{Verdict: Dangerous, Member: memberPath(member, files[i].name), Offset: files[i].headerOffset, Rule: "zip.name-mismatch",
				Message: fmt.Sprintf("the local header names the member %q: Python's zipfile refuses it, PyTorch's miniz loads it by the directory's name (it was scanned)", l.name), Err: ErrAmbiguous})
		}
	}
	for _, o := range zipOverlaps(files, locals, v.dirStart) {
		rep.add(Finding{Verdict: Dangerous, Member: member, Offset: -1, Rule: "zip.overlap",
			Message: o + ": Python's zipfile refuses overlapping members, PyTorch's miniz reads them", Err: ErrAmbiguous})
	}

	// PyTorch: the first record's top folder is the archive name; the pickle is <name>/data.pkl.
	prefix := ""
	if len(files) > 0 {
		if i := strings.IndexByte(files[0].name, '/'); i >= 0 {
			prefix = files[0].name[:i+1]
		}
	}
	var dataPkl []*zipRecord
	names := map[string]int{}
	torchScript := false
	for i := range files {
		f := &files[i]
		names[f.name]++
		if strings.HasSuffix(f.name, "/data.pkl") && strings.Count(f.name, "/") == 1 || f.name == "data.pkl" {
			dataPkl = append(dataPkl, f)
		}
		// torch.load hands any archive with a constants.pkl record to torch.jit.load
		// (serialization.py _is_torchscript_zip), which compiles and runs code/.
		if f.name == prefix+"constants.pkl" || strings.HasPrefix(f.name, prefix+"code/") {
			torchScript = true
		}
		if !safeMemberName(f.name) {
			rep.add(Finding{Verdict: Suspicious, Member: memberPath(member, f.name), Offset: -1, Rule: "zip.path",
				Message: "member name is absolute or climbs out of the archive", Err: ErrMalformed})
		}
	}
	for name, n := range names {
		if n > 1 {
			rep.add(Finding{Verdict: Dangerous, Member: memberPath(member, name), Offset: -1, Rule: "zip.duplicate",
				Message: fmt.Sprintf("the central directory lists this member %d times: Python's zipfile loads the last, PyTorch's miniz another (all were scanned)", n), Err: ErrAmbiguous})
		}
	}
	format := FormatZip
	isTorch := len(dataPkl) > 0
	if isTorch {
		format = FormatPyTorchZip
		if len(dataPkl) > 1 {
			rep.add(Finding{Verdict: Suspicious, Member: member, Offset: -1, Rule: "pytorch.multiple-pickles",
				Message: fmt.Sprintf("the archive holds %d data.pkl records; which one loads depends on the reader", len(dataPkl)), Err: ErrMalformed})
		}
	}
	if torchScript {
		format = FormatTorchScript
		rep.add(Finding{Verdict: Safe, Member: member, Offset: -1, Rule: "code.torchscript",
			Message: "a TorchScript archive (constants.pkl or code/): torch.load passes it to torch.jit.load, which runs its code", Err: ErrNote})
	}
	refs := map[string]storageRef{}
	records := map[string]uint64{}
	allNumPy := len(files) > 0
	for i := range files {
		f := &files[i]
		if strings.HasSuffix(f.name, "/") && f.usize == 0 {
			continue
		}
		name := memberPath(member, f.name)
		records[f.name] = f.usize
		if locals[i].err != "" {
			rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "zip.local-header",
				Message: "local header cannot be read: " + locals[i].err, Err: ErrMalformed})
			allNumPy = false
			continue
		}
		key := zipMemberKey{f.name, locals[i].dataOffset, f.csize, f.method}
		if scanned[key] {
			continue
		}
		scanned[key] = true
		if f.flags&0x61 != 0 {
			rep.add(Finding{Verdict: Safe, Member: name, Offset: -1, Rule: "zip.flags",
				Message: fmt.Sprintf("general-purpose flags 0x%04x (encryption or patch bits): CPython's zipfile refuses the member, PyTorch reads it as stored bytes, and so does this scan", f.flags), Err: ErrNote})
		}
		storage := isTorch && prefix != "" && strings.HasPrefix(f.name, prefix+"data/")
		var onPersistent func(pval, int64)
		if isTorch && f == dataPkl[0] {
			onPersistent = collectStorages(rep, name, refs)
		}
		mf := scanZipMember(r, f, locals[i].dataOffset, name, storage, onPersistent, cfg, rep, depth)
		rep.Members = append(rep.Members, Member{Name: name, Format: mf, Size: int64(min(f.usize, math.MaxInt64))})
		if mf != FormatNumPy {
			allNumPy = false
		}
	}
	if isTorch {
		if _, ok := records[prefix+"version"]; !ok {
			if _, ok := records[prefix+".data/version"]; !ok {
				rep.add(Finding{Verdict: Suspicious, Member: memberPath(member, prefix+"version"), Offset: -1, Rule: "pytorch.version-missing",
					Message: "PyTorch archive has no version record; torch.load rejects it", Err: ErrMalformed})
			}
		}
	}
	if isTorch && !torchScript {
		for key, ref := range refs {
			rec := prefix + "data/" + key
			got, ok := records[rec]
			if !ok {
				rep.add(Finding{Verdict: Suspicious, Member: memberPath(member, rec), Offset: ref.offset, Rule: "pytorch.storage-missing",
					Message: fmt.Sprintf("data.pkl uses storage %q but the archive has no record for it", key), Err: ErrMalformed})
				continue
			}
			if need := uint64(ref.numel) * uint64(ref.elemSize); ref.numel > 0 && (need/uint64(ref.elemSize) != uint64(ref.numel) || need > got) {
				rep.add(Finding{Verdict: Suspicious, Member: memberPath(member, rec), Offset: ref.offset, Rule: "pytorch.storage-size",
					Message: fmt.Sprintf("storage %q declares %d elements of %s (%d bytes) but its record holds %d bytes", key, ref.numel, ref.typeName, need, got), Err: ErrMalformed})
			}
		}
	} else if !isTorch && !torchScript && allNumPy {
		format = FormatNumPyZip
	}
	return format
}

func safeMemberName(name string) bool {
	if name == "" {
		return true
	}
	if strings.HasPrefix(name, "/") || strings.Contains(name, `\`) || (len(name) > 1 && name[1] == ':') {
		return false
	}
	clean := path.Clean(name)
	return clean != ".." && !strings.HasPrefix(clean, "../")
}

// scanZipMember scans one member, whose data starts at off, by its content and returns the
// format found there.
func scanZipMember(r io.ReaderAt, f *zipRecord, off int64, name string, storage bool, onPersistent func(pval, int64), cfg *config, rep *Report, depth int) Format {
	if f.csize > math.MaxInt64-uint64(off) {
		rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "zip.size",
			Message: fmt.Sprintf("member size %d is impossible", f.csize), Err: ErrMalformed})
		return FormatUnknown
	}
	raw := io.NewSectionReader(r, off, int64(f.csize))
	switch f.method {
	case zipStore:
		if f.csize != f.usize && f.flags&0x1 == 0 { // encryption adds a header
			rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "zip.size-mismatch",
				Message: fmt.Sprintf("stored member's sizes disagree (%d compressed, %d uncompressed)", f.csize, f.usize), Err: ErrMalformed})
		}
		if storage {
			// Raw tensor bytes: torch reads them, never unpickles them. Only a pickle or
			// native code at their start is worth a look.
			head := make([]byte, 64)
			n, _ := raw.ReadAt(head, 0)
			if !(n >= 2 && head[0] == opProto && head[1] <= 5) && nativeKind(head[:n], raw, int64(f.csize)) == "" {
				return FormatUnknown
			}
		}
		sub := &Report{}
		var mf Format
		if onPersistent != nil {
			ps := newPickleScanner(cfg, sub, name, raw, 0, depth+1)
			ps.onPersistent = onPersistent
			ps.scanAll()
			mf = FormatPickle
		} else {
			mf = scanAt(raw, int64(f.csize), cfg, sub, name, depth+1)
		}
		mergeReport(rep, sub)
		if f.flags&0x1 == 0 && f.csize <= maxBufferedMember && (mf == FormatPickle || mf == FormatNumPy) {
			h := crc32.NewIEEE()
			if _, err := io.Copy(h, io.NewSectionReader(r, off, int64(f.csize))); err == nil && h.Sum32() != f.crc32 {
				rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "zip.crc",
					Message: fmt.Sprintf("CRC-32 is 0x%08x, the directory says 0x%08x: CPython's zipfile refuses the member, PyTorch loads it (its content was scanned)", h.Sum32(), f.crc32), Err: ErrMalformed})
			}
		}
		return mf
	case zipDeflate:
		if storage {
			head := make([]byte, 64)
			n, _ := io.ReadFull(flate.NewReader(raw), head)
			if !(n >= 2 && head[0] == opProto && head[1] <= 5) && nativeKind(head[:n], nil, int64(f.usize)) == "" {
				return FormatUnknown
			}
			raw = io.NewSectionReader(r, off, int64(f.csize))
		}
		return scanCompressedMember(flate.NewReader(raw), f, name, onPersistent, cfg, rep, depth)
	case zipBzip2:
		return scanCompressedMember(io.NopCloser(bzip2.NewReader(raw)), f, name, onPersistent, cfg, rep, depth)
	case zipLZMA:
		zr, err := zipLZMAReader(raw, f)
		if err != nil {
			rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "zip.inflate",
				Message: "LZMA member cannot be decompressed: " + err.Error(), Err: ErrMalformed})
			return FormatUnknown
		}
		return scanCompressedMember(io.NopCloser(zr), f, name, onPersistent, cfg, rep, depth)
	}
	rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "zip.method",
		Message: fmt.Sprintf("compression method %d is not supported, so the member cannot be inspected", f.method), Err: ErrUnsupported})
	return FormatUnknown
}

// zipLZMAReader reads a zip member of method 14 as Python's zipfile does: a 4-byte header
// (LZMA SDK version, properties size), the 5 LZMA properties, then raw LZMA data, ended by
// an end marker when flag bit 1 is set and otherwise by the declared size. The properties
// and size are given to the decoder as a .lzma header, with the dictionary capped.
func zipLZMAReader(raw io.Reader, f *zipRecord) (io.Reader, error) {
	var hdr [9]byte
	if _, err := io.ReadFull(raw, hdr[:]); err != nil {
		return nil, errors.New("the LZMA header is truncated")
	}
	if binary.LittleEndian.Uint16(hdr[2:]) != 5 {
		return nil, errors.New("the LZMA properties are not 5 bytes")
	}
	alone := make([]byte, 0, lzma.HeaderLen)
	alone = append(alone, hdr[4:9]...)
	size := f.usize
	if f.flags&0x2 != 0 {
		size = math.MaxUint64 // unknown: the data ends with an end marker
	}
	alone = binary.LittleEndian.AppendUint64(alone, size)
	return lzma.ReaderConfig{DictCap: xzMaxDict}.NewReader(io.MultiReader(bytes.NewReader(alone), raw))
}

// The compression methods PyTorch's miniz reads (store, deflate), and the two more Python's
// zipfile reads (numpy.load of an .npz), bzip2 and LZMA.
const (
	zipStore   = 0
	zipDeflate = 8
	zipBzip2   = 12
	zipLZMA    = 14
)

func startsLikePickle(r io.ReaderAt) bool {
	head := make([]byte, 2)
	n, _ := r.ReadAt(head, 0)
	return n == 2 && head[0] == opProto && head[1] <= 5
}

// scanCompressedMember scans a deflated zip member as a stream and checks its CRC.
func scanCompressedMember(zr io.ReadCloser, f *zipRecord, name string, onPersistent func(pval, int64), cfg *config, rep *Report, depth int) Format {
	defer zr.Close()
	// Python's zipfile reads exactly the declared size (miniz fails on more), so that is all
	// a loader sees and all the scan inflates, within what is left of the scan's budget.
	declared := int64(min(f.usize, math.MaxInt64))
	capped := &cappedReader{r: zr, left: min(declared, cfg.decompressBudget())}
	h := crc32.NewIEEE()
	cr := &countingReader{r: io.TeeReader(capped, h)}
	br := bufio.NewReaderSize(cr, int(bufferSize(declared)))
	format := scanStreamMember(br, declared, name, onPersistent, cfg, rep, depth)
	// Drain the rest, so the CRC and the decompressor's own checks see every byte.
	_, err := io.Copy(io.Discard, br)
	cfg.spend(capped.n)
	switch {
	case capped.exceeded && capped.n < declared:
		rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "compress.bomb",
			Message: fmt.Sprintf("the scan's decompression budget of %d bytes ran out in this member; a compression bomb, or an archive too large to vouch for", cfg.maxDecompressed), Err: ErrLimit})
	case capped.exceeded:
		rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "zip.size-mismatch",
			Message: fmt.Sprintf("the member inflates to more than the %d bytes the directory declares: Python's zipfile reads only those (they were scanned), miniz refuses the member", declared), Err: ErrMalformed})
	case err != nil:
		rep.add(Finding{Verdict: Suspicious, Member: name, Offset: cr.n, Rule: "zip.inflate",
			Message: "member cannot be decompressed: " + err.Error(), Err: ErrMalformed})
	case f.flags&0x1 == 0 && h.Sum32() != f.crc32:
		rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "zip.crc",
			Message: fmt.Sprintf("CRC-32 is 0x%08x, the directory says 0x%08x (the content was scanned)", h.Sum32(), f.crc32), Err: ErrMalformed})
	}
	return format
}

// scanStreamMember scans content that can only be read as a stream (a deflated zip member, a
// tar member, a decompressed stream) of size bytes, or -1 when unknown. Pickles, NumPy
// arrays, tars and compressed streams are streamed; formats that need random access are
// materialized (see materialize) up to the decompression limit.
func scanStreamMember(br *bufio.Reader, size int64, name string, onPersistent func(pval, int64), cfg *config, rep *Report, depth int) Format {
	head, _ := br.Peek(512)
	format := sniff(head)
	sub := &Report{}
	switch {
	case format == FormatPickle:
		ps := newPickleScanner(cfg, sub, name, br, 0, depth+1)
		ps.onPersistent = onPersistent
		ps.scanAll()
	case format == FormatNumPy && size >= 0:
		scanNumPy(br, size, cfg, sub, name, depth+1)
	case format == FormatUnknown:
		format = probeUnknown(br, cfg, sub, name, depth+1)
	case format == FormatTar:
		format = scanTar(br, cfg, sub, name, depth+1)
	case format == FormatCompressed:
		scanCompressed(br, compressionOf(head), cfg, sub, name, depth+1)
	case format == FormatNativeCode:
		if kind := streamNativeKind(br, head); kind != "" {
			scanNative(kind, sub, name)
		} else {
			format = probeUnknown(br, cfg, sub, name, depth+1)
		}
	default:
		limit := cfg.maxDecompressed
		if size >= 0 {
			limit = min(limit, size)
		}
		ra, n, cleanup, err := materialize(br, limit)
		if err != nil {
			rule, class := "archive.read", ErrMalformed
			if errors.Is(err, ErrLimit) {
				rule, class = "limit.member-size", ErrLimit
			}
			sub.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: rule,
				Message: fmt.Sprintf("%s member cannot be read for inspection: %v", format, err), Err: class})
			break
		}
		format = scanAt(ra, n, cfg, sub, name, depth+1)
		cleanup()
	}
	mergeReport(rep, sub)
	return format
}

type boundedReaderAt struct {
	r    io.ReaderAt
	size int64
}

func (b boundedReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= b.size {
		return 0, io.EOF
	}
	if int64(len(p)) > b.size-off {
		n, err := b.r.ReadAt(p[:b.size-off], off)
		if err == nil {
			err = io.EOF
		}
		return n, err
	}
	return b.r.ReadAt(p, off)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
