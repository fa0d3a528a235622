package modelverify_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/echelongraph/go-modelverify/manifest"
)

// signedDir writes files into a new directory, signs it with a new key, and returns the
// directory and the public key.
func signedDir(t *testing.T, files map[string][]byte) (string, []byte) {
	t.Helper()
	dir := writeModel(t, files)
	return dir, signInPlace(t, dir)
}

// signInPlace signs the model in dir with a new key, writes model.sig there, and returns the
// public key.
func signInPlace(t testing.TB, dir string) []byte {
	t.Helper()
	key := newGateKey(t)
	signer, err := manifest.NewKeySigner(key.priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	bundle, _, err := manifest.SignDir(context.Background(), dir, manifest.Options{}, signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, manifest.DefaultSignatureFile), bundle, 0o644); err != nil {
		t.Fatal(err)
	}
	return key.pub
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestExportRemovesTheStagingAKilledExportLeftAndNothingElse(t *testing.T) {
	src, pub := signedDir(t, baseModel())
	m, err := dirVerifier(t, pub).VerifyDir(context.Background(), src, "acme/tiny")
	if err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	mk := func(name string) string {
		p := filepath.Join(dest, name)
		if err := os.MkdirAll(filepath.Join(p, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "sub", "model.safetensors"), []byte("half a copy"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// What a killed export leaves: its staging directory, no longer locked by anyone.
	mk(".modelverify-export-1234567")
	// A running export's staging directory: locked through another open file.
	running := mk(".modelverify-export-42")
	lock, err := os.Open(running)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	// Names that are not of Export's making, and a link that looks like one.
	mk(".modelverify-export-notdigits")
	mk(".modelverify-exporter-1")
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dest, ".modelverify-export-99")); err != nil {
		t.Fatal(err)
	}

	if err := m.Export(context.Background(), dest); err != nil {
		t.Fatal(err)
	}
	want := []string{".modelverify-export-42", ".modelverify-export-99", ".modelverify-export-notdigits",
		".modelverify-exporter-1", "config.json", "model.safetensors", "tokenizer.json"}
	if got := entries(t, dest); !slices.Equal(got, want) {
		t.Fatalf("destination holds %v, want %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(running, "sub", "model.safetensors")); err != nil {
		t.Errorf("a running export's staging was touched: %v", err)
	}
	// Once its export is gone, the next run clears it.
	lock.Close()
	if err := m.Export(context.Background(), dest); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, dest); slices.Contains(got, ".modelverify-export-42") {
		t.Errorf("the staging of a finished export was kept: %v", got)
	}
}

const exportHelperEnv = "MODELVERIFY_TEST_EXPORT_HELPER"

// TestExportHelperProcess is not a test: TestExportKilledMidwayIsClearedByTheNextRun runs the
// test binary again with this test selected, to export a model and be killed doing it.
func TestExportHelperProcess(t *testing.T) {
	spec := os.Getenv(exportHelperEnv)
	if spec == "" {
		t.Skip("helper process for TestExportKilledMidwayIsClearedByTheNextRun")
	}
	src, rest, _ := strings.Cut(spec, "|")
	pubPath, dest, _ := strings.Cut(rest, "|")
	pub, err := os.ReadFile(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dirVerifier(t, pub).VerifyDir(context.Background(), src, "acme/big")
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("exporting\n")
	if err := m.Export(context.Background(), dest); err != nil {
		t.Fatal(err)
	}
}

func TestExportKilledMidwayIsClearedByTheNextRun(t *testing.T) {
	if testing.Short() {
		t.Skip("writes hundreds of MiB")
	}
	src := writeModel(t, map[string][]byte{"config.json": []byte(`{"model_type":"big"}`)})
	var want []string
	for i := range 8 { // 8 × 32 MiB sparse files: reading is cheap, copying takes a while
		name := fmt.Sprintf("shard-%d.bin", i)
		sparseFile(t, filepath.Join(src, name), 32<<20)
		want = append(want, name)
	}
	want = append(want, "config.json")
	slices.Sort(want)
	pub := signInPlace(t, src)
	pubPath := filepath.Join(t.TempDir(), "key.pub")
	if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
		t.Fatal(err)
	}

	// Kill the export as soon as its staging directory shows. On a fast machine it may finish
	// first; then try again in a fresh destination.
	var dest string
	killed := false
	for attempt := 0; attempt < 5 && !killed; attempt++ {
		dest = t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestExportHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), exportHelperEnv+"="+src+"|"+pubPath+"|"+dest)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "exporting\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("helper process: %q %v", line, err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
	poll:
		for {
			select {
			case <-done:
				break poll // finished before it could be killed
			default:
			}
			if slices.ContainsFunc(entries(t, dest), isStaging) {
				cmd.Process.Kill() // SIGKILL: nothing of the export runs after it
				<-done
				killed = slices.ContainsFunc(entries(t, dest), isStaging)
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	if !killed {
		t.Skip("the export always finished before it could be killed")
	}
	m, err := dirVerifier(t, pub).VerifyDir(context.Background(), src, "acme/big")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Export(context.Background(), dest); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, dest); !slices.Equal(got, want) {
		t.Fatalf("after the next export the destination holds %v, want %v", got, want)
	}
}

func isStaging(name string) bool { return strings.HasPrefix(name, ".modelverify-export-") }

func TestConcurrentExportsIntoOneDestinationLeaveNeitherStagingBehind(t *testing.T) {
	src, pub := signedDir(t, baseModel())
	m, err := dirVerifier(t, pub).VerifyDir(context.Background(), src, "acme/tiny")
	if err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { errs[i] = m.Export(context.Background(), dest) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("export %d: %v", i, err)
		}
	}
	if got, want := entries(t, dest), []string{"config.json", "model.safetensors", "tokenizer.json"}; !slices.Equal(got, want) {
		t.Fatalf("destination holds %v, want %v", got, want)
	}
}
