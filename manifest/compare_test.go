package manifest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// sparseFile makes a file of size bytes that takes no disk space, or skips the test where the
// file system cannot.
func sparseFile(t testing.TB, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Skipf("no sparse file of %d bytes here: %v", size, err)
	}
}

// boundedProgress is a CheckOptions.Progress that records the most bytes CheckDir set out to
// read and cancels the check as soon as that passes limit, so that code which reads what it
// should not fails at once instead of hashing a terabyte.
func boundedProgress(ctx context.Context, limit int64) (context.Context, func(done, total int64), func() int64) {
	ctx, cancel := context.WithCancelCause(ctx)
	var most int64 // calls are serialised by the hasher
	return ctx, func(done, total int64) {
			most = max(most, done, total)
			if most > limit {
				cancel(fmt.Errorf("CheckDir set out to read %d bytes, over the %d it may", most, limit))
			}
		}, func() int64 {
			cancel(nil)
			return most
		}
}

func TestCheckDirRefusesWhatTheSignatureDoesNotCoverWithoutReadingIt(t *testing.T) {
	const tiB = int64(1) << 40
	weights := strings.Repeat("w", 4096)
	for _, method := range []string{MethodFiles, MethodShards} {
		t.Run(method, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"config.json": "{}", "model.bin": weights})
			ctx := context.Background()
			signed, err := FromDir(ctx, dir, Options{Method: method, ShardSize: 1024})
			must(t, err)
			sparseFile(t, filepath.Join(dir, "huge.bin"), tiB)

			cctx, progress, most := boundedProgress(ctx, 2+4096)
			actual, err := CheckDir(cctx, dir, signed, CheckOptions{Progress: progress})
			var d *Diff
			if !errors.As(err, &d) || !slices.Equal(d.Extra, []string{"huge.bin"}) || len(d.Missing)+len(d.Mismatched) != 0 {
				t.Fatalf("got %v, want huge.bin reported as extra, and nothing else", err)
			}
			if n := most(); n > 2+4096 {
				t.Fatalf("CheckDir set out to read %d bytes: the unsigned file was read", n)
			}
			if got := actual.Files(); !slices.Equal(got, []string{"config.json", "model.bin"}) {
				t.Errorf("the returned manifest holds %v, want only the signed files", got)
			}
			// IgnoreUnsigned does not even look at it.
			if _, err := CheckDir(ctx, dir, signed, CheckOptions{IgnoreUnsigned: true}); err != nil {
				t.Errorf("IgnoreUnsigned: %v", err)
			}
		})
	}
}

func TestCheckDirComparesShardedSizesBeforeReading(t *testing.T) {
	const tiB = int64(1) << 40
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"config.json": "{}", "model.bin": strings.Repeat("w", 4096)})
	ctx := context.Background()
	signed, err := FromDir(ctx, dir, Options{Method: MethodShards, ShardSize: 1000})
	must(t, err)
	must(t, os.Remove(filepath.Join(dir, "model.bin")))
	sparseFile(t, filepath.Join(dir, "model.bin"), tiB)

	cctx, progress, most := boundedProgress(ctx, 2)
	_, err = CheckDir(cctx, dir, signed, CheckOptions{Progress: progress})
	var d *Diff
	if !errors.As(err, &d) || len(d.Mismatched) != 1 || len(d.Missing)+len(d.Extra) != 0 {
		t.Fatalf("got %v, want one size mismatch and nothing else", err)
	}
	want := Mismatch{Name: "model.bin", Expected: "4096 bytes", Actual: fmt.Sprintf("%d bytes", tiB)}
	if d.Mismatched[0] != want {
		t.Errorf("mismatch %+v, want %+v", d.Mismatched[0], want)
	}
	if n := most(); n > 2 {
		t.Fatalf("CheckDir set out to read %d bytes: the resized file was read", n)
	}
	if !strings.Contains(err.Error(), `digest mismatch for "model.bin": expected 4096 bytes`) {
		t.Errorf("message: %v", err)
	}

	// A file of the right size with other content is hashed and found changed, shard by shard.
	must(t, os.Remove(filepath.Join(dir, "model.bin")))
	writeFiles(t, dir, map[string]string{"model.bin": strings.Repeat("w", 4095) + "x"})
	_, err = CheckDir(ctx, dir, signed, CheckOptions{})
	if !errors.As(err, &d) || len(d.Mismatched) != 1 || d.Mismatched[0].Name != "model.bin:4000:4096" {
		t.Fatalf("got %v, want the last shard changed", err)
	}
}

func TestInspectSeesEveryHashedFileOnceOnTheHandleThatIsHashed(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"config.json": "{}", "w/model.bin": strings.Repeat("w", 100_000), "empty": ""}
	writeFiles(t, dir, files)
	ctx := context.Background()
	signed, err := FromDir(ctx, dir, Options{})
	must(t, err)
	seen := map[string]string{}
	var mu sync.Mutex
	inspect := func(_ context.Context, name string, f *os.File, r io.ReaderAt) error {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		b := make([]byte, fi.Size())
		if _, err := r.ReadAt(b, 0); err != nil && len(b) > 0 {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if _, dup := seen[name]; dup {
			t.Errorf("%s inspected twice", name)
		}
		seen[name] = string(b)
		return nil
	}
	if _, err := CheckDir(ctx, dir, signed, CheckOptions{Inspect: inspect}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(files) {
		t.Fatalf("inspected %d files, want %d", len(seen), len(files))
	}
	for name, content := range files {
		if seen[name] != content {
			t.Errorf("%s: inspected content differs", name)
		}
	}
	// An error from Inspect stops the check and comes back as it is.
	stop := errors.New("stop")
	_, err = CheckDir(ctx, dir, signed, CheckOptions{Inspect: func(context.Context, string, *os.File, io.ReaderAt) error { return stop }})
	if !errors.Is(err, stop) {
		t.Fatalf("got %v, want Inspect's error", err)
	}
	// Shards are hashed piece by piece: no file is inspected whole.
	sharded, err := FromDir(ctx, dir, Options{Method: MethodShards, ShardSize: 1000, Inspect: func(context.Context, string, *os.File, io.ReaderAt) error { return stop }})
	if err != nil || len(sharded.Resources) == 0 {
		t.Fatalf("shards with Inspect: %v", err)
	}
}
