package manifest

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// DefaultFilesModelName is the subject name SignFiles gives a model when Options.ModelName is
// empty: files in memory have no directory to be named after.
const DefaultFilesModelName = "model"

// SignFiles signs a model held in memory, files mapping slash-separated paths ("config.json",
// "tokenizer/vocab.txt") to contents: for tests and tools that make a model rather than read one.
// It writes the files into a temporary directory, which it removes, and signs that with SignDir
// and opts, so the bundle and manifest are exactly those SignDir makes for the same files in a
// directory: the same ignore rules (opts.IgnorePaths, git metadata, the signature file), the same
// serialization, and ErrEmptyModel for nothing to sign. The subject name is opts.ModelName, else
// DefaultFilesModelName. A path that is not a clean relative one (fs.ValidPath: no "..", no
// leading "/", no empty element) is refused.
func SignFiles(ctx context.Context, files map[string][]byte, opts Options, s Signer) ([]byte, *Manifest, error) {
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if !fs.ValidPath(name) || name == "." {
			return nil, nil, fmt.Errorf("%w: %q is not a clean relative path", ErrUnsafeName, name)
		}
	}
	tmp, err := os.MkdirTemp("", "manifest-signfiles-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, DefaultFilesModelName)
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil { // a model of no files is still a directory
		return nil, nil, err
	}
	if opts.ModelName == "" {
		opts.ModelName = DefaultFilesModelName
	}
	return SignDir(ctx, dir, opts, s)
}
