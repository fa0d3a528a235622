package manifest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/echelongraph/go-modelverify/internal/digest"
)

// Options says how to build a manifest from a model on disk. The zero value gives
// model_signing's defaults: files serialization, SHA-256, git paths and model.sig ignored,
// symbolic links refused.
type Options struct {
	// ModelName is the statement's subject name. The default is the last component of the
	// model's path.
	ModelName string
	// Method is MethodFiles (the default) or MethodShards.
	Method string
	// HashType is SHA256 (the default), BLAKE2b or BLAKE3.
	HashType string
	// ShardSize is the shard size for MethodShards; the default is DefaultShardSize.
	ShardSize int64
	// AllowSymlinks lets symbolic links to files inside the model root be hashed, with the
	// target's content under the link's name. Links that leave the root, and links to
	// directories, are refused even then.
	AllowSymlinks bool
	// IgnorePaths are left out of the manifest, with everything under them. They are relative
	// to the model root; an absolute path is made relative to it, or dropped if it lies outside.
	IgnorePaths []string
	// IncludeGitPaths stops .git, .gitattributes, .github and .gitignore at the top of the
	// model from being ignored.
	IncludeGitPaths bool
	// SignatureFile is the signature's path, relative to the model root, which is always
	// ignored. The default is DefaultSignatureFile.
	SignatureFile string
	// Only, if not nil, restricts hashing to these resource paths (relative to the root) and
	// does not walk the directory: what "ignore unsigned files" needs. Each must exist.
	Only []string
	// Workers bounds how many files or shards are hashed at once; the default is GOMAXPROCS.
	Workers int
	// Progress, if set, is called as bytes are hashed.
	Progress func(done, total int64)
	// Inspect, if set, is called for every file hashed whole (files serialization, symbolic
	// links not followed) with the open file the hasher is about to read, before any of it is
	// read, from the hashing workers at once. What a caller must look at in each file anyway
	// (its format, its metadata) then costs no second open, and for a small file no second
	// read: r serves the file's first 64 KiB from one read kept in memory, and the hash is
	// taken from the same bytes. name is the resource path. An error stops the hashing and is
	// returned (wrapped) by FromDir or CheckDir.
	Inspect func(ctx context.Context, name string, f *os.File, r io.ReaderAt) error
	// Listed, if set, is called once the walk has found the model's files, before any of them
	// is read: with each file the walk found, and with the paths it left out (ignored, with
	// everything under them; relative to the root, cleaned, "/"-separated). What a caller must
	// know of every file before hashing (its count and sizes, its metadata) then costs no walk
	// and no stat of its own. An error stops FromDir or CheckDir and is returned as it is.
	Listed func(files []ListedFile, ignored []string) error
}

// ListedFile is a file of the model as the walk found it.
type ListedFile struct {
	// Name is the resource path.
	Name string
	// Info is what Lstat said of the file, or (for a symbolic link the options allow) what
	// Stat said of its target.
	Info fs.FileInfo
	// Signed (CheckDir only) is whether the signed manifest lists a resource of the file.
	Signed bool
}

// listed hands the walk's files to opts.Listed, if it is set; signed, if not nil, is the
// signed manifest's resources by file.
func (o Options) listed(files []file, ignores []string, signed map[string][]Resource) error {
	if o.Listed == nil {
		return nil
	}
	out := make([]ListedFile, len(files))
	for i, f := range files {
		_, ok := signed[f.name]
		out[i] = ListedFile{Name: f.name, Info: f.info, Signed: ok}
	}
	return o.Listed(out, slices.Clone(ignores))
}

func (o Options) serialization() (Serialization, error) {
	s := Serialization{Method: o.Method, HashType: o.HashType, ShardSize: o.ShardSize, AllowSymlinks: o.AllowSymlinks}
	if s.Method == "" {
		s.Method = MethodFiles
	}
	if s.HashType == "" {
		s.HashType = SHA256
	}
	if s.HashType == "blake2" {
		s.HashType = BLAKE2b
	}
	if s.Method == MethodShards && s.ShardSize == 0 {
		s.ShardSize = DefaultShardSize
	}
	if s.Method == MethodFiles {
		s.ShardSize = 0
	}
	return s, s.Validate()
}

// file is one regular file found in the model, ready to be hashed.
type file struct {
	name string // resource path, "/"-separated, "." for a single-file model
	path string // where to read it: the file itself, or a symbolic link's target
	size int64
	info fs.FileInfo // what the walk's Lstat (or a followed link's Stat) said
}

// FromDir hashes the model at path, a directory or a single file, into a manifest, exactly as
// Python model_signing does: hidden files are included, empty directories are not, empty files
// are included with files serialization and left out with shards, and a single-file model's
// resource is named ".". Resources come out in Python's canonical order (SortResources).
func FromDir(ctx context.Context, path string, opts Options) (*Manifest, error) {
	ser, err := opts.serialization()
	if err != nil {
		return nil, err
	}
	root, files, ignores, err := collect(path, ser, opts)
	if err != nil {
		return nil, err
	}
	ser.IgnorePaths = ignores
	if err := opts.listed(files, ignores, nil); err != nil {
		return nil, err
	}
	m := &Manifest{ModelName: opts.ModelName, Serialization: ser}
	if m.ModelName == "" {
		m.ModelName = modelName(root)
	}
	if m.Resources, err = hashResources(ctx, files, ser, opts); err != nil {
		return nil, err
	}
	return m, nil
}

// hashResources hashes files as ser says (whole, or in shards; an empty file has no shard) and
// returns their resources in Python's canonical order.
func hashResources(ctx context.Context, files []file, ser Serialization, opts Options) ([]Resource, error) {
	var tasks []digest.Task
	var names []string
	for _, f := range files {
		if ser.Method == MethodShards {
			for _, t := range digest.Shards(f.path, f.size, ser.ShardSize) {
				tasks = append(tasks, t)
				names = append(names, fmt.Sprintf("%s:%d:%d", f.name, t.Offset, t.Offset+t.Length))
			}
			continue
		}
		tasks = append(tasks, digest.Task{Path: f.path, Length: f.size})
		names = append(names, f.name)
	}
	hopts := []digest.Option{digest.WithWorkers(opts.Workers)}
	if opts.Workers <= 0 {
		hopts = nil
	}
	if opts.Progress != nil {
		hopts = append(hopts, digest.WithProgress(func(u digest.Update) { opts.Progress(u.Done, u.Total) }))
	}
	if opts.Inspect != nil && ser.Method == MethodFiles && !ser.AllowSymlinks {
		hopts = append(hopts, digest.WithOpenTask(inspectingOpen(ctx, files, opts.Inspect)))
	}
	h, err := digest.New(digest.Algorithm(ser.HashType), hopts...)
	if err != nil {
		return nil, err
	}
	sums, err := h.Hash(ctx, tasks)
	if err != nil {
		return nil, err
	}
	alg := ser.ResourceAlgorithm()
	rs := make([]Resource, len(tasks))
	for i := range tasks {
		rs[i] = Resource{Name: names[i], Algorithm: alg, Digest: sums[i]}
	}
	SortResources(rs)
	return rs, nil
}

// inspectingOpen opens each file to hash, and hands it to inspect first. Task i is files[i]:
// files serialization hashes each file whole, as one task.
//
// The head read covers the size the walk found, which is also what the hasher reads: a file
// that has grown since is hashed (and scanned) only as far as that size, and one that has
// shrunk fails the hash as short. Either way the bytes inspect sees are the bytes hashed, and
// inspect, which stats the open file, sees the change.
func inspectingOpen(ctx context.Context, files []file, inspect func(context.Context, string, *os.File, io.ReaderAt) error) func(int, digest.Task) (digest.ReaderAtCloser, error) {
	return func(i int, t digest.Task) (digest.ReaderAtCloser, error) {
		if i < 0 || i >= len(files) || files[i].path != t.Path {
			return nil, fmt.Errorf("manifest: task %d (%s) is not file %d of the model", i, t.Path, i)
		}
		want := &files[i]
		f, err := openForReading(t.Path)
		if err != nil {
			return nil, err
		}
		r := &fileHead{newHeadReaderAt(f, want.size), f}
		if err := inspect(ctx, want.name, f, r); err != nil {
			f.Close()
			return nil, err
		}
		return r, nil
	}
}

// fileHead reads a file through its head buffer, and closes the file.
type fileHead struct {
	*headReaderAt
	io.Closer
}

// openForReading opens a regular file to read with ReadAt, without os.Open's attempt to add it
// to the network poller, which for a regular file always fails and costs five system calls: for
// a model of many small files, a good part of all the calls made per file.
func openForReading(path string) (*os.File, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}

// headReaderAt serves reads within a file's first headSize bytes from one read of them: a
// scanner reads a format's magic, then its header, in several small reads, and the hasher reads
// a small file (a config, a tokenizer) whole; one system call then serves them all. Reads
// beyond go to the file.
type headReaderAt struct {
	r    io.ReaderAt
	head []byte // what the first read returned: a file that shrank since is read short
}

const headSize = 64 << 10

func newHeadReaderAt(r io.ReaderAt, size int64) *headReaderAt {
	h := &headReaderAt{r: r, head: make([]byte, min(max(size, 0), headSize))}
	n, _ := r.ReadAt(h.head, 0) // a failure shows again when the file is read
	h.head = h.head[:n]
	return h
}

func (h *headReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(h.head)) {
		return h.r.ReadAt(p, off)
	}
	return copy(p, h.head[off:]), nil
}

// modelName is the last component of the model's path, resolved first so that "." and ".."
// give a real name.
func modelName(root string) string {
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	return filepath.Base(root)
}

// collect finds the files of the model at path and the ignore list to record.
func collect(path string, ser Serialization, opts Options) (root string, files []file, ignores []string, err error) {
	root = filepath.Clean(path)
	fi, err := os.Lstat(root)
	if err != nil {
		return "", nil, nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if !ser.AllowSymlinks {
			return "", nil, nil, fmt.Errorf("%w: the model path %s is a symbolic link", ErrSymlink, root)
		}
		if root, err = filepath.EvalSymlinks(root); err != nil {
			return "", nil, nil, err
		}
		if fi, err = os.Stat(root); err != nil {
			return "", nil, nil, err
		}
	}
	switch {
	case fi.Mode().IsRegular():
		// A single-file model: nothing to ignore, and its one resource is ".".
		return root, []file{{name: ".", path: root, size: fi.Size(), info: fi}}, nil, nil
	case !fi.IsDir():
		return "", nil, nil, fmt.Errorf("%w: %s (%s)", ErrFileType, root, fi.Mode().Type())
	}

	ignores = ignoreList(root, opts)
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", nil, nil, err
	}

	if opts.Only != nil {
		for _, name := range opts.Only {
			if err := ValidateName(name); err != nil || name == "." {
				return "", nil, nil, fmt.Errorf("%w: %q", ErrUnsafeName, name)
			}
			f, err := inspect(root, realRoot, name, ser.AllowSymlinks)
			if errors.Is(err, fs.ErrNotExist) {
				continue // Compare reports it as missing
			}
			if err != nil {
				return "", nil, nil, err
			}
			files = append(files, f)
		}
		return root, files, ignores, nil
	}

	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if ignored(rel, ignores) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		f, err := inspect(root, realRoot, rel, ser.AllowSymlinks)
		if err != nil {
			return err
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return "", nil, nil, err
	}
	return root, files, ignores, nil
}

// inspect checks one entry of the model and says where to read its content.
func inspect(root, realRoot, rel string, allowSymlinks bool) (file, error) {
	p := filepath.Join(root, filepath.FromSlash(rel))
	fi, err := os.Lstat(p)
	if err != nil {
		return file{}, err
	}
	target := p
	if fi.Mode()&fs.ModeSymlink != 0 {
		if !allowSymlinks {
			return file{}, fmt.Errorf("%w: %s", ErrSymlink, rel)
		}
		if target, err = filepath.EvalSymlinks(p); err != nil {
			return file{}, fmt.Errorf("%w: %s: %v", ErrSymlink, rel, err)
		}
		if !within(realRoot, target) {
			return file{}, fmt.Errorf("%w: %s points outside the model root, to %s", ErrSymlink, rel, target)
		}
		if fi, err = os.Stat(target); err != nil {
			return file{}, err
		}
		if fi.IsDir() {
			// Python skips the contents of a linked directory, which would leave files in the
			// model that no signature covers; refuse instead.
			return file{}, fmt.Errorf("%w: %s links to a directory", ErrSymlink, rel)
		}
	}
	if !fi.Mode().IsRegular() {
		return file{}, fmt.Errorf("%w: %s (%s)", ErrFileType, rel, fi.Mode().Type())
	}
	return file{name: rel, path: target, size: fi.Size(), info: fi}, nil
}

// within reports whether path lies inside (or is) dir; both must be resolved and clean.
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// ignoreList is every path to leave out, relative to the root, sorted: the git paths, the
// signature file and the caller's paths. It is recorded in the manifest as model_signing does.
func ignoreList(root string, opts Options) []string {
	set := map[string]bool{}
	if !opts.IncludeGitPaths {
		for _, p := range GitPaths {
			set[p] = true
		}
	}
	sig := opts.SignatureFile
	if sig == "" {
		sig = DefaultSignatureFile
	}
	for _, p := range append([]string{sig}, opts.IgnorePaths...) {
		if filepath.IsAbs(p) {
			abs, err := filepath.Abs(root)
			if err != nil {
				continue
			}
			rel, err := filepath.Rel(abs, p)
			if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				continue // outside the model: nothing there to ignore
			}
			p = rel
		}
		p = filepath.ToSlash(filepath.Clean(p))
		if p == "." || p == ".." || strings.HasPrefix(p, "../") {
			continue
		}
		set[p] = true
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// ignored reports whether rel is, or lies under, one of the ignore paths.
func ignored(rel string, ignores []string) bool {
	for _, p := range ignores {
		if rel == p || strings.HasPrefix(rel, p+"/") {
			return true
		}
	}
	return false
}
