package scan

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"unicode/utf16"

	"github.com/klauspost/compress/flate"
	"github.com/ulikunitz/xz/lzma"
)

// 7-Zip archives are not a model format, but they carried the nullifAI payloads
// (weight-formats.md §4, bypass 7): a pickle inside a 7z that scanners skipped. The reader
// below follows 7zFormat.txt for what such archives use: the (possibly LZMA-encoded) header,
// folders of a single coder (Copy, LZMA, LZMA2, Deflate), solid folders split into
// substreams. Anything else (BCJ or AES filters, multi-coder folders) is reported as
// uninspectable. Every file is scanned by content, streamed.

const (
	szEnd = iota
	szHeader
	szArchiveProperties
	szAdditionalStreamsInfo
	szMainStreamsInfo
	szFilesInfo
	szPackInfo
	szUnpackInfo
	szSubStreamsInfo
	szSize
	szCRC
	szFolderID
	szCodersUnpackSize
	szNumUnpackStream
	szEmptyStream
	szEmptyFile
	szAnti
	szName
	szEncodedHeader = 0x17
)

const (
	maxSevenZipHeader = 64 << 20
	maxSevenZipDict   = 64 << 20 // 7-Zip's largest preset (-mx9); larger dictionaries fail to decode
	maxSevenZipItems  = 1 << 20
)

type szCoder struct {
	id    []byte
	props []byte
	ins   uint64
	outs  uint64
}

type szFolder struct {
	coders      []szCoder
	unpackSizes []uint64
	packIndex   int // first pack stream of the folder
	numPacked   uint64
	substreams  []uint64 // sizes of the files stored in the folder
	hasCRC      bool
	bindPairs   [][2]uint64 // (coder input, coder output) joined inside the folder
}

type szStreams struct {
	packPos   uint64
	packSizes []uint64
	folders   []*szFolder
}

type szReader struct {
	b   []byte
	pos int
}

var errSz = errors.New("7z header ends early")

func (r *szReader) byte() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, errSz
	}
	r.pos++
	return r.b[r.pos-1], nil
}

func (r *szReader) bytes(n uint64) ([]byte, error) {
	if n > uint64(len(r.b)-r.pos) {
		return nil, errSz
	}
	r.pos += int(n)
	return r.b[r.pos-int(n) : r.pos], nil
}

// number reads 7z's variable-length NUMBER.
func (r *szReader) number() (uint64, error) {
	first, err := r.byte()
	if err != nil {
		return 0, err
	}
	var v uint64
	mask := byte(0x80)
	for i := 0; i < 8; i++ {
		if first&mask == 0 {
			return v | uint64(first&(mask-1))<<(8*i), nil
		}
		b, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(b) << (8 * i)
		mask >>= 1
	}
	return v, nil
}

func (r *szReader) count() (uint64, error) {
	n, err := r.number()
	// Every item takes at least a bit of the header: a count beyond that is a lie, and
	// must not size an allocation.
	if err == nil && (n > maxSevenZipItems || n > 8*uint64(len(r.b)-r.pos)+8) {
		err = fmt.Errorf("7z header claims %d items", n)
	}
	return n, err
}

func (r *szReader) bits(n uint64) ([]bool, error) {
	out := make([]bool, n)
	var cur byte
	for i := uint64(0); i < n; i++ {
		if i%8 == 0 {
			var err error
			if cur, err = r.byte(); err != nil {
				return nil, err
			}
		}
		out[i] = cur&(0x80>>(i%8)) != 0
	}
	return out, nil
}

// digests skips n optional CRCs and returns which were defined.
func (r *szReader) digests(n uint64) ([]bool, error) {
	all, err := r.byte()
	if err != nil {
		return nil, err
	}
	var bs []bool
	if all == 0 {
		if bs, err = r.bits(n); err != nil {
			return nil, err
		}
	} else {
		bs = make([]bool, n)
		for i := range bs {
			bs[i] = true
		}
	}
	var defined uint64
	for _, b := range bs {
		if b {
			defined++
		}
	}
	_, err = r.bytes(4 * defined)
	return bs, err
}

func (r *szReader) streamsInfo() (*szStreams, error) {
	s := &szStreams{}
	for {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		switch id {
		case szEnd:
			return s, nil
		case szPackInfo:
			if s.packPos, err = r.number(); err != nil {
				return nil, err
			}
			n, err := r.count()
			if err != nil {
				return nil, err
			}
			for {
				pid, err := r.byte()
				if err != nil {
					return nil, err
				}
				if pid == szEnd {
					break
				}
				switch pid {
				case szSize:
					s.packSizes = make([]uint64, n)
					for i := range s.packSizes {
						if s.packSizes[i], err = r.number(); err != nil {
							return nil, err
						}
					}
				case szCRC:
					if _, err := r.digests(n); err != nil {
						return nil, err
					}
				default:
					return nil, fmt.Errorf("unexpected property 0x%02x in pack info", pid)
				}
			}
		case szUnpackInfo:
			if err := r.unpackInfo(s); err != nil {
				return nil, err
			}
		case szSubStreamsInfo:
			if err := r.subStreamsInfo(s); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unexpected property 0x%02x in streams info", id)
		}
	}
}

func (r *szReader) unpackInfo(s *szStreams) error {
	if id, err := r.byte(); err != nil || id != szFolderID {
		return fmt.Errorf("unpack info without folders")
	}
	n, err := r.count()
	if err != nil {
		return err
	}
	if ext, err := r.byte(); err != nil || ext != 0 {
		return errors.New("external folder definitions are not supported")
	}
	pack := 0
	for i := uint64(0); i < n; i++ {
		f := &szFolder{packIndex: pack}
		nc, err := r.count()
		if err != nil {
			return err
		}
		var ins, outs uint64
		for j := uint64(0); j < nc; j++ {
			flags, err := r.byte()
			if err != nil {
				return err
			}
			c := szCoder{ins: 1, outs: 1}
			if c.id, err = r.bytes(uint64(flags & 0x0f)); err != nil {
				return err
			}
			if flags&0x10 != 0 {
				if c.ins, err = r.count(); err != nil {
					return err
				}
				if c.outs, err = r.count(); err != nil {
					return err
				}
			}
			if flags&0x20 != 0 {
				ps, err := r.number()
				if err != nil {
					return err
				}
				if c.props, err = r.bytes(ps); err != nil {
					return err
				}
			}
			ins += c.ins
			outs += c.outs
			f.coders = append(f.coders, c)
		}
		if outs == 0 || outs > maxSevenZipItems || ins > maxSevenZipItems {
			return errors.New("folder has no output stream")
		}
		for j := uint64(0); j < outs-1; j++ {
			in, err := r.number()
			if err != nil {
				return err
			}
			out, err := r.number()
			if err != nil {
				return err
			}
			f.bindPairs = append(f.bindPairs, [2]uint64{in, out})
		}
		if ins < outs-1 {
			return errors.New("folder binds more streams than it has")
		}
		f.numPacked = ins - (outs - 1)
		if f.numPacked > 1 {
			for j := uint64(0); j < f.numPacked; j++ {
				if _, err := r.number(); err != nil {
					return err
				}
			}
		}
		f.unpackSizes = make([]uint64, outs)
		pack += int(f.numPacked)
		s.folders = append(s.folders, f)
	}
	if id, err := r.byte(); err != nil || id != szCodersUnpackSize {
		return errors.New("unpack info without unpack sizes")
	}
	for _, f := range s.folders {
		for i := range f.unpackSizes {
			if f.unpackSizes[i], err = r.number(); err != nil {
				return err
			}
		}
		f.substreams = []uint64{f.unpackSizes[len(f.unpackSizes)-1]}
	}
	for {
		id, err := r.byte()
		if err != nil {
			return err
		}
		switch id {
		case szEnd:
			return nil
		case szCRC:
			defined, err := r.digests(n)
			if err != nil {
				return err
			}
			for i, d := range defined {
				s.folders[i].hasCRC = d
			}
		default:
			return fmt.Errorf("unexpected property 0x%02x in unpack info", id)
		}
	}
}

func (r *szReader) subStreamsInfo(s *szStreams) error {
	counts := make([]uint64, len(s.folders))
	for i := range counts {
		counts[i] = 1
	}
	id, err := r.byte()
	if err != nil {
		return err
	}
	if id == szNumUnpackStream {
		for i := range counts {
			if counts[i], err = r.count(); err != nil {
				return err
			}
		}
		if id, err = r.byte(); err != nil {
			return err
		}
	}
	sizesRead := id == szSize
	for i, f := range s.folders {
		total := f.unpackSizes[len(f.unpackSizes)-1]
		f.substreams = nil
		if counts[i] == 0 {
			continue
		}
		var sum uint64
		for j := uint64(1); j < counts[i]; j++ {
			var sz uint64
			if sizesRead {
				if sz, err = r.number(); err != nil {
					return err
				}
			}
			sum += sz
			f.substreams = append(f.substreams, sz)
		}
		if sum > total {
			return errors.New("substream sizes exceed their folder")
		}
		f.substreams = append(f.substreams, total-sum)
	}
	if sizesRead {
		if id, err = r.byte(); err != nil {
			return err
		}
	}
	for id != szEnd {
		if id != szCRC {
			return fmt.Errorf("unexpected property 0x%02x in substreams info", id)
		}
		var unknown uint64
		for i, f := range s.folders {
			if counts[i] != 1 || !f.hasCRC {
				unknown += counts[i]
			}
		}
		if _, err := r.digests(unknown); err != nil {
			return err
		}
		if id, err = r.byte(); err != nil {
			return err
		}
	}
	return nil
}

// szFile is a file entry: its name and whether it has data.
type szFile struct {
	name    string
	hasData bool
}

func (r *szReader) filesInfo() ([]szFile, error) {
	n, err := r.count()
	if err != nil {
		return nil, err
	}
	files := make([]szFile, n)
	for i := range files {
		files[i].hasData = true
		files[i].name = fmt.Sprintf("#%d", i)
	}
	for {
		typ, err := r.number()
		if err != nil {
			return nil, err
		}
		if typ == szEnd {
			return files, nil
		}
		size, err := r.number()
		if err != nil {
			return nil, err
		}
		data, err := r.bytes(size)
		if err != nil {
			return nil, err
		}
		sub := &szReader{b: data}
		switch typ {
		case szEmptyStream:
			empty, err := sub.bits(n)
			if err != nil {
				return nil, err
			}
			for i, e := range empty {
				files[i].hasData = !e
			}
		case szName:
			if ext, err := sub.byte(); err != nil || ext != 0 {
				return nil, errors.New("external file names are not supported")
			}
			rest := data[1:]
			for i := range files {
				var u []uint16
				for len(rest) >= 2 {
					c := binary.LittleEndian.Uint16(rest)
					rest = rest[2:]
					if c == 0 {
						break
					}
					u = append(u, c)
				}
				files[i].name = string(utf16.Decode(u))
			}
		}
	}
}

// folderReader returns a reader of a folder's unpacked bytes. Folders are chains of
// one-input, one-output coders (a filter over a decompressor, as BCJ over LZMA2).
func folderReader(r io.ReaderAt, size int64, s *szStreams, f *szFolder) (io.Reader, error) {
	if f.numPacked != 1 || f.packIndex >= len(s.packSizes) || len(f.coders) > 4 {
		return nil, fmt.Errorf("folder of %d coders and %d packed streams is not supported", len(f.coders), f.numPacked)
	}
	for _, c := range f.coders {
		if c.ins != 1 || c.outs != 1 {
			return nil, errors.New("coders with several streams are not supported")
		}
	}
	off := uint64(32) + s.packPos
	for i := 0; i < f.packIndex; i++ {
		off += s.packSizes[i]
	}
	n := s.packSizes[f.packIndex]
	if off > uint64(size) || n > uint64(size)-off {
		return nil, fmt.Errorf("packed stream at %d (%d bytes) is outside the file", off, n)
	}
	boundOut := map[uint64]bool{}
	source := map[uint64]uint64{} // coder -> coder feeding its input
	for _, bp := range f.bindPairs {
		if bp[0] >= uint64(len(f.coders)) || bp[1] >= uint64(len(f.coders)) {
			return nil, errors.New("bind pair names a stream the folder does not have")
		}
		boundOut[bp[1]] = true
		source[bp[0]] = bp[1]
	}
	main := -1
	for i := range f.coders {
		if !boundOut[uint64(i)] {
			main = i
		}
	}
	if main < 0 {
		return nil, errors.New("folder has no unbound output")
	}
	var build func(c uint64, depth int) (io.Reader, error)
	build = func(c uint64, depth int) (io.Reader, error) {
		if depth > len(f.coders) {
			return nil, errors.New("coders form a cycle")
		}
		var in io.Reader
		if src, ok := source[c]; ok {
			var err error
			if in, err = build(src, depth+1); err != nil {
				return nil, err
			}
		} else {
			in = io.NewSectionReader(r, int64(off), int64(n))
		}
		return coderReader(f.coders[c], in, f.unpackSizes[c])
	}
	return build(uint64(main), 0)
}

func coderReader(c szCoder, in io.Reader, unpacked uint64) (io.Reader, error) {
	dict := int(max(min(unpacked, maxSevenZipDict), lzma.MinDictCap))
	switch {
	case bytes.Equal(c.id, []byte{0x00}):
		return in, nil
	case bytes.Equal(c.id, []byte{0x03, 0x03, 0x01, 0x03}):
		if len(c.props) != 0 {
			return nil, errors.New("BCJ with a start offset is not supported")
		}
		return newBCJReader(in), nil
	case bytes.Equal(c.id, []byte{0x21}):
		if len(c.props) != 1 || c.props[0] > 40 {
			return nil, errors.New("bad LZMA2 properties")
		}
		return lzma.Reader2Config{DictCap: dict}.NewReader2(bufio.NewReader(in))
	case bytes.Equal(c.id, []byte{0x03, 0x01, 0x01}):
		if len(c.props) != 5 {
			return nil, errors.New("bad LZMA properties")
		}
		// A .lzma header (properties, dictionary, size) in front of the raw stream. The
		// dictionary never needs to exceed the output, so a huge claimed one is not allocated.
		hdr := make([]byte, 13)
		hdr[0] = c.props[0]
		binary.LittleEndian.PutUint32(hdr[1:], uint32(min(uint64(binary.LittleEndian.Uint32(c.props[1:])), uint64(dict))))
		binary.LittleEndian.PutUint64(hdr[5:], unpacked)
		return lzma.ReaderConfig{DictCap: dict}.NewReader(io.MultiReader(bytes.NewReader(hdr), bufio.NewReader(in)))
	case bytes.Equal(c.id, []byte{0x04, 0x01, 0x08}):
		return flate.NewReader(in), nil
	}
	return nil, fmt.Errorf("coder %x (a filter or encryption) is not supported", c.id)
}

// sevenZipError is why an archive's directory cannot be read.
type sevenZipError struct {
	err error // ErrMalformed, ErrTruncated, ErrUnsupported or ErrLimit
	msg string
}

// openSevenZip reads a 7z archive's directory: its streams and its files.
func openSevenZip(r io.ReaderAt, size int64) (*szStreams, []szFile, *sevenZipError) {
	fail := func(err error, format string, args ...any) (*szStreams, []szFile, *sevenZipError) {
		return nil, nil, &sevenZipError{err: err, msg: fmt.Sprintf(format, args...)}
	}
	var sig [32]byte
	if !readFull(r, sig[:], 0) {
		return fail(ErrTruncated, "7z signature header is truncated")
	}
	next, nextSize := le64(sig[12:20]), le64(sig[20:28])
	if next > uint64(size) || nextSize > maxSevenZipHeader || 32+next+nextSize > uint64(size) {
		return fail(ErrMalformed, "7z header (%d bytes at %d) is outside the file", nextSize, 32+next)
	}
	hdr := make([]byte, nextSize)
	if !readFull(r, hdr, int64(32+next)) {
		return fail(ErrTruncated, "7z header cannot be read")
	}
	hr := &szReader{b: hdr}
	id, err := hr.byte()
	if err != nil {
		return fail(ErrMalformed, "7z header is empty")
	}
	if id == szEncodedHeader {
		s, err := hr.streamsInfo()
		if err != nil || len(s.folders) != 1 || len(s.folders[0].substreams) != 1 {
			return fail(ErrMalformed, "7z encoded header cannot be parsed: %v", err)
		}
		fr, err := folderReader(r, size, s, s.folders[0])
		if err != nil {
			return fail(ErrUnsupported, "7z encoded header cannot be decoded (an encrypted header?): %v", err)
		}
		hsize := s.folders[0].substreams[0]
		if hsize > maxSevenZipHeader {
			return fail(ErrLimit, "7z header unpacks to %d bytes", hsize)
		}
		dec, err := io.ReadAll(io.LimitReader(fr, int64(hsize)))
		if err != nil {
			return fail(ErrMalformed, "7z encoded header cannot be decoded: %v", err)
		}
		hr = &szReader{b: dec}
		if id, err = hr.byte(); err != nil {
			return fail(ErrMalformed, "7z decoded header is empty")
		}
	}
	if id != szHeader {
		return fail(ErrMalformed, "7z header starts with property 0x%02x", id)
	}
	var streams *szStreams
	var files []szFile
	for {
		id, err := hr.byte()
		if err != nil {
			return fail(ErrMalformed, "7z header: %v", err)
		}
		if id == szEnd {
			return streams, files, nil
		}
		switch id {
		case szArchiveProperties:
			for {
				t, err := hr.byte()
				if err != nil || t == 0 {
					break
				}
				n, err := hr.number()
				if err == nil {
					_, err = hr.bytes(n)
				}
				if err != nil {
					return fail(ErrMalformed, "7z header: %v", err)
				}
			}
		case szAdditionalStreamsInfo:
			if _, err := hr.streamsInfo(); err != nil {
				return fail(ErrMalformed, "7z header: %v", err)
			}
		case szMainStreamsInfo:
			if streams, err = hr.streamsInfo(); err != nil {
				return fail(ErrMalformed, "7z header: %v", err)
			}
		case szFilesInfo:
			if files, err = hr.filesInfo(); err != nil {
				return fail(ErrMalformed, "7z header: %v", err)
			}
		default:
			return fail(ErrMalformed, "7z header: unexpected property 0x%02x", id)
		}
	}
}

// scanSevenZip scans a 7z archive's files by content.
func scanSevenZip(r io.ReaderAt, size int64, cfg *config, rep *Report, member string, depth int) {
	bad := func(err error, format string, args ...any) {
		rep.add(Finding{Verdict: Suspicious, Member: member, Offset: -1, Rule: "archive.7z", Message: fmt.Sprintf(format, args...), Err: err})
	}
	if depth >= cfg.maxDepth {
		bad(ErrLimit, "archive nested deeper than %d levels; not scanned", cfg.maxDepth)
		return
	}
	streams, files, serr := openSevenZip(r, size)
	if serr != nil {
		bad(serr.err, "%s", serr.msg)
		return
	}
	if streams == nil {
		return // no file has data
	}
	fi := 0
	nextFile := func() string {
		for fi < len(files) && !files[fi].hasData {
			fi++
		}
		name := fmt.Sprintf("#%d", fi)
		if fi < len(files) {
			name = files[fi].name
		}
		fi++
		return memberPath(member, name)
	}
	scanned := 0
	for _, f := range streams.folders {
		fr, err := folderReader(r, size, streams, f)
		if err != nil {
			bad(ErrUnsupported, "7z folder cannot be decoded, its files are not inspected: %v", err)
			for range f.substreams {
				nextFile()
			}
			continue
		}
		for _, n := range f.substreams {
			name := nextFile()
			if scanned++; scanned > cfg.maxMembers {
				bad(ErrLimit, "archive has more than %d files; the rest are not scanned", cfg.maxMembers)
				return
			}
			if n > math.MaxInt64 {
				bad(ErrMalformed, "file %s claims %d bytes", name, n)
				return
			}
			lr := &io.LimitedReader{R: fr, N: int64(n)}
			mf := scanStreamMember(bufio.NewReaderSize(lr, int(bufferSize(int64(n)))), int64(n), name, nil, cfg, rep, depth)
			rep.Members = append(rep.Members, Member{Name: name, Format: mf, Size: int64(n)})
			if _, err := io.Copy(io.Discard, lr); err != nil || lr.N != 0 {
				rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "archive.7z",
					Message: fmt.Sprintf("file cannot be fully decompressed: %v", err), Err: ErrMalformed})
				break
			}
		}
	}
}
