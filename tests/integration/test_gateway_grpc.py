"""The gateway's gRPC door (`galley gateway --grpc-port`): Open Inference Protocol calls forwarded
as REST through the gateway's own path, so that the fallback, API keys, health and drain behave
as they do for REST clients. Triton's gRPC client and raw gRPC calls against real `galley serve`
replicas, on 127.0.0.1. (The protocol itself through the door is in test_tritonclient.py.)"""
from __future__ import annotations

import hashlib
import signal
import threading

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from test_gateway import gateway

SERVING, NOT_SERVING = b"\x08\x01", b"\x08\x02"  # grpc.health.v1.HealthCheckResponse


def stub(port: int):
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return channel, service_pb2_grpc.GRPCInferenceServiceStub(channel)


def health(channel) -> bytes:
    check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                request_serializer=lambda b: b, response_deserializer=lambda b: b)
    return check(b"", timeout=10)


def vader_request(*texts: str) -> service_pb2.ModelInferRequest:
    req = service_pb2.ModelInferRequest(model_name="vader", id="g-1")
    t = req.inputs.add(name="text", datatype="BYTES", shape=[len(texts)])
    t.contents.bytes_contents.extend(x.encode() for x in texts)
    return req


def labels(resp: service_pb2.ModelInferResponse) -> list[str]:
    i = [o.name for o in resp.outputs].index("label")
    raw, out = resp.raw_output_contents[i], []
    while raw:
        n = int.from_bytes(raw[:4], "little")
        out.append(raw[4:4 + n].decode())
        raw = raw[4 + n:]
    return out


def test_a_replica_answers_and_the_fallback_takes_over_when_none_can(galley):
    r1 = galley()
    gw = gateway(galley, r1.port, grpc_port=0, breaker_min_calls=3, breaker_break_ms=200,
                 eject_after_failures=100)
    channel, s = stub(gw.grpc_port)
    resp, call = s.ModelInfer.with_call(vader_request("what a lovely day", "awful"), timeout=10)
    assert labels(resp) == ["Positive", "Negative"] and resp.id == "g-1"
    meta = dict(call.initial_metadata())
    assert meta["x-galley-replica"] == f"127.0.0.1:{r1.port}", meta
    assert "fallback" not in resp.parameters
    assert health(channel) == SERVING
    r1.proc.send_signal(signal.SIGKILL)
    r1.proc.wait(5)
    for _ in range(5):
        resp, call = s.ModelInfer.with_call(vader_request("This is wonderful"), timeout=10)
        assert labels(resp) == ["Positive"]
        assert resp.parameters["fallback"].bool_param is True
        assert dict(call.initial_metadata())["x-galley-fallback"] == "true"
    # Triton's own client sees the same.
    tc = grpcclient.InferenceServerClient(f"127.0.0.1:{gw.grpc_port}")
    text = grpcclient.InferInput("text", [1], "BYTES")
    text.set_data_from_numpy(np.array([b"terrible"], dtype=object))
    assert [x.decode() for x in tc.infer("vader", [text]).as_numpy("label")] == ["Negative"]
    tc.close()
    # The gateway's own counters saw the gRPC calls (they took the REST path).
    m = gw.metrics()
    assert sum(v for _, v in m.find("galley_gateway_fallbacks_total")) >= 6
    channel.close()


def test_api_keys_come_as_metadata(galley, tmp_path):
    sha = lambda k: hashlib.sha256(k.encode()).hexdigest()  # noqa: E731
    keys = tmp_path / "keys"
    keys.write_text(f"ops {sha('ops-secret-1')}\nother {sha('other-secret-2')} models=sentiment\n")
    r1 = galley()
    gw = gateway(galley, r1.port, grpc_port=0, api_keys_file=str(keys))
    channel, s = stub(gw.grpc_port)
    # Liveness, readiness and health need no key, as the REST probes.
    assert s.ServerLive(service_pb2.ServerLiveRequest(), timeout=10).live
    assert s.ServerReady(service_pb2.ServerReadyRequest(), timeout=10).ready
    assert health(channel) == SERVING
    for metadata in ((), (("authorization", "Bearer nope"),), (("x-api-key", "ops-secret-"),)):
        with pytest.raises(grpc.RpcError) as e:
            s.ModelInfer(vader_request("good"), metadata=metadata, timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED, e.value
        assert "secret" not in e.value.details()
        with pytest.raises(grpc.RpcError) as e:
            s.ModelMetadata(service_pb2.ModelMetadataRequest(name="vader"), metadata=metadata, timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    for metadata in ((("authorization", "Bearer ops-secret-1"),), (("x-api-key", "ops-secret-1"),)):
        assert labels(s.ModelInfer(vader_request("good"), metadata=metadata, timeout=10)) == ["Positive"]
        md = s.ModelMetadata(service_pb2.ModelMetadataRequest(name="vader"), metadata=metadata, timeout=10)
        assert md.name == "vader" and [i.name for i in md.inputs] == ["text"]
        assert s.ModelReady(service_pb2.ModelReadyRequest(name="vader"), metadata=metadata, timeout=10).ready
    # A key for other models only.
    with pytest.raises(grpc.RpcError) as e:
        s.ModelInfer(vader_request("good"), metadata=(("x-api-key", "other-secret-2"),), timeout=10)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED, e.value
    # Triton's client passes headers as metadata.
    tc = grpcclient.InferenceServerClient(f"127.0.0.1:{gw.grpc_port}")
    text = grpcclient.InferInput("text", [1], "BYTES")
    text.set_data_from_numpy(np.array([b"lovely"], dtype=object))
    assert tc.infer("vader", [text], headers={"x-api-key": "ops-secret-1"}).as_numpy("label")[0] == b"Positive"
    with pytest.raises(InferenceServerException) as e:
        tc.infer("vader", [text])
    assert "authentication required" in str(e.value)
    tc.close()
    channel.close()


def test_bad_calls_get_clear_errors_and_lose_nothing(galley):
    r1 = galley()
    gw = gateway(galley, r1.port, grpc_port=0)
    channel, s = stub(gw.grpc_port)
    raw_infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                    request_serializer=lambda b: b, response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as e:
        raw_infer(b"\xff\xff\xff", timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid ModelInferRequest" in e.value.details()
    for name in ("no_such_model", "../health/ready", "vader/versions/1"):
        req = vader_request("good")
        req.model_name = name
        with pytest.raises(grpc.RpcError) as e:
            s.ModelInfer(req, timeout=10)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND, (name, e.value)
        assert not s.ModelReady(service_pb2.ModelReadyRequest(name=name), timeout=10).ready
    mixed = vader_request("good")
    mixed.raw_input_contents.append(b"\x04\x00\x00\x00good")
    with pytest.raises(grpc.RpcError) as e:
        s.ModelInfer(mixed, timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "do not mix" in e.value.details()
    wrong = vader_request("good")
    wrong.inputs[0].datatype = "FP32"
    wrong.inputs[0].ClearField("contents")
    wrong.inputs[0].contents.fp32_contents.append(1.0)
    with pytest.raises(grpc.RpcError) as e:
        s.ModelInfer(wrong, timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "BYTES" in e.value.details()
    # The door and the replica are unharmed.
    assert labels(s.ModelInfer(vader_request("good", "bad"), timeout=10)) == ["Positive", "Negative"]
    channel.close()


def test_sigterm_finishes_calls_in_flight_and_turns_health_not_serving(galley):
    r1 = galley()
    gw = gateway(galley, r1.port, grpc_port=0, drain_delay_ms=1500)
    channel, s = stub(gw.grpc_port)
    assert health(channel) == SERVING
    stop, warm = threading.Event(), threading.Event()
    results: list[str] = []
    errors: list[grpc.RpcError] = []

    def load():
        while not stop.is_set():
            try:
                results.extend(labels(s.ModelInfer(vader_request("good"), timeout=10)))
                if len(results) >= 20:
                    warm.set()
            except grpc.RpcError as e:
                errors.append(e)
                return

    t = threading.Thread(target=load)
    t.start()
    assert warm.wait(30), errors
    gw.proc.send_signal(signal.SIGTERM)
    gw.wait_for("draining")
    # Draining: health and ServerReady say so at once, and calls are still answered.
    assert health(channel) == NOT_SERVING
    assert not s.ServerReady(service_pb2.ServerReadyRequest(), timeout=10).ready
    before = len(results)
    assert labels(s.ModelInfer(vader_request("fine"), timeout=10)) == ["Positive"]
    stop.set()
    t.join(15)
    assert not t.is_alive()
    assert not errors, errors[0]
    assert len(results) >= before and set(results) == {"Positive"}
    assert gw.proc.wait(30) == 0
    channel.close()
