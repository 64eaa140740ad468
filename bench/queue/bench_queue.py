"""The queue path against the HTTP path on one `galley serve`, same model, same machine.

For each repeat (alternating what runs first): a fresh Redis stream is filled with N messages
(the review sentences of bench/serve/texts.txt, as {"text": ...}), then a `galley serve` that
consumes it starts; the queue's throughput is N over the time from its first to its last result
(entry ids are Redis' clock). Then wrk drives POST /inference/analyze on the same server with the
same sentences at c=64. Reported per path: messages (requests) per second, the server's CPU per
message, Redis' CPU per message; then end-to-end latency of the queue under a paced load (result
entry time minus request entry time), peak RSS of the server and of Redis, and with SOAK_SECONDS
the server's RSS over a long paced run. Medians over the repeats; the ratio is per repeat.

Run by bench/queue/run.sh; prints a Markdown report to stdout.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
GALLEY = os.environ.get("GALLEY_BIN", str(ROOT / "build" / "release" / "galley"))
REDIS_BIN = shutil.which("redis-server") or "/usr/bin/redis-server"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
N = int(os.environ.get("MESSAGES", "100000"))
REPEATS = int(os.environ.get("REPEATS", "3"))
DURATION = os.environ.get("DURATION", "10s")
PACED_RATE = float(os.environ.get("PACED_RATE", "2000"))
PACED_SECONDS = float(os.environ.get("PACED_SECONDS", "10"))
SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "0"))
FSYNC = os.environ.get("APPENDFSYNC", "always")
# MODEL: a model of models/ (e.g. sentiment_lstm, where the model's compute bounds both paths);
# empty: the built-in VADER model, the cheapest, where the transport is most of the cost.
MODEL = os.environ.get("MODEL", "")
MODEL_FLAGS = (["--model-repository", str(ROOT / "models"), "--model", MODEL] if MODEL
               else ["--model-repository", ""])
SERVE_FLAGS = [*MODEL_FLAGS, "--grpc-port", "-1", "--max-batch-size", "64",
               "--queue-capacity", "4096", "--queue-max-inflight", os.environ.get("MAX_INFLIGHT", "256"),
               "--drain-delay-ms", "0", "--log-level", "warn"]
TEXTS = [l.strip() for l in (ROOT / "bench" / "serve" / "texts.txt").read_text().splitlines()
         if l.strip() and not l.startswith("#")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_port(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} not listening within 30 s")


class Serve:
    def __init__(self, redis_port: int, stream: str, tmp: Path):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [GALLEY, "serve", "--listen", f"127.0.0.1:{self.port}", *SERVE_FLAGS,
             "--queue-redis", f"127.0.0.1:{redis_port}", "--queue-stream", stream,
             "--queue-consumer", "bench"], stdout=open(tmp / f"serve-{stream}.log", "w"),
            stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc, "galley serve")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


def fill(r: redis.Redis, stream: str, n: int) -> None:
    r.xgroup_create(stream, "galley", id="0", mkstream=True)
    for start in range(0, n, 5000):
        pipe = r.pipeline(transaction=False)
        for i in range(start, min(n, start + 5000)):
            pipe.xadd(stream, {"id": f"m{i}", "body": json.dumps({"text": TEXTS[i % len(TEXTS)]})})
        pipe.execute()


def results_done(r: redis.Redis, stream: str, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while r.xlen(f"{stream}:results") < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {r.xlen(stream + ':results')} of {n} results in {timeout} s")
        time.sleep(0.05)


def span_seconds(r: redis.Redis, stream: str) -> float:
    first = r.xrange(f"{stream}:results", count=1)[0][0]
    last = r.xrevrange(f"{stream}:results", count=1)[0][0]
    ms = lambda i: int(i.split("-")[0])  # noqa: E731
    return max(0.001, (ms(last) - ms(first)) / 1000)


def queue_phase(r, rpid, port, stream, tmp):
    fill(r, stream, N)
    redis_cpu0 = cpu_seconds(rpid)
    srv = Serve(port, stream, tmp)
    cpu0 = cpu_seconds(srv.proc.pid)
    results_done(r, stream, N, 600)
    cpu = cpu_seconds(srv.proc.pid) - cpu0
    redis_cpu = cpu_seconds(rpid) - redis_cpu0
    return srv, {"rate": N / span_seconds(r, stream), "cpu_us": cpu / N * 1e6,
                 "redis_cpu_us": redis_cpu / N * 1e6}


def http_phase(srv: Serve, tmp: Path):
    texts = tmp / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n")
    cpu0 = cpu_seconds(srv.proc.pid)
    out = subprocess.run([WRK, "-t2", "-c64", f"-d{DURATION}", "--latency", "-s",
                          str(ROOT / "bench" / "serve" / "post.lua"),
                          f"http://127.0.0.1:{srv.port}", "--", str(texts)],
                         capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(srv.proc.pid) - cpu0
    m = dict(re.findall(r"(\w+)=([\d.]+)", out.split("RESULT", 1)[1]))
    reqs = float(m["requests"])
    if float(m["errors"]) > 0:
        raise SystemExit(f"wrk saw errors: {out}")
    return {"rate": float(m["rps"]), "cpu_us": cpu / reqs * 1e6, "p50_us": float(m["p50_us"]),
            "p99_us": float(m["p99_us"])}


def paced(r: redis.Redis, stream: str, rate: float, seconds: float, sample=None) -> list[float]:
    """Adds messages at `rate` for `seconds`; returns each one's end-to-end latency in ms."""
    n = int(rate * seconds)
    start = time.monotonic()
    next_sample = start
    for i in range(n):
        r.xadd(stream, {"id": f"p{i}", "body": json.dumps({"text": TEXTS[i % len(TEXTS)]})})
        due = start + (i + 1) / rate
        now = time.monotonic()
        if sample and now >= next_sample:
            sample()
            next_sample = now + 10
        if due > now:
            time.sleep(due - now)
    results_done(r, stream, n, 120)
    lat = []
    for rid, f in r.xrange(f"{stream}:results"):
        lat.append(int(rid.split("-")[0]) - int(f["entry"].split("-")[0]))
    return lat


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    rport = free_port()
    redis_proc = subprocess.Popen(
        [REDIS_BIN, "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "yes", "--appendfsync", FSYNC, "--dir", str(tmp)], stdout=open(tmp / "redis.log", "w"),
        stderr=subprocess.STDOUT)
    wait_port(rport, redis_proc, "redis-server")
    r = redis.Redis(port=rport, decode_responses=True)
    rows, serve_hwm = [], []
    try:
        for rep in range(REPEATS):
            srv, q = queue_phase(r, redis_proc.pid, rport, f"bench{rep}", tmp)
            h = http_phase(srv, tmp)
            serve_hwm.append(rss_mib(srv.proc.pid, "VmHWM"))
            srv.stop()
            rows.append((q, h))
            print(f"repeat {rep + 1}: queue {q['rate']:.0f}/s, HTTP {h['rate']:.0f}/s", file=sys.stderr)
        srv = Serve(rport, "paced", tmp)
        r.xgroup_create("paced", "galley", id="0", mkstream=True) if not r.exists("paced") else None
        lat = paced(r, "paced", PACED_RATE, PACED_SECONDS)
        soak = []
        if SOAK_SECONDS > 0:
            soak_stream = "soak"
            srv.stop()
            srv = Serve(rport, soak_stream, tmp)
            paced(r, soak_stream, PACED_RATE, SOAK_SECONDS,
                  sample=lambda: soak.append(rss_mib(srv.proc.pid)))
        serve_hwm.append(rss_mib(srv.proc.pid, "VmHWM"))
        srv.stop()
        redis_hwm = rss_mib(redis_proc.pid, "VmHWM")
    finally:
        redis_proc.terminate()
        redis_proc.wait(10)
    med = lambda xs: statistics.median(xs)  # noqa: E731
    ratio = [q["rate"] / h["rate"] for q, h in rows]
    print(f"Model: {MODEL or 'vader (built in)'}.")
    print(f"| path | messages or requests/s (median of {REPEATS}) | server CPU per message | Redis CPU per message |")
    print("|---|---|---|---|")
    print(f"| Redis stream (`appendfsync {FSYNC}`), {N:,} queued | {med([q['rate'] for q, _ in rows]):,.0f} | "
          f"{med([q['cpu_us'] for q, _ in rows]):.1f} µs | {med([q['redis_cpu_us'] for q, _ in rows]):.1f} µs |")
    print(f"| HTTP `POST /inference/analyze`, wrk c=64 {DURATION} | {med([h['rate'] for _, h in rows]):,.0f} | "
          f"{med([h['cpu_us'] for _, h in rows]):.1f} µs | – |")
    print()
    print(f"Queue ÷ HTTP throughput per repeat: {', '.join(f'{x:.2f}' for x in ratio)} "
          f"(median {med(ratio):.2f}).")
    print(f"End-to-end latency through the queue at {PACED_RATE:.0f} messages/s for "
          f"{PACED_SECONDS:.0f} s: p50 {pct(lat, 0.5)} ms, p99 {pct(lat, 0.99)} ms, max {max(lat)} ms.")
    print(f"Peak RSS: galley serve {max(serve_hwm):.1f} MiB, redis-server {redis_hwm:.1f} MiB.")
    if soak:
        growth = (soak[-1] - soak[0]) / soak[0] * 100
        print(f"Soak: {SOAK_SECONDS:.0f} s at {PACED_RATE:.0f} messages/s, server RSS sampled every 10 s: "
              f"first {soak[0]:.1f} MiB, median {med(soak):.1f} MiB, last {soak[-1]:.1f} MiB "
              f"({growth:+.1f}%).")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
