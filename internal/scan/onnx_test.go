package scan

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// The fixtures in testdata/scan/onnx are written by the real onnx package (make_onnx.py).
func TestONNXFixtures(t *testing.T) {
	for _, tc := range []struct {
		file    string
		verdict Verdict
		rule    string // a rule that must fire; "" for none
	}{
		{"add.onnx", Safe, ""},
		{"if_subgraph.onnx", Safe, ""},
		{"local_function.onnx", Safe, ""},
		{"external.onnx", Safe, ""},
		{"external.onnx.data", Safe, ""},
		{"custom_op.onnx", Safe, "code.onnx-custom-op"},
		{"custom_op_in_subgraph.onnx", Safe, "code.onnx-custom-op"},
		{"external_dotdot.onnx", Dangerous, "onnx.external-path"},
		{"external_nested_dotdot.onnx", Dangerous, "onnx.external-path"},
		{"external_backslash.onnx", Dangerous, "onnx.external-path"},
		{"external_absolute.onnx", Dangerous, "onnx.external-path"},
		{"external_drive.onnx", Dangerous, "onnx.external-path"},
		{"external_basepath.onnx", Suspicious, "onnx.external-key"},
		{"external_missing.onnx", Suspicious, "onnx.external-missing"},
		{"external_range.onnx", Suspicious, "onnx.external-range"},
		{"external_no_location.onnx", Suspicious, "onnx.external-location"},
		{"truncated.onnx", Suspicious, "onnx.malformed"},
		{"bad_length.onnx", Suspicious, "onnx.malformed"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			rep := scanPath(t, fixture("onnx", tc.file))
			want := FormatONNX
			if tc.file == "external.onnx.data" {
				want = FormatUnknown
			}
			if rep.Format != want || rep.Verdict != tc.verdict || tc.rule != "" && !hasRule(rep, tc.rule) {
				t.Fatalf("got %s %s, want %s %s with %q\n%s", rep.Format, rep.Verdict, want, tc.verdict, tc.rule, dump(rep))
			}
			if tc.rule == "" && len(rep.Findings) > 0 {
				t.Fatalf("a benign model has findings\n%s", dump(rep))
			}
		})
	}
	rep := scanPath(t, fixture("onnx", "truncated.onnx"))
	if !rep.Has(ErrTruncated) {
		t.Errorf("a model cut short is not reported truncated\n%s", dump(rep))
	}
	if got := scanPath(t, fixture("onnx", "external.onnx")).ONNXExternalData(); len(got) != 1 || got[0] != "external.onnx.data" {
		t.Errorf("ONNXExternalData = %q, want [external.onnx.data]", got)
	}
}

// A link named as external data that leads out of the model directory is refused, though
// the name itself is plain (CVE-2026-27489's symlink form).
func TestONNXExternalLinkOutOfDirectory(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, make([]byte, 64), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b, err := os.ReadFile(fixture("onnx", "external.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, "external.onnx.data")); err != nil {
		t.Fatal(err)
	}
	rep := scanPath(t, filepath.Join(dir, "model.onnx"))
	if rep.Verdict != Dangerous || !hasRule(rep, "onnx.external-link") {
		t.Fatalf("want the escaping link refused\n%s", dump(rep))
	}
	// A link that stays inside the directory is fine.
	if err := os.Remove(filepath.Join(dir, "external.onnx.data")); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(fixture("onnx", "external.onnx.data"))
	if err := os.WriteFile(filepath.Join(dir, "weights.bin"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("weights.bin", filepath.Join(dir, "external.onnx.data")); err != nil {
		t.Fatal(err)
	}
	if rep := scanPath(t, filepath.Join(dir, "model.onnx")); rep.Verdict != Safe {
		t.Fatalf("a link inside the model directory refused\n%s", dump(rep))
	}
}

// Inside an archive the external files cannot be located, so the model is not vouched for;
// a custom operator is found there too.
func TestONNXInsideZip(t *testing.T) {
	for _, tc := range []struct {
		file string
		rule string
	}{
		{"external.onnx", "onnx.external-in-archive"},
		{"custom_op.onnx", "code.onnx-custom-op"},
		{"external_dotdot.onnx", "onnx.external-path"},
	} {
		b, err := os.ReadFile(fixture("onnx", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		rep := scanBytes(t, makeZip(t, zipEntry{name: "model/" + tc.file, data: b, method: 8}))
		if !hasRule(rep, tc.rule) || len(rep.Members) == 0 || rep.Members[0].Format != FormatONNX {
			t.Errorf("%s in a zip: want %s and an onnx member\n%s%+v", tc.file, tc.rule, dump(rep), rep.Members)
		}
	}
}

// A file named .onnx whose content is not a model is reported, not waved through.
func TestONNXNameWithOtherContent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(p, []byte("\x0a\x03abc\x12\xff"), 0o600); err != nil {
		t.Fatal(err)
	}
	if rep := scanPath(t, p); rep.Verdict == Safe {
		t.Fatalf("garbage named .onnx is safe\n%s", dump(rep))
	}
}

func TestExternalPathProblem(t *testing.T) {
	for loc, bad := range map[string]bool{
		"w.bin": false, "sub/w.bin": false, "a..b": false, "sub\\w.bin": false,
		"": true, "../w": true, "a/../../w": true, "a\\..\\w": true, "/w": true, "\\\\host\\share": true,
		"C:w": true, "w\x00.bin": true,
	} {
		if got := externalPathProblem(loc) != ""; got != bad {
			t.Errorf("externalPathProblem(%q) bad = %v, want %v", loc, got, bad)
		}
	}
}

// The encoder the benchmark uses writes models the scanner reads as benign.
func TestONNXBenchmarkModel(t *testing.T) {
	raw := make([]byte, 64)
	m := append(onnxWithTensor(int64(len(raw)), "", 0), raw...)
	if rep := scanBytes(t, m); rep.Format != FormatONNX || rep.Verdict != Safe {
		t.Fatalf("inline model\n%s", dump(rep))
	}
	if rep := scanBytes(t, onnxWithTensor(64, "w.data", 64)); rep.Format != FormatONNX || rep.Verdict != Safe {
		t.Fatalf("external model\n%s", dump(rep))
	}
}

// A model scanned alone (a staged blob) leaves its external data to CheckONNXExternalData,
// which reports only what it finds about those files.
func TestONNXExternalDataCheckedOnceLaidOut(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(fixture("onnx", "external.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "blob-1234"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if rep := scanPath(t, filepath.Join(dir, "blob-1234"), WithFileAlone()); rep.Verdict != Safe {
		t.Fatalf("alone: the missing external data was checked\n%s", dump(rep))
	}
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := CheckONNXExternalData(context.Background(), dir, "model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict == Safe || !hasRule(rep, "onnx.external-missing") || len(rep.Findings) != 1 {
		t.Fatalf("laid out without its data\n%s", dump(rep))
	}
	data, _ := os.ReadFile(fixture("onnx", "external.onnx.data"))
	if err := os.WriteFile(filepath.Join(dir, "external.onnx.data"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if rep, err := CheckONNXExternalData(context.Background(), dir, "model.onnx"); err != nil || rep.Verdict != Safe {
		t.Fatalf("laid out with its data: %v\n%s", err, dump(rep))
	}
}
