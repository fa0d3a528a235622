package hubtest

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// LFSThreshold is the size above which a file is stored in LFS whatever its name, as the Hub's
// upload tools do.
const LFSThreshold = 10 << 20

// lfsSuffixes are the usual LFS patterns of a model repo's .gitattributes.
var lfsSuffixes = []string{".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".onnx", ".msgpack",
	".h5", ".npy", ".npz", ".pkl", ".pickle", ".zip"}

// IsLFS reports whether a file with this path and size is stored in LFS: it matches one of the
// usual patterns (*.safetensors, *.bin, *.pt, *.pth, *.ckpt, *.gguf, *.onnx, *.msgpack, *.h5,
// *.npy, *.npz, *.pkl, *.pickle, *.zip) or is larger than LFSThreshold.
func IsLFS(p string, size int64) bool {
	if size > LFSThreshold {
		return true
	}
	base := strings.ToLower(path.Base(p))
	for _, s := range lfsSuffixes {
		if strings.HasSuffix(base, s) {
			return true
		}
	}
	return false
}

// file is one file of a commit, held in memory or read from disk on demand.
type file struct {
	path    string
	size    int64
	sha256  string // hex of the content
	oid     string // git blob id: of the content, or of the LFS pointer
	lfs     bool
	pointer []byte
	data    []byte // in memory, or nil
	disk    string // on disk, when data is nil
}

func (f *file) open() (io.ReaderAt, func(), error) {
	if f.disk == "" {
		return bytes.NewReader(f.data), func() {}, nil
	}
	fh, err := os.Open(f.disk)
	if err != nil {
		return nil, nil, err
	}
	return fh, func() { fh.Close() }, nil
}

func gitBlobID(r io.Reader, size int64) (string, error) {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", size)
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// newFile describes content read from r (size bytes), hashing it once.
func newFile(p string, r io.Reader, size int64) (*file, error) {
	f := &file{path: p, size: size, lfs: IsLFS(p, size)}
	sh, gh := sha256.New(), sha1.New()
	fmt.Fprintf(gh, "blob %d\x00", size)
	n, err := io.Copy(io.MultiWriter(sh, gh), r)
	if err != nil {
		return nil, fmt.Errorf("hubtest: hashing %s: %w", p, err)
	}
	if n != size {
		return nil, fmt.Errorf("hubtest: %s changed size while being read", p)
	}
	f.sha256 = hex.EncodeToString(sh.Sum(nil))
	f.oid = hex.EncodeToString(gh.Sum(nil))
	if f.lfs {
		f.pointer = fmt.Appendf(nil, "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n", f.sha256, size)
		f.oid, _ = gitBlobID(bytes.NewReader(f.pointer), int64(len(f.pointer)))
	}
	return f, nil
}

func memFile(p string, data []byte) (*file, error) {
	f, err := newFile(p, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	f.data = data
	return f, nil
}

func diskFile(p, disk string) (*file, error) {
	fh, err := os.Open(disk)
	if err != nil {
		return nil, fmt.Errorf("hubtest: %w", err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("hubtest: %w", err)
	}
	f, err := newFile(p, fh, fi.Size())
	if err != nil {
		return nil, err
	}
	f.disk = disk
	return f, nil
}

// commit is one commit: a full snapshot of the repo's files.
type commit struct {
	sha    string
	parent string
	title  string
	date   time.Time
	files  map[string]*file
	paths  []string // sorted
}

// newCommit derives the commit id from the parent and the files' paths and blob ids, so the
// same files on the same parent always give the same commit.
func newCommit(parent, title string, date time.Time, files map[string]*file) *commit {
	c := &commit{parent: parent, title: title, date: date, files: files}
	for p := range files {
		c.paths = append(c.paths, p)
	}
	sort.Strings(c.paths)
	h := sha1.New()
	fmt.Fprintf(h, "hubtest commit\nparent %s\n", parent)
	for _, p := range c.paths {
		fmt.Fprintf(h, "%s %s\n", files[p].oid, p)
	}
	c.sha = hex.EncodeToString(h.Sum(nil))
	return c
}

// repo is one model repository.
type repo struct {
	id        string
	private   bool
	gated     string
	disabled  bool
	access    map[string]bool
	branches  map[string]string
	tags      map[string]string
	prs       map[int]string
	commits   map[string]*commit
	createdAt time.Time
	// renamedFrom are old ids that redirect here.
	renamedFrom []string
}

func (r *repo) resolve(rev string) (*commit, bool) {
	if rev == "HEAD" {
		rev = "main"
	}
	sha, ok := r.branches[rev]
	if !ok {
		sha, ok = r.tags[rev]
	}
	if !ok {
		if n, found := strings.CutPrefix(rev, "refs/pr/"); found {
			if i, err := strconv.Atoi(n); err == nil {
				sha, ok = r.prs[i]
			}
		}
	}
	if !ok {
		sha = rev
	}
	c, ok := r.commits[sha]
	return c, ok
}

func (r *repo) add(c *commit) { r.commits[c.sha] = c }

// readTree loads every regular file under dir (skipping .git) as repo files.
func readTree(dir string) (map[string]*file, error) {
	files := map[string]*file{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // symlinks and devices are not repo content
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		f, err := diskFile(rel, p)
		if err != nil {
			return err
		}
		files[rel] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hubtest: reading %s: %w", dir, err)
	}
	return files, nil
}
