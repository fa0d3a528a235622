package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// maliciousPickle is a protocol-2 pickle that calls os.system("id") when loaded.
var maliciousPickle = []byte("\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.")

// pytorchZip is a PyTorch-style zip checkpoint whose data.pkl is pkl.
func pytorchZip(t *testing.T, pkl []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, data := range map[string][]byte{"archive/data.pkl": pkl, "archive/version": []byte("3\n")} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestScanSafeFilesExitZero(t *testing.T) {
	dir := t.TempDir()
	writeModel(t, dir, tinyModel())
	out, _ := wantExit(t, 0, dir, "scan", ".")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(tinyModel()) {
		t.Fatalf("%d lines for %d files:\n%s", len(lines), len(tinyModel()), out)
	}
	if !strings.Contains(out, "safe       safetensors       model.safetensors") {
		t.Errorf("no safetensors line:\n%s", out)
	}
}

func TestScanUnsafeFilesExitOneWithFindings(t *testing.T) {
	dir := t.TempDir()
	writeModel(t, dir, map[string][]byte{
		"model.safetensors": demoSafetensors(8),
		"evil.pkl":          maliciousPickle,
		"model.pt":          pytorchZip(t, maliciousPickle),
		"truncated.pkl":     maliciousPickle[:10],
	})
	out, stderr := wantExit(t, 1, dir, "scan", ".")
	for _, want := range []string{
		"dangerous  pickle            evil.pkl\n    dangerous:",
		"os.system",
		"model.pt!archive/data.pkl",
		"safe       safetensors       model.safetensors",
		"truncated.pkl",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if stderr != "verifier: scan: 3 of 4 files are not safe\n" {
		t.Errorf("stderr %q", stderr)
	}

	out, _ = wantExit(t, 1, dir, "scan", "--json", filepath.Join(dir, "evil.pkl"), filepath.Join(dir, "model.safetensors"))
	var res struct {
		Files, Unsafe int
		Results       []scanLine
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err, out)
	}
	if res.Files != 2 || res.Unsafe != 1 || len(res.Results) != 2 || res.Results[0].Verdict != "dangerous" ||
		len(res.Results[0].Findings) == 0 || !strings.Contains(strings.Join(res.Results[0].Globals, ","), "os.system") {
		t.Errorf("--json: %+v", res)
	}
}

func TestScanPicklescanSamples(t *testing.T) {
	dir := absPath(t, "../../testdata/interop/picklescan/data")
	out, _ := wantExit(t, 1, dir, "scan", "malicious1.zip", "benign0_v4.pkl")
	if !strings.Contains(out, "dangerous  pickle            malicious1.zip!data.pkl") ||
		!strings.Contains(out, "safe       pickle            benign0_v4.pkl") {
		t.Errorf("picklescan samples:\n%s", out)
	}
	wantExit(t, 0, dir, "scan", "benign0_v4.pkl")
}

func TestScanUsageAndIOErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{{"scan"}, {"scan", "/does/not/exist"}} {
		_, stderr, code := runVerifier(t, t.TempDir(), args...)
		if code != 2 || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, %q", args, code, stderr)
		}
	}
}
