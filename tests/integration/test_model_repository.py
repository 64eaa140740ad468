"""The model repository: the shipped ONNX sentiment models behind the seed API and the Open
Inference Protocol, any other ONNX model, and broken models that must not take the server down."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import MODELS, TEST_DATA, assert_json_error

POSITIVE = "I love this phone, the battery life is great and it works perfectly."
NEGATIVE = "Terrible service, the food was cold and the waiter was rude. Never again."


@pytest.fixture
def repo_server(galley):
    return galley(flags={"--model-repository": str(MODELS)})


def test_analyze_uses_the_onnx_sentiment_model(repo_server):
    c = repo_server.client()
    for text, label in ((POSITIVE, "Positive"), (NEGATIVE, "Negative")):
        r = c.analyze(text)
        assert r.status == 200, r
        doc = r.json()
        assert doc["sentiment"] == label, doc
        assert doc["model"] == "sentiment"
        assert 0.5 <= doc["confidence"] <= 1.0


def test_repository_models_are_listed_with_their_metadata(repo_server):
    c = repo_server.client()
    for name in ("sentiment", "sentiment_transformer", "sentiment_lstm", "sentiment_lstm_int8",
                 "vader"):
        assert c.get(f"/v2/models/{name}/ready").status == 200, name
    md = c.get("/v2/models/sentiment").json()
    assert md["name"] == "sentiment"
    assert md["platform"] == "onnxruntime_onnx"
    assert md["versions"] == ["1"]
    assert [(t["name"], t["datatype"], t["shape"]) for t in md["inputs"]] == [("text", "BYTES", [-1])]
    assert [(t["name"], t["datatype"]) for t in md["outputs"]] == [
        ("label", "BYTES"), ("probability", "FP32"), ("probabilities", "FP32")]
    assert repo_server.wait_for("model_found", 5, pred=lambda l: l.get("model") == "sentiment")
    # Only folders with a configuration are models: models/training (the training scripts) is
    # neither served nor reported as a broken model.
    assert (MODELS / "training").is_dir()
    assert not [l for l in repo_server.log_lines() if l.get("event") == "model_load_failed"]
    assert c.get("/v2/models/training/ready").status == 404


# How far a text's probabilities may move with the batch it runs in: FP32 models only by
# rounding; sentiment_lstm_int8 quantizes its activations with one scale per batch
# (models/training/RESULTS.md: at most 0.018 on the held-out sentences).
BATCH_TOLERANCE = {"sentiment": 1e-5, "sentiment_transformer": 1e-5, "sentiment_lstm": 1e-5,
                   "sentiment_lstm_int8": 0.03}


@pytest.mark.parametrize("model", sorted(BATCH_TOLERANCE))
def test_infer_a_batch_of_texts_in_one_request(repo_server, model):
    c = repo_server.client()
    texts = [POSITIVE, NEGATIVE, "ok", ""]
    r = c.infer(texts, model=model)
    assert r.status == 200, r
    outs = {o["name"]: o for o in r.json()["outputs"]}
    assert outs["label"]["shape"] == [4]
    assert outs["label"]["data"][:2] == ["Positive", "Negative"]
    probs = outs["probabilities"]
    assert probs["shape"] == [4, 2]
    for i in range(4):
        p = probs["data"][2 * i:2 * i + 2]
        assert abs(sum(p) - 1.0) < 1e-4
        assert abs(max(p) - outs["probability"]["data"][i]) < 1e-6
    # A text alone gets the same answer as inside a batch (padding does not change results).
    alone = c.infer([NEGATIVE], model=model).json()
    alone_p = {o["name"]: o for o in alone["outputs"]}["probabilities"]["data"]
    assert alone_p == pytest.approx(probs["data"][2:4], abs=BATCH_TOLERANCE[model])


def test_int8_lstm_answers_as_its_fp32_original(repo_server):
    c = repo_server.client()
    texts = [POSITIVE, NEGATIVE, "The plot was thin but the acting saved it", "ok"]
    answers = {}
    for model in ("sentiment_lstm", "sentiment_lstm_int8"):
        r = c.infer(texts, model=model)
        assert r.status == 200, r
        answers[model] = {o["name"]: o["data"] for o in r.json()["outputs"]}
    fp32, int8 = answers["sentiment_lstm"], answers["sentiment_lstm_int8"]
    assert int8["probabilities"] == pytest.approx(fp32["probabilities"], abs=0.03)
    assert int8["label"][:2] == ["Positive", "Negative"], int8


def test_bad_text_is_rejected_and_the_model_keeps_serving(repo_server):
    c = repo_server.client()
    r = c.request("POST", "/v2/models/sentiment/infer",
                  body=json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1],
                                               "data": ["x" * (65 * 1024)]}]}),
                  headers={"Content-Type": "application/json"})
    assert_json_error(r, 400, "text[0]", "limit")
    assert c.analyze(POSITIVE).status == 200


def write_model(repo: Path, name: str, config: dict | str, model_file: Path | bytes | None,
                version: str = "1") -> None:
    d = repo / name
    (d / version).mkdir(parents=True)
    (d / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    if isinstance(model_file, Path):
        shutil.copy(model_file, d / version / "model.onnx")
    elif isinstance(model_file, bytes):
        (d / version / "model.onnx").write_bytes(model_file)


def test_any_onnx_model_with_fp32_tensors(galley, tmp_path):
    repo = tmp_path / "repo"
    write_model(repo, "add_mul", {"platform": "onnxruntime_onnx", "max_batch_size": 8,
                                  "dynamic_batching": {"max_queue_delay_microseconds": 100}},
                TEST_DATA / "onnx" / "add_mul.onnx")
    srv = galley(flags={"--model-repository": str(repo), "--model": "add_mul"})
    c = srv.client()
    md = c.get("/v2/models/add_mul").json()
    assert {t["name"] for t in md["inputs"]} == {"a", "b"}
    assert all(t["datatype"] == "FP32" and t["shape"] == [-1, 4] for t in md["inputs"])
    doc = {"inputs": [
        {"name": "a", "datatype": "FP32", "shape": [2, 4], "data": [1, 2, 3, 4, 5, 6, 7, 8]},
        {"name": "b", "datatype": "FP32", "shape": [2, 4], "data": [1, 1, 1, 1, 2, 2, 2, 2]}]}
    r = c.request("POST", "/v2/models/add_mul/infer", body=json.dumps(doc),
                  headers={"Content-Type": "application/json"})
    assert r.status == 200, r
    outs = {o["name"]: o for o in r.json()["outputs"]}
    assert len(outs) == 2
    values = sorted(tuple(o["data"]) for o in outs.values())
    assert values == sorted([(2, 3, 4, 5, 7, 8, 9, 10), (1, 2, 3, 4, 10, 12, 14, 16)])
    bad = dict(doc)
    bad["inputs"] = [dict(doc["inputs"][0], shape=[2, 3], data=[1, 2, 3, 4, 5, 6]), doc["inputs"][1]]
    r = c.request("POST", "/v2/models/add_mul/infer", body=json.dumps(bad),
                  headers={"Content-Type": "application/json"})
    assert_json_error(r, 400, "a")


def test_an_onnx_model_with_string_tensors_takes_and_answers_bytes(galley, tmp_path):
    """An ONNX model whose input and output are STRING tensors (strings.onnx: Identity) is served
    with BYTES tensors, as Triton maps them (the binary tensor extension: test_tritonclient.py)."""
    repo = tmp_path / "repo"
    write_model(repo, "strings", {"platform": "onnxruntime_onnx", "max_batch_size": 8},
                TEST_DATA / "onnx" / "strings.onnx")
    srv = galley(flags={"--model-repository": str(repo), "--model": "strings"})
    c = srv.client()
    md = c.get("/v2/models/strings").json()
    assert md["inputs"] == [{"name": "s", "datatype": "BYTES", "shape": [-1]}]
    texts = ["déjà vu", "", "a longer sentence, with punctuation!"]
    doc = {"inputs": [{"name": "s", "datatype": "BYTES", "shape": [3], "data": texts}]}
    r = c.request("POST", "/v2/models/strings/infer", body=json.dumps(doc),
                  headers={"Content-Type": "application/json"})
    assert r.status == 200, r
    out = r.json()["outputs"][0]
    assert out["name"] == "t" and out["datatype"] == "BYTES" and out["shape"] == [3]
    assert out["data"] == texts
    # A FP32 tensor where the model takes strings: refused with the reason, nothing served.
    bad = {"inputs": [{"name": "s", "datatype": "FP32", "shape": [1], "data": [1.0]}]}
    r = c.request("POST", "/v2/models/strings/infer", body=json.dumps(bad),
                  headers={"Content-Type": "application/json"})
    assert_json_error(r, 400, "s", "BYTES")


def test_a_gpu_instance_without_a_gpu_serves_on_the_cpu_and_says_why(galley, tmp_path):
    """instance_group kind KIND_GPU (Triton's) asks ONNX Runtime's CUDA execution provider for
    the GPU; where it cannot be had (this ONNX Runtime is the CPU build), the model still loads
    and answers on the CPU, and a gpu_unavailable warning names the model and the reason."""
    repo = tmp_path / "repo"
    write_model(repo, "add_mul", {"platform": "onnxruntime_onnx", "max_batch_size": 8,
                                  "instance_group": {"kind": "KIND_GPU", "gpus": [0]}},
                TEST_DATA / "onnx" / "add_mul.onnx")
    srv = galley(flags={"--model-repository": str(repo), "--model": "add_mul"})
    warn = srv.wait_for("gpu_unavailable", 5, pred=lambda l: l.get("model") == "add_mul")
    assert warn["running_on"] == "cpu" and warn["gpu"] == 0 and warn["error"], warn
    doc = {"inputs": [
        {"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
        {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}
    r = srv.client().request("POST", "/v2/models/add_mul/infer", body=json.dumps(doc),
                             headers={"Content-Type": "application/json"})
    assert r.status == 200, r
    assert sorted(tuple(o["data"]) for o in r.json()["outputs"]) == [(1, 2, 3, 4), (2, 3, 4, 5)]


def test_broken_models_are_reported_and_the_others_serve(galley, tmp_path):
    repo = tmp_path / "repo"
    write_model(repo, "good", {"platform": "galley_vader", "max_batch_size": 8}, None)
    (repo / "good" / "1" / "keep").write_text("")
    write_model(repo, "garbage", {"platform": "onnxruntime_onnx", "max_batch_size": 8},
                b"this is not an ONNX model")
    write_model(repo, "bad_config", '{"platform": "onnxruntime_onnx", "max_batch_size": "x"}',
                TEST_DATA / "onnx" / "add_mul.onnx")
    write_model(repo, "no_file", {"platform": "onnxruntime_onnx"}, None)
    srv = galley(flags={"--model-repository": str(repo), "--model": "good", "--grpc-port": "0"})
    c = srv.client()
    assert c.get("/v2/health/ready").status == 200
    assert c.analyze(POSITIVE).status == 200
    for name, words in (("garbage", ("garbage", "model.onnx")),
                        ("bad_config", ("max_batch_size", "integer")),
                        ("no_file", ("no numbered version folder", "model.onnx"))):
        line = srv.wait_for("model_load_failed", 5, pred=lambda l, n=name: l.get("model") == n)
        assert all(w in line["error"] for w in words), line
        for r in (c.get(f"/v2/models/{name}/ready"), c.get(f"/v2/models/{name}"),
                  c.request("POST", f"/v2/models/{name}/infer", body='{"inputs": []}',
                            headers={"Content-Type": "application/json"})):
            message = assert_json_error(r, 503, "unavailable", *words)
            # Clients learn which model and file, never where the server keeps them.
            assert str(repo) not in message and str(tmp_path) not in message, message
    assert_json_error(c.get("/v2/models/never_heard_of/ready"), 404, "never_heard_of")
    # Over gRPC the same: UNAVAILABLE with the reason, NOT_FOUND for a name never seen.
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException
    g = grpcclient.InferenceServerClient(url=f"127.0.0.1:{srv.grpc_port}")
    for name, code in (("garbage", "UNAVAILABLE"), ("never_heard_of", "NOT_FOUND")):
        with pytest.raises(InferenceServerException) as e:
            g.get_model_metadata(name)
        assert code in str(e.value) and name in str(e.value)
    assert "model.onnx" in str(pytest.raises(InferenceServerException, g.get_model_metadata, "garbage").value)
    g.close()


def test_missing_repository_fails_start_with_a_clear_error(galley, tmp_path):
    srv = galley(flags={"--model-repository": str(tmp_path / "nope")}, wait_ready=False)
    line = srv.wait_for("start_failed", 10)
    assert "is not a folder" in line["error"]
    assert srv.wait_exit(10) == 1
