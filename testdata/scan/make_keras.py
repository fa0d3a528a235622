#!/usr/bin/env python3
"""Writes testdata/scan/keras/: Keras 3 .keras zips and legacy Keras .h5 files.

Debian has no Keras or TensorFlow, so the configs are written from Keras's serialization
format (keras/src/saving/serialization_lib.py for Keras 3, legacy model.get_config() JSON for
Keras 2), and the HDF5 files by the real HDF5 library through h5py (Debian python3-h5py),
with the attributes Keras's legacy_h5_format / hdf5_format write: model_config and
training_config as UTF-8 bytes (fixed-length strings), keras_version, backend.
Variants store model_config as a Python str (a variable-length string in the global heap),
use libver="latest" (superblock 3, version 2 object headers), and push the attributes into
dense storage. Lambda bytecode is the marshalled code of `lambda x: x`; nothing is run.
"""
import base64
import io
import json
import marshal
import os
import zipfile

import h5py
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras")
os.makedirs(OUT, exist_ok=True)
for name in os.listdir(OUT):
    os.remove(os.path.join(OUT, name))

LAMBDA_CODE = base64.b64encode(marshal.dumps((lambda x: x).__code__)).decode()


def obj(module, cls, config, registered=None, **extra):
    d = {"module": module, "class_name": cls, "config": config, "registered_name": registered}
    d.update(extra)
    return d


def dtype():
    return obj("keras", "DTypePolicy", {"name": "float32"})


def dense(name, activation="relu"):
    return obj("keras.layers", "Dense", {
        "name": name, "trainable": True, "dtype": dtype(), "units": 2, "activation": activation,
        "use_bias": True,
        "kernel_initializer": obj("keras.initializers", "GlorotUniform", {"seed": None}),
        "bias_initializer": obj("keras.initializers", "Zeros", {}),
        "kernel_regularizer": None, "bias_regularizer": None, "kernel_constraint": None,
        "bias_constraint": None}, build_config={"input_shape": [None, 4]})


def sequential(*layers):
    inp = obj("keras.layers", "InputLayer", {"batch_shape": [None, 4], "dtype": "float32",
                                              "sparse": False, "name": "input_layer"})
    return obj("keras", "Sequential", {"name": "sequential", "trainable": True, "dtype": dtype(),
                                       "layers": [inp, *layers]},
               build_config={"input_shape": [None, 4]},
               compile_config={"optimizer": obj("keras.optimizers", "Adam", {"name": "adam", "learning_rate": 0.001}),
                               "loss": "mean_squared_error", "metrics": None, "loss_weights": None,
                               "weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1,
                               "jit_compile": False})


def weights_h5():
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        v = f.create_group("layers/dense/vars")
        v.create_dataset("0", data=np.zeros((4, 2), np.float32))
        v.create_dataset("1", data=np.zeros((2,), np.float32))
        f.create_group("optimizer/vars")
    return buf.getvalue()


def keras_zip(name, config):
    with zipfile.ZipFile(os.path.join(OUT, name), "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.6.0", "date_saved": "2026-12-01@12:00:00"}))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", weights_h5())


keras_zip("sequential.keras", sequential(dense("dense")))
lam = obj("keras.layers", "Lambda", {"name": "lambda", "trainable": True, "dtype": dtype(),
                                      "function": {"class_name": "__lambda__",
                                                   "config": {"code": LAMBDA_CODE, "defaults": None, "closure": None}},
                                      "arguments": {}})
keras_zip("lambda.keras", sequential(lam))
# Function references: a builtin (exec) and keras functions of the safe_mode bypasses.
# The modelscan bypasses: a Lambda in a nested model, a lambda as a Dense activation, a
# TorchModuleWrapper (torch.load of the module's pickle).
keras_zip("nested_lambda.keras", sequential(obj("keras", "Sequential", {"name": "inner", "layers": [lam]})))
keras_zip("activation_lambda.keras", sequential(dense("d", {"class_name": "__lambda__",
                                                             "config": {"code": LAMBDA_CODE, "defaults": None, "closure": None}})))
keras_zip("torch_module.keras", sequential(obj("keras.layers", "TorchModuleWrapper", {"name": "t", "module": "gASVAAAAAAAAAAB9lC4="})))
keras_zip("builtins_exec.keras", sequential(dense("d", obj("builtins", "function", "exec", "function"))))
keras_zip("get_file.keras", sequential(dense("d", obj("keras.utils", "function", "get_file", "function"))))
keras_zip("enable_unsafe.keras", sequential(dense("d", obj("keras.config", "function", "enable_unsafe_deserialization", "function"))))
keras_zip("os_module.keras", sequential(obj("os", "system", {"name": "x"})))
keras_zip("custom_object.keras", sequential(obj("my_package.layers", "MyLayer", {"name": "mine"}, "MyPackage>MyLayer")))
raw = open(os.path.join(OUT, "sequential.keras"), "rb").read()
open(os.path.join(OUT, "truncated.keras"), "wb").write(raw[: len(raw) // 2])
open(os.path.join(OUT, "config_lambda.json"), "w").write(json.dumps(sequential(lam)))


def legacy(class_name, layers):
    return {"class_name": class_name, "config": {"name": "sequential", "layers": layers}}


def legacy_dense(name):
    return {"class_name": "Dense", "config": {"name": name, "trainable": True, "dtype": "float32", "units": 2,
                                              "activation": "relu", "use_bias": True,
                                              "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
                                              "bias_initializer": {"class_name": "Zeros", "config": {}}}}


LEGACY_LAMBDA = {"class_name": "Lambda", "config": {"name": "lambda", "trainable": True, "dtype": "float32",
                                                    "function": [LAMBDA_CODE, None, None], "function_type": "lambda",
                                                    "module": "__main__", "output_shape": None,
                                                    "output_shape_type": "raw", "output_shape_module": None,
                                                    "arguments": {}}}
TFOP = {"class_name": "TFOpLambda", "config": {"name": "tf.io.write_file", "trainable": True, "dtype": "float32",
                                               "function": "io.write_file"}}
TRAINING = {"loss": "mse", "metrics": None, "optimizer_config": {"class_name": "Adam", "config": {"learning_rate": 0.001}}}


def h5(name, config, as_str=False, libver="earliest", extra_attrs=0, config_attr=True, fixed=False, userblock=0):
    with h5py.File(os.path.join(OUT, name), "w", libver=libver, userblock_size=userblock) as f:
        for i in range(extra_attrs):
            f.attrs[f"pad_{i:02d}"] = np.bytes_(b"x" * 16)
        f.attrs["keras_version"] = b"2.15.0"
        f.attrs["backend"] = b"tensorflow"
        if config_attr:
            text = json.dumps(config)
            # h5py 3 writes str and bytes as variable-length strings (global heap), and
            # np.bytes_ as a fixed-length string, which is what h5py 2 made of Keras's bytes.
            f.attrs["model_config"] = text if as_str else np.bytes_(text.encode("utf8")) if fixed else text.encode("utf8")
            f.attrs["training_config"] = json.dumps(TRAINING).encode("utf8")
        g = f.create_group("model_weights/dense/dense")
        g.create_dataset("kernel:0", data=np.zeros((4, 2), np.float32))
        f["model_weights"].attrs["layer_names"] = [b"dense"]


h5("sequential.h5", legacy("Sequential", [legacy_dense("dense")]))
h5("sequential_fixed.h5", legacy("Sequential", [legacy_dense("dense")]), fixed=True)
h5("lambda_fixed.h5", legacy("Sequential", [LEGACY_LAMBDA]), fixed=True)
h5("sequential_str.h5", legacy("Sequential", [legacy_dense("dense")]), as_str=True)
h5("sequential_latest.h5", legacy("Sequential", [legacy_dense("dense")]), libver="latest")
h5("lambda.h5", legacy("Sequential", [legacy_dense("dense"), LEGACY_LAMBDA]))
h5("lambda_str.h5", legacy("Sequential", [LEGACY_LAMBDA]), as_str=True)
h5("lambda_latest.h5", legacy("Sequential", [LEGACY_LAMBDA]), libver="latest")
# A 512-byte user block before the superblock (h5py.is_hdf5 still accepts the file).
h5("lambda_userblock.bin", legacy("Sequential", [LEGACY_LAMBDA]), userblock=512)
h5("tfop_write_file.h5", legacy("Functional", [TFOP]))
h5("weights_only.h5", None, config_attr=False)
# Past 8 attributes, libver="latest" moves them to dense storage (a fractal heap).
h5("lambda_dense_attrs.h5", legacy("Sequential", [LEGACY_LAMBDA]), libver="latest", extra_attrs=12)
raw = open(os.path.join(OUT, "lambda.h5"), "rb").read()
open(os.path.join(OUT, "truncated.h5"), "wb").write(raw[:1200])
print("wrote", sorted(os.listdir(OUT)))
