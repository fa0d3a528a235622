package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/echelongraph/go-modelverify/manifest"
)

// modelFlags are the flags that say how a model on disk is turned into a manifest, shared by
// digest, sign and verify, as in model_signing.
type modelFlags struct {
	ignorePaths    stringList
	ignoreGitPaths bool
	allowSymlinks  bool
}

func (m *modelFlags) register(fs *flagSet) {
	fs.Var(&m.ignorePaths, "ignore-paths", "a path to leave out of the model, relative to the working directory (repeatable)")
	fs.BoolVar(&m.ignoreGitPaths, "ignore-git-paths", true, "leave out .git, .gitattributes, .github and .gitignore (--no-ignore-git-paths keeps them)")
	fs.BoolVar(&m.allowSymlinks, "allow-symlinks", false, "follow symbolic links to files inside the model")
}

// resolveIgnorePaths turns the ignore paths, given relative to the working directory as
// model_signing takes them, into paths relative to the model root. Paths outside the model are
// dropped, as model_signing drops them.
func (m *modelFlags) resolveIgnorePaths(modelPath string) []string {
	var out []string
	for _, p := range m.ignorePaths {
		if rel, ok := relativeToModel(modelPath, p); ok {
			out = append(out, rel)
		}
	}
	return out
}

// relativeToModel returns p, a path relative to the working directory, as a slash-separated
// path relative to the model root, and false when p is not inside the model.
func relativeToModel(modelPath, p string) (string, bool) {
	root, err := filepath.Abs(modelPath)
	if err != nil {
		return "", false
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", false
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == "." || rel == ".." || filepath.IsAbs(rel) || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

// hashFlags are sign's and digest's choice of hash and serialization, beyond model_signing's.
type hashFlags struct {
	hash      string
	shardSize int64
}

func (h *hashFlags) register(fs *flagSet) {
	fs.StringVar(&h.hash, "hash", "sha256", "content hash: sha256, blake2b or blake3")
	fs.Int64Var(&h.shardSize, "shard-size", 0, "hash files in shards of this many bytes (default: whole files)")
}

// options builds the manifest options for the model at modelPath.
func (m *modelFlags) options(modelPath string, h hashFlags) (manifest.Options, error) {
	switch h.hash {
	case manifest.SHA256, manifest.BLAKE2b, manifest.BLAKE3:
	default:
		return manifest.Options{}, usagef("--hash %q: want sha256, blake2b or blake3", h.hash)
	}
	if h.shardSize < 0 {
		return manifest.Options{}, usagef("--shard-size %d: must be positive", h.shardSize)
	}
	opts := manifest.Options{
		HashType:        h.hash,
		AllowSymlinks:   m.allowSymlinks,
		IgnorePaths:     m.resolveIgnorePaths(modelPath),
		IncludeGitPaths: !m.ignoreGitPaths,
	}
	if h.shardSize > 0 {
		opts.Method, opts.ShardSize = manifest.MethodShards, h.shardSize
	}
	return opts, nil
}

func runDigest(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "digest", "verifier digest MODEL_PATH [--ignore-paths P]... [--no-ignore-git-paths] [--allow-symlinks] [--hash H] [--shard-size N]")
	var mf modelFlags
	var hf hashFlags
	mf.register(fs)
	hf.register(fs)
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("digest: want one MODEL_PATH, got %d arguments", len(pos))
	}
	if _, err := os.Stat(pos[0]); err != nil {
		return err
	}
	opts, err := mf.options(pos[0], hf)
	if err != nil {
		return err
	}
	bar := newProgress(e, "hashing")
	opts.Progress = bar.set
	m, err := manifest.FromDir(ctx, pos[0], opts)
	bar.finish()
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e, map[string]any{
			"digest": m.RootDigest().String(), "resources": len(m.Resources),
			"method": m.Serialization.Method, "hash_type": m.Serialization.HashType,
		})
	}
	_, err = e.stdout.Write([]byte(m.RootDigest().String() + "\n"))
	return err
}
