#!/usr/bin/env python3
"""Request texts for bench/serve/onnx.sh: the held-out sentences of the sentiment models.

Takes the UCI Sentiment Labelled Sentences (models/training/fetch_data.sh) and the split that
models/training/train_sentiment.py defines (its validation + test sentences, never trained on),
shuffles them with a fixed seed so that labels, sources and lengths are mixed, and writes:

  OUT_DIR/texts.txt       one sentence a line (wrk's Lua script and onnx_limit read it)
  OUT_DIR/grpc-NAME.json  for each --model NAME: a JSON array of ModelInfer requests, one per
                          sentence, in the same order (ghz cycles through it); BYTES travel as
                          base64 in protobuf's JSON mapping
  OUT_DIR/labels.tsv      label<TAB>sentence, for the correctness checks

Standard library only (train_sentiment.py imports torch only when training).
Usage: bench/serve/onnx_texts.py OUT_DIR --model sentiment --model sentiment_transformer
"""

import argparse
import base64
import json
import os
import random
import sys

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO_ROOT, "models", "training"))
import train_sentiment  # noqa: E402  (the data, split and tokenizer of the models)

SHUFFLE_SEED = 20261127


def held_out_rows(data_dir):
    rows = train_sentiment.load_data(data_dir)
    _, val, test = train_sentiment.split_data(rows)
    held = val + test
    random.Random(SHUFFLE_SEED).shuffle(held)
    for _, text, _ in held:
        if "\n" in text or "\r" in text:
            sys.exit(f"a held-out sentence holds a line break: {text!r}")
    return held


def grpc_request(model, text):
    return {
        "model_name": model,
        "inputs": [{
            "name": "text", "datatype": "BYTES", "shape": ["1"],
            "contents": {"bytes_contents": [base64.b64encode(text.encode("utf-8")).decode()]},
        }],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    parser.add_argument("--data", default=os.path.join(REPO_ROOT, ".deps", "sentiment-data"))
    parser.add_argument("--model", action="append", default=[])
    args = parser.parse_args()
    held = held_out_rows(args.data)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "texts.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.writelines(text + "\n" for _, text, _ in held)
    with open(os.path.join(args.out_dir, "labels.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.writelines(f"{label}\t{text}\n" for _, text, label in held)
    for model in args.model:
        with open(os.path.join(args.out_dir, f"grpc-{model}.json"), "w", encoding="utf-8") as f:
            json.dump([grpc_request(model, text) for _, text, _ in held], f)
    print(f"{len(held)} held-out sentences -> {args.out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
