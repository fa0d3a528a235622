package scan

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
)

const (
	picklescanDir = "../../testdata/interop/picklescan"
	fixtureDir    = "../../testdata/scan"
)

func scanPath(t testing.TB, path string, opts ...Option) *Report {
	t.Helper()
	rep, err := ScanFile(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("ScanFile(%s): %v", path, err)
	}
	return rep
}

func scanBytes(t testing.TB, b []byte, opts ...Option) *Report {
	t.Helper()
	rep, err := Scan(context.Background(), bytes.NewReader(b), int64(len(b)), opts...)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return rep
}

func fixture(parts ...string) string { return filepath.Join(append([]string{fixtureDir}, parts...)...) }

func hasGlobal(rep *Report, g string) bool {
	for _, x := range rep.Globals {
		if x == g {
			return true
		}
	}
	return false
}

func hasRule(rep *Report, rule string) bool {
	for _, f := range rep.Findings {
		if f.Rule == rule {
			return true
		}
	}
	return false
}

func dump(rep *Report) string {
	var b bytes.Buffer
	b.WriteString(string(rep.Format) + " " + rep.Verdict.String() + "\n")
	for _, f := range rep.Findings {
		b.WriteString("  " + f.Rule + ": " + f.Error() + "\n")
	}
	return b.String()
}
