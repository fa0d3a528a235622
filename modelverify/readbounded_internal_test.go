package modelverify

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadBoundedReadsARegularFileWithinItsLimitOnly(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "model.sig")
	want := bytes.Repeat([]byte("x"), 1000)
	if err := os.WriteFile(file, want, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := readBounded(file, 1000); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("readBounded at the limit: %d bytes, %v", len(got), err)
	}
	if _, err := readBounded(file, 999); err == nil || !strings.Contains(err.Error(), "the limit is 999") {
		t.Fatalf("readBounded over the limit: %v", err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if _, err := readBounded(fifo, 1000); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("readBounded of a FIFO: %v", err)
	}
	if _, err := readBounded(dir, 1000); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("readBounded of a directory: %v", err)
	}
}
