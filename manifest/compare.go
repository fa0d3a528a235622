package manifest

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Mismatch is a resource whose digest differs between the signed manifest and the model. For
// a file whose size differs from the size its signed shards cover, which CheckDir finds
// without reading the file, Name is the file's path and Expected and Actual are "N bytes".
type Mismatch struct {
	Name     string
	Expected string // "algorithm:hex" from the signed manifest
	Actual   string // "algorithm:hex" from the model
}

// Diff lists every way a model differs from its signed manifest. As an error it matches
// ErrMismatch, and its message names every file involved.
type Diff struct {
	Model      string
	Missing    []string // signed, but not in the model
	Extra      []string // in the model, but not signed
	Mismatched []Mismatch
}

// Empty reports whether the model matched.
func (d *Diff) Empty() bool {
	return len(d.Missing) == 0 && len(d.Extra) == 0 && len(d.Mismatched) == 0
}

func (d *Diff) Error() string {
	var parts []string
	if len(d.Extra) > 0 {
		parts = append(parts, fmt.Sprintf("extra files found in model %q: %s", d.Model, strings.Join(d.Extra, ", ")))
	}
	if len(d.Missing) > 0 {
		parts = append(parts, fmt.Sprintf("missing files in model %q: %s", d.Model, strings.Join(d.Missing, ", ")))
	}
	for _, m := range d.Mismatched {
		parts = append(parts, fmt.Sprintf("digest mismatch for %q: expected %s, actual %s", m.Name, m.Expected, m.Actual))
	}
	return "model does not match its manifest: " + strings.Join(parts, "; ")
}

// Is makes errors.Is(diff, ErrMismatch) true.
func (d *Diff) Is(target error) bool { return target == ErrMismatch }

// CompareOptions adjusts Compare.
type CompareOptions struct {
	// IgnoreUnsigned accepts files in the model that the signed manifest does not list.
	IgnoreUnsigned bool
}

// Compare reports how actual differs from signed: every missing resource, every extra one
// (unless IgnoreUnsigned), and every digest mismatch, each with its name and both digests. It
// returns nil when they match and a *Diff otherwise. A signed resource name that could escape
// the model root is an error of its own (ErrUnsafeName). The model name takes no part.
func Compare(signed, actual *Manifest, opts CompareOptions) error {
	for _, r := range signed.Resources {
		if err := ValidateName(pathOf(r)); err != nil {
			return err
		}
	}
	if d := compare(signed, actual, opts, nil); !d.Empty() {
		return d
	}
	return nil
}

// compare is Compare on names already validated. A signed resource of a file in present is not
// reported missing: the file is there, and its difference has been reported otherwise.
func compare(signed, actual *Manifest, opts CompareOptions, present map[string]bool) *Diff {
	// Digests are compared as bytes, and spelt in hex only for a mismatch.
	type entry struct {
		alg    string
		digest []byte
	}
	have := make(map[string]entry, len(actual.Resources))
	for _, r := range actual.Resources {
		have[r.Name] = entry{r.Algorithm, r.Digest}
	}
	d := &Diff{Model: signed.ModelName}
	want := make(map[string]bool, len(signed.Resources))
	for _, r := range signed.Resources {
		want[r.Name] = true
		got, ok := have[r.Name]
		switch {
		case !ok && present[r.Path()]:
		case !ok:
			d.Missing = append(d.Missing, r.Name)
		case got.alg != r.Algorithm || !bytes.Equal(got.digest, r.Digest):
			d.Mismatched = append(d.Mismatched, Mismatch{Name: r.Name, Expected: r.Algorithm + ":" + r.Hex(), Actual: got.alg + ":" + hex.EncodeToString(got.digest)})
		}
	}
	if !opts.IgnoreUnsigned {
		for _, r := range actual.Resources {
			if !want[r.Name] {
				d.Extra = append(d.Extra, r.Name)
			}
		}
	}
	slices.Sort(d.Missing)
	slices.Sort(d.Extra)
	return d
}

// CheckOptions adjusts CheckDir.
type CheckOptions struct {
	// IgnorePaths are left out of the model in addition to those the manifest records.
	IgnorePaths []string
	// IncludeGitPaths, SignatureFile, Workers and Progress are as in Options.
	IncludeGitPaths bool
	SignatureFile   string
	Workers         int
	Progress        func(done, total int64)
	// Inspect is as in Options. It sees only the files CheckDir hashes.
	Inspect func(ctx context.Context, name string, f *os.File, r io.ReaderAt) error
	// IgnoreUnsigned hashes only the files the manifest lists, and accepts others.
	IgnoreUnsigned bool
	// Listed is as in Options: it sees every file the walk found, signed or not, before any
	// file is read.
	Listed func(files []ListedFile, ignored []string) error
}

// CheckDir hashes the model at path the way the signed manifest says it was hashed (method,
// hash type, shard size, symbolic links, and the recorded ignore paths), and compares the
// result with it. It returns the manifest of what it hashed, and a *Diff error if the model
// differs.
//
// Names, file types and sizes are compared before anything is read, so that a model padded
// with something huge is refused at the cost of a stat: a file the signature does not cover is
// reported as extra without being read, and so is a file whose size differs from the size its
// signed shards cover (a Mismatch in bytes). Only the signed files whose size can be right are
// hashed, and only they are in the returned manifest. (A files-serialization manifest records
// no sizes, so there a signed file is hashed whatever its size.)
func CheckDir(ctx context.Context, path string, signed *Manifest, opts CheckOptions) (*Manifest, error) {
	ser := signed.Serialization
	if err := ser.Validate(); err != nil {
		return nil, err
	}
	for _, r := range signed.Resources {
		if err := ValidateName(pathOf(r)); err != nil {
			return nil, err
		}
	}
	o := Options{
		ModelName:       signed.ModelName,
		Method:          ser.Method,
		HashType:        ser.HashType,
		ShardSize:       ser.ShardSize,
		AllowSymlinks:   ser.AllowSymlinks,
		IgnorePaths:     append(slices.Clone(opts.IgnorePaths), ser.IgnorePaths...),
		IncludeGitPaths: opts.IncludeGitPaths,
		SignatureFile:   opts.SignatureFile,
		Workers:         opts.Workers,
		Progress:        opts.Progress,
		Inspect:         opts.Inspect,
		Listed:          opts.Listed,
	}
	byFile := signed.ByFile()
	if opts.IgnoreUnsigned {
		o.Only = []string{}
		for f := range byFile {
			if f != "." {
				o.Only = append(o.Only, f)
			}
		}
		slices.Sort(o.Only)
		if len(o.Only) != len(byFile) {
			o.Only = nil // a single-file model: hash it whole
		}
	}
	oser, err := o.serialization()
	if err != nil {
		return nil, err
	}
	_, files, ignores, err := collect(path, oser, o)
	if err != nil {
		return nil, err
	}
	oser.IgnorePaths = ignores
	if err := o.listed(files, ignores, byFile); err != nil {
		return nil, err
	}

	// What a stat can tell, before any byte is read.
	var early Diff
	present := make(map[string]bool, len(files))
	toHash := make([]file, 0, len(files))
	for _, f := range files {
		rs, signedFile := byFile[f.name]
		want, sized := ShardedSize(rs)
		switch {
		case !signedFile && oser.Method == MethodShards && f.size == 0:
			// An empty file has no shard, signed or hashed: nothing to compare, as FromDir.
		case !signedFile:
			if !opts.IgnoreUnsigned {
				early.Extra = append(early.Extra, f.name)
			}
		case sized && f.size != want:
			present[f.name] = true
			early.Mismatched = append(early.Mismatched, Mismatch{Name: f.name,
				Expected: fmt.Sprintf("%d bytes", want), Actual: fmt.Sprintf("%d bytes", f.size)})
		default:
			toHash = append(toHash, f)
		}
	}
	actual := &Manifest{ModelName: signed.ModelName, Serialization: oser}
	if actual.Resources, err = hashResources(ctx, toHash, oser, o); err != nil {
		return nil, err
	}
	d := compare(signed, actual, CompareOptions{IgnoreUnsigned: opts.IgnoreUnsigned}, present)
	d.Extra = append(d.Extra, early.Extra...)
	slices.Sort(d.Extra)
	d.Mismatched = append(early.Mismatched, d.Mismatched...)
	if d.Empty() {
		return actual, nil
	}
	return actual, d
}
