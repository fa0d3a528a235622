package scan

import "testing"

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
