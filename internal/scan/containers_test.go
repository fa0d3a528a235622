package scan

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zip"
	"github.com/ulikunitz/xz"
)

const containersDir = "testdata/containers"

// expectedMembers is what make_containers.py recorded from Python's zipfile and tarfile (and
// PyTorch's reader, for zips) for every zip and tar fixture in the repository.
type expectedMembers struct {
	Reader  string `json:"reader"`
	Error   string `json:"error"`
	Members []struct {
		Name    string `json:"name"`
		Refused string `json:"refused"`
	} `json:"members"`
	Torch []string `json:"torch"`
}

// For every zip and tar fixture, the scanner reads the members Python's zipfile or tarfile
// reads, and PyTorch's reader's records too. Where the readers disagree the scanner reads every
// reading, so it may read more, but only with an ambiguity finding; where Python refuses the
// archive, the scanner never calls it safe.
func TestContainerMembersMatchPython(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(containersDir, "expected_members.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]expectedMembers
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	if len(all) < 30 {
		t.Fatalf("only %d fixtures recorded", len(all))
	}
	for rel, want := range all {
		t.Run(rel, func(t *testing.T) {
			rep := scanPath(t, filepath.Join("../..", rel))
			var got []string
			for _, m := range rep.Members {
				if !strings.Contains(m.Name, "!") {
					got = append(got, m.Name)
				}
			}
			if want.Error != "" {
				if rep.Verdict == Safe {
					t.Fatalf("Python refuses the archive (%s) but the scan is safe\n%s", want.Error, dump(rep))
				}
				return
			}
			var names []string
			for _, m := range want.Members {
				names = append(names, m.Name)
			}
			if want.Torch != nil {
				prefix := ""
				if len(got) > 0 {
					if i := strings.IndexByte(got[0], '/'); i >= 0 {
						prefix = got[0][:i+1]
					}
				}
				for _, r := range want.Torch {
					names = append(names, prefix+r)
				}
			}
			gotSet, wantSet := dedupe(got), dedupe(names)
			if rep.Has(ErrAmbiguous) {
				for _, n := range wantSet {
					if !slices.Contains(gotSet, n) {
						t.Fatalf("ambiguous archive: the scan did not read %q, which Python or PyTorch reads; it read %v", n, gotSet)
					}
				}
				return
			}
			if !slices.Equal(gotSet, wantSet) {
				t.Fatalf("the scan read %v, Python's %s and PyTorch read %v\n%s", gotSet, want.Reader, wantSet, dump(rep))
			}
		})
	}
}

func dedupe(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(out)
}

// Each hostile container is refused for the reason its loader trick needs, and the payload is
// found whichever reader's view holds it (see NOTES.json for how each loader reads each file).
func TestHostileContainers(t *testing.T) {
	for _, tc := range []struct {
		file    string
		format  Format
		verdict Verdict
		rule    string
		global  string
	}{
		// 15.1: miniz reads the directory in the comment, Python and Go the one before the end record.
		{"bad_zip_two_directories.zip", FormatPyTorchZip, Dangerous, "zip.ambiguous", "os.system"},
		{"bad_zip_hidden_entry.zip", FormatPyTorchZip, Dangerous, "zip.ambiguous", "os.system"},
		{"bad_zip_overlap.zip", FormatPyTorchZip, Dangerous, "zip.overlap", "os.system"},
		{"bad_zip_end_record_in_comment.zip", FormatPyTorchZip, Dangerous, "zip.ambiguous", "os.system"},
		// Members Python's zipfile decompresses with bzip2 and LZMA.
		{"bad_zip_bzip2_member.zip", FormatZip, Dangerous, "global.denylisted", "os.system"},
		{"bad_zip_lzma_member.zip", FormatZip, Dangerous, "global.denylisted", "os.system"},
		// 15.2: tar without the ustar magic, and a member type tarfile reads as a file.
		{"bad_legacy_tar_v7.tar", FormatPyTorchTar, Dangerous, "global.denylisted", "os.system"},
		{"bad_tar_contiguous_type.tar", FormatTar, Dangerous, "global.denylisted", "os.system"},
		// Go and tarfile read a size field differently and find different members.
		{"bad_tar_size_nul.tar", FormatTar, Dangerous, "tar.ambiguous", "os.system"},
		// 15.3: compressed containers.
		{"bad_model.tar.gz", FormatCompressed, Dangerous, "global.denylisted", "os.system"},
		{"bad_model.tar.bz2", FormatCompressed, Dangerous, "global.denylisted", "os.system"},
		{"bad_model.tar.xz", FormatCompressed, Dangerous, "global.denylisted", "os.system"},
		{"bad_model.tar.zst", FormatCompressed, Dangerous, "global.denylisted", "os.system"},
		{"bad_pickle.gz", FormatCompressed, Dangerous, "global.denylisted", "os.system"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			rep := scanPath(t, filepath.Join(containersDir, tc.file))
			if rep.Format != tc.format || rep.Verdict != tc.verdict || !hasRule(rep, tc.rule) || !hasGlobal(rep, tc.global) {
				t.Fatalf("got %s %s, want %s %s with %s and %s\n%s", rep.Format, rep.Verdict, tc.format, tc.verdict, tc.rule, tc.global, dump(rep))
			}
		})
	}
}

func TestBenignContainersAreSafe(t *testing.T) {
	for _, tc := range []struct {
		file   string
		format Format
		inner  Format
	}{
		{"ok_zip_stored.zip", FormatPyTorchZip, ""},
		{"ok_tar_v7.tar", FormatPyTorchTar, ""},
		{"ok_model.tar.gz", FormatCompressed, FormatTar},
		{"torch_state_dict.pt.gz", FormatCompressed, FormatPyTorchZip},
		{"ok_java_class.bin", FormatUnknown, ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			rep := scanPath(t, filepath.Join(containersDir, tc.file))
			if rep.Format != tc.format || rep.Verdict != Safe {
				t.Fatalf("got %s %s, want %s safe\n%s", rep.Format, rep.Verdict, tc.format, dump(rep))
			}
			if tc.inner != "" && (len(rep.Members) == 0 || rep.Members[len(rep.Members)-1].Format != tc.inner) {
				t.Fatalf("members %+v, want the stream to hold %s", rep.Members, tc.inner)
			}
		})
	}
}

func TestCompressionBombIsAFinding(t *testing.T) {
	rep := scanPath(t, filepath.Join(containersDir, "bad_gzip_bomb.gz"), WithMaxDecompressed(1<<20))
	if rep.Verdict == Safe || !hasRule(rep, "compress.bomb") || !rep.Has(ErrLimit) {
		t.Fatalf("8 MiB of zeros under a 1 MiB cap: %s", dump(rep))
	}
	if rep := scanPath(t, filepath.Join(containersDir, "bad_gzip_bomb.gz")); rep.Verdict != Safe {
		t.Fatalf("under the default cap the zeros are just unknown content: %s", dump(rep))
	}
}

// 10.4 and 10.8: code is recognised by content, whatever the name, at the top and inside archives.
func TestCodeIsRecognisedByContent(t *testing.T) {
	for _, tc := range []struct {
		file   string
		format Format
		member Format
	}{
		{"elf_renamed.bin", FormatNativeCode, ""},
		{"macho_thin.bin", FormatNativeCode, ""},
		{"macho_fat.bin", FormatNativeCode, ""},
		{"pe_renamed.bin", FormatNativeCode, ""},
		{"torchscript_tiny.pt", FormatTorchScript, ""},
		{"bad_zip_with_so.zip", FormatZip, FormatNativeCode},
	} {
		t.Run(tc.file, func(t *testing.T) {
			rep := scanPath(t, filepath.Join(containersDir, tc.file))
			if rep.Format != tc.format {
				t.Fatalf("got %s, want %s\n%s", rep.Format, tc.format, dump(rep))
			}
			if tc.member != "" && !slices.ContainsFunc(rep.Members, func(m Member) bool { return m.Format == tc.member }) {
				t.Fatalf("members %+v hold no %s", rep.Members, tc.member)
			}
		})
	}
	// TorchScript nested in a tar inside gzip is still found.
	ts, err := os.ReadFile(filepath.Join(containersDir, "torchscript_tiny.pt"))
	if err != nil {
		t.Fatal(err)
	}
	rep := scanBytes(t, makeZip(t, zipEntry{name: "models/ts.pt", data: ts}))
	if !slices.ContainsFunc(rep.Members, func(m Member) bool { return m.Format == FormatTorchScript }) {
		t.Fatalf("nested TorchScript not reported: %+v", rep.Members)
	}
}

func TestTarIsRecognisedByItsHeaderChecksum(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(containersDir, "ok_tar_v7.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b[257:262]) == "ustar" || !isTarHeader(b[:512]) {
		t.Fatal("fixture is not a V7 header, or its checksum is not accepted")
	}
	b[0] ^= 1 // a changed byte breaks the checksum: no longer a tar
	if isTarHeader(b[:512]) {
		t.Fatal("a header with a wrong checksum was accepted")
	}
}

// A zip64 archive (more than 65,535 members) is read alike by every reader.
func TestZip64ArchiveIsNotAmbiguous(t *testing.T) {
	entries := make([]zipEntry, 70000)
	for i := range entries {
		entries[i] = zipEntry{name: "f" + strconv.Itoa(i)}
	}
	rep := scanBytes(t, makeZip(t, entries...), WithMaxMembers(100000))
	if rep.Verdict != Safe || len(rep.Members) != len(entries) {
		t.Fatalf("%d members\n%s", len(rep.Members), dump(rep))
	}
}

// Bytes prepended to a zip (a positive shift) make miniz, which trusts the stated offset,
// read something else than Python's zipfile, which shifts: ambiguous, whatever the content.
func TestZipWithPrependedBytesIsAmbiguous(t *testing.T) {
	z := makeZip(t, zipEntry{name: "archive/data.pkl", data: benignPickle}, version)
	stub := makeZip(t, zipEntry{name: "stub", data: []byte("#!/bin/sh\n")})
	for _, prefix := range [][]byte{[]byte(strings.Repeat("#!/bin/sh\n", 10)), stub[:len(stub)-22]} {
		rep := scanBytes(t, append(append([]byte{}, prefix...), z...))
		if rep.Verdict != Dangerous || !rep.Has(ErrAmbiguous) {
			t.Fatalf("prefix %q: %s", prefix[:4], dump(rep))
		}
	}
	if rep := scanBytes(t, z); rep.Has(ErrAmbiguous) {
		t.Fatalf("the plain archive is not ambiguous\n%s", dump(rep))
	}
}

func TestGNUAndPaxTarsAreRead(t *testing.T) {
	for _, file := range []string{"bad_tar_gnu_longname.tar", "bad_tar_pax_longname.tar"} {
		rep := scanPath(t, filepath.Join(containersDir, file))
		if rep.Format != FormatTar || rep.Verdict != Dangerous || !hasGlobal(rep, "os.system") {
			t.Errorf("%s: %s", file, dump(rep))
		}
	}
}

// A deflated member is inflated only as far as its declared size (all Python's zipfile reads;
// miniz refuses more), and every stream of a file draws on one decompression budget.
func TestDecompressionIsBoundedPerFile(t *testing.T) {
	zeros := make([]byte, 4<<20)
	z := makeZip(t, zipEntry{name: "a.bin", data: zeros, method: zip.Deflate})
	// Shrink the declared size in the central directory (the local header is not consulted).
	i := bytes.LastIndex(z, []byte("PK\x01\x02"))
	binary.LittleEndian.PutUint32(z[i+24:], 1024)
	rep := scanBytes(t, z)
	if !hasRule(rep, "zip.size-mismatch") || rep.Verdict == Safe {
		t.Fatalf("member inflating past its declared size: %s", dump(rep))
	}
	if rep.Members[0].Size != 1024 {
		t.Fatalf("members %+v", rep.Members)
	}
	var entries []zipEntry
	for n := range 8 {
		entries = append(entries, zipEntry{name: "m" + strconv.Itoa(n), data: zeros, method: zip.Deflate})
	}
	rep = scanBytes(t, makeZip(t, entries...), WithMaxDecompressed(10<<20))
	if !hasRule(rep, "compress.bomb") || !rep.Has(ErrLimit) {
		t.Fatalf("8 members of 4 MiB under a 10 MiB budget: %s", dump(rep))
	}
}

// A checkpoint inside a tar on disk is read in place: its format is found and only the parts
// the format needs are read.
func TestTarMembersAreReadInPlace(t *testing.T) {
	ckpt, err := os.ReadFile(fixture("torch_state_dict_zip.pt"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range []struct {
		name string
		data []byte
	}{{"model/config.json", []byte("{}")}, {"model/pytorch_model.bin", ckpt}, {"model/zeros.bin", make([]byte, 1<<20)}} {
		if err := tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(m.data)
	}
	tw.Close()
	rep := scanBytes(t, buf.Bytes())
	inner := slices.IndexFunc(rep.Members, func(m Member) bool { return m.Name == "model/pytorch_model.bin" })
	if rep.Verdict != Safe || rep.Format != FormatTar || inner < 0 || rep.Members[inner].Format != FormatPyTorchZip {
		t.Fatalf("%+v\n%s", rep.Members, dump(rep))
	}
	if rep.BytesRead > int64(buf.Len())/2 {
		t.Fatalf("read %d of %d bytes", rep.BytesRead, buf.Len())
	}
}

// tarfile.getmember normalises names, so "./storages" is what torch's legacy_load unpickles.
func TestTorchTarMembersAreFoundByNormalisedName(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(containersDir, "ok_tar_v7.tar"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		data, _ := io.ReadAll(tr)
		h.Name = "./" + h.Name
		h.Format = tar.FormatUSTAR
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	if rep := scanBytes(t, buf.Bytes()); rep.Format != FormatPyTorchTar || rep.Verdict != Safe {
		t.Fatalf("%s", dump(rep))
	}
}

// An xz block asking for a 1.5 GiB dictionary is not decompressed: the decoder would allocate
// it all before reading a byte. Real xz files (every check type, several blocks and streams)
// decode as ulikunitz/xz decodes them; FuzzCompressed covers the rest.
func TestXZDictionaryIsBounded(t *testing.T) {
	rep := scanPath(t, filepath.Join(containersDir, "bad_xz_huge_dictionary.tar.xz"))
	if rep.Verdict == Safe || !hasRule(rep, "compress.limit") || !rep.Has(ErrLimit) {
		t.Fatalf("%s", dump(rep))
	}
	var text bytes.Buffer
	for i := range 4000 {
		fmt.Fprintf(&text, "line %d of a text that compresses\n", i)
	}
	for _, check := range []byte{0, 1, 4, 10} {
		x := xzStream(t, text.Bytes(), check)
		got, err := io.ReadAll(newXZReader(bytes.NewReader(append(append(x, 0, 0, 0, 0), x...)), xzMaxDict))
		if err != nil || !bytes.Equal(got, append(text.Bytes(), text.Bytes()...)) {
			t.Fatalf("check %d: %d bytes, %v", check, len(got), err)
		}
	}
}

// xzStream writes data as one xz stream with the given check type, with ulikunitz/xz.
func xzStream(t *testing.T, data []byte, check byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := xz.WriterConfig{CheckSum: check, BlockSize: 32 << 10}.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A zstd frame asking for a 1 GiB window is refused before the decoder allocates it.
func TestZstdWindowIsBounded(t *testing.T) {
	frame := []byte("\x28\xb5\x2f\xfd\x00\xa0\x01\x00\x00") // window descriptor 0xa0: 2^30 bytes; one empty raw block
	rep := scanBytes(t, frame)
	if rep.Format != FormatCompressed || rep.Verdict == Safe || !hasRule(rep, "compress.limit") {
		t.Fatalf("%s", dump(rep))
	}
	if rep := scanBytes(t, []byte("\x28\xb5\x2f\xfd\x00\x48\x01\x00\x00")); rep.Verdict != Safe { // a 1 MiB window
		t.Fatalf("small window: %s", dump(rep))
	}
}

// Archives larger than the end-record window, with a comment or trailing bytes, are found by
// every reader in the last few KiB.
func TestLargeZipWithCommentIsReadAlike(t *testing.T) {
	z := makeZip(t, zipEntry{name: "archive/data.pkl", data: benignPickle}, zipEntry{name: "archive/data/0", data: make([]byte, 200<<10)}, version)
	withComment := append(append([]byte{}, z[:len(z)-2]...), 5, 0, 'h', 'e', 'l', 'l', 'o')
	for _, b := range [][]byte{z, withComment} {
		if rep := scanBytes(t, b); rep.Verdict != Safe || rep.Format != FormatPyTorchZip {
			t.Fatalf("%s", dump(rep))
		}
	}
	trailing := append(append([]byte{}, z...), "garbage"...)
	if rep := scanBytes(t, trailing); rep.Format != FormatPyTorchZip || rep.Has(ErrAmbiguous) {
		t.Fatalf("trailing bytes: every reader still finds the one end record\n%s", dump(rep))
	}
}

// A safetensors file whose header length starts with the bytes "MZ" is safetensors, not a PE.
func TestSafetensorsHeaderLengthIsNotADOSStub(t *testing.T) {
	header := `{"__metadata__":{"format":"pt"}}`
	n := 0x5a4d // "MZ" little-endian
	b := binary.LittleEndian.AppendUint64(nil, uint64(n))
	b = append(b, header...)
	b = append(b, bytes.Repeat([]byte(" "), n-len(header))...)
	if rep := scanBytes(t, b, WithName("model.safetensors")); rep.Format != FormatSafetensors || rep.Verdict != Safe {
		t.Fatalf("%s", dump(rep))
	}
}

// A zstd stream may open with a skippable frame; decoders pass over it to the content.
func TestZstdSkippableFrameIsUnwrapped(t *testing.T) {
	z, err := os.ReadFile(filepath.Join(containersDir, "bad_model.tar.zst"))
	if err != nil {
		t.Fatal(err)
	}
	skippable := append([]byte("\x50\x2a\x4d\x18\x04\x00\x00\x00"), "note"...)
	rep := scanBytes(t, append(skippable, z...))
	if rep.Format != FormatCompressed || rep.Verdict != Dangerous || !hasGlobal(rep, "os.system") {
		t.Fatalf("%s", dump(rep))
	}
}

func TestTarNumbersAreReadAsTarfileReadsThem(t *testing.T) {
	for _, tc := range []struct {
		field string
		want  int64
		ok    bool
	}{
		{"0000644\x00", 0o644, true},
		{"     12 ", 0o12, true},
		{"\x0012", 0, true}, // tarfile cuts at the first NUL; Go's archive/tar reads 10
		{"+0o1_2\x00", 0o12, true},
		{"-7", -7, true},
		{"1__2", 0, false},
		{"9", 0, false},
		{"\x80\x00\x00\x01\x00", 256, true},
		{"\xff\xff\xff\xff\xff", -1, true},
		{"\xc0", 0, false},
	} {
		got, ok := pythonTarNumber([]byte(tc.field))
		if got != tc.want || ok != tc.ok {
			t.Errorf("%q: got %d %v, want %d %v", tc.field, got, ok, tc.want, tc.ok)
		}
	}
}

// A global pax header that sets a size or a path is applied by tarfile to every later
// member and by Go's archive/tar to none.
func TestGlobalPaxHeaderThatMovesMembersIsAmbiguous(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "g", PAXRecords: map[string]string{"size": "0"}}); err != nil {
		t.Fatal(err)
	}
	if err := tw.WriteHeader(&tar.Header{Name: "a.txt", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("abc"))
	tw.Close()
	if rep := scanBytes(t, buf.Bytes()); !hasRule(rep, "tar.ambiguous") || rep.Verdict != Dangerous {
		t.Fatalf("%s", dump(rep))
	}
}

// rawTarHeader is a V7 header block with a size field as given, and a right checksum.
func rawTarHeader(name, sizeField string, typ byte) []byte {
	h := make([]byte, 512)
	copy(h, name)
	copy(h[100:], "0000644\x00")
	copy(h[124:136], sizeField)
	copy(h[136:], "00000000000\x00")
	h[156] = typ
	copy(h[148:156], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return h
}

// A GNU long-name header whose size Python's tarfile and Go's archive/tar read differently:
// Go takes the next block for the long name, tarfile for the next header. Caught in a tar on
// disk and in a compressed one (a stream).
func TestTarLongNameSizeDisagreementIsAmbiguous(t *testing.T) {
	archive := slices.Concat(
		rawTarHeader("././@LongLink", "\x000000000100\x00", 'L'),
		rawTarHeader("storages", "00000000000\x00", '0'),
		rawTarHeader("model.bin", "00000000000\x00", '0'),
		make([]byte, 1024))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(archive)
	zw.Close()
	for _, b := range [][]byte{archive, gz.Bytes()} {
		if rep := scanBytes(t, b); !hasRule(rep, "tar.ambiguous") || rep.Verdict != Dangerous {
			t.Fatalf("%s", dump(rep))
		}
	}
	// A well-formed archive with a long name is not.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: strings.Repeat("d", 150) + "/data.pkl", Size: int64(len(benignPickle)), Mode: 0o644, Format: tar.FormatGNU})
	tw.Write(benignPickle)
	tw.Close()
	if rep := scanBytes(t, buf.Bytes()); rep.Verdict != Safe {
		t.Fatalf("%s", dump(rep))
	}
}
