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
	"strings"
)

// Tar archives are read the way Python's tarfile reads them, since that is the loader: torch
// <= 1.x's legacy_load opens every non-zip checkpoint with tarfile.open(mode="r:") first and
// unpickles its storages, tensors and pickle members. tarfile knows a header by its checksum,
// not by the "ustar" magic (V7 headers have none), reads a member of a type it does not know
// as a regular file, and stops at the first zero block.

// isTarHeader reports whether block is a tar header as tarfile.TarInfo.frobuf accepts it: the
// octal checksum field (cut at its first NUL, spaces stripped) equals the unsigned or signed
// sum of the block with that field counted as spaces. V7, GNU and POSIX headers all pass.
func isTarHeader(block []byte) bool {
	if len(block) < 512 {
		return false
	}
	field := block[148:156]
	if i := bytes.IndexByte(field, 0); i >= 0 {
		field = field[:i]
	}
	field = bytes.TrimSpace(field)
	if len(field) == 0 {
		return false
	}
	var want int64
	for _, c := range field {
		if c < '0' || c > '7' {
			return false
		}
		want = want*8 + int64(c-'0')
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
	tr := tar.NewReader(r)
	format := FormatTar
	torch := map[string]bool{}
	n := 0
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
