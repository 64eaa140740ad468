"""See run.sh."""
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import http.client
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("GALLEY_BIN", str(REPO / "build" / "release" / "galley"))
SECONDS = float(os.environ.get("SECONDS_PER_RUN", "20"))
CONCURRENCY = [int(c) for c in os.environ.get("CONCURRENCY", "1 4 16").split()]
QUERIES = [json.loads(l)["query"] for l in (REPO / "tests/data/retrieval_queries.jsonl").open()]
# What people send: mostly questions about the docs, some small talk and off-topic messages.
MESSAGES = QUERIES + ["hello there", "thanks a lot!", "what's the weather in Rome?",
                      "who won the match last night?", "good morning", "see you later"]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def rss_kb(pid, field):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


class Conn:
    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def post(self, path, doc):
        self.c.request("POST", path, body=json.dumps(doc),
                       headers={"Content-Type": "application/json"})
        r = self.c.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError(f"{path}: {r.status} {body[:200]!r}")
        return json.loads(body)


def text_tensor(name, texts, shape):
    return {"inputs": [{"name": name, "datatype": "BYTES", "shape": shape, "data": texts}]}


def direct_turn(c, message):
    """The peer: the client runs the same steps itself against one replica."""
    label = c.post("/v2/models/safety/infer", text_tensor("text", [message], [1, 1]))
    if [o for o in label["outputs"] if o["name"] == "label"][0]["data"][0] == 1:
        return
    route = c.post("/v2/models/router/infer", text_tensor("query", [message], [1]))
    src = [o for o in route["outputs"] if o["name"] == "sources"][0]["data"][0]
    answer = [message]
    if src == "docs":
        out = c.post("/v2/models/retrieval/infer", text_tensor("query", [message], [1]))
        answer = [o for o in out["outputs"] if o["name"] == "passages"][0]["data"]
    c.post("/v2/models/safety/infer", text_tensor("text", answer, [len(answer), 1]))


def load(port, clients, seconds, mode):
    total, steps, errors = [], {}, []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(k):
        c = Conn(port)
        i = k
        while time.monotonic() < stop:
            msg = MESSAGES[i % len(MESSAGES)]
            i += clients
            t = time.monotonic()
            try:
                if mode == "chat":
                    a = c.post("/v1/chat", {"conversation_id": f"bench-{k}", "message": msg})
                else:
                    a = None
                    direct_turn(c, msg)
            except Exception as e:  # noqa: BLE001 (reported, not hidden)
                with lock:
                    errors.append(str(e))
                c = Conn(port)
                continue
            dt = (time.monotonic() - t) * 1000
            with lock:
                total.append(dt)
                for n in (a or {}).get("nodes", []):
                    if n.get("model"):
                        steps.setdefault(n["step"], []).append(n["latency_ms"])

    th = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    t0 = time.monotonic()
    for t in th:
        t.start()
    for t in th:
        t.join()
    return total, steps, errors, time.monotonic() - t0


def main():
    tmp = REPO / "bench" / "out" / "chat"
    (tmp / "redis").mkdir(parents=True, exist_ok=True)
    redis_port, port = 16400 + os.getpid() % 500, 17400 + os.getpid() % 500
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                              "--dir", str(tmp / "redis")], stdout=subprocess.DEVNULL)
    up = subprocess.Popen([BIN, "up", "--listen", f"127.0.0.1:{port}", "--grpc-port", "-1",
                           "--replicas", "2", f"--serve-arg=--model-repository={REPO / 'models-chat'}",
                           "--pipelines", str(REPO / "pipelines" / "chat.json"),
                           "--chat-redis", f"127.0.0.1:{redis_port}"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    replicas = {}
    try:
        for line in up.stdout:
            doc = json.loads(line) if line.startswith("{") else {}
            if doc.get("event") == "replica_ready":
                replicas[doc["replica"]] = (doc["pid"], doc["port"])
            if doc.get("event") == "ready" and "replica" not in doc and len(replicas) == 2:
                break
        threading.Thread(target=lambda: [None for _ in up.stdout], daemon=True).start()
        Conn(port).post("/v1/chat", {"conversation_id": "warm", "message": "hello"})
        replica_port = replicas["replica-0"][1]
        print(f"# chat pipeline, {SECONDS:.0f} s per run, {len(MESSAGES)} messages in turn "
              f"({len(QUERIES)} questions about the docs), 2 replicas, Redis appendfsync always\n")
        print("| clients | turns/s | p50 ms | p95 ms | p99 ms | direct calls p50 ms | "
              "pipeline p50 / direct p50 | per step p50 ms (safety_in, route, retrieve, "
              "safety_out) | errors |")
        print("|---|---|---|---|---|---|---|---|---|")
        gw_rss = []
        for c in CONCURRENCY:
            gw_rss.append(rss_kb(up.pid, "VmRSS"))
            total, steps, errors, took = load(port, c, SECONDS, "chat")
            gw_rss.append(rss_kb(up.pid, "VmRSS"))
            d_total, _, d_err, _ = load(replica_port, c, SECONDS, "direct")
            per = ", ".join(f"{pct(steps.get(s, []), 50):.1f}"
                            for s in ("safety_in", "route", "retrieve", "safety_out"))
            print(f"| {c} | {len(total) / took:.1f} | {pct(total, 50):.1f} | {pct(total, 95):.1f} "
                  f"| {pct(total, 99):.1f} | {pct(d_total, 50):.1f} | "
                  f"{pct(total, 50) / pct(d_total, 50):.2f} | {per} | {len(errors) + len(d_err)} |")
        print()
        print("| process | peak RSS MiB |")
        print("|---|---|")
        print(f"| gateway (`galley up`) | {rss_kb(up.pid, 'VmHWM') / 1024:.0f} |")
        for r, (pid, _) in sorted(replicas.items()):
            print(f"| {r} (safety, router, retrieval, minilm, sentiment) | "
                  f"{rss_kb(pid, 'VmHWM') / 1024:.0f} |")
        print(f"| redis-server | {rss_kb(redis.pid, 'VmHWM') / 1024:.0f} |")
        print()
        print(f"Gateway RSS before/after each run (MiB): "
              f"{', '.join(f'{x / 1024:.0f}' for x in gw_rss)}")
    finally:
        up.terminate()
        up.wait(60)
        redis.terminate()
        redis.wait(10)


if __name__ == "__main__":
    sys.exit(main())
