"""`galley gateway` in front of real `galley serve` replicas (and, for faults a real server
cannot be made to show on demand, small fault-injecting upstreams: one that accepts and never
answers, one that answers 503 to inference). Every process runs on 127.0.0.1 and stops at
teardown."""
from __future__ import annotations

import json
import os
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import LABELS, Client, ScriptedUpstream

GATEWAY_FLAGS = {
    "--health-interval-ms": "100",
    "--try-timeout-ms": "1000",
    "--eject-ms": "60000",
}


def gateway(galley, *replica_ports, **flags):
    merged = dict(GATEWAY_FLAGS)
    merged.update({f"--{k.replace('_', '-')}": str(v) for k, v in flags.items()})
    merged["--replicas"] = ",".join(f"127.0.0.1:{p}" for p in replica_ports)
    return galley(subcommand="gateway", flags=merged)


class FailingUpstream:
    """Ready to the probe, 503 to every inference request; counts the attempts it saw."""

    def __init__(self, status=503):
        outer = self
        self.attempts = 0
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._send(200, {"ready": True})

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.attempts += 1
                self._send(status, {"error": "overloaded"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_forwards_and_spreads_over_replicas(galley):
    r1, r2 = galley(), galley()
    gw = gateway(galley, r1.port, r2.port)
    c = gw.client()
    seen = set()
    for i in range(40):
        r = c.analyze(f"I really like this, take {i}")
        assert r.status == 200, r
        assert r.json()["sentiment"] == "Positive"
        assert r.headers.get("x-galley-fallback") is None
        seen.add(r.headers["x-galley-replica"])
    assert seen == {f"127.0.0.1:{r1.port}", f"127.0.0.1:{r2.port}"}
    # The protocol's endpoints go through too.
    inf = c.infer(["good", "bad"])
    assert inf.status == 200 and inf.json()["outputs"][0]["data"] == ["Positive", "Negative"]
    assert c.get("/v2/models/vader").json()["name"] == "vader"
    assert c.get("/v2/health/ready").status == 200


def test_bad_input_is_rejected_at_the_gateway(galley):
    r1 = galley()
    gw = gateway(galley, r1.port)
    c = gw.client()
    before = r1.metrics().value("galley_requests_total", endpoint="analyze", outcome="invalid_input")
    for body in ('{"text": ""}', '{"txt": "x"}', "nope"):
        r = c.request("POST", "/inference/analyze", body, {"Content-Type": "application/json"})
        assert r.status == 400 and "error" in r.json()
    assert r1.metrics().value("galley_requests_total", endpoint="analyze", outcome="invalid_input") == before


def test_kill_9_replica_under_load_no_client_fails(galley):
    r1, r2 = galley(), galley()
    gw = gateway(galley, r1.port, r2.port, eject_after_failures=1)
    failures, ok = [], []
    lock = threading.Lock()
    started = threading.Event()

    def load(i):
        c = gw.client()
        for k in range(60):
            r = c.analyze(f"The staff were lovely {i} {k}")
            with lock:
                (ok if r.status == 200 and r.json()["sentiment"] in LABELS else failures).append(r)
                if len(ok) >= 40:
                    started.set()

    threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    assert started.wait(20)
    r1.proc.send_signal(signal.SIGKILL)
    for t in threads:
        t.join(60)
    assert not failures, failures[:3]
    assert len(ok) == 240
    m = gw.metrics()
    dead = f"127.0.0.1:{r1.port}"
    assert m.value("galley_gateway_ejections_total", replica=dead) >= 1
    r1.proc.wait(5)


def test_all_replicas_down_fallback_then_back(galley):
    r1 = galley()
    port = r1.port
    gw = gateway(galley, port, breaker_min_calls=3, breaker_break_ms=200, eject_after_failures=100)
    c = gw.client()
    assert c.analyze("great").headers.get("x-galley-replica") == f"127.0.0.1:{port}"
    r1.proc.send_signal(signal.SIGKILL)
    r1.proc.wait(5)
    for _ in range(10):
        r = c.analyze("This is wonderful")
        assert r.status == 200, r
        assert r.headers["x-galley-fallback"] == "true"
        body = r.json()
        assert body["fallback"] is True and body["sentiment"] == "Positive"
    inf = c.infer(["awful"])
    assert inf.status == 200 and inf.headers["x-galley-fallback"] == "true"
    assert inf.json()["parameters"]["fallback"] is True
    # Triton's client with binary tensors (its default) also gets the fallback's answer.
    import numpy as np
    import tritonclient.http as httpclient
    tc = httpclient.InferenceServerClient(f"127.0.0.1:{gw.port}")
    text = httpclient.InferInput("text", [2], "BYTES")
    text.set_data_from_numpy(np.array([b"This is wonderful", b"awful, just awful"], dtype=object),
                             binary_data=True)
    res = tc.infer("vader", [text], outputs=[httpclient.InferRequestedOutput("label", binary_data=True),
                                             httpclient.InferRequestedOutput("compound", binary_data=True)])
    assert [x.decode() for x in res.as_numpy("label")] == ["Positive", "Negative"]
    compound = res.as_numpy("compound")
    assert compound.dtype == np.float32 and compound[0] > 0.5 and compound[1] < -0.5
    assert res.get_response()["parameters"]["fallback"] is True
    tc.close()
    # A malformed binary header is a clear 400, and the fallback keeps serving.
    bad = c.request("POST", "/v2/models/vader/infer", body="{}",
                    headers={"Content-Type": "application/json",
                             "Inference-Header-Content-Length": "ten"})
    assert bad.status == 400 and "Inference-Header-Content-Length" in bad.json()["error"], bad
    m = gw.metrics()
    assert sum(v for _, v in m.find("galley_gateway_fallbacks_total")) >= 12
    # Bring a replica back on the same port: health checks see it ready, the breaker half-opens
    # and closes, and traffic returns to it.
    back = galley(listen=f"127.0.0.1:{port}")
    assert back.port == port
    # The breaker's break must pass before a trial goes through: keep sending (bounded in count
    # and time) until the replica has answered five in a row.
    import time
    in_a_row, sent, give_up = 0, 0, time.monotonic() + 15
    while in_a_row < 5 and sent < 5000 and time.monotonic() < give_up:
        r = c.analyze("back again, nice")
        sent += 1
        assert r.status == 200, r
        in_a_row = in_a_row + 1 if r.headers.get("x-galley-replica") == f"127.0.0.1:{port}" else 0
    assert in_a_row == 5, f"traffic did not return after {sent} requests"
    # Whether the replica's breaker opened depends on who noticed the kill first: requests that
    # failed against it (the breaker opens, then half-opens and closes when it is back), or the
    # 100 ms health check (requests never reached it, so the breaker never opened). Either way
    # it must be closed now, and if it opened it must have closed through half-open.
    opened = [l for l in gw.log_lines() if l.get("event") == "breaker_transition"
              and l.get("scope") == "replica" and l.get("to") == "open"]
    if opened:
        closed = gw.wait_for("breaker_transition", timeout=5,
                             pred=lambda l: l.get("scope") == "replica" and l.get("to") == "closed")
        assert closed["from"] == "half_open"
    states = [v for l, v in gw.metrics().find("galley_gateway_breaker_state")
              if l.get("scope") == "replica" and l.get("name") == f"127.0.0.1:{port}"]
    assert states == [0]


def hangs_after(n: int, release: threading.Event):
    """A scripted replica's answers: the first `n` inference requests answered at once (an echo
    of the text), every later one held until `release` (a replica that hung while running)."""
    seen = [0]
    lock = threading.Lock()

    def answer(head: str, body: bytes) -> bytes:
        with lock:
            seen[0] += 1
            hung = seen[0] > n
        if hung:
            release.wait(30)
        data = json.dumps({"sentiment": "Positive", "echo": json.loads(body)["text"]}).encode()
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(data)).encode() + b"\r\n\r\n" + data)
    return answer


def test_hung_replica_is_ejected_and_others_answer(galley):
    release = threading.Event()
    hung = ScriptedUpstream(hangs_after(0, release))  # ready to probes, never answers inference
    try:
        r1 = galley()
        gw = gateway(galley, hung.port, r1.port, try_timeout_ms=300, eject_after_failures=1)
        c = gw.client()
        for i in range(12):
            r = c.analyze(f"fine {i}")
            assert r.status == 200, r
            assert r.headers.get("x-galley-replica") == f"127.0.0.1:{r1.port}"
        m = gw.metrics()
        assert m.value("galley_gateway_upstream_requests_total", replica=f"127.0.0.1:{hung.port}", outcome="timeout") >= 1
        assert m.value("galley_gateway_ejections_total", replica=f"127.0.0.1:{hung.port}") >= 1
        assert m.value("galley_gateway_replica_ready", replica=f"127.0.0.1:{hung.port}") == 0
    finally:
        release.set()
        hung.close()


def test_a_replica_that_hangs_costs_a_multiple_of_the_usual_latency_not_the_try_timeout(galley):
    release = threading.Event()
    hung = ScriptedUpstream(hangs_after(30, release))
    try:
        r1 = galley()
        # try_timeout 20 s, but each request allows itself 3 s: a first attempt that waited the
        # whole try timeout on the hung replica would leave nothing for a second one, and the
        # fallback would answer. Breakers and ejection stay out of the way so that requests keep
        # meeting the hung replica.
        gw = gateway(galley, hung.port, r1.port, try_timeout_ms=20000, eject_after_failures=100000,
                     breaker_min_calls=100000)
        c = gw.client()
        for i in range(100):  # both replicas answer: the gateway learns the model's latency
            assert c.analyze(f"warm {i}").status == 200
        m = gw.metrics()
        hung_id = f"127.0.0.1:{hung.port}"
        assert m.value("galley_gateway_upstream_requests_total", replica=hung_id, outcome="ok") >= 1
        for i in range(20):
            r = c.analyze(f"after the hang {i}", headers={"X-Request-Timeout-Ms": "3000"})
            assert r.status == 200, r
            assert r.headers.get("x-galley-fallback") is None, r
            assert r.headers.get("x-galley-replica") == f"127.0.0.1:{r1.port}", r
        m = gw.metrics()
        assert m.value("galley_gateway_upstream_requests_total", replica=hung_id, outcome="timeout") >= 1
    finally:
        release.set()
        hung.close()


@pytest.mark.parametrize("status", [503, 429])
def test_overloaded_replica_retried_elsewhere_and_budget_holds(galley, status):
    bad = FailingUpstream(status)
    try:
        r1 = galley()
        gw = gateway(galley, bad.port, r1.port, eject_after_failures=1000, breaker_min_calls=1000)
        c = gw.client()
        n = 100
        answers = [c.analyze(f"so good {i}") for i in range(n)]
        assert all(a.status == 200 for a in answers), [a for a in answers if a.status != 200][:3]
        m = gw.metrics()
        retries = m.value("galley_gateway_retries_total")
        assert retries >= 1
        # Retries never exceed the budget: 20% of requests plus the minimum of 3 per second over
        # the 10 s window, and every attempt at the bad replica was either a first try or counted.
        assert retries <= 0.2 * n + 30
        outcome = "server_error" if status == 503 else "overloaded"
        # Every attempt the bad replica answered is counted as its answer; one it was still
        # holding when the attempt's latency-derived timeout passed (a slow Python replica) is
        # counted as a timeout.
        def count(o):
            found = m.find("galley_gateway_upstream_requests_total", replica=f"127.0.0.1:{bad.port}", outcome=o)
            return sum(v for _, v in found)
        assert count(outcome) <= bad.attempts <= count(outcome) + count("timeout")
        fallbacks = sum(v for _, v in m.find("galley_gateway_fallbacks_total"))
        from_replica = sum(1 for a in answers if a.headers.get("x-galley-replica"))
        assert from_replica + fallbacks == n
    finally:
        bad.close()


def test_gateway_metrics_pass_promtool(galley, tmp_path):
    import subprocess
    r1 = galley()
    gw = gateway(galley, r1.port)
    c = gw.client()
    c.analyze("ok then")
    c.get("/nope")
    text = c.get("/metrics").body
    f = tmp_path / "gw.prom"
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    res = subprocess.run(["promtool", "check", "metrics"], stdin=f.open("rb"), capture_output=True)
    assert res.returncode == 0, res.stdout + res.stderr
    m = Client(gw.port).metrics()
    assert m.value("galley_gateway_replica_ready", replica=f"127.0.0.1:{r1.port}") == 1
