package scan

import (
	"errors"
	"os"
	"testing"
)

// Each recipe of weight-formats.md §4, crafted by testdata/scan/make_bypasses.py, is caught:
// the verdict is at least the one given, and the named global or rule is reported.
var bypassExpectations = []struct {
	file    string
	verdict Verdict
	global  string
	rule    string
}{
	{"b01_zip_member_txt.zip", Dangerous, "os.system", ""},
	{"b01_zip_member_txt_proto0.zip", Dangerous, "os.system", ""},
	{"b02_zip_flag_0x1.zip", Dangerous, "os.system", "zip.flags"},
	{"b02_zip_flag_0x20.zip", Dangerous, "os.system", "zip.flags"},
	{"b02_zip_flag_0x40.zip", Dangerous, "os.system", "zip.flags"},
	{"b03_zip_name_mismatch.zip", Dangerous, "os.system", ""},
	{"b04_zip_bad_crc.zip", Dangerous, "os.system", "zip.crc"},
	{"b05_plain_pickle.bin", Dangerous, "os.system", ""},
	{"b06_legacy_magic_via_reduce.pt", Dangerous, "os.system", ""},
	{"b07_7z_wrapper.7z", Suspicious, "", "archive.7z"},
	{"b07_payload_then_broken.pkl", Dangerous, "os.system", "pickle.truncated"},
	{"b08_broken_after_payload.pkl", Dangerous, "builtins.exec", "pickle.truncated"},
	{"b08_trailing_garbage.pkl", Dangerous, "os.system", "pickle.malformed"},
	{"b09_stack_global_strings.pkl", Dangerous, "os.system", ""},
	{"b10_memo_indirection.pkl", Dangerous, "os.system", ""},
	{"b11_build_on_function.pkl", Dangerous, "numpy.size", "pickle.build-on-global"},
	{"b12_obj_pop.pkl", Dangerous, "smtplib.SMTP", ""},
	{"b13_frame_divergence.pkl", Dangerous, "os.system", "pickle.frame"},
	{"b13_frame_in_frame.pkl", Dangerous, "", "pickle.frame"},
	{"b13_frame_straddles_opcode.pkl", Dangerous, "", "pickle.frame"},
	{"b14_pip_main.pkl", Dangerous, "pip.main", ""},
	{"b15_pydoc_pipepager.pkl", Dangerous, "pydoc.pipepager", ""},
	{"b15_venv_create.pkl", Dangerous, "venv.create", ""},
	{"b15_partial_torch_load.pkl", Dangerous, "torch.serialization.load", ""},
	{"b15_inductor_compile_file.pkl", Dangerous, "torch._inductor.codecache.compile_file", ""},
	{"b16_uuid_get_command_stdout.pkl", Dangerous, "uuid._get_command_stdout", ""},
	{"b16_imaplib_stream.pkl", Dangerous, "imaplib.IMAP4_stream", ""},
	{"b17_importlib_getattr_static.pkl", Dangerous, "importlib.import_module", ""},
	{"b17_pkgutil_resolve_name.pkl", Dangerous, "pkgutil.resolve_name", "pickle.call-computed"},
	{"b18_methodcaller.pkl", Dangerous, "_operator.methodcaller", "pickle.call-computed"},
	{"b19_asyncio_submodule.pkl", Dangerous, "asyncio.unix_events._UnixSubprocessTransport._start", ""},
	{"b20_builtins_eval_call.pkl", Dangerous, "builtins.eval.__call__", ""},
	{"b20_pathlib_os_system.pkl", Dangerous, "pathlib.os.system", ""},
	{"b21_pickle_loads_nested.pkl", Dangerous, "os.system", ""},
	{"b21_load_from_bytes_nested.pkl", Dangerous, "os.system", ""},
	{"b22_types_codetype.pkl", Dangerous, "types.CodeType", ""},
	{"b22_marshal_loads.pkl", Dangerous, "marshal.loads", ""},
	{"b23_logging_filehandler.pkl", Dangerous, "logging.FileHandler", ""},
	{"b23_smtplib.pkl", Dangerous, "smtplib.SMTP", ""},
	{"b23_object_array_dns.npy", Dangerous, "ssl.get_server_certificate", ""},
	{"b24_mlflow_entry_point.pkl", Dangerous, "mlflow.projects.backend.local._run_entry_point", ""},
	{"b24_multiprocessing_spawnv.pkl", Dangerous, "multiprocessing.util.spawnv_passfds", ""},
	{"b24_weakref_finalize.pkl", Dangerous, "weakref.finalize", ""},
	// Not on any denylist: caught because it is not on the allowlist either.
	{"b24_pandas_read_csv.pkl", Suspicious, "pandas.io.parsers.readers.read_csv", "global.unlisted"},
}

func TestEveryBypassRecipeIsCaught(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range bypassExpectations {
		covered[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			rep := scanPath(t, fixture("bypass", tc.file))
			if rep.Verdict < tc.verdict {
				t.Fatalf("verdict %s, want at least %s\n%s", rep.Verdict, tc.verdict, dump(rep))
			}
			if tc.global != "" && !hasGlobal(rep, tc.global) {
				t.Errorf("globals %v lack %s\n%s", rep.Globals, tc.global, dump(rep))
			}
			if tc.rule != "" && !hasRule(rep, tc.rule) {
				t.Errorf("no %s finding\n%s", tc.rule, dump(rep))
			}
			if err := rep.Err(); err == nil || !errors.As(err, new(*UnsafeError)) {
				t.Errorf("Err() = %v, want an *UnsafeError", err)
			}
		})
	}
	ents, err := os.ReadDir(fixture("bypass"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !covered[e.Name()] {
			t.Errorf("bypass file %s has no expectation", e.Name())
		}
	}
}

func TestGGUFChatTemplateInjectionIsDangerous(t *testing.T) {
	rep := scanPath(t, fixture("gguf", "bad_chat_template_ssti.gguf"))
	if rep.Verdict != Dangerous || !hasRule(rep, "gguf.chat-template") {
		t.Fatalf("want a dangerous gguf.chat-template finding\n%s", dump(rep))
	}
}

func TestDangerousFindingsUnwrapToTheirSentinels(t *testing.T) {
	rep := scanPath(t, fixture("bypass", "b05_plain_pickle.bin"))
	err := rep.Err()
	if !errors.Is(err, ErrDangerousGlobal) {
		t.Errorf("errors.Is(%v, ErrDangerousGlobal) = false", err)
	}
	if errors.Is(err, ErrMalformed) {
		t.Errorf("a well-formed dangerous pickle matched ErrMalformed: %v", err)
	}
	var f Finding
	if !errors.As(err, &f) || f.Global != "os.system" || f.Opcode != "STACK_GLOBAL" || f.Offset != 14 {
		t.Errorf("first finding = %+v, want os.system by STACK_GLOBAL at offset 14", f)
	}
	trunc := scanPath(t, fixture("bypass", "b08_broken_after_payload.pkl"))
	if !trunc.Has(ErrTruncated) || !trunc.Has(ErrMalformed) {
		t.Errorf("truncated pickle: want ErrTruncated, which is also ErrMalformed\n%s", dump(trunc))
	}
}
