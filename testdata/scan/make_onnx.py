#!/usr/bin/env python3
"""Writes testdata/scan/onnx/ with the real onnx package (Debian python3-onnx).

Benign models come from onnx's own helpers and serializer; hostile ones are the same models
with one field changed through the same API (a custom operator domain, an external-data
location that leaves the model directory, an unknown external_data key). Nothing is run.
"""
import os
import sys

# The output folder is called onnx too: keep this script's folder off the import path.
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "onnx")
os.makedirs(OUT, exist_ok=True)
for name in os.listdir(OUT):
    os.remove(os.path.join(OUT, name))


def model(nodes, inits, opsets=None, functions=None, name="g"):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    g = helper.make_graph(nodes, name, [x], [y], initializer=inits)
    m = helper.make_model(g, opset_imports=opsets or [helper.make_opsetid("", 13)],
                          functions=functions or [], producer_name="make_onnx.py")
    return m


def weight(name="w"):
    return numpy_helper.from_array(np.arange(4, dtype=np.float32), name)


def save(m, name, check=True):
    if check:
        onnx.checker.check_model(m)
    onnx.save_model(m, os.path.join(OUT, name))


# Benign: one Add with an initializer inside the file.
add = model([helper.make_node("Add", ["x", "w"], ["y"])], [weight()])
save(add, "add.onnx")

# Benign: an If whose branches are subgraphs, and an ai.onnx.ml operator.
then_g = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "then", [],
                           [helper.make_tensor_value_info("t", TensorProto.FLOAT, [4])])
else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                           [helper.make_tensor_value_info("e", TensorProto.FLOAT, [4])])
cond = numpy_helper.from_array(np.array(True), "c")
branch = model([helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)], [cond])
save(branch, "if_subgraph.onnx")

# Benign: a node calling a function the model defines (domain "local"), not a custom op.
fn = helper.make_function("local", "Double", ["a"], ["b"], [helper.make_node("Add", ["a", "a"], ["b"])],
                          [helper.make_opsetid("", 13)])
local = model([helper.make_node("Double", ["x"], ["y"], domain="local")], [],
              opsets=[helper.make_opsetid("", 13), helper.make_opsetid("local", 1)], functions=[fn])
save(local, "local_function.onnx")

# Benign: the initializer in an external file beside the model, as onnx writes it.
ext = model([helper.make_node("Add", ["x", "w"], ["y"])], [weight()])
onnx.save_model(ext, os.path.join(OUT, "external.onnx"), save_as_external_data=True,
                all_tensors_to_one_file=True, location="external.onnx.data", size_threshold=0)

# Hostile: a custom operator domain (onnxruntime would need a native custom-op library).
custom = model([helper.make_node("Evil", ["x"], ["y"], domain="com.example.evil")], [],
               opsets=[helper.make_opsetid("", 13), helper.make_opsetid("com.example.evil", 1)])
save(custom, "custom_op.onnx", check=False)

# Hostile: the custom operator hidden in an If branch.
hidden_g = helper.make_graph([helper.make_node("Evil", ["x"], ["t"], domain="com.example.evil")], "then", [],
                             [helper.make_tensor_value_info("t", TensorProto.FLOAT, [4])])
hidden = model([helper.make_node("If", ["c"], ["y"], then_branch=hidden_g, else_branch=else_g)], [cond],
               opsets=[helper.make_opsetid("", 13), helper.make_opsetid("com.example.evil", 1)])
save(hidden, "custom_op_in_subgraph.onnx", check=False)


def external(name, entries):
    m = model([helper.make_node("Add", ["x", "w"], ["y"])], [weight()])
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in entries:
        e = t.external_data.add()
        e.key, e.value = k, v
    save(m, name, check=False)


# Hostile: external-data locations out of the model directory (CVE-2022-25882,
# CVE-2024-27318's nested form, a Windows form, an absolute path).
external("external_dotdot.onnx", [("location", "../../../../etc/passwd")])
external("external_nested_dotdot.onnx", [("location", "sub/../../../etc/passwd")])
external("external_backslash.onnx", [("location", "..\\..\\secrets.bin")])
external("external_absolute.onnx", [("location", "/etc/passwd")])
external("external_drive.onnx", [("location", "C:\\Windows\\win.ini")])
external("external_basepath.onnx", [("location", "external.onnx.data"), ("basepath", "/etc")])
external("external_missing.onnx", [("location", "missing.data")])
external("external_range.onnx", [("location", "external.onnx.data"), ("offset", "0"), ("length", "4096")])
external("external_no_location.onnx", [("offset", "0")])

# Malformed: the benign model cut short, and a length that runs past the file.
raw = open(os.path.join(OUT, "add.onnx"), "rb").read()
open(os.path.join(OUT, "truncated.onnx"), "wb").write(raw[: len(raw) - 7])
open(os.path.join(OUT, "bad_length.onnx"), "wb").write(raw + b"\x3a\xff\xff\xff\x0f")
print("wrote", sorted(os.listdir(OUT)))
