#!/usr/bin/env python3
"""Writes testdata/scan/tflite/: TFLite FlatBuffer models.

Debian has no TensorFlow Lite converter, so the models are built with the real FlatBuffers
library (Debian python3-flatbuffers) field by field from tensorflow/lite/schema/schema.fbs:
Model {version 0, operator_codes 1, subgraphs 2, description 3, buffers 4}, OperatorCode
{deprecated_builtin_code 0, custom_code 1, version 2, builtin_code 3}, SubGraph {tensors 0,
inputs 1, outputs 2, operators 3, name 4}, Operator {opcode_index 0, inputs 1, outputs 2},
Tensor {shape 0, type 1, buffer 2, name 3}, Buffer {data 0}; file identifier "TFL3".
"""
import os
import sys

sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import flatbuffers  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tflite")
os.makedirs(OUT, exist_ok=True)
for name in os.listdir(OUT):
    os.remove(os.path.join(OUT, name))

ADD, CUSTOM = 0, 32


def vector_of_offsets(b, start, offsets):
    start(b, len(offsets)) if callable(start) else b.StartVector(4, len(offsets), 4)
    for o in reversed(offsets):
        b.PrependUOffsetTRelative(o)
    return b.EndVector()


def int_vector(b, values):
    b.StartVector(4, len(values), 4)
    for v in reversed(values):
        b.PrependInt32(v)
    return b.EndVector()


def model(opcodes, index_shift=0):
    """opcodes: list of (builtin_code, custom_code or None)."""
    b = flatbuffers.Builder(1024)
    codes = []
    for code, custom in opcodes:
        name = b.CreateString(custom) if custom is not None else None
        b.StartObject(4)
        b.PrependInt8Slot(0, min(code, 127), 0)
        if name is not None:
            b.PrependUOffsetTRelativeSlot(1, name, 0)
        b.PrependInt32Slot(2, 1, 1)
        b.PrependInt32Slot(3, code, 0)
        codes.append(b.EndObject())
    tensors = []
    for i, tname in enumerate(["x", "w", "y"]):
        n = b.CreateString(tname)
        shape = int_vector(b, [4])
        b.StartObject(4)
        b.PrependUOffsetTRelativeSlot(0, shape, 0)
        b.PrependInt8Slot(1, 0, 0)  # FLOAT32
        b.PrependUint32Slot(2, i + 1, 0)
        b.PrependUOffsetTRelativeSlot(3, n, 0)
        tensors.append(b.EndObject())
    ops = []
    for i in range(len(opcodes)):
        ins, outs = int_vector(b, [0, 1]), int_vector(b, [2])
        b.StartObject(3)
        b.PrependUint32Slot(0, i + index_shift, 0)
        b.PrependUOffsetTRelativeSlot(1, ins, 0)
        b.PrependUOffsetTRelativeSlot(2, outs, 0)
        ops.append(b.EndObject())
    tvec = vector_of_offsets(b, None, tensors)
    ovec = vector_of_offsets(b, None, ops)
    gin, gout = int_vector(b, [0]), int_vector(b, [2])
    gname = b.CreateString("main")
    b.StartObject(5)
    b.PrependUOffsetTRelativeSlot(0, tvec, 0)
    b.PrependUOffsetTRelativeSlot(1, gin, 0)
    b.PrependUOffsetTRelativeSlot(2, gout, 0)
    b.PrependUOffsetTRelativeSlot(3, ovec, 0)
    b.PrependUOffsetTRelativeSlot(4, gname, 0)
    graph = b.EndObject()
    bufs = []
    for data in [None, None, bytes(16), None]:
        d = b.CreateByteVector(data) if data else None
        b.StartObject(1)
        if d:
            b.PrependUOffsetTRelativeSlot(0, d, 0)
        bufs.append(b.EndObject())
    cvec = vector_of_offsets(b, None, codes)
    gvec = vector_of_offsets(b, None, [graph])
    bvec = vector_of_offsets(b, None, bufs)
    desc = b.CreateString("make_tflite.py")
    b.StartObject(5)
    b.PrependUint32Slot(0, 3, 0)
    b.PrependUOffsetTRelativeSlot(1, cvec, 0)
    b.PrependUOffsetTRelativeSlot(2, gvec, 0)
    b.PrependUOffsetTRelativeSlot(3, desc, 0)
    b.PrependUOffsetTRelativeSlot(4, bvec, 0)
    root = b.EndObject()
    b.Finish(root, file_identifier=b"TFL3")
    return bytes(b.Output())


def write(name, data):
    open(os.path.join(OUT, name), "wb").write(data)


write("add.tflite", model([(ADD, None)]))
write("detection_postprocess.tflite", model([(ADD, None), (CUSTOM, "TFLite_Detection_PostProcess")]))
write("custom_op.tflite", model([(ADD, None), (CUSTOM, "MyNativeOp")]))
write("flex_read_file.tflite", model([(CUSTOM, "FlexReadFile")]))
write("flex_add.tflite", model([(CUSTOM, "FlexAddV2")]))
raw = model([(ADD, None), (CUSTOM, "MyNativeOp")])
write("truncated.tflite", raw[:40])
bad = bytearray(raw)
bad[0:4] = (len(raw) + 100).to_bytes(4, "little")  # root table offset past the end
write("bad_root.tflite", bytes(bad))
print("wrote", sorted(os.listdir(OUT)))

# An operator naming an operator code the model does not have.
write("bad_opcode_index.tflite", model([(ADD, None)], index_shift=5))
