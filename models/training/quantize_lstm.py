#!/usr/bin/env python3
"""Makes `sentiment_lstm_int8`: `sentiment_lstm` with its LSTM's weights in int8 (7-bit range).

Run with a Python that has onnx and onnxruntime (no torch):
  python3 -m pip install onnx==1.23.2 onnxruntime==1.31.1 numpy
  python3 models/training/quantize_lstm.py [--check-only]

What it does:
  * ONNX Runtime's dynamic quantization (onnxruntime.quantization.quantize_dynamic) of the one
    `LSTM` node of models/sentiment_lstm/1/model.onnx: its input and recurrent weights become
    int8 values in a 7-bit range (-64..64, ONNX Runtime's `reduce_range`, against saturation on
    CPUs without VNNI) with one scale per gate row (per channel), and the node becomes the
    com.microsoft `DynamicQuantizeLSTM` operator, which quantizes its activations to 8 bits at
    run time and multiplies in integers (VNNI / AMX where the CPU has them). Everything else,
    the final linear layer included, stays in FP32. The result is deterministic (same bytes on
    every run with the pinned versions) and is written to
    models/sentiment_lstm_int8/1/model.onnx; the model's vocab.txt is copied beside it.
  * Then checks the file against the FP32 model on the held-out sentences (validation + test of
    train_sentiment.py's split, one at a time): the contract, accuracy, the largest change of a
    probability and the number of changed labels; and how much a sentence's result depends on
    the batch it runs in: activations are quantized with one scale per tensor, so the same
    sentence alone, in a padded batch of 16 or padded to 128 tokens gets slightly different
    probabilities (in the FP32 model at most ~1e-7). It fails if the test accuracy drops by more
    than one point or a probability moves by more than 0.05.

`--check-only` checks the committed file without writing it. Prints a JSON report.
"""

import argparse
import hashlib
import json
import os
import shutil
import sys

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_sentiment as ts  # noqa: E402  (data, split and tokenizer; needs no torch)
from verify_onnx import pad, run, session  # noqa: E402  (the same sessions and padding)

SOURCE = "sentiment_lstm"
TARGET = "sentiment_lstm_int8"


def quantize(source_path, target_path):
    from onnxruntime.quantization import QuantType, quantize_dynamic
    os.makedirs(os.path.dirname(target_path), exist_ok=True)
    # reduce_range: 7-bit weights, so that the u8 x s8 products of a pair never saturate the
    # 16-bit sums of AVX2's VPMADDUBSW (CPUs without VNNI): the same integer results everywhere.
    quantize_dynamic(source_path, target_path, weight_type=QuantType.QInt8, per_channel=True,
                     reduce_range=True, op_types_to_quantize=["LSTM"])


def check(models_dir, data_dir):
    with open(os.path.join(models_dir, TARGET, "vocab.txt"), "rb") as f:
        vocab = f.read().split(b"\n")[:-1]
    vocab_ids = {token: i for i, token in enumerate(vocab)}
    reference = session(os.path.join(models_dir, SOURCE, "1", "model.onnx"))
    path = os.path.join(models_dir, TARGET, "1", "model.onnx")
    quantized = session(path)
    (inp,), (out,) = quantized.get_inputs(), quantized.get_outputs()
    assert (inp.name, inp.type) == ("input_ids", "tensor(int64)"), (inp.name, inp.type)
    assert (out.name, out.type) == ("probabilities", "tensor(float)"), (out.name, out.type)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    report = {"onnx_bytes": os.path.getsize(path), "sha256": digest, "onnxruntime": ort.__version__}

    _, val, test = ts.split_data(ts.load_data(data_dir))
    for split, rows in (("val", val), ("test", test)):
        ids = [ts.encode(text, vocab_ids) for _, text, _ in rows]
        labels = np.array([label for _, _, label in rows])
        fp32 = np.concatenate([run(reference, pad([one])) for one in ids])
        int8 = np.concatenate([run(quantized, pad([one])) for one in ids])
        assert np.allclose(int8.sum(axis=1), 1.0, atol=1e-5)
        worst_batch = 0.0
        batch_flips = 0
        for i in range(0, len(ids), 16):
            chunk, alone = ids[i:i + 16], int8[i:i + 16]
            for batched in (run(quantized, pad(chunk)), run(quantized, pad(chunk, ts.MAX_LENGTH))):
                worst_batch = max(worst_batch, float(np.abs(batched - alone).max()))
                batch_flips += int((batched.argmax(axis=1) != alone.argmax(axis=1)).sum())
        report[split] = {
            "sentences": len(ids),
            "accuracy_fp32": round(float((fp32.argmax(axis=1) == labels).mean()), 4),
            "accuracy_int8": round(float((int8.argmax(axis=1) == labels).mean()), 4),
            "max_abs_diff_vs_fp32": round(float(np.abs(int8 - fp32).max()), 5),
            "labels_changed_vs_fp32": int((int8.argmax(axis=1) != fp32.argmax(axis=1)).sum()),
            "max_abs_diff_alone_vs_batched": round(worst_batch, 5),
            "labels_changed_alone_vs_batched": batch_flips,
        }
    test_report = report["test"]
    assert test_report["accuracy_int8"] >= test_report["accuracy_fp32"] - 0.01, test_report
    for split in ("val", "test"):
        assert report[split]["max_abs_diff_vs_fp32"] <= 0.05, report[split]
        assert report[split]["max_abs_diff_alone_vs_batched"] <= 0.05, report[split]
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models-dir", default=os.path.join(ts.REPO_ROOT, "models"))
    parser.add_argument("--data", default=os.path.join(ts.REPO_ROOT, ".deps", "sentiment-data"))
    parser.add_argument("--check-only", action="store_true", help="check the committed file")
    args = parser.parse_args()
    if not args.check_only:
        target_dir = os.path.join(args.models_dir, TARGET)
        quantize(os.path.join(args.models_dir, SOURCE, "1", "model.onnx"),
                 os.path.join(target_dir, "1", "model.onnx"))
        shutil.copyfile(os.path.join(args.models_dir, SOURCE, "vocab.txt"),
                        os.path.join(target_dir, "vocab.txt"))
    print(json.dumps(check(args.models_dir, args.data), indent=2))


if __name__ == "__main__":
    main()
