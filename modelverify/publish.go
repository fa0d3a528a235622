package modelverify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"

	"golang.org/x/sync/errgroup"
)

// Link puts the verified files into dir as hard links to the files that were verified. Unlike
// Export it writes no data, so a directory on
// the same file system as the cache (a KServe volume that holds the staging cache and the
// model) needs room for the model once, not twice; when the cache is then removed, dir's links
// are the only names the files have left.
//
// What lands in dir is exactly what was verified: each file is linked only if it is still the
// file that was verified (as Open checks), the link must be that same file (device, inode,
// size and modification time), and its content is hashed again and compared with the verified
// digest. The links are made under a staging directory inside dir and moved into place only
// once every one has passed, so a failure leaves dir as it was; a file that changed is refused
// with ErrFileChanged. Every move into place goes through an os.Root for dir, so a symbolic
// link already in dir cannot lead a file outside it.
//
// dir must be on the same file system as the model's files: otherwise nothing is linked and
// the error matches syscall.EXDEV (errors.Is), and Export is the way to copy the model.
//
// A link shares the file with the cache: a write to one is a write to the other. A new or
// removed link changes the file's change time, which Open compares, so after Link m's Open and
// Recheck refuse the linked files (ErrFileChanged), and the next Verify of the model hashes
// them again. Link is for handing a model over to a loader that reads dir, or Verifier.VerifyDir
// gives a Model for it.
func (m *Model) Link(ctx context.Context, dir string) error {
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
	staged := func(f File) string { return path.Join(stagingName, f.Name) }

	for _, f := range m.files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := m.linkVerified(root, f, staging, staged(f)); err != nil {
			return err
		}
	}
	// Hashing reads the bytes once more but writes none; files are hashed in parallel, as
	// the verification hashed them.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for _, f := range m.files {
		g.Go(func() error { return m.hashLinked(gctx, root, f, staged(f)) })
	}
	if err := g.Wait(); err != nil {
		return err
	}

	var placed []string
	undo := func() {
		for _, name := range placed {
			root.Remove(name)
		}
	}
	for _, f := range m.files {
		if dirName := path.Dir(f.Name); dirName != "." {
			if err := root.MkdirAll(dirName, 0o755); err != nil {
				undo()
				return err
			}
		}
		if err := root.Rename(staged(f), f.Name); err != nil {
			undo()
			return fmt.Errorf("modelverify: link %s: %w", f.Name, err)
		}
		placed = append(placed, f.Name)
		// The move changes the link's change time, not what it is: still the verified file.
		st, err := rootStamp(root, f.Name)
		if err == nil && !sameFile(st, f.stamp) {
			err = fmt.Errorf("file changed while it was linked: %s, verified as %s", st, f.stamp)
		}
		if err != nil {
			undo()
			return m.changed(f, err)
		}
	}
	return nil
}

// linkVerified links f's verified file to dst (a path relative to root, under staging).
func (m *Model) linkVerified(root *os.Root, f File, staging, dst string) error {
	src, err := m.Open(f.Name) // refuses a file that changed since it was verified
	if err != nil {
		return err
	}
	src.Close()
	if err := root.MkdirAll(path.Dir(dst), 0o755); err != nil {
		return err
	}
	// The staging directory is this call's own (mode 0700), so the link's path cannot be
	// redirected; only its final move into dir needs the os.Root.
	target := filepath.Join(filepath.Dir(staging), filepath.FromSlash(dst))
	if err := os.Link(f.path, target); err != nil {
		return fmt.Errorf("modelverify: link %s: %w", f.Name, err)
	}
	st, err := rootStamp(root, dst)
	if err == nil && !sameFile(st, f.stamp) {
		err = fmt.Errorf("file replaced while it was linked: %s, verified as %s", st, f.stamp)
	}
	if err != nil {
		return m.changed(f, err)
	}
	return nil
}

// hashLinked hashes the link at dst and compares it with f's verified digest.
func (m *Model) hashLinked(ctx context.Context, root *os.Root, f File, dst string) error {
	fh, err := root.Open(dst)
	if err != nil {
		return err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, readerWithContext{ctx, fh}); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return &Refusal{Ref: m.evidence.Ref, Commit: m.evidence.Commit, Problems: []Problem{{
			Reason: ErrFileChanged, File: f.Name, Expected: "sha256:" + f.SHA256, Actual: "sha256:" + got,
			Detail: "while linking"}}}
	}
	return nil
}

func (m *Model) changed(f File, err error) *Refusal {
	return &Refusal{Ref: m.evidence.Ref, Commit: m.evidence.Commit, Err: err, Problems: []Problem{{
		Reason: ErrFileChanged, File: f.Name, Detail: err.Error()}}}
}

// rootStamp is the stamp of name inside root, without following a final symbolic link: a
// link there is not the regular file that was verified.
func rootStamp(root *os.Root, name string) (fileStamp, error) {
	fi, err := root.Lstat(name)
	if err != nil {
		return fileStamp{}, err
	}
	if !fi.Mode().IsRegular() {
		return fileStamp{}, fmt.Errorf("%s is not a regular file (%s)", name, fi.Mode().Type())
	}
	return stampFromInfo(fi)
}

// sameFile reports whether two stamps are the same file with the same content as far as the
// metadata tells: a new link to a file changes its change time, and nothing else.
func sameFile(a, b fileStamp) bool {
	return a.dev == b.dev && a.ino == b.ino && a.size == b.size && a.mtime.Equal(b.mtime)
}

// readerWithContext stops a long read when its context ends.
type readerWithContext struct {
	ctx context.Context
	r   io.Reader
}

func (r readerWithContext) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
