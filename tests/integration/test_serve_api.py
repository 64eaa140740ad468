"""Every endpoint of `galley serve` and every error path: the seed's POST /inference/analyze, the
Open Inference Protocol REST API (KServe v2), probes, routing, keep-alive and pipelining."""

import json
import struct
import socket

import pytest

from conftest import (LABELS, GalleyServer, RawReader, assert_json_error, http_request_bytes,
                      raw_connect)

POSITIVE = "I love this, it is wonderful!"
NEGATIVE = "This is terrible. I hate it, it is the worst service ever."
NEUTRAL = "The book is on the table."


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """One server shared by the read-only tests of this module."""
    with GalleyServer(tmp_path_factory.mktemp("api")) as s:
        yield s


@pytest.fixture(scope="module")
def small_batch(tmp_path_factory):
    with GalleyServer(tmp_path_factory.mktemp("batch4"), flags={"--max-batch-size": "4"}) as s:
        yield s


def check_confidence_matches(label, confidence, compound=None):
    assert label in LABELS
    assert 0.5 <= confidence <= 1.0, confidence
    if compound is None:
        return
    assert -1.0 <= compound <= 1.0
    # The documented mapping from VADER's compound score to label and confidence.
    if label == "Positive":
        assert compound >= 0.05 and confidence == pytest.approx(0.5 + compound / 2, abs=1e-4)
    elif label == "Negative":
        assert compound <= -0.05 and confidence == pytest.approx(0.5 - compound / 2, abs=1e-4)
    else:
        assert -0.05 < compound < 0.05 and confidence == pytest.approx(1 - abs(compound) / 0.1,
                                                                       abs=1e-4)


# ---------------------------------------------------------------------------------------------
# POST /inference/analyze


@pytest.mark.parametrize("text,label", [(POSITIVE, "Positive"), (NEGATIVE, "Negative"),
                                        (NEUTRAL, "Neutral")])
def test_analyze_labels(srv, text, label):
    r = srv.analyze(text)
    assert r.status == 200, r
    assert r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert doc["sentiment"] == label, doc
    check_confidence_matches(doc["sentiment"], doc["confidence"])
    assert doc["model"] == "vader"
    if label == "Neutral":  # no lexicon word at all: compound 0, fully confident
        assert doc["confidence"] == 1.0


def test_analyze_accepts_json_content_type_with_parameters(srv):
    r = srv.request("POST", "/inference/analyze", body=json.dumps({"text": POSITIVE}),
                    headers={"Content-Type": "Application/JSON; charset=utf-8"})
    assert r.status == 200, r
    assert r.json()["sentiment"] == "Positive"


def test_analyze_unicode_text(srv):
    r = srv.analyze("I love this café 😀")
    assert r.status == 200, r
    assert r.json()["sentiment"] == "Positive"


@pytest.mark.parametrize("body,words", [
    (b"{}", ["missing", "text"]),
    (b'{"txt": "hello"}', ["missing", "text"]),
    (b'{"text": ""}', ["text", "empty"]),
    (b'{"text": "   \\t\\n\\r  "}', ["text", "blank"]),
    (b'{"text": 42}', ["text", "string"]),
    (b'{"text": null}', ["text", "string"]),
    (b'{"text": ["I love it"]}', ["text", "string"]),
    (b'{"text": {"a": 1}}', ["text", "string"]),
    (b'{"text": "I love it"', ["malformed json"]),
    (b"", ["malformed json"]),
    (b"not json at all", ["malformed json"]),
    (b'["text", "I love it"]', ["json object"]),
    (b'"I love it"', ["json object"]),
], ids=["empty-object", "wrong-field", "empty", "whitespace", "number", "null", "array",
        "object", "truncated", "no-body", "garbage", "json-array", "json-string"])
def test_analyze_rejects_bad_bodies(srv, body, words):
    r = srv.request("POST", "/inference/analyze", body=body,
                    headers={"Content-Type": "application/json"})
    assert_json_error(r, 400, *words)


@pytest.mark.parametrize("headers", [{"Content-Type": "text/plain"}, {},
                                     {"Content-Type": "application/jsonx"},
                                     {"Content-Type": "application/x-www-form-urlencoded"}],
                         ids=["text-plain", "missing", "jsonx", "form"])
def test_analyze_requires_json_content_type(srv, headers):
    r = srv.request("POST", "/inference/analyze", body=json.dumps({"text": POSITIVE}),
                    headers=headers)
    assert_json_error(r, 400, "content-type")


@pytest.mark.parametrize("body", [b'{"text":"\xff\xfe"}', b'{"text":"ok \xc3\x28 no"}',
                                  b'{"text":"\xed\xa0\x80"}'],
                         ids=["ff-fe", "bad-continuation", "encoded-surrogate"])
def test_analyze_rejects_invalid_utf8(srv, body):
    r = srv.request("POST", "/inference/analyze", body=body,
                    headers={"Content-Type": "application/json"})
    message = assert_json_error(r, 400)
    # Boost.JSON refuses invalid UTF-8 while parsing; the model would refuse it too.
    assert "utf-8" in message.lower() or "json" in message.lower(), message


def test_analyze_rejects_escaped_lone_surrogate(srv):
    # "\ud800" is valid JSON syntax but no Unicode scalar value; the server must not pass
    # ill-formed UTF-8 (or a silent replacement) to the model as if it were text.
    r = srv.request("POST", "/inference/analyze", body=b'{"text":"I love it \\ud800"}',
                    headers={"Content-Type": "application/json"})
    if r.status == 200:
        # Acceptable only if the surrogate was replaced and the rest analysed.
        assert r.json()["sentiment"] == "Positive"
    else:
        assert_json_error(r, 400)


def test_analyze_rejects_text_over_64k(srv):
    r = srv.analyze("a" * (64 * 1024 + 1))
    assert_json_error(r, 400, "65537", "limit")


def test_analyze_accepts_text_of_exactly_64k(srv):
    r = srv.analyze("good " * (64 * 1024 // 5) + "a" * (64 * 1024 % 5))
    assert r.status == 200, r
    assert r.json()["sentiment"] in LABELS


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_analyze_wrong_method(srv, method):
    r = srv.request(method, "/inference/analyze")
    assert_json_error(r, 405, "POST")
    assert r.headers.get("allow") == "POST"


# ---------------------------------------------------------------------------------------------
# Open Inference Protocol: server and model metadata, health


def test_server_metadata(srv):
    r = srv.get("/v2")
    assert r.status == 200, r
    doc = r.json()
    assert doc["name"] == "galley"
    assert isinstance(doc["version"], str) and doc["version"]
    assert isinstance(doc["extensions"], list)


@pytest.mark.parametrize("path", ["/v2/health/live", "/livez", "/livez?probe=1"])
def test_live(srv, path):
    r = srv.get(path)
    assert r.status == 200, r
    assert r.json() == {"live": True}


@pytest.mark.parametrize("path", ["/v2/health/ready", "/readyz"])
def test_ready(srv, path):
    r = srv.get(path)
    assert r.status == 200, r
    assert r.json() == {"ready": True}


@pytest.mark.parametrize("path", ["/v2/models/vader", "/v2/models/vader/versions/1"])
def test_model_metadata(srv, path):
    r = srv.get(path)
    assert r.status == 200, r
    doc = r.json()
    assert doc["name"] == "vader"
    assert doc["versions"] == ["1"]
    assert isinstance(doc["platform"], str) and doc["platform"]
    assert doc["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert doc["outputs"] == [{"name": "label", "datatype": "BYTES", "shape": [-1]},
                              {"name": "probability", "datatype": "FP32", "shape": [-1]},
                              {"name": "compound", "datatype": "FP32", "shape": [-1]}]


@pytest.mark.parametrize("path", ["/v2/models/vader/ready", "/v2/models/vader/versions/1/ready"])
def test_model_ready(srv, path):
    r = srv.get(path)
    assert r.status == 200, r
    assert r.json() == {"ready": True}


@pytest.mark.parametrize("path", ["/v2/models/nope", "/v2/models/nope/ready",
                                  "/v2/models/nope/versions/1", "/v2/models/vader/versions/2",
                                  "/v2/models/vader/versions/2/ready",
                                  "/v2/models/VADER"])
def test_unknown_model_or_version_get(srv, path):
    assert_json_error(srv.get(path), 404, "unknown model")


@pytest.mark.parametrize("model,version", [("nope", None), ("vader", "2"), ("nope", "1")])
def test_unknown_model_or_version_infer(srv, model, version):
    r = srv.infer(["I love it"], model=model, version=version)
    assert_json_error(r, 404, "unknown model")


# ---------------------------------------------------------------------------------------------
# Open Inference Protocol: inference


def test_infer_three_texts(srv):
    texts = ["I love it", "This is the worst service ever", "It is a table."]
    r = srv.infer(doc={"id": "req-42", "inputs": [
        {"name": "text", "datatype": "BYTES", "shape": [3], "data": texts}]})
    assert r.status == 200, r
    doc = r.json()
    assert doc["model_name"] == "vader"
    assert doc["model_version"] == "1"
    assert doc["id"] == "req-42"
    outs = {o["name"]: o for o in doc["outputs"]}
    assert [o["name"] for o in doc["outputs"]] == ["label", "probability", "compound"]
    assert outs["label"]["datatype"] == "BYTES" and outs["label"]["shape"] == [3]
    assert outs["probability"]["datatype"] == "FP32" and outs["probability"]["shape"] == [3]
    assert outs["compound"]["datatype"] == "FP32" and outs["compound"]["shape"] == [3]
    assert outs["label"]["data"] == ["Positive", "Negative", "Neutral"]
    for label, p, c in zip(outs["label"]["data"], outs["probability"]["data"],
                           outs["compound"]["data"]):
        check_confidence_matches(label, p, c)


def test_infer_without_id_has_no_id(srv):
    r = srv.infer(["I love it"])
    assert r.status == 200, r
    assert "id" not in r.json()


def test_infer_nested_data_and_versioned_path(srv):
    r = srv.infer(doc={"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2],
                                   "data": [["I love it"], ["I hate it"]]}]}, version="1")
    assert r.status == 200, r
    outs = {o["name"]: o for o in r.json()["outputs"]}
    assert outs["label"]["data"] == ["Positive", "Negative"]


@pytest.mark.parametrize("wanted", [["label"], ["compound", "probability"]])
def test_infer_requested_outputs(srv, wanted):
    r = srv.infer(doc={"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2],
                                   "data": ["I love it", "meh"]}],
                       "outputs": [{"name": n} for n in wanted]})
    assert r.status == 200, r
    names = [o["name"] for o in r.json()["outputs"]]
    assert sorted(names) == sorted(wanted)


def test_infer_empty_batch(srv):
    r = srv.infer([])
    # An empty batch is well-formed (shape [0], no data): answer with empty outputs.
    assert r.status == 200, r
    for o in r.json()["outputs"]:
        assert o["shape"] == [0] and o["data"] == []


def _text_input(**over):
    t = {"name": "text", "datatype": "BYTES", "shape": [2], "data": ["I love it", "I hate it"]}
    t.update(over)
    return t


@pytest.mark.parametrize("doc,words", [
    ({"inputs": [_text_input(datatype="FP32", data=[1.0, 2.0])]}, ["datatype", "FP32", "BYTES"]),
    ({"inputs": [_text_input(datatype="FOO")]}, ["unknown datatype", "FOO"]),
    ({"inputs": [_text_input(shape=[3])]}, ["3", "elements", "shape"]),
    ({"inputs": [_text_input(shape=[1])]}, ["more data elements"]),
    ({"inputs": [_text_input(shape=[2, 1])]}, ["shape", "[2,1]"]),
    ({"inputs": [_text_input(shape="2")]}, ["shape"]),
    ({"inputs": [_text_input(shape=[-2])]}, ["shape"]),
    ({"inputs": [_text_input(data=["ok", 7])]}, ["element 1", "string"]),
    ({"inputs": [_text_input(name="txt")]}, ["unknown input", "txt"]),
    ({"inputs": [_text_input(), _text_input()]}, ["more than once"]),
    ({"inputs": [{k: v for k, v in _text_input().items() if k != "data"}]}, ["data", "missing"]),
    ({"inputs": [{k: v for k, v in _text_input().items() if k != "datatype"}]}, ["datatype"]),
    ({"inputs": [{k: v for k, v in _text_input().items() if k != "name"}]}, ["name"]),
    ({}, ["inputs"]),
    ({"inputs": {}}, ["inputs", "array"]),
    ({"inputs": []}, ["missing input", "text"]),
    ({"inputs": ["text"]}, ["input", "object"]),
    ({"id": 7, "inputs": [_text_input()]}, ["id", "string"]),
    ({"parameters": [], "inputs": [_text_input()]}, ["parameters", "object"]),
    ({"parameters": {"timeout": -1}, "inputs": [_text_input()]}, ["timeout"]),
    ({"parameters": {"timeout": "1s"}, "inputs": [_text_input()]}, ["timeout"]),
    ({"inputs": [_text_input()], "outputs": [{"name": "logits"}]}, ["unknown output", "logits"]),
    ({"inputs": [_text_input()], "outputs": {"name": "label"}}, ["outputs", "array"]),
    ({"inputs": [_text_input(data=["ok", "x" * (64 * 1024 + 1)])]}, ["text[1]", "limit"]),
], ids=["fp32", "unknown-datatype", "too-few-elements", "too-many-elements", "rank", "shape-str",
        "shape-negative", "non-string-element", "unknown-input", "duplicate-input", "no-data",
        "no-datatype", "no-name", "no-inputs", "inputs-object", "inputs-empty", "input-not-object",
        "id-number", "parameters-array", "timeout-negative", "timeout-string", "unknown-output",
        "outputs-object", "text-too-long"])
def test_infer_rejects_bad_requests(srv, doc, words):
    assert_json_error(srv.infer(doc=doc), 400, *words)


@pytest.mark.parametrize("body,words", [
    (b'{"inputs": [', ["malformed json"]),
    (b"", ["malformed json"]),
    (b"[]", ["json object"]),
    (b'{"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["\xff\xfe"]}]}', []),
], ids=["truncated", "empty", "array", "invalid-utf8"])
def test_infer_rejects_bad_json(srv, body, words):
    r = srv.request("POST", "/v2/models/vader/infer", body=body,
                    headers={"Content-Type": "application/json"})
    assert_json_error(r, 400, *words)


def test_infer_binary_extension(srv):
    """Triton's binary tensor data extension: a BYTES input after the JSON, outputs as asked."""
    text = "I love it".encode()
    header = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1],
                                     "parameters": {"binary_data_size": 4 + len(text)}}],
                         "outputs": [{"name": "label", "parameters": {"binary_data": True}},
                                     {"name": "probability"}]}).encode()
    body = header + struct.pack("<I", len(text)) + text
    r = srv.request("POST", "/v2/models/vader/infer", body=body,
                    headers={"Content-Type": "application/octet-stream",
                             "Inference-Header-Content-Length": str(len(header))})
    assert r.status == 200, r
    n = int(r.headers["inference-header-content-length"])
    doc = json.loads(r.body[:n])
    label, prob = doc["outputs"]
    assert label["parameters"]["binary_data_size"] == 4 + len("Positive")
    assert r.body[n:] == struct.pack("<I", 8) + b"Positive"
    assert 0.5 <= prob["data"][0] <= 1
    # A header that claims more than the body holds, and binary data no input claims.
    for length, extra in ((len(body) + 1, b""), (len(header), b"trailing")):
        r = srv.request("POST", "/v2/models/vader/infer", body=body + extra,
                        headers={"Inference-Header-Content-Length": str(length)})
        assert_json_error(r, 400, "binary" if extra else "only")
    r = srv.request("POST", "/v2/models/vader/infer", body=body,
                    headers={"Inference-Header-Content-Length": "12x"})
    assert_json_error(r, 400, "Inference-Header-Content-Length")


def test_infer_batch_over_max_batch_size(small_batch):
    ok = small_batch.infer(["I love it"] * 4)
    assert ok.status == 200, ok
    assert small_batch.get("/v2/models/vader").status == 200
    r = small_batch.infer(["I love it"] * 5)
    assert_json_error(r, 400, "batch size 5", "4")


# ---------------------------------------------------------------------------------------------
# Routing


@pytest.mark.parametrize("path", ["/", "/v1/models/vader", "/v2/", "/v2/health", "/v2/models",
                                  "/v2/models/", "/v2/models/vader/versions",
                                  "/v2/models/vader/versions/1/infer/extra",
                                  "/v2/models/vader/metadata", "/inference/analyze/x", "/metricsx"])
def test_unknown_path(srv, path):
    assert_json_error(srv.get(path), 404)


@pytest.mark.parametrize("method,path,allow", [
    ("POST", "/v2", "GET"),
    ("POST", "/v2/health/live", "GET"),
    ("DELETE", "/livez", "GET"),
    ("POST", "/v2/health/ready", "GET"),
    ("PUT", "/readyz", "GET"),
    ("POST", "/metrics", "GET"),
    ("POST", "/v2/models/vader", "GET"),
    ("DELETE", "/v2/models/vader/versions/1", "GET"),
    ("POST", "/v2/models/vader/ready", "GET"),
    ("GET", "/v2/models/vader/infer", "POST"),
    ("PUT", "/v2/models/vader/versions/1/infer", "POST"),
])
def test_wrong_method(srv, method, path, allow):
    r = srv.request(method, path)
    assert_json_error(r, 405, allow)
    assert r.headers.get("allow") == allow


# ---------------------------------------------------------------------------------------------
# Consistency between the two APIs


def test_analyze_agrees_with_infer(srv):
    texts = [POSITIVE, NEGATIVE, NEUTRAL, "The food was great!", "The service was NOT good :(",
             "not bad at all", "meh", "I'm kinda sad but the movie was good"]
    r = srv.infer(texts)
    assert r.status == 200, r
    outs = {o["name"]: o["data"] for o in r.json()["outputs"]}
    for i, text in enumerate(texts):
        a = srv.analyze(text)
        assert a.status == 200, a
        doc = a.json()
        assert doc["sentiment"] == outs["label"][i], (text, doc, outs)
        assert doc["confidence"] == pytest.approx(outs["probability"][i], abs=1e-6), (text, doc)


# ---------------------------------------------------------------------------------------------
# Keep-alive and pipelining


def test_keep_alive_reuses_one_connection(galley):
    s = galley()
    c = s.client()
    assert c.get("/v2/health/ready").status == 200
    sock = c.conn.sock
    assert sock is not None
    for i in range(50):
        r = c.analyze(POSITIVE if i % 2 else NEGATIVE)
        assert r.status == 200, (i, r)
        assert r.headers.get("connection", "").lower() != "close", r
        assert c.conn.sock is sock, f"request {i} needed a new connection"
    # This client's connection is the only one the server has.
    m = c.metrics()
    assert c.conn.sock is sock
    assert m.value("galley_http_open_connections") == 1
    assert m.value("galley_requests_total", endpoint="analyze", outcome="ok") == 50


def test_two_requests_on_one_raw_socket(srv):
    s = raw_connect(srv.port)
    try:
        rd = RawReader(s)
        for text in (POSITIVE, NEGATIVE):
            body = json.dumps({"text": text}).encode()
            s.sendall(http_request_bytes("POST", "/inference/analyze", body,
                                         {"Content-Type": "application/json"}))
            r = rd.response()
            assert r is not None and r.status == 200, r
        assert not rd.closed
    finally:
        s.close()


def test_pipelined_requests_answered_in_order(srv):
    s = raw_connect(srv.port)
    try:
        reqs = b"".join([
            http_request_bytes("POST", "/inference/analyze", json.dumps({"text": t}).encode(),
                               {"Content-Type": "application/json"})
            for t in (POSITIVE, NEGATIVE, NEUTRAL)] + [http_request_bytes("GET", "/v2")])
        s.sendall(reqs)
        rd = RawReader(s)
        got = [rd.response() for _ in range(4)]
        assert all(r is not None and r.status == 200 for r in got), got
        assert [r.json()["sentiment"] for r in got[:3]] == ["Positive", "Negative", "Neutral"]
        assert got[3].json()["name"] == "galley"
    finally:
        s.close()


def test_connection_close_is_honoured(srv):
    s = raw_connect(srv.port)
    try:
        s.sendall(http_request_bytes("GET", "/livez", headers={"Connection": "close"}))
        rd = RawReader(s)
        r = rd.response()
        assert r is not None and r.status == 200
        assert r.headers.get("connection", "").lower() == "close"
        assert rd.wait_closed() == b""
        assert rd.closed
    finally:
        s.close()


def test_http10_without_keep_alive_is_closed(srv):
    s = raw_connect(srv.port)
    try:
        s.sendall(b"GET /v2 HTTP/1.0\r\n\r\n")
        rd = RawReader(s)
        r = rd.response()
        assert r is not None and r.status == 200 and r.json()["name"] == "galley"
        rd.wait_closed()
        assert rd.closed
    finally:
        s.close()


def test_expect_100_continue(srv):
    s = raw_connect(srv.port)
    try:
        body = json.dumps({"text": POSITIVE}).encode()
        head = http_request_bytes("POST", "/inference/analyze", b"",
                                  {"Content-Type": "application/json",
                                   "Content-Length": str(len(body)), "Expect": "100-continue"})
        s.sendall(head)
        rd = RawReader(s)
        interim = rd.response()
        assert interim is not None and interim.status == 100, interim
        s.sendall(body)
        r = rd.response()
        assert r is not None and r.status == 200, r
        assert r.json()["sentiment"] == "Positive"
    finally:
        s.close()


def test_chunked_request_body(srv):
    s = raw_connect(srv.port)
    try:
        body = json.dumps({"text": POSITIVE}).encode()
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7])
                          for i in range(0, len(body), 7)) + b"0\r\n\r\n"
        s.sendall(b"POST /inference/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                  b"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
        r = RawReader(s).response()
        assert r is not None and r.status == 200, r
        assert r.json()["sentiment"] == "Positive"
    finally:
        s.close()


def test_malformed_http_gets_400_and_close(srv):
    s = raw_connect(srv.port)
    try:
        s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        rd = RawReader(s)
        r = rd.response()
        assert r is not None
        assert_json_error(r, 400)
        rd.wait_closed()
        assert rd.closed
    finally:
        s.close()


def test_half_closed_client_still_gets_its_answer(srv):
    # A client that shuts down its sending side after the request (nc -N, some proxies) is
    # still answered before the server closes.
    s = raw_connect(srv.port)
    try:
        s.sendall(http_request_bytes("POST", "/inference/analyze",
                                     json.dumps({"text": POSITIVE}).encode(),
                                     {"Content-Type": "application/json"}))
        s.shutdown(socket.SHUT_WR)
        rd = RawReader(s)
        r = rd.response()
        assert r is not None and r.status == 200, r
        assert r.json()["sentiment"] == "Positive"
        rd.wait_closed()
        assert rd.closed
    finally:
        s.close()
