package scan

import (
	"bytes"
	"io"
	"os"
	"testing"
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
		{"encrypted.7z", Suspicious, "archive.7z"},
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
	rep := scanPath(t, fixture("sevenzip", "encrypted.7z"))
	if !rep.Has(ErrUnsupported) {
		t.Errorf("encrypted folder: want ErrUnsupported\n%s", dump(rep))
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
	streams, files, serr := openSevenZip(f, fi.Size())
	if serr != nil {
		t.Fatal(serr.msg)
	}
	if len(streams.folders) != 1 || len(streams.folders[0].coders) != 2 || len(files) != 2 {
		t.Fatalf("want one BCJ+LZMA2 folder of two files, got %d folders, %d files", len(streams.folders), len(files))
	}
	fr, err := folderReader(f, fi.Size(), streams, streams.folders[0])
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(fr)
	if err != nil {
		t.Fatal(err)
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
