#!/usr/bin/env python3
"""Correctness check before bench/serve/onnx.sh measures: every server under test must give the
same answers, over REST and gRPC, on the first sentences of the benchmark.

For each --server NAME=HTTP_PORT,GRPC_PORT it sends --count held-out sentences (from LABELS_TSV,
label<TAB>sentence as onnx_texts.py writes it) one per request, over REST v2
(POST /v2/models/MODEL/infer, JSON) and gRPC v2 (ModelInfer, bytes_contents), and checks that:
  * every answer has `label` (one of the model's labels), `probability` and `probabilities`;
  * `probability` is the label's entry of `probabilities`, which sum to 1;
  * REST and gRPC answers, and every server's answers, agree: same label, probabilities within
    --tolerance (Python and C++ ONNX Runtime may differ in the last bits);
  * the first sentence's label equals its data set label (printed; a model may err on a
    sentence, so only a disagreement between servers fails the check).
Prints one line per server and the accuracy on the checked sentences; exits 1 on a failure.

Needs the bench venv (grpcio and KServe's generated gRPC stubs, which are the same
inference.GRPCInferenceService as Galley's proto/grpc_service.proto).
Usage: onnx_check.py --model M --labels LABELS_TSV --server galley=8000,8001 --server kserve=...
"""

import argparse
import json
import struct
import sys
import urllib.request

import grpc
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

LABEL_NAMES = {0: "Negative", 1: "Positive"}


def rest_infer(port, model, text):
    body = json.dumps({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES",
                                   "data": [text]}]}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v2/models/{model}/infer", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        answer = json.load(r)
    out = {o["name"]: o["data"] for o in answer["outputs"]}
    return out["label"][0], out["probability"][0], list(out["probabilities"])


def grpc_infer(stub, model, text):
    req = pb.ModelInferRequest(model_name=model)
    t = req.inputs.add(name="text", datatype="BYTES", shape=[1])
    t.contents.bytes_contents.append(text.encode("utf-8"))
    resp = stub.ModelInfer(req, timeout=10)
    out = {}
    for i, o in enumerate(resp.outputs):
        if resp.raw_output_contents:  # Triton's form: raw little-endian bytes per output
            out[o.name] = decode_raw(o.datatype, resp.raw_output_contents[i])
        elif o.datatype == "BYTES":
            out[o.name] = [b.decode() for b in o.contents.bytes_contents]
        else:
            out[o.name] = list(o.contents.fp32_contents)
    return out["label"][0], out["probability"][0], out["probabilities"]


def decode_raw(datatype, raw):
    """BYTES: each element a 4-byte little-endian length and the bytes; FP32: packed floats."""
    if datatype == "FP32":
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    if datatype != "BYTES":
        raise SystemExit(f"unexpected output datatype {datatype}")
    items, at = [], 0
    while at < len(raw):
        (n,) = struct.unpack_from("<I", raw, at)
        items.append(raw[at + 4:at + 4 + n].decode())
        at += 4 + n
    return items


def check_answer(where, text, answer, tolerance):
    label, probability, probs = answer
    if label not in LABEL_NAMES.values():
        raise SystemExit(f"{where}: unknown label {label!r} for {text!r}")
    k = list(LABEL_NAMES.values()).index(label)
    if abs(probs[k] - probability) > tolerance or abs(sum(probs) - 1) > 1e-3:
        raise SystemExit(f"{where}: inconsistent answer {answer} for {text!r}")
    if probs[k] < max(probs):
        raise SystemExit(f"{where}: label {label} is not the most probable in {probs}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--labels", required=True)
    parser.add_argument("--server", action="append", required=True, help="NAME=HTTP,GRPC")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()

    cases = []
    with open(args.labels, encoding="utf-8") as f:
        for line in f:
            label, text = line.rstrip("\n").split("\t", 1)
            cases.append((LABEL_NAMES[int(label)], text))
            if len(cases) == args.count:
                break

    reference = None  # (server, answers) of the first server, REST
    failed = False
    for spec in args.server:
        name, ports = spec.split("=", 1)
        http_port, grpc_port = (int(p) for p in ports.split(","))
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        answers = {"REST": [], "gRPC": []}
        for _, text in cases:
            answers["REST"].append(rest_infer(http_port, args.model, text))
            answers["gRPC"].append(grpc_infer(stub, args.model, text))
        channel.close()
        for proto, got in answers.items():
            for (_, text), answer in zip(cases, got):
                check_answer(f"{name} {proto}", text, answer, args.tolerance)
        if reference is None:
            reference = (f"{name} REST", answers["REST"])
        worst = 0.0
        for proto, got in answers.items():
            for (_, text), a, r in zip(cases, got, reference[1]):
                diff = max(abs(x - y) for x, y in zip(a[2], r[2]))
                worst = max(worst, diff)
                if a[0] != r[0] or diff > args.tolerance:
                    print(f"onnx_check: {name} {proto} differs from {reference[0]} on {text!r}: "
                          f"{a} vs {r}", file=sys.stderr)
                    failed = True
        right = sum(a[0] == gold for (gold, _), a in zip(cases, answers["REST"]))
        first = answers["REST"][0]
        print(f"onnx_check: {name} ({args.model}): first sentence {cases[0][1].strip()!r} -> "
              f"{first[0]} p={first[1]:.4f} (data set label {cases[0][0]}); REST and gRPC agree "
              f"with {reference[0]} on {len(cases)} sentences (max |diff| {worst:.1e}); "
              f"{right}/{len(cases)} match the data set labels")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
