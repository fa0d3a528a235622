package scan

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"

	"github.com/bodgit/sevenzip"
	"github.com/stangelandcl/ppmd"
	"github.com/ulikunitz/xz/lzma"
)

// 7-Zip archives are not a model format, but they carried the nullifAI payloads
// (weight-formats.md §4, bypass 7): a pickle inside a 7z that scanners skipped. They are
// read with github.com/bodgit/sevenzip (maintained, fuzzed, every 7-Zip coder and filter:
// LZMA, LZMA2, Deflate, BCJ and the other branch filters, PPMd, ...), which streams a
// solid folder once for all its files. Encrypted (AES) archives and files are reported as
// uninspectable, never skipped. Every file is scanned by content, streamed, with the same
// bounds as any archive member: the member count, and the decompression limit wherever a
// member must be held whole. A panic in the decoder is caught and reported: hostile bytes
// must not take the scanner down.

// scanSevenZip scans a 7z archive's files by content.
func scanSevenZip(r io.ReaderAt, size int64, cfg *config, rep *Report, member string, depth int) {
	bad := func(err error, format string, args ...any) {
		rep.add(Finding{Verdict: Suspicious, Member: member, Offset: -1, Rule: "archive.7z", Message: fmt.Sprintf(format, args...), Err: err})
	}
	if depth >= cfg.maxDepth {
		bad(ErrLimit, "archive nested deeper than %d levels; not scanned", cfg.maxDepth)
		return
	}
	zr, err := openSevenZip(r, size)
	if err != nil {
		if sevenZipEncrypted(err) {
			bad(ErrUnsupported, "the 7z archive's header is encrypted: its files cannot be listed or inspected")
		} else {
			bad(ErrMalformed, "7z archive cannot be read: %v", err)
		}
		return
	}
	scanned := 0
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || f.UncompressedSize == 0 {
			continue
		}
		name := memberPath(member, f.Name)
		if scanned++; scanned > cfg.maxMembers {
			bad(ErrLimit, "archive has more than %d files; the rest are not scanned", cfg.maxMembers)
			return
		}
		if f.UncompressedSize > math.MaxInt64 {
			bad(ErrMalformed, "file %s claims %d bytes", name, f.UncompressedSize)
			return
		}
		n := int64(f.UncompressedSize)
		rc, err := openSevenZipFile(f)
		if err != nil {
			if sevenZipEncrypted(err) {
				rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "archive.7z",
					Message: "the file is encrypted (AES): it cannot be inspected", Err: ErrUnsupported})
			} else {
				rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "archive.7z",
					Message: fmt.Sprintf("the file cannot be decoded, so it is not inspected: %v", err), Err: ErrUnsupported})
			}
			rep.Members = append(rep.Members, Member{Name: name, Format: FormatUnknown, Size: n})
			continue
		}
		crc := crc32.NewIEEE()
		lr := &io.LimitedReader{R: io.TeeReader(rc, crc), N: n}
		mf := scanStreamMember(bufio.NewReaderSize(lr, int(bufferSize(n))), n, name, nil, cfg, rep, depth)
		rep.Members = append(rep.Members, Member{Name: name, Format: mf, Size: n})
		_, err = io.Copy(io.Discard, lr)
		rc.Close()
		switch {
		case sevenZipEncrypted(err):
			// Without the password the decoder reads noise; what was scanned proves nothing.
			rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "archive.7z",
				Message: "the file is encrypted (AES): it cannot be inspected", Err: ErrUnsupported})
		case err != nil || lr.N != 0:
			rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "archive.7z",
				Message: fmt.Sprintf("file cannot be fully decompressed (%d of %d bytes): %v", n-lr.N, n, err), Err: ErrMalformed})
		case crcMismatch(f, crc):
			rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "archive.7z",
				Message: fmt.Sprintf("file's CRC is %08x, the header says %08x: 7-Zip refuses it", crc.Sum32(), f.CRC32), Err: ErrMalformed})
		}
	}
}

func crcMismatch(f *sevenzip.File, crc hash.Hash32) bool {
	return f.CRC32 != 0 && crc.Sum32() != f.CRC32
}

func sevenZipEncrypted(err error) bool {
	var re *sevenzip.ReadError
	return errors.As(err, &re) && re.Encrypted
}

// errSevenZipPanic reports a decoder that panicked on the archive's bytes.
type errSevenZipPanic struct{ v any }

func (e errSevenZipPanic) Error() string {
	return fmt.Sprintf("the 7z decoder failed on these bytes (%v)", e.v)
}

func openSevenZip(r io.ReaderAt, size int64) (zr *sevenzip.Reader, err error) {
	defer func() {
		if v := recover(); v != nil {
			zr, err = nil, errSevenZipPanic{v}
		}
	}()
	return sevenzip.NewReader(r, size)
}

func openSevenZipFile(f *sevenzip.File) (rc io.ReadCloser, err error) {
	defer func() {
		if v := recover(); v != nil {
			rc, err = nil, errSevenZipPanic{v}
		}
	}()
	rc, err = f.Open()
	if err != nil {
		return nil, err
	}
	return panicSafeReader{rc}, nil
}

// panicSafeReader turns a decoder panic during Read into an error.
type panicSafeReader struct{ rc io.ReadCloser }

func (p panicSafeReader) Read(b []byte) (n int, err error) {
	defer func() {
		if v := recover(); v != nil {
			n, err = 0, errSevenZipPanic{v}
		}
	}()
	return p.rc.Read(b)
}

func (p panicSafeReader) Close() (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = errSevenZipPanic{v}
		}
	}()
	return p.rc.Close()
}

// The decoders whose memory the archive chooses are registered again with bounds, so a
// 7z header cannot make the scanner allocate gigabytes: an LZMA or LZMA2 dictionary never
// needs to exceed the folder's output, and is capped at 7-Zip's largest preset (-mx9, 64
// MiB; a larger one fails to decode and is reported); a PPMd model at 256 MiB.
const (
	maxSevenZipDict = 64 << 20
	maxSevenZipPPMd = 256 << 20
)

func init() {
	sevenzip.RegisterDecompressor([]byte{0x03, 0x01, 0x01}, boundedLZMA)
	sevenzip.RegisterDecompressor([]byte{0x21}, boundedLZMA2)
	sevenzip.RegisterDecompressor([]byte{0x03, 0x04, 0x01}, boundedPPMd)
}

func sevenZipDict(claimed, unpacked uint64) int {
	return int(max(min(claimed, unpacked, maxSevenZipDict), lzma.MinDictCap))
}

// readCloser reads from r and closes c.
type readCloser struct {
	io.Reader
	c io.Closer
}

func (rc readCloser) Close() error { return rc.c.Close() }

func boundedLZMA(props []byte, size uint64, in []io.ReadCloser) (io.ReadCloser, error) {
	if len(in) != 1 || len(props) != 5 {
		return nil, errors.New("lzma: needs one input and 5 property bytes")
	}
	dict := sevenZipDict(uint64(binary.LittleEndian.Uint32(props[1:])), size)
	// The .lzma header the decoder expects: properties, dictionary size, unpacked size.
	hdr := make([]byte, 13)
	hdr[0] = props[0]
	binary.LittleEndian.PutUint32(hdr[1:], uint32(dict))
	binary.LittleEndian.PutUint64(hdr[5:], size)
	r, err := lzma.ReaderConfig{DictCap: dict}.NewReader(io.MultiReader(bytes.NewReader(hdr), bufio.NewReader(in[0])))
	if err != nil {
		return nil, fmt.Errorf("lzma: %w", err)
	}
	return readCloser{r, in[0]}, nil
}

func boundedLZMA2(props []byte, size uint64, in []io.ReadCloser) (io.ReadCloser, error) {
	if len(in) != 1 || len(props) != 1 || props[0] > 40 {
		return nil, errors.New("lzma2: needs one input and a dictionary property up to 40")
	}
	claimed := uint64(2|props[0]&1) << (props[0]/2 + 11) // Lzma2Dec.c
	r, err := lzma.Reader2Config{DictCap: sevenZipDict(claimed, size)}.NewReader2(bufio.NewReader(in[0]))
	if err != nil {
		return nil, fmt.Errorf("lzma2: %w", err)
	}
	return readCloser{r, in[0]}, nil
}

func boundedPPMd(props []byte, size uint64, in []io.ReadCloser) (io.ReadCloser, error) {
	if len(in) != 1 || len(props) != 5 {
		return nil, errors.New("ppmd: needs one input and 5 property bytes")
	}
	mem := binary.LittleEndian.Uint32(props[1:])
	if mem > maxSevenZipPPMd || size > math.MaxInt {
		return nil, fmt.Errorf("ppmd: a model of %d bytes is over the %d-byte limit: %w", mem, maxSevenZipPPMd, ErrLimit)
	}
	r, err := ppmd.NewH7zReader(in[0], int(props[0]), int(mem), int(size))
	if err != nil {
		return nil, fmt.Errorf("ppmd: %w", err)
	}
	return readCloser{&r, in[0]}, nil
}
