#!/usr/bin/env python3
"""Make small, real PyTorch checkpoints for internal/scan's tests.

Run with Debian's python3-torch (apt-get install python3-torch): /usr/bin/python3 make_torch_checkpoints.py
It writes, beside itself, state dicts saved by torch.save in the zip format (the default) and in
the legacy stacked-pickle format (_use_new_zipfile_serialization=False). Every file must scan safe.
The tests read the committed files and do not need torch.
"""
import collections
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def state_dict():
    g = torch.Generator().manual_seed(42)
    sd = collections.OrderedDict()
    sd["linear.weight"] = torch.randn(4, 3, generator=g)
    sd["linear.bias"] = torch.randn(4, generator=g)
    sd["half"] = torch.randn(2, 2, generator=g).half()
    sd["bfloat16"] = torch.randn(3, generator=g).to(torch.bfloat16)
    sd["double"] = torch.randn(2, generator=g).double()
    sd["int64"] = torch.arange(5, dtype=torch.int64)
    sd["int32"] = torch.arange(3, dtype=torch.int32)
    sd["int8"] = torch.tensor([-1, 0, 1], dtype=torch.int8)
    sd["uint8"] = torch.tensor([0, 255], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False])
    sd["complex64"] = torch.tensor([1 + 2j], dtype=torch.complex64)
    sd["scalar"] = torch.tensor(3.5)
    sd["empty"] = torch.zeros(0, 3)
    base = torch.arange(12, dtype=torch.float32)
    sd["view_a"] = base[:6].view(2, 3)  # two tensors sharing one storage
    sd["view_b"] = base[6:]
    sd["param"] = torch.nn.Parameter(torch.ones(2))
    return sd


def main():
    sd = state_dict()
    torch.save(sd, os.path.join(HERE, "torch_state_dict_zip.pt"))
    torch.save(sd, os.path.join(HERE, "torch_state_dict_legacy.pt"), _use_new_zipfile_serialization=False)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))
    torch.save(model.state_dict(), os.path.join(HERE, "torch_module_state_dict_zip.pt"))
    torch.save(model.state_dict(), os.path.join(HERE, "torch_module_state_dict_legacy.pt"),
               _use_new_zipfile_serialization=False)
    # Protocol 4 pickle inside the zip (torch.save's pickle_protocol argument).
    torch.save(sd, os.path.join(HERE, "torch_state_dict_zip_proto4.pt"), pickle_protocol=4)
    # One storage: torch.save pickles the one-key storage list with APPEND, not APPENDS.
    torch.save(torch.arange(4, dtype=torch.float32), os.path.join(HERE, "torch_one_tensor_legacy.pt"),
               _use_new_zipfile_serialization=False)
    torch.save({"w": torch.ones(2, 2)}, os.path.join(HERE, "torch_one_storage_dict_legacy.pt"),
               _use_new_zipfile_serialization=False)
    # builtins.set, builtins.complex and builtins.bytearray (written as __builtin__.* under
    # protocol 2), which current PyTorch's weights_only unpickler accepts.
    builtins_ckpt = {"w": torch.ones(2), "classes": {1, 2, 3}, "phase": 1 + 2j, "magic": bytearray(b"\x00ab")}
    torch.save(builtins_ckpt, os.path.join(HERE, "torch_builtins_zip.pt"))
    torch.save(builtins_ckpt, os.path.join(HERE, "torch_builtins_legacy.pt"), _use_new_zipfile_serialization=False)
    for name in ("torch_builtins_zip.pt", "torch_builtins_legacy.pt"):
        # torch 1.13's weights_only list predates these builtins; the content round-trips.
        back = torch.load(os.path.join(HERE, name), weights_only=False)
        assert back["classes"] == {1, 2, 3} and back["phase"] == 1 + 2j and back["magic"] == bytearray(b"\x00ab"), name
    for name in ("torch_one_tensor_legacy.pt", "torch_one_storage_dict_legacy.pt"):
        torch.load(os.path.join(HERE, name), weights_only=True)
    # Round trip: what was written loads back with weights_only=True.
    for name in ("torch_state_dict_zip.pt", "torch_state_dict_legacy.pt"):  # torch 1.13 rejects protocol 4 here
        back = torch.load(os.path.join(HERE, name), weights_only=True)
        assert list(back.keys()) == list(sd.keys()), name


if __name__ == "__main__":
    main()
