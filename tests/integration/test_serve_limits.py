"""Limits a public endpoint needs: body and header size, open connections, idle keep-alive,
slow clients, bounded queues under overload, and request deadlines."""

import json
import threading
import time

import pytest

from conftest import (LABELS, Client, RawReader, assert_json_error, http_request_bytes,
                      raw_connect)

POSITIVE = "I love this, it is wonderful!"


def analyze_bytes(text: str, extra_headers=None) -> bytes:
    h = {"Content-Type": "application/json"}
    h.update(extra_headers or {})
    return http_request_bytes("POST", "/inference/analyze", json.dumps({"text": text}).encode(), h)


# ---------------------------------------------------------------------------------------------
# Sizes


def test_body_limit(galley):
    s = galley(flags={"--max-body-bytes": "1024"})
    # Exactly at the limit is fine: {"text":"aaa..."} of 1024 bytes.
    body = b'{"text":"' + b"a" * (1024 - 11) + b'"}'
    assert len(body) == 1024
    ok = s.request("POST", "/inference/analyze", body=body,
                   headers={"Content-Type": "application/json"})
    assert ok.status == 200, ok
    # One byte over: 413 with a JSON error, and the connection is closed.
    sock = raw_connect(s.port)
    try:
        over = b'{"text":"' + b"a" * (1025 - 11) + b'"}'
        sock.sendall(http_request_bytes("POST", "/inference/analyze", over,
                                        {"Content-Type": "application/json"}))
        rd = RawReader(sock)
        r = rd.response()
        assert r is not None
        assert_json_error(r, 413, "1024")
        assert r.headers.get("connection", "").lower() == "close"
        rd.wait_closed()
        assert rd.closed
    finally:
        sock.close()
    # The same on the OIP endpoint, and a chunked body that grows past the limit.
    r = s.infer(["x" * 2000])
    assert_json_error(r, 413)
    sock = raw_connect(s.port)
    try:
        chunk = b"a" * 600
        sock.sendall(b"POST /inference/analyze HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
                     (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * 2 + b"0\r\n\r\n")
        r = RawReader(sock).response()
        assert r is not None
        assert_json_error(r, 413)
    finally:
        sock.close()
    assert s.get("/v2/health/ready").status == 200


def test_header_limit(galley):
    s = galley(flags={"--max-header-bytes": "1024"})
    ok = s.get("/v2/health/live", headers={"X-Pad": "a" * 500})
    assert ok.status == 200, ok
    sock = raw_connect(s.port)
    try:
        sock.sendall(http_request_bytes("GET", "/v2/health/live", headers={"X-Pad": "a" * 2000}))
        rd = RawReader(sock)
        r = rd.response()
        assert r is not None
        assert_json_error(r, 431, "1024")
        rd.wait_closed()
        assert rd.closed
    finally:
        sock.close()
    # Many small headers add up too.
    sock = raw_connect(s.port)
    try:
        sock.sendall(http_request_bytes("GET", "/v2/health/live",
                                        headers={f"X-H{i}": "b" * 40 for i in range(40)}))
        r = RawReader(sock).response()
        assert r is not None
        assert_json_error(r, 431)
    finally:
        sock.close()
    assert s.get("/v2/health/live").status == 200


# ---------------------------------------------------------------------------------------------
# Connections


def test_max_connections_makes_room_by_closing_the_longest_idle(galley):
    s = galley(flags={"--max-connections": "3"})
    held = []
    try:
        # Three silent connections (as a client that opens many and sends nothing) fill the cap.
        for _ in range(3):
            held.append(raw_connect(s.port))
        # The server has registered them once it has accepted them; a request on a fourth, served,
        # shows both that a newcomer gets in and that one silent connection made room.
        for i in range(5):
            sock = raw_connect(s.port)
            held.append(sock)
            sock.sendall(http_request_bytes("GET", "/v2/health/live"))
            r = RawReader(sock).response()
            assert r is not None and r.status == 200, (i, r)
        # The first silent ones were closed, oldest first; the newest stays usable.
        for sock in held[:3]:
            rd = RawReader(sock)
            assert rd.wait_closed() == b"" and rd.closed
        sock = held[-1]
        sock.sendall(http_request_bytes("GET", "/v2/health/live"))
        r = RawReader(sock).response()
        assert r is not None and r.status == 200, r
        assert s.metrics().value("galley_http_connections_evicted_total") >= 5
    finally:
        for sock in held:
            sock.close()


def test_connections_per_client_address_are_capped(galley):
    s = galley(flags={"--max-connections-per-peer": "2"})
    held = []
    try:
        for _ in range(2):
            sock = raw_connect(s.port)
            held.append(sock)
            sock.sendall(http_request_bytes("GET", "/v2/health/live"))
            r = RawReader(sock).response()
            assert r is not None and r.status == 200, r
        third = raw_connect(s.port)
        held.append(third)
        r = RawReader(third).response()
        assert r is not None
        assert_json_error(r, 503, "connections", "address")
        # The two keep working, and closing one lets the address open another.
        held[0].close()
        statuses = []
        for _ in range(200):
            sock = raw_connect(s.port)
            try:
                sock.sendall(http_request_bytes("GET", "/v2/health/live", headers={"Connection": "close"}))
                r = RawReader(sock).response()
            except (ConnectionResetError, BrokenPipeError):
                r = None
            finally:
                sock.close()
            statuses.append(r.status if r else None)
            if r is not None and r.status == 200:
                break
        assert statuses[-1] == 200 and set(statuses[:-1]) <= {503, None}, statuses
    finally:
        for sock in held:
            sock.close()


def test_new_connection_that_sends_nothing_is_closed_after_the_first_byte_timeout(galley):
    s = galley(flags={"--first-byte-timeout-ms": "300", "--idle-timeout-ms": "60000"})
    sock = raw_connect(s.port, timeout=10)
    try:
        t0 = time.monotonic()
        rd = RawReader(sock)
        assert rd.wait_closed() == b""
        assert rd.closed and time.monotonic() - t0 < 8.0
    finally:
        sock.close()
    # A connection that has made a request waits the (longer) keep-alive idle time instead: it
    # is still open and usable after the first-byte timeout has passed several times over.
    sock = raw_connect(s.port, timeout=10)
    try:
        sock.sendall(http_request_bytes("GET", "/v2/health/live"))
        rd = RawReader(sock)
        assert rd.response().status == 200
        other = raw_connect(s.port, timeout=10)  # a silent one, to see three timeouts pass
        RawReader(other).wait_closed()
        other.close()
        sock.sendall(http_request_bytes("GET", "/v2/health/live"))
        r = rd.response()
        assert r is not None and r.status == 200, r
    finally:
        sock.close()


def test_idle_keep_alive_connection_is_closed(galley):
    s = galley(flags={"--idle-timeout-ms": "300"})
    sock = raw_connect(s.port, timeout=5)
    try:
        sock.sendall(http_request_bytes("GET", "/v2/health/live"))
        rd = RawReader(sock)
        r = rd.response()
        assert r is not None and r.status == 200
        assert r.headers.get("connection", "").lower() != "close"
        t0 = time.monotonic()
        assert rd.wait_closed() == b""  # recv returns b'' once the server closes
        elapsed = time.monotonic() - t0
        assert rd.closed
        assert 0.2 <= elapsed < 4.0, elapsed
    finally:
        sock.close()
    # A connection that never sends a byte is closed as well.
    sock = raw_connect(s.port, timeout=5)
    try:
        rd = RawReader(sock)
        assert rd.wait_closed() == b""
        assert rd.closed
    finally:
        sock.close()
    assert s.get("/v2/health/live").status == 200


@pytest.mark.parametrize("partial", [
    b"POST /inference/analyze HTTP/1.1\r\nHost: x\r\n",
    b"POST /inference/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 100\r\n\r\n{\"text\": \"I lo",
], ids=["partial-header", "partial-body"])
def test_slow_request_gets_408(galley, partial):
    s = galley(flags={"--request-timeout-ms": "500"})
    sock = raw_connect(s.port, timeout=5)
    try:
        sock.sendall(partial)
        t0 = time.monotonic()
        rd = RawReader(sock)
        r = rd.response()
        elapsed = time.monotonic() - t0
        assert r is not None
        assert_json_error(r, 408)
        assert 0.4 <= elapsed < 4.0, elapsed
        rd.wait_closed()
        assert rd.closed
    finally:
        sock.close()


def test_trickling_client_is_cut_off_while_others_are_served(galley):
    s = galley(flags={"--request-timeout-ms": "500"})
    request = analyze_bytes(POSITIVE, {"X-Pad": "p" * 200})
    sock = raw_connect(s.port, timeout=5)
    stop = threading.Event()
    first_byte_at = []

    def trickle():
        for i in range(len(request)):
            if stop.is_set():
                return
            try:
                sock.send(request[i:i + 1])
            except OSError:
                return
            if i == 0:
                first_byte_at.append(time.monotonic())
            stop.wait(0.02)  # pacing of the slow client, not synchronisation

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        # Meanwhile other clients get answers, promptly.
        c = s.client()
        for _ in range(10):
            t0 = time.monotonic()
            r = c.analyze(POSITIVE)
            assert r.status == 200, r
            assert time.monotonic() - t0 < 1.0
        rd = RawReader(sock)
        r = rd.response()
        closed_at = time.monotonic()
        if r is not None:
            assert_json_error(r, 408)
        rd.wait_closed()
        assert rd.closed
        assert first_byte_at
        # Cut off at about the request timeout, long before the whole request (~6 s) was sent.
        assert 0.4 <= closed_at - first_byte_at[0] < 3.0, closed_at - first_byte_at[0]
    finally:
        stop.set()
        t.join(5)
        sock.close()
    assert s.analyze(POSITIVE).status == 200


# ---------------------------------------------------------------------------------------------
# Overload


def test_queue_capacity_zero_rejects_with_429(galley):
    s = galley(flags={"--queue-capacity": "0"})
    r = s.analyze(POSITIVE)
    assert_json_error(r, 429, "queue", "full")
    assert r.headers.get("retry-after") == "1"
    r = s.infer(["I love it"])
    assert_json_error(r, 429, "queue")
    assert r.headers.get("retry-after") == "1"
    # Rejection is not failure: the server stays live and ready, and counts the rejections.
    assert s.get("/v2/health/ready").status == 200
    m = s.metrics()
    assert m.value("galley_requests_total", endpoint="analyze", outcome="queue_full") == 1
    assert m.value("galley_requests_total", endpoint="infer", outcome="queue_full") == 1


def test_flood_gets_200_or_429_and_nothing_is_lost(galley):
    s = galley(flags={"--queue-capacity": "1", "--io-threads": "2"})
    threads_n, per_thread = 64, 5
    results: list[tuple[int, dict, dict]] = []
    failures: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads_n)

    def worker(i):
        c = Client(s.port)
        try:
            barrier.wait(20)
            for k in range(per_thread):
                r = c.analyze(POSITIVE if (i + k) % 2 else "This is awful")
                with lock:
                    results.append((r.status, r.headers, r.json()))
        except Exception as e:  # noqa: BLE001 - recorded and asserted below
            with lock:
                failures.append(f"thread {i}: {type(e).__name__}: {e}")
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "flood workers hung"
    assert not failures, failures
    assert len(results) == threads_n * per_thread
    statuses = [st for st, _, _ in results]
    assert set(statuses) <= {200, 429}, sorted(set(statuses))
    for status, headers, doc in results:
        if status == 200:
            assert doc["sentiment"] in LABELS
        else:
            assert headers.get("retry-after") == "1" and "queue" in doc["error"]
    # Healthy afterwards, with nothing left queued or in flight, and every answer counted.
    assert s.get("/v2/health/ready").status == 200
    assert s.analyze(POSITIVE).status == 200
    m = s.metrics()
    ok = m.value("galley_requests_total", endpoint="analyze", outcome="ok")
    full = m.value("galley_requests_total", endpoint="analyze", outcome="queue_full")
    assert ok == statuses.count(200) + 1
    assert full == statuses.count(429)
    assert m.value("galley_queue_length", model="vader") == 0
    assert m.value("galley_model_inflight_requests", model="vader") == 0


# ---------------------------------------------------------------------------------------------
# Deadlines


@pytest.fixture
def deadline_server(galley):
    return galley(flags={"--default-timeout-ms": "5000"})


def test_timeout_header_zero_means_default(deadline_server):
    s = deadline_server
    r = s.analyze(POSITIVE, headers={"X-Request-Timeout-Ms": "0"})
    assert r.status == 200, r  # not an already-passed deadline
    r = s.infer(["I love it"], headers={"X-Request-Timeout-Ms": "0"})
    assert r.status == 200, r
    r = s.analyze(POSITIVE, headers={"X-Request-Timeout-Ms": "2000"})
    assert r.status == 200, r


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "", "10ms", "0x10"])
def test_bad_timeout_header_is_400(deadline_server, value):
    s = deadline_server
    assert_json_error(s.analyze(POSITIVE, headers={"X-Request-Timeout-Ms": value}), 400,
                      "X-Request-Timeout-Ms")
    assert_json_error(s.infer(["I love it"], headers={"X-Request-Timeout-Ms": value}), 400,
                      "X-Request-Timeout-Ms")


def test_oip_timeout_of_one_microsecond_is_504(deadline_server):
    s = deadline_server
    before = s.metrics()
    doc = {"parameters": {"timeout": 1},
           "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["I love it"]}]}
    r = s.infer(doc=doc)
    assert_json_error(r, 504, "deadline")
    after = s.metrics()
    key = dict(endpoint="infer", model="vader", outcome="deadline_exceeded")
    assert after.value("galley_requests_total", **key) == \
        before.value("galley_requests_total", **key) + 1
    # It was never run: no model execution for it.
    assert after.value("galley_model_inferences_total", model="vader") == \
        before.value("galley_model_inferences_total", model="vader")
    # The header takes precedence over parameters.timeout.
    r = s.infer(doc=doc, headers={"X-Request-Timeout-Ms": "5000"})
    assert r.status == 200, r
    # A generous parameters.timeout is fine.
    doc["parameters"]["timeout"] = 5_000_000
    assert s.infer(doc=doc).status == 200
