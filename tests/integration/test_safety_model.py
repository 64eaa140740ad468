"""The `safety` model of the shipped repository (models/safety: alt-profanity-check's trained
offensive-language classifier exported to ONNX by models/training/export_safety.py) served by
`galley serve` from raw text: STRING tensors in, its probabilities out. Held to the reference
library's own answers (tests/data/safety_golden.jsonl, written by the export from
`profanity_check.predict_prob`), one text at a time and batched; bad input gets a clear error."""
from __future__ import annotations

import json

import pytest

from conftest import MODELS, TEST_DATA, assert_json_error

GOLDEN = [json.loads(l) for l in (TEST_DATA / "safety_golden.jsonl").read_text().splitlines()]


@pytest.fixture
def server(galley):
    return galley(flags={"--model-repository": str(MODELS)})


def infer(c, texts: list[str]):
    doc = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts), 1],
                       "data": texts}]}
    return c.request("POST", "/v2/models/safety/infer", body=json.dumps(doc),
                     headers={"Content-Type": "application/json"})


def offensive_of(reply) -> tuple[list[float], list[int]]:
    outs = {o["name"]: o for o in reply.json()["outputs"]}
    probs = outs["probabilities"]["data"]
    return probs[1::2], outs["label"]["data"]


def test_the_safety_model_answers_as_the_reference_library(server):
    c = server.client()
    md = c.get("/v2/models/safety").json()
    assert md["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1, 1]}]
    assert [(o["name"], o["datatype"]) for o in md["outputs"]] == [("label", "INT64"),
                                                                   ("probabilities", "FP32")]
    texts = [g["text"] for g in GOLDEN]
    want = [g["offensive"] for g in GOLDEN]
    r = infer(c, texts)  # all at once
    assert r.status == 200, r
    got, labels = offensive_of(r)
    worst = max(abs(a - b) for a, b in zip(got, want))
    assert worst < 1e-5, worst
    assert labels == [int(p > 0.5) for p in want]
    assert sum(labels) >= 10 and len(labels) - sum(labels) >= 10  # both kinds are in the set
    # One at a time: the same answers as in the batch.
    for text, p in zip(texts[:12], want[:12]):
        alone, _ = offensive_of(infer(c, [text]))
        assert abs(alone[0] - p) < 1e-5, text


def test_bad_requests_to_the_safety_model_get_clear_errors(server):
    c = server.client()
    flat = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]}]}
    r = c.request("POST", "/v2/models/safety/infer", body=json.dumps(flat),
                  headers={"Content-Type": "application/json"})
    assert_json_error(r, 400, "text", "shape")
    numbers = {"inputs": [{"name": "text", "datatype": "FP32", "shape": [1, 1], "data": [1.0]}]}
    r = c.request("POST", "/v2/models/safety/infer", body=json.dumps(numbers),
                  headers={"Content-Type": "application/json"})
    assert_json_error(r, 400, "text", "BYTES")
    assert infer(c, ["still serving"]).status == 200
