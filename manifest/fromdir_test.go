package manifest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func names(m *Manifest) []string {
	var out []string
	for _, r := range m.Resources {
		out = append(out, r.Name)
	}
	return out
}

func TestFromDirIgnoresGitPathsAndSignatureButKeepsHiddenFiles(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		".git/HEAD": "ref", ".gitattributes": "*", ".github/workflows/x.yml": "x", ".gitignore": "y",
		"model.sig": "{}", ".hidden": "h", "sub/.gitignore": "nested is kept", "weights.bin": "w",
		"skip/me": "s",
	})
	m, err := FromDir(context.Background(), dir, Options{IgnorePaths: []string{"skip"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".hidden", "sub/.gitignore", "weights.bin"}
	if got := names(m); !slices.Equal(got, want) {
		t.Fatalf("resources %v, want %v", got, want)
	}
	wantIgnores := []string{".git", ".gitattributes", ".github", ".gitignore", "model.sig", "skip"}
	if !slices.Equal(m.Serialization.IgnorePaths, wantIgnores) {
		t.Fatalf("recorded ignore paths %v, want %v", m.Serialization.IgnorePaths, wantIgnores)
	}

	m, err = FromDir(context.Background(), dir, Options{IncludeGitPaths: true, SignatureFile: "other.sig"})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(m); !slices.Contains(got, ".git/HEAD") || !slices.Contains(got, "model.sig") {
		t.Fatalf("with git paths included and another signature name, got %v", got)
	}
}

func TestFromDirOrdersResourcesAsPython(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"A": "", "a/b/c": "", "a-c": "", "a.txt": "", "ab": ""})
	m, err := FromDir(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A", "a/b/c", "a-c", "a.txt", "ab"}
	if got := names(m); !slices.Equal(got, want) {
		t.Fatalf("order %v, want Python's %v", got, want)
	}

	dir = t.TempDir()
	writeFiles(t, dir, map[string]string{"f": "0123456789012345678901234"})
	m, err = FromDir(context.Background(), dir, Options{Method: MethodShards, ShardSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"f:0:8", "f:8:16", "f:16:24", "f:24:25"}
	if got := names(m); !slices.Equal(got, want) {
		t.Fatalf("shard order %v, want numeric %v", got, want)
	}
}

func TestFromDirRefusesSymlinksUnlessAllowedAndNeverOutsideTheRoot(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"real": "r", "sub/x": "x"})
	if err := os.Symlink("real", filepath.Join(dir, "inside")); err != nil {
		t.Fatal(err)
	}
	if _, err := FromDir(context.Background(), dir, Options{}); !errors.Is(err, ErrSymlink) {
		t.Fatalf("a symlink with symlinks refused: got %v, want ErrSymlink", err)
	}
	m, err := FromDir(context.Background(), dir, Options{AllowSymlinks: true})
	if err != nil {
		t.Fatalf("a link inside the root with symlinks allowed: %v", err)
	}
	if got := names(m); !slices.Equal(got, []string{"inside", "real", "sub/x"}) {
		t.Fatalf("resources %v", got)
	}
	if m.Resources[0].Hex() != m.Resources[1].Hex() {
		t.Fatal("a link is hashed with its target's content")
	}

	for name, target := range map[string]string{"abs": outside, "rel": "../" + filepath.Base(filepath.Dir(outside)) + "/secret", "dir": "sub"} {
		d := t.TempDir()
		writeFiles(t, d, map[string]string{"sub/x": "x"})
		if name == "rel" {
			// A relative link that climbs out of the root.
			rel, _ := filepath.Rel(d, outside)
			target = rel
		}
		if err := os.Symlink(target, filepath.Join(d, "link")); err != nil {
			t.Fatal(err)
		}
		if _, err := FromDir(context.Background(), d, Options{AllowSymlinks: true}); !errors.Is(err, ErrSymlink) {
			t.Errorf("%s link to %s: got %v, want ErrSymlink", name, target, err)
		}
	}
}

func TestFromDirRefusesFIFOs(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if _, err := FromDir(context.Background(), dir, Options{}); !errors.Is(err, ErrFileType) {
		t.Fatalf("got %v, want ErrFileType", err)
	}
}

func TestFromDirSingleFileIsNamedDot(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"model.safetensors": "abc"})
	m, err := FromDir(context.Background(), filepath.Join(dir, "model.safetensors"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(m); !slices.Equal(got, []string{"."}) || m.ModelName != "model.safetensors" {
		t.Fatalf("resources %v name %q", got, m.ModelName)
	}
}

func TestFromDirHashAlgorithmsMatchKnownDigests(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"f": "abc"})
	for alg, want := range map[string]string{
		SHA256:  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		BLAKE2b: "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923",
		BLAKE3:  "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
	} {
		m, err := FromDir(context.Background(), dir, Options{HashType: alg})
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Resources[0].Hex(); got != want || m.Resources[0].Algorithm != alg {
			t.Errorf("%s(abc) = %s %s, want %s", alg, m.Resources[0].Algorithm, got, want)
		}
	}
	if _, err := FromDir(context.Background(), dir, Options{HashType: "md5"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown hash: got %v", err)
	}
}

// The statements inside the bundles that Python model_signing signed decode, and describe the
// files beside them.
func TestDecodeStatementsOfPythonSignedBundles(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(interop, "signed", "v*"))
	if err != nil || len(dirs) < 12 {
		t.Fatalf("expected the 13 signed sets, found %d (%v)", len(dirs), err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, "model.sig"))
			if err != nil {
				t.Fatal(err)
			}
			var b struct {
				DSSE struct {
					Payload string `json:"payload"`
				} `json:"dsseEnvelope"`
			}
			if err := json.Unmarshal(raw, &b); err != nil {
				t.Fatal(err)
			}
			payload, err := base64.StdEncoding.DecodeString(b.DSSE.Payload)
			if err != nil {
				t.Fatal(err)
			}
			st, err := DecodeStatement(payload)
			if err != nil {
				t.Fatal(err)
			}
			model := dir
			if len(st.Manifest.Resources) == 1 && st.Manifest.Resources[0].Name == "." {
				model = filepath.Join(dir, "signme-1")
			}
			_, err = CheckDir(context.Background(), model, st.Manifest, CheckOptions{IgnorePaths: []string{"ignore-me"}})
			if err != nil {
				t.Fatalf("the files beside the bundle do not match its statement: %v", err)
			}
		})
	}
}

func TestHashFileMatchesFromDir(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"sub/w.bin": "0123456789abcdefghij"})
	for _, o := range []Options{{}, {Method: MethodShards, ShardSize: 7}, {HashType: BLAKE3}} {
		m, err := FromDir(context.Background(), dir, o)
		if err != nil {
			t.Fatal(err)
		}
		staged := filepath.Join(t.TempDir(), "staged")
		os.WriteFile(staged, []byte("0123456789abcdefghij"), 0o644)
		got, err := HashFile(context.Background(), staged, "sub/w.bin", m.Serialization)
		if err != nil {
			t.Fatal(err)
		}
		want := m.ResourcesFor("sub/w.bin")
		if len(got) != len(want) {
			t.Fatalf("%+v: %d resources, want %d", o, len(got), len(want))
		}
		for i := range got {
			if got[i].Name != want[i].Name || got[i].Hex() != want[i].Hex() || got[i].Algorithm != want[i].Algorithm {
				t.Fatalf("%+v: %+v, want %+v", o, got[i], want[i])
			}
		}
	}
	if _, err := HashFile(context.Background(), dir, "../x", Serialization{Method: MethodFiles, HashType: SHA256}); !errors.Is(err, ErrUnsafeName) {
		t.Fatalf("got %v", err)
	}
}

// Listed sees every file the walk found, with its Lstat, and the paths left out, before any
// file is read; its error stops FromDir and CheckDir before hashing.
func TestListedSeesEveryFileBeforeAnyIsRead(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.json": "{}", "sub/b.bin": "bb", "skip/c": "c", ".git/HEAD": "ref"})
	stop := errors.New("stop")
	var got []string
	var ignored []string
	inspected := 0
	opts := Options{IgnorePaths: []string{"skip"}, Inspect: func(context.Context, string, *os.File, io.ReaderAt) error {
		inspected++
		return nil
	}, Listed: func(files []ListedFile, ig []string) error {
		for _, f := range files {
			if f.Info == nil || !f.Info.Mode().IsRegular() {
				t.Errorf("%s: info %v", f.Name, f.Info)
			}
			got = append(got, f.Name)
			if f.Name == "sub/b.bin" && f.Info.Size() != 2 {
				t.Errorf("sub/b.bin: size %d", f.Info.Size())
			}
		}
		ignored = ig
		return stop
	}}
	if _, err := FromDir(context.Background(), dir, opts); err != stop {
		t.Fatalf("FromDir: %v, want Listed's error as it is", err)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"a.json", "sub/b.bin"}) || !slices.Contains(ignored, "skip") || !slices.Contains(ignored, ".git") {
		t.Errorf("listed %v, ignored %v", got, ignored)
	}
	signed, err := FromDir(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	writeFiles(t, dir, map[string]string{"new.bin": "unsigned"})
	var unsigned []string
	check := CheckOptions{Inspect: opts.Inspect, Listed: func(files []ListedFile, ig []string) error {
		for _, f := range files {
			if !f.Signed {
				unsigned = append(unsigned, f.Name)
			}
		}
		return opts.Listed(files, ig)
	}}
	if _, err := CheckDir(context.Background(), dir, signed, check); err != stop {
		t.Fatalf("CheckDir: %v, want Listed's error as it is", err)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"a.json", "new.bin", "skip/c", "sub/b.bin"}) || !slices.Equal(unsigned, []string{"new.bin"}) {
		t.Errorf("CheckDir listed %v, unsigned %v", got, unsigned)
	}
	if inspected != 0 {
		t.Errorf("%d files inspected (read) before Listed's error", inspected)
	}
}
