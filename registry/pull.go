package registry

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
)

// Limits bound what a Pull may write, so that a layer cannot become a bomb: a few compressed
// bytes that expand into a full disk, or millions of files. A zero field takes its default.
type Limits struct {
	// MaxFiles is the most model files an artefact may hold (default 100 000).
	MaxFiles int
	// MaxFileSize is the largest one model file may be (default 1 TiB).
	MaxFileSize int64
	// MaxTotalSize bounds the model files' total size, and the layers' total size (default 4 TiB).
	MaxTotalSize int64
}

// DefaultLimits are the limits of a zero Limits field.
var DefaultLimits = Limits{MaxFiles: 100_000, MaxFileSize: 1 << 40, MaxTotalSize: 4 << 40}

func (l Limits) withDefaults() Limits {
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultLimits.MaxFiles
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = DefaultLimits.MaxFileSize
	}
	if l.MaxTotalSize <= 0 {
		l.MaxTotalSize = DefaultLimits.MaxTotalSize
	}
	return l
}

// File is one model file a Pull wrote.
type File struct {
	// Path is the file's path in the model, slash-separated ("weights/model.safetensors").
	Path string
	// Size is its length in bytes.
	Size int64
	// Digest is the SHA-256 of its content, computed as it was written.
	Digest v1.Hash
}

// Pulled is what a Pull wrote into the staging directory.
type Pulled struct {
	// Dir is the staging directory, holding exactly Files.
	Dir string
	// Files are the model files, sorted by path.
	Files []File
}

// Pull downloads art's layers, several at once, each checked against its digest as it streams,
// and writes the model files they hold into dir, which must be empty or absent. dir is a
// staging directory: Pull never publishes anything, and on any error dir may hold a partial
// model that the caller must remove (or leave unpublished). Layers are applied in order: for a
// modelcar, later layers override earlier ones and whiteouts remove entries, and only entries
// under models/ become files (the prefix stripped). Every entry is checked: no absolute path, no
// "..", no link out of the model, no device, no name twice in a layer, within limits.
func (c *Client) Pull(ctx context.Context, art *Artifact, dir string, limits Limits) (*Pulled, error) {
	limits = limits.withDefaults()
	var declared int64
	for _, l := range art.Layers {
		if l.Descriptor.Size < 0 {
			return nil, fmt.Errorf("registry: %s: layer %s has a negative size", art.Reference, l.Descriptor.Digest)
		}
		declared += l.Descriptor.Size
	}
	if declared > limits.MaxTotalSize {
		return nil, fmt.Errorf("registry: %s: %w: the layers hold %d bytes, more than the %d allowed", art.Reference, ErrLimitExceeded, declared, limits.MaxTotalSize)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if ents, err := os.ReadDir(dir); err != nil {
		return nil, err
	} else if len(ents) > 0 {
		return nil, fmt.Errorf("registry: staging directory %s is not empty", dir)
	}
	// Blobs are staged beside dir, on the same file system, so a raw layer is renamed, not copied.
	blobDir, err := os.MkdirTemp(filepath.Dir(filepath.Clean(dir)), ".oci-blobs-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(blobDir)

	hc, repo, err := c.blobClient(ctx, art.Reference)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make([]chan error, len(art.Layers))
	for i := range done {
		done[i] = make(chan error, 1)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.jobs)
	launched := make(chan struct{})
	go func() {
		defer close(launched)
		for i, l := range art.Layers {
			g.Go(func() error {
				err := c.downloadLayer(gctx, hc, repo, art, i, l, blobPath(blobDir, l.Descriptor.Digest))
				done[i] <- err
				return err
			})
		}
	}()

	// Layers are applied in order as each arrives, while later ones still download.
	x := newExtractor(dir, limits, art.Format)
	var applyErr error
	for i, l := range art.Layers {
		var err error
		select {
		case err = <-done[i]:
		case <-ctx.Done():
			err = context.Cause(ctx)
		}
		if err != nil {
			applyErr = err
			break
		}
		if err := x.apply(ctx, i, l, blobPath(blobDir, l.Descriptor.Digest)); err != nil {
			applyErr = fmt.Errorf("registry: %s: %w", art.Reference, err)
			break
		}
		_ = os.Remove(blobPath(blobDir, l.Descriptor.Digest))
	}
	if applyErr != nil {
		cancel(applyErr)
	}
	<-launched
	werr := g.Wait()
	if applyErr == nil && werr != nil {
		applyErr = werr
	}
	if applyErr != nil {
		return nil, applyErr
	}
	files, err := x.finish()
	if err != nil {
		return nil, fmt.Errorf("registry: %s: %w", art.Reference, err)
	}
	return &Pulled{Dir: dir, Files: files}, nil
}

func blobPath(dir string, d v1.Hash) string { return filepath.Join(dir, d.Algorithm+"-"+d.Hex) }

// fileSink is a blobSink on a file.
type fileSink struct{ f *os.File }

func (s *fileSink) Write(p []byte) (int, error) { return s.f.Write(p) }
func (s *fileSink) Reset() error {
	if err := s.f.Truncate(0); err != nil {
		return err
	}
	_, err := s.f.Seek(0, 0)
	return err
}

// downloadLayer stages layer i's blob at path, checked against its digest and size.
func (c *Client) downloadLayer(ctx context.Context, hc *http.Client, repo name.Repository, art *Artifact, i int, l Layer, path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) { // the same blob twice in one manifest: fetched once
			return nil
		}
		return err
	}
	err = c.fetchBlob(ctx, hc, repo, art.Reference, l.Descriptor, &fileSink{f}, fmt.Sprintf("layer %d", i))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// cleanModelPath checks a path inside the model: relative, slash-separated, no "..", no ".",
// no empty component, no backslash or NUL; a leading "./" is dropped.
func cleanModelPath(p string) (string, error) {
	p = strings.TrimPrefix(p, "./")
	if p == "" {
		return "", errors.New("empty path")
	}
	if strings.HasPrefix(p, "/") {
		return "", errors.New("absolute path")
	}
	if strings.ContainsAny(p, "\\\x00") {
		return "", errors.New("backslash or NUL in the path")
	}
	for _, part := range strings.Split(p, "/") {
		switch part {
		case "..":
			return "", errors.New(`".." in the path`)
		case ".", "":
			return "", errors.New("empty or \".\" path component")
		}
	}
	return p, nil
}

// sortedFiles lists a file map by path.
func sortedFiles(m map[string]File) []File {
	out := make([]File, 0, len(m))
	for _, f := range m {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func hashFromSum(sum []byte) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum)}
}
