package scan

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"path"
	"strings"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zip"
)

// maxBufferedMember bounds how much of a compressed archive member is buffered for a format
// that needs random access (a zip or safetensors file inside a zip). Pickles always stream.
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
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		rep.add(Finding{Verdict: Suspicious, Member: member, Offset: 0, Rule: "zip.unreadable",
			Message: "starts like a zip but its central directory cannot be read: " + err.Error(), Err: ErrMalformed})
		return FormatZip
	}
	files := zr.File
	if len(files) > cfg.maxMembers {
		rep.add(Finding{Verdict: Suspicious, Member: member, Offset: -1, Rule: "limit.members",
			Message: fmt.Sprintf("archive has %d members; only the first %d are scanned", len(files), cfg.maxMembers), Err: ErrLimit})
		files = files[:cfg.maxMembers]
	}

	// PyTorch: the first record's top folder is the archive name; the pickle is <name>/data.pkl.
	prefix := ""
	if len(files) > 0 {
		if i := strings.IndexByte(files[0].Name, '/'); i >= 0 {
			prefix = files[0].Name[:i+1]
		}
	}
	var dataPkl []*zip.File
	names := map[string]int{}
	for _, f := range files {
		names[f.Name]++
		if strings.HasSuffix(f.Name, "/data.pkl") && strings.Count(f.Name, "/") == 1 || f.Name == "data.pkl" {
			dataPkl = append(dataPkl, f)
		}
		if !safeMemberName(f.Name) {
			rep.add(Finding{Verdict: Suspicious, Member: memberPath(member, f.Name), Offset: -1, Rule: "zip.path",
				Message: "member name is absolute or climbs out of the archive", Err: ErrMalformed})
		}
	}
	for name, n := range names {
		if n > 1 {
			rep.add(Finding{Verdict: Suspicious, Member: memberPath(member, name), Offset: -1, Rule: "zip.duplicate",
				Message: fmt.Sprintf("the central directory lists this member %d times; readers disagree on which one they load (all were scanned)", n), Err: ErrMalformed})
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
	refs := map[string]storageRef{}
	records := map[string]uint64{}
	allNumPy := len(files) > 0
	for _, f := range files {
		if strings.HasSuffix(f.Name, "/") && f.UncompressedSize64 == 0 {
			continue
		}
		name := memberPath(member, f.Name)
		if f.Flags&0x61 != 0 {
			rep.add(Finding{Verdict: Safe, Member: name, Offset: -1, Rule: "zip.flags",
				Message: fmt.Sprintf("general-purpose flags 0x%04x (encryption or patch bits): CPython's zipfile refuses the member, PyTorch reads it as stored bytes, and so does this scan", f.Flags), Err: ErrNote})
		}
		records[f.Name] = f.UncompressedSize64
		storage := isTorch && prefix != "" && strings.HasPrefix(f.Name, prefix+"data/")
		var onPersistent func(pval, int64)
		if isTorch && (f == dataPkl[0]) {
			onPersistent = collectStorages(rep, name, refs)
		}
		mf := scanZipMember(r, f, name, storage, onPersistent, cfg, rep, depth)
		rep.Members = append(rep.Members, Member{Name: name, Format: mf, Size: int64(f.UncompressedSize64)})
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
	} else if allNumPy {
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

// scanZipMember scans one member by its content and returns the format found there.
func scanZipMember(r io.ReaderAt, f *zip.File, name string, storage bool, onPersistent func(pval, int64), cfg *config, rep *Report, depth int) Format {
	off, err := f.DataOffset()
	if err != nil {
		rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "zip.local-header",
			Message: "local header cannot be read: " + err.Error(), Err: ErrMalformed})
		return FormatUnknown
	}
	if f.CompressedSize64 > math.MaxInt64-uint64(off) {
		rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "zip.size",
			Message: fmt.Sprintf("member size %d is impossible", f.CompressedSize64), Err: ErrMalformed})
		return FormatUnknown
	}
	raw := io.NewSectionReader(r, off, int64(f.CompressedSize64))
	switch f.Method {
	case zip.Store:
		if f.CompressedSize64 != f.UncompressedSize64 && f.Flags&0x1 == 0 { // encryption adds a header
			rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "zip.size-mismatch",
				Message: fmt.Sprintf("stored member's sizes disagree (%d compressed, %d uncompressed)", f.CompressedSize64, f.UncompressedSize64), Err: ErrMalformed})
		}
		if storage && !startsLikePickle(raw) {
			return FormatUnknown // raw tensor bytes: torch reads them, never unpickles them
		}
		sub := &Report{}
		var mf Format
		if onPersistent != nil {
			ps := newPickleScanner(cfg, sub, name, raw, 0, depth+1)
			ps.onPersistent = onPersistent
			ps.scanAll()
			mf = FormatPickle
		} else {
			mf = scanAt(raw, int64(f.CompressedSize64), cfg, sub, name, depth+1)
		}
		mergeReport(rep, sub)
		if f.Flags&0x1 == 0 && f.CompressedSize64 <= maxBufferedMember && (mf == FormatPickle || mf == FormatNumPy) {
			h := crc32.NewIEEE()
			if _, err := io.Copy(h, io.NewSectionReader(r, off, int64(f.CompressedSize64))); err == nil && h.Sum32() != f.CRC32 {
				rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "zip.crc",
					Message: fmt.Sprintf("CRC-32 is 0x%08x, the directory says 0x%08x: CPython's zipfile refuses the member, PyTorch loads it (its content was scanned)", h.Sum32(), f.CRC32), Err: ErrMalformed})
			}
		}
		return mf
	case zip.Deflate:
		if storage {
			head := make([]byte, 2)
			n, _ := io.ReadFull(flate.NewReader(raw), head)
			if !(n == 2 && head[0] == opProto && head[1] <= 5) {
				return FormatUnknown
			}
			raw = io.NewSectionReader(r, off, int64(f.CompressedSize64))
		}
		return scanCompressedMember(flate.NewReader(raw), f, name, onPersistent, cfg, rep, depth)
	}
	rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "zip.method",
		Message: fmt.Sprintf("compression method %d is not supported, so the member cannot be inspected", f.Method), Err: ErrUnsupported})
	return FormatUnknown
}

func startsLikePickle(r io.ReaderAt) bool {
	head := make([]byte, 2)
	n, _ := r.ReadAt(head, 0)
	return n == 2 && head[0] == opProto && head[1] <= 5
}

// scanCompressedMember scans a deflated zip member as a stream and checks its CRC.
func scanCompressedMember(zr io.ReadCloser, f *zip.File, name string, onPersistent func(pval, int64), cfg *config, rep *Report, depth int) Format {
	defer zr.Close()
	h := crc32.NewIEEE()
	cr := &countingReader{r: io.TeeReader(zr, h)}
	br := bufio.NewReaderSize(cr, int(bufferSize(int64(min(f.UncompressedSize64, 1<<40)))))
	format := scanStreamMember(br, int64(f.UncompressedSize64), name, onPersistent, cfg, rep, depth)
	// Drain the rest, so the CRC and the decompressor's own checks see every byte.
	if _, err := io.Copy(io.Discard, br); err != nil {
		rep.add(Finding{Verdict: Suspicious, Member: name, Offset: cr.n, Rule: "zip.inflate",
			Message: "member cannot be decompressed: " + err.Error(), Err: ErrMalformed})
	} else if f.Flags&0x1 == 0 && h.Sum32() != f.CRC32 {
		rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "zip.crc",
			Message: fmt.Sprintf("CRC-32 is 0x%08x, the directory says 0x%08x (the content was scanned)", h.Sum32(), f.CRC32), Err: ErrMalformed})
	}
	return format
}

// scanStreamMember scans an archive member that can only be read as a stream. Pickles and
// NumPy arrays are streamed; formats that need random access are buffered up to a limit.
func scanStreamMember(br *bufio.Reader, size int64, name string, onPersistent func(pval, int64), cfg *config, rep *Report, depth int) Format {
	head, _ := br.Peek(512)
	format := sniff(head)
	sub := &Report{}
	switch format {
	case FormatPickle:
		ps := newPickleScanner(cfg, sub, name, br, 0, depth+1)
		ps.onPersistent = onPersistent
		ps.scanAll()
	case FormatNumPy:
		scanNumPy(br, size, cfg, sub, name, depth+1)
	case FormatUnknown:
		format = probeUnknown(br, cfg, sub, name, depth+1)
	default:
		if size > maxBufferedMember {
			sub.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "limit.member-size",
				Message: fmt.Sprintf("%s member of %d bytes is too large to buffer for inspection", format, size), Err: ErrLimit})
			break
		}
		buf, err := io.ReadAll(io.LimitReader(br, maxBufferedMember+1))
		if err != nil {
			sub.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "archive.read",
				Message: "member cannot be read: " + err.Error(), Err: ErrMalformed})
			break
		}
		format = scanAt(bytes.NewReader(buf), int64(len(buf)), cfg, sub, name, depth+1)
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
