"""`galley up --autoscale --scale-to-zero --min-replicas 0`: with no demand the last replica
stops; a request that arrives with no replica waits at the gateway (as Knative's activator holds
requests for a revision at zero) while the autoscaler, poked at once, starts one, and a replica
answers it, not the fallback. A request whose deadline passes before any replica can be ready is
answered by the fallback, marked as such. Every wait is on a log line or an answer, with a bound."""
from __future__ import annotations

import json
import signal
import threading
import time

from conftest import Client

ZERO_FLAGS = {
    "--min-replicas": "0",
    "--max-replicas": "2",
    # Eight held requests are well under one replica's worth: one replica must come, not two.
    "--target-concurrency": "45",
    "--sync-period-ms": "300",
    "--stable-window-ms": "1500",
    "--scale-down-delay-ms": "500",
    "--scale-to-zero-grace-ms": "500",
    "--model-load-time-ms": "1000",
    "--health-interval-ms": "100",
    "--replica-drain-delay-ms": "100",
}
ANALYZE = json.dumps({"text": "what a wonderful day"})
JSON = {"Content-Type": "application/json"}


def own(line: dict) -> bool:
    return "replica" not in line


def held_gauge(up) -> float:
    text = up.client().request("GET", "/metrics").body.decode()
    for line in text.splitlines():
        if line.startswith("galley_gateway_held_requests "):
            return float(line.split()[1])
    raise AssertionError("galley_gateway_held_requests missing from /metrics:\n" + text)


def test_up_scales_to_zero_and_a_request_brings_a_replica_back(galley):
    up = galley("--autoscale", "--scale-to-zero", subcommand="up", flags=ZERO_FLAGS)
    up.wait_for("autoscaler_started", pred=own)
    first = up.wait_for("autoscale_decision", pred=own)
    assert first["desired"] == 0 and first["current"] == 0, first
    assert held_gauge(up) == 0
    assert not [l for l in up.log_lines() if l.get("event") == "replica_started"]

    # Cold: the request is held, a replica starts, the replica answers.
    start = len(up.log_lines())
    r = up.client().request("POST", "/inference/analyze", body=ANALYZE, headers=JSON)
    assert r.status == 200, r.body
    assert r.headers.get("x-galley-fallback") is None, dict(r.headers)
    assert r.headers.get("x-galley-replica") == "replica-0", dict(r.headers)
    assert json.loads(r.body)["sentiment"] == "Positive"
    scaled = up.wait_for("replicas_scaled", start=start, pred=own)
    assert (scaled["from"], scaled["to"]) == (0, 1), scaled
    assert held_gauge(up) == 0

    # Idle again: back to zero after the grace period, and the replica process exits.
    idle = len(up.log_lines())
    down = up.wait_for("replicas_scaled", timeout=20, start=idle,
                       pred=lambda l: own(l) and l.get("to") == 0)
    assert down["from"] == 1, down
    up.wait_for("replica_exited", timeout=10, start=idle,
                pred=lambda l: l.get("replica") == "replica-0")

    # Several cold requests at once: all held, all answered by the new replica.
    results: list[tuple[int, dict, bytes]] = []
    lock = threading.Lock()

    def one() -> None:
        c = Client(up.port, timeout=20)
        try:
            res = c.request("POST", "/inference/analyze", body=ANALYZE, headers=JSON)
            with lock:
                results.append((res.status, dict(res.headers), res.body))
        finally:
            c.close()

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert len(results) == 8
    for status, headers, body in results:
        assert status == 200, body
        assert "x-galley-fallback" not in headers, headers
        assert headers.get("x-galley-replica") == "replica-1", headers
    # One poke, one scale-up: the eight did not start eight replicas.
    ups = [l for l in up.log_lines()[idle:] if l.get("event") == "replicas_scaled" and own(l)
           and l["to"] > l["from"]]
    assert [(l["from"], l["to"]) for l in ups] == [(0, 1)], ups


def test_a_held_request_goes_to_the_fallback_at_its_deadline(galley, tmp_path):
    # Replicas that can never become ready: their model repository does not exist.
    up = galley("--autoscale", "--scale-to-zero",
                f"--serve-arg=--model-repository={tmp_path / 'missing'}", subcommand="up",
                flags=ZERO_FLAGS)
    up.wait_for("autoscale_decision", pred=own)
    start = len(up.log_lines())
    r = up.client().request("POST", "/inference/analyze", body=ANALYZE,
                            headers=dict(JSON, **{"X-Request-Timeout-Ms": "1500"}))
    assert r.status == 200, r.body
    assert r.headers.get("x-galley-fallback") == "true", dict(r.headers)
    assert r.headers.get("x-galley-fallback-reason") == "no_ready_replica", dict(r.headers)
    assert json.loads(r.body)["sentiment"] == "Positive"
    # It was held (the autoscaler was asked for a replica) before the fallback answered.
    scaled = up.wait_for("replicas_scaled", start=start, pred=own)
    assert (scaled["from"], scaled["to"]) == (0, 1), scaled
    assert held_gauge(up) == 0


def test_a_request_held_when_the_stack_stops_gets_the_fallbacks_answer(galley, tmp_path):
    """SIGTERM while a request waits for a replica: once the doors stop accepting, the held
    request is answered by the fallback (not cut off when the server closes), and the stack exits
    0 well inside its grace period."""
    up = galley("--autoscale", "--scale-to-zero",
                f"--serve-arg=--model-repository={tmp_path / 'missing'}", subcommand="up",
                flags=dict(ZERO_FLAGS, **{"--grace-period-ms": "20000"}))
    up.wait_for("autoscale_decision", pred=own)
    replies = []

    def send():
        replies.append(up.client().request(
            "POST", "/inference/analyze", body=ANALYZE,
            headers=dict(JSON, **{"X-Request-Timeout-Ms": "60000"})))

    t = threading.Thread(target=send)
    t.start()
    deadline = time.monotonic() + 30
    while held_gauge(up) != 1:  # the gauge is the gateway's own count of held requests
        assert time.monotonic() < deadline, "the request was never held"
        time.sleep(0.05)
    up.send_signal(signal.SIGTERM)
    t.join(timeout=30)
    assert not t.is_alive(), "the held request was not answered"
    r = replies[0]
    assert r.status == 200, r.body
    assert r.headers.get("x-galley-fallback") == "true", dict(r.headers)
    assert r.headers.get("x-galley-fallback-reason") == "no_ready_replica", dict(r.headers)
    assert up.wait_exit() == 0
    stopped = up.wait_for("stopped", pred=own)
    assert stopped["duration_s"] < 15, stopped  # not the 20-s grace period
