"""Traces across the hops, read back from a real collector: Jaeger (built from Go modules by
scripts/fetch_jaeger.sh, in-memory storage, OTLP/HTTP receiver and query API on free loopback
ports). `galley up --otlp-endpoint` runs the chat stack; its gateway and replicas export spans;
one chat turn must come back as one trace whose spans nest as the hops did.

Every wait is on a log line, a process exit or an HTTP answer, with a bound."""
from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc

from conftest import REPO, GalleyServer, free_port
from test_chat import CHAT_PIPELINES, chat, chat_repo  # noqa: F401 (a fixture)
from test_queue_redis import RedisServer

JAEGER_BIN = os.environ.get("JAEGER_BIN") or str(REPO / ".deps" / "jaeger" / "bin" / "jaeger")
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


class Jaeger:
    def __init__(self, tmp: Path):
        self.otlp_port, self.query_port, self.grpc_port = free_port(), free_port(), free_port()
        config = tmp / "jaeger.yaml"
        # Only what the test needs, every listener on loopback: the OTLP/HTTP receiver, memory
        # storage, the query API; the collector's own telemetry off (it would open :8888).
        config.write_text(f"""
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:{self.query_port}
    grpc:
      endpoint: 127.0.0.1:{self.grpc_port}
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{self.otlp_port}
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
""")
        self.log_path = tmp / "jaeger.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([JAEGER_BIN, "--config", str(config)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"jaeger exited\n{self.tail()}"
            try:
                self.get("/api/services")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)  # polling a port that is not open yet; not a synchronisation
        raise AssertionError(f"jaeger not up within 60 s\n{self.tail()}")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.otlp_port}"

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.query_port}{path}", timeout=10) as r:
            return json.loads(r.read())

    def trace(self, trace_id: str, until, timeout: float = 30) -> dict:
        """The trace once `until(trace)` holds (spans arrive in batches), within `timeout`."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                data = self.get(f"/api/traces/{trace_id}")["data"]
            except urllib.error.HTTPError as e:
                if e.code != 404:
                    raise
                data = []
            if data:
                last = data[0]
                if until(last):
                    return last
            time.sleep(0.2)  # polling the collector's store; not a synchronisation
        raise AssertionError(f"trace {trace_id} incomplete after {timeout} s: {last}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


class Spans:
    """A Jaeger trace as spans with service, operation, parent and times (microseconds)."""

    def __init__(self, trace: dict):
        services = {k: v["serviceName"] for k, v in trace["processes"].items()}
        self.spans = []
        for s in trace["spans"]:
            parents = [r["spanID"] for r in s["references"] if r["refType"] == "CHILD_OF"]
            self.spans.append({
                "id": s["spanID"], "trace": s["traceID"], "name": s["operationName"],
                "service": services[s["processID"]], "parent": parents[0] if parents else None,
                "start": s["startTime"], "end": s["startTime"] + s["duration"],
                "tags": {t["key"]: t["value"] for t in s["tags"]}})
        self.by_id = {s["id"]: s for s in self.spans}

    def named(self, name: str) -> list[dict]:
        return [s for s in self.spans if s["name"] == name]

    def children(self, span: dict, name: str | None = None) -> list[dict]:
        return [s for s in self.spans
                if s["parent"] == span["id"] and (name is None or s["name"] == name)]


def within(child: dict, parent: dict, slack_us: int = 1000) -> bool:
    """The child's interval inside its parent's (clocks of one machine; conversions round)."""
    return (child["start"] >= parent["start"] - slack_us and
            child["end"] <= parent["end"] + slack_us)


@pytest.fixture(scope="module")
def traced(tmp_path_factory, chat_repo):  # noqa: F811
    tmp = tmp_path_factory.mktemp("traced")
    jaeger = Jaeger(tmp)
    redis = RedisServer(tmp).start()
    (tmp / "up").mkdir()
    up = GalleyServer(tmp / "up", subcommand="up", flags={
        "--replicas": "2", "--grpc-port": "0", "--replica-drain-delay-ms": "0",
        "--serve-arg": f"--model-repository={chat_repo}", "--pipelines": str(CHAT_PIPELINES),
        "--chat-redis": f"127.0.0.1:{redis.port}", "--otlp-endpoint": jaeger.endpoint})
    up.start(wait_ready=False)
    up.wait_ready(timeout=120)
    for r in ("replica-0", "replica-1"):
        up.wait_for("replica_ready", timeout=120, pred=lambda l, r=r: l.get("replica") == r)
    yield jaeger, up
    problems = up.stop()
    redis.stop()
    jaeger.stop()
    assert not problems, problems


def test_one_chat_turn_is_one_trace_with_every_node_in_order(traced):
    jaeger, up = traced
    c = up.client()
    r = c.request("POST", "/v1/chat", json_body={
        "conversation_id": "traced-1", "message": "How does the gateway retry a failed request?"},
        headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"})
    assert r.status == 200, r
    answer = r.json()
    calls = [n for n in answer["nodes"] if n.get("model")]
    assert [n["step"] for n in calls] == ["safety_in", "route", "retrieve", "safety_out"], answer
    # The answer names its span: the gateway's, in the client's trace.
    tr = r.headers["traceresponse"]
    assert tr.startswith(f"00-{CLIENT_TRACE}-") and tr.endswith("-01"), tr

    want = 1 + 1 + 3 * len(calls) + len(calls)  # chat, append, per call: step, infer, 2 children
    trace = jaeger.trace(CLIENT_TRACE, lambda t: len(t["spans"]) >= want)
    t = Spans(trace)
    assert len(t.spans) == want, [(s["service"], s["name"]) for s in t.spans]
    assert {s["trace"] for s in t.spans} == {CLIENT_TRACE}

    # The gateway's span continues the client's: its parent is the client's span.
    [root] = t.named("chat")
    assert root["service"] == "galley-gateway" and root["parent"] == CLIENT_SPAN, root
    assert tr == f"00-{CLIENT_TRACE}-{root['id']}-01"
    assert root["tags"]["galley.conversation_id"] == "traced-1"
    [append] = t.children(root, "conversation append")
    assert within(append, root)

    steps = t.children(root)
    assert {s["name"] for s in steps} == {f"step {n['step']}" for n in calls} | {
        "conversation append"}
    # Each model step: a client span at the gateway, in the order the steps ran, whose one child
    # is the replica's inference span, itself the parent of the queue wait and the execution.
    ordered = sorted((s for s in steps if s["name"].startswith("step ")), key=lambda s: s["start"])
    assert [s["name"] for s in ordered] == [f"step {n['step']}" for n in calls]
    for prev, nxt in zip(ordered, ordered[1:]):
        assert prev["end"] <= nxt["start"] + 1000, (prev, nxt)  # a sequence: one after another
    for node, step in zip(calls, ordered):
        assert step["service"] == "galley-gateway" and within(step, root), step
        assert step["tags"]["galley.model"] == node["model"]
        assert step["tags"]["galley.replica"] == node["replica"]
        [infer] = t.children(step)
        assert infer["service"] == "galley-replica", infer
        assert infer["name"] == f"infer {node['model']}" and within(infer, step), (infer, step)
        [queue] = t.children(infer, "queue")
        [execute] = t.children(infer, "execute")
        assert within(queue, infer) and within(execute, infer)
        assert queue["end"] <= execute["start"] + 1000, (queue, execute)
        assert execute["tags"]["galley.batch_rows"] >= 1


def test_a_step_that_sets_the_answer_has_its_span_in_the_turns_trace(traced):
    """A greeting is answered by a `set` step (no model call): it still has a span, `step greet`,
    under the turn's span, between the router's step and the output check's."""
    jaeger, up = traced
    trace_id, span_id = "3d6f1a2b9c8e4d7f8a1b2c3d4e5f6a7b", "0123456789abcdef"
    r = up.client().request("POST", "/v1/chat", json_body={
        "conversation_id": "traced-set", "message": "hello"},
        headers={"traceparent": f"00-{trace_id}-{span_id}-01"})
    assert r.status == 200, r
    answer = r.json()
    set_steps = [n["step"] for n in answer["nodes"] if n["status"] == "set"]
    assert set_steps == ["greet"], answer
    t = Spans(jaeger.trace(trace_id, lambda tr: any(
        s["operationName"] == "step greet" for s in tr["spans"]) and any(
        s["operationName"] == "step safety_out" for s in tr["spans"])))
    [root] = t.named("chat")
    [greet] = t.named("step greet")
    assert greet["parent"] == root["id"] and within(greet, root), (greet, root)
    assert greet["tags"]["galley.status"] == "set", greet["tags"]
    [route] = t.named("step route")
    [out] = t.named("step safety_out")
    assert route["end"] <= greet["start"] + 1000 and greet["end"] <= out["start"] + 1000


def test_a_grpc_call_carries_its_trace_through_the_gateway_to_the_replica(traced):
    jaeger, up = traced
    trace_id, span_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    channel = grpc.insecure_channel(f"127.0.0.1:{up.grpc_port}")
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    req = service_pb2.ModelInferRequest(model_name="safety", id="g-1")
    t = req.inputs.add(name="text", datatype="BYTES", shape=[1, 1])
    t.contents.bytes_contents.append(b"have a lovely day")
    stub.ModelInfer(req, timeout=30, metadata=[("traceparent", f"00-{trace_id}-{span_id}-01")])
    channel.close()
    spans = Spans(jaeger.trace(trace_id, lambda tr: {"infer safety", "forward safety"} <= {
        s["operationName"] for s in tr["spans"]}))
    # The gateway's span continues the caller's; the replica's continues the gateway's.
    [forward] = spans.named("forward safety")
    assert forward["parent"] == span_id and forward["service"] == "galley-gateway", forward
    [infer] = spans.named("infer safety")
    assert infer["parent"] == forward["id"] and infer["service"] == "galley-replica", infer
    assert within(infer, forward), (infer, forward)
    assert forward["tags"]["galley.replica"], forward["tags"]  # who answered


def test_an_infer_request_forwarded_by_the_gateway_has_a_gateway_span(traced):
    """A plain REST infer through the gateway: `forward MODEL` at the gateway (the replica that
    answered), the replica's `infer MODEL` under it, in the client's trace."""
    jaeger, up = traced
    trace_id, span_id = "7a1b2c3d4e5f60718293a4b5c6d7e8f9", "a1b2c3d4e5f60718"
    r = up.client().request("POST", "/v2/models/safety/infer", json_body={
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1, 1], "data": ["a fine day"]}]},
        headers={"traceparent": f"00-{trace_id}-{span_id}-01"})
    assert r.status == 200, r
    replica = r.headers["x-galley-replica"]
    spans = Spans(jaeger.trace(trace_id, lambda tr: {"infer safety", "forward safety"} <= {
        s["operationName"] for s in tr["spans"]}))
    [forward] = spans.named("forward safety")
    assert forward["parent"] == span_id and forward["service"] == "galley-gateway", forward
    assert forward["tags"]["galley.replica"] == replica, (forward["tags"], replica)
    [infer] = spans.named("infer safety")
    assert infer["parent"] == forward["id"] and within(infer, forward), (infer, forward)


def test_a_grpc_call_to_a_replica_continues_its_callers_trace(traced, galley):
    """`galley serve`'s own gRPC port continues the call's `traceparent` metadata as its REST
    port does the header: one server span per ModelInfer, the caller's span its parent, with the
    queue and execute children."""
    jaeger, _ = traced
    srv = galley(flags={"--grpc-port": "0", "--otlp-endpoint": jaeger.endpoint})
    trace_id, span_id = "9c2f1d9a4e6b4f0e8a7d3c2b1a0f9e8d", "1f2e3d4c5b6a7980"
    channel = grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}")
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    req = service_pb2.ModelInferRequest(model_name="vader", id="direct-1")
    t = req.inputs.add(name="text", datatype="BYTES", shape=[1])
    t.contents.bytes_contents.append(b"what a fine day")
    stub.ModelInfer(req, timeout=30, metadata=[("traceparent", f"00-{trace_id}-{span_id}-01")])
    # A call without trace context starts a trace of its own and does not join this one.
    stub.ModelInfer(req, timeout=30)
    channel.close()
    spans = Spans(jaeger.trace(trace_id, lambda tr: len(tr["spans"]) >= 3))
    [infer] = spans.named("infer vader")
    assert infer["parent"] == span_id, infer
    assert infer["tags"]["rpc.system"] == "grpc", infer["tags"]
    assert {s["name"] for s in spans.children(infer)} == {"queue", "execute"}, spans.spans


def test_a_queued_message_continues_its_producers_trace(traced, tmp_path, galley):
    jaeger, _ = traced
    redis = RedisServer(tmp_path).start()
    try:
        srv = galley(flags={"--queue-redis": f"127.0.0.1:{redis.port}", "--queue-stream": "jobs",
                            "--otlp-endpoint": jaeger.endpoint})
        srv.wait_for("queue_consuming")
        # A producer of its own puts its trace context in the entry.
        trace_id, span_id = "5b8aa5a2d2c872e8321cf37308d69df2", "051581bf3cb55c13"
        redis.client().xadd("jobs", {"id": "job-1", "body": '{"text": "great"}',
                                     "traceparent": f"00-{trace_id}-{span_id}-01"})
        t = Spans(jaeger.trace(trace_id, lambda tr: len(tr["spans"]) >= 4))
        [wait] = t.named("queue wait")
        [infer] = t.named("infer vader")
        assert wait["parent"] == span_id and infer["parent"] == span_id, t.spans
        assert wait["tags"]["messaging.system"] == "redis"
        assert wait["tags"]["messaging.destination.name"] == "jobs"
        assert wait["tags"]["messaging.message.id"] == "job-1"
        assert wait["end"] <= infer["start"] + 1000, (wait, infer)
        assert {s["name"] for s in t.children(infer)} == {"queue", "execute"}

        # Through the gateway: an asynchronous request's traceparent goes into the entry.
        gw = galley(flags={"--replicas": f"127.0.0.1:{srv.port}", "--grpc-port": "-1",
                           "--queue-redis": f"127.0.0.1:{redis.port}", "--queue-stream": "jobs"},
                    subcommand="gateway")
        trace_id = "6e0c63257de34c92bf9efcd03927272e"
        r = gw.client().request("POST", "/v2/models/vader/infer", json_body={
            "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["fine"]}]},
            headers={"Prefer": "respond-async", "traceparent": f"00-{trace_id}-{span_id}-01"})
        assert r.status == 202, r
        t = Spans(jaeger.trace(trace_id, lambda tr: len(tr["spans"]) >= 4))
        assert {s["name"] for s in t.spans if s["parent"] == span_id} == {
            "queue wait", "infer vader"}, t.spans
    finally:
        redis.stop()


def test_a_collector_that_goes_away_fails_no_request(traced):
    jaeger, up = traced
    jaeger.stop()
    start = len(up.log_lines())
    r = chat(up.port, "traced-2", "hello")
    assert r.status == 200, r
    up.wait_for("trace_export_failed", timeout=30, start=start)
    r = chat(up.port, "traced-2", "thanks")
    assert r.status == 200 and r.json()["turn"] == 2, r
