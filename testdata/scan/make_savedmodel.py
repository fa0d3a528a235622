#!/usr/bin/env python3
"""Writes testdata/scan/savedmodel/: TensorFlow saved_model.pb files.

Debian has no TensorFlow, so the files are encoded byte for byte from TensorFlow's protos
(tensorflow/core/protobuf/saved_model.proto, meta_graph.proto, saver.proto;
core/framework/graph.proto, node_def.proto, function.proto, attr_value.proto, tensor.proto,
versions.proto, op_def.proto) in the shape tf.saved_model.save writes: schema version 1, one
MetaGraphDef tagged "serve" whose graph holds the saver placeholders and call ops, and a
function library with the serving function and the _traced_save / _traced_restore functions
(SaveV2, MergeV2Checkpoints, RestoreV2 fed by the loader's file_prefix argument). Hostile
files add one op each. Python stdlib only.
"""
import json
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "savedmodel")
os.makedirs(OUT, exist_ok=True)
for name in os.listdir(OUT):
    os.remove(os.path.join(OUT, name))


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, value):
    """int -> varint field; bytes/str -> length-delimited field."""
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value


def msg(*fields):
    return b"".join(fields)


DT_FLOAT, DT_STRING, DT_RESOURCE = 1, 7, 20


def attr(key, value):  # NodeDef.attr map entry: key (1), AttrValue (2)
    return field(5, msg(field(1, key), field(2, value)))


def attr_type(t):
    return field(6, t)


def attr_s(s):
    return field(2, s)


def const_string(name, s):
    tensor = msg(field(1, DT_STRING), field(2, b""), field(8, s))
    return node(name, "Const", [], attr("dtype", attr_type(DT_STRING)), attr("value", field(8, tensor)))


def node(name, op, inputs, *attrs):
    return msg(field(1, name), field(2, op), *[field(3, i) for i in inputs], *attrs)


def function(name, nodes, args=("x",)):
    sig = msg(field(1, name), *[field(2, msg(field(1, a), field(3, DT_FLOAT))) for a in args])
    return field(1, msg(field(1, sig), *[field(3, n) for n in nodes]))


def serve_fn(extra=()):
    return function("__inference_serve_42", [
        node("ReadVariableOp", "ReadVariableOp", ["readvariableop_resource"], attr("dtype", attr_type(DT_FLOAT))),
        node("MatMul", "MatMul", ["x", "ReadVariableOp:value:0"], attr("T", attr_type(DT_FLOAT))),
        node("Identity", "Identity", ["MatMul:product:0"], attr("T", attr_type(DT_FLOAT))),
        *extra,
    ], args=("x", "readvariableop_resource"))


def save_fn(prefix_input="file_prefix", extra=()):
    return function("__inference__traced_save_99", [
        const_string("SaveV2/tensor_names", b"variables/0/.ATTRIBUTES/VARIABLE_VALUE"),
        const_string("SaveV2/shape_and_slices", b""),
        node("SaveV2", "SaveV2", [prefix_input, "SaveV2/tensor_names:output:0", "SaveV2/shape_and_slices:output:0", "savev2_variable"]),
        node("MergeV2Checkpoints", "MergeV2Checkpoints", ["ShardedFilenames:filename:0", "file_prefix"]),
        *extra,
    ], args=("file_prefix", "savev2_variable"))


def restore_fn(prefix_input="file_prefix"):
    return function("__inference__traced_restore_120", [
        const_string("RestoreV2/tensor_names", b"variables/0/.ATTRIBUTES/VARIABLE_VALUE"),
        const_string("RestoreV2/shape_and_slices", b""),
        node("RestoreV2", "RestoreV2", [prefix_input, "RestoreV2/tensor_names:output:0", "RestoreV2/shape_and_slices:output:0"]),
        node("AssignVariableOp", "AssignVariableOp", ["variable", "RestoreV2:tensors:0"]),
    ], args=("file_prefix", "variable"))


def saved_model(graph_nodes=(), functions=None, assets=()):
    functions = functions or [serve_fn(), save_fn(), restore_fn()]
    graph = msg(
        field(1, node("saver_filename", "Placeholder", [], attr("dtype", attr_type(DT_STRING)), attr("shape", field(7, b"")))),
        field(1, node("StatefulPartitionedCall_1", "StatefulPartitionedCall", ["saver_filename", "Variable"],
                      attr("f", field(10, msg(field(1, "__inference__traced_save_99")))))),
        field(1, node("StatefulPartitionedCall_2", "StatefulPartitionedCall", ["saver_filename", "Variable"],
                      attr("f", field(10, msg(field(1, "__inference__traced_restore_120")))))),
        *[field(1, n) for n in graph_nodes],
        field(2, msg(*functions)),
        field(4, msg(field(1, 1645), field(2, 12))),
    )
    meta_info = msg(field(4, "serve"), field(5, "2.15.0"), field(6, "v2.15.0-2-g0b15fdfcb3f"))
    saver = msg(field(1, "saver_filename:0"), field(2, "StatefulPartitionedCall_1:0"),
                field(3, "StatefulPartitionedCall_2"), field(7, 2))
    sig = field(5, msg(field(1, "serving_default"), field(2, msg(field(3, "tensorflow/serving/predict")))))
    # AssetFileDef: tensor_info (1) {name (1)}, filename (2).
    asset_defs = [field(6, msg(field(1, msg(field(1, f"asset_path_{i}:0"))), field(2, a))) for i, a in enumerate(assets)]
    meta = msg(field(1, meta_info), field(2, graph), field(3, saver), sig, *asset_defs)
    return msg(field(1, 1), field(2, meta))


def write(name, data):
    open(os.path.join(OUT, name), "wb").write(data)


write("benign.pb", saved_model(assets=["vocab.txt"]))
write("asset_dotdot.pb", saved_model(assets=["../../../../etc/passwd"]))
write("read_file.pb", saved_model(functions=[serve_fn([node("ReadFile", "ReadFile", ["Const:output:0"])]), save_fn(), restore_fn()]))
write("write_file.pb", saved_model(graph_nodes=[const_string("path", b"/tmp/pwned"), node("WriteFile", "WriteFile", ["path", "x"])]))
write("matching_files.pb", saved_model(functions=[serve_fn([node("MatchingFiles", "MatchingFiles", ["pattern"])]), save_fn(), restore_fn()]))
write("py_func.pb", saved_model(functions=[serve_fn([node("PyFunc", "EagerPyFunc", ["x"], attr("token", attr_s("pyfunc_0")))]), save_fn(), restore_fn()]))
write("save_absolute.pb", saved_model(functions=[serve_fn(), save_fn("evil_prefix:output:0", [const_string("evil_prefix", b"/etc/cron.d/x")]), restore_fn()]))
write("restore_dotdot.pb", saved_model(functions=[serve_fn(), save_fn(), restore_fn("RestoreV2/prefix:output:0")]
                                       + [function("__inference_restore_other", [const_string("p", b"../../../home/user/.ssh/id_rsa"), node("r", "RestoreV2", ["p:output:0", "n", "s"])])]))
write("vocab_table.pb", saved_model(functions=[serve_fn([node("InitializeTableFromTextFileV2", "InitializeTableFromTextFileV2", ["table", "asset_path"])]), save_fn(), restore_fn()]))
raw = saved_model()
write("truncated.pb", raw[: len(raw) - 9])
write("bad_wire_type.pb", raw[:3] + b"\x0b" + raw[4:])
print("wrote", sorted(os.listdir(OUT)))

# saved_model.pbtxt: the same SavedModel in protobuf text format, which TensorFlow's loader
# also reads (a modelscan bypass: it routes by the .pb extension).
def pbtxt(ops):
    nodes = "".join(f'      node_def {{\n        name: "{op}"\n        op: "{op}"\n      }}\n' for op in ops)
    return ('saved_model_schema_version: 1\nmeta_graphs {\n  meta_info_def {\n    tags: "serve"\n  }\n'
            '  graph_def {\n    node {\n      name: "saver_filename"\n      op: "Placeholder"\n    }\n'
            f'    library {{\n      function {{\n{nodes}      }}\n    }}\n  }}\n}}\n')


open(os.path.join(OUT, "benign.pbtxt"), "w").write(pbtxt(["MatMul", "SaveV2", "RestoreV2"]))
open(os.path.join(OUT, "read_write_file.pbtxt"), "w").write(pbtxt(["MatMul", "ReadFile", "WriteFile"]))


# keras_metadata.pb of a Keras 2 SavedModel (keras/protobuf/saved_metadata.proto):
# SavedMetadata {nodes (1): SavedObject {node_id (2), node_path (3), identifier (4),
# metadata (5), version (6) {producer (1), min_consumer (2)}}}, one node per layer.
def keras_metadata(layers):
    nodes = [field(1, msg(field(2, 0), field(3, "root"), field(4, "_tf_keras_sequential"),
                          field(5, json.dumps({"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}})),
                          field(6, msg(field(1, 2), field(2, 1)))))]
    for i, layer in enumerate(layers):
        nodes.append(field(1, msg(field(2, i + 1), field(3, f"root.layer-{i}"), field(4, "_tf_keras_layer"),
                                  field(5, json.dumps(layer)), field(6, msg(field(1, 2), field(2, 1))))))
    return msg(*nodes)


DENSE = {"class_name": "Dense", "config": {"name": "dense", "units": 2, "activation": "relu"}}
LAMBDA = {"class_name": "Lambda", "config": {"name": "lambda", "function": ["4wEAAAAAAAAA", None, None],
                                             "function_type": "lambda", "module": "__main__"}}
write("keras_metadata.pb", keras_metadata([DENSE]))
write("keras_metadata_lambda.pb", keras_metadata([DENSE, LAMBDA]))
