#!/usr/bin/env python3
"""The Python peer of bench/serve/onnx.sh: a KServe model server running one of Galley's text
models with Python onnxruntime, as a user would write one.

A custom kserve.Model serves the same public contract as Galley's model (input `text` BYTES [-1]
-> outputs `label` BYTES, `probability` FP32, `probabilities` FP32 [-1, 2]) over KServe's REST v2
(POST /v2/models/NAME/infer) and gRPC v2 (inference.GRPCInferenceService/ModelInfer). predict()
tokenizes every text with the tokenizer the model was trained with (tokenize()/encode() of
models/training/train_sentiment.py, imported: they need only the standard library; Galley's C++
WordTokenizer matches them byte for byte), pads the ids with 0 to the longest text, runs the
model with onnxruntime (1 intra-op thread and 1 inter-op thread, like Galley's served config)
and picks the label the way Galley does (argmax, ties to the first label). Settings come from the
model's config.json (preprocess.vocab / max_length / input, postprocess.output / labels).

Before serving, the tokenizer is checked against tests/data/tokenizer_golden.jsonl (the ids the
C++ tokenizer's test expects for the model's vocabulary); a mismatch stops the server.

Run it in the bench venv (kserve==0.21.0, onnxruntime, numpy); KServe's own flags choose ports:
  .deps/bench-venv/bin/python bench/serve/kserve_peer.py --model_dir models/sentiment_transformer \
      --model_name sentiment_transformer --http_port 8090 --grpc_port 8091 \
      --enable_latency_logging false
"""

import argparse
import copy
import json
import os
import sys
from importlib.metadata import version

import numpy as np
import onnxruntime as ort

import kserve
from kserve import logging as kserve_logging
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer, model_server
from kserve.utils.utils import generate_uuid

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO_ROOT, "models", "training"))
import train_sentiment  # noqa: E402  (tokenize()/encode(): the models' tokenizer, stdlib only)


def load_vocab(path):
    with open(path, "rb") as f:
        tokens = f.read().split(b"\n")
    if tokens and tokens[-1] == b"":
        tokens.pop()
    return {token.rstrip(b"\r"): i for i, token in enumerate(tokens)}


class OnnxTextClassifier(Model):
    def __init__(self, name, model_dir):
        super().__init__(name)
        with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
        pre = config.get("preprocess", {})
        post = config.get("postprocess", {})
        self.model_dir = model_dir
        self.vocab_path = os.path.join(model_dir, pre.get("vocab", "vocab.txt"))
        self.max_length = int(pre.get("max_length", train_sentiment.MAX_LENGTH))
        self.ids_input = pre.get("input", "input_ids")
        self.probs_output = post.get("output", "probabilities")
        self.labels = list(post.get("labels", ["Negative", "Positive"]))
        self.vocab_ids = None
        self.session = None

    def load(self):
        self.vocab_ids = load_vocab(self.vocab_path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        versions = sorted((d for d in os.listdir(self.model_dir) if d.isdigit()), key=int)
        path = os.path.join(self.model_dir, versions[-1], "model.onnx")
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.ready = True
        return self.ready

    def encode(self, text):
        return train_sentiment.encode(text, self.vocab_ids, self.max_length)

    def classify(self, texts):
        """Texts (str or bytes) -> (labels, probability of each label, probabilities [n, k])."""
        rows = [self.encode(t) for t in texts]
        ids = np.zeros((len(rows), max(len(r) for r in rows)), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = r
        probs = self.session.run([self.probs_output], {self.ids_input: ids})[0]
        best = probs.argmax(axis=1)  # ties: the first label, as Galley
        return [self.labels[k] for k in best], probs[np.arange(len(rows)), best], probs

    def predict(self, payload: InferRequest, headers=None, response_headers=None):
        text_input = next((i for i in payload.inputs if i.name == "text"), None)
        if text_input is None or text_input.datatype != "BYTES":
            raise kserve.errors.InvalidInput("expected a BYTES input named 'text'")
        texts = list(text_input.as_numpy().reshape(-1))
        labels, probability, probs = self.classify(texts)
        n = len(texts)
        outputs = [
            InferOutput("label", [n], "BYTES", labels),
            InferOutput("probability", [n], "FP32", probability.astype(np.float32).tolist()),
            InferOutput("probabilities", [n, probs.shape[1]], "FP32",
                        probs.astype(np.float32).reshape(-1).tolist()),
        ]
        # The protocol's response id is required by KServe's REST encoder: echo or make one.
        return InferResponse(model_name=self.name, infer_outputs=outputs,
                             response_id=payload.id or generate_uuid())


def check_tokenizer(model, golden_path):
    """Every golden case's ids (tests/data/tokenizer_golden.jsonl) from this peer's encode()."""
    checked = 0
    with open(golden_path, encoding="utf-8") as f:
        for line in f:
            case = json.loads(line)
            got = model.encode(case["text"])
            if got != case["ids"]:
                sys.exit(f"kserve_peer: tokenizer mismatch on {case['text']!r}: {got} != "
                         f"{case['ids']} (golden {golden_path})")
            checked += 1
    print(f"kserve_peer: tokenizer matches {checked} golden cases", file=sys.stderr)


def quiet_logging():
    """KServe's logging config with no line per request: KServe logs every gRPC call (its
    interceptor), a latency trace per REST request and uvicorn's access line by default. Turning
    them off favours the peer (a log line costs it more than the inference); startup lines and
    warnings stay."""
    config = copy.deepcopy(kserve_logging.KSERVE_LOG_CONFIG)
    for name in ("kserve", "kserve.trace", "uvicorn.access"):
        config["loggers"][name]["level"] = "WARNING"
    kserve_logging.configure_logging(config)


def main():
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_dir", required=True, help="e.g. models/sentiment_transformer")
    parser.add_argument("--golden", default=os.path.join(REPO_ROOT, "tests", "data",
                                                         "tokenizer_golden.jsonl"))
    args, _ = parser.parse_known_args()
    quiet_logging()
    model = OnnxTextClassifier(args.model_name, args.model_dir)
    model.load()
    if args.golden and os.path.exists(args.golden):
        check_tokenizer(model, args.golden)
    print(f"kserve_peer: serving {args.model_name} from {args.model_dir}: REST on "
          f"{args.http_port}, gRPC on {args.grpc_port}, onnxruntime {ort.__version__}, "
          f"kserve {version('kserve')}", file=sys.stderr, flush=True)
    ModelServer().start([model])


if __name__ == "__main__":
    main()
