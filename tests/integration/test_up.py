"""`galley up`: the gateway plus a supervisor running real `galley serve` replicas as child
processes. From a clean start to a first answer, a replica killed with SIGKILL is restarted and
traffic returns to it, and SIGTERM ends everything with no child left behind."""
from __future__ import annotations

import os
import signal
import time

from conftest import LABELS

UP_FLAGS = {
    "--replicas": "2",
    "--health-interval-ms": "100",
    "--replica-drain-delay-ms": "0",
    "--restart-initial-ms": "100",
}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone once its parent has reaped it.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def replica_pids(up) -> dict[str, int]:
    pids = {}
    for l in up.log_lines():
        if l.get("event") == "replica_starting" and "pid" in l:
            pids[f"{l['replica']}#{l['pid']}"] = l["pid"]
    return pids


def test_up_serves_restarts_and_stops_cleanly(galley):
    up = galley(subcommand="up", flags=UP_FLAGS)
    # `ready` means a replica serves: the very first request is answered by one, not by the
    # fallback, and readiness says so.
    ready = [l for l in up.log_lines() if l.get("event") == "ready" and "replica" not in l][-1]
    assert ready["state"] == "serving" and ready["replicas_ready"] >= 1, ready
    c = up.client()
    r = c.analyze("What a lovely day")
    assert r.status == 200 and r.json()["sentiment"] in LABELS
    assert r.headers.get("x-galley-replica") and r.headers.get("x-galley-fallback") is None, r
    assert c.get("/v2/health/ready").json()["state"] == "serving"
    # Both replicas come up ready behind the gateway.
    up.wait_for("replica_ready", pred=lambda l: l.get("replica") == "replica-0")
    up.wait_for("replica_ready", pred=lambda l: l.get("replica") == "replica-1")

    # SIGKILL one replica: the supervisor restarts it, and the gateway routes to it again.
    first = up.wait_for("replica_starting", pred=lambda l: l.get("replica") == "replica-0")
    os.kill(first["pid"], signal.SIGKILL)
    exited = up.wait_for("replica_exited", pred=lambda l: l.get("replica") == "replica-0")
    assert "signal 9" in exited.get("status", "") or "killed" in exited.get("status", "").lower(), exited
    start = len(up.log_lines())
    up.wait_for("replica_ready", timeout=20, start=start, pred=lambda l: l.get("replica") == "replica-0")
    seen, sent, give_up = set(), 0, time.monotonic() + 15
    while len(seen) < 2 and sent < 2000 and time.monotonic() < give_up:
        r = c.analyze("Back to normal, good")
        sent += 1
        assert r.status == 200, r
        if r.headers.get("x-galley-replica"):
            seen.add(r.headers["x-galley-replica"])
    assert seen == {"replica-0", "replica-1"}, (seen, sent)

    # SIGTERM: a clean exit and every child that was ever started is gone.
    pids = replica_pids(up)
    assert len(pids) >= 3
    up.send_signal(signal.SIGTERM)
    assert up.wait_exit(20) == 0, up.describe()
    assert not [p for p in pids.values() if alive(p)], pids
    events = up.events()
    assert "stopped" in events


def test_up_sigkill_leaves_no_orphans(galley):
    up = galley(subcommand="up", flags=UP_FLAGS)
    up.wait_for("replica_ready", pred=lambda l: l.get("replica") == "replica-1")
    pids = list(replica_pids(up).values())
    assert len(pids) == 2
    up.proc.send_signal(signal.SIGKILL)
    up.proc.wait(5)
    # The replicas get SIGTERM from the kernel (parent-death signal) and exit on their own.
    give_up = time.monotonic() + 15
    while any(alive(p) for p in pids) and time.monotonic() < give_up:
        time.sleep(0.05)  # polling process state: there is no event to wait on for a non-child
    assert not [p for p in pids if alive(p)]
