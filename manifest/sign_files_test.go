package manifest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// SignFiles signs exactly what SignDir signs for the same files on disk: the same manifest,
// and a bundle that verifies against the directory.
func TestSignFilesSignsWhatSignDirSigns(t *testing.T) {
	s, err := NewKeySigner(readFile(t, pythonKeys+"/signing-key.pem"), nil)
	must(t, err)
	v, err := NewKeyVerifier(readFile(t, pythonKeys+"/signing-key-pub.pem"))
	must(t, err)
	files := map[string][]byte{
		"config.json":         []byte(`{"model_type":"demo"}`),
		"model.safetensors":   []byte("weights"),
		"tokenizer/vocab.txt": []byte("a\nb\n"),
		"notes/skip.md":       []byte("ignored"),
		".gitattributes":      []byte("*.safetensors filter=lfs\n"),
		"model.sig":           []byte("an old signature"),
	}
	opts := Options{ModelName: "demo", IgnorePaths: []string{"notes"}}
	ctx := context.Background()
	sig, m, err := SignFiles(ctx, files, opts, s)
	must(t, err)

	dir := filepath.Join(t.TempDir(), "demo")
	writeFiles(t, dir, map[string]string{})
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, data, 0o644))
	}
	_, want, err := SignDir(ctx, dir, Options{IgnorePaths: []string{"notes"}}, s)
	must(t, err)
	gotStmt, _ := EncodeStatement(m)
	wantStmt, _ := EncodeStatement(want)
	if !bytes.Equal(gotStmt, wantStmt) {
		t.Fatalf("SignFiles signed\n%s\nSignDir signs\n%s", gotStmt, wantStmt)
	}
	res, err := VerifyDir(ctx, dir, sig, v, CheckOptions{})
	must(t, err)
	if res.Manifest.ModelName != "demo" || len(res.Manifest.Resources) != 3 {
		t.Errorf("verified %+v", res.Manifest)
	}
	if _, m, _ := SignFiles(ctx, map[string][]byte{"a": []byte("x")}, Options{}, s); m.ModelName != DefaultFilesModelName {
		t.Errorf("default subject name %q", m.ModelName)
	}
}

func TestSignFilesRefusesUnsafeNamesAndEmptyModels(t *testing.T) {
	s, err := NewKeySigner(readFile(t, pythonKeys+"/signing-key.pem"), nil)
	must(t, err)
	for _, name := range []string{"../escape", "/abs", "a//b", "a/./b", "."} {
		if _, _, err := SignFiles(context.Background(), map[string][]byte{name: nil}, Options{}, s); !errors.Is(err, ErrUnsafeName) {
			t.Errorf("%q: %v", name, err)
		}
	}
	if _, _, err := SignFiles(context.Background(), nil, Options{}, s); !errors.Is(err, ErrEmptyModel) {
		t.Errorf("no files: %v", err)
	}
}
