package hubtest

import "testing"

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=10-", "bytes=-5", "bytes=5-1", "bytes=0-1,3-4", "items=1-2", "bytes=99999999999999999999-"} {
		f.Add(s, int64(1000))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			return
		}
		start, end, ok, satisfiable := parseRange(h, size)
		if ok && satisfiable && (start < 0 || end < start || end >= size) {
			t.Fatalf("%q over %d bytes gave [%d, %d]", h, size, start, end)
		}
	})
}

func FuzzSplitEscaped(f *testing.F) {
	for _, s := range []string{"/api/models/a/b/revision/refs%2Fpr%2F1", "/a/b/resolve/main/x%2F..%2Fy", "%zz", "//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) { _, _ = splitEscaped(p) })
}
