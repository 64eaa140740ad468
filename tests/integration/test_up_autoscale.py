"""`galley up --autoscale`: the autoscaler's controller scrapes the real replicas' /metrics and
scales the supervisor. With short windows, a load step through the gateway adds replicas; after it
stops the count comes back to the warm pool (never below it), and no request fails throughout.
Every wait is on a log line, with a bound; the load itself runs for a bounded time."""
from __future__ import annotations

import json
import threading
import time

from conftest import Client

AUTOSCALE_FLAGS = {
    "--min-replicas": "1",
    "--max-replicas": "3",
    "--target-concurrency": "2",
    "--sync-period-ms": "200",
    "--stable-window-ms": "2000",
    "--scale-down-delay-ms": "2000",
    "--model-load-time-ms": "1000",
    "--health-interval-ms": "100",
    "--replica-drain-delay-ms": "300",
}

# Long texts, 64 of them (the replicas' --max-batch-size): each request is a full batch of real
# work, so 16 clients keep several requests queued or running per replica.
TEXT = ("The service was wonderful and the food was great, but the wait was terribly long and "
        "the room was far too noisy for a quiet dinner, which was a real shame overall. ") * 3
BODY = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [64],
                               "data": [TEXT] * 64}]})


class Load:
    """`threads` clients posting BODY in a loop until stopped or `limit_s` passes; every status
    is recorded."""

    def __init__(self, port: int, threads: int, body: str, limit_s: float):
        self.port, self.body = port, body
        self.stop_at = time.monotonic() + limit_s
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.statuses: dict[int, int] = {}
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        c = Client(self.port, timeout=10)
        try:
            while not self.stopped.is_set() and time.monotonic() < self.stop_at:
                try:
                    r = c.request("POST", "/v2/models/vader/infer", body=self.body,
                                  headers={"Content-Type": "application/json"})
                    status = r.status
                except Exception as e:  # noqa: BLE001 - any transport failure is a failed request
                    with self.lock:
                        self.errors.append(repr(e))
                    continue
                with self.lock:
                    self.statuses[status] = self.statuses.get(status, 0) + 1
        finally:
            c.close()

    def __enter__(self) -> "Load":
        for t in self.threads:
            t.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        for t in self.threads:
            t.join(15)
        assert not any(t.is_alive() for t in self.threads), "a load thread did not stop"

    def __exit__(self, *exc) -> None:
        self.stop()

    def assert_no_failures(self) -> None:
        with self.lock:
            assert not self.errors, self.errors[:5]
            assert set(self.statuses) <= {200}, self.statuses
            assert self.statuses.get(200, 0) > 0, self.statuses


SINGLE = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1],
                                  "data": ["a fine day"]}]})


def own(line: dict) -> bool:
    return "replica" not in line


def scale_up_under_load(up, clients: int, body: str, decided=own):
    """Runs `clients` clients posting `body` until the autoscaler asks for more than one replica
    (a decision `decided` accepts) and replica-1 is ready; no request may fail. Returns that
    decision and the finished load."""
    start = len(up.log_lines())
    with Load(up.port, clients, body, 20) as load:
        decision = up.wait_for("autoscale_decision", timeout=15, start=start,
                               pred=lambda l: decided(l) and l["desired"] > 1)
        up.wait_for("replica_ready", timeout=15, start=start,
                    pred=lambda l: l.get("replica") == "replica-1")
    load.assert_no_failures()
    return decision, load


def test_up_autoscale_by_request_rate_reads_the_replicas_counters(galley):
    """`--target-rps`: the controller turns the replicas' galley_requests_total into the fleet's
    request rate and sizes by it (a replica takes 20 requests per second here); the concurrency is
    only reported. When the load stops, the rate falls and the fleet goes back to the warm pool."""
    up = galley("--autoscale", subcommand="up", flags={**AUTOSCALE_FLAGS, "--target-rps": "20"})
    up.wait_for("replica_ready", pred=lambda l: l.get("replica") == "replica-0")
    idle = up.wait_for("autoscale_decision",
                       pred=lambda l: own(l) and "requestRate" in l["metrics"])
    assert idle["desired"] == 1 and idle["metrics"]["requestRate"] < 20, idle
    busy, load = scale_up_under_load(up, 4, SINGLE)
    # Sized by the rate: more than one replica's 20 req/s, with the rate proposals in the decision.
    assert busy["metrics"]["rate/panic"] > 20, busy
    assert "rate/stable" in busy["metrics"] and "concurrency/stable" in busy["metrics"], busy
    assert busy["reason"] in ("ScaleUp", "TooManyReplicas"), busy
    with load.lock:
        answered = load.statuses.get(200, 0)
    assert answered > 20 * 2, load.statuses  # the clients did send more than 20 per second
    stopped = len(up.log_lines())
    down = up.wait_for("replicas_scaled", timeout=20, start=stopped,
                       pred=lambda l: own(l) and l.get("to") == 1)
    assert down["from"] > 1, down


def test_up_autoscale_scales_up_under_load_and_back_to_the_warm_pool(galley):
    up = galley("--autoscale", subcommand="up", flags=AUTOSCALE_FLAGS)
    up.wait_for("replica_ready", pred=lambda l: l.get("replica") == "replica-0")
    up.wait_for("autoscaler_started", pred=own)
    # Idle: the warm pool of one, and the controller deciding every sync period.
    idle = up.wait_for("autoscale_decision", pred=own)
    assert idle["desired"] == 1 and idle["current"] == 1, idle
    assert {"reason", "panic", "metrics"} <= set(idle), idle

    # A light trickle of single requests runs throughout, scale-down included: none may fail.
    trickle = Load(up.port, 1, SINGLE, 40)
    with trickle:
        up_decision, _ = scale_up_under_load(up, 16, BODY)
        assert up_decision["reason"] in ("ScaleUp", "TooManyReplicas"), up_decision
        assert up_decision["metrics"]["concurrency/panic"] > 2, up_decision
        # The replicas' real /metrics were scraped and parsed.
        assert up_decision["metrics"]["replicasObserved"] >= 1, up_decision
        assert up_decision["metrics"]["replicasMissing"] == 0, up_decision

        # The load stopped: back to the warm pool once the window and the delay have passed.
        stopped = len(up.log_lines())
        down = up.wait_for("replicas_scaled", timeout=20, start=stopped,
                           pred=lambda l: own(l) and l.get("to") == 1)
        assert down["from"] > 1, down
        up.wait_for("replica_exited", timeout=10, start=stopped,
                    pred=lambda l: l.get("replica") not in (None, "replica-0"))
        settled = up.wait_for("autoscale_decision", timeout=5, start=len(up.log_lines()),
                              pred=own)
        assert settled["current"] == 1 and settled["desired"] == 1, settled
    trickle.assert_no_failures()

    decisions = [l for l in up.log_lines() if l.get("event") == "autoscale_decision" and own(l)]
    assert all(1 <= d["desired"] <= 3 for d in decisions), [d["desired"] for d in decisions]
    scaled = [l for l in up.log_lines() if l.get("event") == "replicas_scaled" and own(l)]
    assert all(1 <= l["to"] <= 3 for l in scaled), scaled
    # Replica-0, the warm pool, was never stopped.
    assert not [l for l in up.log_lines()
                if l.get("event") == "replica_stopping" and l.get("replica") == "replica-0"]
