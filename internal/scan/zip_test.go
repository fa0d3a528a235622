package scan

import (
	"bytes"
	"strings"
	"testing"

	"github.com/klauspost/compress/zip"
)

type zipEntry struct {
	name   string
	data   []byte
	method uint16
}

func makeZip(t *testing.T, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, e := range entries {
		fw, err := w.CreateHeader(&zip.FileHeader{Name: e.name, Method: e.method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var (
	benignPickle = []byte("\x80\x02}q\x00.")
	evilPickle   = []byte("\x80\x02cos\nsystem\nX\x02\x00\x00\x00id\x85R.")
	version      = zipEntry{name: "archive/version", data: []byte("3\n")}
)

// tensorPickle is a state dict {"w": tensor} whose tensor uses storage "0" of numel floats.
func tensorPickle(numel byte) []byte {
	return []byte("\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n(" +
		"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK" + string([]byte{numel}) + "tQ" +
		"K\x00K" + string([]byte{numel}) + "\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRs.")
}

func TestZipCentralDirectoryGames(t *testing.T) {
	dup := makeZip(t, zipEntry{name: "archive/data.pkl", data: benignPickle}, zipEntry{name: "archive/data.pkl", data: evilPickle}, version)
	rep := scanBytes(t, dup)
	if rep.Verdict != Dangerous || !hasRule(rep, "zip.duplicate") || !hasRule(rep, "pytorch.multiple-pickles") {
		t.Errorf("duplicate data.pkl: every copy must be scanned and the duplication reported\n%s", dump(rep))
	}
	rep = scanBytes(t, makeZip(t, zipEntry{name: "../evil.bin", data: benignPickle}))
	if rep.Verdict == Safe || !hasRule(rep, "zip.path") {
		t.Errorf("member escaping the archive not reported\n%s", dump(rep))
	}
}

func TestPyTorchZipStorageMustHoldWhatDataPklDeclares(t *testing.T) {
	good := makeZip(t, zipEntry{name: "archive/data.pkl", data: tensorPickle(2)}, zipEntry{name: "archive/data/0", data: make([]byte, 8)}, version)
	if rep := scanBytes(t, good); rep.Verdict != Safe || rep.Format != FormatPyTorchZip {
		t.Fatalf("well-formed checkpoint: %s", dump(rep))
	}
	short := makeZip(t, zipEntry{name: "archive/data.pkl", data: tensorPickle(100)}, zipEntry{name: "archive/data/0", data: make([]byte, 8)}, version)
	if rep := scanBytes(t, short); rep.Verdict == Safe || !hasRule(rep, "pytorch.storage-size") {
		t.Fatalf("storage smaller than declared: %s", dump(rep))
	}
	missing := makeZip(t, zipEntry{name: "archive/data.pkl", data: tensorPickle(2)}, version)
	if rep := scanBytes(t, missing); !hasRule(rep, "pytorch.storage-missing") {
		t.Fatalf("missing storage record: %s", dump(rep))
	}
	noVersion := makeZip(t, zipEntry{name: "archive/data.pkl", data: tensorPickle(2)}, zipEntry{name: "archive/data/0", data: make([]byte, 8)})
	if rep := scanBytes(t, noVersion); !hasRule(rep, "pytorch.version-missing") {
		t.Fatalf("missing version record: %s", dump(rep))
	}
}

func TestCompressedAndNestedMembersAreScanned(t *testing.T) {
	deflated := makeZip(t, zipEntry{name: "archive/data.pkl", data: evilPickle, method: zip.Deflate}, version)
	if rep := scanBytes(t, deflated); rep.Verdict != Dangerous || rep.Format != FormatPyTorchZip {
		t.Errorf("deflated data.pkl: %s", dump(rep))
	}
	inner := makeZip(t, zipEntry{name: "payload.dat", data: evilPickle})
	for _, method := range []uint16{zip.Store, zip.Deflate} {
		outer := makeZip(t, zipEntry{name: "inner.zip", data: inner, method: method})
		rep := scanBytes(t, outer)
		if rep.Verdict != Dangerous {
			t.Fatalf("nested zip (method %d): %s", method, dump(rep))
		}
		found := false
		for _, f := range rep.Findings {
			found = found || (f.Member == "inner.zip!payload.dat" && f.Global == "os.system")
		}
		if !found {
			t.Errorf("nested finding does not name its member path\n%s", dump(rep))
		}
	}
	// Raw tensor bytes in data/ are not read beyond a sniff of their first bytes.
	big := makeZip(t, zipEntry{name: "archive/data.pkl", data: tensorPickle(2)}, zipEntry{name: "archive/data/0", data: bytes.Repeat([]byte("cos\n"), 1<<18)}, version)
	rep := scanBytes(t, big)
	if rep.Verdict != Safe || rep.BytesRead > int64(len(big))/2 {
		t.Errorf("storage record read or misjudged: read %d of %d\n%s", rep.BytesRead, len(big), dump(rep))
	}
	if !strings.Contains(dump(rep), "pytorch-zip") {
		t.Errorf("format: %s", dump(rep))
	}
}
