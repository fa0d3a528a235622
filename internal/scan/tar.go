package scan

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"strconv"
	"strings"
)

// Tar archives are read the way Python's tarfile reads them, since that is the loader: torch
// <= 1.x's legacy_load opens every non-zip checkpoint with tarfile.open(mode="r:") first and
// unpickles its storages, tensors and pickle members. tarfile knows a header by its checksum,
// not by the "ustar" magic (V7 headers have none), reads a member of a type it does not know
// as a regular file, and stops at the first zero block.

// isTarHeader reports whether block is a tar header as tarfile.TarInfo.frombuf accepts it:
// the checksum field, read as tarfile reads numbers (pythonTarNumber), equals the unsigned or
// signed sum of the block with that field counted as spaces. V7, GNU and POSIX headers all pass.
func isTarHeader(block []byte) bool {
	if len(block) < 512 {
		return false
	}
	want, ok := pythonTarNumber(block[148:156])
	if !ok {
		return false
	}
	var unsigned, signed int64
	for i, c := range block[:512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		unsigned += int64(c)
		signed += int64(int8(c))
	}
	return want == unsigned || want == signed
}

// pythonTarNumber reads a numeric header field as tarfile.nti does: base-256 after a 0x80 or
// 0xff byte; otherwise the text up to the first NUL, stripped of whitespace, through Python's
// int(text, 8), which also takes a sign, a 0o prefix and underscores between digits. Go's
// archive/tar reads some fields differently (goTarNumber), which is why sizes are compared
// (tarHeaderWatcher).
func pythonTarNumber(field []byte) (int64, bool) {
	if len(field) > 0 && (field[0] == 0x80 || field[0] == 0xff) {
		var n int64
		for _, c := range field[1:] {
			if n > (1<<62)>>8 {
				return 0, false
			}
			n = n<<8 | int64(c)
		}
		if field[0] == 0xff {
			n -= int64(1) << (8 * (len(field) - 1))
		}
		return n, true
	}
	if i := bytes.IndexByte(field, 0); i >= 0 {
		field = field[:i]
	}
	text := strings.TrimSpace(string(field))
	for _, c := range []byte(text) {
		if c >= 0x80 {
			return 0, false // ascii, strict
		}
	}
	if text == "" {
		return 0, true // int("" or "0", 8)
	}
	neg := false
	switch text[0] {
	case '+', '-':
		neg = text[0] == '-'
		text = text[1:]
	}
	if len(text) > 2 && text[0] == '0' && (text[1] == 'o' || text[1] == 'O') {
		text = strings.TrimPrefix(text[2:], "_")
	}
	if text == "" || text[0] == '_' || text[len(text)-1] == '_' || strings.Contains(text, "__") {
		return 0, false
	}
	var n int64
	for _, c := range []byte(strings.ReplaceAll(text, "_", "")) {
		if c < '0' || c > '7' || n > (1<<62)>>3 {
			return 0, false
		}
		n = n<<3 | int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// goTarNumber reads a numeric header field as Go's archive/tar does: base-256 when the first
// byte has its top bit set, otherwise octal text with spaces and NULs trimmed at both ends.
func goTarNumber(field []byte) (int64, bool) {
	if len(field) > 0 && field[0]&0x80 != 0 {
		inv := byte(0)
		if field[0]&0x40 != 0 {
			inv = 0xff
		}
		var x uint64
		for i, c := range field {
			c ^= inv
			if i == 0 {
				c &= 0x7f
			}
			if x>>56 > 0 {
				return 0, false
			}
			x = x<<8 | uint64(c)
		}
		if x>>63 > 0 {
			return 0, false
		}
		if inv == 0xff {
			return ^int64(x), true
		}
		return int64(x), true
	}
	text := strings.Trim(string(field), " \x00")
	if text == "" {
		return 0, true
	}
	n, err := strconv.ParseUint(text, 8, 63)
	return int64(n), err == nil
}

// tarHeaderWatcher sees every byte archive/tar reads and checks each block-aligned header in
// it (member headers, GNU long-name and pax headers alike): where Python's tarfile and Go read
// the size field as different numbers, they look for the next header at different places,
// and one of them reads as a header what the other skips as data.
type tarHeaderWatcher struct {
	r        io.Reader
	s        io.Seeker // nil for a stream
	pos      int64
	skip     int
	block    [512]byte
	fill     int
	disagree string
}

func (w *tarHeaderWatcher) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	w.feed(p[:n])
	return n, err
}

func (w *tarHeaderWatcher) feed(p []byte) {
	for len(p) > 0 {
		if w.skip > 0 {
			k := min(w.skip, len(p))
			w.skip -= k
			w.pos += int64(k)
			p = p[k:]
			continue
		}
		k := copy(w.block[w.fill:], p)
		w.fill += k
		w.pos += int64(k)
		p = p[k:]
		if w.fill == 512 {
			w.fill = 0
			w.check(w.block[:], w.pos-512)
		}
	}
}

// check costs a few byte comparisons for a block that is not a header: tensor data rarely has
// an octal digit among otherwise octal-looking checksum bytes.
func (w *tarHeaderWatcher) check(block []byte, at int64) {
	if w.disagree != "" {
		return
	}
	digit := false
	for _, c := range block[148:156] {
		switch {
		case c >= '0' && c <= '7':
			digit = true
		case c != ' ' && c != 0:
			return
		}
	}
	if !digit || !isTarHeader(block) {
		return
	}
	py, pyOK := pythonTarNumber(block[124:136])
	gosize, goOK := goTarNumber(block[124:136])
	if pyOK && goOK && py != gosize {
		w.disagree = fmt.Sprintf("the header at offset %d has a size field %q that Python's tarfile reads as %d bytes and Go's archive/tar as %d, so they look for the next header at different places", at, bytes.TrimRight(block[124:136], "\x00"), py, gosize)
	}
}

// tarHeaderSeeker keeps archive/tar's seeking over member data for a tar on random access.
type tarHeaderSeeker struct{ *tarHeaderWatcher }

func (w tarHeaderSeeker) Seek(off int64, whence int) (int64, error) {
	pos, err := w.s.Seek(off, whence)
	if err == nil && pos != w.pos {
		w.pos, w.fill = pos, 0
		w.skip = int((512 - pos%512) % 512)
	}
	return pos, err
}

// tarDisagreement says how Python's tarfile reads a header otherwise than Go's archive/tar
// does, beyond sizes (tarHeaderWatcher): headers whose records tarfile applies to other
// members. "" when they agree.
func tarDisagreement(h *tar.Header) string {
	switch h.Typeflag {
	case 'X':
		return "a Solaris extended header ('X'): tarfile applies its records to the next member, Go's archive/tar reads it as a file"
	case tar.TypeXGlobalHeader:
		for _, k := range []string{"size", "path"} {
			if _, ok := h.PAXRecords[k]; ok {
				return fmt.Sprintf("a global pax header sets %q: tarfile applies it to every later member, Go's archive/tar to none", k)
			}
		}
	}
	return ""
}

// tarMetadataTypes are the header types Go's archive/tar consumes itself (PAX and GNU long
// names) and the types that carry no data; every other member, including types neither
// reader knows, is read as a file by tarfile and so is scanned.
func tarCarriesData(t byte) bool {
	switch t {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo,
		tar.TypeXHeader, tar.TypeXGlobalHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
		return false
	}
	return true
}

// scanTar scans a tar archive read as a stream, member by member, by content. The tar
// checkpoints of PyTorch <= 0.1.x (members sys_info, pickle, storages, tensors) are walked
// the way torch reads them: storages and tensors interleave small pickles with raw bytes.
func scanTar(r io.Reader, cfg *config, rep *Report, member string, depth int) Format {
	sr, _ := r.(*io.SectionReader) // a tar on random-access storage, not a stream
	if depth >= cfg.maxDepth {
		rep.add(Finding{Verdict: Suspicious, Member: member, Offset: 0, Rule: "limit.depth",
			Message: fmt.Sprintf("archive nested deeper than %d levels; not scanned", cfg.maxDepth), Err: ErrLimit})
		return FormatTar
	}
	watch := &tarHeaderWatcher{r: r}
	var src io.Reader = watch
	if sr != nil {
		watch.s = sr
		src = tarHeaderSeeker{watch}
	}
	tr := tar.NewReader(src)
	format := FormatTar
	torch := map[string]bool{}
	n := 0
	ambiguous := false
	scanned := map[[2]int64]bool{} // (data offset, size) of members read in place
	defer func() {
		if watch.disagree != "" {
			ambiguous = true
			rep.add(Finding{Verdict: Dangerous, Member: member, Offset: -1, Rule: "tar.ambiguous",
				Message: watch.disagree + ". Write the archive again with one tool (tarfile, GNU tar) so every reader sees the same members", Err: ErrAmbiguous})
		}
		if ambiguous && sr != nil {
			scanPythonTarView(sr, scanned, cfg, rep, member, depth)
		}
	}()
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			rep.add(Finding{Verdict: Suspicious, Member: member, Offset: -1, Rule: "tar.header",
				Message: "tar header cannot be read: " + err.Error(), Err: ErrMalformed})
			break
		}
		if d := tarDisagreement(h); d != "" {
			ambiguous = true
			rep.add(Finding{Verdict: Dangerous, Member: memberPath(member, h.Name), Offset: -1, Rule: "tar.ambiguous",
				Message: d + ". Write the archive again with one tool (tarfile, GNU tar) so every reader sees the same members", Err: ErrAmbiguous})
		}
		if n++; n > cfg.maxMembers {
			rep.add(Finding{Verdict: Suspicious, Member: member, Offset: -1, Rule: "limit.members",
				Message: fmt.Sprintf("archive has more than %d members; the rest are not scanned", cfg.maxMembers), Err: ErrLimit})
			break
		}
		if !tarCarriesData(h.Typeflag) {
			continue
		}
		name := memberPath(member, h.Name)
		if !safeMemberName(h.Name) {
			rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "tar.path",
				Message: "member name is absolute or climbs out of the archive", Err: ErrMalformed})
		}
		br := bufio.NewReaderSize(tr, int(bufferSize(h.Size)))
		var mf Format
		// tarfile.getmember, which torch's legacy_load uses, compares normalised names:
		// "./storages" is the storages member.
		base := path.Clean(h.Name)
		switch base {
		case "storages", "tensors":
			torch[base] = true
			mf = FormatPyTorchTar
			scanTorchTarRecords(br, base, cfg, rep, name, depth)
		default:
			if base == "sys_info" || base == "pickle" {
				torch[base] = true
			}
			if off, ok := tarDataOffset(sr, h); ok {
				// A tar on random-access storage: the member's bytes lie in one piece, so
				// formats that need random access read them in place instead of buffering.
				sub := &Report{}
				mf = scanAt(io.NewSectionReader(sr, off, h.Size), h.Size, cfg, sub, name, depth+1)
				mergeReport(rep, sub)
				scanned[[2]int64{off, h.Size}] = true
			} else {
				mf = scanStreamMember(br, h.Size, name, nil, cfg, rep, depth)
			}
		}
		rep.Members = append(rep.Members, Member{Name: name, Format: mf, Size: h.Size})
	}
	if len(torch) == 4 {
		format = FormatPyTorchTar
	}
	return format
}

// scanPythonTarView reads a tar on random-access storage the way Python's tarfile walks it,
// after Go's archive/tar was found to read it otherwise, and scans the members only tarfile
// sees. It follows plain V7, GNU and ustar headers and stops at the first it does not model
// (pax, GNU long names, sparse files), at a zero block or at a header tarfile rejects, as
// tarfile stops there too.
func scanPythonTarView(sr *io.SectionReader, scanned map[[2]int64]bool, cfg *config, rep *Report, member string, depth int) {
	block := make([]byte, 512)
	for pos, n := int64(0), 0; n < cfg.maxMembers; n++ {
		if !readFull(sr, block, pos) || !isTarHeader(block) {
			return
		}
		typ := block[156]
		switch typ {
		case 'x', 'g', 'X', 'L', 'K', 'S':
			return
		}
		size, ok := pythonTarNumber(block[124:136])
		if !ok || size < 0 {
			return
		}
		name := string(block[:100])
		if i := strings.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if prefix, _, _ := strings.Cut(string(block[345:500]), "\x00"); prefix != "" {
			name = prefix + "/" + name
		}
		data := pos + 512
		regular := typ == '0' || typ == 0 || typ == '7' || !strings.ContainsRune("123456", rune(typ))
		if typ == 0 && strings.HasSuffix(name, "/") {
			regular = false
		}
		if !regular {
			pos = data
			continue
		}
		if size > sr.Size()-data {
			return
		}
		if !scanned[[2]int64{data, size}] {
			scanned[[2]int64{data, size}] = true
			full := memberPath(member, name)
			sub := &Report{}
			mf := scanAt(io.NewSectionReader(sr, data, size), size, cfg, sub, full, depth+1)
			mergeReport(rep, sub)
			rep.Members = append(rep.Members, Member{Name: full, Format: mf, Size: size})
		}
		pos = data + (size+511)/512*512
	}
}

// tarDataOffset is where a member's data starts in a tar read from sr: archive/tar reads
// headers in whole blocks and never ahead, so it is the reader's position after Next. Sparse
// members are not stored in one piece.
func tarDataOffset(sr *io.SectionReader, h *tar.Header) (int64, bool) {
	if sr == nil || h.Typeflag == tar.TypeGNUSparse {
		return 0, false
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return 0, false
		}
	}
	off, err := sr.Seek(0, io.SeekCurrent)
	return off, err == nil && h.Size >= 0 && off <= sr.Size()-h.Size
}

// scanTorchTarRecords walks a legacy tar checkpoint's storages or tensors member
// (torch/serialization.py legacy_load): a pickled count, then per record a pickled tuple
// followed by raw bytes whose length the tuple and a small binary header give.
func scanTorchTarRecords(br *bufio.Reader, kind string, cfg *config, rep *Report, member string, depth int) {
	ps := newPickleScanner(cfg, rep, member, br, 0, depth)
	bad := func(truncated bool, format string, args ...any) {
		err, rule := ErrMalformed, "pytorch.tar-record"
		if truncated {
			err = ErrTruncated
		}
		rep.add(Finding{Verdict: Suspicious, Member: member, Offset: ps.pos, Rule: rule, Message: fmt.Sprintf(format, args...), Err: err})
	}
	count, perr := ps.scanOne()
	if perr != nil {
		ps.reportError(perr, 0)
		return
	}
	if count.kind != pkInt || count.n < 0 {
		bad(false, "%s: the record count is not a non-negative integer", kind)
		return
	}
	raw := func(n int64) bool {
		m, err := ps.r.Discard(int(min(n, math.MaxInt)))
		ps.pos += int64(m)
		if err != nil || int64(m) != n {
			bad(true, "%s: record data runs past the end of the member", kind)
			return false
		}
		return true
	}
	var hdr [8]byte
	for i := int64(0); i < count.n; i++ {
		rec, perr := ps.scanOne()
		if perr != nil {
			ps.reportError(perr, int(i)+1)
			return
		}
		if rec.kind != pkTuple || len(rec.items) != 3 {
			bad(false, "%s: record %d is a %s, not a 3-tuple", kind, i, rec.kind)
			return
		}
		if kind == "storages" {
			// (key, location, storage_type), then int64 numel and numel*element_size bytes.
			st := rec.items[2]
			elem, ok := int64(0), false
			if st.kind == pkGlobal {
				if j := lastDot(st.str); j >= 0 {
					elem, ok = storageElemSize[st.str[j+1:]]
				}
			}
			if !ok {
				bad(false, "storages: record %d names %s, not a storage class", i, describe(st))
				return
			}
			if _, err := io.ReadFull(ps.r, hdr[:]); err != nil {
				bad(true, "storages: file ends in record %d", i)
				return
			}
			ps.pos += 8
			numel := binary.LittleEndian.Uint64(hdr[:])
			if numel > math.MaxInt64/uint64(elem) {
				bad(false, "storages: record %d has %d elements", i, numel)
				return
			}
			if !raw(int64(numel) * elem) {
				return
			}
			continue
		}
		// tensors: (key, storage_id, type), int32 ndim, 4 unused bytes, ndim sizes and
		// ndim strides (int64), int64 storage offset.
		if _, err := io.ReadFull(ps.r, hdr[:]); err != nil {
			bad(true, "tensors: file ends in record %d", i)
			return
		}
		ps.pos += 8
		ndim := int32(binary.LittleEndian.Uint32(hdr[:4]))
		if ndim < 0 || ndim > 64 {
			bad(false, "tensors: record %d has %d dimensions", i, ndim)
			return
		}
		if !raw(int64(ndim)*16 + 8) {
			return
		}
	}
	if kind == "storages" {
		// then a pickled list of storage views: (target, root, offset, numel) tuples
		if _, perr := ps.scanOne(); perr != nil {
			ps.reportError(perr, int(count.n)+1)
			return
		}
	}
	if _, err := ps.r.Peek(1); !errors.Is(err, io.EOF) {
		bad(false, "%s: bytes after the last record", kind)
	}
}
