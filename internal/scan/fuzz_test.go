package scan

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
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
	if rep.Has(ErrAmbiguous) && rep.Verdict != Dangerous {
		t.Fatalf("ambiguous file not refused:\n%s", dump(rep))
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

// FuzzUnpickledContent checks the decision on content without magic: the file's name can
// only add findings where loaders unpickle that name, and the text check agrees with a
// whole-buffer reference however the reads split the bytes.
func FuzzUnpickledContent(f *testing.F) {
	files, _ := filepath.Glob(fixtureDir + "/imports/*")
	for i, p := range files {
		if b, err := os.ReadFile(p); err == nil && len(b) < 1<<20 {
			f.Add(b, uint8(i))
		}
	}
	f.Add([]byte("cat\ndog\n"), uint8(3))
	f.Add([]byte("K\x01caf\xc3\xa9\nx\n"), uint8(6))
	f.Fuzz(func(t *testing.T, b []byte, split uint8) {
		base := checkInvariants(t, b)
		text, err := Scan(context.Background(), bytes.NewReader(b), int64(len(b)), WithMaxDepth(3), WithName("notes.txt"))
		if err != nil {
			t.Fatal(err)
		}
		pkl, err := Scan(context.Background(), bytes.NewReader(b), int64(len(b)), WithMaxDepth(3), WithName("model.pkl"))
		if err != nil {
			t.Fatal(err)
		}
		if text.Format != base.Format || text.Verdict != base.Verdict {
			t.Fatalf("a .txt name changed the result: %s %s, unnamed %s %s", text.Format, text.Verdict, base.Format, base.Verdict)
		}
		if base.Format == FormatPickle && (pkl.Format != FormatPickle || pkl.Verdict < base.Verdict) {
			t.Fatalf("a .pkl name lost a pickle: %s %s, unnamed %s %s", pkl.Format, pkl.Verdict, base.Format, base.Verdict)
		}
		at := min(int(split), len(b))
		tw := &textWatch{r: &splitReader{parts: [][]byte{b[:at], b[at:]}}, binaryAt: -1}
		if _, err := io.Copy(io.Discard, tw); err != nil {
			t.Fatal(err)
		}
		if want := firstNonText(b); tw.binaryAt != want {
			t.Fatalf("textWatch says byte %d, the reference %d", tw.binaryAt, want)
		}
	})
}

// firstNonText is textWatch's rule over a whole buffer: a character cut off by the end is text.
func firstNonText(b []byte) int64 {
	for i := 0; i < len(b); {
		if !utf8.FullRune(b[i:]) {
			return -1
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 || r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return int64(i)
		}
		i += size
	}
	return -1
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
		fixtureDir+"/bypass/*.zip", fixtureDir+"/torch_*_zip*.pt", containersDir+"/*.zip", containersDir+"/*.pt")
	f.Fuzz(func(t *testing.T, b []byte) { checkInvariants(t, b) })
}

// FuzzZipReadings drives the central-directory readers directly: they never panic, never
// return more records than asked for plus one (the sign of too many), and an archive every
// reader sees alike has exactly one view. The padding before and after the input takes it
// past the 4 KiB and 64 KiB windows the readers search for the end record.
func FuzzZipReadings(f *testing.F) {
	files := []string{}
	for _, g := range []string{containersDir + "/*.zip", fixtureDir + "/bypass/*.zip", picklescanDir + "/data/*.zip", fixtureDir + "/torch_*_zip*.pt"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	for i, p := range files {
		if b, err := os.ReadFile(p); err == nil && len(b) < 1<<20 {
			f.Add(b, uint16(i*977), uint16(i*131))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, before, after uint16) {
		const maxRecords = 64
		in := append(append(make([]byte, int(before)), b...), bytes.Repeat([]byte{'P'}, int(after))...)
		views, disagree := zipReadings(bytes.NewReader(in), int64(len(in)), maxRecords)
		if len(views) == 0 {
			t.Fatal("no view at all")
		}
		for _, v := range views {
			if len(v.records) > maxRecords+1 {
				t.Fatalf("%d records read, limit %d", len(v.records), maxRecords)
			}
		}
		if len(views) > 1 && len(disagree) == 0 {
			t.Fatalf("%d different views without a disagreement", len(views))
		}
	})
}

func FuzzCompressed(f *testing.F) {
	seed(f, containersDir+"/*.gz", containersDir+"/*.bz2", containersDir+"/*.xz", containersDir+"/*.zst")
	f.Add([]byte("\x28\xb5\x2f\xfd\x04\x00\x01\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := Scan(context.Background(), bytes.NewReader(b), int64(len(b)), WithMaxDepth(3), WithMaxDecompressed(4<<20))
		if err != nil {
			t.Fatalf("Scan of in-memory bytes failed: %v", err)
		}
		if rep.Has(ErrMalformed) && rep.Verdict == Safe {
			t.Fatalf("malformed file reported safe:\n%s", dump(rep))
		}
	})
}

func FuzzNativeKind(f *testing.F) {
	seed(f, containersDir+"/*.bin")
	f.Fuzz(func(t *testing.T, b []byte) {
		kind := nativeKind(b, bytes.NewReader(b), int64(len(b)))
		if kind != "" && sniff(b[:min(len(b), 512)]) != FormatNativeCode {
			t.Fatalf("nativeKind says %s but sniff disagrees", kind)
		}
		checkInvariants(t, b)
	})
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
	seed(f, fixtureDir+"/tar/*.tar", containersDir+"/*.tar")
	f.Fuzz(func(t *testing.T, b []byte) { checkInvariants(t, b) })
}
