#!/usr/bin/env python3
"""`galley schedule run` throughput against the real control plane: 500 KWOK nodes (8 GPUs each,
two GPU models, node pools), 1,000 pending pods drawn from the Alibaba openb trace's request mix
(whole GPUs, GPU shares, CPU only), then the scheduler starts and the clock runs from its
`scheduling_started` line to the last `pod_scheduled`. Reports pods/s end to end beside the core's
own decisions/s in the same run (the time inside the scheduling core, from the scheduler's stop
line), and the scheduler's peak RSS (VmHWM).

Usage: bench/schedule/kube_bench.py [--nodes 500] [--pods 1000] [--qps 50 --burst 100]
(GALLEY_BIN overrides build/release/galley; needs scripts/fetch_kube.sh's binaries.)
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import kube_control_plane  # noqa: E402

TRACE = REPO.parent / "shared" / "data" / "alibaba-gpu-v2023" / "openb_pod_list_default.csv"
MODELS = ["NVIDIA-A100-SXM4-80GB", "Tesla-V100-SXM2-32GB"]


class Api:
    def __init__(self, cp):
        self.server, self.token = cp.server, cp.token
        self.ctx = ssl.create_default_context(cafile=cp.ca)

    def post(self, path: str, body: dict) -> None:
        req = urllib.request.Request(self.server + path, data=json.dumps(body).encode(),
                                     method="POST",
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self.ctx, timeout=30) as r:
            assert r.status == 201, r.status


def node(i: int) -> dict:
    res = {"cpu": "96", "memory": "768Gi", "pods": "110", "nvidia.com/gpu": "8"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": f"bench-{i:04d}",
                         "labels": {"type": "kwok", "nvidia.com/gpu.product": MODELS[i % 2],
                                    "nvidia.com/gpu.memory": "81920" if i % 2 == 0 else "32768",
                                    "galley.dev/node-pool": f"pool-{i % 5}"},
                         "annotations": {"kwok.x-k8s.io/node": "fake"}},
            "spec": {"taints": [{"key": "kwok.x-k8s.io/node", "value": "fake",
                                 "effect": "NoSchedule"}]},
            "status": {"allocatable": res, "capacity": res}}


def pods_from_trace(n: int, seed: int) -> list[dict]:
    rows = list(csv.DictReader(open(TRACE)))
    rng = random.Random(seed)
    out = []
    for i in range(n):
        r = rng.choice(rows)
        gpus, milli = int(r["num_gpu"]), int(r["gpu_milli"])
        ann, limits = {}, {}
        if gpus == 1 and 0 < milli < 1000:
            ann["gpu.galley.dev/milli"] = str(milli)
        elif gpus > 0:
            limits["nvidia.com/gpu"] = str(gpus)
        out.append({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": f"bench-{i:05d}", "annotations": ann},
                    "spec": {"schedulerName": "galley-bench",
                             "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists"}],
                             "containers": [{"name": "c", "image": "x", "resources": {
                                 "requests": {"cpu": f"{min(int(r['cpu_milli']), 16000)}m",
                                              "memory": f"{min(int(r['memory_mib']), 65536)}Mi"},
                                 "limits": limits}}]}})
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=500)
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--qps", type=float, default=50)
    ap.add_argument("--burst", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    galley = os.environ.get("GALLEY_BIN") or str(REPO / "build" / "release" / "galley")
    with tempfile.TemporaryDirectory(prefix="galley-kube-bench-") as d:
        cp = kube_control_plane.ControlPlane(Path(d), controller_manager=True, kwok=True)
        cp.start()
        try:
            api = Api(cp)
            with ThreadPoolExecutor(8) as ex:
                list(ex.map(lambda i: api.post("/api/v1/nodes", node(i)), range(args.nodes)))
                list(ex.map(lambda p: api.post("/api/v1/namespaces/default/pods", p),
                            pods_from_trace(args.pods, args.seed)))
            log_path = Path(d) / "scheduler.log"
            with open(log_path, "w") as log:
                proc = subprocess.Popen(
                    [galley, "schedule", "run", "--kubeconfig", cp.kubeconfig,
                     "--scheduler-name", "galley-bench", "--leader-elect=false",
                     "--kube-api-qps", str(args.qps), "--kube-api-burst", str(args.burst)],
                    stdout=log, stderr=subprocess.STDOUT)
            start = end = None
            done = unsched = 0
            hwm = 0
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                lines = [json.loads(l) for l in log_path.read_text().splitlines() if l.startswith("{")]
                starts = [l for l in lines if l["event"] == "scheduling_started"]
                placed = [l for l in lines if l["event"] == "pod_scheduled"]
                failed = {l["pod"] for l in lines if l["event"] == "pod_unschedulable"}
                status = Path(f"/proc/{proc.pid}/status").read_text()
                hwm = max(hwm, int(next(x for x in status.splitlines()
                                        if x.startswith("VmHWM")).split()[1]))
                if starts and len(placed) + len(failed - {p["pod"] for p in placed}) >= args.pods:
                    start, done, unsched = starts[0]["ts"], len(placed), len(failed)
                    end = placed[-1]["ts"] if placed else start
                    break
                time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            stop = [json.loads(l) for l in log_path.read_text().splitlines()
                    if '"scheduler_stopped"' in l][0]
        finally:
            cp.stop()
    if start is None:
        print("did not finish within 600 s", file=sys.stderr)
        return 1
    from datetime import datetime
    t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    secs = max(t(end) - t(start), 1e-9)
    decisions = stop["scheduled"] + stop["unschedulable"]
    print(f"| {args.nodes} KWOK nodes, {args.pods} pods (openb mix), qps {args.qps:g}/burst "
          f"{args.burst} | {done} bound, {unsched} unschedulable | {done / secs:.0f} pods/s end to end "
          f"| core alone {decisions / max(stop['core_seconds'], 1e-9):.0f} decisions/s | "
          f"{hwm / 1024:.0f} MiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
