package scan

import (
	"os"
	"testing"
)

// The fixtures in testdata/scan/savedmodel are encoded from TensorFlow's protos by
// make_savedmodel.py, shaped like tf.saved_model.save's output.
func TestSavedModelFixtures(t *testing.T) {
	for _, tc := range []struct {
		file    string
		verdict Verdict
		rule    string
	}{
		{"benign.pb", Safe, ""},
		{"read_file.pb", Dangerous, "savedmodel.op"},
		{"write_file.pb", Dangerous, "savedmodel.op"},
		{"matching_files.pb", Dangerous, "savedmodel.op"},
		{"py_func.pb", Dangerous, "savedmodel.op"},
		{"save_absolute.pb", Dangerous, "savedmodel.checkpoint-path"},
		{"restore_dotdot.pb", Dangerous, "savedmodel.checkpoint-path"},
		{"vocab_table.pb", Suspicious, "savedmodel.op"},
		{"asset_dotdot.pb", Dangerous, "savedmodel.asset-path"},
		{"truncated.pb", Suspicious, "savedmodel.malformed"},
		{"bad_wire_type.pb", Suspicious, "savedmodel.malformed"},
		{"benign.pbtxt", Safe, ""},
		{"read_write_file.pbtxt", Dangerous, "savedmodel.op"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			rep := scanPath(t, fixture("savedmodel", tc.file))
			if rep.Format != FormatSavedModel || rep.Verdict != tc.verdict || tc.rule != "" && !hasRule(rep, tc.rule) {
				t.Fatalf("got %s %s, want %s %s with %q\n%s", rep.Format, rep.Verdict, FormatSavedModel, tc.verdict, tc.rule, dump(rep))
			}
			if tc.rule == "" && len(rep.Findings) > 0 {
				t.Fatalf("a benign model has findings\n%s", dump(rep))
			}
		})
	}
	if rep := scanPath(t, fixture("savedmodel", "truncated.pb")); !rep.Has(ErrTruncated) {
		t.Errorf("a cut SavedModel is not reported truncated\n%s", dump(rep))
	}
}

// A SavedModel directory shipped as a tar or zip is judged by content too.
func TestSavedModelInsideZip(t *testing.T) {
	b, err := os.ReadFile(fixture("savedmodel", "read_file.pb"))
	if err != nil {
		t.Fatal(err)
	}
	rep := scanBytes(t, makeZip(t, zipEntry{name: "model/saved_model.pb", data: b, method: 8}))
	if rep.Verdict != Dangerous || !hasRule(rep, "savedmodel.op") || rep.Members[0].Format != FormatSavedModel {
		t.Fatalf("SavedModel in a zip not judged\n%s", dump(rep))
	}
}
