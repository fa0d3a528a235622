package scan

import (
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
