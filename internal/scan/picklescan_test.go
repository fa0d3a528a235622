package scan

import (
	"os"
	"path/filepath"
	"testing"
)

// The expected verdicts of picklescan's test files (weight-formats.md §6.1). "global" names
// one import the report must list: the one that makes the file dangerous, or an allowlisted one.
var picklescanExpectations = []struct {
	file    string
	verdict Verdict
	format  Format
	global  string
}{
	{"data/benign0_v0.pkl", Safe, FormatPickle, ""},
	{"data/benign0_v3.pkl", Safe, FormatPickle, ""},
	{"data/benign0_v4.pkl", Safe, FormatPickle, ""},
	{"data/pytorch_model.bin", Safe, FormatPyTorchLegacy, "torch._utils._rebuild_tensor_v2"},
	{"data/new_pytorch_model.bin", Safe, FormatPyTorchZip, "torch.FloatStorage"},
	{"data/bad_pytorch.pt", Safe, FormatUnknown, ""},
	{"data/not_a_pickle.bin", Safe, FormatUnknown, ""},
	{"data/benign_password_protected.zip", Safe, FormatZip, ""},
	{"data2/int_array.npy", Safe, FormatNumPy, ""},
	{"data2/int_arrays.npz", Safe, FormatNumPyZip, ""},
	{"data2/int_arrays_compressed.npz", Safe, FormatNumPyZip, ""},
	{"data2/object_array.npy", Safe, FormatNumPy, "numpy.core.multiarray._reconstruct"},
	{"data2/object_arrays.npz", Safe, FormatNumPyZip, "numpy.ndarray"},
	{"data2/object_arrays_compressed.npz", Safe, FormatNumPyZip, "numpy.dtype"},

	{"data/malicious0.pkl", Dangerous, FormatPickle, "builtins.eval"},
	{"data/malicious1_v0.pkl", Dangerous, FormatPickle, "builtins.eval"},
	{"data/malicious1_v3.pkl", Dangerous, FormatPickle, "builtins.eval"},
	{"data/malicious1_v4.pkl", Dangerous, FormatPickle, "builtins.eval"},
	{"data/malicious1.zip", Dangerous, FormatPyTorchZip, "builtins.eval"},
	{"data/malicious1_wrong_ext.zip", Dangerous, FormatZip, "builtins.eval"},
	{"data/malicious1_central_directory.zip", Dangerous, FormatPyTorchZip, "builtins.eval"},
	{"data/malicious1_0x1.zip", Dangerous, FormatZip, "builtins.eval"},
	{"data/malicious1_0x20.zip", Dangerous, FormatZip, "builtins.eval"},
	{"data/malicious1_0x40.zip", Dangerous, FormatZip, "builtins.eval"},
	{"data2/malicious1_crc.zip", Dangerous, FormatPyTorchZip, "builtins.eval"},
	{"data/malicious1.7z", Dangerous, Format7z, "builtins.eval"}, // BCJ + LZMA2, as py7zr writes
	{"data/malicious2_v0.pkl", Dangerous, FormatPickle, "posix.system"},
	{"data/malicious2_v3.pkl", Dangerous, FormatPickle, "posix.system"},
	{"data/malicious2_v4.pkl", Dangerous, FormatPickle, "posix.system"},
	{"data/malicious3.pkl", Dangerous, FormatPickle, "http.client.HTTPSConnection"},
	{"data/malicious4.pickle", Dangerous, FormatPickle, "requests.api.get"},
	{"data/malicious5.pickle", Dangerous, FormatPickle, "aiohttp.client.ClientSession"},
	{"data/malicious6.pkl", Dangerous, FormatPickle, "requests.api.get"},
	{"data/malicious7.pkl", Dangerous, FormatPickle, "socket.create_connection"},
	{"data/malicious8.pkl", Dangerous, FormatPickle, "subprocess.run"},
	{"data/malicious9.pkl", Dangerous, FormatPickle, "sys.exit"},
	{"data/malicious10.pkl", Dangerous, FormatPickle, "builtins.exec"},
	{"data/malicious11.pkl", Dangerous, FormatPickle, "os.system"},
	{"data/malicious12.pkl", Dangerous, FormatPickle, "operator.attrgetter"},
	{"data/malicious13a.pkl", Dangerous, FormatPickle, "pickle.loads"},
	{"data/malicious13b.pkl", Dangerous, FormatPickle, "_pickle.loads"},
	{"data/malicious14.pkl", Dangerous, FormatPickle, "runpy._run_code"},
	{"data/malicious15a.pkl", Dangerous, FormatPickle, "bdb.Bdb"},
	{"data/malicious15b.pkl", Dangerous, FormatPickle, "bdb.Bdb.run"},
	{"data/malicious16.pkl", Dangerous, FormatPickle, "pip.main"},
	{"data/malicious17.pkl", Dangerous, FormatPickle, "torch._inductor.codecache.compile_file"},
	{"data/malicious18.pkl", Dangerous, FormatPickle, "pydoc.pipepager"},
	{"data/malicious19.pkl", Dangerous, FormatPickle, "torch.serialization.load"},
	{"data/malicious20.pkl", Dangerous, FormatPickle, "venv.create"},
	{"data/malicious-invalid-bytes.pkl", Dangerous, FormatPickle, "os.system"},
	{"data/broken_model.pkl", Dangerous, FormatPickle, "builtins.exec"},
	{"data/pytorch_magic_bypass.pt", Dangerous, FormatPickle, "posix.system"},
	{"data/sys_module_override_sploit.pkl", Dangerous, FormatPickle, "torch._utils._rebuild_tensor"},
	{"data2/malicious21.pkl", Dangerous, FormatPickle, "timeit.timeit"},
	{"data2/malicious22.pkl", Dangerous, FormatPickle, "numpy.testing._private.utils.runstring"},
	{"data2/malicious23.pkl", Dangerous, FormatPickle, "os.system"},
	{"data2/keyerror-exploit.pkl", Dangerous, FormatPickle, "os.system"},
	{"data2/type-confusion-exploit.pkl", Dangerous, FormatPickle, "os.system"},
	{"data2/dns_exfiltration.npy", Dangerous, FormatNumPy, "ssl.get_server_certificate"},
	{"data2/io_FileIO.pkl", Dangerous, FormatPickle, "_io.FileIO"},
	{"data2/urllib_request_urlopen.pkl", Dangerous, FormatPickle, "urllib.request.urlopen"},
	{"data2/logging_FileHandler.pkl", Dangerous, FormatPickle, "logging.FileHandler"},
	{"data2/types_CodeType.pkl", Dangerous, FormatPickle, "types.CodeType"},
	{"data2/cloudpickle_codeinjection.pkl", Dangerous, FormatPickle, "cloudpickle.cloudpickle._make_function"},
	{"data2/GHSA-4r9r-ch6f-vxmx.pkl", Dangerous, FormatPickle, "torch.utils.bottleneck.__main__.run_cprofile"},
	{"data2/GHSA-4whj-rm5r-c2v8.pkl", Dangerous, FormatPickle, "torch.utils.bottleneck.__main__.run_autograd_prof"},
	{"data2/GHSA-86cj-95qr-2p4f.pkl", Dangerous, FormatPickle, "torch._dynamo.guards.GuardBuilder.get"},
	{"data2/GHSA-f4x7-rfwp-v3xw.pkl", Dangerous, FormatPickle, "torch.fx.experimental.symbolic_shapes.ShapeEnv.evaluate_guards_expression"},
	{"data2/GHSA-f745-w6jp-hpxx.pkl", Dangerous, FormatPickle, "torch.utils.collect_env.run"},
	{"data2/GHSA-jhph-76pp-mggw.pkl", Dangerous, FormatPickle, "torch.utils.collect_env.run"},
	{"data2/GHSA-h3qp-7fh3-f8h4.pkl", Dangerous, FormatPickle, "torch.utils.data.datapipes.utils.decoder.basichandlers"},
	{"data2/GHSA-vv6j-3g6g-2pvj.pkl", Dangerous, FormatPickle, "torch.utils._config_module.ConfigModule.load_config"},
	{"data2/GHSA-vr7h-p6mm-wpmh.pkl", Dangerous, FormatPickle, "torch.jit.unsupported_tensor_ops.execWrapper"},
	{"data2/GHSA-5qwp-399c-mjwf.pkl", Dangerous, FormatPickle, "trace.Trace.run"},
	{"data2/GHSA-g344-hcph-8vgg.pkl", Dangerous, FormatPickle, "trace.Trace.runctx"},
	{"data2/GHSA-x696-vm39-cp64.pkl", Dangerous, FormatPickle, "profile.Profile.run"},
	{"data2/GHSA-6vqj-c2q5-j97w.pkl", Dangerous, FormatPickle, "profile.Profile.runctx"},
	{"data2/GHSA-7wx9-6375-f5wh.pkl", Dangerous, FormatPickle, "profile.run"},
	{"data2/GHSA-9w88-8rmg-7g2p.pkl", Dangerous, FormatPickle, "cProfile.runctx"},
	{"data2/GHSA-49gj-c84q-6qm9.pkl", Dangerous, FormatPickle, "cProfile.run"},
	{"data2/GHSA-f54q-57x4-jg88.pkl", Dangerous, FormatPickle, "lib2to3.pgen2.grammar.Grammar.loads"},
	{"data2/GHSA-p9w7-82w4-7q8m.pkl", Dangerous, FormatPickle, "lib2to3.pgen2.pgen.ParserGenerator.make_label"},
	{"data2/GHSA-3vg9-h568-4w9m.pkl", Dangerous, FormatPickle, "idlelib.debugobj.ObjectTreeItem.SetText"},
	{"data2/GHSA-6w4w-5w54-rjvr.pkl", Dangerous, FormatPickle, "idlelib.autocomplete.AutoComplete.get_entity"},
	{"data2/GHSA-7cq8-mj8x-j263.pkl", Dangerous, FormatPickle, "idlelib.autocomplete.AutoComplete.fetch_completions"},
	{"data2/GHSA-8r4j-24qv-fmq9.pkl", Dangerous, FormatPickle, "idlelib.calltip.Calltip.fetch_tip"},
	{"data2/GHSA-9xph-j2h6-g47v.pkl", Dangerous, FormatPickle, "idlelib.calltip.get_entity"},
	{"data2/GHSA-m869-42cg-3xwr.pkl", Dangerous, FormatPickle, "idlelib.run.Executive.runcode"},
	{"data2/GHSA-j343-8v2j-ff7w.pkl", Dangerous, FormatPickle, "idlelib.pyshell.ModifiedInterpreter.runcommand"},
	{"data2/GHSA-3gf5-cxq9-w223.pkl", Dangerous, FormatPickle, "idlelib.pyshell.ModifiedInterpreter.runcode"},
	{"data2/GHSA-cj3c-v495-4xqh.pkl", Dangerous, FormatPickle, "code.InteractiveInterpreter.runcode"},
	{"data2/GHSA-fqq6-7vqf-w3fg.pkl", Dangerous, FormatPickle, "doctest.debug_script"},
	{"data2/GHSA-xp4f-hrf8-rxw7.pkl", Dangerous, FormatPickle, "ensurepip._run_pip"},
	{"data2/GHSA-q77w-mwjj-7mqx.pkl", Dangerous, FormatPickle, "asyncio.unix_events._UnixSubprocessTransport._start"},
	{"data2/GHSA-jgw4-cr84-mqxg.bin", Dangerous, FormatPickle, "asyncio.unix_events._UnixSubprocessTransport._start"},
	{"data2/GHSA-m273-6v24-x4m4.pkl", Dangerous, FormatPickle, "distutils.file_util.write_file"},
	{"data2/GHSA-4675-36f9-wf6r.pkl", Dangerous, FormatPickle, "ctypes.CDLL"},
	{"data2/GHSA-vqmv-47xg-9wpr.pkl", Dangerous, FormatPickle, "pty.spawn"},
	{"data2/GHSA-r8g5-cgf2-4m4m.pkl", Dangerous, FormatPickle, "numpy.f2py.crackfortran.getlincoef"},
	{"data2/GHSA-84r2-jw7c-4r5q.pkl", Dangerous, FormatPickle, "pydoc.locate"},
	{"data2/GHSA-955r-x9j8-7rhh.pkl", Dangerous, FormatPickle, "_operator.methodcaller"},
	{"data2/GHSA-46h3-79wf-xr6c.pkl", Dangerous, FormatPickle, "_operator.attrgetter"},
	{"data2/GHSA-vvpj-8cmc-gx39.pkl", Dangerous, FormatPickle, "pkgutil.resolve_name"},
	{"data2/GHSA-g38g-8gr9-h9xp-uuid.pkl", Dangerous, FormatPickle, "uuid._get_command_stdout"},
	{"data2/GHSA-g38g-8gr9-h9xp-osx-support.pkl", Dangerous, FormatPickle, "_osx_support._read_output"},
	{"data2/GHSA-g38g-8gr9-h9xp-aix-support.pkl", Dangerous, FormatPickle, "_aix_support._read_cmd_output"},
	{"data2/GHSA-g38g-8gr9-h9xp-imaplib.pkl", Dangerous, FormatPickle, "imaplib.IMAP4_stream"},
	{"data2/GHSA-g38g-8gr9-h9xp-pyrepl-pager.pkl", Dangerous, FormatPickle, "_pyrepl.pager.pipe_pager"},
	{"data2/GHSA-g38g-8gr9-h9xp-test.pkl", Dangerous, FormatPickle, "test.support.script_helper.assert_python_ok"},
}

func TestPicklescanCorpusGetsExpectedVerdicts(t *testing.T) {
	for _, tc := range picklescanExpectations {
		t.Run(tc.file, func(t *testing.T) {
			rep := scanPath(t, filepath.Join(picklescanDir, tc.file))
			if rep.Verdict != tc.verdict || rep.Format != tc.format {
				t.Errorf("got %s %s, want %s %s\n%s", rep.Format, rep.Verdict, tc.format, tc.verdict, dump(rep))
			}
			if tc.global != "" && !hasGlobal(rep, tc.global) {
				t.Errorf("globals %v lack %s", rep.Globals, tc.global)
			}
			if tc.verdict == Safe && rep.Err() != nil {
				t.Errorf("Err() = %v for a safe file", rep.Err())
			}
		})
	}
}

// Every file in the corpus has an expectation: a new file added there fails this test
// until it is given one.
func TestPicklescanCorpusIsFullyCovered(t *testing.T) {
	want := map[string]bool{}
	for _, tc := range picklescanExpectations {
		want[tc.file] = true
	}
	for _, dir := range []string{"data", "data2"} {
		ents, err := os.ReadDir(filepath.Join(picklescanDir, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if !want[dir+"/"+e.Name()] {
				t.Errorf("%s/%s has no expected verdict", dir, e.Name())
			}
		}
	}
}
