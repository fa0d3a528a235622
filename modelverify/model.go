package modelverify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
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
//
// The staging directory (".modelverify-export-" and digits) is locked with flock(2) for as long
// as the export runs. One that an export killed on its way left behind is removed by the next
// Export into dir; one that a running export holds, in this process or another, is left alone.
func (m *Model) Export(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	staging, err := newExportStaging(root)
	if err != nil {
		return fmt.Errorf("modelverify: export to %s: %w", dir, err)
	}
	defer staging.remove(root)
	for _, f := range m.files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := m.copyVerified(root, f, path.Join(staging.name, f.Name)); err != nil {
			return err
		}
	}
	for _, f := range m.files {
		if dirName := path.Dir(f.Name); dirName != "." {
			if err := root.MkdirAll(dirName, 0o755); err != nil {
				return err
			}
		}
		if err := root.Rename(path.Join(staging.name, f.Name), f.Name); err != nil {
			return fmt.Errorf("modelverify: export %s: %w", f.Name, err)
		}
	}
	return nil
}

// exportStagingPrefix begins the name of every staging directory Export makes; digits follow.
const exportStagingPrefix = ".modelverify-export-"

// exportStaging is a staging directory inside the destination, and the open handle whose
// flock(2) marks it as in use. The kernel drops the lock when the process dies, however it dies,
// which is how a leftover is told from the staging of an export still running.
type exportStaging struct {
	name string
	lock *os.File
}

// newExportStaging removes the staging directories that exports killed on their way left in
// root, then makes and locks a new one. Both happen under a lock on root itself, so that a
// sweep never sees a staging directory in the moment between its making and its locking.
func newExportStaging(root *os.Root) (*exportStaging, error) {
	destLock, err := root.OpenFile(".", os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer destLock.Close() // and with it the lock
	if err := flock(destLock, syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("locking the destination: %w", err)
	}
	if err := sweepExportStaging(root, destLock); err != nil {
		return nil, err
	}
	for range 100 {
		name := exportStagingPrefix + strconv.FormatUint(uint64(rand.Uint32()), 10)
		if err := root.Mkdir(name, 0o700); errors.Is(err, fs.ErrExist) {
			continue
		} else if err != nil {
			return nil, err
		}
		lock, err := lockStagingDir(root, name)
		if err != nil {
			root.RemoveAll(name)
			return nil, err
		}
		return &exportStaging{name: name, lock: lock}, nil
	}
	return nil, errors.New("no free name for a staging directory")
}

// sweepListed, when set (by tests), runs between the sweep's listing and its first look at an
// entry: where a concurrent export removes its own staging directory.
var sweepListed func()

// sweepExportStaging removes every staging directory in the destination that no export holds.
// Only names of Export's own making are touched, and only real directories, not links.
func sweepExportStaging(root *os.Root, dest *os.File) error {
	entries, err := dest.ReadDir(-1)
	if err != nil {
		return fmt.Errorf("listing the destination: %w", err)
	}
	if sweepListed != nil {
		sweepListed()
	}
	for _, e := range entries {
		if !e.IsDir() || !isExportStagingName(e.Name()) {
			continue
		}
		lock, err := lockStagingDir(root, e.Name())
		if errors.Is(err, syscall.EWOULDBLOCK) {
			continue // a running export's
		}
		if errors.Is(err, fs.ErrNotExist) {
			continue // gone since the listing: an export that finished removed its own
		}
		if err != nil {
			return fmt.Errorf("checking the leftover %s: %w", e.Name(), err)
		}
		err = root.RemoveAll(e.Name())
		lock.Close()
		if err != nil {
			return fmt.Errorf("removing the leftover %s: %w", e.Name(), err)
		}
	}
	return nil
}

// lockStagingDir opens a staging directory, never through a link, and takes its lock without
// waiting: EWOULDBLOCK means an export holds it.
func lockStagingDir(root *os.Root, name string) (*os.File, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func isExportStagingName(name string) bool {
	digits, ok := strings.CutPrefix(name, exportStagingPrefix)
	if !ok || digits == "" {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// remove deletes the staging directory, and only then lets go of its lock: should the removal
// fail, the next export finds it unlocked and removes it.
func (s *exportStaging) remove(root *os.Root) {
	root.RemoveAll(s.name)
	s.lock.Close()
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
