"""The autoscaler's Prometheus metrics source against a real Prometheus server (the Debian package's
/usr/bin/prometheus, or $PROMETHEUS_BIN) on a free loopback port, scraping real `galley serve`
replicas run by `galley up`, which keeps Prometheus' targets in a file_sd file
(--prometheus-sd-file). Also the HPA mode of `galley up --autoscale` on real replicas.

Every wait is on a log line, a process exit or an HTTP answer, with a bound; the load itself runs
for a bounded time."""
from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from test_up_autoscale import AUTOSCALE_FLAGS, BODY, Load, own, scale_up_under_load
from conftest import free_port

PROMETHEUS_BIN = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus") or "/usr/bin/prometheus"
SCRAPE_INTERVAL_S = 1.0


class Prometheus:
    """A real Prometheus server: scrape_interval 1s, targets from one file_sd file, storage in the
    test's folder."""

    def __init__(self, tmpdir: Path, sd_file: Path, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.tmpdir = tmpdir
        config = tmpdir / "prometheus.yml"
        # https://prometheus.io/docs/prometheus/latest/configuration/configuration/
        config.write_text(
            "global:\n"
            f"  scrape_interval: {int(SCRAPE_INTERVAL_S * 1000)}ms\n"
            "  scrape_timeout: 900ms\n"
            "scrape_configs:\n"
            "  - job_name: galley\n"
            "    file_sd_configs:\n"
            f"      - files: [{json.dumps(str(sd_file))}]\n"
            "        refresh_interval: 1s\n")
        self.log = open(tmpdir / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS_BIN, f"--config.file={config}", f"--storage.tsdb.path={tmpdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, cwd=tmpdir)

    def describe(self) -> str:
        self.log.flush()
        return (self.tmpdir / "prometheus.log").read_text(errors="replace")[-3000:]

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"prometheus exited\n{self.describe()}"
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"prometheus not ready within {timeout}s\n{self.describe()}")

    def query(self, expr: str, at: float | None = None) -> dict:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as r:
            doc = json.loads(r.read())
        assert doc["status"] == "success", doc
        return doc["data"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


@pytest.fixture
def prometheus(tmp_path):
    if not os.access(PROMETHEUS_BIN, os.X_OK):
        pytest.fail(f"prometheus not found at {PROMETHEUS_BIN!r} (Debian package `prometheus`, or "
                    "set PROMETHEUS_BIN)", pytrace=False)
    started: list[Prometheus] = []

    def start(sd_file: Path, port: int) -> Prometheus:
        d = tmp_path / f"prometheus{len(started)}"
        d.mkdir()
        p = Prometheus(d, sd_file, port)
        started.append(p)
        p.wait_ready()
        return p

    yield start
    for p in started:
        p.stop()


def wall_time(line: dict) -> float:
    return datetime.datetime.fromisoformat(line["ts"].replace("Z", "+00:00")).timestamp()


def replica_ports(up) -> dict[str, int]:
    """replica id -> port, from the replicas' own `listening` lines that `galley up` forwards."""
    return {l["replica"]: l["port"] for l in up.log_lines()
            if l.get("event") == "listening" and "replica" in l}


def sd_targets(path: Path) -> dict[str, str]:
    """replica label -> target address, from the file_sd file."""
    doc = json.loads(path.read_text())
    assert isinstance(doc, list), doc
    out = {}
    for group in doc:
        assert len(group["targets"]) == 1, group
        out[group["labels"]["replica"]] = group["targets"][0]
    return out


def decision(line: dict) -> bool:
    return line.get("event") == "autoscale_decision" and own(line)


def test_prometheus_source_sees_the_replicas_load_and_is_unavailable_without_prometheus(
        galley, prometheus, tmp_path):
    sd_file = tmp_path / "targets.json"
    port = free_port()
    up = galley("--autoscale", subcommand="up", flags={
        **AUTOSCALE_FLAGS, "--min-replicas": "2", "--max-replicas": "2",
        "--metrics-source": "prometheus", "--prometheus-url": f"http://127.0.0.1:{port}",
        "--prometheus-sd-file": str(sd_file)})
    for r in ("replica-0", "replica-1"):
        up.wait_for("replica_ready", pred=lambda l, r=r: l.get("replica") == r)

    # No Prometheus yet: every tick is skipped, the count kept.
    first = up.wait_for("autoscale_decision", pred=own)
    assert first["reason"] == "MetricsUnavailable", first
    assert f"Prometheus at http://127.0.0.1:{port}" in first["observe_error"], first
    assert first["desired"] == first["current"] == 2, first

    # The file_sd file lists exactly the two replicas, at the ports they listen on.
    ports = replica_ports(up)
    up.wait_for("file_sd_written", pred=lambda l: own(l) and len(l["targets"]) == 2)
    assert sd_targets(sd_file) == {r: f"127.0.0.1:{ports[r]}" for r in ("replica-0", "replica-1")}

    prom = prometheus(sd_file, port)
    start = len(up.log_lines())
    seen = up.wait_for("autoscale_decision", timeout=30, start=start,
                       pred=lambda l: decision(l) and l["metrics"].get("replicasObserved") == 2)
    assert seen["metrics"]["replicasMissing"] == 0, seen
    assert "observe_error" not in seen, seen
    # Prometheus' own view: both replicas are up targets of the file_sd job.
    up_series = prom.query('up{job="galley"}')["result"]
    assert sorted(s["metric"]["instance"] for s in up_series) == sorted(
        f"127.0.0.1:{p}" for p in ports.values()), up_series
    assert {s["metric"]["replica"] for s in up_series} == {"replica-0", "replica-1"}

    # Under load, the source reports what Prometheus scraped: the decision's load (running plus
    # queued) is the sum, over the two replicas, of one of each replica's scrapes of
    # galley_model_inflight_requests just before that decision (the gauge already counts the
    # queued requests; the decision splits it into running and queued with galley_queue_length).
    # Queries are evaluated within the source's 1 s timeout of the tick.
    start = len(up.log_lines())
    with Load(up.port, 16, BODY, 25) as load:
        busy = up.wait_for(
            "autoscale_decision", timeout=20, start=start,
            pred=lambda l: decision(l) and l["metrics"].get("replicasObserved") == 2
            and l["metrics"]["inflight"] + l["metrics"]["queued"] > 0)
    load.assert_no_failures()
    total = busy["metrics"]["inflight"] + busy["metrics"]["queued"]
    t = wall_time(busy)
    window = f"{int(SCRAPE_INTERVAL_S * 30)}s"
    lo, hi = t - 1.25 - 2 * SCRAPE_INTERVAL_S, t + 0.05
    per_scrape: dict[str, dict[float, float]] = {}
    matrix = prom.query(f'galley_model_inflight_requests{{job="galley"}}[{window}]', at=t + 1)
    assert matrix["resultType"] == "matrix", matrix
    for series in matrix["result"]:
        scrapes = per_scrape.setdefault(series["metric"]["instance"], {})
        for ts, v in series["values"]:
            if ts <= hi:
                scrapes[ts] = scrapes.get(ts, 0.0) + float(v)
    # An instant query answers with each series' newest sample at or before its evaluation time,
    # so the candidates are the scrapes in [lo, hi] and the newest one before lo (a scrape that
    # came late on a busy machine is still the newest the query could see).
    candidates = {}
    for inst, scrapes in per_scrape.items():
        times = sorted(scrapes)
        before = [ts for ts in times if ts < lo]
        chosen = [ts for ts in times if ts >= lo] + before[-1:]
        candidates[inst] = {scrapes[ts] for ts in chosen}
    assert len(candidates) == 2 and all(candidates.values()), (candidates, busy)
    a, b = candidates.values()
    sums = {x + y for x in a for y in b}
    assert total in sums, (total, candidates, busy)
    # Only what Prometheus scraped went in: a replica's load is a whole number of requests.
    assert total == int(total), busy

    # Prometheus goes away: Unavailable for the whole observation, every tick skipped, nothing
    # scaled, and the replicas keep serving.
    prom.stop()
    stopped = len(up.log_lines())
    up.wait_for("autoscale_decision", timeout=10, start=stopped,
                pred=lambda l: decision(l) and l["reason"] == "MetricsUnavailable")
    mark = len(up.log_lines())
    for _ in range(5):
        up.wait_for("autoscale_decision", timeout=10, start=len(up.log_lines()), pred=own)
    after = [l for l in up.log_lines()[mark:] if decision(l)]
    assert len(after) >= 5, after
    for d in after:
        assert d["reason"] == "MetricsUnavailable", d
        assert d["desired"] == d["current"] == 2, d
        assert "observe_error" in d, d
    assert not [l for l in up.log_lines()[stopped:]
                if l.get("event") == "replicas_scaled" and own(l)]
    assert up.infer(["still served"]).status == 200


def test_up_with_prometheus_scales_up_under_load_and_follows_the_new_replica(
        galley, prometheus, tmp_path):
    sd_file = tmp_path / "targets.json"
    port = free_port()
    up = galley("--autoscale", subcommand="up", flags={
        **AUTOSCALE_FLAGS, "--metrics-source": "prometheus",
        "--prometheus-url": f"http://127.0.0.1:{port}", "--prometheus-sd-file": str(sd_file)})
    up.wait_for("replica_ready", pred=lambda l: l.get("replica") == "replica-0")
    started = up.wait_for("autoscaler_started", pred=own)
    assert started["metrics_source"] == "prometheus" and started["mode"] == "galley", started
    prometheus(sd_file, port)
    up.wait_for("autoscale_decision", timeout=30, start=len(up.log_lines()),
                pred=lambda l: decision(l) and l["metrics"].get("replicasObserved") == 1)

    start = len(up.log_lines())
    with Load(up.port, 16, BODY, 25) as load:
        scale_up = up.wait_for("autoscale_decision", timeout=20, start=start,
                               pred=lambda l: decision(l) and l["desired"] > 1)
        up.wait_for("replica_ready", timeout=15, start=start,
                    pred=lambda l: l.get("replica") == "replica-1")
        # The new replica reaches Prometheus through the file_sd file, and the source sees it.
        up.wait_for("file_sd_written", timeout=10, start=start,
                    pred=lambda l: own(l) and len(l["targets"]) >= 2)
        both = up.wait_for("autoscale_decision", timeout=20, start=start,
                           pred=lambda l: decision(l) and l["metrics"].get("replicasObserved", 0) >= 2)
    load.assert_no_failures()
    assert scale_up["reason"] in ("ScaleUp", "TooManyReplicas"), scale_up
    assert scale_up["metrics"]["concurrency/panic"] > 2, scale_up
    assert scale_up["metrics"]["replicasObserved"] == 1, scale_up
    assert both["metrics"]["replicasMissing"] == 0 or both["current"] > 2, both
    targets = sd_targets(sd_file)
    ports = replica_ports(up)
    assert targets.get("replica-1") == f"127.0.0.1:{ports['replica-1']}", targets

    # Back to the warm pool once the window and the delay have passed; the file follows.
    stopped = len(up.log_lines())
    up.wait_for("replicas_scaled", timeout=30, start=stopped,
                pred=lambda l: own(l) and l.get("to") == 1)
    up.wait_for("file_sd_written", timeout=15, start=stopped,
                pred=lambda l: own(l) and len(l["targets"]) == 1)
    assert list(sd_targets(sd_file)) == ["replica-0"]
    # A replica Prometheus has not scraped (yet) is named in the decision with the reason.
    for d in (l for l in up.log_lines() if decision(l) and l["metrics"].get("replicasMissing")):
        assert len(d["missing"]) == d["metrics"]["replicasMissing"], d
        assert all(isinstance(v, str) and v for v in d["missing"].values()), d


def test_up_autoscale_hpa_mode_scales_on_the_inflight_pods_metric(galley):
    up = galley("--autoscale", subcommand="up", flags={
        **AUTOSCALE_FLAGS, "--autoscale-mode": "hpa", "--hpa-metric": "inflight",
        "--hpa-target": "2"})
    up.wait_for("replica_ready", pred=lambda l: l.get("replica") == "replica-0")
    started = up.wait_for("autoscaler_started", pred=own)
    assert started["mode"] == "hpa" and started["metrics_source"] == "scrape", started
    idle = up.wait_for("autoscale_decision", pred=own)
    assert idle["desired"] == 1, idle
    assert "pods/galley_model_inflight_requests" in idle["metrics"], idle

    scale_up, _ = scale_up_under_load(up, 16, BODY, decided=decision)
    # The HPA's reasons (hpa.cc), not the inference policy's; the metric's average was above 2.
    assert scale_up["reason"] in ("DesiredWithinRange", "ScaleUpLimit", "TooManyReplicas"), scale_up
    assert scale_up["metrics"]["pods/galley_model_inflight_requests"] > 2, scale_up
    assert "concurrency/stable" not in scale_up["metrics"], scale_up

    # Idle again: the downscale stabilization window (--scale-down-delay-ms 2000) holds the count,
    # then the HPA scales down to min.
    stopped = len(up.log_lines())
    down = up.wait_for("replicas_scaled", timeout=30, start=stopped,
                       pred=lambda l: own(l) and l.get("to") == 1)
    # (The legacy rules name a held count TooManyReplicas while the window's highest
    # recommendation is above max, else ScaleDownStabilized.)
    metric = "pods/galley_model_inflight_requests"
    idle = [l for l in up.log_lines()[stopped:]
            if decision(l) and l["metrics"].get(metric) == 0 and wall_time(l) <= wall_time(down)]
    assert idle, "no idle decision before the scale-down"
    assert all(l["desired"] > 1 for l in idle[:3]), idle[:3]
    assert wall_time(down) - wall_time(idle[0]) >= 1.5, (idle[0], down)
    assert down["from"] > 1, down


def test_up_refuses_inconsistent_metrics_flags(galley):
    cases = [
        ({"--metrics-source": "prometheus"}, "needs --prometheus-url"),
        ({"--metrics-source": "prometheus", "--prometheus-url": "https://127.0.0.1:9090"},
         "https is not supported"),
        ({"--metrics-source": "prometheus", "--prometheus-url": "http://prometheus:9090"},
         "IP address"),
        ({"--autoscale-mode": "hpa"}, "needs --hpa-target"),
        ({"--metrics-source": "influx"}, "influx"),
    ]
    for flags, message in cases:
        up = galley("--autoscale", subcommand="up", flags=flags, wait_ready=False)
        rc = up.wait_exit()
        assert rc != 0, (flags, up.describe())
        assert message in up.stderr, (flags, up.stderr)
