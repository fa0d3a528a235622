package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRenderBar(t *testing.T) {
	for _, tc := range []struct {
		done, total int64
		want        string
	}{
		{0, 1000, "dl [>         ]   0% 0 B / 1.0 kB"},
		{500, 1000, "dl [=====>    ]  50% 500 B / 1.0 kB"},
		{1000, 1000, "dl [==========] 100% 1.0 kB / 1.0 kB"},
		{2000, 1000, "dl [==========] 100% 1.0 kB / 1.0 kB"},
		{1_500_000, 0, "dl 1.5 MB"},
		{0, 0, "dl"},
	} {
		if got := renderBar("dl", tc.done, tc.total, 10); got != tc.want {
			t.Errorf("renderBar(%d, %d) = %q, want %q", tc.done, tc.total, got, tc.want)
		}
	}
}

func TestProgressDrawsOnlyOnATerminal(t *testing.T) {
	var b bytes.Buffer
	if p := newProgress(&env{stderr: &b}, "x"); p != nil {
		t.Fatal("a progress bar for a stderr that is not a terminal")
	}
	var nilBar *progressBar
	nilBar.set(1, 2)
	nilBar.file("a", 1, 2)
	nilBar.step("s")
	nilBar.finish()

	p := newProgress(&env{stderr: &b, terminal: true}, "downloading")
	p.file("a.bin", 0, 100)
	p.file("b.bin", 0, 300)
	p.step("check")
	p.finish()
	out := b.String()
	if !strings.HasPrefix(out, "\r\033[Kdownloading [") || !strings.Contains(out, "\r\033[Kcheck [") || !strings.HasSuffix(out, "0 B / 400 B\r\033[K") {
		t.Errorf("drawn %q", out)
	}
}
