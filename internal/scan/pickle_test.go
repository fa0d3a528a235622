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
