"""See run.sh."""
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("GALLEY_BIN", str(REPO / "build" / "release" / "galley"))
TEXTS = int(os.environ.get("TEXTS", "256"))
REPEATS = int(os.environ.get("REPEATS", "3"))
INDEX = REPO / "models-retrieval" / "retrieval" / "1"


def texts():
    lines = [json.loads(l)["text"] for l in (INDEX / "passages.jsonl").open()]
    # Questions-sized texts: the first 24 words of each passage.
    return [" ".join(t.split()[:24]) for t in lines][:TEXTS]


def post(port, path, doc):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(doc).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        assert r.status == 200
        return json.loads(r.read())


def embed(port, batch):
    doc = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(batch)], "data": batch}]}
    return post(port, "/v2/models/minilm/infer", doc)


def rss_kb(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def main():
    data = texts()
    port = 18700 + os.getpid() % 1000
    srv = subprocess.Popen([BIN, "serve", "--model-repository", str(REPO / "models-retrieval"),
                            "--listen", f"127.0.0.1:{port}", "--grpc-port", "-1"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in srv.stdout:
            if '"event":"ready"' in line:
                break
        threading.Thread(target=lambda: [None for _ in srv.stdout], daemon=True).start()
        embed(port, data[:4])  # warm up
        rows = []

        def run(name, fn):
            rates = []
            for _ in range(REPEATS):
                t = time.monotonic()
                fn()
                rates.append(len(data) / (time.monotonic() - t))
            rows.append((name, statistics.median(rates)))

        run("one text per request, 1 client", lambda: [embed(port, [t]) for t in data])
        run("16 texts per request, 1 client",
            lambda: [embed(port, data[i:i + 16]) for i in range(0, len(data), 16)])

        def concurrent(clients=8):
            parts = [data[i::clients] for i in range(clients)]
            th = [threading.Thread(target=lambda p=p: [embed(port, [t]) for t in p]) for p in parts]
            for x in th:
                x.start()
            for x in th:
                x.join()
        run("one text per request, 8 clients (server batching)", concurrent)
        hwm = rss_kb(srv.pid, "VmHWM")
    finally:
        srv.terminate()
        srv.wait(30)
    base = rows[0][1]
    print(f"## Retrieval: embedding throughput (all-MiniLM-L6-v2, {len(data)} texts of <= 24 words,"
          f" median of {REPEATS})\n")
    print("| how | texts/s | vs one per request |\n|---|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:.1f} | {rate / base:.2f} |")
    print(f"\nServer peak RSS (VmHWM, minilm and the retrieval agent loaded): {hwm / 1024:.0f} MiB\n")
    print("## Retrieval: index recall against exact search vs search time\n")
    print("| ef_search | hit@5 | recall@5 vs exact | mean search ms |\n|---|---|---|---|")
    for ef in (8, 16, 32, 64, 128):
        out = subprocess.run([BIN, "index", "eval", "--index", str(INDEX), "--queries",
                              str(REPO / "tests" / "data" / "retrieval_queries.jsonl"), "--k", "5",
                              "--ef-search", str(ef)], capture_output=True, text=True, check=True)
        ev = [json.loads(l) for l in out.stdout.splitlines() if '"index_evaluated"' in l][0]
        print(f"| {ef} | {ev['hit_at_5']:.2f} | {ev['recall_at_5_vs_exact']:.3f} |"
              f" {ev['search_ms_mean']:.3f} |")


if __name__ == "__main__":
    sys.exit(main())
