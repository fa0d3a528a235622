package modelverify_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/echelongraph/go-modelverify/hub"
	"github.com/echelongraph/go-modelverify/manifest"
	"github.com/echelongraph/go-modelverify/modelverify"
)

// hashWatch records how many bytes VerifyDir set out to hash (its "check" progress), and
// cancels the verification as soon as that passes limit, so that code which reads what it
// should not fails at once instead of hashing a terabyte.
type hashWatch struct {
	mu     sync.Mutex
	limit  int64
	most   int64
	events int
	cancel context.CancelCauseFunc
}

func (w *hashWatch) progress(p modelverify.Progress) {
	if p.Step != "check" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events++
	w.most = max(w.most, p.Bytes, p.Size)
	if w.most > w.limit {
		w.cancel(fmt.Errorf("VerifyDir set out to hash %d bytes, over the %d it may", w.most, w.limit))
	}
}

// watchedVerifier is a Verifier for g's last policy whose hashing w watches.
func watchedVerifier(t *testing.T, g *gate, limit int64) (*modelverify.Verifier, *hashWatch, context.Context) {
	t.Helper()
	ctx, cancel := context.WithCancelCause(context.Background())
	t.Cleanup(func() { cancel(nil) })
	w := &hashWatch{limit: limit, cancel: cancel}
	v, err := modelverify.NewVerifier(g.policy, modelverify.WithEndpoint(g.hub.URL), modelverify.WithCacheDir(g.cacheDir),
		modelverify.WithHubOptions(hub.WithToken("")), modelverify.WithProgress(w.progress))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v, w, ctx
}

// sparseFile makes a file of size bytes that takes no disk space, or skips the test where the
// file system cannot.
func sparseFile(t *testing.T, path string, size int64) {
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

func modelBytes(files map[string][]byte) int64 {
	var n int64
	for name, b := range files {
		if name != "model.sig" {
			n += int64(len(b))
		}
	}
	return n
}

func firstProblem(t *testing.T, err error) modelverify.Problem {
	t.Helper()
	var r *modelverify.Refusal
	if !errors.As(err, &r) || len(r.Problems) == 0 {
		t.Fatalf("got %v, want a refusal", err)
	}
	return r.Problems[0]
}

func TestVerifyDirAppliesTheContentLimitsBeforeHashing(t *testing.T) {
	weights := int64(len(baseModel()["model.safetensors"]))
	total := modelBytes(baseModel())
	cases := []struct {
		name    string
		content map[string]any
		want    modelverify.Problem
	}{
		{"maxFiles", map[string]any{"maxFiles": 2},
			modelverify.Problem{Reason: modelverify.ErrLimitExceeded, Expected: "at most 2 files", Actual: "3 files"}},
		{"maxFileSize", map[string]any{"maxFileSize": "100B"},
			modelverify.Problem{Reason: modelverify.ErrLimitExceeded, File: "model.safetensors", Expected: "at most 100",
				Actual: modelverify.ByteSize(weights).String()}},
		{"maxTotalSize", map[string]any{"maxTotalSize": fmt.Sprint(total - 1)},
			modelverify.Problem{Reason: modelverify.ErrLimitExceeded, Expected: "at most " + modelverify.ByteSize(total-1).String() + " in all",
				Actual: modelverify.ByteSize(total).String()}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newGate(t)
			g.serve("acme/tiny", baseModel())
			dir := writeModel(t, sign(t, baseModel(), g.key))
			g.verifier(func(p map[string]any) { p["content"] = c.content })
			v, w, ctx := watchedVerifier(t, g, 0)
			_, err := v.VerifyDir(ctx, dir, "acme/tiny")
			if !errors.Is(err, modelverify.ErrLimitExceeded) {
				t.Fatalf("got %v, want ErrLimitExceeded", err)
			}
			if got := firstProblem(t, err); got != c.want {
				t.Errorf("problem %+v, want %+v", got, c.want)
			}
			if w.events != 0 {
				t.Errorf("VerifyDir hashed before refusing (%d progress reports, up to %d bytes)", w.events, w.most)
			}
			g.assertRefusedRecord(modelverify.ErrLimitExceeded)
		})
	}
}

func TestVerifyDirRefusesUnsignedAndResizedFilesWithoutReadingThem(t *testing.T) {
	const tiB = int64(1) << 40
	model := baseModel()
	signedBytes := modelBytes(model)

	t.Run("an unsigned 1 TiB file is refused before anything is hashed", func(t *testing.T) {
		g := newGate(t)
		g.serve("acme/tiny", model)
		dir := writeModel(t, sign(t, model, g.key))
		sparseFile(t, filepath.Join(dir, "huge.bin"), tiB)
		g.verifier()
		v, w, ctx := watchedVerifier(t, g, 0)
		_, err := v.VerifyDir(ctx, dir, "acme/tiny")
		if p := firstProblem(t, err); p.Reason != modelverify.ErrUnexpectedFile || p.File != "huge.bin" {
			t.Fatalf("got %v, want unexpected-file huge.bin", err)
		}
		if w.events != 0 {
			t.Errorf("VerifyDir hashed before refusing (%d progress reports, up to %d bytes)", w.events, w.most)
		}
	})

	t.Run("in audit mode it is recorded, and only the signed files are read", func(t *testing.T) {
		g := newGate(t)
		g.serve("acme/tiny", model)
		dir := writeModel(t, sign(t, model, g.key))
		sparseFile(t, filepath.Join(dir, "huge.bin"), tiB)
		g.verifier(func(p map[string]any) { p["mode"] = "audit" })
		v, w, ctx := watchedVerifier(t, g, signedBytes)
		m, err := v.VerifyDir(ctx, dir, "acme/tiny")
		if err != nil {
			t.Fatalf("audit mode: %v", err)
		}
		ev := m.Evidence()
		if ev.Decision != modelverify.DecisionAuditAllowed || len(ev.Problems) != 1 ||
			ev.Problems[0].Reason != modelverify.ErrUnexpectedFile || ev.Problems[0].File != "huge.bin" {
			t.Fatalf("evidence %+v, want one unexpected-file problem for huge.bin", ev)
		}
		if w.events == 0 || w.most != signedBytes {
			t.Errorf("VerifyDir hashed up to %d bytes in %d reports, want exactly the %d signed bytes", w.most, w.events, signedBytes)
		}
		for _, f := range m.Files() {
			if f.Name == "huge.bin" {
				t.Errorf("the unsigned file is among the model's files")
			}
		}
	})

	t.Run("a signed file resized to 1 TiB is refused by its sharded size, unread", func(t *testing.T) {
		g := newGate(t)
		g.serve("acme/tiny", model)
		dir := writeModel(t, model)
		signer, err := manifest.NewKeySigner(g.key.priv, nil)
		if err != nil {
			t.Fatal(err)
		}
		bundle, _, err := manifest.SignDir(context.Background(), dir, manifest.Options{Method: manifest.MethodShards, ShardSize: 64}, signer)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "model.sig"), bundle, 0o644); err != nil {
			t.Fatal(err)
		}
		weights := filepath.Join(dir, "model.safetensors")
		os.Remove(weights)
		sparseFile(t, weights, tiB)
		g.verifier()
		v, w, ctx := watchedVerifier(t, g, signedBytes)
		_, err = v.VerifyDir(ctx, dir, "acme/tiny")
		want := modelverify.Problem{Reason: modelverify.ErrDigestMismatch, File: "model.safetensors",
			Expected: fmt.Sprintf("%d bytes", len(model["model.safetensors"])), Actual: fmt.Sprintf("%d bytes", tiB)}
		if p := firstProblem(t, err); p != want {
			t.Fatalf("problem %+v, want %+v", p, want)
		}
		if w.most > signedBytes {
			t.Errorf("VerifyDir set out to hash %d bytes", w.most)
		}
		if !strings.Contains(err.Error(), "model.safetensors") {
			t.Errorf("the refusal does not name the file: %v", err)
		}
	})
}

func TestVerifyDirScansEverySignedFile(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", baseModel())
	files := baseModel()
	files["pytorch_model.bin"] = maliciousPickle
	files["big.safetensors"] = safetensorsFile(40_000, 2) // header and data beyond the first read
	dir := writeModel(t, sign(t, files, g.key))
	_, err := g.verifier().VerifyDir(context.Background(), dir, "acme/tiny")
	if p := firstProblem(t, err); p.Reason != modelverify.ErrFormatNotAllowed || p.File != "pytorch_model.bin" {
		t.Fatalf("got %v, want pytorch_model.bin refused as a pickle", err)
	}
	delete(files, "pytorch_model.bin")
	dir = writeModel(t, sign(t, files, g.key))
	m, err := g.verifier().VerifyDir(context.Background(), dir, "acme/tiny")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Files() {
		if f.Name == "big.safetensors" && f.Format != "safetensors" {
			t.Errorf("big.safetensors scanned as %q", f.Format)
		}
	}
}

// A directory that is not there is an I/O error the caller can match with fs.ErrNotExist, not
// a missing-file refusal, and it leaves no audit record; a refusal's Ref is the ref as given.
func TestVerifyDirOnAMissingDirectoryIsAnIOError(t *testing.T) {
	g := newGate(t)
	g.serve("acme/tiny", sign(t, baseModel(), g.key))
	v := g.verifier()
	_, err := v.VerifyDir(context.Background(), filepath.Join(t.TempDir(), "absent"), "acme/tiny")
	var r *modelverify.Refusal
	if !errors.Is(err, os.ErrNotExist) || errors.As(err, &r) || errors.Is(err, modelverify.ErrMissingFile) {
		t.Fatalf("missing directory: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyDir(context.Background(), file, "acme/tiny"); err == nil || errors.As(err, &r) || !strings.Contains(err.Error(), "is not a directory") {
		t.Fatalf("a file: %v", err)
	}
	if recs := g.records(); len(recs) != 0 {
		t.Errorf("an I/O error was recorded as a decision: %+v", recs)
	}
	dir := writeModel(t, baseModel()) // unsigned
	_, err = v.VerifyDir(context.Background(), dir, "acme/tiny@main")
	if !errors.As(err, &r) || r.Ref != "acme/tiny@main" {
		t.Fatalf("refusal %#v, want Ref acme/tiny@main", err)
	}
}

// A file under a path the signature's ignore list names is not in the manifest's walk, but a
// loader still finds it: it counts toward the limits and is refused, before anything is read.
func TestVerifyDirCountsAndRefusesFilesUnderTheSignaturesIgnorePaths(t *testing.T) {
	const tiB = int64(1) << 40
	model := baseModel()
	signedDir := func(t *testing.T, g *gate) string {
		dir := writeModel(t, model)
		signer, err := manifest.NewKeySigner(g.key.priv, nil)
		if err != nil {
			t.Fatal(err)
		}
		bundle, _, err := manifest.SignDir(context.Background(), dir, manifest.Options{IgnorePaths: []string{"extra"}}, signer)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "model.sig"), bundle, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "extra", "deep"), 0o755); err != nil {
			t.Fatal(err)
		}
		sparseFile(t, filepath.Join(dir, "extra", "deep", "huge.bin"), tiB)
		return dir
	}

	t.Run("maxFiles counts it", func(t *testing.T) {
		g := newGate(t)
		g.serve("acme/tiny", model)
		dir := signedDir(t, g)
		g.verifier(func(p map[string]any) { p["content"] = map[string]any{"maxFiles": 3} })
		v, w, ctx := watchedVerifier(t, g, 0)
		_, err := v.VerifyDir(ctx, dir, "acme/tiny")
		want := modelverify.Problem{Reason: modelverify.ErrLimitExceeded, Expected: "at most 3 files", Actual: "4 files"}
		if got := firstProblem(t, err); got != want {
			t.Fatalf("problem %+v, want %+v", got, want)
		}
		if w.events != 0 {
			t.Errorf("VerifyDir hashed before refusing (%d progress reports, up to %d bytes)", w.events, w.most)
		}
	})

	t.Run("it is refused unread, and left out of the model in audit mode", func(t *testing.T) {
		g := newGate(t)
		g.serve("acme/tiny", model)
		dir := signedDir(t, g)
		g.verifier(func(p map[string]any) { p["mode"] = "audit" })
		v, w, ctx := watchedVerifier(t, g, modelBytes(model))
		m, err := v.VerifyDir(ctx, dir, "acme/tiny")
		if err != nil {
			t.Fatalf("audit mode: %v", err)
		}
		ev := m.Evidence()
		if len(ev.Problems) != 1 || ev.Problems[0].Reason != modelverify.ErrUnexpectedFile || ev.Problems[0].File != "extra/deep/huge.bin" {
			t.Fatalf("problems %+v, want one unexpected-file for extra/deep/huge.bin", ev.Problems)
		}
		if w.most != modelBytes(model) {
			t.Errorf("VerifyDir set out to hash %d bytes, want the %d signed", w.most, modelBytes(model))
		}
		if len(m.Files()) != 3 {
			t.Errorf("model files %v, want the 3 signed", m.Files())
		}
	})
}
