package scan

import (
	"archive/zip"
	"bytes"
	"io"
	"testing"
)

// The unpickler parses INT, LONG, GET and PUT arguments with Python's int(): a scanner that
// rejects forms Python accepts would stop early and miss what follows.
func TestNumbersInPythonSyntaxDoNotHideLaterImports(t *testing.T) {
	for _, arg := range []string{"0x10", "1_000", " 42 ", "-0o17", "0b101", "+7"} {
		p := []byte("I" + arg + "\n0cos\nsystem\n(S'id'\ntR.")
		rep := scanBytes(t, p)
		if rep.Verdict != Dangerous || !hasGlobal(rep, "os.system") {
			t.Errorf("INT %q hid the import:\n%s", arg, dump(rep))
		}
	}
	for _, bad := range []string{"", "0x", "1__0", "_1", "1.5", "ten"} {
		if _, ok := pythonInt(bad); ok {
			t.Errorf("pythonInt(%q) accepted what Python rejects", bad)
		}
	}
	if v, ok := pythonInt("99999999999999999999999"); !ok || v <= 0 {
		t.Errorf("big integers must parse (saturated), got %d %v", v, ok)
	}
	memo := []byte("Vos\np0_1\n0Vsystem\np 2\n0g0_1\ng2\n\x93(Vid\ntR.")
	if rep := scanBytes(t, memo); !hasGlobal(rep, "os.system") {
		t.Errorf("memo indices in Python syntax:\n%s", dump(rep))
	}
}

func TestPython2ModuleNamesAreJudgedAsTheModulesTheyImport(t *testing.T) {
	for _, tc := range []struct{ module, global string }{
		{"__builtin__", "builtins.eval"},
		{"SocketServer", "socketserver.eval"},
		{"cPickle", "pickle.eval"},
		{"thread", "_thread.eval"},
	} {
		rep := scanBytes(t, []byte("c"+tc.module+"\neval\n(S'1'\ntR."))
		if rep.Verdict != Dangerous || !hasGlobal(rep, tc.global) {
			t.Errorf("%s: %s", tc.module, dump(rep))
		}
	}
}

// What loading would do with these is decided by the stack machine, not by opcode patterns.
func TestStackMachineResolvesImportsThroughTheMemo(t *testing.T) {
	for name, p := range map[string]string{
		"DUP then STACK_GLOBAL":      "\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R.",
		"MEMOIZE and BINGET":         "\x80\x04\x8c\x02os\x94\x8c\x06system\x94h\x00h\x01\x93\x8c\x02id\x85R.",
		"decoy strings, LONG_BINPUT": "\x80\x04\x8c\x02osr\x07\x00\x00\x000\x8c\x06systemr\x08\x00\x00\x000\x8c\x05torch\x8c\x0bLongStorage0j\x07\x00\x00\x00j\x08\x00\x00\x00\x93\x8c\x02id\x85R.",
	} {
		rep := scanBytes(t, []byte(p))
		if rep.Verdict != Dangerous || !hasGlobal(rep, "os.system") {
			t.Errorf("%s: %s", name, dump(rep))
		}
	}
	// Allowlisted imports in a well-formed pickle are safe, and listed.
	ok := "\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01."
	if rep := scanBytes(t, []byte(ok)); rep.Verdict != Safe || !hasGlobal(rep, "collections.OrderedDict") {
		t.Errorf("OrderedDict(): %s", dump(rep))
	}
	// EXT opcodes import from a registry the scanner cannot see.
	if rep := scanBytes(t, []byte("\x80\x02\x82\x01)R.")); rep.Verdict != Dangerous {
		t.Errorf("EXT1: %s", dump(rep))
	}
}

// Real torch.save checkpoints (testdata/scan/make_torch_checkpoints.py, torch 1.13) holding a
// set, a complex number and a bytearray: protocol 2 writes __builtin__.set, .complex and
// .bytearray, which current PyTorch's weights_only unpickler accepts. They scan safe.
func TestCheckpointsHoldingSetComplexAndBytearrayAreSafe(t *testing.T) {
	for _, tc := range []struct {
		file   string
		format Format
	}{
		{"torch_builtins_zip.pt", FormatPyTorchZip},
		{"torch_builtins_legacy.pt", FormatPyTorchLegacy},
	} {
		rep := scanPath(t, fixture(tc.file))
		if rep.Verdict != Safe || rep.Format != tc.format {
			t.Errorf("%s: got %s %s, want %s safe\n%s", tc.file, rep.Format, rep.Verdict, tc.format, dump(rep))
		}
		for _, g := range []string{"builtins.set", "builtins.complex", "builtins.bytearray", "_codecs.encode"} {
			if !hasGlobal(rep, g) {
				t.Errorf("%s: globals %v lack %s", tc.file, rep.Globals, g)
			}
		}
	}
}

// A legacy checkpoint with one storage pickles its storage-key list as EMPTY_LIST, key,
// APPEND: the key must be recorded, or the one storage looks used but never stored.
func TestLegacyCheckpointWithOneStorageIsSafe(t *testing.T) {
	for _, file := range []string{"torch_one_tensor_legacy.pt", "torch_one_storage_dict_legacy.pt"} {
		rep := scanPath(t, fixture(file))
		if rep.Verdict != Safe || rep.Format != FormatPyTorchLegacy || len(rep.Findings) != 0 {
			t.Errorf("%s: got %s %s, want a safe legacy checkpoint\n%s", file, rep.Format, rep.Verdict, dump(rep))
		}
	}
}

// The allowlist is PyTorch's weights_only list and decides before the rules that refuse any
// path through builtins; what is not on it stays judged by those rules.
func TestAllowlistDecidesBeforeDangerousComponents(t *testing.T) {
	for _, tc := range []struct {
		module, name string
		want         Verdict
	}{
		{"builtins", "set", Safe},
		{"__builtin__", "complex", Safe},
		{"builtins", "bytearray", Safe},
		{"collections", "Counter", Safe},
		{"torch", "device", Safe},
		{"torch", "float8_e4m3fn", Safe},
		{"torch.storage", "UntypedStorage", Safe},
		{"torch.sparse", "FloatTensor", Safe},
		{"builtins", "set.__init__", Dangerous},
		{"builtins", "eval", Dangerous},
		{"builtins", "print", Dangerous},
		{"builtins.set", "x", Dangerous},
		// Not names PyTorch's unpickler matches: aliases, layouts, memory formats.
		{"torch", "float", Suspicious},
		{"torch", "long", Suspicious},
		{"torch", "strided", Suspicious},
		{"torch", "contiguous_format", Suspicious},
		{"torch", "UntypedStorage", Suspicious},
	} {
		if j := judgeGlobal(tc.module, tc.name, nil); j.verdict != tc.want {
			t.Errorf("%s.%s: %s (%s), want %s", tc.module, tc.name, j.verdict, j.rule, tc.want)
		}
	}
	// The caller's extra allowlist does not override the component rules.
	if j := judgeGlobal("builtins", "print", map[string]bool{"builtins.print": true}); j.verdict != Dangerous {
		t.Errorf("extra-allowlisted builtins.print: %s", j.verdict)
	}
}

// Unpickling imports a module before it can fail, and importing runs the module's code
// (testdata/scan/make_imports.py shows pickle.load and torch.load doing so). An import outside
// the allowlist is a finding even without a call or a STOP when a loader would unpickle the
// file; a text file that merely starts with "c" stays text.
func TestImportsWithoutACallAreFindingsWhereLoadersUnpickle(t *testing.T) {
	for _, tc := range []struct {
		file    string
		format  Format
		verdict Verdict
		global  string
	}{
		{"antigravity.pkl", FormatPickle, Dangerous, "antigravity.webbrowser"},
		{"repo_module.pkl", FormatPickle, Suspicious, "modeling_custom.Loader"},
		{"repo_module.bin", FormatPickle, Suspicious, "modeling_custom.Loader"},
		{"repo_module_after_int", FormatPickle, Suspicious, "modeling_custom.Loader"},
		{"tar_pickle_member.tar", FormatPyTorchTar, Suspicious, "modeling_custom.Loader"},
		{"repo_module.txt", FormatText, Safe, ""},
		{"words.txt", FormatText, Safe, ""},
	} {
		rep := scanPath(t, fixture("imports", tc.file))
		if rep.Format != tc.format || rep.Verdict != tc.verdict {
			t.Errorf("%s: got %s %s, want %s %s\n%s", tc.file, rep.Format, rep.Verdict, tc.format, tc.verdict, dump(rep))
		}
		if tc.global != "" && !hasGlobal(rep, tc.global) {
			t.Errorf("%s: globals %v lack %s", tc.file, rep.Globals, tc.global)
		}
		if tc.verdict != Safe && !rep.Has(ErrUnlistedGlobal) && !rep.Has(ErrDangerousGlobal) {
			t.Errorf("%s: no import finding\n%s", tc.file, dump(rep))
		}
	}
}

func TestWhetherAnImportAloneMakesAPickleFollowsTheName(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		format        Format
		verdict       Verdict
	}{
		// Names loaders unpickle.
		{"classes.pkl", "cat\ndog\nbird\n", FormatPickle, Suspicious},
		{"pytorch_model.bin", "cmodeling_custom\nLoader\n", FormatPickle, Suspicious},
		{"checkpoint.pth.tar", "cmodeling_custom\nLoader\n", FormatPickle, Suspicious},
		{"model.joblib", "cmodeling_custom\nLoader\n", FormatPickle, Suspicious},
		{"scores.npy", "cmodeling_custom\nLoader\n", FormatPickle, Suspicious},
		// Names no loader unpickles, and no name: text stays text.
		{"classes.txt", "cat\ndog\nbird\n", FormatText, Safe},
		{"", "cat\ndog\nbird\n", FormatText, Safe},
		{"LICENSE", "cmodeling_custom\nLoader\n", FormatText, Safe},
		{"README.md", "café\nau lait\n", FormatText, Safe},
		// Text no unpickler can import from (not Python names), whatever the name.
		{"model.pkl", "copyright 2024\nAll rights reserved\n", FormatText, Safe},
		// Not text before the import: a pickle whatever the name.
		{"", "K\x01cmodeling_custom\nLoader\n", FormatPickle, Suspicious},
		{"blob.txt", "N\x00", FormatUnknown, Safe},
		// Text after the import does not matter; binary after it does not make a pickle either.
		{"notes.txt", "cmodeling_custom\nLoader\n\x00\x01", FormatUnknown, Safe},
		// Imports that act by themselves are dangerous whatever the name.
		{"notes.txt", "cantigravity\nwebbrowser\n", FormatPickle, Dangerous},
		{"notes.txt", "cthis\nx\n", FormatPickle, Dangerous},
		{"notes.txt", "cjson.__main__\nmain\n", FormatPickle, Dangerous},
		// A bare __main__ is the running program, which script-defined classes name.
		{"model.pkl", "c__main__\nNet\n", FormatPickle, Suspicious},
		// Allowlisted imports alone run nothing beyond torch's own import.
		{"model.pkl", "ctorch\nFloatStorage\n", FormatText, Safe},
	} {
		var opts []Option
		if tc.name != "" {
			opts = append(opts, WithName(tc.name))
		}
		rep := scanBytes(t, []byte(tc.content), opts...)
		if rep.Format != tc.format || rep.Verdict != tc.verdict {
			t.Errorf("%q %q: got %s %s, want %s %s\n%s", tc.name, tc.content, rep.Format, rep.Verdict, tc.format, tc.verdict, dump(rep))
		}
		if tc.format == FormatPickle && tc.verdict == Suspicious && !hasRule(rep, "pickle.import-only") {
			t.Errorf("%q %q: no pickle.import-only note\n%s", tc.name, tc.content, dump(rep))
		}
	}
}

// The text check sees a multi-byte character split across reads as text, and a control byte
// at any offset as binary.
func TestTextWatchAcrossReads(t *testing.T) {
	content := []byte("caf\xc3\xa9 \xe2\x82\xac\n\x01")
	for split := 1; split < len(content); split++ {
		tw := &textWatch{binaryAt: -1}
		tw.r = &splitReader{parts: [][]byte{content[:split], content[split:]}}
		if _, err := io.Copy(io.Discard, tw); err != nil {
			t.Fatal(err)
		}
		if tw.binaryAt != int64(len(content)-1) {
			t.Errorf("split at %d: binaryAt %d, want %d", split, tw.binaryAt, len(content)-1)
		}
	}
}

type splitReader struct{ parts [][]byte }

func (s *splitReader) Read(p []byte) (int, error) {
	if len(s.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.parts[0])
	s.parts[0] = s.parts[0][n:]
	if len(s.parts[0]) == 0 {
		s.parts = s.parts[1:]
	}
	return n, nil
}

// The eight-bytes-at-a-time path finds every byte value that is not text at every position.
func TestTextWatchFindsEveryNonTextByte(t *testing.T) {
	for c := range 256 {
		for pos := range 16 {
			b := []byte("abcdefghijklmnop~ ")
			b[pos] = byte(c)
			tw := &textWatch{r: &splitReader{parts: [][]byte{b}}, binaryAt: -1}
			if _, err := io.Copy(io.Discard, tw); err != nil {
				t.Fatal(err)
			}
			if want := firstNonText(b); tw.binaryAt != want {
				t.Fatalf("byte 0x%02x at %d: binaryAt %d, want %d", c, pos, tw.binaryAt, want)
			}
		}
	}
}

// Archive members are judged by their own names: a zip member named model.pkl is handed to
// an unpickler by whoever loads it, a notes.txt member is not.
func TestImportOnlyMembersAreJudgedByTheirNames(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range []string{"bundle/model.pkl", "bundle/notes.txt"} {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("cmodeling_custom\nLoader\n")); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	rep := scanBytes(t, buf.Bytes(), WithName("bundle.zip"))
	formats := map[string]Format{}
	for _, m := range rep.Members {
		formats[m.Name] = m.Format
	}
	if rep.Verdict != Suspicious || formats["bundle/model.pkl"] != FormatPickle || formats["bundle/notes.txt"] != FormatUnknown {
		t.Fatalf("got %s, members %v\n%s", rep.Verdict, formats, dump(rep))
	}
	for _, f := range rep.Findings {
		if f.Member != "bundle/model.pkl" {
			t.Errorf("finding on %s: %v", f.Member, f)
		}
	}
}
