"""The gateway never mixes answers: interim answers, hop-by-hop headers, upstream connections
with unread bytes, the protocol's own headers, bounded per-model state, draining keep-alive
connections and readiness. Real `galley serve` replicas, and small scripted upstreams (plain
sockets) for replica behaviour a real server cannot be made to show on demand."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading

import numpy as np
import pytest

from conftest import Client, RawReader, ScriptedUpstream, http_request_bytes, raw_connect, free_port
from test_gateway import gateway


def json_answer(doc, extra_headers: str = "") -> bytes:
    data = json.dumps(doc).encode()
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra_headers}"
            f"Content-Length: {len(data)}\r\n\r\n").encode() + data


def echo_text(body: bytes) -> dict:
    """The scripted replica's answer: the request's text, so a client can tell whose it is."""
    return {"echo": json.loads(body)["text"]}


# -- defect 1: answers must never go to the wrong client --------------------------------------


def test_expect_100_continue_gets_its_own_answer_and_later_requests_theirs(galley):
    r1 = galley()
    gw = gateway(galley, r1.port)
    # The request of the report: curl sends Expect: 100-continue and waits for the interim answer.
    out = subprocess.run(
        ["curl", "-sS", "-i", "--max-time", "10", "-H", "Expect: 100-continue",
         "-H", "Content-Type: application/json", "-d", '{"text":"awful"}',
         f"http://127.0.0.1:{gw.port}/inference/analyze"], capture_output=True)
    assert out.returncode == 0, out.stderr
    final = out.stdout.decode().split("\r\n\r\n")
    # curl prints the interim 100 (from the gateway itself) and then the final answer.
    finals = [i for i, part in enumerate(final) if part.startswith("HTTP/1.1 200")]
    assert finals, out.stdout
    body = json.loads(final[finals[-1] + 1])
    assert body["sentiment"] == "Negative" and "fallback" not in body, out.stdout
    # The same over a raw socket: wait for the gateway's 100, then send the body.
    s = raw_connect(gw.port)
    payload = json.dumps({"text": "lovely"}).encode()
    s.sendall(http_request_bytes("POST", "/inference/analyze", headers={
        "Content-Type": "application/json", "Expect": "100-continue",
        "Content-Length": str(len(payload))}))
    reader = RawReader(s)
    interim = reader.response()
    assert interim is not None and interim.status == 100, interim
    s.sendall(payload)
    answer = reader.response()
    assert answer is not None and answer.status == 200, answer
    assert json.loads(answer.body)["sentiment"] == "Positive"
    s.close()
    # Every later exchange gets its own answer: requests, and the gateway's probes (the replica
    # stays ready, so no answer comes from the fallback).
    c = gw.client()
    for i in range(20):
        text, want = (f"wonderful day {i}", "Positive") if i % 2 else (f"horrible day {i}", "Negative")
        r = c.analyze(text, headers={"Expect": "100-continue"} if i % 3 == 0 else None)
        assert r.status == 200, r
        assert r.json()["sentiment"] == want and r.headers.get("x-galley-fallback") is None, r
        assert c.get("/v2/health/ready").json()["state"] == "serving"


def test_interim_answers_and_extra_bytes_from_a_replica_never_reach_another_client(galley):
    def answer(head: str, body: bytes) -> bytes:
        doc = echo_text(body)
        text = doc["echo"]
        if text.startswith("interim"):
            return (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
                    + json_answer(doc))
        if text.startswith("twice"):
            # A broken replica: a second, unasked answer right behind the first.
            return json_answer(doc) + json_answer({"echo": "STALE"})
        return json_answer(doc)

    up = ScriptedUpstream(answer)
    try:
        gw = gateway(galley, up.port)
        c = gw.client()
        for i in range(30):
            kind = ("interim", "twice", "plain")[i % 3]
            r = c.analyze(f"{kind} {i}")
            assert r.status == 200, r
            assert r.json() == {"echo": f"{kind} {i}"}, r
    finally:
        up.close()


def test_hop_by_hop_fields_stop_at_the_gateway_and_end_to_end_fields_pass(galley):
    up = ScriptedUpstream(lambda head, body: json_answer(
        echo_text(body), "X-Replica-Note: kept\r\nKeep-Alive: timeout=5\r\nConnection: keep-alive, X-Hop\r\n"
                         "X-Hop: replica-only\r\n"))
    try:
        gw = gateway(galley, up.port)
        s = raw_connect(gw.port)
        payload = json.dumps({"text": "hello"}).encode()
        s.sendall(http_request_bytes("POST", "/inference/analyze", payload, headers={
            "Content-Type": "application/json", "Connection": "keep-alive, X-Private",
            "X-Private": "secret", "Keep-Alive": "timeout=9", "TE": "trailers",
            "Upgrade": "websocket", "Proxy-Connection": "keep-alive", "X-Trace-Id": "abc-123"}))
        r = RawReader(s).response()
        s.close()
        assert r is not None and r.status == 200 and json.loads(r.body) == {"echo": "hello"}, r
        assert r.headers.get("x-replica-note") == "kept"
        assert "x-hop" not in r.headers and "keep-alive" not in r.headers, r.headers
        head = up.heads[-1].lower()
        for gone in ("x-private", "keep-alive:", "te:", "upgrade", "proxy-connection", "expect"):
            assert f"\r\n{gone}" not in head, (gone, head)
        assert "\r\nx-trace-id: abc-123" in head, head
        # Two Connection fields, apart: the fields both name stay here.
        s = raw_connect(gw.port)
        s.sendall(b"POST /inference/analyze HTTP/1.1\r\nHost: x\r\nConnection: X-First\r\n"
                  b"Content-Type: application/json\r\nConnection: X-Second\r\nX-First: 1\r\n"
                  b"X-Second: 2\r\nContent-Length: 15\r\n\r\n{\"text\": \"two\"}")
        r = RawReader(s).response()
        s.close()
        assert r is not None and json.loads(r.body) == {"echo": "two"}, r
        head = up.heads[-1].lower()
        assert "x-first" not in head and "x-second" not in head, head
        # A chunked request reaches the replica with a length, never with its transfer coding.
        s = raw_connect(gw.port)
        s.sendall(b"POST /inference/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"tex\r\n" +
                  b"%x\r\n" % len(b't": "chunky"}') + b't": "chunky"}\r\n0\r\n\r\n')
        r = RawReader(s).response()
        s.close()
        assert r is not None and r.status == 200 and json.loads(r.body) == {"echo": "chunky"}, r
        head = up.heads[-1].lower()
        assert "transfer-encoding" not in head and "\r\ncontent-length: 18" in head, head
    finally:
        up.close()


# -- defect 2: the protocol's headers pass through ---------------------------------------------


def test_tritonclient_binary_outputs_through_the_gateway(galley):
    import tritonclient.http as httpclient
    r1 = galley()
    gw = gateway(galley, r1.port)
    tc = httpclient.InferenceServerClient(f"127.0.0.1:{gw.port}")
    try:
        assert tc.is_server_ready() and tc.is_model_ready("vader")
        texts = np.array([b"This is wonderful", b"awful, just awful", b"a table"], dtype=object)
        inp = httpclient.InferInput("text", [3], "BYTES")
        inp.set_data_from_numpy(texts, binary_data=True)
        outs = [httpclient.InferRequestedOutput("label", binary_data=True),
                httpclient.InferRequestedOutput("compound", binary_data=True)]
        res = tc.infer("vader", [inp], outputs=outs, request_id="req-7")
        assert [x.decode() for x in res.as_numpy("label")] == ["Positive", "Negative", "Neutral"]
        assert res.get_response()["id"] == "req-7"
        assert "parameters" not in res.get_response() or not res.get_response()["parameters"].get("fallback")
        # Byte for byte what the replica itself answers.
        direct = httpclient.InferenceServerClient(f"127.0.0.1:{r1.port}")
        want = direct.infer("vader", [inp], outputs=outs, request_id="req-7")
        assert np.array_equal(res.as_numpy("compound"), want.as_numpy("compound"))
        direct.close()
    finally:
        tc.close()


# -- defect 3: client-chosen names do not grow the gateway -------------------------------------


def test_unknown_model_names_answer_404_and_create_no_state(galley):
    r1 = galley()
    gw = gateway(galley, r1.port)
    c = gw.client()
    for _ in range(2):  # the first answer makes the name known, the second uses its breaker
        assert c.infer(["good"], model="vader").status == 200
    assert c.analyze("good").status == 200
    for i in range(300):
        r = c.infer(["x"], model=f"no-such-model-{i}")
        assert r.status == 404, r
        assert f"no-such-model-{i}" in r.json()["error"]
    m = gw.metrics()
    names = {l.get("name") for l, _ in m.find("galley_gateway_breaker_state") if l.get("scope") == "model"}
    assert names == {"vader", "sentiment"}, names
    labelled = {l.get("model") for l, _ in m.find("galley_requests_total")}
    assert not any(n and n.startswith("no-such-model") for n in labelled), labelled
    # A request cannot forge a log line: names and texts with line breaks stay inside JSON strings.
    forged = '\n{"event":"forged"}\r\n'
    assert c.infer([forged], model="x%0A%7B%22event%22%3A%22forged%22%7D").status == 404
    assert c.infer([forged]).status == 200
    gw.stop()
    assert not gw.bad_lines and "forged" not in gw.events()


# -- defect 4: a drain tells keep-alive clients to go ------------------------------------------


@pytest.mark.parametrize("role", ["serve", "gateway"])
def test_answers_during_the_drain_delay_close_the_connection(galley, role):
    r1 = galley(flags={"--drain-delay-ms": "4000", "--grace-period-ms": "10000"})
    srv = r1 if role == "serve" else gateway(galley, r1.port, drain_delay_ms=4000, grace_period_ms=10000)
    c = srv.client()
    first = c.analyze("a pleasant walk")
    assert first.status == 200 and first.headers.get("connection", "").lower() != "close"
    srv.send_signal(signal.SIGTERM)
    srv.wait_for("draining")
    r = c.analyze("still answered while draining")
    assert r.status == 200, r
    assert r.headers.get("connection", "").lower() == "close", r.headers
    # A pipelined pair: the first is answered and says close; nothing is answered after it.
    s = raw_connect(srv.port)
    one = http_request_bytes("GET", "/v2/health/live")
    s.sendall(one + one)
    reader = RawReader(s)
    got = reader.response()
    assert got is not None and got.status == 200 and got.headers.get("connection") == "close"
    reader.wait_closed()
    s.close()


# -- defect 6: idle connections cannot lock others out; busy ones are never cut -----------------


def test_at_the_connection_cap_busy_connections_stay_and_the_newcomer_is_refused(galley):
    arrived = threading.Semaphore(0)
    release = threading.Event()

    def answer(head: str, body: bytes) -> bytes:
        arrived.release()
        release.wait(20)  # the replica is slow: both requests are in the gateway's hands
        return json_answer(echo_text(body))

    up = ScriptedUpstream(answer)
    try:
        gw = gateway(galley, up.port, max_connections=2, try_timeout_ms=20000)
        held = []
        for i in range(2):
            s = raw_connect(gw.port, timeout=20)
            held.append(s)
            payload = json.dumps({"text": f"slow {i}"}).encode()
            s.sendall(http_request_bytes("POST", "/inference/analyze", payload,
                                         {"Content-Type": "application/json"}))
        for _ in range(2):
            assert arrived.acquire(timeout=10), "the requests did not reach the replica"
        # Neither connection is idle, so neither makes room: the newcomer gets 503.
        s = raw_connect(gw.port)
        r = RawReader(s).response()
        s.close()
        assert r is not None and r.status == 503 and "connections" in r.json()["error"], r
        release.set()
        for i, s in enumerate(held):
            r = RawReader(s).response()
            assert r is not None and r.status == 200 and json.loads(r.body) == {"echo": f"slow {i}"}, r
            s.close()
    finally:
        release.set()
        up.close()


# -- defect 5: gRPC connections are capped and cannot starve HTTP ------------------------------


def test_grpc_connections_beyond_the_cap_are_closed_and_http_keeps_serving(galley):
    import grpc
    # A first byte may take a minute: a newcomer closed within seconds was closed for the cap.
    srv = galley(flags={"--grpc-port": "0", "--max-connections": "20",
                        "--first-byte-timeout-ms": "60000", "--idle-timeout-ms": "120000"})
    held = []
    for _ in range(20):
        s = raw_connect(srv.grpc_port)
        s.sendall(b"PRI * HTTP/2.0\r\n")  # the start of a preface: handed to gRPC, then silent
        held.append(s)
    # Newcomers beyond the cap are closed at once (bounded: the first held ones may still be on
    # their way through the acceptor when the first newcomer arrives).
    refused = 0
    for _ in range(20):
        s = raw_connect(srv.grpc_port, timeout=2)
        try:
            closed = RawReader(s).wait_closed() == b""
        except (socket.timeout, TimeoutError):
            closed = False  # still open: taken while the held ones were being counted
        s.close()
        if closed:
            refused += 1
            break
    assert refused == 1
    # HTTP has its own connections and is unaffected.
    assert srv.client().analyze("still good").json()["sentiment"] == "Positive"
    for s in held:
        s.close()
    # Once gRPC has closed the held connections (and the acceptor has recounted, at most every
    # 100 ms), a real client gets in again: refused attempts are quick, so they are bounded by
    # time, not by count.
    import time
    give_up, served = time.monotonic() + 15, False
    while not served and time.monotonic() < give_up:
        channel = grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}")
        try:
            ready = channel.unary_unary("/inference.GRPCInferenceService/ServerReady")
            served = ready(b"", timeout=5) == b"\x08\x01"
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAVAILABLE, e
        finally:
            channel.close()
    assert served, "the gRPC front-end never took a connection again"


# -- defect 9: ready means a replica serves ----------------------------------------------------


def test_gateway_is_ready_once_a_replica_serves_and_says_fallback_only(galley):
    port = free_port()
    merged = {"--health-interval-ms": "50", "--try-timeout-ms": "1000", "--replicas": f"127.0.0.1:{port}"}
    gw = galley(subcommand="gateway", flags=merged, wait_ready=False)
    listening = gw.wait_for("listening")
    c = Client(listening["port"])
    gw.wait_for("replica_unhealthy")  # the first probe found nothing listening
    r = c.get("/v2/health/ready")
    assert r.status == 503 and r.json()["state"] == "fallback_only" and r.json()["replicas_ready"] == 0, r
    assert "ready" not in gw.events()
    # It still answers, from the fallback, marked as such.
    a = c.analyze("nice")
    assert a.status == 200 and a.headers.get("x-galley-fallback") == "true"
    galley(listen=f"127.0.0.1:{port}")
    ready = gw.wait_for("ready")
    assert ready["state"] == "serving" and ready["replicas_ready"] == 1
    r = c.get("/v2/health/ready")
    assert r.status == 200 and r.json()["state"] == "serving", r
    a = c.analyze("nice")
    assert a.status == 200 and a.headers.get("x-galley-fallback") is None, a


def test_ready_on_fallback_flag(galley):
    merged = {"--health-interval-ms": "50", "--replicas": f"127.0.0.1:{free_port()}"}
    gw = galley(subcommand="gateway", flags=merged, env={"GALLEY_READY_ON_FALLBACK": "true"},
                wait_ready=False)
    c = Client(gw.wait_for("listening")["port"])
    gw.wait_for("replica_unhealthy")
    r = c.get("/v2/health/ready")
    assert r.status == 200 and r.json() == {"ready": True, "state": "fallback_only", "replicas_ready": 0}, r
    # The `ready` line follows the same rule.
    assert gw.wait_for("ready")["state"] == "fallback_only"


# -- defect 10: methods, duplicate keys, undecodable protobuf, gRPC core's log ------------------


@pytest.mark.parametrize("role", ["serve", "gateway"])
def test_unimplemented_methods_and_duplicate_json_keys(galley, role):
    r1 = galley()
    srv = r1 if role == "serve" else gateway(galley, r1.port)
    for wire, status in ((b"TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", 501),
                         (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501),
                         (b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 501),
                         (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 405)):
        s = raw_connect(srv.port)
        s.sendall(wire)
        r = RawReader(s).response()
        s.close()
        assert r is not None and r.status == status, (wire, r)
        assert "error" in json.loads(r.body)
        if status == 405:
            assert r.headers.get("allow") == "GET, POST"
    c = srv.client()
    r = c.request("POST", "/inference/analyze", '{"text": "good", "text": "awful"}',
                  {"Content-Type": "application/json"})
    assert r.status == 400 and "duplicate key 'text'" in r.json()["error"], r
    doc = ('{"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["good"], '
           '"shape": [2]}]}')
    r = c.request("POST", "/v2/models/vader/infer", doc, {"Content-Type": "application/json"})
    assert r.status == 400 and "duplicate key 'shape'" in r.json()["error"], r
    # Nothing lost: the same connection and server keep answering.
    assert c.analyze("good").json()["sentiment"] == "Positive"


def test_undecodable_protobuf_is_invalid_argument_and_grpc_core_logs_as_json(galley):
    import grpc
    srv = galley(flags={"--grpc-port": "0"})
    channel = grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}")
    infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
    with pytest.raises(grpc.RpcError) as e:
        infer(b"\x0a\xff\xff\xff\xff\x0f", timeout=10)  # a length that runs past the end
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value
    assert "ModelInferRequest" in e.value.details()
    # A well-formed call still works on the same channel.
    ready = channel.unary_unary("/inference.GRPCInferenceService/ServerReady")
    assert ready(b"", timeout=10) == b"\x08\x01"
    channel.close()
    srv.stop()
    assert not srv.bad_lines, srv.bad_lines[:3]
    # gRPC core's own messages (at GRPC_VERBOSITY=info it tells its epoll set-up) are JSON lines
    # of the log, not free text on stderr.
    chatty = galley(flags={"--grpc-port": "0"}, env={"GRPC_VERBOSITY": "info"})
    chatty.stop()
    core = [l for l in chatty.log_lines() if l.get("event") == "grpc_core"]
    assert core and all(l["level"] == "info" and l["message"] for l in core), chatty.log_lines()
    assert not chatty.bad_lines and ".cc:" not in chatty.stderr, chatty.stderr


# -- authentication at the gateway --------------------------------------------------------------


def test_api_keys_with_real_clients(galley, tmp_path):
    import hashlib
    import numpy as np
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException
    sha = lambda k: hashlib.sha256(k.encode()).hexdigest()  # noqa: E731
    keys = tmp_path / "keys"
    keys.write_text(f"# the file holds hashes only\n"
                    f"ops {sha('ops-secret-1')}\n"
                    f"vader-only {sha('vader-secret-2')} models=vader\n"
                    f"slow {sha('slow-secret-3')} rate=0.01 burst=2\n")
    r1 = galley()
    gw = gateway(galley, r1.port, api_keys_file=str(keys))
    c = gw.client()
    # Probes and metrics need no key.
    assert c.get("/v2/health/ready").status == 200 and c.get("/v2/health/live").status == 200
    assert c.get("/metrics").status == 200
    # No key, a wrong key: 401 with nothing about keys in the answer.
    for headers in ({}, {"Authorization": "Bearer nope"}, {"X-API-Key": "ops-secret-"},
                    {"Authorization": "Basic b3BzLXNlY3JldC0x"}):
        r = c.analyze("good", headers=headers)
        assert r.status == 401 and r.headers.get("www-authenticate") == "Bearer", r
        assert r.json() == {"error": "authentication required"}
    # curl with X-API-Key, and Triton's client with a bearer token (binary tensors).
    out = subprocess.run(["curl", "-sS", "--max-time", "10", "-H", "X-API-Key: ops-secret-1",
                          "-H", "Content-Type: application/json", "-d", '{"text":"lovely"}',
                          f"http://127.0.0.1:{gw.port}/inference/analyze"], capture_output=True, text=True)
    assert json.loads(out.stdout)["sentiment"] == "Positive", out
    tc = httpclient.InferenceServerClient(f"127.0.0.1:{gw.port}")
    inp = httpclient.InferInput("text", [1], "BYTES")
    inp.set_data_from_numpy(np.array([b"awful"], dtype=object), binary_data=True)
    res = tc.infer("vader", [inp], headers={"Authorization": "Bearer vader-secret-2"})
    assert res.as_numpy("label")[0] in (b"Negative", "Negative")
    with pytest.raises(InferenceServerException) as e:
        tc.infer("vader", [inp])
    assert "authentication required" in str(e.value)
    tc.close()
    # A key limited to some models gets 403 for the others.
    r = c.analyze("good", headers={"Authorization": "Bearer vader-secret-2"})
    assert r.status == 403 and "vader-secret" not in r.body.decode(), r
    # A key's rate: a burst of 2, then 429 with Retry-After.
    slow = {"X-API-Key": "slow-secret-3"}
    assert [c.analyze("ok", headers=slow).status for _ in range(3)] == [200, 200, 429]
    assert int(c.analyze("ok", headers=slow).headers["retry-after"]) >= 1
    m = gw.metrics()
    # No key, Basic credentials and Triton's client without a key are "missing"; two wrong keys.
    assert m.value("galley_gateway_auth_total", outcome="missing") == 3
    assert m.value("galley_gateway_auth_total", outcome="invalid") == 2
    assert m.value("galley_gateway_auth_total", outcome="forbidden") == 1
    assert m.value("galley_gateway_auth_total", outcome="rate_limited") == 2


def test_keys_are_not_forwarded_to_replicas(galley, tmp_path):
    import hashlib
    keys = tmp_path / "keys"
    keys.write_text(f"ops {hashlib.sha256(b'ops-secret').hexdigest()}\n")
    up = ScriptedUpstream(lambda head, body: json_answer(echo_text(body)))
    try:
        gw = gateway(galley, up.port, api_keys_file=str(keys))
        c = gw.client()
        for headers in ({"Authorization": "Bearer ops-secret"}, {"X-API-Key": "ops-secret"}):
            r = c.analyze("hi", headers=headers)
            assert r.status == 200 and r.json() == {"echo": "hi"}, r
            head = up.heads[-1].lower()
            assert "ops-secret" not in head and "authorization" not in head and "x-api-key" not in head, head
    finally:
        up.close()


def test_a_bad_api_keys_file_stops_the_start_with_the_line(galley, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("ops 1234\n")
    gw = galley(subcommand="gateway", wait_ready=False,
                flags={"--replicas": "127.0.0.1:1", "--api-keys-file": str(keys)})
    assert gw.wait_exit() != 0
    line = gw.wait_for("start_failed")
    assert "line 1" in line["error"] and "SHA-256" in line["error"], line


# -- /metrics on a listener of its own ----------------------------------------------------------


@pytest.mark.parametrize("role", ["serve", "gateway"])
def test_metrics_listen_moves_metrics_off_the_api_listener(galley, role):
    ops_port = free_port()
    flags = {"--metrics-listen": f"127.0.0.1:{ops_port}"}
    if role == "serve":
        srv = galley(flags=flags)
    else:
        r1 = galley()
        srv = gateway(galley, r1.port, metrics_listen=f"127.0.0.1:{ops_port}")
    line = srv.wait_for("listening", pred=lambda l: l.get("protocol") == "metrics")
    assert line["port"] == ops_port
    api, ops = srv.client(), Client(ops_port)
    assert api.get("/metrics").status == 404
    assert api.get("/v2/health/ready").status == 200 and api.analyze("good").status == 200
    m = ops.metrics()
    assert m.value("galley_requests_total", endpoint="analyze", outcome="ok") >= 1
    assert ops.get("/v2/health/live").status == 200 and ops.get("/v2/health/ready").status == 200
    # Nothing else is served there.
    assert ops.request("POST", "/inference/analyze", '{"text": "x"}',
                       {"Content-Type": "application/json"}).status == 404
    assert ops.get("/v2").status == 404
