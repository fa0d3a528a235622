package registry

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

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

// extractor applies layers, in order, to a staging directory and keeps the list of files.
type extractor struct {
	dir    string
	limits Limits
	format Format
	files  map[string]File
	owner  map[string]int // which layer wrote each file
	total  int64
}

func newExtractor(dir string, limits Limits, f Format) *extractor {
	return &extractor{dir: dir, limits: limits, format: f, files: map[string]File{}, owner: map[string]int{}}
}

// finish returns the files, sorted.
func (x *extractor) finish() ([]File, error) {
	return sortedFiles(x.files), nil
}

// apply writes layer i, whose verified blob is at blob, into the staging directory.
func (x *extractor) apply(ctx context.Context, i int, l Layer, blob string) error {
	if l.kind == layerRaw {
		return x.applyRaw(i, l, blob)
	}
	f, err := os.Open(blob)
	if err != nil {
		return err
	}
	defer f.Close()
	return x.applyTar(ctx, i, l, bufio.NewReaderSize(f, 1<<20))
}

func (x *extractor) refuse(l Layer, entry, reason string, err error) error {
	return &EntryError{Layer: l.Descriptor.Digest.String(), Entry: entry, Reason: reason, Err: err}
}

// applyRaw makes a raw layer's blob the file its annotation names: the blob's digest is the
// file's digest, so it is renamed, not copied or hashed again.
func (x *extractor) applyRaw(i int, l Layer, blob string) error {
	if err := x.admit(l, l.Path, l.Path, l.Descriptor.Size); err != nil {
		return err
	}
	dst, err := x.prepare(l, l.Path)
	if err != nil {
		return err
	}
	if err := os.Rename(blob, dst); err != nil {
		return err
	}
	x.add(i, File{Path: l.Path, Size: l.Descriptor.Size, Digest: l.Descriptor.Digest})
	return nil
}

// admit checks that a file of size may be added at p within the limits, and that p is new
// where the format does not layer (ModelPack and ModelKit layers each add their own files).
func (x *extractor) admit(l Layer, entry, p string, size int64) error {
	old, exists := x.files[p]
	if exists && x.format != FormatModelcar {
		return x.refuse(l, entry, "the file is in an earlier layer too", ErrUnsafeArchive)
	}
	if size > x.limits.MaxFileSize {
		return x.refuse(l, entry, fmt.Sprintf("%d bytes, more than the %d bytes allowed for one file", size, x.limits.MaxFileSize), ErrLimitExceeded)
	}
	if !exists && len(x.files)+1 > x.limits.MaxFiles {
		return x.refuse(l, entry, fmt.Sprintf("more than the %d files allowed", x.limits.MaxFiles), ErrLimitExceeded)
	}
	if x.total-old.Size+size > x.limits.MaxTotalSize {
		return x.refuse(l, entry, fmt.Sprintf("the model would hold more than the %d bytes allowed", x.limits.MaxTotalSize), ErrLimitExceeded)
	}
	return nil
}

func (x *extractor) add(i int, f File) {
	x.total += f.Size - x.files[f.Path].Size
	x.files[f.Path] = f
	x.owner[f.Path] = i
}

// prepare makes room for a file at p: its parent directories, and no earlier file there.
func (x *extractor) prepare(l Layer, p string) (string, error) {
	// A file cannot sit where an earlier file is a parent directory, or the reverse; layers that
	// do this are not a model anyone built on purpose.
	for q := path.Dir(p); q != "."; q = path.Dir(q) {
		if _, ok := x.files[q]; ok {
			return "", x.refuse(l, p, fmt.Sprintf("its parent %q is a file", q), ErrUnsafeArchive)
		}
	}
	for f := range x.files {
		if strings.HasPrefix(f, p+"/") {
			return "", x.refuse(l, p, fmt.Sprintf("it is a directory holding %q", f), ErrUnsafeArchive)
		}
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

// remove deletes files written by layers before i at p, or under p.
func (x *extractor) remove(i int, p string) {
	for f := range x.files {
		if (p == "" || f == p || strings.HasPrefix(f, p+"/")) && x.owner[f] < i {
			_ = os.Remove(filepath.Join(x.dir, filepath.FromSlash(f)))
			x.total -= x.files[f].Size
			delete(x.files, f)
			delete(x.owner, f)
		}
	}
}

// link is a hard or symbolic link in a layer, materialised as a copy once the layer is read.
type link struct {
	entry, path, target string
}

// modelPath maps a cleaned entry name to its path in the model: for a modelcar, entries under
// models/ with the prefix stripped; for the artefact formats, the name itself. ok is false for
// modelcar entries outside the model.
func (x *extractor) modelPath(name string) (string, bool) {
	if x.format != FormatModelcar {
		return name, true
	}
	rel, ok := strings.CutPrefix(name, ModelcarPrefix)
	return rel, ok && rel != ""
}

func (x *extractor) applyTar(ctx context.Context, i int, l Layer, r io.Reader) error {
	switch l.compression {
	case compressGzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return x.refuse(l, "", "not gzip: "+err.Error(), ErrUnsafeArchive)
		}
		defer zr.Close()
		r = zr
	case compressZstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderMaxMemory(maxZstdWindow), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	seen := map[string]bool{}
	var links []link
	for {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return x.refuse(l, "", "not a tar stream: "+err.Error(), ErrUnsafeArchive)
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		if name == "." || name == "" {
			continue // the layer's root directory
		}
		clean, err := cleanModelPath(name)
		if err != nil {
			return x.refuse(l, hdr.Name, err.Error(), ErrUnsafeArchive)
		}
		if seen[clean] {
			return x.refuse(l, hdr.Name, "the name is in the layer twice", ErrUnsafeArchive)
		}
		seen[clean] = true
		if x.format == FormatModelcar {
			base, dir := path.Base(clean), path.Dir(clean)
			if base == whiteoutOpaque {
				if rel, ok := x.modelPath(dir); ok {
					x.remove(i, rel)
				} else if dir == "models" {
					x.remove(i, "")
				}
				continue
			}
			if hidden, ok := strings.CutPrefix(base, whiteoutPrefix); ok {
				target := path.Join(dir, hidden)
				if target == "models" {
					x.remove(i, "")
				} else if rel, ok := x.modelPath(target); ok {
					x.remove(i, rel)
				}
				continue
			}
		}
		rel, inModel := x.modelPath(clean)
		if !inModel {
			continue // the rest of a modelcar image's file system
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if _, ok := x.files[rel]; ok && x.format == FormatModelcar {
				x.remove(i, rel)
			}
		case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old writers still emit TypeRegA
			if err := x.writeEntry(i, l, hdr, rel, tr); err != nil {
				return err
			}
		case tar.TypeSymlink, tar.TypeLink:
			target, err := x.linkTarget(hdr, clean)
			if err != nil {
				return x.refuse(l, hdr.Name, err.Error(), ErrUnsafeArchive)
			}
			links = append(links, link{entry: hdr.Name, path: rel, target: target})
		default:
			return x.refuse(l, hdr.Name, fmt.Sprintf("entry type %q (a device, FIFO or other special file) cannot be part of a model", string(hdr.Typeflag)), ErrUnsafeArchive)
		}
	}
	for _, ln := range links {
		if err := x.materialise(i, l, ln); err != nil {
			return err
		}
	}
	return nil
}

// linkTarget resolves a link entry's target to a path in the model, or says why it leaves it.
func (x *extractor) linkTarget(hdr *tar.Header, clean string) (string, error) {
	t := hdr.Linkname
	var full string
	switch {
	case hdr.Typeflag == tar.TypeLink: // hard links name their target from the layer's root
		full = path.Clean(strings.TrimPrefix(t, "/"))
	case strings.HasPrefix(t, "/"):
		if x.format != FormatModelcar {
			return "", fmt.Errorf("symbolic link to the absolute path %q leaves the model", t)
		}
		full = path.Clean(strings.TrimPrefix(t, "/")) // absolute in the image's own file system
	default:
		full = path.Join(path.Dir(clean), t)
	}
	if full == ".." || strings.HasPrefix(full, "../") {
		return "", fmt.Errorf("link to %q leaves the model", t)
	}
	rel, ok := x.modelPath(full)
	if !ok {
		return "", fmt.Errorf("link to %q leaves the model directory", t)
	}
	return rel, nil
}

// materialise copies a link's target file to the link's path, so the model holds regular files
// only and nothing on disk can point elsewhere.
func (x *extractor) materialise(i int, l Layer, ln link) error {
	src, ok := x.files[ln.target]
	if !ok {
		return x.refuse(l, ln.entry, fmt.Sprintf("link to %q, which is not a file of the model", ln.target), ErrUnsafeArchive)
	}
	if err := x.admit(l, ln.entry, ln.path, src.Size); err != nil {
		return err
	}
	in, err := os.Open(filepath.Join(x.dir, filepath.FromSlash(ln.target)))
	if err != nil {
		return err
	}
	defer in.Close()
	hdr := &tar.Header{Name: ln.entry, Size: src.Size}
	return x.writeEntry(i, l, hdr, ln.path, in)
}

// writeEntry writes one regular file, hashing it as it goes.
func (x *extractor) writeEntry(i int, l Layer, hdr *tar.Header, rel string, r io.Reader) error {
	if hdr.Size < 0 {
		return x.refuse(l, hdr.Name, "negative size", ErrUnsafeArchive)
	}
	if err := x.admit(l, hdr.Name, rel, hdr.Size); err != nil {
		return err
	}
	dst, err := x.prepare(l, rel)
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(out, h), io.LimitReader(r, hdr.Size), make([]byte, copyBufferSize))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("layer %s: entry %q: %w", l.Descriptor.Digest, hdr.Name, err)
	}
	if n != hdr.Size {
		return x.refuse(l, hdr.Name, fmt.Sprintf("the entry ends after %d of its %d bytes", n, hdr.Size), ErrUnsafeArchive)
	}
	x.add(i, File{Path: rel, Size: n, Digest: hashFromSum(h.Sum(nil))})
	return nil
}
