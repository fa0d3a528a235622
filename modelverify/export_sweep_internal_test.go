package modelverify

import (
	"os"
	"path/filepath"
	"testing"
)

// A staging directory that its export removes between the sweep's listing and the sweep's look
// at it is gone, not a failure: concurrent exports into one destination must all succeed.
func TestSweepSkipsAStagingDirectoryRemovedSinceTheListing(t *testing.T) {
	dest := t.TempDir()
	finished := filepath.Join(dest, exportStagingPrefix+"123")
	leftover := filepath.Join(dest, exportStagingPrefix+"456")
	for _, d := range []string{finished, leftover} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	sweepListed = func() { os.Remove(finished) }
	defer func() { sweepListed = nil }()

	root, err := os.OpenRoot(dest)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	dir, err := root.Open(".")
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	if err := sweepExportStaging(root, dir); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("the leftover is still there: %v", err)
	}
}
