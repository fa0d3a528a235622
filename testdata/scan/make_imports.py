#!/usr/bin/env python3
"""Make the import-side-effect cases of issue 15 item 4 for internal/scan's tests.

Python standard library only: python3 make_imports.py writes imports/ beside this script.
Every file is a protocol-0 fragment that names a module with GLOBAL and then ends: no call,
no STOP. Unpickling still imports the module before failing, and importing runs the module's
top-level code. How each loader reads each file:

  antigravity.pkl        pickle.load: GLOBAL imports antigravity (which opens a web browser),
                         gets its webbrowser attribute, then fails: "pickle data was truncated".
  repo_module.pkl        pickle.load, joblib.load, pandas.read_pickle: GLOBAL imports
                         modeling_custom, which a cloned model repository on sys.path supplies
                         (its top-level code runs), then fails on Loader or on the missing STOP.
  repo_module.bin        torch.load(weights_only=False): not a zip, not a tar, so the legacy
                         loader unpickles the "magic number" pickle: same import, then failure.
  repo_module_after_int  no extension: BININT1 0x01 then the same GLOBAL. pickle.load on it
                         imports modeling_custom; its bytes are not text, so no text file holds it.
  repo_module.txt        the same bytes as repo_module.pkl, as a text file: no loader unpickles
                         a .txt file, so the scanner keeps it unknown (it would import "modeling_custom"
                         only if someone called pickle.load on it).
  words.txt              "cat\\ndog\\nbird\\n": GLOBAL at.dog if unpickled; a word list, unknown.
  tar_pickle_member.tar  a PyTorch <= 0.1 tar checkpoint (sys_info, storages, tensors, pickle):
                         torch.load's legacy_load unpickles the storages and tensors counts (0),
                         then hands the pickle member to its unpickler, which imports modeling_custom.

verify() proves the claims with the real loaders: it puts a modeling_custom.py that only writes
a marker file on sys.path, loads each hostile file in a subprocess, and checks that the marker
appears although the load fails. antigravity.pkl is never loaded (it would open a browser).
Run with /usr/bin/python3 (Debian python3-torch) to include torch.load.
"""
import io
import os
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "imports")
REPO_MODULE = b"cmodeling_custom\nLoader\n"

FILES = {
    "antigravity.pkl": b"cantigravity\nwebbrowser\n",
    "repo_module.pkl": REPO_MODULE,
    "repo_module.bin": REPO_MODULE,
    "repo_module_after_int": b"K\x01" + REPO_MODULE,
    "repo_module.txt": REPO_MODULE,
    "words.txt": b"cat\ndog\nbird\n",
}


def tar_checkpoint():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("sys_info", b"\x80\x02}."), ("storages", b"\x80\x02K\x00.\x80\x02]."), ("tensors", b"\x80\x02K\x00."),
                           ("pickle", REPO_MODULE)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def verify():
    loaders = {
        "pickle": "import pickle, sys\npickle.load(open(sys.argv[1], 'rb'))",
    }
    try:
        import torch  # noqa: F401
        loaders["torch"] = "import torch, sys\ntorch.load(sys.argv[1], weights_only=False)"
    except ImportError:
        pass
    cases = [("repo_module.pkl", "pickle"), ("repo_module_after_int", "pickle"),
             ("repo_module.bin", "torch"), ("tar_pickle_member.tar", "torch")]
    with tempfile.TemporaryDirectory() as repo:
        marker = os.path.join(repo, "imported")
        with open(os.path.join(repo, "modeling_custom.py"), "w") as f:
            f.write(f"open({marker!r}, 'w').close()\n")
        for name, loader in cases:
            if loader not in loaders:
                print(f"skip {name}: {loader} is not installed")
                continue
            if os.path.exists(marker):
                os.remove(marker)
            run = subprocess.run([sys.executable, "-c", loaders[loader], os.path.join(HERE, name)],
                                 cwd=repo, env={**os.environ, "PYTHONPATH": repo}, capture_output=True, text=True)
            assert run.returncode != 0, f"{name}: {loader} loaded it"
            assert os.path.exists(marker), f"{name}: {loader} failed without importing: {run.stderr}"
            print(f"{name}: {loader} imported modeling_custom, then failed: {run.stderr.strip().splitlines()[-1]}")


def main():
    os.makedirs(HERE, exist_ok=True)
    for name, data in FILES.items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
    with open(os.path.join(HERE, "tar_pickle_member.tar"), "wb") as f:
        f.write(tar_checkpoint())
    verify()


if __name__ == "__main__":
    main()
