#!/usr/bin/env python3
"""Writes the tiny ONNX models that src/model/onnx_backend_test.cc runs, into tests/data/onnx/.

The generated files are committed, so neither the build nor CI needs this script or its
packages; run it again only to change a model:

    python3 -m venv /tmp/onnx-venv && /tmp/onnx-venv/bin/pip install onnx numpy
    /tmp/onnx-venv/bin/python tools/make_test_models.py

Models (opset 17, IR version 8, which ONNX Runtime 1.29 reads):
  add_mul.onnx   a, b FP32 [N, 4] -> sum = a + b, product = a * b, both FP32 [N, 4]
  seq_sum.onnx   ids INT64 [N, L] -> total FP32 [N, 1], the sum of each row's ids (padding a row
                 with 0 leaves its total unchanged), and ids_out INT64 [N, L] (the ids as given,
                 so a test can see the padded length)
  fixed.onnx     x FP32 [2, 3] (no batch dimension) -> y FP32 [3], the column sums
  all_types.onnx one input per supported datatype, each [N, 2], passed through by Identity:
                 in_<type> -> out_<type>
  strings.onnx   s STRING [N] -> t STRING [N] (Identity; served as BYTES)
  broken.onnx    not an ONNX model at all
The script writes the same bytes every run (no timestamps, fixed producer fields).
"""

import os

import onnx
from onnx import TensorProto, helper

OPSET = 17
IR_VERSION = 8
OUT_DIR = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "onnx"))


def save(graph, name):
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="galley-make-test-models",
        producer_version="1",
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    path = os.path.join(OUT_DIR, name)
    with open(path, "wb") as f:
        f.write(model.SerializeToString(deterministic=True))
    print(f"{path}: {os.path.getsize(path)} bytes")


def add_mul():
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 4])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 4])
    s = helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["N", 4])
    p = helper.make_tensor_value_info("product", TensorProto.FLOAT, ["N", 4])
    nodes = [
        helper.make_node("Add", ["a", "b"], ["sum"]),
        helper.make_node("Mul", ["a", "b"], ["product"]),
    ]
    save(helper.make_graph(nodes, "add_mul", [a, b], [s, p]), "add_mul.onnx")


def seq_sum():
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", "L"])
    total = helper.make_tensor_value_info("total", TensorProto.FLOAT, ["N", 1])
    ids_out = helper.make_tensor_value_info("ids_out", TensorProto.INT64, ["N", "L"])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes = [
        helper.make_node("ReduceSum", ["ids", "axes"], ["row_sum"], keepdims=1),
        helper.make_node("Cast", ["row_sum"], ["total"], to=TensorProto.FLOAT),
        helper.make_node("Identity", ["ids"], ["ids_out"]),
    ]
    graph = helper.make_graph(nodes, "seq_sum", [ids], [total, ids_out], initializer=[axes])
    save(graph, "seq_sum.onnx")


def fixed():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [0])
    nodes = [helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)]
    save(helper.make_graph(nodes, "fixed", [x], [y], initializer=[axes]), "fixed.onnx")


ALL_TYPES = [
    ("bool", TensorProto.BOOL),
    ("uint8", TensorProto.UINT8),
    ("uint16", TensorProto.UINT16),
    ("uint32", TensorProto.UINT32),
    ("uint64", TensorProto.UINT64),
    ("int8", TensorProto.INT8),
    ("int16", TensorProto.INT16),
    ("int32", TensorProto.INT32),
    ("int64", TensorProto.INT64),
    ("fp16", TensorProto.FLOAT16),
    ("fp32", TensorProto.FLOAT),
    ("fp64", TensorProto.DOUBLE),
]


def all_types():
    inputs, outputs, nodes = [], [], []
    for name, elem in ALL_TYPES:
        inputs.append(helper.make_tensor_value_info(f"in_{name}", elem, ["N", 2]))
        outputs.append(helper.make_tensor_value_info(f"out_{name}", elem, ["N", 2]))
        nodes.append(helper.make_node("Identity", [f"in_{name}"], [f"out_{name}"]))
    save(helper.make_graph(nodes, "all_types", inputs, outputs), "all_types.onnx")


def strings():
    s = helper.make_tensor_value_info("s", TensorProto.STRING, ["N"])
    t = helper.make_tensor_value_info("t", TensorProto.STRING, ["N"])
    nodes = [helper.make_node("Identity", ["s"], ["t"])]
    save(helper.make_graph(nodes, "strings", [s], [t]), "strings.onnx")


def broken():
    path = os.path.join(OUT_DIR, "broken.onnx")
    with open(path, "wb") as f:
        f.write(b"this is not an ONNX model\n")
    print(f"{path}: {os.path.getsize(path)} bytes")


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    add_mul()
    seq_sum()
    fixed()
    all_types()
    strings()
    broken()


if __name__ == "__main__":
    main()
