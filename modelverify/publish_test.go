package modelverify_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/echelongraph/go-modelverify/modelverify"
)

// inode is the file system identity of path.
func inode(t *testing.T, path string) (uint64, uint64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return uint64(st.Dev), uint64(st.Ino)
}

// verifiedForLink verifies files served as acme/tiny and returns the model, the gate and a
// destination beside the cache: on the cache's file system, as a KServe volume holding both.
func verifiedForLink(t *testing.T, files map[string][]byte) (*modelverify.Model, *gate, string) {
	t.Helper()
	g := newGate(t)
	g.serve("acme/tiny", sign(t, files, g.key))
	m, err := g.verifier().Verify(context.Background(), "acme/tiny")
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(filepath.Dir(g.cacheDir), "dest-"+filepath.Base(g.cacheDir))
	t.Cleanup(func() { os.RemoveAll(dest) })
	return m, g, dest
}

func TestLinkPublishesTheVerifiedFilesWithoutCopyingThem(t *testing.T) {
	files := baseModel()
	files["tokenizer/vocab.txt"] = []byte("a b c")
	m, g, dest := verifiedForLink(t, files)
	if err := m.Link(context.Background(), dest); err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		p := filepath.Join(dest, filepath.FromSlash(name))
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %v", name, err)
		}
		blob, _ := filepath.EvalSymlinks(filepath.Join(m.Dir(), filepath.FromSlash(name)))
		if dev, ino := inode(t, p); true {
			bdev, bino := inode(t, blob)
			if dev != bdev || ino != bino {
				t.Errorf("%s is a copy, not a link to the verified blob", name)
			}
		}
	}
	var names []string
	entries, _ := os.ReadDir(dest)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 4 {
		t.Errorf("dest holds %v (staging left behind?)", names)
	}
	// A new link is a metadata change: the model says so rather than trusting the files.
	if _, err := m.Open("config.json"); !errors.Is(err, modelverify.ErrFileChanged) {
		t.Errorf("Open after Link: %v, want file-changed", err)
	}
	// With the cache removed, the links are the model.
	os.RemoveAll(g.cacheDir)
	for name, want := range files {
		if got, err := os.ReadFile(filepath.Join(dest, filepath.FromSlash(name))); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s once the cache is gone: %v", name, err)
		}
	}
}

func TestLinkRefusesAFileChangedSinceVerificationAndLeavesDestAsItWas(t *testing.T) {
	m, _, dest := verifiedForLink(t, baseModel())
	blob, _ := filepath.EvalSymlinks(filepath.Join(m.Dir(), "model.safetensors"))
	os.Chmod(blob, 0o644)
	if err := os.WriteFile(blob, safetensorsFile(64, 9), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Link(context.Background(), dest); !errors.Is(err, modelverify.ErrFileChanged) {
		t.Fatalf("Link of a changed file: %v", err)
	}
	if entries, _ := os.ReadDir(dest); len(entries) != 0 {
		t.Fatalf("a refused link left %d entries in dest", len(entries))
	}
}

func TestLinkWritesOnlyInsideTheDestination(t *testing.T) {
	files := baseModel()
	files["tokenizer/vocab.txt"] = []byte("a b c")
	m, _, dest := verifiedForLink(t, files)
	outside := t.TempDir()
	os.MkdirAll(dest, 0o755)
	if err := os.Symlink(outside, filepath.Join(dest, "tokenizer")); err != nil {
		t.Fatal(err)
	}
	if err := m.Link(context.Background(), dest); err == nil {
		t.Fatal("linked through a symbolic link out of the destination")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("files linked outside the destination: %v", entries)
	}
	if entries, _ := os.ReadDir(dest); len(entries) != 1 {
		t.Fatalf("a failed link left %d entries in dest, want only the planted link", len(entries))
	}
}

func TestLinkAcrossFileSystemsFailsWithEXDEVAndLinksNothing(t *testing.T) {
	m, g, _ := verifiedForLink(t, baseModel())
	dest, err := os.MkdirTemp("/dev/shm", "modelverify-link-")
	if err != nil {
		t.Skip("no second file system to link across:", err)
	}
	t.Cleanup(func() { os.RemoveAll(dest) })
	if d1, _ := inode(t, dest); true {
		if d2, _ := inode(t, g.cacheDir); d1 == d2 {
			t.Skip("/dev/shm is on the cache's file system")
		}
	}
	if err := m.Link(context.Background(), dest); !errors.Is(err, syscall.EXDEV) {
		t.Fatalf("Link across file systems: %v, want EXDEV", err)
	}
	if entries, _ := os.ReadDir(dest); len(entries) != 0 {
		t.Fatalf("a failed link left %d entries in dest", len(entries))
	}
	// Nothing was linked, so the model is untouched and Export still copies it.
	if err := m.Export(context.Background(), dest); err != nil {
		t.Fatalf("Export after a cross-device Link: %v", err)
	}
}
