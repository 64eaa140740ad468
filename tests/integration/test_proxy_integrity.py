"""Proxy integrity: every answer a client gets through the gateway is the answer to its own
request, byte for byte what a replica answers to the same request, or the fallback's answer to
it, or an error. Many concurrent clients mix keep-alive and close, HTTP/1.0 and 1.1,
`Expect: 100-continue`, chunked and slow bodies, pipelined requests, client aborts mid-body and
binary tensor requests, while one of the replicas is killed, restarted, stopped and continued.

Bounded in `make test` (GALLEY_INTEGRITY_SECONDS, default 6 s of traffic); the soak runs the same
test for longer (bench/gateway/integrity_soak.sh)."""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import struct
import threading
import time
import uuid

from conftest import RawReader, http_request_bytes
from test_gateway import gateway

SECONDS = float(os.environ.get("GALLEY_INTEGRITY_SECONDS", "6"))
CLIENTS = int(os.environ.get("GALLEY_INTEGRITY_CLIENTS", "12"))
WORDS = ("good", "bad", "awful", "lovely", "table", "not", "very", "great", "terrible", "fine",
         "happy", "sad", "the", "service", "was", "!")
MODES = ("keepalive", "close", "http10", "expect", "chunked", "slow", "pipelined", "abort",
         "binary", "analyze")


def infer_doc(rng: random.Random, uid: str) -> dict:
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 8))) + f" {uid[:8]}"
             for _ in range(rng.randint(1, 3))]
    return {"id": uid, "inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)],
                                   "data": texts}]}


def binary_body(doc: dict) -> tuple[bytes, int]:
    """The same request with its text as binary tensor data (Triton's binary extension)."""
    raw = b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in doc["inputs"][0]["data"])
    head = {"id": doc["id"], "inputs": [{"name": "text", "datatype": "BYTES",
                                         "shape": doc["inputs"][0]["shape"],
                                         "parameters": {"binary_data_size": len(raw)}}]}
    h = json.dumps(head).encode()
    return h + raw, len(h)


class Direct:
    """What a replica itself answers: the same bytes sent straight to a replica that no fault
    touches. VADER is deterministic, so its answer is the reference."""

    def __init__(self, port: int):
        self.port = port

    def answer(self, path: str, body: bytes, headers: dict[str, str]) -> bytes:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        try:
            h = dict(headers)
            h["Connection"] = "close"
            s.sendall(http_request_bytes("POST", path, body, h))
            r = RawReader(s).response()
        finally:
            s.close()
        assert r is not None and r.status == 200, r
        return r.body


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = {m: 0 for m in MODES}
        self.fallback = 0
        self.errors: dict[int, int] = {}
        self.transport = 0
        self.mismatches: list[str] = []

    def add(self, mode: str, what: str, detail: str = "", status: int = 0):
        with self.lock:
            if what == "ok":
                self.ok[mode] += 1
            elif what == "fallback":
                self.ok[mode] += 1
                self.fallback += 1
            elif what == "error":
                self.errors[status] = self.errors.get(status, 0) + 1
            elif what == "transport":
                self.transport += 1
            else:
                self.mismatches.append(f"{mode}: {detail}")


def judge(tally: Tally, mode: str, reply, expected: bytes) -> None:
    if reply is None:
        tally.add(mode, "transport")
        return
    if reply.status == 200:
        if reply.body == expected:
            tally.add(mode, "ok")
            return
        if reply.headers.get("x-galley-fallback") == "true":
            # The fallback (VADER too) answers the same request: the same document, marked.
            doc = json.loads(reply.body)
            marked = doc.pop("parameters", {}).get("fallback") is True or doc.pop("fallback", False)
            want = json.loads(expected)
            doc.pop("model", None), want.pop("model", None)
            if marked and doc == want:
                tally.add(mode, "fallback")
                return
        tally.add(mode, "mismatch", f"got {reply.body[:200]!r} want {expected[:200]!r}")
        return
    if reply.status in (429, 502, 503, 504) and b"error" in reply.body:
        tally.add(mode, "error", status=reply.status)
        return
    tally.add(mode, "mismatch", f"status {reply.status} {reply.body[:200]!r}")


def client_loop(seed: int, gw_port: int, direct: Direct, tally: Tally, stop: threading.Event):
    rng = random.Random(seed)
    sock = None
    reader = None

    def fresh():
        nonlocal sock, reader
        if sock is not None:
            sock.close()
        sock = socket.create_connection(("127.0.0.1", gw_port), timeout=15)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = RawReader(sock)

    while not stop.is_set():
        mode = rng.choice(MODES)
        uid = str(uuid.UUID(int=rng.getrandbits(128)))
        doc = infer_doc(rng, uid)
        path, headers = "/v2/models/vader/infer", {"Content-Type": "application/json"}
        body = json.dumps(doc).encode()
        if mode == "analyze":
            path, body = "/inference/analyze", json.dumps({"text": doc["inputs"][0]["data"][0]}).encode()
        if mode == "binary":
            body, header_len = binary_body(doc)
            headers = {"Content-Type": "application/octet-stream",
                       "Inference-Header-Content-Length": str(header_len)}
        expected = direct.answer(path, body, headers)
        try:
            if sock is None or mode in ("close", "http10", "abort") or reader.closed:
                fresh()
            if mode == "abort":
                sock.sendall(http_request_bytes("POST", path, body, headers)[:-max(1, len(body) // 2)])
                sock.close()
                sock = None
                continue
            if mode == "http10":
                wire = http_request_bytes("POST", path, body, headers).replace(b"HTTP/1.1", b"HTTP/1.0", 1)
                sock.sendall(wire)
                judge(tally, mode, reader.response(), expected)
                sock.close()
                sock = None
                continue
            if mode == "close":
                headers = dict(headers, Connection="close")
            if mode == "expect":
                h = dict(headers, Expect="100-continue", **{"Content-Length": str(len(body))})
                sock.sendall(http_request_bytes("POST", path, b"", h))
                interim = reader.response()
                if interim is None or interim.status != 100:
                    tally.add(mode, "mismatch", f"expected 100, got {interim}")
                    sock = None
                    continue
                sock.sendall(body)
            elif mode == "chunked":
                head = (f"POST {path} HTTP/1.1\r\nHost: gateway\r\nTransfer-Encoding: chunked\r\n" +
                        "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
                cut = rng.randint(1, len(body) - 1)
                chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:cut], body[cut:]))
                sock.sendall(head + chunks + b"0\r\n\r\n")
            elif mode == "slow":
                wire = http_request_bytes("POST", path, body, headers)
                for part in (wire[:len(wire) // 3], wire[len(wire) // 3:2 * len(wire) // 3], wire[2 * len(wire) // 3:]):
                    sock.sendall(part)
                    time.sleep(0.005)  # the traffic's shape (a slow client), not a wait for anything
            elif mode == "pipelined":
                doc2 = infer_doc(rng, str(uuid.UUID(int=rng.getrandbits(128))))
                body2 = json.dumps(doc2).encode()
                expected2 = direct.answer(path, body2, headers)
                sock.sendall(http_request_bytes("POST", path, body, headers) +
                             http_request_bytes("POST", path, body2, headers))
                judge(tally, mode, reader.response(), expected)
                judge(tally, mode, reader.response(), expected2)
                continue
            else:
                sock.sendall(http_request_bytes("POST", path, body, headers))
            judge(tally, mode, reader.response(), expected)
            if mode == "close":
                sock.close()
                sock = None
        except (ConnectionResetError, BrokenPipeError, socket.timeout, TimeoutError) as e:
            tally.add(mode, "transport", str(e))
            sock = None
    if sock is not None:
        sock.close()


def test_every_answer_reaches_its_own_client_under_faults(galley):
    steady, victim = galley(), galley()
    victim_port = victim.port
    gw = gateway(galley, steady.port, victim_port, try_timeout_ms=2000, eject_ms=500,
                 health_interval_ms=50)
    direct = Direct(steady.port)
    tally = Tally()
    stop = threading.Event()
    threads = [threading.Thread(target=client_loop, args=(i, gw.port, direct, tally, stop), daemon=True)
               for i in range(CLIENTS)]
    for t in threads:
        t.start()
    faults = []
    rng = random.Random(7)
    end = time.monotonic() + SECONDS
    current = victim
    while time.monotonic() < end:
        fault = rng.choice(("kill", "stop"))
        faults.append(fault)
        if fault == "kill":
            current.proc.send_signal(signal.SIGKILL)
            current.proc.wait(10)
            current = galley(listen=f"127.0.0.1:{victim_port}")  # restarted, waits until ready
        else:
            current.proc.send_signal(signal.SIGSTOP)
            time.sleep(0.3)  # how long the replica stays frozen (the fault), not a wait for anything
            current.proc.send_signal(signal.SIGCONT)
        time.sleep(0.3)  # the time between faults
    stop.set()
    for t in threads:
        t.join(30)
        assert not t.is_alive(), "a client is stuck"
    print(f"integrity: answered {tally.ok} fallback {tally.fallback} errors {tally.errors} "
          f"transport {tally.transport} faults {len(faults)}")
    assert not tally.mismatches, tally.mismatches[:5]
    assert all(tally.ok[m] > 0 for m in MODES if m != "abort"), tally.ok
    assert "kill" in faults or "stop" in faults
    answered = sum(tally.ok.values())
    assert answered > 10 * CLIENTS, (tally.ok, tally.errors, tally.transport)
    # The gateway's own probes and later requests still get their own answers.
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    s.sendall(http_request_bytes("GET", "/v2/health/live"))
    r = RawReader(s).response()
    s.close()
    assert r is not None and json.loads(r.body) == {"live": True}
