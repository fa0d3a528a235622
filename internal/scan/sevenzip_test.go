package scan

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/ulikunitz/xz/lzma"
)

func TestSevenZipArchivesAreScannedByContent(t *testing.T) {
	for _, tc := range []struct {
		file    string
		verdict Verdict
		rule    string
	}{
		{"ok_bcj_lzma2_solid.7z", Safe, ""},
		{"bad_lzma.7z", Dangerous, "global.denylisted"},
		{"bad_copy.7z", Dangerous, "global.denylisted"},
		{"bad_deflate.7z", Dangerous, "global.denylisted"},
		{"encrypted.7z", Suspicious, "archive.7z"}, // AES: reported as uninspectable, not skipped
		{"encrypted_header.7z", Suspicious, "archive.7z"},
		{"bad_ppmd.7z", Dangerous, "global.denylisted"},
		{"bad_bcj2.7z", Dangerous, "global.denylisted"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			rep := scanPath(t, fixture("sevenzip", tc.file))
			if rep.Format != Format7z || rep.Verdict != tc.verdict {
				t.Fatalf("got %s %s, want 7z %s\n%s", rep.Format, rep.Verdict, tc.verdict, dump(rep))
			}
			if tc.rule != "" && !hasRule(rep, tc.rule) {
				t.Errorf("no %s finding\n%s", tc.rule, dump(rep))
			}
		})
	}
	for _, f := range []string{"encrypted.7z", "encrypted_header.7z"} {
		rep := scanPath(t, fixture("sevenzip", f))
		if !rep.Has(ErrUnsupported) || !strings.Contains(dump(rep), "encrypted") {
			t.Errorf("%s: want an encrypted, uninspectable finding\n%s", f, dump(rep))
		}
	}
	rep := scanPath(t, fixture("sevenzip", "encrypted.7z"))
	if len(rep.Members) != 1 || rep.Members[0].Name != "benign.pkl" {
		t.Errorf("the encrypted file is not listed: %+v", rep.Members)
	}
	rep = scanPath(t, fixture("sevenzip", "ok_bcj_lzma2_solid.7z"))
	if len(rep.Members) != 2 || rep.Members[0].Name != "benign.pkl" || rep.Members[0].Format != FormatPickle {
		t.Errorf("members %+v, want benign.pkl (pickle) and x86.bin", rep.Members)
	}
}

// The BCJ x86 filter is undone exactly: the solid folder decodes to the files 7-Zip packed.
func TestSevenZipBCJFolderDecodesToTheOriginalBytes(t *testing.T) {
	f, err := os.Open(fixture("sevenzip", "ok_bcj_lzma2_solid.7z"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	zr, err := openSevenZip(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 2 || zr.File[0].Stream != zr.File[1].Stream {
		t.Fatalf("want one solid folder of two files, got %d files", len(zr.File))
	}
	var got []byte
	for _, zf := range zr.File {
		rc, err := openSevenZipFile(zf)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b...)
	}
	want, err := os.ReadFile(fixture("sevenzip", "bcj_plain.bin"))
	if err != nil {
		t.Fatal(err)
	}
	benign := []byte("\x80\x02}q\x00.")
	if !bytes.Equal(got, append(benign, want...)) {
		i := 0
		for i < len(got) && i < len(want)+len(benign) && got[i] == append(benign, want...)[i] {
			i++
		}
		t.Fatalf("decoded %d bytes, want %d; first difference at %d", len(got), len(want)+len(benign), i)
	}
}

// An LZMA coder whose properties claim a 4 GiB dictionary decodes a 6-byte file without
// allocating it: the dictionary is bounded by the output.
func TestSevenZipLZMADictionaryIsBounded(t *testing.T) {
	var buf bytes.Buffer
	w, err := lzma.WriterConfig{DictCap: lzma.MinDictCap, Size: 6}.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("abcdef"))
	w.Close()
	raw := buf.Bytes()
	props := append([]byte{raw[0]}, 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(props[1:], 0xfffffff0)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rc, err := boundedLZMA(props, 6, []io.ReadCloser{io.NopCloser(bytes.NewReader(raw[13:]))})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(io.LimitReader(rc, 6))
	runtime.ReadMemStats(&after)
	if err != nil || string(got) != "abcdef" {
		t.Fatalf("decoded %q, %v", got, err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("decoding allocated %d bytes", grew)
	}
	if _, err := boundedPPMd([]byte{6, 0xff, 0xff, 0xff, 0xff}, 6, []io.ReadCloser{io.NopCloser(bytes.NewReader(nil))}); err == nil {
		t.Fatal("a 4 GiB PPMd model was accepted")
	}
}
