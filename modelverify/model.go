package modelverify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/echelongraph/go-modelverify/manifest"
)

// Model is a verified model. It is the only way to its files: Dir is the directory to load
// from, and Open opens one file after checking that it is still the file that was verified.
// A Model is safe for concurrent use.
type Model struct {
	dir      string
	files    []File
	byName   map[string]int
	manifest *manifest.Manifest
	evidence Evidence
}

// File is one verified file of a model.
type File struct {
	// Name is the file's path in the model, slash-separated.
	Name string
	// Size is its size in bytes.
	Size int64
	// SHA256 is the hex SHA-256 of its content.
	SHA256 string
	// Format is what the scanner found it to be ("safetensors", "unknown", ...).
	Format string
	// path is where the content was verified: the blob behind a snapshot's link, or the file
	// in a verified directory.
	path  string
	stamp fileStamp
}

// Dir is the directory the caller loads the model from: a snapshot in the Hugging Face cache,
// or the directory VerifyDir was given.
func (m *Model) Dir() string { return m.dir }

// Files lists the verified files, in manifest order.
func (m *Model) Files() []File { return slices.Clone(m.files) }

// Manifest is the manifest the files were verified against: the signed one, or for an unsigned
// publisher the one built from the Hub's digests.
func (m *Model) Manifest() *manifest.Manifest { return m.manifest }

// Evidence says what was verified, by whom and when.
func (m *Model) Evidence() Evidence { return m.evidence }

// Open opens a verified file for reading. It refuses a name that is not one of the model's
// files, and a file that changed on disk since it was verified (its inode, size, modification
// or change time differ); both refusals match ErrFileChanged or ErrUnexpectedFile.
func (m *Model) Open(name string) (*os.File, error) {
	i, ok := m.byName[name]
	if !ok {
		return nil, &Refusal{Ref: m.evidence.Ref, Commit: m.evidence.Commit, Problems: []Problem{{
			Reason: ErrUnexpectedFile, File: name, Detail: "not a verified file of this model"}}}
	}
	f := m.files[i]
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, &Refusal{Ref: m.evidence.Ref, Commit: m.evidence.Commit, Err: err, Problems: []Problem{{
			Reason: ErrFileChanged, File: name, Detail: "cannot open the verified file"}}}
	}
	st, err := stampOf(fh)
	if err == nil && st != f.stamp {
		err = fmt.Errorf("file metadata changed: %s, verified as %s", st, f.stamp)
	}
	if err != nil {
		fh.Close()
		return nil, &Refusal{Ref: m.evidence.Ref, Commit: m.evidence.Commit, Err: err, Problems: []Problem{{
			Reason: ErrFileChanged, File: name, Detail: err.Error()}}}
	}
	return fh, nil
}

// Recheck hashes every file again and compares it with the digest it was verified with. Open
// only compares file metadata, which catches every ordinary change; Recheck also catches a
// change that restored the metadata.
func (m *Model) Recheck(ctx context.Context) error {
	for _, f := range m.files {
		if err := ctx.Err(); err != nil {
			return err
		}
		fh, err := m.Open(f.Name)
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
			return &Refusal{Ref: m.evidence.Ref, Commit: m.evidence.Commit, Problems: []Problem{{
				Reason: ErrFileChanged, File: f.Name, Expected: "sha256:" + f.SHA256, Actual: "sha256:" + got}}}
		}
	}
	return nil
}

// Export copies the verified files into dir, hashing each as it is copied, so that what lands
// in dir is exactly what was verified. Files are written under a staging directory inside dir
// and moved into place only once every file has been copied and checked; a copy that fails
// leaves dir as it was. Every write goes through an os.Root for dir, so a symbolic link already
// in dir cannot lead a file outside it.
func (m *Model) Export(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	staging, err := os.MkdirTemp(dir, ".modelverify-export-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(staging)
	stagingName := filepath.Base(staging)
	for _, f := range m.files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := m.copyVerified(root, f, path.Join(stagingName, f.Name)); err != nil {
			return err
		}
	}
	for _, f := range m.files {
		if dirName := path.Dir(f.Name); dirName != "." {
			if err := root.MkdirAll(dirName, 0o755); err != nil {
				return err
			}
		}
		if err := root.Rename(path.Join(stagingName, f.Name), f.Name); err != nil {
			return fmt.Errorf("modelverify: export %s: %w", f.Name, err)
		}
	}
	return nil
}

func (m *Model) copyVerified(root *os.Root, f File, dst string) error {
	src, err := m.Open(f.Name)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := root.MkdirAll(path.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := root.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, h), src)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return &Refusal{Ref: m.evidence.Ref, Commit: m.evidence.Commit, Problems: []Problem{{
			Reason: ErrFileChanged, File: f.Name, Expected: "sha256:" + f.SHA256, Actual: "sha256:" + got,
			Detail: "while exporting"}}}
	}
	return nil
}

// fileStamp is what Open compares to notice that a file changed after it was verified.
type fileStamp struct {
	dev, ino     uint64
	size         int64
	mtime, ctime time.Time
}

func (s fileStamp) String() string {
	return fmt.Sprintf("inode %d, %d bytes, modified %s, changed %s", s.ino, s.size,
		s.mtime.Format(time.RFC3339Nano), s.ctime.Format(time.RFC3339Nano))
}

func stampOf(f *os.File) (fileStamp, error) {
	fi, err := f.Stat()
	if err != nil {
		return fileStamp{}, err
	}
	return stampFromInfo(fi)
}

func stampPath(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return stampFromInfo(fi)
}

func stampFromInfo(fi os.FileInfo) (fileStamp, error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileStamp{}, errors.New("file system gives no inode information")
	}
	return stampFromStat(st), nil
}
