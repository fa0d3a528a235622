package registry

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
)

// Limits bound what a Pull may write, so that a layer cannot become a bomb: a few compressed
// bytes that expand into a full disk, or millions of files. A zero field takes its default.
// While layers stream in parallel, every file any layer writes counts, even one a later layer
// of a modelcar replaces: the count errs on the side of refusing.
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
	// Digest is the SHA-256 of its content, computed as it was written (for a ModelPack .raw
	// layer, the layer's own digest, checked as it streamed).
	Digest v1.Hash
}

// Pulled is what a Pull wrote into the staging directory.
type Pulled struct {
	// Dir is the staging directory, holding exactly Files.
	Dir string
	// Files are the model files, sorted by path.
	Files []File
}

// Pull downloads art's layers, several at once, and writes the model files they hold into dir,
// which must be empty or absent. Each layer is read from the network once: it is hashed and
// extracted as it streams, into its own scratch directory beside dir, and counts only once its
// size and digest matched at the end of the stream. The layers are then applied to dir in
// order: for a modelcar, later layers override earlier ones and whiteouts remove entries, and
// only entries under models/ become files (the prefix stripped). Every entry is checked as it
// is read: no absolute path, no "..", no link out of the model, no device, no name twice in a
// layer, within limits.
//
// dir is a staging directory: Pull never publishes anything. On any error dir may hold part of
// a model, which the caller must remove (or at least never load).
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
	// Scratch space beside dir, on the same file system, so files are renamed into place.
	scratch, err := os.MkdirTemp(filepath.Dir(filepath.Clean(dir)), ".oci-layers-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	hc, repo, err := c.blobClient(ctx, art.Reference)
	if err != nil {
		return nil, err
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	type result struct {
		staged *stagedLayer
		err    error
	}
	done := make([]chan result, len(art.Layers))
	for i := range done {
		done[i] = make(chan result, 1)
	}
	budget := newBudget(limits)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.jobs)
	launched := make(chan struct{})
	go func() {
		defer close(launched)
		for i, l := range art.Layers {
			g.Go(func() error {
				st, err := c.streamLayer(gctx, hc, repo, art, i, l, filepath.Join(scratch, strconv.Itoa(i)), budget)
				done[i] <- result{st, err}
				return err
			})
		}
	}()

	// Layers are applied in order as each completes, while later ones still stream.
	x := newExtractor(dir, limits, art.Format)
	var applyErr error
	for i, l := range art.Layers {
		var res result
		select {
		case res = <-done[i]:
		case <-ctx.Done():
			res.err = context.Cause(ctx)
		}
		if res.err != nil {
			applyErr = res.err
			break
		}
		if err := x.merge(i, l, res.staged); err != nil {
			applyErr = fmt.Errorf("registry: %s: %w", art.Reference, err)
			break
		}
	}
	if applyErr != nil {
		cancel(applyErr)
	}
	<-launched
	if werr := g.Wait(); applyErr == nil && werr != nil {
		applyErr = werr
	}
	if applyErr != nil {
		return nil, applyErr
	}
	if err := removeEmptyDirs(dir); err != nil {
		return nil, err
	}
	return &Pulled{Dir: dir, Files: sortedFiles(x.files)}, nil
}

// removeEmptyDirs removes the directories under root that whiteouts emptied, so that the staging
// directory holds the model's files and their parents, nothing else.
func removeEmptyDirs(root string) error {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != root {
			dirs = append(dirs, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- { // deepest first: WalkDir lists parents before children
		if ents, err := os.ReadDir(dirs[i]); err == nil && len(ents) == 0 {
			if err := os.Remove(dirs[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// streamLayer reads layer i from the registry once, extracting it into its scratch directory as
// it arrives, and returns what it holds only after the stream's size and digest matched.
func (c *Client) streamLayer(ctx context.Context, hc *http.Client, repo name.Repository, art *Artifact, i int, l Layer, scratch string, b *budget) (*stagedLayer, error) {
	if err := os.Mkdir(scratch, 0o700); err != nil {
		return nil, err
	}
	br, err := c.openBlob(ctx, hc, repo, l.Descriptor, fmt.Sprintf("layer %d of %s", i, art.Reference.Name()))
	if err != nil {
		return nil, err
	}
	defer br.Close()
	var st *stagedLayer
	if l.kind == layerRaw {
		st, err = stageRaw(br, l, scratch, b)
	} else {
		st, err = stageTar(ctx, br, l, art.Format, scratch, b)
	}
	if err != nil {
		// A stream that fails its digest says more than whatever its bytes made the extractor
		// refuse: report the digest when it is the cause.
		if _, derr := io.Copy(io.Discard, br); derr != nil && errors.As(derr, new(*DigestError)) {
			return nil, derr
		}
		if errors.As(err, new(*EntryError)) {
			return nil, fmt.Errorf("registry: %s: %w", art.Reference, err)
		}
		return nil, err
	}
	// The extractor may stop before the end (tar padding, trailing bytes): the digest covers
	// every byte, so read to the end.
	if _, err := io.CopyBuffer(io.Discard, br, make([]byte, 32<<10)); err != nil {
		return nil, err
	}
	return st, nil
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
