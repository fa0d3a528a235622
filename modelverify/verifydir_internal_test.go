package modelverify

import (
	"os"
	"path/filepath"
	"testing"
)

// The inspector's stamp of an open file is the stamp Open compares with.
func TestFstampIsStampOf(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := fstamp(f)
	if err != nil {
		t.Fatal(err)
	}
	want, err := stampOf(f)
	if err != nil || got != want || got.size != 7 {
		t.Fatalf("fstamp %v, stampOf %v (%v)", got, want, err)
	}
	f.Close()
	if _, err := fstamp(f); err == nil {
		t.Fatal("fstamp of a closed file gave no error")
	}
}
