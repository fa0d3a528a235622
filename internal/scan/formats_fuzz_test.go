package scan

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
)

// FuzzONNX: any bytes given to the ONNX walker keep the scan invariants; a model that names
// an external location with ".." is never safe.
func FuzzONNX(f *testing.F) {
	seed(f, fixtureDir+"/onnx/*.onnx")
	f.Fuzz(func(t *testing.T, b []byte) {
		rep := &Report{}
		scanONNX(bytesReaderAt(b), int64(len(b)), rep, "")
		checkReport(t, rep)
		checkInvariants(t, b)
	})
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// checkReport: every finding has a sentinel, and the verdict is the worst finding's.
func checkReport(t *testing.T, rep *Report) {
	t.Helper()
	worst := Safe
	for _, f := range rep.Findings {
		worst = max(worst, f.Verdict)
		if f.Err == nil {
			t.Fatalf("finding without a sentinel: %+v", f)
		}
	}
	if rep.Verdict != worst {
		t.Fatalf("verdict %s, worst finding %s", rep.Verdict, worst)
	}
	if rep.Has(ErrMalformed) && rep.Verdict == Safe {
		t.Fatalf("malformed file reported safe:\n%s", dump(rep))
	}
	for _, e := range rep.onnxExternal {
		if externalPathProblem(e.location) != "" {
			t.Fatalf("unsafe external location %q kept as a plain one", e.location)
		}
	}
}

// FuzzHDF5: the HDF5 reader keeps the invariants on any bytes after the signature.
func FuzzHDF5(f *testing.F) {
	seed(f, fixtureDir+"/keras/*.h5")
	f.Fuzz(func(t *testing.T, b []byte) {
		rep := &Report{}
		scanHDF5(bytesReaderAt(b), int64(len(b)), rep, "")
		checkReport(t, rep)
		checkInvariants(t, append(append([]byte{}, magicHDF5...), b...))
	})
}

// FuzzKerasConfig: any JSON a Keras config may hold; a Lambda anywhere is always reported.
func FuzzKerasConfig(f *testing.F) {
	seed(f, fixtureDir+"/keras/*.json")
	f.Add([]byte(`{"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", "config": {}}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep := &Report{}
		format := scanKerasJSON(bytesReaderAt(b), int64(len(b)), rep, "", jsonFactsOf(bytesReaderAt(b), int64(len(b))))
		checkReport(t, rep)
		if format == FormatKerasConfig && bytes.Contains(b, []byte(`"class_name": "Lambda"`)) && !hasRule(rep, "code.keras-lambda") &&
			!bytes.Contains(b, []byte(`\`)) {
			t.Fatalf("Lambda not reported\n%s", dump(rep))
		}
		checkInvariants(t, b)
	})
}

// FuzzSavedModel: the SavedModel walker keeps the invariants on any bytes.
func FuzzSavedModel(f *testing.F) {
	seed(f, fixtureDir+"/savedmodel/*.pb")
	f.Fuzz(func(t *testing.T, b []byte) {
		rep := &Report{}
		scanSavedModel(bytesReaderAt(b), int64(len(b)), rep, "")
		checkReport(t, rep)
		checkInvariants(t, b)
	})
}

// FuzzTFLite: the FlatBuffer reader stays in bounds and keeps the invariants on any bytes.
func FuzzTFLite(f *testing.F) {
	seed(f, fixtureDir+"/tflite/*.tflite")
	f.Fuzz(func(t *testing.T, b []byte) {
		rep := &Report{}
		scanTFLite(bytesReaderAt(b), int64(len(b)), rep, "")
		checkReport(t, rep)
		checkInvariants(t, b)
	})
}

// FuzzNameContent: naming never fails and agrees with encoding/json on one-value JSON.
func FuzzNameContent(f *testing.F) {
	seed(f, fixtureDir+"/text/*")
	f.Fuzz(func(t *testing.T, b []byte) {
		format := nameContent(bytesReaderAt(b), int64(len(b)), newConfig(nil), &Report{}, "", nil)
		if format == FormatJSON && !json.Valid(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))) {
			t.Fatalf("%q named json but encoding/json refuses it", b)
		}
		checkInvariants(t, b)
	})
}

// FuzzKerasMetadata: the keras_metadata.pb walker keeps the invariants on any bytes.
func FuzzKerasMetadata(f *testing.F) {
	seed(f, fixtureDir+"/savedmodel/keras_metadata*.pb")
	f.Fuzz(func(t *testing.T, b []byte) {
		rep := &Report{}
		scanKerasMetadata(bytesReaderAt(b), int64(len(b)), rep, "")
		checkReport(t, rep)
		checkInvariants(t, b)
	})
}
