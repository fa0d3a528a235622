package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

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
	fs.Var(&m.ignorePaths, "ignore-paths", "a path to leave out of the model (repeatable)")
	fs.BoolVar(&m.ignoreGitPaths, "ignore-git-paths", true, "leave out .git, .gitattributes, .github and .gitignore")
	fs.BoolVar(&m.allowSymlinks, "allow-symlinks", false, "follow symbolic links to files inside the model")
}

// resolveIgnorePaths turns the ignore paths, given relative to the working directory as
// model_signing takes them, into paths relative to the model root. Paths outside the model are
// dropped, as model_signing drops them.
func (m *modelFlags) resolveIgnorePaths(modelPath string) []string {
	root, err := filepath.Abs(modelPath)
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range m.ignorePaths {
		abs, err := filepath.Abs(p)
		if err != nil {
			continue
		}
		rel, err := filepath.Rel(root, abs)
		if err != nil || rel == "." || rel == ".." || filepath.IsAbs(rel) || len(rel) > 2 && rel[:3] == ".."+string(filepath.Separator) {
			continue
		}
		out = append(out, filepath.ToSlash(rel))
	}
	return out
}

func runDigest(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("digest")
	var mf modelFlags
	mf.register(fs)
	hash := fs.String("hash", "sha256", "content hash: sha256, blake2b or blake3")
	shardSize := fs.Int64("shard-size", 0, "hash files in shards of this many bytes (default: whole files)")
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
	opts := manifest.Options{
		HashType:        *hash,
		AllowSymlinks:   mf.allowSymlinks,
		IgnorePaths:     mf.resolveIgnorePaths(pos[0]),
		IncludeGitPaths: !mf.ignoreGitPaths,
	}
	if *shardSize > 0 {
		opts.Method, opts.ShardSize = manifest.MethodShards, *shardSize
	}
	m, err := manifest.FromDir(ctx, pos[0], opts)
	if err != nil {
		return err
	}
	if e.json {
		return json.NewEncoder(e.stdout).Encode(map[string]any{
			"digest": m.RootDigest().String(), "resources": len(m.Resources),
			"method": m.Serialization.Method, "hash_type": m.Serialization.HashType,
		})
	}
	_, err = fmt.Fprintln(e.stdout, m.RootDigest())
	return err
}
