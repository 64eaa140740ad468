"""The chat pipeline end to end: `galley up` with two replicas serving the chat models (the safety
classifier, the MiniLM intent router and the retrieval agent over this project's docs), a second
stateless gateway (`galley gateway`) over the same replicas, and a real redis-server (AOF fsynced
on every write) holding the conversations. Also pipelines of every node kind at
/v1/pipelines/NAME, and graphs refused at start.

Every wait is on a log line, a process exit or an HTTP answer, with a bound."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from collections import Counter
from pathlib import Path

import pytest

from conftest import REPO, Client, GalleyServer, assert_json_error, galley_bin
from test_queue_redis import RedisServer
from test_up import alive, replica_pids

CHAT_PIPELINES = REPO / "pipelines" / "chat.json"
SERVED = ["minilm", "retrieval", "router", "safety", "sentiment"]


def build_index(docs: Path, out: Path, label_root: Path | None = None) -> None:
    cmd = [galley_bin(), "index", "build", "--docs", str(docs), "--out", str(out),
           "--model-repository", str(REPO / "models-retrieval")]
    if label_root:
        cmd += ["--label-root", str(label_root)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


@pytest.fixture(scope="module")
def chat_repo(tmp_path_factory) -> Path:
    """The chat models: the shipped safety, sentiment and MiniLM folders, with the router's and
    the retrieval agent's indexes built here from the intents and the docs."""
    repo = tmp_path_factory.mktemp("chat") / "models"
    repo.mkdir()
    for name, src in (("safety", REPO / "models" / "safety"),
                      ("sentiment", REPO / "models" / "sentiment"),
                      ("minilm", REPO / "models-retrieval" / "minilm")):
        (repo / name).symlink_to(src)
    for name, config in (("router", REPO / "models-chat" / "router" / "config.json"),
                         ("retrieval", REPO / "models-retrieval" / "retrieval" / "config.json")):
        (repo / name).mkdir()
        shutil.copy(config, repo / name / "config.json")
    build_index(REPO / "models-chat" / "router" / "intents.jsonl", repo / "router" / "1")
    build_index(REPO / "docs", repo / "retrieval" / "1", label_root=REPO)
    return repo


class Stack:
    def __init__(self, tmp: Path, repo: Path):
        self.tmp = tmp
        self.redis = RedisServer(tmp).start()
        (tmp / "up").mkdir()
        self.up = GalleyServer(tmp / "up", subcommand="up", flags={
            "--replicas": "2", "--grpc-port": "-1", "--replica-drain-delay-ms": "0",
            "--restart-initial-ms": "200", "--serve-arg": f"--model-repository={repo}",
            "--pipelines": str(CHAT_PIPELINES), "--chat-redis": f"127.0.0.1:{self.redis.port}"})
        self.up.start(wait_ready=False)
        self.up.wait_ready(timeout=120)
        for r in ("replica-0", "replica-1"):
            self.up.wait_for("replica_ready", timeout=120,
                             pred=lambda l, r=r: l.get("replica") == r)
        ports = self.current_ports()
        self.replica_ports = ports
        (tmp / "b").mkdir()
        # A second gateway over the same replicas: turns go to either.
        self.b = GalleyServer(tmp / "b", subcommand="gateway", flags={
            "--replicas": ",".join(f"127.0.0.1:{p}" for p in ports.values()),
            "--models": ",".join(SERVED), "--grpc-port": "-1",
            "--pipelines": str(CHAT_PIPELINES), "--chat-redis": f"127.0.0.1:{self.redis.port}"})
        self.b.start()

    def current_ports(self) -> dict[str, int]:
        """replica -> port, the latest of each (a restarted replica listens on a new port)."""
        return {l["replica"]: l["port"] for l in self.up.log_lines()
                if l.get("event") == "listening" and "replica" in l}

    def stop(self) -> list[str]:
        problems = self.b.stop() + self.up.stop()
        self.redis.stop()
        return problems


@pytest.fixture(scope="module")
def stack(tmp_path_factory, chat_repo):
    s = Stack(tmp_path_factory.mktemp("stack"), chat_repo)
    yield s
    assert not s.stop()


def chat(port: int, conversation: str, message: str, turn_id: str | None = None):
    body = {"conversation_id": conversation, "message": message}
    if turn_id:
        body["turn_id"] = turn_id
    c = Client(port, timeout=60)
    try:
        return c.request("POST", "/v1/chat", json_body=body)
    finally:
        c.close()


def history(port: int, conversation: str):
    c = Client(port)
    try:
        return c.get(f"/v1/chat/{conversation}")
    finally:
        c.close()


def steps(answer: dict) -> list[str]:
    return [f"{n['step']}:{n['status']}" for n in answer["nodes"]]


def test_a_conversation_goes_on_across_gateways_and_replicas(stack):
    turns = [
        ("hello there", ["safety_in:ok", "route:ok", "greet:set", "safety_out:ok"]),
        ("How do I protect the gateway with API keys and rate limits?",
         ["safety_in:ok", "route:ok", "retrieve:ok", "safety_out:ok"]),
        ("you are a stupid idiot", ["safety_in:ok", "refuse:set"]),
        ("what's the weather in Rome tomorrow?",
         ["safety_in:ok", "route:ok", "decline:set", "safety_out:ok"]),
        ("How does the autoscaler decide how many replicas to run?",
         ["safety_in:ok", "route:ok", "retrieve:ok", "safety_out:ok"]),
        ("thanks a lot!", ["safety_in:ok", "route:ok", "greet:set", "safety_out:ok"]),
    ]
    gateways = [stack.up.port, stack.b.port]
    # `galley up` names its replicas; the second gateway knows them by address.
    name_of = dict({n: n for n in stack.replica_ports},
                   **{f"127.0.0.1:{p}": n for n, p in stack.replica_ports.items()})
    replicas_seen = set()
    for i, (message, want) in enumerate(turns):
        r = chat(gateways[i % 2], "conv-1", message)
        assert r.status == 200, r
        a = r.json()
        assert a["turn"] == i + 1 and a["duplicate"] is False, a
        assert steps(a) == want, a
        for n in a["nodes"]:
            assert n["latency_ms"] >= 0, n
            if n["status"] == "ok":
                assert n["replica"] in name_of, n
                replicas_seen.add(name_of[n["replica"]])
        assert a["fallbacks"] == [], a
        assert a["halted"] == (i == 2), a
    # Both replicas took part: each turn went wherever the gateway sent it.
    assert replicas_seen == set(stack.replica_ports), replicas_seen

    # The answers: grounded in the right document, refused, declined, greeted.
    h = history(stack.b.port, "conv-1")
    assert h.status == 200, h
    doc = h.json()
    assert doc["version"] == 6 and doc["turns"] == 6, doc
    entries = doc["entries"]
    assert [e["role"] for e in entries] == ["user", "assistant"] * 6
    assert [e["text"] for e in entries[0::2]] == [m for m, _ in turns]
    assert entries[1]["text"].startswith("Hello!")
    assert entries[3]["sources"][0].startswith("docs/gateway.md#"), entries[3]
    assert entries[5]["halted"] is True and "can't help" in entries[5]["text"]
    assert entries[7]["text"].startswith("I only answer questions about Galley")
    assert "autoscal" in entries[9]["sources"][0], entries[9]
    # Both gateways read the same conversation.
    assert history(stack.up.port, "conv-1").json() == doc

    m = stack.up.metrics()
    assert m.value("galley_gateway_pipeline_runs_total", pipeline="chat", outcome="halted") >= 1


def test_a_retried_turn_adds_nothing(stack):
    first = chat(stack.up.port, "retry-1", "How do I build the retrieval index?", "turn-a")
    assert first.status == 200, first
    again = chat(stack.b.port, "retry-1", "How do I build the retrieval index?", "turn-a")
    assert again.status == 200, again
    assert again.json()["duplicate"] is True and again.json()["turn"] == first.json()["turn"] == 1
    entries = history(stack.up.port, "retry-1").json()["entries"]
    assert [e["turn_id"] for e in entries] == ["turn-a", "turn-a"], entries


def run_turns(port_of, conversation: str, ids: list[str], threads: int,
              on_success=lambda n: None) -> dict[str, int]:
    """Sends every turn (retrying one that failed with the same turn_id, as a client would),
    from `threads` threads; returns how many tries each took."""
    tries: Counter = Counter()
    errors: list[str] = []
    succeeded = [0]
    lock = threading.Lock()

    def worker(mine: list[str]) -> None:
        for j, tid in enumerate(mine):
            for attempt in range(20):
                r = chat(port_of(j + attempt), conversation, f"question {tid}: how do retries work?",
                         tid)
                with lock:
                    tries[tid] += 1
                if r.status == 200:
                    with lock:
                        succeeded[0] += 1
                        n = succeeded[0]
                    on_success(n)
                    break
                if r.status not in (502, 503, 504):
                    with lock:
                        errors.append(f"{tid}: {r.status} {r.body[:300]!r}")
                    return
            else:
                with lock:
                    errors.append(f"{tid}: no success in 20 tries")

    ts = [threading.Thread(target=worker, args=(ids[k::threads],)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
    assert not errors, errors
    return tries


def assert_each_turn_once(port: int, conversation: str, ids: list[str]) -> None:
    doc = history(port, conversation).json()
    entries = doc["entries"]
    assert len(entries) == 2 * len(ids), (len(entries), doc["version"])
    assert doc["version"] == len(ids), doc["version"]
    # Each turn's two entries are together, user first, and no turn is there twice.
    pairs = [(entries[i], entries[i + 1]) for i in range(0, len(entries), 2)]
    assert all(u["role"] == "user" and a["role"] == "assistant" and u["turn_id"] == a["turn_id"]
               for u, a in pairs), pairs
    assert sorted(u["turn_id"] for u, _ in pairs) == sorted(ids)


def test_concurrent_turns_on_one_conversation_lose_no_entry(stack):
    ids = [f"c{i:02d}" for i in range(24)]
    ports = [stack.up.port, stack.b.port]
    run_turns(lambda k: ports[k % 2], "conc-1", ids, threads=6)
    assert_each_turn_once(stack.up.port, "conc-1", ids)


def test_a_replica_killed_mid_turn_loses_no_turn_and_duplicates_none(stack):
    ids = [f"k{i:02d}" for i in range(30)]
    ports = [stack.up.port, stack.b.port]
    pid = {k.split("#")[0]: v for k, v in replica_pids(stack.up).items()}["replica-0"]
    killed = threading.Event()

    def kill_after_five(n: int) -> None:
        # Once five turns are through, replica-0 dies with the other threads' turns in flight.
        if n == 5:
            os.kill(pid, signal.SIGKILL)
            killed.set()

    run_turns(lambda j: ports[j % 2], "kill-1", ids, threads=4, on_success=kill_after_five)
    assert killed.is_set()
    stack.up.wait_for("replica_exited", timeout=30, start=0,
                      pred=lambda l: l.get("replica") == "replica-0")
    assert not alive(pid)
    assert_each_turn_once(stack.up.port, "kill-1", ids)
    # The supervisor brings the replica back.
    stack.up.wait_for("replica_ready", timeout=120, start=0,
                      pred=lambda l: l.get("replica") == "replica-0" and l.get("pid") != pid)


def test_redis_restarted_the_conversation_goes_on_or_fails_clearly(stack):
    r = chat(stack.up.port, "redis-1", "hello")
    assert r.status == 200, r
    before = history(stack.up.port, "conv-1").json()
    stack.redis.kill9()
    down = chat(stack.up.port, "redis-1", "How do I scale to zero?", "after-crash")
    assert_json_error(down, 503, "conversation store", "retry the turn with the same turn_id")
    assert down.json()["turn_id"] == "after-crash"
    stack.redis.start()
    again = chat(stack.b.port, "redis-1", "How do I scale to zero?", "after-crash")
    assert again.status == 200, again
    assert again.json()["turn"] == 2, again.json()
    # What was written before the crash is all there (AOF fsynced on every write).
    assert history(stack.up.port, "conv-1").json() == before
    entries = history(stack.up.port, "redis-1").json()["entries"]
    assert [e["turn_id"] for e in entries][2:] == ["after-crash", "after-crash"], entries


def test_bad_requests_are_clear_errors_and_record_nothing(stack):
    c = Client(stack.up.port)
    post = lambda body, ct="application/json": c.request(  # noqa: E731
        "POST", "/v1/chat", body=body, headers={"Content-Type": ct})
    assert_json_error(post("{"), 400, "JSON object")
    assert_json_error(post(json.dumps({"conversation_id": "bad-1"})), 400, "'message'")
    assert_json_error(post(json.dumps({"conversation_id": "bad-1", "message": ""})), 400,
                      "'message' must be 1 to")
    assert_json_error(post(json.dumps({"conversation_id": "bad-1", "message": "x" * 9000})), 400,
                      "'message' must be 1 to 8192 bytes")
    assert_json_error(post(json.dumps({"conversation_id": "bad id!", "message": "hi"})), 400,
                      "'conversation_id'")
    assert_json_error(post(json.dumps({"conversation_id": "bad-1", "message": "hi",
                                       "user": "x"})), 400, "unknown field 'user'")
    assert_json_error(post(json.dumps({"conversation_id": "bad-1", "message": 5})), 400,
                      "'message' must be a string")
    assert_json_error(post(json.dumps({"conversation_id": "bad-1", "message": "hi",
                                       "turn_id": "a b"})), 400, "'turn_id'")
    assert_json_error(post("{}", "text/plain"), 400, "Content-Type")
    r = c.get("/v1/chat")
    assert r.status == 405 and r.headers["allow"] == "POST", r
    assert_json_error(c.get("/v1/chat/bad-1"), 404, "no conversation 'bad-1'")
    assert_json_error(c.get("/v1/chat/bad%20id"), 400, "conversation ID")


TEST_PIPELINES = {"pipelines": {
    "both": {"inputs": ["text"], "root": "fan", "nodes": {
        "fan": {"kind": "ensemble", "steps": [
            {"name": "sentiment", "model": "sentiment", "inputs": {"text": "text"}},
            {"name": "safety", "model": "safety",
             "inputs": {"text": {"from": "text", "shape": [-1, 1]}}}]}}},
    "degraded": {"inputs": ["text"], "root": "main", "nodes": {
        "main": {"kind": "sequence", "steps": [
            {"name": "primary", "model": "retrieval", "timeout_ms": 1, "fallback_model": "router",
             "inputs": {"query": "text"}},
            {"name": "optional", "model": "retrieval", "timeout_ms": 1, "dependency": "soft",
             "inputs": {"query": "text"}},
            {"name": "check", "model": "safety",
             "inputs": {"text": {"from": "text", "shape": [-1, 1]}}}]}}},
    "broken": {"inputs": ["text"], "root": "main", "nodes": {
        "main": {"kind": "sequence", "steps": [
            {"name": "must", "model": "retrieval", "timeout_ms": 1, "inputs": {"query": "text"}},
            {"name": "never", "model": "safety",
             "inputs": {"text": {"from": "text", "shape": [-1, 1]}}}]}}},
    "canary": {"inputs": ["text"], "root": "split", "nodes": {
        "split": {"kind": "splitter", "steps": [
            {"name": "stable", "model": "sentiment", "weight": 50, "inputs": {"text": "text"}},
            {"name": "candidate", "model": "safety", "weight": 50,
             "inputs": {"text": {"from": "text", "shape": [-1, 1]}}}]}}},
}}


def run_pipeline(c: Client, name: str, texts: list[str]):
    return c.request("POST", f"/v1/pipelines/{name}", json_body={
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]})


def test_pipelines_of_every_kind_with_fallbacks_soft_and_hard_steps(stack, tmp_path):
    f = tmp_path / "pipelines.json"
    f.write_text(json.dumps(TEST_PIPELINES))
    (tmp_path / "gw").mkdir()
    gw = GalleyServer(tmp_path / "gw", subcommand="gateway", flags={
        "--replicas": ",".join(f"127.0.0.1:{p}" for p in stack.current_ports().values()),
        "--models": ",".join(SERVED), "--grpc-port": "-1", "--pipelines": str(f)})
    with gw:
        c = gw.client()
        r = run_pipeline(c, "both", ["what a lovely day", "you idiot"])
        assert r.status == 200, r.body.decode()
        out = {o["name"]: o for o in r.json()["outputs"]}
        assert out["safety.label"]["data"] == [0, 1], out
        assert len(out["sentiment.label"]["data"]) == 2 and out["sentiment.label"]["shape"][0] == 2, out
        assert sorted(steps(r.json())) == ["safety:ok", "sentiment:ok"]

        # A 1 ms step never gets its model: the fallback answers the hard step, the soft one is
        # skipped, and the run goes on to its last step.
        r = run_pipeline(c, "degraded", ["how do retries work?"])
        assert r.status == 200, r
        assert steps(r.json()) == ["primary:fallback", "optional:skipped", "check:ok"], r.json()
        nodes = r.json()["nodes"]
        assert nodes[0]["model"] == "router" and "deadline" in nodes[0]["error"], nodes
        assert "deadline" in nodes[1]["error"], nodes

        r = run_pipeline(c, "broken", ["how do retries work?"])
        assert_json_error(r, 504, "step 'must' (model 'retrieval') failed", "deadline")
        assert steps(r.json()) == ["must:failed"], r.json()

        chosen = Counter()
        for _ in range(40):
            r = run_pipeline(c, "canary", ["fine"])
            assert r.status == 200, r
            chosen[r.json()["nodes"][0]["step"]] += 1
        assert set(chosen) == {"stable", "candidate"}, chosen  # each side: 1 - 2^-40

        assert_json_error(run_pipeline(c, "nope", ["x"]), 404, "no pipeline 'nope'")
        assert_json_error(c.request("POST", "/v1/pipelines/both", json_body={"inputs": []}), 400,
                          "takes the inputs text; 'text' is missing")
        assert_json_error(c.request("POST", "/v1/pipelines/both", json_body={"x": 1}), 400,
                          "{\"inputs\"")
        # Without --chat-redis, /v1/chat says what it needs.
        assert_json_error(chat(gw.port, "x", "hi"), 503, "--chat-redis")
        m = gw.metrics()
        assert m.value("galley_gateway_pipeline_steps_total", pipeline="degraded",
                       step="primary", status="fallback") == 1
        assert m.value("galley_gateway_pipeline_runs_total", pipeline="broken",
                       outcome="failed") == 1


@pytest.mark.parametrize("graph,want", [
    ({"p": {"root": "a", "nodes": {
        "a": {"kind": "sequence", "steps": [{"name": "s1", "node": "b"}]},
        "b": {"kind": "switch", "steps": [{"name": "s2", "node": "a"}]}}}},
     ["cycle: a -> b -> a"]),
    ({"p": {"inputs": ["m"], "root": "a", "nodes": {
        "a": {"kind": "sequence", "steps": [{"name": "s1", "model": "gpt", "inputs": {"x": "m"}}]},
        "lost": {"kind": "sequence", "steps": [{"name": "s2", "set": {"y": 1}}]}}}},
     ["step 's1' calls unknown model 'gpt'", "node 'lost' is unreachable from root 'a'"]),
    ({"p": {"root": "a", "nodes": {"a": {"kind": "fanout", "steps": [{"name": "s", "set": {}}]}}}},
     ["kind 'fanout' is not sequence, switch, ensemble or splitter"]),
])
def test_a_bad_graph_is_refused_at_start_naming_the_fault(tmp_path, graph, want):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"pipelines": graph}))
    r = subprocess.run([galley_bin(), "gateway", "--listen", "127.0.0.1:0", "--grpc-port", "-1",
                        "--replicas", "127.0.0.1:9", "--models", ",".join(SERVED),
                        "--pipelines", str(f)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    failed = [json.loads(l) for l in r.stdout.splitlines() if '"start_failed"' in l]
    assert failed, r.stdout
    for w in want:
        assert w in failed[0]["error"], failed[0]
