package scan

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compressed streams are how models often ship (model.tar.gz, a gzipped pickle), and
// tarfile.open(mode="r:*"), gzip.open and the Hub's tooling unwrap them before anything is
// loaded. The scanner unwraps gzip, bzip2, xz and zstd streams the way Python's modules do
// (concatenated members and streams are read one after another) and scans what comes out by
// content. Decompressed bytes are capped (WithMaxDecompressed): a stream that inflates past
// the cap is a compression bomb, reported, and not read further.

// compressionOf names the compression whose magic starts head, or "".
func compressionOf(head []byte) string {
	switch {
	case len(head) >= 3 && head[0] == 0x1f && head[1] == 0x8b && head[2] == 8:
		return "gzip"
	case len(head) >= 10 && string(head[:3]) == "BZh" && head[3] >= '1' && head[3] <= '9' &&
		(string(head[4:10]) == "\x31\x41\x59\x26\x53\x59" || string(head[4:10]) == "\x17\x72\x45\x38\x50\x90"):
		// "BZh", the block size, then a block's or the end of stream's magic.
		return "bzip2"
	case len(head) >= 6 && string(head[:6]) == "\xfd7zXZ\x00":
		return "xz"
	case len(head) >= 4 && (string(head[:4]) == "\x28\xb5\x2f\xfd" || head[0]&0xf0 == 0x50 && string(head[1:4]) == "\x2a\x4d\x18"):
		// A zstd frame, or a skippable frame (0x184D2A50 to 0x184D2A5F), which decoders pass over.
		return "zstd"
	}
	return ""
}

// zstdMaxWindow bounds the window a zstd frame may ask for, which the decoder allocates:
// zstd's own command line refuses windows above 128 MiB unless told otherwise.
const zstdMaxWindow = 128 << 20

func decompressor(kind string, r io.Reader) (io.Reader, func(), error) {
	switch kind {
	case "gzip":
		zr, err := gzip.NewReader(r) // multistream, like Python's gzip module
		if err != nil {
			return nil, nil, err
		}
		return zr, func() { zr.Close() }, nil
	case "bzip2":
		return bzip2.NewReader(r), func() {}, nil // reads concatenated streams, like Python's bz2
	case "xz":
		return newXZReader(r, xzMaxDict), func() {}, nil // every stream, with padding, like Python's lzma
	case "zstd":
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	}
	return nil, nil, fmt.Errorf("unknown compression %q", kind)
}

// scanCompressed unwraps a compressed stream and scans its content as the member
// "<member>![gzip]" (or bzip2, xz, zstd).
func scanCompressed(r io.Reader, kind string, cfg *config, rep *Report, member string, depth int) {
	name := memberPath(member, "["+kind+"]")
	if depth >= cfg.maxDepth {
		rep.add(Finding{Verdict: Suspicious, Member: member, Offset: 0, Rule: "limit.depth",
			Message: fmt.Sprintf("compressed stream nested deeper than %d levels; not unwrapped", cfg.maxDepth), Err: ErrLimit})
		return
	}
	dec, closeDec, err := decompressor(kind, r)
	if err != nil {
		rep.add(Finding{Verdict: Suspicious, Member: member, Offset: 0, Rule: "compress.corrupt",
			Message: fmt.Sprintf("%s stream cannot be opened: %v", kind, err), Err: ErrMalformed})
		return
	}
	defer closeDec()
	capped := &cappedReader{r: dec, left: cfg.decompressBudget()}
	br := bufio.NewReaderSize(capped, 64<<10)
	format := scanStreamMember(br, -1, name, nil, cfg, rep, depth)
	// Read to the end, so a corrupt or oversized tail is reported even when the content's
	// scan stopped early.
	_, err = io.Copy(io.Discard, br)
	cfg.spend(capped.n)
	switch {
	case capped.exceeded:
		rep.add(Finding{Verdict: Suspicious, Member: name, Offset: -1, Rule: "compress.bomb",
			Message: fmt.Sprintf("the %s stream decompresses past the scan's limit of %d decompressed bytes; a compression bomb, or content too large to vouch for", kind, cfg.maxDecompressed), Err: ErrLimit})
	case errors.Is(err, errXZDictionary), errors.Is(err, zstd.ErrWindowSizeExceeded):
		rep.add(Finding{Verdict: Suspicious, Member: name, Offset: capped.n, Rule: "compress.limit",
			Message: fmt.Sprintf("%v; the content past this point was not inspected", err), Err: ErrLimit})
	case err != nil:
		rep.add(Finding{Verdict: Suspicious, Member: name, Offset: capped.n, Rule: "compress.corrupt",
			Message: fmt.Sprintf("%s stream is corrupt after %d decompressed bytes: %v", kind, capped.n, err), Err: ErrMalformed})
	}
	rep.Members = append(rep.Members, Member{Name: name, Format: format, Size: capped.n})
}

// decompressBudget is how many decompressed bytes the scan may still produce: the limit
// holds for the whole file, so a thousand members that each stay under it are no way around it.
func (c *config) decompressBudget() int64 { return max(0, c.maxDecompressed-c.decompressed) }

func (c *config) spend(n int64) { c.decompressed += n }

// errDecompressedLimit ends a read past the decompression cap.
var errDecompressedLimit = errors.New("decompressed size limit reached")

// cappedReader stops after left bytes and remembers whether the stream had more.
type cappedReader struct {
	r        io.Reader
	left     int64
	n        int64
	exceeded bool
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var one [1]byte
		if n, _ := io.ReadFull(c.r, one[:]); n > 0 {
			c.exceeded = true
			return 0, errDecompressedLimit
		}
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.left -= int64(n)
	return n, err
}

// materialize gives random access to a stream's content, for formats that need it (a zip or
// safetensors file inside a compressed stream or a deflated zip member): in memory up to
// maxBufferedMember, in a temporary file beyond. It reads at most limit bytes; more is an
// ErrLimit error.
func materialize(r io.Reader, limit int64) (io.ReaderAt, int64, func(), error) {
	buf, err := io.ReadAll(io.LimitReader(r, min(limit, maxBufferedMember)+1))
	if err != nil {
		return nil, 0, nil, err
	}
	if int64(len(buf)) <= min(limit, maxBufferedMember) {
		return bytes.NewReader(buf), int64(len(buf)), func() {}, nil
	}
	if int64(len(buf)) > limit {
		return nil, 0, nil, fmt.Errorf("%w: more than %d bytes", ErrLimit, limit)
	}
	f, err := os.CreateTemp("", "modelverify-scan-*")
	if err != nil {
		return nil, 0, nil, err
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	n, err := io.Copy(f, io.MultiReader(bytes.NewReader(buf), io.LimitReader(r, limit-int64(len(buf))+1)))
	if err == nil && n > limit {
		err = fmt.Errorf("%w: more than %d bytes", ErrLimit, limit)
	}
	if err != nil {
		cleanup()
		return nil, 0, nil, err
	}
	return f, n, cleanup, nil
}
