"""The life of a `galley serve` process: start-up log sequence, graceful shutdown under load
(SIGTERM and SIGINT), start-up failures and flag/environment handling."""

import http.client
import json
import re
import signal
import socket
import threading
import time

from conftest import LABELS, Client, run_galley

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
TEXTS = ["I love this, it is wonderful!", "This is terrible.", "The book is on the table.",
         "The food was great!", "The service was NOT good :("]


def json_lines(text):
    out = []
    for line in text.splitlines():
        if line.strip():
            out.append(json.loads(line))  # every stdout line must be one JSON object
    return out


# ---------------------------------------------------------------------------------------------
# Start-up


def test_startup_log_sequence(galley):
    s = galley()
    lines = s.log_lines()
    assert not s.bad_lines, s.bad_lines
    events = [l["event"] for l in lines]
    order = ["starting", "listening", "model_loaded", "ready"]
    assert [e for e in events if e in order] == order, events
    for line in lines:
        assert TS.match(line.get("ts", "")), line
        assert line.get("level") in ("debug", "info", "warn", "error"), line
        assert isinstance(line.get("event"), str) and line["event"], line
    by = {l["event"]: l for l in lines}
    assert by["starting"]["level"] == "info"
    assert isinstance(by["starting"]["version"], str)
    config = by["starting"]["config"]
    assert config["host"] == "127.0.0.1" and config["port"] == 0
    assert config["drain_delay_s"] == 0 and config["grace_period_s"] == 5
    assert config["model"] == "vader"
    assert by["listening"]["host"] == "127.0.0.1"
    assert by["listening"]["port"] == s.port > 0
    loaded = by["model_loaded"]
    assert loaded["model"] == "vader" and loaded["version"] == "1"
    assert isinstance(loaded["duration_s"], (int, float)) and loaded["duration_s"] > 0
    # Timestamps do not go backwards.
    stamps = [l["ts"] for l in lines]
    assert stamps == sorted(stamps)
    assert s.get("/v2/health/live").status == 200
    assert s.get("/v2/health/ready").status == 200


def test_debug_log_level_logs_requests(galley):
    s = galley("--log-level", "debug")
    start = len(s.log_lines())
    assert s.get("/v2/models/nope").status == 404
    line = s.wait_for("request", timeout=10, start=start,
                      pred=lambda l: l.get("endpoint") == "model_metadata")
    assert line["level"] == "debug" and line["status"] == 404 and line["model"] == "nope"
    assert line["duration_s"] >= 0


# ---------------------------------------------------------------------------------------------
# Graceful shutdown


def test_graceful_shutdown_under_load(galley):
    drain_s, grace_s = 0.5, 10.0
    s = galley(flags={"--drain-delay-ms": "500", "--grace-period-ms": "10000"})
    threads_n, max_per_thread = 8, 5000
    lock = threading.Lock()
    signalled = threading.Event()   # set just before the signal is sent
    exited = threading.Event()
    enough = threading.Event()
    successes: list[float] = []     # monotonic time of each 200
    failures: list[str] = []
    conn_errors: list[str] = []

    def worker(i):
        c = Client(s.port)
        try:
            for k in range(max_per_thread):
                if exited.is_set():
                    return
                text = TEXTS[(i + k) % len(TEXTS)]
                try:
                    r = c.analyze(text)
                except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError) as e:
                    # http.client.RemoteDisconnected (closed before any response byte) is a
                    # ConnectionResetError. Allowed only once the signal is on its way.
                    with lock:
                        if signalled.is_set():
                            conn_errors.append(f"{type(e).__name__}: {e}")
                        else:
                            failures.append(f"thread {i} before the signal: {type(e).__name__}: {e}")
                    return
                except Exception as e:  # noqa: BLE001 - truncated answers, timeouts, ...
                    with lock:
                        failures.append(f"thread {i}: {type(e).__name__}: {e}")
                    return
                now = time.monotonic()
                try:
                    doc = json.loads(r.body)
                    good = r.status == 200 and doc.get("sentiment") in LABELS
                except ValueError:
                    good = False
                with lock:
                    if good:
                        successes.append(now)
                        if len(successes) >= 100:
                            enough.set()
                    else:
                        failures.append(f"thread {i}: {r}")
                        return
        finally:
            c.close()

    probe = s.client()
    assert probe.get("/v2/health/ready").status == 200
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    try:
        assert enough.wait(30), f"load never got going: {failures}"
        assert not failures, failures
        signalled.set()
        signal_at = time.monotonic()
        s.send_signal(signal.SIGTERM)
        draining = s.wait_for("draining", timeout=5)
        draining_seen_at = time.monotonic()
        ready = probe.get("/v2/health/ready")
        ready_at = time.monotonic()
        rc = s.wait_exit(grace_s + 5)
        exited_at = time.monotonic()
    finally:
        exited.set()
        for t in threads:
            t.join(20)
    assert not any(t.is_alive() for t in threads), "load threads hung"

    assert ready.status == 503, ready
    assert ready.json() == {"ready": False}
    assert ready_at - signal_at < drain_s, "probe came too late to be inside the drain delay"
    assert rc == 0, s.describe()
    assert drain_s * 0.9 <= exited_at - signal_at < grace_s, exited_at - signal_at
    assert draining["signal"] == "SIGTERM" and draining["drain_delay_s"] == drain_s
    stopped = s.wait_for("stopped", timeout=1)
    events = s.events()
    assert events.index("draining") < events.index("stopped")
    assert stopped["level"] == "info", stopped  # every connection closed within the grace period
    assert not failures, failures
    # Requests kept succeeding while the server was draining but not yet closing.
    assert any(t > draining_seen_at for t in successes), "no request served during drain delay"
    assert len(successes) >= 100
    assert s.sanitizer_report() is None, s.sanitizer_report()


def test_sigint_exits_zero(galley):
    s = galley()
    assert s.analyze("I love it").status == 200
    s.send_signal(signal.SIGINT)
    rc = s.wait_exit(10)
    assert rc == 0, s.describe()
    assert s.wait_for("draining", timeout=1)["signal"] == "SIGINT"
    assert s.wait_for("stopped", timeout=1)["level"] == "info"
    # Nothing listens any more.
    try:
        socket.create_connection(("127.0.0.1", s.port), timeout=2).close()
        still_open = True
    except ConnectionRefusedError:
        still_open = False
    assert not still_open


def test_idle_keep_alive_connection_does_not_delay_exit(galley):
    s = galley(flags={"--grace-period-ms": "8000"})
    c = s.client()
    assert c.get("/v2/health/ready").status == 200  # an idle keep-alive connection stays open
    t0 = time.monotonic()
    s.send_signal(signal.SIGTERM)
    assert s.wait_exit(10) == 0
    assert time.monotonic() - t0 < 4.0, "an idle connection held the server until the grace period"
    assert s.wait_for("stopped", timeout=1)["level"] == "info"


def test_grace_period_bounds_exit_with_a_stuck_client(galley):
    # A client that started a request and never finishes it cannot hold the server past the
    # grace period; the server says so in its "stopped" line.
    s = galley(flags={"--grace-period-ms": "1000", "--request-timeout-ms": "30000"})
    stuck = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    try:
        stuck.sendall(b"POST /inference/analyze HTTP/1.1\r\nHost: x\r\n")
        assert s.get("/v2/health/ready").status == 200  # (the partial request has arrived)
        t0 = time.monotonic()
        s.send_signal(signal.SIGTERM)
        assert s.wait_exit(10) == 0
        took = time.monotonic() - t0
    finally:
        stuck.close()
    assert 0.9 <= took < 5.0, took
    stopped = s.wait_for("stopped", timeout=1)
    assert stopped["level"] == "warn" and "grace period" in stopped.get("note", ""), stopped


# ---------------------------------------------------------------------------------------------
# Start-up failures, flags and their environment twins


def test_port_in_use_fails_with_start_failed(tmp_path):
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        p = run_galley(tmp_path, "serve", "--listen", f"127.0.0.1:{port}")
    finally:
        blocker.close()
    assert p.returncode != 0, p
    lines = json_lines(p.stdout)
    failed = [l for l in lines if l["event"] == "start_failed"]
    assert len(failed) == 1, p.stdout
    assert failed[0]["level"] == "error"
    assert str(port) in failed[0]["error"], failed[0]
    assert "ready" not in [l["event"] for l in lines]


def test_bad_host_fails_with_start_failed(tmp_path):
    p = run_galley(tmp_path, "serve", "--listen", "not-an-address:0")
    assert p.returncode != 0, p
    failed = [l for l in json_lines(p.stdout) if l["event"] == "start_failed"]
    assert failed and "not-an-address" in failed[0]["error"], p.stdout


def test_bad_listen_value_exits_2(tmp_path):
    for value in ("nonsense", "127.0.0.1:99999", "127.0.0.1:", "127.0.0.1:http"):
        p = run_galley(tmp_path, "serve", "--listen", value)
        assert p.returncode == 2, (value, p)
        assert "--listen" in p.stderr, (value, p.stderr)
        assert "listening" not in p.stdout


def test_bad_log_level_exits_2(tmp_path):
    p = run_galley(tmp_path, "serve", "--listen", "127.0.0.1:0", "--log-level", "loud")
    assert p.returncode == 2, p
    assert "--log-level" in p.stderr


def test_invalid_flags_fail_with_a_message(tmp_path):
    cases = [("--max-batch-size", "0"), ("--io-threads", "abc"), ("--idle-timeout-ms", "0"),
             ("--grace-period-ms", "-5"), ("--frobnicate", "1")]
    for flag, value in cases:
        p = run_galley(tmp_path, "serve", "--listen", "127.0.0.1:0", flag, value)
        assert p.returncode != 0, (flag, value, p)
        assert flag.lstrip("-") in p.stderr or value in p.stderr, (flag, value, p.stderr)
        assert "listening" not in p.stdout, (flag, value)
    p = run_galley(tmp_path)  # no subcommand
    assert p.returncode != 0 and p.stderr.strip()


def test_version_and_help(tmp_path):
    p = run_galley(tmp_path, "--version")
    assert p.returncode == 0 and p.stdout.strip(), p
    p = run_galley(tmp_path, "serve", "--help")
    assert p.returncode == 0, p
    for flag in ("--listen", "--max-batch-size", "--queue-capacity", "--drain-delay-ms",
                 "GALLEY_LISTEN"):
        assert flag in p.stdout, flag


def test_env_twin_listen(galley):
    s = galley(listen=None, env={"GALLEY_LISTEN": "127.0.0.1:0"})
    assert s.get("/v2/health/ready").status == 200
    assert s.wait_for("listening")["host"] == "127.0.0.1"


def test_flag_beats_env_twin(galley):
    s = galley(env={"GALLEY_LISTEN": "nonsense", "GALLEY_MAX_BATCH_SIZE": "4"},
               flags={"--max-batch-size": "2"})
    assert s.get("/v2/health/ready").status == 200
    assert s.wait_for("starting")["config"]["max_batch_size"] == 2
    r = s.infer(["a", "b", "c"])
    assert r.status == 400 and "maximum of 2" in r.json()["error"], r


def test_env_twin_sets_a_limit(galley):
    s = galley(env={"GALLEY_MAX_BODY_BYTES": "2048", "GALLEY_QUEUE_CAPACITY": "7"})
    config = s.wait_for("starting")["config"]
    assert config["max_body_bytes"] == 2048 and config["queue_capacity"] == 7
    r = s.analyze("a" * 3000)
    assert r.status == 413, r
    assert s.analyze("I love it").status == 200


def test_new_connections_served_during_drain_delay_then_refused(galley):
    # During the drain delay new connections are still accepted (load balancers have not yet
    # noticed); after it, the listening socket is closed.
    s = galley(flags={"--drain-delay-ms": "400"})
    c = s.client()
    assert c.get("/v2/health/ready").status == 200
    start = len(s.log_lines())
    s.send_signal(signal.SIGTERM)
    s.wait_for("draining", timeout=5, start=start)
    fresh = Client(s.port)
    try:
        r = fresh.get("/v2/health/ready")
        assert r.status == 503, r
        r = fresh.analyze("I love it")
        assert r.status == 200, r
    finally:
        fresh.close()
    assert s.wait_exit(10) == 0
    try:
        Client(s.port, timeout=2).get("/livez")
        refused = False
    except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
        refused = True
    assert refused
