"""Galley checked with Triton's own Python clients (tritonclient[all]) over HTTP and gRPC, and
over both through the gateway (its gRPC door forwards as REST): health, server and model metadata, inference on the sentiment
model and on a plain FP32 ONNX model (binary tensor data included), and the errors a client
sees."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from conftest import MODELS, TEST_DATA
from test_gateway import gateway

TEXTS = ["I love this phone, the battery life is great and it works perfectly.",
         "Terrible service, the food was cold and the waiter was rude. Never again."]


@pytest.fixture
def server(galley, tmp_path):
    # The shipped repository plus a plain FP32 model (a + b, a * b).
    repo = tmp_path / "repo"
    shutil.copytree(MODELS, repo, ignore=shutil.ignore_patterns("training"))
    (repo / "add_mul" / "1").mkdir(parents=True)
    shutil.copy(TEST_DATA / "onnx" / "add_mul.onnx", repo / "add_mul" / "1" / "model.onnx")
    (repo / "add_mul" / "config.json").write_text(json.dumps(
        {"platform": "onnxruntime_onnx", "max_batch_size": 8, "dynamic_batching": {}}))
    # And an ONNX model of STRING tensors (Identity), served as BYTES.
    (repo / "strings" / "1").mkdir(parents=True)
    shutil.copy(TEST_DATA / "onnx" / "strings.onnx", repo / "strings" / "1" / "model.onnx")
    (repo / "strings" / "config.json").write_text(json.dumps(
        {"platform": "onnxruntime_onnx", "max_batch_size": 8, "dynamic_batching": {}}))
    srv = galley(flags={"--model-repository": str(repo), "--grpc-port": "0"})
    assert srv.grpc_port
    return srv


@pytest.fixture(params=["http", "grpc", "gateway", "gateway-grpc"])
def client(request, server, galley):
    if request.param == "http":
        c = httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    elif request.param == "gateway":
        gw = gateway(galley, server.port)
        c = httpclient.InferenceServerClient(url=f"127.0.0.1:{gw.port}")
    elif request.param == "gateway-grpc":
        gw = gateway(galley, server.port, grpc_port=0)
        assert gw.grpc_port
        c = grpcclient.InferenceServerClient(url=f"127.0.0.1:{gw.grpc_port}")
    else:
        c = grpcclient.InferenceServerClient(url=f"127.0.0.1:{server.grpc_port}")
    c.protocol = "grpc" if request.param in ("grpc", "gateway-grpc") else "http"
    c.via_gateway = request.param.startswith("gateway")
    yield c
    c.close()


def lib(client):
    return httpclient if client.protocol == "http" else grpcclient


def as_dict(client, doc):
    """Metadata as a dict for both protocols (gRPC answers protobuf messages)."""
    if client.protocol == "http":
        return doc
    from google.protobuf.json_format import MessageToDict
    return MessageToDict(doc, preserving_proto_field_name=True)


def test_health_and_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    for m in ("sentiment", "sentiment_transformer", "sentiment_lstm", "sentiment_lstm_int8", "vader",
              "add_mul", "strings"):
        assert client.is_model_ready(m), m
    # An unknown model is not ready over both protocols (HTTP: 404; gRPC: ready=false, as Triton).
    assert not client.is_model_ready("no_such_model")
    server_md = as_dict(client, client.get_server_metadata())
    assert server_md["name"] == ("galley-gateway" if client.via_gateway else "galley")
    md = as_dict(client, client.get_model_metadata("sentiment"))
    assert md["name"] == "sentiment"
    assert md["platform"] == "onnxruntime_onnx"
    assert [i["name"] for i in md["inputs"]] == ["text"]
    assert md["inputs"][0]["datatype"] == "BYTES"
    assert [o["name"] for o in md["outputs"]] == ["label", "probability", "probabilities"]


@pytest.mark.parametrize("binary", [True, False])
def test_sentiment_inference(client, binary):
    L = lib(client)
    texts = np.array([t.encode() for t in TEXTS], dtype=np.object_)
    inp = L.InferInput("text", [len(TEXTS)], "BYTES")
    if client.protocol == "http":
        inp.set_data_from_numpy(texts, binary_data=binary)
        outs = [L.InferRequestedOutput(n, binary_data=binary) for n in ("label", "probabilities")]
    else:
        inp.set_data_from_numpy(texts)
        outs = [L.InferRequestedOutput(n) for n in ("label", "probabilities")]
    result = client.infer("sentiment", [inp], outputs=outs, request_id="r-7")
    labels = [x.decode() if isinstance(x, bytes) else x for x in result.as_numpy("label")]
    assert labels == ["Positive", "Negative"]
    probs = result.as_numpy("probabilities")
    assert probs.shape == (2, 2) and probs.dtype == np.float32
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert result.as_numpy("probability") is None  # not requested
    response = result.get_response()
    assert (response["id"] if client.protocol == "http" else response.id) == "r-7"


def test_fp32_model_inference(client):
    L = lib(client)
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    b = np.full((2, 4), 0.5, dtype=np.float32)
    inputs = []
    for name, arr in (("a", a), ("b", b)):
        i = L.InferInput(name, list(arr.shape), np_to_triton_dtype(arr.dtype))
        i.set_data_from_numpy(arr)
        inputs.append(i)
    result = client.infer("add_mul", inputs)
    md = as_dict(client, client.get_model_metadata("add_mul"))
    got = {o["name"]: result.as_numpy(o["name"]) for o in md["outputs"]}
    assert len(got) == 2
    values = sorted((v.tolist() for v in got.values()))
    assert values == sorted([(a + b).tolist(), (a * b).tolist()])


@pytest.mark.parametrize("binary", [True, False])
def test_string_tensor_model_inference(client, binary):
    """An ONNX model with STRING input and output: BYTES in, BYTES out, byte for byte (UTF-8
    and an embedded NUL byte), in JSON and in the binary tensor extension."""
    L = lib(client)
    values = ["plain", "déjà vu", "nul\x00inside", ""]
    if not binary or client.protocol == "grpc":
        values = values[:2]  # JSON carries text: no NUL bytes
    arr = np.array([v.encode() for v in values], dtype=np.object_)
    inp = L.InferInput("s", [len(values)], "BYTES")
    if client.protocol == "http":
        inp.set_data_from_numpy(arr, binary_data=binary)
        out = [L.InferRequestedOutput("t", binary_data=binary)]
    else:
        inp.set_data_from_numpy(arr)
        out = [L.InferRequestedOutput("t")]
    got = client.infer("strings", [inp], outputs=out).as_numpy("t")
    assert [x if isinstance(x, bytes) else x.encode() for x in got] == [v.encode() for v in values]


def test_errors_reach_the_client(client):
    L = lib(client)
    ok_input = L.InferInput("text", [1], "BYTES")
    ok_input.set_data_from_numpy(np.array([b"fine"], dtype=np.object_))
    with pytest.raises(InferenceServerException) as e:
        client.infer("no_such_model", [ok_input])
    assert "no_such_model" in str(e.value)
    wrong = L.InferInput("text", [1], "FP32")
    wrong.set_data_from_numpy(np.array([1.0], dtype=np.float32))
    with pytest.raises(InferenceServerException) as e:
        client.infer("sentiment", [wrong])
    assert "FP32" in str(e.value) and "BYTES" in str(e.value)
    bad_utf8 = L.InferInput("text", [1], "BYTES")
    bad_utf8.set_data_from_numpy(np.array([b"\xff\xfe"], dtype=np.object_))
    with pytest.raises(InferenceServerException) as e:
        client.infer("sentiment", [bad_utf8])
    assert "UTF-8" in str(e.value)
    too_many = L.InferInput("a", [9, 4], "FP32")
    too_many.set_data_from_numpy(np.zeros((9, 4), dtype=np.float32))
    other = L.InferInput("b", [9, 4], "FP32")
    other.set_data_from_numpy(np.zeros((9, 4), dtype=np.float32))
    with pytest.raises(InferenceServerException) as e:
        client.infer("add_mul", [too_many, other])
    assert "exceeds" in str(e.value)
    # The server is unharmed.
    assert client.infer("sentiment", [ok_input]).as_numpy("label") is not None
