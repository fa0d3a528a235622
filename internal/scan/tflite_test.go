package scan

import (
	"os"
	"testing"
)

// The fixtures in testdata/scan/tflite are built with the FlatBuffers library from TFLite's
// schema by make_tflite.py.
func TestTFLiteFixtures(t *testing.T) {
	for _, tc := range []struct {
		file    string
		verdict Verdict
		rule    string
	}{
		{"add.tflite", Safe, ""},
		{"detection_postprocess.tflite", Safe, ""},
		{"flex_add.tflite", Safe, ""},
		{"custom_op.tflite", Safe, "code.tflite-custom-op"},
		{"flex_read_file.tflite", Dangerous, "tflite.flex-op"},
		{"truncated.tflite", Suspicious, "tflite.malformed"},
		{"bad_root.tflite", Suspicious, "tflite.malformed"},
		{"bad_opcode_index.tflite", Suspicious, "tflite.malformed"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			rep := scanPath(t, fixture("tflite", tc.file))
			if rep.Format != FormatTFLite || rep.Verdict != tc.verdict || tc.rule != "" && !hasRule(rep, tc.rule) {
				t.Fatalf("got %s %s, want %s %s with %q\n%s", rep.Format, rep.Verdict, FormatTFLite, tc.verdict, tc.rule, dump(rep))
			}
			if tc.rule == "" && len(rep.Findings) > 0 {
				t.Fatalf("a benign model has findings\n%s", dump(rep))
			}
		})
	}
}

// Every cut of a model with a custom operator is reported or still finds the operator.
func TestTFLiteEveryTruncation(t *testing.T) {
	b, err := os.ReadFile(fixture("tflite", "custom_op.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	for n := 8; n < len(b); n++ {
		rep := scanBytes(t, b[:n])
		if rep.Format == FormatTFLite && rep.Verdict == Safe && !hasRule(rep, "code.tflite-custom-op") {
			t.Fatalf("cut at %d: safe without the custom operator\n%s", n, dump(rep))
		}
	}
}
