#!/usr/bin/env python3
"""Write real safetensors, sharded-index, GGUF and NumPy files, and corruptions that each break
one rule once, for internal/scan's tests. Python standard library only (struct, json).

Run: python3 make_formats.py. Output: safetensors/, index_ok/, index_bad/, gguf/, numpy/, tar/ beside this script.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def out(sub, name, data):
    d = os.path.join(HERE, sub)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def st(header, data, pad=True, raw_header=None):
    """A safetensors file: u64 header length, JSON header (space padded to 8), data."""
    h = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def tensors(spec):
    """spec: [(name, dtype, shape, nbytes)] laid out contiguously; returns header and data."""
    header, data, off = {"__metadata__": {"format": "pt"}}, b"", 0
    for name, dtype, shape, nbytes in spec:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + nbytes]}
        data += bytes((off + i) % 251 for i in range(nbytes))
        off += nbytes
    return header, data


GOOD = [("embed.weight", "F32", [4, 3], 48), ("embed.bias", "F16", [4], 8), ("norm", "BF16", [2], 4),
        ("ids", "I64", [3], 24), ("mask", "BOOL", [5], 5), ("q", "U8", [2, 2], 4), ("f8", "F8_E4M3", [3], 3),
        ("empty", "F32", [2, 0], 0), ("scalar", "F64", [], 8)]


def safetensors_files():
    h, d = tensors(GOOD)
    out("safetensors", "ok.safetensors", st(h, d))
    out("safetensors", "ok_leading_whitespace.safetensors", st(None, b"", raw_header=b"\t\n{}\r "))
    out("safetensors", "ok_empty.safetensors", st({}, b""))
    out("safetensors", "bad_HeaderTooSmall.safetensors", b"\x08\x00\x00")
    out("safetensors", "bad_HeaderTooLarge.safetensors", b"<\x00\x00\x00\x00\xff\xff\xff{}")
    out("safetensors", "bad_InvalidHeaderLength.safetensors", struct.pack("<Q", 4096) + b"{}      ")
    out("safetensors", "bad_InvalidHeader.safetensors", st(None, b"", raw_header=b'{"\xff":1}'))
    out("safetensors", "bad_InvalidHeaderDeserialization.safetensors", st(None, b"", raw_header=b'{"a": {"dtype": "F32",'))
    hh = dict(h)
    hh["ids"] = dict(hh["ids"], dtype="I128")
    out("safetensors", "bad_unknown_dtype.safetensors", st(hh, d))
    hh = dict(h, __metadata__={"epochs": 3})
    out("safetensors", "bad_metadata_not_string.safetensors", st(hh, d))
    hh = dict(h)
    hh["ids"] = dict(hh["ids"], shape=[-3])
    out("safetensors", "bad_negative_shape.safetensors", st(hh, d))
    # InvalidOffset: a gap, an overlap (the "JSON attack": every tensor at the same bytes), not starting at 0.
    gap, _ = tensors([("a", "F32", [2], 8), ("b", "F32", [2], 8)])
    gap["b"]["data_offsets"] = [12, 20]
    out("safetensors", "bad_InvalidOffset_gap.safetensors", st(gap, bytes(20)))
    attack = {"t%d" % i: {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]} for i in range(10)}
    out("safetensors", "bad_InvalidOffset_overlap.safetensors", st(attack, bytes(16)))
    late = {"a": {"dtype": "U8", "shape": [4], "data_offsets": [4, 8]}}
    out("safetensors", "bad_InvalidOffset_start.safetensors", st(late, bytes(8)))
    info = {"a": {"dtype": "I32", "shape": [2, 2], "data_offsets": [0, 4]}}
    out("safetensors", "bad_TensorInvalidInfo.safetensors", st(info, bytes(4)))
    ovf = {"a": {"dtype": "F32", "shape": [2, 18446744073709551614], "data_offsets": [0, 4]}}
    out("safetensors", "bad_ValidationOverflow.safetensors", st(ovf, bytes(4)))
    mis = {"a": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}
    out("safetensors", "bad_MisalignedSlice.safetensors", st(mis, bytes(2)))
    out("safetensors", "bad_MetadataIncompleteBuffer_trailing.safetensors", st(h, d + b"extra_bogus_data_for_polyglot_file"))
    out("safetensors", "bad_MetadataIncompleteBuffer_truncated.safetensors", st(h, d[:-10]))
    # Duplicate names: identical entries load in the reference reader; a scanner must catch them.
    one = json.dumps({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}})[1:-1]
    out("safetensors", "bad_DuplicateTensor.safetensors", st(None, bytes(4), raw_header=("{" + one + "," + one + "}").encode()))
    meta = '{"__metadata__":{"a":"b"},"__metadata__":{"a":"c"}}'
    out("safetensors", "bad_duplicate_metadata.safetensors", st(None, b"", raw_header=meta.encode()))


def index_files():
    a, da = tensors([("layer.0.weight", "F32", [2, 2], 16), ("layer.0.bias", "F32", [2], 8)])
    b, db = tensors([("layer.1.weight", "F32", [2, 2], 16)])
    for sub in ("index_ok", "index_bad"):
        out(sub, "model-00001-of-00002.safetensors", st(a, da))
        out(sub, "model-00002-of-00002.safetensors", st(b, db))
    wm = {"layer.0.weight": "model-00001-of-00002.safetensors", "layer.0.bias": "model-00001-of-00002.safetensors",
          "layer.1.weight": "model-00002-of-00002.safetensors"}
    out("index_ok", "model.safetensors.index.json", json.dumps({"metadata": {"total_size": 40}, "weight_map": wm}, indent=2).encode())
    bad = dict(wm)
    bad["layer.0.bias"] = "model-00002-of-00002.safetensors"  # in the wrong shard
    bad["layer.2.weight"] = "model-00003-of-00003.safetensors"  # shard does not exist
    bad["evil"] = "../../outside.safetensors"  # escapes the directory
    out("index_bad", "model.safetensors.index.json", json.dumps({"metadata": {"total_size": 40}, "weight_map": bad}, indent=2).encode())


def gs(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf(kvs, tinfos, data, version=3, align=32):
    """kvs: [(key, type, payload bytes)], tinfos: [(name, dims, type, offset)]."""
    b = b"GGUF" + struct.pack("<IQQ", version, len(tinfos), len(kvs))
    for k, t, payload in kvs:
        b += gs(k) + struct.pack("<I", t) + payload
    for name, dims, typ, off in tinfos:
        b += gs(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", typ, off)
    b += b"\x00" * (-len(b) % align)
    return b + data


def gguf_files():
    kvs = [("general.architecture", 8, gs("llama")), ("general.alignment", 4, struct.pack("<I", 32)),
           ("llama.context_length", 4, struct.pack("<I", 128)),
           ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 3) + gs("a") + gs("b") + gs("c")),
           ("tokenizer.chat_template", 8, gs("{% for m in messages %}{{ m['content'] }}{% endfor %}"))]
    # F32 [4,2] = 32 bytes at 0; Q8_0 [32] = 34 bytes at 32 (padded to 64)
    tinfos = [("tok_embd.weight", [4, 2], 0, 0), ("output.weight", [32], 8, 32)]
    data = bytes(32) + bytes(34)
    out("gguf", "ok.gguf", gguf(kvs, tinfos, data))
    out("gguf", "bad_version.gguf", gguf(kvs, tinfos, data, version=1))
    out("gguf", "bad_duplicate_key.gguf", gguf(kvs + [kvs[2]], tinfos, data))
    out("gguf", "bad_alignment.gguf", gguf([("general.alignment", 4, struct.pack("<I", 48))] + kvs[2:], tinfos, data))
    out("gguf", "bad_nested_array.gguf", gguf(kvs + [("x.nested", 9, struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 4, 0))], tinfos, data))
    out("gguf", "bad_tensor_offset.gguf", gguf(kvs, [tinfos[0], ("output.weight", [32], 8, 40)], data))
    out("gguf", "bad_tensor_type.gguf", gguf(kvs, [tinfos[0], ("output.weight", [32], 4, 32)], data))
    out("gguf", "bad_duplicate_tensor.gguf", gguf(kvs, [tinfos[0], ("tok_embd.weight", [32], 8, 32)], data))
    out("gguf", "bad_truncated_data.gguf", gguf(kvs, tinfos, data[:-20]))
    out("gguf", "bad_string_length.gguf", gguf(kvs, tinfos, data)[:40] + struct.pack("<Q", 1 << 40) + b"x" * 40)
    ssti = "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('id').read() }}"
    out("gguf", "bad_chat_template_ssti.gguf", gguf(kvs[:4] + [("tokenizer.chat_template", 8, gs(ssti))], tinfos, data))


def npy(descr, shape, data, version=1):
    header = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (descr, shape)
    pre = 10 if version == 1 else 12
    header += " " * (63 - (pre + len(header)) % 64) + "\n"
    size = struct.pack("<H", len(header)) if version == 1 else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + size + header.encode() + data


def numpy_files():
    out("numpy", "ok_f4.npy", npy("<f4", (2, 3), bytes(24)))
    out("numpy", "ok_structured.npy", npy([("x", "<i4"), ("y", "<f8", (2,))], (2,), bytes(40), version=2))
    out("numpy", "ok_unicode.npy", npy("<U3", (2,), bytes(24)))
    out("numpy", "bad_truncated.npy", npy("<f8", (4,), bytes(16)))
    out("numpy", "bad_trailing.npy", npy("<i2", (2,), bytes(4) + b"\x80\x04N."))
    out("numpy", "bad_header.npy", npy("<f4", (2,), bytes(8))[:10] + b"{'descr': __import__('os')}\n")


def tar_files():
    """PyTorch <= 0.1.x tar checkpoints (members sys_info, pickle, storages, tensors), written the
    way torch's legacy_load reads them. Storage classes are stand-ins named torch.FloatStorage
    so that pickle writes the same GLOBAL opcodes torch did; nothing imports real torch."""
    import io
    import pickle
    import sys
    import tarfile
    import types

    fake = types.ModuleType("torch")

    class FloatStorage:
        pass

    FloatStorage.__module__ = "torch"
    FloatStorage.__qualname__ = "FloatStorage"
    fake.FloatStorage = FloatStorage
    saved = sys.modules.get("torch")
    sys.modules["torch"] = fake
    try:
        def p(obj):
            return pickle.dumps(obj, protocol=2)

        storages = p(1) + p(("0", "cpu", FloatStorage)) + struct.pack("<q", 4) + bytes(16) + p([])
        tensors = p(1) + p(("t0", "0", None)) + struct.pack("<i", 2) + bytes(4) + struct.pack("<qq", 2, 2) + \
            struct.pack("<qq", 2, 1) + struct.pack("<q", 0)

        class Ref:  # a tensor reference: pickled through persistent_id
            def __init__(self, key):
                self.key = key

        class P(pickle.Pickler):
            def persistent_id(self, obj):
                return obj.key if isinstance(obj, Ref) else None

        def main_pickle(obj):
            buf = io.BytesIO()
            P(buf, protocol=2).dump(obj)
            return buf.getvalue()

        def tar(members):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
                for name, data in members:
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    t.addfile(info, io.BytesIO(data))
            return buf.getvalue()

        sys_info = p({"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4, "long": 8, "short": 2}})
        ok = tar([("sys_info", sys_info), ("pickle", main_pickle({"weight": Ref("t0")})), ("storages", storages), ("tensors", tensors)])
        out("tar", "ok_legacy_tar.tar", ok)
        evil = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R."
        out("tar", "bad_legacy_tar_payload.tar", tar([("sys_info", sys_info), ("pickle", evil), ("storages", storages), ("tensors", tensors)]))
        out("tar", "bad_legacy_tar_storage_truncated.tar", tar([("sys_info", sys_info), ("pickle", main_pickle({"weight": Ref("t0")})),
                                                               ("storages", storages[:-12]), ("tensors", tensors)]))
        out("tar", "bad_generic_tar_proto0.tar", tar([("README", b"hello\n"), ("weights.txt", b"cos\nsystem\n(S'id'\ntR.")]))
    finally:
        if saved is None:
            del sys.modules["torch"]
        else:
            sys.modules["torch"] = saved


if __name__ == "__main__":
    safetensors_files()
    index_files()
    gguf_files()
    numpy_files()
    tar_files()
