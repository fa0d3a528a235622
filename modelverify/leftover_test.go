package modelverify_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// A pull killed while it linked the snapshot left config.json.{hex}.tmp in it (issue 10,
// item 15); every later pull was refused as unexpected-file. The gate's own leftovers are
// recognised and removed, with or without a verification record to reuse.
func TestLeftoverLinkOfAKilledPullDoesNotRefuseTheModel(t *testing.T) {
	for _, withRecord := range []bool{true, false} {
		g := newGate(t)
		g.serve("acme/tiny", sign(t, baseModel(), g.key))
		v := g.verifier()
		ctx := context.Background()
		m, err := v.Verify(ctx, "hf://acme/tiny@main")
		if err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(m.Dir(), "config.json.1a2b3c4d.tmp")
		target, err := os.Readlink(filepath.Join(m.Dir(), "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		if !withRecord {
			os.RemoveAll(filepath.Join(g.cacheDir, ".modelverify"))
		}
		if _, err := v.Verify(ctx, "hf://acme/tiny@main"); err != nil {
			t.Fatalf("record %v: %v", withRecord, err)
		}
		if _, err := os.Lstat(link); !os.IsNotExist(err) {
			t.Errorf("record %v: the leftover link is still there (%v)", withRecord, err)
		}
	}
}
