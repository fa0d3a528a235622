package modelverify_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/hub"
)

// A kill -9 while a record is written leaves .tmp-* in <cache>/.modelverify/<repo>/, and one
// during the index check leaves a .modelverify-index-* folder in the cache. The next
// verification removes those that are old enough to be nobody's, and only those: a young one
// may be a concurrent verification's, and a name not of the gate's pattern is not the gate's.
func TestStaleLeftoversOfAKilledVerificationAreRemoved(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", sign(t, baseModel(), g.key))
	v := g.verifier()
	ctx := context.Background()
	if _, err := v.Verify(ctx, "hf://acme/tiny@main"); err != nil {
		t.Fatal(err)
	}
	records := filepath.Join(g.cacheDir, ".modelverify", hub.RepoFolderName("acme/tiny"))
	old := time.Now().Add(-2 * time.Hour)
	plant := func(path string, dir bool, mtime time.Time) string {
		t.Helper()
		if dir {
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(path, "model.safetensors"), []byte("link"), 0o644); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(path, []byte(`{"half":`), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return path
	}
	gone := []string{
		plant(filepath.Join(records, ".tmp-1234567"), false, old),
		plant(filepath.Join(g.cacheDir, ".modelverify-index-7654321"), true, old),
	}
	kept := []string{
		plant(filepath.Join(records, ".tmp-in-use"), false, time.Now()),
		plant(filepath.Join(g.cacheDir, ".modelverify-index-in-use"), true, time.Now()),
		plant(filepath.Join(records, "notes.txt"), false, old),
		plant(filepath.Join(g.cacheDir, ".modelverify-other"), true, old),
	}
	if _, err := v.Verify(ctx, "hf://acme/tiny@main"); err != nil {
		t.Fatal(err)
	}
	for _, p := range gone {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("the stale leftover %s is still there (%v)", p, err)
		}
	}
	for _, p := range kept {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s, not a stale leftover of the gate, was removed (%v)", p, err)
		}
	}
}
