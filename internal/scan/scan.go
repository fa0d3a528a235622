package scan

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// ScanFile scans the file at path. The error is for I/O failures only: a malformed file is a
// Report whose Verdict is not Safe. A safetensors index is also checked against the shards
// beside it.
func ScanFile(ctx context.Context, path string, opts ...Option) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("scan: %s is not a regular file", path)
	}
	opts = append([]Option{WithName(filepath.Base(path))}, opts...)
	rep, err := Scan(ctx, f, fi.Size(), opts...)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", path, err)
	}
	if rep.Format == FormatSafetensorsIndex {
		if err := checkIndexShards(ctx, filepath.Dir(path), f, fi.Size(), rep, newConfig(opts)); err != nil {
			return nil, fmt.Errorf("scan %s: %w", path, err)
		}
	}
	if cfg := newConfig(opts); !cfg.alone {
		if err := checkONNXExternal(ctx, filepath.Dir(path), rep); err != nil {
			return nil, fmt.Errorf("scan %s: %w", path, err)
		}
	}
	return rep, nil
}

// smallFile is the size up to which Scan reads a file whole, once, before looking at it.
const smallFile = 64 << 10

// Scan scans size bytes read from r. Only the parts of r that the format needs are read: a
// safetensors file's header, a GGUF header, the pickles of a checkpoint (in one pass).
func Scan(ctx context.Context, r io.ReaderAt, size int64, opts ...Option) (*Report, error) {
	cfg := newConfig(opts)
	if size > 0 && size <= smallFile {
		// A small file is read once into memory: configs and tokenizers are most of a model's
		// files, and the probes for each format would otherwise read them again and again.
		buf := make([]byte, size)
		if n, err := r.ReadAt(buf, 0); int64(n) == size && (err == nil || err == io.EOF) {
			r = bytes.NewReader(buf)
		}
	}
	cr := &countingReaderAt{ctx: ctx, r: r, size: size, progress: cfg.progress}
	rep := &Report{Size: size}
	scanAt(cr, size, cfg, rep, "", 0)
	rep.BytesRead = cr.read()
	if err := cr.failure(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return rep, nil
}

// countingReaderAt counts the bytes read, reports progress, stops on context cancellation,
// and remembers the first real I/O error so Scan returns it instead of a verdict.
type countingReaderAt struct {
	ctx      context.Context
	r        io.ReaderAt
	size     int64
	progress func(Progress)

	mu    sync.Mutex
	n     int64
	err   error
	where string
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		c.setErr(err)
		return 0, err
	}
	n, err := c.r.ReadAt(p, off)
	c.mu.Lock()
	c.n += int64(n)
	total := c.n
	c.mu.Unlock()
	if err != nil && !errors.Is(err, io.EOF) {
		c.setErr(err)
	}
	if c.progress != nil {
		c.progress(Progress{BytesRead: total, Size: c.size})
	}
	return n, err
}

func (c *countingReaderAt) setErr(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

func (c *countingReaderAt) read() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *countingReaderAt) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

var (
	magicZip       = []byte("PK\x03\x04")
	magicZipEmpty  = []byte("PK\x05\x06")
	magicNumPy     = []byte("\x93NUMPY")
	magicGGUF      = []byte("GGUF")
	magic7z        = []byte("7z\xbc\xaf\x27\x1c")
	magicTorchPick = []byte("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19") // PROTO 2, LONG1 0x1950a86a20f9469cfc6c
)

// sniff decides the format from the first bytes. A protocol 0 or 1 pickle has no magic: it
// comes back as unknown here and scanAt probes it (see probePickle).
func sniff(head []byte) Format {
	switch {
	case bytes.HasPrefix(head, magicZip), bytes.HasPrefix(head, magicZipEmpty):
		return FormatZip
	case bytes.HasPrefix(head, magicNumPy):
		return FormatNumPy
	case bytes.HasPrefix(head, magicGGUF):
		return FormatGGUF
	case bytes.HasPrefix(head, magic7z):
		return Format7z
	case len(head) >= 262 && string(head[257:262]) == "ustar", isTarHeader(head):
		// Before the legacy magic: torch.load tries tarfile before unpickling, and the
		// polyglot probe still reads a tar's first bytes as a pickle.
		return FormatTar
	case bytes.HasPrefix(head, magicTorchPick):
		return FormatPyTorchLegacy
	case compressionOf(head) != "":
		return FormatCompressed
	case looksLikeSafetensors(head):
		return FormatSafetensors
	case nativeKind(head, nil, int64(len(head))) != "" || len(head) >= 0x40 && head[0] == 'M' && head[1] == 'Z':
		// After safetensors: a header length whose low bytes read "MZ" is not a DOS stub.
		return FormatNativeCode // confirmed (a PE's signature may lie past head) or demoted by scanAt
	case len(head) >= 2 && head[0] == opProto && head[1] <= 5:
		return FormatPickle
	case looksLikeONNX(head):
		return FormatONNX
	case looksLikeSavedModel(head):
		return FormatSavedModel
	case looksLikeTFLite(head):
		return FormatTFLite
	case bytes.HasPrefix(head, magicHDF5):
		return FormatHDF5
	case looksLikeJSONObject(head):
		return FormatSafetensorsIndex // confirmed or demoted to unknown by scanJSON
	}
	return FormatUnknown
}

func looksLikeSafetensors(head []byte) bool {
	if len(head) < 10 {
		return false
	}
	rest := head[8:]
	for len(rest) > 0 && isJSONSpace(rest[0]) {
		rest = rest[1:]
	}
	return len(rest) > 0 && rest[0] == '{'
}

func isJSONSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

func looksLikeJSONObject(head []byte) bool {
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	for len(head) > 0 && isJSONSpace(head[0]) {
		head = head[1:]
	}
	return len(head) > 0 && head[0] == '{'
}

// hintFormat maps a file name's extension to the format it claims, for files whose content
// matches none: such a file is validated as the claimed format so it is reported, not waved
// through as unknown.
func hintFormat(name string) Format {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".safetensors":
		return FormatSafetensors
	case ".gguf":
		return FormatGGUF
	case ".npy":
		return FormatNumPy
	case ".onnx":
		return FormatONNX
	case ".h5", ".hdf5":
		return FormatHDF5
	case ".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle", ".joblib", ".npz", ".zip":
		return FormatPickle
	}
	return FormatUnknown
}

// scanAt scans a random-access file or archive member and fills rep.
func scanAt(r io.ReaderAt, size int64, cfg *config, rep *Report, member string, depth int) Format {
	head := make([]byte, min(size, 512))
	n, _ := r.ReadAt(head, 0)
	head = head[:n]
	format := sniff(head)
	var js *jsonFacts
	switch format {
	case FormatZip:
		format = scanZip(r, size, cfg, rep, member, depth)
	case FormatNumPy:
		scanNumPy(sectionReader(r, size), size, cfg, rep, member, depth)
	case FormatGGUF:
		scanGGUF(r, size, rep, member)
	case Format7z:
		scanSevenZip(r, size, cfg, rep, member, depth)
	case FormatPyTorchLegacy:
		scanLegacy(r, size, cfg, rep, member, depth)
	case FormatTar:
		format = scanTar(io.NewSectionReader(r, 0, size), cfg, rep, member, depth)
	case FormatCompressed:
		scanCompressed(sectionReader(r, size), compressionOf(head), cfg, rep, member, depth)
	case FormatNativeCode:
		if kind := nativeKind(head, r, size); kind != "" {
			scanNative(kind, rep, member)
		} else {
			format = FormatUnknown
		}
	case FormatSafetensors:
		scanSafetensors(r, size, rep, member)
	case FormatPickle:
		scanPickleStream(io.NewSectionReader(r, 0, size), cfg, rep, member, depth)
	case FormatSafetensorsIndex:
		// One look at a small file's bytes serves the index, Keras and JSON probes.
		js = jsonFactsOf(r, size)
		if format = scanJSON(r, size, cfg, rep, member, js); format == FormatUnknown {
			format = scanKerasJSON(r, size, rep, member, js)
		}
	case FormatONNX:
		scanONNX(r, size, rep, member)
	case FormatHDF5:
		format = scanHDF5(r, size, rep, member)
	case FormatSavedModel:
		scanSavedModel(r, size, rep, member)
	case FormatTFLite:
		scanTFLite(r, size, rep, member)
	}
	if format == FormatUnknown {
		if len(head) > 0 && isOpcode(head[0]) {
			// An unpickler stops at a first byte that is no opcode, having imported nothing,
			// and so would the probe (configs and tokenizers start with '{' or '['): only
			// content that starts with an opcode is probed.
			format = probeUnknown(io.NewSectionReader(r, 0, size), cfg, rep, member, depth)
		}
		if format == FormatUnknown && endsLikeZip(r, size) {
			// Python's zipfile finds an archive by its end record, whatever comes first (a
			// self-extracting stub, a script): read it the way every reader would.
			format = scanZip(r, size, cfg, rep, member, depth)
		}
		if format == FormatUnknown && member == "" && size > 0 {
			format = scanHinted(r, size, cfg, rep)
		}
		if format == FormatUnknown {
			format = nameContent(r, size, cfg, rep, member, js)
		}
	} else if format != FormatPickle && format != FormatPyTorchLegacy && format != FormatZip &&
		format != FormatPyTorchZip && format != FormatNumPyZip && format != FormatSafetensorsIndex &&
		format != FormatTorchScript {
		// torch.load unpickles any file that is not a zip: make sure no other format's bytes
		// also parse as a pickle that imports something (a polyglot).
		probePolyglot(io.NewSectionReader(r, 0, polyglotWindow(format, head, size)), cfg, rep, member, depth, format)
	}
	if member == "" {
		rep.Format = format
	}
	return format
}

// scanPickleStream scans a stream of one or more stacked pickles.
func scanPickleStream(r io.Reader, cfg *config, rep *Report, member string, depth int) pickleStream {
	ps := newPickleScanner(cfg, rep, member, r, 0, depth)
	return ps.scanAll()
}

// probeUnknown reports content without magic as a pickle when probeAsPickle says it is one.
func probeUnknown(r io.Reader, cfg *config, rep *Report, member string, depth int) Format {
	probe, ok := probeAsPickle(r, cfg, member, depth)
	if !ok {
		return FormatUnknown
	}
	mergeReport(rep, probe)
	return FormatPickle
}

// polyglotWindow bounds how much of a non-pickle file the polyglot probe may read: a
// safetensors file's header, or the first MiB of anything else. Reading a file's bulk data
// as a pickle would cost a full pass for no gain: the probe stops at the first opcode an
// unpickler would reject, which in real data comes within a few bytes.
func polyglotWindow(format Format, head []byte, size int64) int64 {
	limit := min(size, 1<<20)
	if format == FormatSafetensors && len(head) >= 8 {
		if n := le64(head[:8]); n < uint64(limit) {
			limit = min(limit, 8+int64(n))
		}
	}
	return limit
}

// probePolyglot reports pickle imports hidden at the start of a file of another format.
func probePolyglot(r io.Reader, cfg *config, rep *Report, member string, depth int, format Format) {
	probe := &Report{}
	ps := newPickleScanner(cfg, probe, member, bufio.NewReaderSize(r, 4096), 0, depth)
	ps.label = fmt.Sprintf("the %s file also parses as a pickle: ", format)
	ps.scanAll()
	if ps.plausible == 0 {
		return
	}
	for _, f := range probe.Findings {
		if f.Global != "" {
			if f.Verdict < Suspicious {
				f.Verdict = Suspicious
			}
			rep.add(f)
		}
	}
	for _, g := range probe.Globals {
		rep.addGlobal(g)
	}
	rep.add(Finding{Verdict: Suspicious, Member: member, Offset: 0, Rule: "polyglot.pickle",
		Message: fmt.Sprintf("the %s file is also a pickle that imports something: torch.load would unpickle it", format), Err: ErrMalformed})
}

func mergeReport(dst, src *Report) {
	for _, f := range src.Findings {
		dst.add(f)
	}
	if src.Verdict > dst.Verdict {
		dst.Verdict = src.Verdict
	}
	for _, g := range src.Globals {
		dst.addGlobal(g)
	}
	dst.Members = append(dst.Members, src.Members...)
}

// scanHinted handles a top-level file whose content matches no format although its name
// claims a weight format.
func scanHinted(r io.ReaderAt, size int64, cfg *config, rep *Report) Format {
	hint := hintFormat(cfg.name)
	switch hint {
	case FormatUnknown, FormatPickle:
		// Content that is not a pickle (probeUnknown said so) cannot run code in
		// torch.load or pickle.load: they fail first. It stays unknown, like a PNG.
		return FormatUnknown
	case FormatSafetensors:
		scanSafetensors(r, size, rep, "")
	case FormatGGUF:
		scanGGUF(r, size, rep, "")
	case FormatNumPy:
		scanNumPy(sectionReader(r, size), size, cfg, rep, "", 0)
	case FormatONNX:
		scanONNX(r, size, rep, "")
	case FormatHDF5:
		scanHDF5(r, size, rep, "")
	}
	rep.add(Finding{Verdict: Suspicious, Offset: 0, Rule: "format.mismatch",
		Message: fmt.Sprintf("the name %q claims a %s file, but the content is not one", cfg.name, hint), Err: ErrMalformed})
	return FormatUnknown
}

// bufferSize is the read buffer for size bytes: 64 KiB blocks for large files, less for the
// small members most archives hold.
func bufferSize(size int64) int64 { return max(16, min(size+1, 64<<10)) }

// sectionReader buffers size bytes of r from offset 0.
func sectionReader(r io.ReaderAt, size int64) *bufio.Reader {
	return bufio.NewReaderSize(io.NewSectionReader(r, 0, size), int(bufferSize(size)))
}

// readFull reads len(p) bytes at off, reporting whether they were all there.
func readFull(r io.ReaderAt, p []byte, off int64) bool {
	n, err := r.ReadAt(p, off)
	return n == len(p) && (err == nil || errors.Is(err, io.EOF))
}

func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
