#!/usr/bin/env python3
"""Checks the exported sentiment models with ONNX Runtime and measures their compute.

Run after train_sentiment.py, with a Python that has onnxruntime and numpy (not torch):
  python3 -m pip install onnxruntime numpy
  python3 models/training/verify_onnx.py [--models sentiment sentiment_transformer sentiment_lstm]

For each model it checks:
  * the contract: input `input_ids` INT64 [batch, sequence], output `probabilities` FP32
    [batch, 2], both batch dimensions (and the sequence) dynamic;
  * that the vocabulary and this tokenizer give the ids train_sentiment.py recorded;
  * ONNX Runtime's probabilities against torch's (reference_NAME.json in the work folder) for
    every held-out sentence, and the validation and test accuracy they give;
  * that padding does not change a sentence's result (alone vs. in a padded batch vs. padded to
    128), and that rows of only padding or with out-of-range ids still run;
and then times it on one thread (intra- and inter-op): per request at batch 1 for held-out
sentences of 13 to 17 tokens, and per request at batch 32: batches of random held-out sentences
padded to the longest in the batch, and batches of those 13-to-17-token sentences.
"""

import argparse
import json
import os
import random
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_sentiment as ts  # noqa: E402  (the tokenizer; needs no torch)


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def pad(id_lists, width=None):
    width = width or max(len(ids) for ids in id_lists)
    out = np.zeros((len(id_lists), width), dtype=np.int64)
    for i, ids in enumerate(id_lists):
        out[i, :len(ids)] = ids
    return out


def run(sess, batch):
    return sess.run(["probabilities"], {"input_ids": batch})[0]


def check_contract(sess):
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    assert inp.name == "input_ids" and inp.type == "tensor(int64)", (inp.name, inp.type)
    assert out.name == "probabilities" and out.type == "tensor(float)", (out.name, out.type)
    assert len(inp.shape) == 2 and all(isinstance(d, str) for d in inp.shape), inp.shape
    assert len(out.shape) == 2 and isinstance(out.shape[0], str) and out.shape[1] == 2, out.shape
    return f"input_ids int64 {inp.shape} -> probabilities float32 {out.shape}"


def time_per_request(sess, batches, seconds):
    for batch in batches[:50]:  # warm-up
        run(sess, batch)
    times = []
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline or len(times) < 100:
        batch = batches[i % len(batches)]
        start = time.perf_counter()
        run(sess, batch)
        times.append((time.perf_counter() - start) / batch.shape[0])
        i += 1
    times.sort()
    return {"median_us": round(statistics.median(times) * 1e6, 1),
            "p10_us": round(times[len(times) // 10] * 1e6, 1),
            "p90_us": round(times[len(times) * 9 // 10] * 1e6, 1), "runs": len(times)}


def verify(name, args):
    model_dir = os.path.join(args.models_dir, name)
    path = os.path.join(model_dir, "1", "model.onnx")
    with open(os.path.join(model_dir, "vocab.txt"), "rb") as f:
        vocab = f.read().split(b"\n")[:-1]
    vocab_ids = {token: i for i, token in enumerate(vocab)}
    with open(os.path.join(args.work, f"reference_{name}.json"), encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    sess = session(path)
    report = {"onnx_bytes": os.path.getsize(path), "contract": check_contract(sess)}

    # Tokenizer and vocabulary give the ids the model was evaluated with.
    for case in cases:
        assert ts.encode(case["text"], vocab_ids) == case["ids"], case["text"]

    # ONNX Runtime vs. torch, and the accuracy it gives.
    ids = [case["ids"] for case in cases]
    probs = np.concatenate([run(sess, pad(ids[i:i + 32])) for i in range(0, len(ids), 32)])
    reference = np.array([case["probabilities"] for case in cases], dtype=np.float32)
    report["max_abs_diff_vs_torch"] = float(np.abs(probs - reference).max())
    assert report["max_abs_diff_vs_torch"] < 1e-4, report["max_abs_diff_vs_torch"]
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    labels = np.array([case["label"] for case in cases])
    correct = probs.argmax(axis=1) == labels
    for split in ("val", "test"):
        chosen = np.array([case["split"] == split for case in cases])
        report[f"{split}_accuracy"] = round(float(correct[chosen].mean()), 4)

    # Padding: alone vs. in a batch padded to its longest vs. padded to 128.
    worst = 0.0
    for i in range(0, len(ids), 32):
        chunk = ids[i:i + 32]
        batched, long = run(sess, pad(chunk)), run(sess, pad(chunk, ts.MAX_LENGTH))
        for j, one in enumerate(chunk):
            alone = run(sess, pad([one]))[0]
            worst = max(worst, float(np.abs(alone - batched[j]).max()),
                        float(np.abs(alone - long[j]).max()))
    report["padding_max_abs_diff"] = worst
    assert worst <= 1e-5, worst

    # Odd but legal inputs still run and give probabilities.
    odd = np.array([[0, 0, 0], [-5, 10**9, 0], [1, 1, 0]], dtype=np.int64)
    out = run(sess, odd)
    assert out.shape == (3, 2) and np.all(np.isfinite(out)), out
    assert np.allclose(out[1], out[2], atol=1e-6), out  # out-of-range ids read as [UNK]
    assert run(sess, np.ones((2, 300), dtype=np.int64)).shape == (2, 2)

    # Compute on one thread.
    rng = random.Random(7)
    typical = [i for i in ids if 13 <= len(i) <= 17]
    report["batch1_sentences"] = len(typical)
    report["batch1_mean_tokens"] = round(sum(map(len, typical)) / len(typical), 1)
    report["batch1"] = time_per_request(sess, [pad([i]) for i in typical], args.seconds)
    batches = []
    for _ in range(64):
        chosen = rng.sample(ids, 32)
        batches.append(pad(chosen))
    report["batch32_mean_width"] = round(sum(b.shape[1] for b in batches) / len(batches), 1)
    report["batch32"] = time_per_request(sess, batches, args.seconds)
    report["batch32_typical"] = time_per_request(
        sess, [pad(rng.sample(typical, 32)) for _ in range(64)], args.seconds)
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models-dir", default=os.path.join(ts.REPO_ROOT, "models"))
    parser.add_argument("--work", default=os.path.join(ts.REPO_ROOT, ".deps", "sentiment-train"))
    parser.add_argument("--models", nargs="+",
                        default=["sentiment", "sentiment_transformer", "sentiment_lstm"])
    parser.add_argument("--seconds", type=float, default=5.0, help="timing length per measurement")
    args = parser.parse_args()
    print(f"onnxruntime {ort.__version__}, numpy {np.__version__}")
    for name in args.models:
        print(name, json.dumps(verify(name, args), indent=2))


if __name__ == "__main__":
    main()
