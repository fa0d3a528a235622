package scan

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// seed adds every file matching the globs to the corpus.
func seed(f *testing.F, globs ...string) {
	for _, g := range globs {
		files, _ := filepath.Glob(g)
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil && len(b) < 1<<20 {
				f.Add(b)
			}
		}
	}
}

// checkInvariants holds for any input: Scan of in-memory bytes never fails, the verdict is
// the worst finding's, and a file with a malformed or truncated finding is never safe.
func checkInvariants(t *testing.T, b []byte) *Report {
	rep, err := Scan(context.Background(), bytes.NewReader(b), int64(len(b)), WithMaxDepth(3))
	if err != nil {
		t.Fatalf("Scan of in-memory bytes failed: %v", err)
	}
	worst := Safe
	for _, f := range rep.Findings {
		worst = max(worst, f.Verdict)
		if f.Err == nil {
			t.Fatalf("finding without a sentinel: %+v", f)
		}
	}
	if rep.Verdict < worst {
		t.Fatalf("verdict %s below its worst finding %s", rep.Verdict, worst)
	}
	if rep.Has(ErrMalformed) && rep.Verdict == Safe {
		t.Fatalf("malformed file reported safe:\n%s", dump(rep))
	}
	return rep
}

func FuzzPickle(f *testing.F) {
	seed(f, picklescanDir+"/data/*.pkl", picklescanDir+"/data2/*.pkl", fixtureDir+"/bypass/*.pkl")
	f.Fuzz(func(t *testing.T, b []byte) {
		rep := checkInvariants(t, b)
		// Whatever else it is, a pickle that imports os.system is dangerous.
		if rep.Format == FormatPickle && hasGlobal(rep, "os.system") && rep.Verdict != Dangerous {
			t.Fatalf("os.system import not dangerous:\n%s", dump(rep))
		}
	})
}

func FuzzSafetensors(f *testing.F) {
	seed(f, fixtureDir+"/safetensors/*.safetensors", fixtureDir+"/index_ok/*")
	f.Fuzz(func(t *testing.T, b []byte) {
		checkInvariants(t, b)
		// The header parser agrees with itself on valid files: no errors means full coverage.
		if tensors, errs := readSafetensorsHeader(bytes.NewReader(b), int64(len(b))); len(errs) == 0 {
			var end uint64
			for _, ts := range tensors {
				end = max(end, ts.end)
			}
			if n := le64(b[:8]); 8+n+end != uint64(len(b)) {
				t.Fatalf("valid header but data does not cover the file")
			}
		}
	})
}

func FuzzZip(f *testing.F) {
	seed(f, picklescanDir+"/data/*.zip", picklescanDir+"/data2/*.npz", picklescanDir+"/data2/*.zip",
		fixtureDir+"/bypass/*.zip", fixtureDir+"/torch_*_zip*.pt")
	f.Fuzz(func(t *testing.T, b []byte) { checkInvariants(t, b) })
}

func FuzzLegacyCheckpoint(f *testing.F) {
	seed(f, fixtureDir+"/torch_*_legacy.pt", picklescanDir+"/data/pytorch_magic_bypass.pt")
	f.Fuzz(func(t *testing.T, b []byte) { checkInvariants(t, b) })
}

func FuzzNumPy(f *testing.F) {
	seed(f, picklescanDir+"/data2/*.npy", fixtureDir+"/numpy/*.npy", fixtureDir+"/bypass/*.npy")
	f.Fuzz(func(t *testing.T, b []byte) {
		checkInvariants(t, b)
		if len(b) > 10 {
			_, _ = parseNumPyHeader(string(b[10:]))
		}
	})
}

func FuzzGGUF(f *testing.F) {
	seed(f, fixtureDir+"/gguf/*.gguf")
	f.Fuzz(func(t *testing.T, b []byte) { checkInvariants(t, b) })
}

func FuzzSevenZip(f *testing.F) {
	seed(f, fixtureDir+"/sevenzip/*.7z", picklescanDir+"/data/*.7z")
	f.Fuzz(func(t *testing.T, b []byte) { checkInvariants(t, b) })
}

func FuzzTar(f *testing.F) {
	seed(f, fixtureDir+"/tar/*.tar")
	f.Fuzz(func(t *testing.T, b []byte) { checkInvariants(t, b) })
}
