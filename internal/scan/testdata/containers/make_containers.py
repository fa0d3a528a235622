#!/usr/bin/env python3
"""Container fixtures for internal/scan: zips, tars, compressed streams, TorchScript and native
binaries, made by the real tools where the file is an ordinary one (zipfile, tarfile, gzip,
bz2, lzma, torch.jit.save) and assembled by hand where the trick needs bytes no tool writes.
Nothing here is ever loaded: payloads only name os.system.

Then, for every zip and tar fixture in the repository (these and testdata/scan, testdata/interop),
it records the members Python's zipfile and tarfile read, into expected_members.json, which
TestContainerMembersMatchPython compares with the members the scanner reads.

Run from the repository root with Debian's python3 (torch from `apt-get install python3-torch`):
    /usr/bin/python3 internal/scan/testdata/containers/make_containers.py
"""
import bz2
import glob
import gzip
import io
import json
import lzma
import os
import struct
import tarfile
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))

EVIL = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00id\x85R."  # protocol 2: os.system("id")
BENIGN = b"\x80\x02}q\x00."  # protocol 2: {}
# A protocol-0 legacy checkpoint's storages member: count, then nothing but a payload.
EVIL_PROTO0 = b"cos\nsystem\n(S'id'\ntR."

NOTES = {}  # file -> how its loader reads it


def write(name, data, note):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
    NOTES[name] = note


def stored_zip(entries):
    """A zip written by zipfile, every member stored, in order."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries:
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)  # reproducible
    return buf.getvalue()


def local(name, data):
    """A local header plus stored data."""
    return struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, zlib.crc32(data), len(data), len(data), len(name), 0) + name + data


def central(name, data, offset):
    return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, zlib.crc32(data), len(data), len(data),
                       len(name), 0, 0, 0, 0, 0, offset) + name


def eocd(count, size, offset, comment=b"", comment_len=None):
    n = len(comment) if comment_len is None else comment_len
    return struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, size, offset, n) + comment


def torch_records(pkl):
    return [(b"archive/data.pkl", pkl), (b"archive/version", b"3\n")]


def zip_fixtures():
    # Benign, by zipfile.
    write("ok_zip_stored.zip", stored_zip([("archive/data.pkl", BENIGN), ("archive/version", "3\n")]),
          "zipfile-written PyTorch-style archive; every reader sees the same two members")

    # 15.1: two central directories. The end record's offset points into its own comment,
    # which holds a directory listing the malicious data.pkl: that is what PyTorch's miniz
    # reads. Python's zipfile and Go's archive/zip assume the directory ends where the end
    # record starts, find a benign directory there, and shift every offset by the (negative)
    # difference.
    body, recs = b"", []
    for name, data in torch_records(EVIL) + [(b"archive/data.pkl", BENIGN), (b"archive/version", b"3\n")]:
        recs.append((name, data, len(body)))
        body += local(name, data)
    cd_evil = b"".join(central(n, d, o) for n, d, o in recs[:2])
    size = len(cd_evil)
    benign_at = len(body)
    evil_at = benign_at + size + 22  # inside the end record's comment
    shift = benign_at - evil_at  # what Python adds to every offset (negative)
    cd_benign = b"".join(central(n, d, o - shift) for n, d, o in recs[2:])
    assert len(cd_benign) == size
    data = body + cd_benign + eocd(2, size, evil_at, comment=cd_evil)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.read("archive/data.pkl") == BENIGN  # Python sees the benign directory
    write("bad_zip_two_directories.zip", data,
          "torch.load (miniz) trusts the end record's offset and loads the directory in the comment, listing os.system; "
          "Python's zipfile and Go's archive/zip find the directory before the end record (a negative shift) and see a benign data.pkl")

    # Members compressed with bzip2 and LZMA: Python's zipfile (numpy.load) reads them, miniz
    # does not.
    for method, name in [(zipfile.ZIP_BZIP2, "bad_zip_bzip2_member.zip"), (zipfile.ZIP_LZMA, "bad_zip_lzma_member.zip")]:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", method) as z:
            z.writestr(zipfile.ZipInfo("payload.pkl", date_time=(1980, 1, 1, 0, 0, 0)), EVIL, compress_type=method)
            z.writestr(zipfile.ZipInfo("config.json", date_time=(1980, 1, 1, 0, 0, 0)), b"{}" * 1000, compress_type=method)
        write(name, buf.getvalue(), "zipfile reads method %d members and unpickles payload.pkl when asked; miniz refuses the method" % method)

    # Entries one reader sees and another does not: three entries in the directory, the end
    # record announces two. miniz reads two; zipfile reads all three (the directory's size).
    recs, body = [], b""
    for name, d in [(b"archive/data.pkl", BENIGN), (b"archive/version", b"3\n"), (b"archive/extra.pkl", EVIL)]:
        recs.append((name, d, len(body)))
        body += local(name, d)
    cd = b"".join(central(n, d, o) for n, d, o in recs)
    write("bad_zip_hidden_entry.zip", body + cd + eocd(2, len(cd), len(body)),
          "the end record announces 2 entries: miniz reads 2, Python's zipfile reads 3 (it fills the directory's size), Go's archive/zip refuses")

    # Overlapping entries: two names share one local header and data.
    body = local(b"archive/data.pkl", EVIL)
    cd = central(b"archive/data.pkl", EVIL, 0) + central(b"archive/version", EVIL, 0)
    write("bad_zip_overlap.zip", body + cd + eocd(2, len(cd), len(body)),
          "two directory entries point at one local header: Python's zipfile refuses the overlap, miniz reads both")

    # A second end record hidden in the comment of the first, pointing at an evil directory:
    # miniz and Python take the last signature (the hidden one); Go's archive/zip takes it too
    # but refuses the archive, because its comment length runs past the file.
    recs, body = [], b""
    for name, d in torch_records(EVIL):
        recs.append((name, d, len(body)))
        body += local(name, d)
    evil_cd = b"".join(central(n, d, o) for n, d, o in recs)
    evil_at = len(body)
    body += evil_cd
    brecs = []
    for name, d in torch_records(BENIGN):
        brecs.append((name, d, len(body)))
        body += local(name, d)
    benign_cd = b"".join(central(n, d, o) for n, d, o in brecs)
    benign_at = len(body)
    body += benign_cd
    inner = eocd(2, len(evil_cd), evil_at, comment=b"\xff" * 30, comment_len=40)  # comment longer than what follows
    write("bad_zip_end_record_in_comment.zip", body + eocd(2, len(benign_cd), benign_at, comment=inner),
          "an end record inside the real one's comment: miniz and Python take the inner (last) signature and its evil directory; "
          "Go's archive/zip rejects it (its comment runs past the file)")


def tar_fixtures():
    # 15.2: a torch <= 0.1 tar checkpoint written as V7 (no ustar magic). torch.load opens it with
    # tarfile and unpickles its storages member first.
    def v7(members):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
            for name, data in members:
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
        raw = bytearray(buf.getvalue())
        # Turn every header into a V7 one: clear magic/version/uname/gname/devs/prefix, fix checksum.
        off = 0
        while off + 512 <= len(raw) and any(raw[off:off + 512]):
            h = raw[off:off + 512]
            size = int(bytes(h[124:136]).rstrip(b"\0 ") or b"0", 8)
            h[257:512] = bytes(255)
            h[148:156] = b" " * 8
            h[148:156] = b"%06o\0 " % sum(h)
            raw[off:off + 512] = h
            off += 512 + (size + 511) // 512 * 512
        return bytes(raw)

    sys_info = b"\x80\x02}q\x00(X\x10\x00\x00\x00protocol_versionq\x01M\xe9\x03u."
    count0 = b"\x80\x02K\x00."
    legacy = [("sys_info", sys_info), ("pickle", BENIGN), ("tensors", count0), ("storages", EVIL_PROTO0)]
    data = v7(legacy)
    assert data[257:262] != b"ustar"
    write("bad_legacy_tar_v7.tar", data,
          "V7 headers (no ustar magic): torch.load's legacy_load opens it with tarfile and unpickles storages, which calls os.system")
    write("ok_tar_v7.tar", v7([("sys_info", sys_info), ("pickle", BENIGN), ("tensors", count0), ("storages", count0 + b"\x80\x02]q\x00.")]),
          "a benign V7 legacy tar checkpoint")

    # The same checkpoint as GNU (long names as ././@LongLink members) and POSIX pax (long
    # names in an extended header): both readers resolve the names the same way.
    long_name = "checkpoint/" + "d" * 120 + "/data.pkl"
    for fmt, name in [(tarfile.GNU_FORMAT, "bad_tar_gnu_longname.tar"), (tarfile.PAX_FORMAT, "bad_tar_pax_longname.tar")]:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
            for n, d in [(long_name, EVIL), ("checkpoint/version", b"3\n")]:
                ti = tarfile.TarInfo(n)
                ti.size = len(d)
                t.addfile(ti, io.BytesIO(d))
        write(name, buf.getvalue(), "a %s tar whose long-named member holds a pickle calling os.system" % ("GNU" if fmt == tarfile.GNU_FORMAT else "pax"))

    # A size field that starts with a NUL: tarfile cuts the field at the NUL and reads size 0,
    # Go's archive/tar trims NULs at both ends and reads 64. tarfile's next header (a member
    # "storages") is data to Go; the storages member's data is a block that Go takes for the
    # next header, whose name field is a protocol-0 pickle calling os.system. torch.load
    # extracts storages with tarfile and unpickles it.
    def header(name, size_field, typ=b"0"):
        h = bytearray(512)
        h[0:len(name)] = name
        h[100:108] = b"0000644\0"
        h[124:136] = size_field
        h[136:148] = b"00000000000\0"
        h[148:156] = b" " * 8
        h[156:157] = typ
        h[148:156] = b"%06o\0 " % sum(h)
        return bytes(h)
    payload_block = header(EVIL_PROTO0, b"00000000000\0")  # a valid header to Go, a pickle to tarfile
    hidden = (header(b"notes.txt", b"\x000000000100\0")
              + header(b"storages", b"%011o\0" % 512)
              + payload_block + bytes(1024))
    with tarfile.open(fileobj=io.BytesIO(hidden)) as t:
        assert [m.name for m in t.getmembers()][:2] == ["notes.txt", "storages"]
        assert t.extractfile("storages").read().startswith(EVIL_PROTO0)
    write("bad_tar_size_nul.tar", hidden,
          "tarfile reads notes.txt's size as 0 and then a storages member holding a pickle that calls os.system; "
          "Go's archive/tar reads the size as 64, takes the storages header for data and the pickle for a header")

    # A member of a type tarfile does not know is read as a regular file (and extracted as one).
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        ti = tarfile.TarInfo("storages")
        ti.size = len(EVIL)
        ti.type = b"7"  # CONTTYPE: a regular file to tarfile
        t.addfile(ti, io.BytesIO(EVIL))
    write("bad_tar_contiguous_type.tar", buf.getvalue(), "type '7' (contiguous file): tarfile extracts it as a regular file")


def compressed_fixtures():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in [("model/data.pkl", EVIL), ("model/config.json", b"{}")]:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    evil_tar = buf.getvalue()
    write("bad_model.tar.gz", gzip.compress(evil_tar, mtime=0), "tarfile.open('r:*') unwraps gzip; data.pkl calls os.system")
    write("bad_model.tar.bz2", bz2.compress(evil_tar), "bzip2")
    write("bad_model.tar.xz", lzma.compress(evil_tar), "xz")
    # zstd: Python 3.11 has no zstd module; the zstd command line writes it (Debian's zstd).
    import shutil
    import subprocess
    if shutil.which("zstd"):
        z = subprocess.run(["zstd", "-q", "-c", "-19"], input=evil_tar, capture_output=True, check=True).stdout
        write("bad_model.tar.zst", z, "zstd (the zstd command line); tarfile in Python 3.14 reads it, as does `tar --zstd`")
    write("bad_pickle.gz", gzip.compress(EVIL, mtime=0) + gzip.compress(b"", mtime=0), "gzip.open reads both members")
    write("ok_model.tar.gz", gzip.compress(stored_tar([("model/config.json", b"{}"), ("model/data.pkl", BENIGN)]), mtime=0), "benign")
    # An xz block header asking for a 1.5 GiB dictionary (the byte after the LZMA2 filter id
    # and its property size), with the header's CRC-32 made right again: liblzma and Go's
    # LZMA2 decoders allocate the whole dictionary before decoding a byte.
    x = bytearray(lzma.compress(evil_tar, check=lzma.CHECK_CRC32))
    hsize = (x[12] + 1) * 4
    header = x[12:12 + hsize]
    i = header.index(b"\x21\x01", 2)
    header[i + 2] = 37  # (2 | 1) << (37 // 2 + 11) = 1.5 GiB
    header[-4:] = struct.pack("<I", zlib.crc32(bytes(header[:-4])))
    x[12:12 + hsize] = header
    write("bad_xz_huge_dictionary.tar.xz", bytes(x), "an xz block header asking for a 1.5 GiB dictionary")
    write("bad_gzip_bomb.gz", gzip.compress(bytes(8 << 20), mtime=0, compresslevel=9), "8 MiB of zeros: past the test's 1 MiB cap")


def stored_tar(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def native_fixtures():
    import shutil
    # Real binaries from the system, cut to their first 4 KiB (enough to be recognised).
    for name, src in [("elf_renamed.bin", shutil.which("true") or "/bin/true")]:
        with open(src, "rb") as f:
            write(name, f.read(4096), "an ELF executable renamed: ctypes.CDLL loads it whatever its name")
    macho = struct.pack("<IiiIIII", 0xFEEDFACF, 0x01000007, 3, 6, 0, 0, 0) + bytes(64)
    write("macho_thin.bin", macho, "a 64-bit x86-64 Mach-O header")
    fat = struct.pack(">II", 0xCAFEBABE, 2) + bytes(64)
    write("macho_fat.bin", fat, "a universal (fat) Mach-O header with 2 architectures")
    pe = bytearray(256)
    pe[0:2] = b"MZ"
    pe[0x3C:0x40] = struct.pack("<I", 0x80)
    pe[0x80:0x84] = b"PE\0\0"
    write("pe_renamed.bin", bytes(pe), "a PE (Windows DLL/EXE) header")
    java = struct.pack(">IHH", 0xCAFEBABE, 0, 52) + bytes(32)
    write("ok_java_class.bin", java, "a Java class file shares 0xCAFEBABE but is not a Mach-O")
    write("bad_zip_with_so.zip", stored_zip([("pkg/libhelper.so.1", open(os.path.join(HERE, "elf_renamed.bin"), "rb").read())]),
          "an archive holding a native library")


def torchscript_fixtures():
    try:
        import torch
    except ImportError:
        print("torch missing: torchscript fixture not regenerated")
        return

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(2))

        def forward(self, x):
            return x * self.w

    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(Tiny()), buf)
    write("torchscript_tiny.pt", buf.getvalue(), "torch.jit.save: torch.load sees constants.pkl and runs it through torch.jit.load")
    buf = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buf)
    write("torch_state_dict.pt.gz", gzip.compress(buf.getvalue(), mtime=0), "a gzipped torch.save zip checkpoint")


def python_members(path):
    """The members Python's zipfile or tarfile reads, in order; None when it refuses the file."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                out = []
                for info in z.infolist():
                    if info.is_dir():
                        continue
                    try:
                        with z.open(info) as f:
                            f.read(1)
                    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, zlib.error) as e:
                        out.append({"name": info.filename, "refused": type(e).__name__})
                        continue
                    out.append({"name": info.filename})
                return {"reader": "zipfile", "members": out}
    except zipfile.BadZipFile as e:
        return {"reader": "zipfile", "error": str(e)}
    try:
        with tarfile.open(path, mode="r:*") as t:
            return {"reader": "tarfile", "members": [{"name": m.name} for m in t.getmembers()
                                                     if m.isreg() or m.type not in tarfile.SUPPORTED_TYPES]}
    except tarfile.TarError as e:
        return None


def pytorch_reader_records(path):
    """The records PyTorch's reader (miniz) lists, without the archive's top folder; None
    when it refuses the archive or torch is missing."""
    try:
        import torch
    except ImportError:
        return None
    try:
        return sorted(torch._C.PyTorchFileReader(path).get_all_records())
    except (RuntimeError, AttributeError):
        return None


def record_expected():
    patterns = ["internal/scan/testdata/containers/*", "testdata/scan/**/*", "testdata/scan/*", "testdata/interop/picklescan/**/*"]
    files = sorted({p for pat in patterns for p in glob.glob(os.path.join(ROOT, pat), recursive=True) if os.path.isfile(p)})
    expected = {}
    for p in files:
        rel = os.path.relpath(p, ROOT)
        if rel.endswith((".py", ".json", ".md", ".sh")):
            continue
        with open(p, "rb") as f:
            head = f.read(4)
        # Compressed tars are read through their decompressor by tarfile; the scanner's member
        # names carry the [gzip] step, so record only plain archives here.
        if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head == b"\xfd7zX":
            continue
        m = python_members(p)
        if m is None:
            continue
        if m["reader"] == "zipfile":
            m["torch"] = pytorch_reader_records(p)
        expected[rel] = m
    with open(os.path.join(HERE, "expected_members.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(os.path.join(HERE, "NOTES.json"), "w") as f:
        json.dump(NOTES, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    zip_fixtures()
    tar_fixtures()
    compressed_fixtures()
    native_fixtures()
    torchscript_fixtures()
    record_expected()
