"""`galley gateway --kube-endpoints` on the real control plane: replicas come from EndpointSlices
(real objects on the real API server) whose endpoints are real `galley serve` processes; requests
are routed by model name to the slices labelled with it; a new endpoint joins; an endpoint that
turns terminating under load gets no new request and no request fails.

The API server refuses loopback addresses in EndpointSlices, so the gateway and its replicas run
in a network namespace of their own where the replicas listen on 10.77.0.1 (netns_fleet.py); the
test reaches the gateway, and the namespace the API server, through Unix sockets."""
from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import KubeClient, poll
from test_operator import GALLEY

NS = "default"
SLICES = f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"
ADDRESS = "10.77.0.1"
TEXT = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["lovely"]}]}


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("gateway", timeout=10)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(10)
        self.sock.connect(self.path)


def post(sock: str, path: str, doc: dict) -> tuple[int, dict, dict]:
    c = UnixHTTPConnection(sock)
    try:
        c.request("POST", path, json.dumps(doc), {"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, dict(r.headers), json.loads(r.read())
    finally:
        c.close()


def slice_for(name: str, model: str, port: int, conditions: list[dict]) -> dict:
    """An EndpointSlice as the controller writes one for a model's Service (here without a
    Service: the gateway reads slices only)."""
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "labels": {"galley.dev/model": model,
                                                  "kubernetes.io/service-name": name}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ADDRESS], "conditions": c,
                           "targetRef": {"kind": "Pod", "name": f"{name}-{i}", "namespace": NS}}
                          for i, c in enumerate(conditions)]}


class Fleet:
    """The namespace with the gateway and the replicas, and the slices this test published."""

    def __init__(self, control_plane, kube: KubeClient, replicas: dict[str, list[str]],
                 autoscaler: list[str] | None = None):
        self.kube = kube
        self.id = uuid.uuid4().hex[:6]
        self.dir = Path(tempfile.mkdtemp(prefix="gk-"))  # short: a Unix socket path is short
        self.api_socket = str(self.dir / "api.sock")
        self.gateway = str(self.dir / "gw.sock")
        self.names: list[str] = []
        host, port = control_plane.server.removeprefix("https://").rsplit(":", 1)
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(self.api_socket)
        listener.listen(64)
        self.listener = listener
        sys.path.insert(0, str(Path(__file__).parent))
        import netns_fleet
        netns_fleet.bridge(listener, lambda: socket.create_connection((host, int(port))))
        spec = {"dir": str(self.dir), "galley": GALLEY, "namespace": NS,
                "kubeconfig": control_plane.kubeconfig, "api_server": control_plane.server,
                "api_socket": self.api_socket, "gateway_socket": self.gateway,
                "replicas": replicas}
        if autoscaler is not None:
            spec["autoscaler"] = autoscaler
        self.proc = subprocess.Popen(
            ["unshare", "--user", "--map-root-user", "--net", sys.executable,
             str(Path(__file__).parent / "netns_fleet.py"), json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line, f"the namespace did not start; logs in {self.dir}"
        self.ports: dict[str, int] = json.loads(line)["replicas"]

    def publish(self, name: str, model: str, replica: str, conditions: list[dict]) -> None:
        full = f"{name}-{self.id}"
        body = slice_for(full, model, self.ports[replica], conditions)
        status, obj = self.kube.request("GET", f"{SLICES}/{full}")
        if status == 200:
            body["metadata"]["resourceVersion"] = obj["metadata"]["resourceVersion"]
            status, obj = self.kube.request("PUT", f"{SLICES}/{full}", body)
            assert status == 200, obj.get("message")
        else:
            status, obj = self.kube.request("POST", SLICES, body)
            assert status == 201, obj.get("message")
            self.names.append(full)

    def close(self) -> int:
        for n in self.names:
            self.kube.request("DELETE", f"{SLICES}/{n}")
        self.proc.stdin.close()
        rc = self.proc.wait(60)
        self.listener.close()
        return rc


@pytest.fixture
def fleet(control_plane, kube):
    made: list[Fleet] = []

    def start(replicas: dict[str, list[str]], autoscaler: list[str] | None = None) -> Fleet:
        f = Fleet(control_plane, kube, replicas, autoscaler)
        made.append(f)
        return f
    yield start
    for f in made:
        assert f.close() == 0, f"a process in the namespace did not stop cleanly; logs in {f.dir}"


def test_requests_are_routed_by_model_to_the_slices_that_serve_it(fleet):
    # One replica with the shipped repository (sentiment, ...), one with the built-in VADER only.
    f = fleet({"sentiment": [], "vader": ["--model-repository", "", "--model", "vader"]})
    f.publish("sentiment", "sentiment", "sentiment", [{"ready": True}])
    f.publish("vader", "vader", "vader", [{"ready": True}])

    def routed():
        status, headers, _ = post(f.gateway, "/v2/models/vader/infer", TEXT)
        return status == 200 and headers.get("X-Galley-Replica", "").startswith(f"{NS}/vader-")
    poll("the gateway serving from the slices", routed, 30)
    for _ in range(10):
        status, headers, _ = post(f.gateway, "/v2/models/sentiment/infer", TEXT)
        assert status == 200 and headers["X-Galley-Replica"].startswith(f"{NS}/sentiment-"), headers
        status, headers, _ = post(f.gateway, "/v2/models/vader/infer", TEXT)
        assert status == 200 and headers["X-Galley-Replica"].startswith(f"{NS}/vader-"), headers
        status, _, body = post(f.gateway, "/inference/analyze", {"text": "lovely"})
        assert status == 200 and body["model"] == "sentiment", body


def test_a_terminating_endpoint_gets_no_new_requests_and_none_fails(fleet):
    f = fleet({"a1": [], "a2": []})
    ready = {"ready": True, "serving": True, "terminating": False}
    # Two slices of one model, one endpoint each (the controller splits large Services so).
    f.publish("pool-a", "sentiment", "a1", [ready])

    def served():
        status, headers, _ = post(f.gateway, "/inference/analyze", {"text": "fine"})
        return status == 200 and headers.get("X-Galley-Fallback") != "true"
    poll("the first endpoint serving", served, 30)
    f.publish("pool-b", "sentiment", "a2", [ready])  # a new endpoint joins

    def both_used():
        seen = {post(f.gateway, "/inference/analyze", {"text": "fine"})[1]["X-Galley-Replica"]
                for _ in range(20)}
        return len(seen) == 2
    poll("the new endpoint taking requests", both_used, 30)

    failures: list[str] = []
    replicas: list[str] = []
    stop = threading.Event()

    def load():
        while not stop.is_set():
            try:
                status, headers, _ = post(f.gateway, "/inference/analyze", {"text": "good"})
                if status != 200 or headers.get("X-Galley-Fallback") == "true":
                    failures.append(f"{status} {headers}")
                replicas.append(headers.get("X-Galley-Replica", ""))
            except Exception as e:  # noqa: BLE001 (every failure is counted)
                failures.append(repr(e))
    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        poll("load on both", lambda: len(set(replicas[-40:])) == 2, 30)
        # a1 turns terminating (its pod is being deleted): still serving, no longer ready.
        f.publish("pool-a", "sentiment", "a1", [{"ready": False, "serving": True, "terminating": True}])
        mark = len(replicas)
        poll("requests only to a2", lambda: len(replicas) > mark + 50 and all(
            r.startswith(f"{NS}/pool-b-") for r in replicas[-20:]), 30)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not failures, failures[:5]
    # Both endpoints served before a1 began terminating (the count of requests depends only on
    # how fast this machine is; the polls above already waited for 50 after the change).
    assert any(r.startswith(f"{NS}/pool-a-") for r in replicas[:mark])


def install_crd(control_plane) -> None:
    """The InferenceModel CRD, applied as a user would (kubectl from scripts/fetch_kubectl.sh)."""
    repo = Path(__file__).resolve().parents[2]
    subprocess.run([str(repo / "scripts" / "fetch_kubectl.sh")], check=True, capture_output=True,
                   timeout=3600)
    kubectl = [str(repo / ".deps" / "kubectl" / "kubectl"), "--kubeconfig", control_plane.kubeconfig]
    for args in (["apply", "--server-side", "--field-manager=galley-tests", "-f",
                  str(repo / "deploy" / "crd" / "inferencemodels.galley.dev.yaml")],
                 ["wait", "--for=condition=established", "--timeout=60s",
                  "crd/inferencemodels.galley.dev"]):
        p = subprocess.run(kubectl + args, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr


def test_the_autoscaler_scales_a_model_under_load_through_its_scale_subresource(
        control_plane, kube, fleet):
    """`galley autoscale run` for one InferenceModel: it scrapes the model's replicas (the
    endpoints of its slices), and under load writes a larger spec.replicas through /scale."""
    install_crd(control_plane)
    name = f"auto-{uuid.uuid4().hex[:6]}"
    models = f"/apis/galley.dev/v1alpha1/namespaces/{NS}/inferencemodels"
    kube.create(models, {"apiVersion": "galley.dev/v1alpha1", "kind": "InferenceModel",
                         "metadata": {"name": name},
                         "spec": {"model": {"name": "sentiment"}, "replicas": 1, "minReplicas": 1,
                                  "maxReplicas": 4,
                                  "autoscaling": {"enabled": True, "target": 1,
                                                  "scaleDownDelaySeconds": 600}}})
    try:
        f = fleet({"a1": []}, ["--model", f"{NS}/{name}", "--sync-period-ms", "500",
                               "--stable-window-ms", "3000", "--model-load-time-ms", "0"])
        f.publish(name, "sentiment", "a1", [{"ready": True}])
        stop = threading.Event()
        errors: list[str] = []

        def load():
            while not stop.is_set():
                try:
                    post(f.gateway, "/v2/models/sentiment/infer", {"inputs": [
                        {"name": "text", "datatype": "BYTES", "shape": [8],
                         "data": ["a long enough text to keep the replica busy for a while"] * 8}]})
                except Exception as e:  # noqa: BLE001 (counted)
                    errors.append(repr(e))
        threads = [threading.Thread(target=load) for _ in range(12)]
        for t in threads:
            t.start()
        try:
            scaled = poll("spec.replicas raised by the autoscaler",
                          lambda: kube.get(f"{models}/{name}")["spec"]["replicas"] > 1, 60)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        assert scaled and not errors, errors[:3]
        obj = kube.get(f"{models}/{name}")
        assert 1 < obj["spec"]["replicas"] <= 4
        writers = {m["manager"] for m in obj["metadata"]["managedFields"]
                   if m.get("subresource") == "scale"}
        assert writers, obj["metadata"]["managedFields"]
    finally:
        kube.request("DELETE", f"{models}/{name}")


class QueueModel:
    """A Redis server of the test's own (free loopback port) and an InferenceModel at zero
    replicas, autoscaled at 10 waiting messages per replica, whose replicas would consume the
    stream `jobs` there; and `galley autoscale run` processes for it."""

    def __init__(self, control_plane, kube, tmp_path, max_replicas: int):
        import redis  # the test tools' client (scripts/deps.sh installs it into .venv)
        install_crd(control_plane)
        self.control_plane, self.kube, self.tmp_path = control_plane, kube, tmp_path
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.name = f"queue-{uuid.uuid4().hex[:6]}"
        self.models = f"/apis/galley.dev/v1alpha1/namespaces/{NS}/inferencemodels"
        kube.create(self.models, {
            "apiVersion": "galley.dev/v1alpha1", "kind": "InferenceModel",
            "metadata": {"name": self.name},
            "spec": {"model": {"name": "sentiment"}, "replicas": 0, "minReplicas": 0,
                     "maxReplicas": max_replicas,
                     "autoscaling": {"enabled": True, "target": 10, "scaleDownDelaySeconds": 600}}})
        self.redis = redis.Redis(port=self.port, decode_responses=True)
        poll("redis-server answering", lambda: _pings(self.redis), 20)
        self.scalers = []
        self.sent = 0

    def autoscaler(self, *extra: str):
        from conftest import JsonLogProcess
        p = JsonLogProcess(
            [GALLEY, "autoscale", "run", "--kubeconfig", self.control_plane.kubeconfig, "--model",
             f"{NS}/{self.name}", "--sync-period-ms", "300", "--model-load-time-ms", "0",
             "--queue-redis", f"127.0.0.1:{self.port}", "--queue-stream", "jobs", *extra],
            self.tmp_path / f"autoscaler-{len(self.scalers)}.log")
        self.scalers.append(p)
        return p

    def send(self, n: int) -> None:
        if self.sent == 0:
            self.redis.xgroup_create("jobs", "galley", id="0", mkstream=True)
        for _ in range(n):
            self.redis.xadd("jobs", {"id": f"m{self.sent}", "body": json.dumps({"text": "lovely"})})
            self.sent += 1

    def replicas(self) -> int:
        return self.kube.get(f"{self.models}/{self.name}")["spec"]["replicas"]

    def close(self) -> None:
        for p in self.scalers:
            p.stop()
        self.server.terminate()
        self.server.wait(10)
        self.kube.request("DELETE", f"{self.models}/{self.name}")


@pytest.fixture
def queue_model(control_plane, kube, tmp_path):
    made = []

    def make(max_replicas: int) -> QueueModel:
        q = QueueModel(control_plane, kube, tmp_path, max_replicas)
        made.append(q)
        return q

    yield make
    for q in made:
        q.close()


def test_the_autoscaler_wakes_a_model_from_zero_on_its_queue_backlog(queue_model):
    """`galley autoscale run --queue-redis` for a model at zero replicas: no replica exists, so
    none reports demand; the stream's lag (messages no consumer has fetched) is demand all the
    same, and the autoscaler writes a spec.replicas sized for it through /scale."""
    q = queue_model(5)
    scaler = q.autoscaler()
    # Before any message: the queue is read (lag 0) and the model stays at zero.
    first = scaler.wait_for("autoscale_decision", pred=lambda l: l["metrics"].get("queueLag") == 0)
    assert first["desired"] == 0 and first["current"] == 0, first
    q.send(30)
    # Woken by the lag alone, then sized for it: 30 waiting at 10 per replica (the averaging
    # windows take a few ticks to fill), never above maxReplicas.
    scaler.wait_for("autoscale_decision",
                    pred=lambda l: l["metrics"].get("queueLag") == 30 and l["desired"] > 0)
    scaled = poll("spec.replicas of at least 3 written through /scale",
                  lambda: (n := q.replicas()) >= 3 and n, 30)
    assert scaled <= 5, scaled
    assert all(l["desired"] <= 5 for l in scaler.events("autoscale_decision"))


def test_a_standby_autoscaler_takes_over_when_the_leader_dies(queue_model, kube):
    """Two `galley autoscale run` instances for one model: only the Lease holder decides; killed
    with SIGKILL (no release), it is replaced by the standby within the lease duration, which then
    goes on scaling the model from the queue it reads."""
    q = queue_model(8)
    lease = ["--lease-duration-ms", "3000", "--renew-deadline-ms", "2000", "--retry-period-ms",
             "500"]
    a = q.autoscaler("--identity", "a", *lease)
    a.wait_for("autoscaler_leading")
    b = q.autoscaler("--identity", "b", *lease)
    b.wait_for("autoscaler_started")
    q.send(30)
    poll("the leader scaled to 3", lambda: q.replicas() >= 3, 30)
    assert not b.events("autoscale_decision"), "the standby decided"
    lease_obj = kube.get(
        f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/galley-autoscaler-{q.name}")
    assert lease_obj["spec"]["holderIdentity"] == "a"
    killed = time.monotonic()
    a.stop(signal.SIGKILL)
    b.wait_for("autoscaler_leading", timeout=15)
    assert time.monotonic() - killed < 3.0 + 0.5 + 2.0
    q.send(40)
    poll("the new leader scaled for 70 waiting", lambda: q.replicas() >= 6, 30)
    assert q.replicas() <= 8


def _pings(r) -> bool:
    try:
        return bool(r.ping())
    except Exception:  # noqa: BLE001 (not up yet)
        return False
