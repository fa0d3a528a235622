package scan

import "testing"

func TestTarCheckpoints(t *testing.T) {
	for _, tc := range []struct {
		file    string
		format  Format
		verdict Verdict
		rule    string
		global  string
	}{
		{"ok_legacy_tar.tar", FormatPyTorchTar, Safe, "", "torch.FloatStorage"},
		{"bad_legacy_tar_payload.tar", FormatPyTorchTar, Dangerous, "global.denylisted", "posix.system"},
		{"bad_legacy_tar_storage_truncated.tar", FormatPyTorchTar, Suspicious, "pytorch.tar-record", "torch.FloatStorage"},
		{"bad_generic_tar_proto0.tar", FormatTar, Dangerous, "global.denylisted", "os.system"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			rep := scanPath(t, fixture("tar", tc.file))
			if rep.Format != tc.format || rep.Verdict != tc.verdict {
				t.Fatalf("got %s %s, want %s %s\n%s", rep.Format, rep.Verdict, tc.format, tc.verdict, dump(rep))
			}
			if tc.rule != "" && !hasRule(rep, tc.rule) {
				t.Errorf("no %s finding\n%s", tc.rule, dump(rep))
			}
			if !hasGlobal(rep, tc.global) {
				t.Errorf("globals %v lack %s", rep.Globals, tc.global)
			}
		})
	}
}
