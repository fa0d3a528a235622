package registry

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Whiteout markers of the OCI image layer spec.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// maxZstdWindow bounds the memory a zstd layer may ask the decoder for.
const maxZstdWindow = 128 << 20

// budget is what all the layers of one Pull may write together while they stream in parallel.
type budget struct {
	limits Limits
	mu     sync.Mutex
	files  int
	bytes  int64
}

func newBudget(l Limits) *budget { return &budget{limits: l} }

// take reserves one file of size, or says which limit it would break.
func (b *budget) take(size int64) (string, bool) {
	if size > b.limits.MaxFileSize {
		return fmt.Sprintf("%d bytes, more than the %d bytes allowed for one file", size, b.limits.MaxFileSize), false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.files+1 > b.limits.MaxFiles {
		return fmt.Sprintf("more than the %d files allowed", b.limits.MaxFiles), false
	}
	if b.bytes+size > b.limits.MaxTotalSize {
		return fmt.Sprintf("the model would hold more than the %d bytes allowed", b.limits.MaxTotalSize), false
	}
	b.files++
	b.bytes += size
	return "", true
}

// opKind is what one staged entry does when its layer is applied.
type opKind int

const (
	opFile   opKind = iota + 1 // a regular file, staged in the layer's scratch directory
	opRemove                   // a whiteout: remove a path from lower layers
	opDir                      // a directory: replaces a lower layer's file of that name
	opLink                     // a hard or symbolic link: a copy of its target, once applied
)

type op struct {
	kind   opKind
	entry  string // the name in the layer, for errors
	path   string // the path in the model ("" with opRemove: the whole model)
	staged string // opFile: the scratch file
	size   int64
	file   File
	target string // opLink: the model path it points to
}

// stagedLayer is a layer read whole and checked against its digest, its files in scratch.
type stagedLayer struct{ ops []op }

func refuse(l Layer, entry, reason string, err error) error {
	return &EntryError{Layer: l.Descriptor.Digest.String(), Entry: entry, Reason: reason, Err: err}
}

// sourceReader remembers the first error other than io.EOF that the layer's bytes came with.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// or returns the source's error if it had one, else decodeErr.
func (s *sourceReader) or(decodeErr error) error {
	if s.err != nil {
		return s.err
	}
	return decodeErr
}

// stageRaw writes a raw layer (one file) to scratch. r returns io.EOF only once the layer's
// digest matched, so the file's digest is the layer's.
func stageRaw(r io.Reader, l Layer, scratch string, b *budget) (*stagedLayer, error) {
	if reason, ok := b.take(l.Descriptor.Size); !ok {
		return nil, refuse(l, l.Path, reason, ErrLimitExceeded)
	}
	dst := filepath.Join(scratch, "raw")
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	_, err = io.CopyBuffer(f, r, make([]byte, copyBufferSize))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return &stagedLayer{ops: []op{{kind: opFile, entry: l.Path, path: l.Path, staged: dst, size: l.Descriptor.Size,
		file: File{Path: l.Path, Size: l.Descriptor.Size, Digest: l.Descriptor.Digest}}}}, nil
}

// modelPath maps a cleaned entry name to its path in the model: for a modelcar, entries under
// models/ with the prefix stripped; for the artefact formats, the name itself. ok is false for
// modelcar entries outside the model.
func modelPath(f Format, name string) (string, bool) {
	if f != FormatModelcar {
		return name, true
	}
	rel, ok := strings.CutPrefix(name, ModelcarPrefix)
	return rel, ok && rel != ""
}

// stageTar extracts a tar layer (decompressing it) into scratch as it streams, checking every
// entry, and records what applying it will do.
func stageTar(ctx context.Context, r io.Reader, l Layer, f Format, scratch string, b *budget) (*stagedLayer, error) {
	// A decoder that fails may have failed because the bytes stopped coming (the retry budget
	// spent, a context ended) or did not match their digest: then that is the error, not a
	// malformed archive, so that an outage is told from a hostile layer.
	src := &sourceReader{r: r}
	r = src
	switch l.compression {
	case compressGzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, src.or(refuse(l, "", "not gzip: "+err.Error(), ErrUnsafeArchive))
		}
		defer zr.Close()
		r = zr
	case compressZstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderMaxMemory(maxZstdWindow), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	seen := map[string]bool{}
	st := &stagedLayer{}
	buf := make([]byte, copyBufferSize)
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return nil, context.Cause(ctx)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return st, nil
		}
		if err != nil {
			return nil, src.or(refuse(l, "", "not a tar stream: "+err.Error(), ErrUnsafeArchive))
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		if name == "." || name == "" {
			continue // the layer's root directory
		}
		clean, err := cleanModelPath(name)
		if err != nil {
			return nil, refuse(l, hdr.Name, err.Error(), ErrUnsafeArchive)
		}
		if seen[clean] {
			return nil, refuse(l, hdr.Name, "the name is in the layer twice", ErrUnsafeArchive)
		}
		seen[clean] = true
		if f == FormatModelcar {
			base, dir := path.Base(clean), path.Dir(clean)
			if base == whiteoutOpaque {
				if rel, ok := modelPath(f, dir); ok {
					st.ops = append(st.ops, op{kind: opRemove, entry: hdr.Name, path: rel})
				} else if dir == "models" {
					st.ops = append(st.ops, op{kind: opRemove, entry: hdr.Name})
				}
				continue
			}
			if hidden, ok := strings.CutPrefix(base, whiteoutPrefix); ok {
				target := path.Join(dir, hidden)
				if target == "models" {
					st.ops = append(st.ops, op{kind: opRemove, entry: hdr.Name})
				} else if rel, ok := modelPath(f, target); ok {
					st.ops = append(st.ops, op{kind: opRemove, entry: hdr.Name, path: rel})
				}
				continue
			}
		}
		rel, inModel := modelPath(f, clean)
		if !inModel {
			continue // the rest of a modelcar image's file system
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			st.ops = append(st.ops, op{kind: opDir, entry: hdr.Name, path: rel})
		case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old writers still emit TypeRegA
			o, err := stageFile(l, hdr, rel, tr, filepath.Join(scratch, strconv.Itoa(n)), b, buf)
			if err != nil {
				return nil, src.or(err)
			}
			st.ops = append(st.ops, o)
		case tar.TypeSymlink, tar.TypeLink:
			target, err := linkTarget(f, hdr, clean)
			if err != nil {
				return nil, refuse(l, hdr.Name, err.Error(), ErrUnsafeArchive)
			}
			st.ops = append(st.ops, op{kind: opLink, entry: hdr.Name, path: rel, target: target})
		default:
			return nil, refuse(l, hdr.Name, fmt.Sprintf("entry type %q (a device, FIFO or other special file) cannot be part of a model", string(hdr.Typeflag)), ErrUnsafeArchive)
		}
	}
}

// stageFile writes one regular entry to dst, hashing it as it goes.
func stageFile(l Layer, hdr *tar.Header, rel string, r io.Reader, dst string, b *budget, buf []byte) (op, error) {
	if hdr.Size < 0 {
		return op{}, refuse(l, hdr.Name, "negative size", ErrUnsafeArchive)
	}
	if reason, ok := b.take(hdr.Size); !ok {
		return op{}, refuse(l, hdr.Name, reason, ErrLimitExceeded)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return op{}, err
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(out, h), io.LimitReader(r, hdr.Size), buf)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return op{}, refuse(l, hdr.Name, "reading the entry: "+err.Error(), ErrUnsafeArchive)
	}
	if n != hdr.Size {
		return op{}, refuse(l, hdr.Name, fmt.Sprintf("the entry ends after %d of its %d bytes", n, hdr.Size), ErrUnsafeArchive)
	}
	return op{kind: opFile, entry: hdr.Name, path: rel, staged: dst, size: n, file: File{Path: rel, Size: n, Digest: hashFromSum(h.Sum(nil))}}, nil
}

// linkTarget resolves a link entry's target to a path in the model, or says why it leaves it.
func linkTarget(f Format, hdr *tar.Header, clean string) (string, error) {
	t := hdr.Linkname
	var full string
	switch {
	case hdr.Typeflag == tar.TypeLink: // hard links name their target from the layer's root
		full = path.Clean(strings.TrimPrefix(t, "/"))
	case strings.HasPrefix(t, "/"):
		if f != FormatModelcar {
			return "", fmt.Errorf("symbolic link to the absolute path %q leaves the model", t)
		}
		full = path.Clean(strings.TrimPrefix(t, "/")) // absolute in the image's own file system
	default:
		full = path.Join(path.Dir(clean), t)
	}
	if full == ".." || strings.HasPrefix(full, "../") {
		return "", fmt.Errorf("link to %q leaves the model", t)
	}
	rel, ok := modelPath(f, full)
	if !ok {
		return "", fmt.Errorf("link to %q leaves the model directory", t)
	}
	return rel, nil
}

// extractor applies staged layers, in order, to the staging directory.
type extractor struct {
	dir    string
	limits Limits
	format Format
	files  map[string]File
	owner  map[string]int // which layer wrote each file
	dirs   map[string]int // how many files each directory holds, at any depth
	total  int64
}

func newExtractor(dir string, limits Limits, f Format) *extractor {
	return &extractor{dir: dir, limits: limits, format: f, files: map[string]File{}, owner: map[string]int{}, dirs: map[string]int{}}
}

// countDirs adds delta to the file count of every directory above p.
func (x *extractor) countDirs(p string, delta int) {
	for q := path.Dir(p); q != "."; q = path.Dir(q) {
		if x.dirs[q] += delta; x.dirs[q] == 0 {
			delete(x.dirs, q)
		}
	}
}

// merge applies staged layer i: whiteouts remove what lower layers wrote, files are renamed
// into place, links become copies of their targets.
func (x *extractor) merge(i int, l Layer, st *stagedLayer) error {
	var links []op
	for _, o := range st.ops {
		switch o.kind {
		case opRemove:
			x.remove(i, o.path)
		case opDir:
			if _, ok := x.files[o.path]; ok && x.format == FormatModelcar {
				x.remove(i, o.path)
			}
		case opFile:
			if err := x.admit(l, o.entry, o.path, o.size); err != nil {
				return err
			}
			dst, err := x.prepare(l, o.entry, o.path)
			if err != nil {
				return err
			}
			if err := os.Rename(o.staged, dst); err != nil {
				return err
			}
			x.add(i, o.file)
		case opLink:
			links = append(links, o)
		}
	}
	for _, o := range links {
		if err := x.materialise(i, l, o); err != nil {
			return err
		}
	}
	return nil
}

// admit checks that a file of size may be added at p within the limits, and that p is new
// where the format does not layer (ModelPack and ModelKit layers each add their own files).
func (x *extractor) admit(l Layer, entry, p string, size int64) error {
	old, exists := x.files[p]
	if exists && x.format != FormatModelcar {
		return refuse(l, entry, "the file is in an earlier layer too", ErrUnsafeArchive)
	}
	if size > x.limits.MaxFileSize {
		return refuse(l, entry, fmt.Sprintf("%d bytes, more than the %d bytes allowed for one file", size, x.limits.MaxFileSize), ErrLimitExceeded)
	}
	if !exists && len(x.files)+1 > x.limits.MaxFiles {
		return refuse(l, entry, fmt.Sprintf("more than the %d files allowed", x.limits.MaxFiles), ErrLimitExceeded)
	}
	if x.total-old.Size+size > x.limits.MaxTotalSize {
		return refuse(l, entry, fmt.Sprintf("the model would hold more than the %d bytes allowed", x.limits.MaxTotalSize), ErrLimitExceeded)
	}
	return nil
}

func (x *extractor) add(i int, f File) {
	old, exists := x.files[f.Path]
	if !exists {
		x.countDirs(f.Path, 1)
	}
	x.total += f.Size - old.Size
	x.files[f.Path] = f
	x.owner[f.Path] = i
}

// prepare makes room for a file at p: its parent directories, and no earlier file there.
func (x *extractor) prepare(l Layer, entry, p string) (string, error) {
	// A file cannot sit where an earlier file is a parent directory, or the reverse; layers that
	// do this are not a model anyone built on purpose.
	for q := path.Dir(p); q != "."; q = path.Dir(q) {
		if _, ok := x.files[q]; ok {
			return "", refuse(l, entry, fmt.Sprintf("its parent %q is a file", q), ErrUnsafeArchive)
		}
	}
	if n := x.dirs[p]; n > 0 {
		return "", refuse(l, entry, fmt.Sprintf("it is a directory holding %d files", n), ErrUnsafeArchive)
	}
	dst := filepath.Join(x.dir, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	return dst, nil
}

// remove deletes files written by layers before i at p, or under p ("" is the whole model).
func (x *extractor) remove(i int, p string) {
	for f := range x.files {
		if (p == "" || f == p || strings.HasPrefix(f, p+"/")) && x.owner[f] < i {
			_ = os.Remove(filepath.Join(x.dir, filepath.FromSlash(f)))
			x.total -= x.files[f].Size
			x.countDirs(f, -1)
			delete(x.files, f)
			delete(x.owner, f)
		}
	}
}

// materialise copies a link's target file to the link's path, so the model holds regular files
// only and nothing on disk can point elsewhere.
func (x *extractor) materialise(i int, l Layer, o op) error {
	src, ok := x.files[o.target]
	if !ok {
		return refuse(l, o.entry, fmt.Sprintf("link to %q, which is not a file of the model", o.target), ErrUnsafeArchive)
	}
	if err := x.admit(l, o.entry, o.path, src.Size); err != nil {
		return err
	}
	dst, err := x.prepare(l, o.entry, o.path)
	if err != nil {
		return err
	}
	in, err := os.Open(filepath.Join(x.dir, filepath.FromSlash(o.target)))
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	n, err := io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if n != src.Size {
		return fmt.Errorf("registry: copying %s to %s: %d of %d bytes", o.target, o.path, n, src.Size)
	}
	x.add(i, File{Path: o.path, Size: src.Size, Digest: src.Digest})
	return nil
}
