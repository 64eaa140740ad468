"""Shared machinery for Galley's integration tests.

`GalleyServer` runs the real `galley serve` on 127.0.0.1 port 0 as a subprocess, reads its JSON log
lines from stdout on a background thread, takes the port from the `listening` line and waits for
`ready`. Every wait is on an event (a log line, a process exit, a socket) with a timeout; there
are no sleeps used for synchronisation.

The binary comes from $GALLEY_BIN (CI points it at the release and the ASan+UBSan builds), else
<repo>/build/release/galley.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import re
import signal as signal_module
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import pytest

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / "build" / "release" / "galley"

# Generous upper bounds: waits return as soon as their event happens, so these only matter when
# something is broken (or on a slow sanitizer build).
STARTUP_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 20.0
HTTP_TIMEOUT_S = 10.0

# Flags every test server gets unless the test overrides them: shut down at once on SIGTERM.
DEFAULT_FLAGS = {"--drain-delay-ms": "0", "--grace-period-ms": "5000"}
# `galley up --autoscale --scale-to-zero` on a queue, fast enough for a test: the fleet at zero
# wakes on a burst, grows to at most three replicas and goes back to zero soon after the work.
QUEUE_SCALE_FROM_ZERO_FLAGS = {
    "--min-replicas": "0", "--max-replicas": "3", "--target-concurrency": "50",
    "--sync-period-ms": "300", "--stable-window-ms": "1500", "--scale-down-delay-ms": "500",
    "--scale-to-zero-grace-ms": "500", "--model-load-time-ms": "1000",
    "--health-interval-ms": "100", "--replica-drain-delay-ms": "100"}

MODELS = REPO / "models"              # the shipped model repository
TEST_DATA = REPO / "tests" / "data"

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "ERROR: ThreadSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")

LABELS = ("Positive", "Negative", "Neutral")


def galley_bin() -> str:
    path = os.environ.get("GALLEY_BIN") or str(DEFAULT_BIN)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"galley binary not found or not executable: {path!r}. Build it with "
            "`cmake --preset release && cmake --build --preset release`, or point GALLEY_BIN at a "
            "build of `galley`.",
            pytrace=False)
    return path


def clean_env(tmpdir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without GALLEY_* twins (so CI settings cannot leak into a
    test), with TMPDIR pointing at the test's own folder, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GALLEY_")}
    env["TMPDIR"] = str(tmpdir)
    env.update(extra or {})
    return env


# ---------------------------------------------------------------------------------------------
# HTTP helpers


@dataclasses.dataclass
class Reply:
    status: int
    reason: str
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise AssertionError(f"status {self.status}: body is not JSON: {self.body[:300]!r}") from e

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.headers}, {self.body[:300]!r})"


def assert_json_error(reply: Reply, status: int, *words: str) -> str:
    """Asserts an error answer: `status`, a JSON content type and {"error": "..."} whose message
    contains every one of `words` (case-insensitive). Returns the message."""
    assert reply.status == status, reply
    assert reply.headers.get("content-type", "").startswith("application/json"), reply
    doc = reply.json()
    assert isinstance(doc, dict) and isinstance(doc.get("error"), str), reply
    message = doc["error"]
    assert message.strip(), reply
    for w in words:
        assert w.lower() in message.lower(), f"{w!r} not in error message {message!r}"
    return message


class Client:
    """One keep-alive HTTP/1.1 connection (http.client reconnects if the server closed it)."""

    def __init__(self, port: int, timeout: float = HTTP_TIMEOUT_S):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: dict[str, str] | None = None, json_body: Any = None) -> Reply:
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body)
            headers.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read()
        return Reply(resp.status, resp.reason, {k.lower(): v for k, v in resp.getheaders()}, data)

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def analyze(self, text: Any, headers: dict[str, str] | None = None) -> Reply:
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.request("POST", "/inference/analyze", body=json.dumps({"text": text}), headers=h)

    def infer(self, texts: list[Any] | None = None, model: str = "vader", doc: Any = None,
              headers: dict[str, str] | None = None, version: str | None = None) -> Reply:
        if doc is None:
            doc = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)],
                               "data": texts}]}
        path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.request("POST", path, body=json.dumps(doc), headers=h)

    def metrics(self) -> "Metrics":
        r = self.get("/metrics")
        assert r.status == 200, r
        assert r.headers.get("content-type", "").startswith("text/plain"), r
        return Metrics(r.body.decode("utf-8"))

    def close(self) -> None:
        self.conn.close()


# Raw sockets, for what http.client hides: pipelining, partial requests, connection closes.

def run_galley(tmp_path, *args, env=None, timeout=30):
    """Runs `galley args...` to completion (for commands that must exit by themselves)."""
    return subprocess.run([galley_bin(), *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, env=clean_env(tmp_path, env), cwd=tmp_path, timeout=timeout)


def free_port() -> int:
    """A port free on 127.0.0.1 now (the OS's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw_connect(port: int, timeout: float = HTTP_TIMEOUT_S) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def http_request_bytes(method: str, path: str, body: bytes = b"",
                       headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    h = dict(headers or {})
    if body or method in ("POST", "PUT"):
        h.setdefault("Content-Length", str(len(body)))
    lines += [f"{k}: {v}" for k, v in h.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class RawReader:
    """Reads HTTP/1.1 responses (Content-Length framed) off a raw socket."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""
        self.closed = False  # the peer closed (or reset) the connection

    def _fill(self) -> bool:
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.buf += chunk
        return True

    def response(self) -> Reply | None:
        """The next response, or None if the connection closed before any byte of one."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                if self.buf:
                    raise AssertionError(f"connection closed inside a response head: {self.buf!r}")
                return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3}) ?(.*)", lines[0])
        assert m, f"bad status line {lines[0]!r}"
        headers: dict[str, str] = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        status = int(m.group(1))
        length = int(headers.get("content-length", "0")) if status >= 200 else 0
        while len(self.buf) < length:
            if not self._fill():
                raise AssertionError(f"body truncated: {len(self.buf)} of {length} bytes")
        body, self.buf = self.buf[:length], self.buf[length:]
        return Reply(status, m.group(2), headers, body)

    def wait_closed(self) -> bytes:
        """Reads until the peer closes; returns whatever arrived meanwhile."""
        extra = b""
        while self._fill():
            extra += self.buf
            self.buf = b""
        return extra


class ScriptedUpstream:
    """A replica on a plain socket: answers GET (the ready probe) with 200 and each POST with
    `answer(request_head, body)` bytes, written as they are (so a test can put interim answers
    before the final one, or extra bytes after it). Keeps every request head it saw."""

    def __init__(self, answer):
        self.answer = answer
        self.heads: list[str] = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            t.start()

    def _serve(self, c: socket.socket):
        buf = b""
        c.settimeout(5)
        try:
            while not self.stop.is_set():
                while b"\r\n\r\n" not in buf:
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, buf = buf.split(b"\r\n\r\n", 1)
                text = head.decode("latin-1")
                length = 0
                for line in text.split("\r\n")[1:]:
                    k, _, v = line.partition(":")
                    if k.strip().lower() == "content-length":
                        length = int(v.strip())
                while len(buf) < length:
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                body, buf = buf[:length], buf[length:]
                if text.startswith("GET "):
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              b"Content-Length: 14\r\n\r\n{\"ready\":true}")
                    continue
                with self.lock:
                    self.heads.append(text)
                c.sendall(self.answer(text, body))
        except OSError:
            return
        finally:
            c.close()

    def close(self):
        self.stop.set()
        self.threads[0].join(5)
        self.sock.close()


# ---------------------------------------------------------------------------------------------
# Prometheus text exposition


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


class Metrics:
    def __init__(self, text: str):
        self.text = text
        self.types: dict[str, str] = {}
        self.samples: list[tuple[str, dict[str, str], float]] = []
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(None, 3)
                self.types[name] = kind.strip()
                continue
            if line.startswith("#"):
                continue
            m = _SAMPLE.match(line)
            assert m, f"unparsable exposition line {line!r}"
            labels = {k: v for k, v in _LABEL.findall(m.group(3) or "")}
            self.samples.append((m.group(1), labels, float(m.group(4))))

    def find(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        return [(l, v) for n, l, v in self.samples
                if n == name and all(l.get(k) == want for k, want in labels.items())]

    def value(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` whose labels include `labels`; 0 when there are none."""
        return sum(v for _, v in self.find(name, **labels))


# ---------------------------------------------------------------------------------------------
# The server process


class GalleyServer:
    """`galley serve` as a subprocess. Use as a context manager, or via the `galley` fixture."""

    def __init__(self, tmpdir: Path, args: Iterable[str] = (), flags: dict[str, str] | None = None,
                 env: dict[str, str] | None = None, listen: str | None = "127.0.0.1:0",
                 subcommand: str = "serve"):
        self.binary = galley_bin()
        self.tmpdir = Path(tmpdir)
        merged = dict(DEFAULT_FLAGS)
        if subcommand == "serve":
            # The HTTP and lifecycle suites run against the built-in VADER model ("vader");
            # the model repository suites name a repository explicitly.
            merged["--model-repository"] = ""
            # gRPC off unless a test asks for it (flags={"--grpc-port": "0"}): servers run side
            # by side, and the lifecycle suite expects a single `listening` line.
            merged["--grpc-port"] = "-1"
        merged.update(flags or {})
        self.cmd = [self.binary, subcommand]
        if listen is not None:
            self.cmd += ["--listen", listen]
        for k, v in merged.items():
            self.cmd += [k, str(v)]
        self.cmd += list(args)
        self.env = clean_env(self.tmpdir, env)
        self.proc: subprocess.Popen | None = None
        self.lines: list[dict] = []        # parsed stdout lines, in order
        self.bad_lines: list[str] = []     # stdout lines that were not JSON objects
        self.stderr_chunks: list[str] = []
        self._cv = threading.Condition()
        self._stdout_eof = False
        self._readers: list[threading.Thread] = []
        self._clients: list[Client] = []
        self._default: Client | None = None
        self.port: int | None = None
        self.grpc_port: int | None = None  # from the gRPC `listening` line, when gRPC is on

    # -- process control --

    def start(self, wait_ready: bool = True) -> "GalleyServer":
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=self.env, cwd=self.tmpdir)
        self._readers = [threading.Thread(target=self._read_stdout, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for t in self._readers:
            t.start()
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        # `galley up` forwards its replicas' lines (they carry a "replica" field): skip those.
        own = lambda l: "replica" not in l  # noqa: E731
        http = lambda l: own(l) and l.get("protocol", "http") == "http"  # noqa: E731
        listening = self.wait_for("listening", timeout, pred=http)
        assert isinstance(listening.get("port"), int) and listening["port"] > 0, listening
        self.port = listening["port"]
        self.wait_for("ready", timeout, pred=own)
        grpc = [l for l in self.log_lines()
                if l.get("event") == "listening" and l.get("protocol") == "grpc" and own(l)]
        self.grpc_port = grpc[0]["port"] if grpc else None

    def _read_stdout(self) -> None:
        assert self.proc and self.proc.stdout
        for raw in iter(self.proc.stdout.readline, b""):
            text = raw.decode("utf-8", "replace").rstrip("\n")
            try:
                doc = json.loads(text)
            except ValueError:
                doc = None
            with self._cv:
                if isinstance(doc, dict):
                    self.lines.append(doc)
                else:
                    self.bad_lines.append(text)
                self._cv.notify_all()
        with self._cv:
            self._stdout_eof = True
            self._cv.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc and self.proc.stderr
        for raw in iter(self.proc.stderr.readline, b""):
            with self._cv:
                self.stderr_chunks.append(raw.decode("utf-8", "replace"))

    @property
    def stderr(self) -> str:
        with self._cv:
            return "".join(self.stderr_chunks)

    def describe(self) -> str:
        with self._cv:
            lines = [json.dumps(l) for l in self.lines] + [f"(not JSON) {b}" for b in self.bad_lines]
        rc = self.proc.poll() if self.proc else None
        return (f"command: {' '.join(self.cmd)}\nexit code: {rc}\nstdout:\n  " +
                "\n  ".join(lines[-60:]) + f"\nstderr:\n{self.stderr[-4000:]}")

    def wait_for(self, event: str, timeout: float = STARTUP_TIMEOUT_S,
                 pred: Callable[[dict], bool] | None = None, start: int = 0) -> dict:
        """Waits for a log line with this event (and matching `pred`), at index >= `start`."""
        deadline = time.monotonic() + timeout

        def found() -> dict | None:
            for line in self.lines[start:]:
                if line.get("event") == event and (pred is None or pred(line)):
                    return line
            return None

        with self._cv:
            while True:
                hit = found()
                if hit is not None:
                    return hit
                left = deadline - time.monotonic()
                if self._stdout_eof or left <= 0:
                    break
                self._cv.wait(left)
        raise AssertionError(f"no {event!r} log line within {timeout}s\n{self.describe()}")

    def events(self) -> list[str]:
        with self._cv:
            return [l.get("event") for l in self.lines]

    def log_lines(self) -> list[dict]:
        with self._cv:
            return list(self.lines)

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = EXIT_TIMEOUT_S) -> int:
        assert self.proc is not None
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"galley did not exit within {timeout}s\n{self.describe()}")
        for t in self._readers:
            t.join(5)
        return rc

    def sanitizer_report(self) -> str | None:
        err = self.stderr
        for marker in SANITIZER_MARKERS:
            if marker in err:
                return err[err.index(marker):][:4000]
        return None

    def stop(self) -> list[str]:
        """Ends the process: SIGTERM and a bounded wait, then SIGKILL. Returns the problems seen
        (sanitizer reports, a non-zero exit, a hang)."""
        problems: list[str] = []
        for c in self._clients:
            c.close()
        if self.proc is None:
            return problems
        if self.proc.poll() is None:
            self.proc.send_signal(signal_module.SIGTERM)
            try:
                rc = self.proc.wait(EXIT_TIMEOUT_S)
                if rc != 0:
                    problems.append(f"exit code {rc} after SIGTERM")
            except subprocess.TimeoutExpired:
                problems.append(f"no exit within {EXIT_TIMEOUT_S}s of SIGTERM; killed")
                self.proc.kill()
                self.proc.wait(10)
        for t in self._readers:
            t.join(5)
        for s in (self.proc.stdout, self.proc.stderr):
            if s:
                s.close()
        report = self.sanitizer_report()
        if report:
            problems.append("sanitizer report:\n" + report)
        return problems

    def __enter__(self) -> "GalleyServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        problems = self.stop()
        if problems and exc[0] is None:
            pytest.fail("galley at teardown: " + "; ".join(problems) + "\n" + self.describe(),
                        pytrace=False)

    # -- HTTP --

    def client(self, timeout: float = HTTP_TIMEOUT_S) -> Client:
        assert self.port, "server has no port yet"
        c = Client(self.port, timeout)
        self._clients.append(c)
        return c

    @property
    def http(self) -> Client:
        if self._default is None:
            self._default = self.client()
        return self._default

    def request(self, *a, **kw) -> Reply:
        return self.http.request(*a, **kw)

    def get(self, path: str, **kw) -> Reply:
        return self.http.get(path, **kw)

    def analyze(self, *a, **kw) -> Reply:
        return self.http.analyze(*a, **kw)

    def infer(self, *a, **kw) -> Reply:
        return self.http.infer(*a, **kw)

    def metrics(self) -> Metrics:
        return self.http.metrics()


@pytest.fixture
def galley(tmp_path):
    """Starts servers: `galley(args..., flags={...}, env={...}, listen=..., wait_ready=True)`.
    Every server started is stopped (SIGTERM, then SIGKILL) at teardown."""
    started: list[GalleyServer] = []

    def start(*args: str, flags: dict[str, str] | None = None, env: dict[str, str] | None = None,
              listen: str | None = "127.0.0.1:0", wait_ready: bool = True,
              subcommand: str = "serve") -> GalleyServer:
        d = tmp_path / f"server{len(started)}"
        d.mkdir()
        srv = GalleyServer(d, args, flags=flags, env=env, listen=listen, subcommand=subcommand)
        started.append(srv)
        return srv.start(wait_ready=wait_ready)

    yield start
    problems = []
    for srv in started:
        for p in srv.stop():
            problems.append(f"{p}\n{srv.describe()}")
    if problems:
        pytest.fail("galley at teardown: " + "\n".join(problems), pytrace=False)
