"""`galley schedule run` against the real control plane: pods whose schedulerName names it are
bound where the scheduling core says (taints and tolerations, node affinity, anti-affinity,
fractional GPUs), the API shows it (nodeName, the gpu.galley.dev/assigned annotation, Scheduled and
FailedScheduling events), an unschedulable pod is placed once the cluster changes, a restarted
scheduler never hands a GPU share out twice, only the leader binds and the other instance takes
over within the lease duration, and an apiserver restart is ridden out.

Every test uses its own schedulerName and labels its nodes, so tests do not see each other's work.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import REPO, JsonLogProcess, KubeClient, poll

GALLEY = os.environ.get("GALLEY_BIN") or str(REPO / "build" / "release" / "galley")
GPU = "nvidia.com/gpu"
KWOK_TAINT = {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}
TOLERATE_KWOK = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
NS = "default"


class Scheduler(JsonLogProcess):
    """One `galley schedule run` process; its JSON log lines are collected as they come."""

    def __init__(self, kubeconfig: str, name: str, log_dir: Path, *extra: str):
        super().__init__([GALLEY, "schedule", "run", "--kubeconfig", kubeconfig,
                          "--scheduler-name", name, "--lease-namespace", NS, *extra],
                         log_dir / f"scheduler-{uuid.uuid4().hex[:6]}.log")


@pytest.fixture
def schedulers(control_plane, tmp_path):
    started: list[Scheduler] = []

    def start(name: str, *extra: str) -> Scheduler:
        s = Scheduler(control_plane.kubeconfig, name, tmp_path, *extra)
        started.append(s)
        return s

    yield start
    problems = []
    for s in started:
        s.stop()
        text = s.log_path.read_text()
        # Under the ASan+UBSan build a report in the log fails the test.
        if "Sanitizer" in text or "runtime error:" in text:
            problems.append(f"{s.log_path}:\n{text[-4000:]}")
    if problems:
        pytest.fail("sanitizer reports:\n" + "\n".join(problems), pytrace=False)


def make_node(kube: KubeClient, name: str, test_id: str, gpus: int = 0, model: str = "",
              labels: dict | None = None, taints: list | None = None, cpu: str = "32") -> None:
    all_labels = {"galley.dev/test": test_id, "type": "kwok", **(labels or {})}
    if model:
        all_labels["nvidia.com/gpu.product"] = model
        all_labels["nvidia.com/gpu.memory"] = "81920"
    resources = {"cpu": cpu, "memory": "256Gi", "pods": "110"}
    if gpus:
        resources[GPU] = str(gpus)
    kube.create("/api/v1/nodes", {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": all_labels,
                     "annotations": {"kwok.x-k8s.io/node": "fake"}},
        "spec": {"taints": [KWOK_TAINT, *(taints or [])]},
        "status": {"allocatable": resources, "capacity": resources}})


def make_pod(kube: KubeClient, name: str, scheduler: str, test_id: str, milli: int = 0,
             gpus: int = 0, labels: dict | None = None, annotations: dict | None = None,
             tolerations: list | None = None, affinity: dict | None = None,
             cpu: str = "1") -> None:
    ann = dict(annotations or {})
    if milli:
        ann["gpu.galley.dev/milli"] = str(milli)
    requests = {"cpu": cpu, "memory": "1Gi"}
    limits = {GPU: str(gpus)} if gpus else {}
    spec = {"schedulerName": scheduler,
            "nodeSelector": {"galley.dev/test": test_id},
            "tolerations": [TOLERATE_KWOK, *(tolerations or [])],
            "containers": [{"name": "c", "image": "galley/model:test",
                            "resources": {"requests": requests, "limits": limits}}]}
    if affinity:
        spec["affinity"] = affinity
    kube.create(f"/api/v1/namespaces/{NS}/pods", {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}, "annotations": ann},
        "spec": spec})


def pod(kube: KubeClient, name: str) -> dict:
    return kube.get(f"/api/v1/namespaces/{NS}/pods/{name}")


def bound_node(kube: KubeClient, name: str) -> str | None:
    return pod(kube, name)["spec"].get("nodeName")


def events_for(kube: KubeClient, name: str, reason: str) -> list[dict]:
    items = kube.get(f"/api/v1/namespaces/{NS}/events?fieldSelector=involvedObject.name={name}")
    return [e for e in items["items"] if e["reason"] == reason]


def assigned(kube: KubeClient, name: str) -> list[int]:
    text = pod(kube, name)["metadata"].get("annotations", {}).get("gpu.galley.dev/assigned", "")
    return [int(x) for x in text.split(",")] if text else []


def gpu_use(kube: KubeClient, names: list[str]) -> dict[tuple[str, int], int]:
    """Thousandths of each (node, GPU) taken by the named pods, from the API's records."""
    use: dict[tuple[str, int], int] = {}
    for n in names:
        p = pod(kube, n)
        share = int(p["metadata"].get("annotations", {}).get("gpu.galley.dev/milli", "1000"))
        for g in assigned(kube, n):
            key = (p["spec"]["nodeName"], g)
            use[key] = use.get(key, 0) + share
    return use


def uid() -> str:
    return uuid.uuid4().hex[:8]


def test_pods_land_where_the_core_says_and_the_api_shows_it(kube, schedulers):
    t = uid()
    name = f"galley-{t}"
    make_node(kube, f"a100-{t}", t, gpus=8, model="NVIDIA-A100-SXM4-80GB", labels={"zone": "a"},
              taints=[{"key": "gpu-pool", "value": "a100", "effect": "NoSchedule"}])
    make_node(kube, f"v100-{t}", t, gpus=8, model="Tesla-V100-SXM2-16GB", labels={"zone": "b"})
    make_node(kube, f"cpu-{t}", t, labels={"zone": "c"})
    zone = lambda *z: {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "zone", "operator": "In", "values": list(z)}]}]}}}
    tolerate_a100 = [{"key": "gpu-pool", "operator": "Equal", "value": "a100",
                      "effect": "NoSchedule"}]
    s = schedulers(name, "--leader-elect=false")
    # Tolerates the A100 pool's taint and asks for A100s: the tainted node.
    make_pod(kube, f"a100-job-{t}", name, t, gpus=2, tolerations=tolerate_a100,
             annotations={"gpu.galley.dev/models": "NVIDIA-A100-SXM4-80GB"})
    # Wants an A100 without the toleration: nothing fits.
    make_pod(kube, f"untolerated-{t}", name, t, gpus=1,
             annotations={"gpu.galley.dev/models": "NVIDIA-A100-SXM4-80GB"})
    # CPU only, node affinity to zone c.
    make_pod(kube, f"cpu-job-{t}", name, t, affinity=zone("c"))
    # Two replicas that must not share a node, confined to zones b and c.
    anti = {**zone("b", "c"), "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": f"web-{t}"}},
         "topologyKey": "kubernetes.io/hostname"}]}}
    for i in range(2):
        make_pod(kube, f"web-{i}-{t}", name, t, labels={"app": f"web-{t}"}, affinity=anti)
    # Two half GPUs on the V100 node: packed onto one GPU (best fit), never over 1000.
    for i in range(2):
        make_pod(kube, f"half-{i}-{t}", name, t, milli=500, affinity=zone("b"))

    placed = [f"a100-job-{t}", f"cpu-job-{t}", f"web-0-{t}", f"web-1-{t}", f"half-0-{t}",
              f"half-1-{t}"]
    for p in placed:
        poll(f"{p} bound", lambda: bound_node(kube, p), timeout_s=60)
    assert bound_node(kube, f"a100-job-{t}") == f"a100-{t}"
    assert len(assigned(kube, f"a100-job-{t}")) == 2
    assert bound_node(kube, f"cpu-job-{t}") == f"cpu-{t}"
    assert assigned(kube, f"cpu-job-{t}") == []
    webs = {bound_node(kube, f"web-{i}-{t}") for i in range(2)}
    assert webs == {f"v100-{t}", f"cpu-{t}"}, webs
    assert {bound_node(kube, f"half-{i}-{t}") for i in range(2)} == {f"v100-{t}"}
    halves = [assigned(kube, f"half-{i}-{t}") for i in range(2)]
    assert halves[0] == halves[1] and len(halves[0]) == 1, halves
    assert all(v <= 1000 for v in gpu_use(kube, placed).values())
    # Events: one Scheduled per placed pod, from this scheduler, naming the node.
    for p in placed:
        ev = poll(f"Scheduled event of {p}", lambda: events_for(kube, p, "Scheduled"))
        assert len(ev) == 1, ev
        assert ev[0]["source"]["component"] == name
        assert bound_node(kube, p) in ev[0]["message"]
    # The untolerated pod: not bound, a FailedScheduling event with the core's reasons.
    failed = poll("FailedScheduling", lambda: events_for(kube, f"untolerated-{t}", "FailedScheduling"))
    assert failed[0]["type"] == "Warning"
    assert "nodes are available" in failed[0]["message"], failed[0]["message"]
    assert "untolerated taint" in failed[0]["message"], failed[0]["message"]
    assert bound_node(kube, f"untolerated-{t}") is None

    # The cluster changes: an untainted A100 node arrives, and the waiting pod goes there.
    make_node(kube, f"a100-open-{t}", t, gpus=4, model="NVIDIA-A100-SXM4-80GB", labels={"zone": "d"})
    assert poll("untolerated pod bound", lambda: bound_node(kube, f"untolerated-{t}")) == f"a100-open-{t}"
    poll("pods Running", lambda: all(pod(kube, p)["status"].get("phase") == "Running" for p in placed))
    assert not s.events("bind_failed")


def test_a_bad_gpu_request_gets_a_clear_event_and_nothing_is_bound(kube, schedulers):
    t = uid()
    name = f"galley-{t}"
    make_node(kube, f"n-{t}", t, gpus=1, model="NVIDIA-A100-SXM4-80GB")
    schedulers(name, "--leader-elect=false")
    make_pod(kube, f"bad-{t}", name, t, annotations={"gpu.galley.dev/milli": "1500"})
    ev = poll("FailedScheduling", lambda: events_for(kube, f"bad-{t}", "FailedScheduling"))
    assert "gpu.galley.dev/milli must be an integer in [1, 1000]" in ev[0]["message"], ev[0]
    assert bound_node(kube, f"bad-{t}") is None


def test_a_restarted_scheduler_never_hands_a_gpu_share_out_twice(kube, schedulers):
    t = uid()
    name = f"galley-{t}"
    make_node(kube, f"g-{t}", t, gpus=2, model="NVIDIA-A100-SXM4-80GB")
    first = schedulers(name, "--leader-elect=false")
    names = [f"s{i}-{t}" for i in range(3)]
    for n in names:
        make_pod(kube, n, name, t, milli=600)  # 600 + 600 > 1000: one pod per GPU at most
    for n in names[:2]:
        poll(f"{n} bound", lambda: bound_node(kube, n))
    first.wait_for("pod_unschedulable", lambda l: l["pod"] == f"{NS}/{names[2]}")
    assert first.stop() == 0
    # A fresh process rebuilds its accounting from the bound pods' annotations: the third pod
    # still does not fit, and a fourth small one fits only beside a 600.
    second = schedulers(name, "--leader-elect=false")
    make_pod(kube, f"small-{t}", name, t, milli=400)
    poll("small bound", lambda: bound_node(kube, f"small-{t}"))
    second.wait_for("pod_unschedulable", lambda l: l["pod"] == f"{NS}/{names[2]}")
    assert bound_node(kube, names[2]) is None
    use = gpu_use(kube, names[:2] + [f"small-{t}"])
    assert sorted(use.values()) == [600, 1000], use


def ops_get(s: Scheduler, path: str) -> tuple[int, str]:
    """GET `path` from the scheduler's --metrics-listen port (logged as it starts)."""
    port = s.wait_for("listening", lambda l: l.get("protocol") == "metrics")["port"]
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def test_only_the_leader_binds_and_the_other_takes_over(kube, schedulers):
    t = uid()
    name = f"galley-{t}"
    make_node(kube, f"l-{t}", t, gpus=8, model="NVIDIA-A100-SXM4-80GB", cpu="200")
    lease = ["--lease-name", f"lease-{t}", "--lease-duration-ms", "3000",
             "--renew-deadline-ms", "2000", "--retry-period-ms", "500"]
    ops = ["--metrics-listen", "127.0.0.1:0"]
    a = schedulers(name, "--identity", f"a-{t}", *lease, *ops)
    a.wait_for("scheduling_started")
    b = schedulers(name, "--identity", f"b-{t}", *lease, *ops)
    b.wait_for("leader_observed", lambda l: l["leader"] == f"a-{t}")
    first = [f"x{i}-{t}" for i in range(10)]
    for n in first:
        make_pod(kube, n, name, t, milli=100)
    for n in first:
        poll(f"{n} bound", lambda: bound_node(kube, n))
    assert len(a.events("pod_scheduled")) == 10 and not b.events("pod_scheduled")
    # /metrics and /readyz: the leader counts its ten binds and is ready; the other is not.
    scrape_a, scrape_b = ops_get(a, "/metrics"), ops_get(b, "/metrics")
    assert scrape_a[0] == 200
    assert 'galley_scheduler_schedule_attempts_total{result="scheduled"} 10' in scrape_a[1]
    assert "galley_scheduler_leader 1" in scrape_a[1]
    assert 'galley_scheduler_schedule_attempts_total{result="scheduled"} 0' in scrape_b[1]
    assert "galley_scheduler_leader 0" in scrape_b[1]
    assert ops_get(a, "/readyz")[0] == 200 and ops_get(b, "/readyz")[0] == 503
    lease_obj = kube.get(f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/lease-{t}")
    assert lease_obj["spec"]["holderIdentity"] == f"a-{t}"

    # The leader dies without releasing its lease; the other takes over within the duration
    # (plus one retry period and the time to notice).
    killed_at = time.monotonic()
    a.stop(signal.SIGKILL)
    b.wait_for("scheduling_started", timeout=15)
    assert time.monotonic() - killed_at < 3.0 + 0.5 + 2.0
    second = [f"y{i}-{t}" for i in range(10)]
    for n in second:
        make_pod(kube, n, name, t, milli=100)
    for n in second:
        poll(f"{n} bound", lambda: bound_node(kube, n))
    assert {l["pod"] for l in b.events("pod_scheduled")} == {f"{NS}/{n}" for n in second}
    # Nothing bound twice: one Scheduled event per pod, and the GPUs never over 1000.
    for n in first + second:
        assert len(events_for(kube, n, "Scheduled")) == 1, n
    assert all(v <= 1000 for v in gpu_use(kube, first + second).values())
    lease_obj = kube.get(f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/lease-{t}")
    assert lease_obj["spec"]["holderIdentity"] == f"b-{t}"
    assert lease_obj["spec"]["leaseTransitions"] >= 1


def test_the_scheduler_rides_out_an_apiserver_restart(control_plane, kube, schedulers):
    t = uid()
    name = f"galley-{t}"
    make_node(kube, f"r-{t}", t, gpus=1, model="NVIDIA-A100-SXM4-80GB")
    s = schedulers(name, "--leader-elect=false")
    make_pod(kube, f"before-{t}", name, t, milli=600)
    poll("before bound", lambda: bound_node(kube, f"before-{t}"))
    control_plane.restart_apiserver()
    # The watch broke and came back: new pods are still seen, and the accounting still holds the
    # first pod's 600 (a second 600 does not fit; 400 does, beside it).
    make_pod(kube, f"big-{t}", name, t, milli=600)
    s.wait_for("pod_unschedulable", lambda l: l["pod"] == f"{NS}/big-{t}", timeout=90)
    make_pod(kube, f"small-{t}", name, t, milli=400)
    assert poll("small bound", lambda: bound_node(kube, f"small-{t}"), timeout_s=90) == f"r-{t}"
    assert assigned(kube, f"small-{t}") == assigned(kube, f"before-{t}") == [0]
    assert bound_node(kube, f"big-{t}") is None
    assert s.proc.poll() is None


def test_a_cordoned_node_gets_nothing_until_it_is_uncordoned(kube, schedulers):
    t = uid()
    name = f"galley-{t}"
    make_node(kube, f"c-{t}", t, gpus=1, model="NVIDIA-A100-SXM4-80GB")
    node_path = f"/api/v1/nodes/c-{t}"

    def set_unschedulable(value: bool) -> None:
        # KWOK and the node controller write the node too: read, change, write, again on 409.
        for _ in range(20):
            node = kube.get(node_path)
            node["spec"]["unschedulable"] = value
            status, body = kube.request("PUT", node_path, node)
            if status != 409:
                assert status == 200, body
                return
        pytest.fail("node update kept conflicting")

    set_unschedulable(True)  # kubectl cordon
    s = schedulers(name, "--leader-elect=false")
    make_pod(kube, f"w-{t}", name, t, milli=500)
    s.wait_for("pod_unschedulable", lambda l: l["pod"] == f"{NS}/w-{t}")
    assert bound_node(kube, f"w-{t}") is None
    set_unschedulable(False)  # kubectl uncordon: the waiting pod goes there
    assert poll("w bound", lambda: bound_node(kube, f"w-{t}")) == f"c-{t}"
