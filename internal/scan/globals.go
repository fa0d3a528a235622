package scan

import "strings"

// The allowlist is what current PyTorch's weights_only unpickler accepts by default
// (torch/_weights_only_unpickler.py _get_allowed_globals), plus the NumPy reconstructors that
// object arrays need. A checkpoint that imports only these loads under torch.load(weights_only=True).
// Names are the "module.qualname" strings that unpickler matches, so aliases it does not list
// (torch.float, torch.long) and objects that pickle otherwise (layouts go through
// torch.serialization._get_layout; memory formats cannot be pickled) are not on it.
var allowedGlobals = func() map[string]bool {
	m := map[string]bool{}
	add := func(module string, names ...string) {
		for _, n := range names {
			m[module+"."+n] = true
		}
	}
	add("collections", "OrderedDict", "Counter")
	add("torch.nn.parameter", "Parameter")
	add("torch.serialization", "_get_layout")
	add("torch", "Size", "Tensor", "device")
	add("_codecs", "encode") // bytes, and bytearray's argument, under protocol 2
	add("builtins", "bytearray", "set", "complex")
	add("torch._utils", "_rebuild_parameter", "_rebuild_parameter_with_state", "_rebuild_qtensor",
		"_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_sparse_tensor",
		"_rebuild_meta_tensor_no_storage", "_rebuild_wrapper_subclass",
		"_rebuild_device_tensor_from_numpy", "_rebuild_device_tensor_from_cpu_tensor")
	add("torch._tensor", "_rebuild_from_type_v2")
	// dtypes, by their canonical names (str(dtype)): the legacy storage dtypes, the ones
	// serialized through UntypedStorage, and the sub-byte integers.
	add("torch", "float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8",
		"uint8", "bool", "complex128", "complex64", "complex32", "qint8", "qint32", "quint8",
		"quint4x2", "quint2x4",
		"float8_e5m2", "float8_e4m3fn", "float8_e5m2fnuz", "float8_e4m3fnuz", "float8_e8m0fnu",
		"float4_e2m1fn_x2", "bits8", "bits16", "bits1x8", "bits2x4", "bits4x2",
		"uint16", "uint32", "uint64",
		"uint1", "uint2", "uint3", "uint4", "uint5", "uint6", "uint7",
		"int1", "int2", "int3", "int4", "int5", "int6", "int7")
	// quantization schemes
	add("torch", "per_tensor_affine", "per_tensor_symmetric", "per_channel_affine",
		"per_channel_symmetric", "per_channel_affine_float_qparams")
	// storage classes (torch._storage_classes, by their __module__)
	for _, t := range []string{"Double", "Float", "Half", "BFloat16", "Long", "Int", "Short",
		"Char", "Byte", "Bool", "ComplexFloat", "ComplexDouble"} {
		add("torch", t+"Storage")
		add("torch.cuda", t+"Storage")
	}
	add("torch", "QUInt8Storage", "QInt8Storage", "QInt32Storage", "QUInt4x2Storage", "QUInt2x4Storage")
	add("torch.storage", "UntypedStorage", "TypedStorage")
	// legacy tensor classes (torch._tensor_classes)
	for _, t := range []string{"Double", "Float", "Half", "BFloat16", "Long", "Int", "Short",
		"Char", "Byte", "Bool"} {
		add("torch", t+"Tensor")
		add("torch.cuda", t+"Tensor")
		if t != "Bool" {
			add("torch.sparse", t+"Tensor")
			add("torch.cuda.sparse", t+"Tensor")
		}
	}
	// NumPy object arrays and scalars pickle through these (picklescan's safe set).
	add("numpy", "dtype", "ndarray")
	add("numpy.core.multiarray", "_reconstruct")
	add("numpy._core.multiarray", "_reconstruct")
	return m
}()

// deniedModules are modules (and all their submodules) whose every attribute is dangerous
// to import in a weight file: process and code execution, importers, file and network I/O,
// debuggers and profilers that run code, nested deserialisers. Sources: picklescan
// _unsafe_globals, modelscan unsafe_globals, fickling UNSAFE_IMPORTS, and the bypasses in
// weight-formats.md §4.
var deniedModules = setOf(
	"os", "posix", "nt", "posixpath", "ntpath", "sys", "subprocess", "_posixsubprocess", "pty",
	"commands", "runpy", "code", "codeop", "doctest", "importlib", "_frozen_importlib",
	"_frozen_importlib_external", "_imp", "imp", "pkgutil", "zipimport", "site", "gc", "inspect",
	"marshal", "types", "pickle", "_pickle", "pickletools", "shelve", "dill",
	"cloudpickle", "joblib", "socket", "_socket", "ssl", "_ssl", "http", "httplib", "urllib",
	"urllib2", "requests", "aiohttp", "asyncio", "webbrowser", "smtplib", "imaplib", "ftplib",
	"poplib", "telnetlib", "nntplib", "socketserver", "xmlrpc", "ctypes", "_ctypes", "cffi",
	"shutil", "tempfile", "filecmp", "fileinput", "glob", "io", "_io", "pathlib", "mmap",
	"bdb", "pdb", "cProfile", "profile", "_lsprof", "pydoc", "timeit", "trace", "tracemalloc",
	"test", "unittest", "venv", "ensurepip", "pip", "setuptools", "distutils", "idlelib",
	"lib2to3", "multiprocessing", "_multiprocessing", "concurrent", "threading", "_thread",
	"signal", "_signal", "atexit", "weakref", "_weakref", "uuid", "_osx_support", "_aix_support",
	"_pyrepl", "pexpect", "pipes", "platform", "linecache", "compileall", "py_compile",
	"select", "selectors", "logging", "syslog", "tarfile", "zipfile", "gzip", "bz2", "lzma",
	"dbm", "sqlite3", "_sqlite3", "_interpreters", "_xxsubinterpreters", "operator", "_operator",
	"functools", "getpass", "resource", "xml", "numpy.f2py", "numpy.testing",
	"numpy.distutils", "numpy.lib.npyio", "numpy.ctypeslib", "torch._inductor", "torch._dynamo",
	"torch.jit", "torch.hub", "torch.package", "torch.utils.bottleneck", "torch.utils.collect_env",
	"torch.utils._config_module", "torch.utils.data.datapipes", "torch.utils.cpp_extension",
	"torch.fx.experimental.symbolic_shapes", "torch._export", "torch.export", "torch.compiler",
	"torch.multiprocessing", "torch.distributed", "fickling", "picklescan", "modelscan",
	"model_unpickler", "saferpickle", "modelaudit", "mlflow", "keras", "tensorflow",
	// Importing these alone acts: antigravity opens a web browser, this prints, __hello__ and
	// __phello__ print on older Pythons. An unpickler imports before it can fail.
	"antigravity", "this", "__hello__", "__phello__",
)

// deniedNames are dangerous attributes of modules that are otherwise harmless or allowlisted.
var deniedNames = map[string]map[string]bool{
	"builtins": setOf("eval", "exec", "execfile", "compile", "getattr", "setattr", "delattr",
		"apply", "open", "file", "breakpoint", "__import__", "globals", "locals", "vars", "input",
		"reload", "help", "exit", "quit", "__loader__", "__spec__", "__builtins__", "type",
		"object", "memoryview", "classmethod", "staticmethod", "property", "super"),
	"torch":                  setOf("load", "save", "compile", "hub", "jit", "_C", "_ops", "ops", "classes", "library", "_dynamo", "_inductor", "package"),
	"torch.serialization":    setOf("load", "_load", "_legacy_load", "save", "_open_file", "_open_zipfile_reader"),
	"torch.storage":          setOf("_load_from_bytes"),
	"numpy":                  setOf("load", "loadtxt", "genfromtxt", "fromfile", "save", "savez", "f2py", "testing", "distutils", "ctypeslib", "lib"),
	"numpy.core.multiarray":  setOf("fromfile"),
	"numpy._core.multiarray": setOf("fromfile"),
}

// dangerousComponents are names that, met as any dotted component of an import's module or
// name (pathlib.os.system, builtins.eval.__call__), reach something dangerous through
// attribute access, which protocol-4 pickles resolve.
var dangerousComponents = setOf("os", "posix", "nt", "sys", "subprocess", "builtins",
	"__builtin__", "__builtins__", "pickle", "_pickle", "marshal", "importlib", "ctypes", "socket",
	"runpy", "shutil", "pty", "eval", "exec", "compile", "__import__", "system", "popen",
	"__globals__", "__subclasses__", "__class__", "__bases__", "__base__", "__mro__",
	"__dict__", "__getattribute__", "__code__", "__closure__", "__reduce__", "__reduce_ex__",
	"__self__", "__func__", "__init__", "__call__", "__loader__", "__spec__", "__getattr__")

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// globalJudgement is the verdict on one import and why.
type globalJudgement struct {
	verdict Verdict
	rule    string
	reason  string
	err     error
}

// python2Modules is the part of CPython's _compat_pickle mappings (IMPORT_MAPPING, and the
// exceptions module of NAME_MAPPING) that reaches
// denylisted modules: pickle's fix_imports renames these for protocols below 3, so an old
// name must be judged as the module it really imports.
var python2Modules = map[string]string{
	"__builtin__": "builtins", "exceptions": "builtins", "copy_reg": "copyreg", "cPickle": "pickle",
	"httplib": "http.client", "urllib2": "urllib.request", "commands": "subprocess",
	"BaseHTTPServer": "http.server", "SimpleHTTPServer": "http.server", "CGIHTTPServer": "http.server",
	"Cookie": "http.cookies", "cookielib": "http.cookiejar", "xmlrpclib": "xmlrpc.client",
	"SimpleXMLRPCServer": "xmlrpc.server", "DocXMLRPCServer": "xmlrpc.server",
	"SocketServer": "socketserver", "thread": "_thread", "dummy_thread": "_dummy_thread",
	"StringIO": "io", "cStringIO": "io", "anydbm": "dbm", "whichdb": "dbm", "dbhash": "dbm.bsd",
	"dumbdbm": "dbm.dumb", "dbm": "dbm.ndbm", "gdbm": "dbm.gnu", "test.test_support": "test.support",
	"urlparse": "urllib.parse", "robotparser": "urllib.robotparser", "Queue": "queue",
	"repr": "reprlib", "UserDict": "collections", "UserList": "collections", "UserString": "collections",
}

// normaliseModule maps Python 2 module names to the Python 3 modules pickle imports for them.
func normaliseModule(m string) string {
	if n, ok := python2Modules[m]; ok {
		return n
	}
	return m
}

// judgeGlobal rates the import of name from module. Denylisted beats allowlisted; the
// built-in allowlist beats the dangerous-component rules, which beat the caller's extra
// allowlist; anything on no list is Suspicious: unlisted is not proven safe.
func judgeGlobal(module, name string, extra map[string]bool) globalJudgement {
	mod := normaliseModule(module)
	full := mod + "." + name
	if module == "" || name == "" || !plausibleDotted(module) || !plausibleDotted(name) {
		return globalJudgement{Suspicious, "global.invalid", "import of an invalid Python name; loaders reject it", ErrUnlistedGlobal}
	}
	// Module or any parent module denylisted wholesale.
	for p := mod; ; {
		if deniedModules[p] {
			return globalJudgement{Dangerous, "global.denylisted", "module " + p + " is denylisted", ErrDangerousGlobal}
		}
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	first, _, _ := strings.Cut(name, ".")
	if deniedNames[mod][first] || deniedNames[mod][name] {
		return globalJudgement{Dangerous, "global.denylisted", full + " is denylisted", ErrDangerousGlobal}
	}
	// The allowlist decides before the component rules: builtins.set is what PyTorch's
	// weights_only unpickler accepts, although "builtins" also leads to eval.
	if allowedGlobals[full] {
		return globalJudgement{Safe, "global.allowlisted", "", nil}
	}
	for i, part := range strings.Split(mod, ".") {
		if dangerousComponents[part] {
			return globalJudgement{Dangerous, "global.dangerous-component", "module path reaches " + part, ErrDangerousGlobal}
		}
		if part == "__main__" && i > 0 {
			// pkg.__main__ runs the package's command line when imported; a bare
			// __main__ is the running program, which classes defined in scripts name.
			return globalJudgement{Dangerous, "global.dangerous-component", "module " + mod + " runs its package's main program when imported", ErrDangerousGlobal}
		}
	}
	for _, part := range strings.Split(name, ".") {
		if dangerousComponents[part] {
			return globalJudgement{Dangerous, "global.dangerous-component", "attribute path reaches " + part, ErrDangerousGlobal}
		}
	}
	if extra[full] || extra[module+"."+name] {
		return globalJudgement{Safe, "global.allowlisted", "", nil}
	}
	return globalJudgement{Suspicious, "global.unlisted", full + " is not on the allowlist", ErrUnlistedGlobal}
}

// plausibleDotted reports whether s could name a Python module or attribute path. Loaders
// fail to import anything else, so such imports cannot run code; they are still reported.
func plausibleDotted(s string) bool {
	for _, part := range strings.Split(s, ".") {
		if part == "" {
			return false
		}
		for i, r := range part {
			ok := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9') || r > 0x7f
			if !ok {
				return false
			}
		}
	}
	return true
}
