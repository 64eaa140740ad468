"""`galley operator run` against the real control plane (etcd, kube-apiserver,
kube-controller-manager, KWOK): the InferenceModel CRD is served with its defaults and its
validation rules; a model becomes a Deployment, a Service and a PodDisruptionBudget owned by it,
Galley's scheduler binds its pods to KWOK nodes and its status turns Ready with the generation
observed; the scale subresource drives the Deployment; deleted or edited children are repaired;
deleting the model garbage-collects what it owned; the leader's death hands the Lease to the
standby, which carries on without duplicates.
"""
from __future__ import annotations

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
from test_scheduler import TOLERATE_KWOK, make_node, schedulers  # noqa: F401 (a fixture)

GALLEY = os.environ.get("GALLEY_BIN") or str(REPO / "build" / "release" / "galley")
CRD = REPO / "deploy" / "crd" / "inferencemodels.galley.dev.yaml"
NS = "default"
MODELS = f"/apis/galley.dev/v1alpha1/namespaces/{NS}/inferencemodels"


class OperatorProcess(JsonLogProcess):
    def __init__(self, kubeconfig: str, log_dir: Path, identity: str):
        self.killed = False
        super().__init__(
            [GALLEY, "operator", "run", "--kubeconfig", kubeconfig, "--install-crd", str(CRD),
             "--metrics-listen", "127.0.0.1:0", "--identity", identity,
             "--lease-name", "galley-operator-test", "--resync-ms", "2000",
             "--lease-duration-ms", "3000", "--renew-deadline-ms", "2000",
             "--retry-period-ms", "500"],
            log_dir / f"operator-{identity}.log")


@pytest.fixture(scope="module")
def operator(control_plane, tmp_path_factory):
    d = tmp_path_factory.mktemp("operator")
    op = OperatorProcess(control_plane.kubeconfig, d, "op-a")
    op.wait_for("crd_installed")
    op.wait_for("operator_leading")
    yield op
    rc = op.stop()
    text = op.log_path.read_text()
    assert "Sanitizer" not in text and "runtime error:" not in text, text[-4000:]
    assert rc == 0 or (op.killed and rc == -signal.SIGKILL), text[-4000:]


def model(name: str, test_id: str, scheduler: str, **spec) -> dict:
    body = {"model": {"name": "vader", "format": "vader"}, "replicas": 2,
            "schedulerName": scheduler, "nodeSelector": {"galley.dev/test": test_id},
            "tolerations": [TOLERATE_KWOK], "resources": {"cpu": "1", "memory": "1Gi"}}
    body.update(spec)
    return {"apiVersion": "galley.dev/v1alpha1", "kind": "InferenceModel",
            "metadata": {"name": name}, "spec": body}


def condition(obj: dict, type_: str) -> dict:
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return c
    return {}


def get_or_none(kube: KubeClient, path: str):
    status, obj = kube.request("GET", path)
    return obj if status == 200 else None


@pytest.fixture
def cluster(kube, schedulers):
    """Two KWOK nodes and a Galley scheduler of this test's own."""
    test_id = uuid.uuid4().hex[:8]
    for i in range(2):
        make_node(kube, f"op-{test_id}-{i}", test_id, cpu="8")
    name = f"galley-{test_id}"
    schedulers(name)
    return test_id, name


def test_the_crd_is_served_with_defaults_and_refuses_invalid_models(kube, operator):
    name = f"defaults-{uuid.uuid4().hex[:6]}"
    created = kube.create(MODELS, {"apiVersion": "galley.dev/v1alpha1", "kind": "InferenceModel",
                                   "metadata": {"name": name},
                                   "spec": {"model": {"name": "vader"}}})
    spec = created["spec"]
    assert spec["replicas"] == 1 and spec["minReplicas"] == 1 and spec["maxReplicas"] == 10
    assert spec["schedulerName"] == "galley" and spec["model"]["format"] == "onnx"
    assert spec["failoverTolerationSeconds"] == 30
    bad = {
        "minReplicas must not be greater than maxReplicas": {"minReplicas": 3, "maxReplicas": 2},
        "maxUnavailable must be a count >= 0 or a percentage from 0% to 100%":
            {"disruptionBudget": {"maxUnavailable": "150%"}},
    }
    for message, extra in bad.items():
        status, obj = kube.request("POST", MODELS, {
            "apiVersion": "galley.dev/v1alpha1", "kind": "InferenceModel",
            "metadata": {"name": f"bad-{uuid.uuid4().hex[:6]}"},
            "spec": {"model": {"name": "vader"}, **extra}})
        assert status == 422, (status, obj)
        assert message in obj["message"], obj["message"]
    # The operator writes the status meanwhile, so the PUT goes from a fresh read (and again on a
    # 409 Conflict, as any client's optimistic write does).
    for _ in range(10):
        changed = kube.get(f"{MODELS}/{name}")
        changed["spec"]["model"]["format"] = "vader"
        status, obj = kube.request("PUT", f"{MODELS}/{name}", changed)
        if status != 409:
            break
    assert status == 422, (status, obj)
    assert "model.format is immutable" in obj["message"], obj["message"]
    kube.request("DELETE", f"{MODELS}/{name}")


def test_a_model_becomes_ready_scales_repairs_and_is_collected(kube, operator, cluster):
    test_id, scheduler = cluster
    name = f"sentiment-{test_id}"
    m = kube.create(MODELS, model(name, test_id, scheduler))
    uid = m["metadata"]["uid"]
    paths = {"Deployment": f"/apis/apps/v1/namespaces/{NS}/deployments/{name}",
             "Service": f"/api/v1/namespaces/{NS}/services/{name}",
             "PodDisruptionBudget": f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/{name}"}
    for kind, path in paths.items():
        child = poll(f"the {kind}", lambda p=path: get_or_none(kube, p), 30)
        owners = child["metadata"]["ownerReferences"]
        assert [(o["uid"], o.get("controller")) for o in owners] == [(uid, True)], owners

    def ready():
        obj = kube.get(f"{MODELS}/{name}")
        c = condition(obj, "Ready")
        return obj if c.get("status") == "True" else None
    obj = poll("Ready=True", ready, 90)
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert obj["status"]["readyReplicas"] == 2
    nodes = {p["node"] for p in obj["status"]["placements"]}
    assert nodes <= {f"op-{test_id}-0", f"op-{test_id}-1"}, nodes
    pods = kube.get(f"/api/v1/namespaces/{NS}/pods?labelSelector=galley.dev/inferencemodel={name}")
    assert all(p["spec"]["schedulerName"] == scheduler for p in pods["items"])
    # The Service names the model clients use, and the EndpointSlice controller copies that to
    # the slices a gateway watches (galley gateway --kube-endpoints).
    assert kube.get(paths["Service"])["metadata"]["labels"]["galley.dev/model"] == "vader"

    def sliced():
        slices = kube.get(f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"
                          f"?labelSelector=kubernetes.io/service-name={name}")["items"]
        return [sl for sl in slices if sl["metadata"]["labels"].get("galley.dev/model") == "vader"
                and sum(1 for e in sl.get("endpoints") or [] if e["conditions"].get("ready")) == 2]
    poll("the model's EndpointSlice with both replicas ready", sliced, 30)

    # The scale subresource drives the Deployment.
    scale = kube.get(f"{MODELS}/{name}/scale")
    assert scale["status"]["selector"] == f"galley.dev/inferencemodel={name}"
    scale["spec"]["replicas"] = 3
    status, _ = kube.request("PUT", f"{MODELS}/{name}/scale", scale)
    assert status == 200
    poll("the Deployment at 3", lambda: kube.get(paths["Deployment"])["spec"]["replicas"] == 3, 30)
    poll("3 ready", lambda: kube.get(f"{MODELS}/{name}").get("status", {}).get("readyReplicas") == 3, 90)

    # Drift: an edited replica count, a deleted Deployment and a deleted Service come back.
    status, _ = kube_patch(kube, paths["Deployment"], {"spec": {"replicas": 5}})
    assert status == 200
    poll("the replica count repaired", lambda: kube.get(paths["Deployment"])["spec"]["replicas"] == 3, 30)
    # Another writer's field the operator does not set stays theirs (server-side apply: field
    # managers), and the two writers do not flap: over further passes of the operator the
    # Deployment's generation stays where it is.
    status, _ = kube_patch(kube, paths["Deployment"], {"metadata": {"annotations": {"team.example/owner": "ml"}}})
    assert status == 200
    generation = kube.get(paths["Deployment"])["metadata"]["generation"]
    passes = reconciles(operator)
    poll("two more passes of the operator", lambda: reconciles(operator) >= passes + 2, 30)
    after = kube.get(paths["Deployment"])
    assert after["metadata"]["annotations"]["team.example/owner"] == "ml"
    assert after["metadata"]["generation"] == generation and after["spec"]["replicas"] == 3
    managers = {m["manager"] for m in after["metadata"]["managedFields"]}
    assert {"galley-operator", "someone-else"} <= managers, managers
    old_uid = kube.get(paths["Deployment"])["metadata"]["uid"]
    kube.request("DELETE", paths["Deployment"])
    poll("the Deployment recreated",
         lambda: (get_or_none(kube, paths["Deployment"]) or {}).get("metadata", {}).get("uid") not in (None, old_uid), 30)
    kube.request("DELETE", paths["Service"])
    poll("the Service recreated", lambda: get_or_none(kube, paths["Service"]), 30)

    # Deleting the model collects everything it owned.
    kube.request("DELETE", f"{MODELS}/{name}")
    for kind, path in paths.items():
        poll(f"the {kind} collected", lambda p=path: get_or_none(kube, p) is None, 60)


def reconciles(op: OperatorProcess) -> float:
    """The operator's galley_operator_reconciles_total, from its /metrics."""
    import urllib.request
    port = op.wait_for("listening", pred=lambda l: l.get("protocol") == "metrics")["port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("galley_operator_reconciles_total"))


def kube_patch(kube: KubeClient, path: str, patch: dict):
    """A JSON merge patch (the test's own write, under its own field manager)."""
    import urllib.request
    req = urllib.request.Request(kube.kc.server + path + "?fieldManager=someone-else",
                                 data=json.dumps(patch).encode(), method="PATCH",
                                 headers={"Content-Type": "application/merge-patch+json",
                                          "Accept": "application/json",
                                          **({"Authorization": f"Bearer {kube.kc.token}"} if kube.kc.token else {})})
    with urllib.request.urlopen(req, context=kube.kc.context, timeout=10) as r:
        return r.status, json.loads(r.read())


def wait_ready(kube: KubeClient, name: str, replicas: int, timeout: float = 90) -> dict:
    def ready():
        obj = kube.get(f"{MODELS}/{name}")
        ok = (condition(obj, "Ready").get("status") == "True"
              and obj["status"].get("readyReplicas") == replicas)
        return obj if ok else None
    return poll(f"{name} Ready with {replicas} replicas", ready, timeout)


def test_the_disruption_budget_refuses_an_eviction_that_would_break_it(kube, operator, cluster):
    test_id, scheduler = cluster
    name = f"pdb-{test_id}"
    kube.create(MODELS, model(name, test_id, scheduler, disruptionBudget={"maxUnavailable": 0}))
    wait_ready(kube, name, 2)
    pdb = f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/{name}"
    poll("the budget observed", lambda: kube.get(pdb).get("status", {}).get("currentHealthy") == 2, 30)
    pods = kube.get(f"/api/v1/namespaces/{NS}/pods?labelSelector=galley.dev/inferencemodel={name}")
    victim = pods["items"][0]["metadata"]["name"]
    status, obj = kube.request("POST", f"/api/v1/namespaces/{NS}/pods/{victim}/eviction", {
        "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": victim}})
    assert status == 429, (status, obj)
    assert "disruption budget" in json.dumps(obj), obj
    kube.request("DELETE", f"{MODELS}/{name}")


def test_a_failed_node_s_replicas_are_replaced_within_the_failover_toleration(kube, operator,
                                                                               cluster):
    """A node fails (its Ready condition turns False, tests/kube/kwok/node-fail.yaml): the node
    lifecycle controller taints it not-ready on its next pass, the replicas there are evicted
    after the model's failover toleration, the ReplicaSet creates replacements at once and
    Galley's scheduler binds them to healthy nodes; the status says NodeLost meanwhile.
    Kubernetes' defaults (a 300 s toleration) would leave them there for about 5 minutes."""
    import kube_control_plane
    test_id, scheduler = cluster
    make_node(kube, f"op-{test_id}-2", test_id, cpu="8")  # room for the replacements
    toleration = 2
    name = f"failover-{test_id}"
    kube.create(MODELS, model(name, test_id, scheduler, failoverTolerationSeconds=toleration))
    wait_ready(kube, name, 2)
    selector = f"labelSelector=galley.dev/inferencemodel={name}"
    pods = kube.get(f"/api/v1/namespaces/{NS}/pods?{selector}")["items"]
    victim = pods[0]["spec"]["nodeName"]
    on_victim = {p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == victim}
    status, _ = kube_patch(kube, f"/api/v1/nodes/{victim}",
                           {"metadata": {"labels": {"galley.dev/node-failure": "true"}}})
    assert status == 200
    failed_at = time.monotonic()
    seen: dict[str, float] = {}

    def replaced():
        now = time.monotonic() - failed_at
        node = kube.get(f"/api/v1/nodes/{victim}")
        if any(t["key"] == "node.kubernetes.io/not-ready" and t["effect"] == "NoExecute"
               for t in node["spec"].get("taints", [])):
            seen.setdefault("tainted", now)
        obj = kube.get(f"{MODELS}/{name}")
        if condition(obj, "Degraded").get("reason") == "NodeLost":
            seen.setdefault("NodeLost", now)
        if condition(obj, "Ready").get("status") == "False":
            seen.setdefault(f"Ready=False ({condition(obj, 'Ready').get('reason')})", now)
        live = [p for p in kube.get(f"/api/v1/namespaces/{NS}/pods?{selector}")["items"]
                if not p["metadata"].get("deletionTimestamp")]
        bound = [p for p in live if p["spec"].get("nodeName") not in (None, "", victim)]
        if len(bound) == 2 and not on_victim & {p["metadata"]["name"] for p in live}:
            return now
        return None
    period = float(kube_control_plane.NODE_MONITOR_PERIOD.rstrip("s"))
    took = poll("replacements bound to healthy nodes", replaced, toleration + 60, 0.1)
    print(f"\nnode failed: tainted after {seen.get('tainted', float('nan')):.1f} s, every "
          f"replacement bound after {took:.1f} s (monitor period {period:.0f} s + toleration "
          f"{toleration} s)")
    assert "tainted" in seen and "NodeLost" in seen, seen
    # One monitor pass to taint, the toleration to evict, then a bind: seconds, with room for a
    # loaded machine; far from the 300 s default toleration.
    assert took <= period + toleration + 15, (took, seen)
    # The status converges on the replacements: Ready with two replicas, none on the failed node
    # (it may first still count the old pods, until their eviction reaches the Deployment).
    def settled():
        obj = kube.get(f"{MODELS}/{name}")
        nodes = {p["node"] for p in obj.get("status", {}).get("placements", [])}
        ok = (condition(obj, "Ready").get("status") == "True"
              and obj["status"].get("readyReplicas") == 2 and nodes and victim not in nodes)
        return obj if ok else None
    final = poll("the status's placements off the failed node", settled, 60)
    assert len(final["status"]["placements"]) == 2, final["status"]
    kube.request("DELETE", f"{MODELS}/{name}")
    # Pods on the failed node stay Terminating (nobody confirms the kill): remove them.
    for p in on_victim:
        kube.request("DELETE", f"/api/v1/namespaces/{NS}/pods/{p}?gracePeriodSeconds=0")


def fail_a_replica(kube: KubeClient, name: str, pod: str, how: str, why: str, reason: str) -> dict:
    """Makes `pod` fail as the tests' KWOK stage `how` plays it (tests/kube/kwok/), with `why` as
    its last message, and returns the model once its status says Ready=False with `reason`."""
    status, _ = kube_patch(kube, f"/api/v1/namespaces/{NS}/pods/{pod}", {"metadata": {
        "labels": {"galley.dev/pod-failure": how},
        "annotations": {"galley.dev/failure-message": why}}})
    assert status == 200

    def failing():
        obj = kube.get(f"{MODELS}/{name}")
        c = condition(obj, "Ready")
        return obj if c.get("status") == "False" and c.get("reason") == reason else None
    return poll(f"Ready=False ({reason})", failing, 60)


def test_a_replica_that_cannot_load_its_model_turns_the_model_not_ready_with_the_reason(
        kube, operator, cluster):
    """One replica crash-loops while loading the model (tests/kube/kwok/pod-crashloop.yaml): the
    model turns Ready=False with reason ModelLoadFailed and the server's last words in
    lastModelLoadFailure, and Ready again once the replica is replaced."""
    test_id, scheduler = cluster
    name = f"crash-{test_id}"
    kube.create(MODELS, model(name, test_id, scheduler))
    wait_ready(kube, name, 2)
    selector = f"labelSelector=galley.dev/inferencemodel={name}"
    victim = kube.get(f"/api/v1/namespaces/{NS}/pods?{selector}")["items"][0]["metadata"]["name"]
    why = "model sentiment: sha256 of model.onnx is 3f2a..., the resource says 9c1b..."
    obj = fail_a_replica(kube, name, victim, "crashloop", why, "ModelLoadFailed")
    assert obj["status"]["readyReplicas"] == 1
    assert obj["status"]["lastModelLoadFailure"] == why
    assert condition(obj, "Degraded")["reason"] == "ModelLoadFailed"
    assert condition(obj, "Available")["status"] == "True"  # the other replica still answers
    # The replica is replaced (as a failing liveness probe would have it): Ready again.
    kube.request("DELETE", f"/api/v1/namespaces/{NS}/pods/{victim}?gracePeriodSeconds=0")
    wait_ready(kube, name, 2)
    kube.request("DELETE", f"{MODELS}/{name}")


def test_a_model_from_outside_the_image_gets_an_init_container_and_a_failed_fetch_shows(
        kube, operator, cluster):
    """A model with an https source: the API server accepts the pod template with the fetching
    init container, the node cache and the model volume, and the model turns Ready; when a
    replica's fetch fails (tests/kube/kwok/pod-fetch-failure.yaml) the status says
    ModelFetchFailed with the fetch's own message."""
    test_id, scheduler = cluster
    name = f"fetched-{test_id}"
    sha = "ab" * 32
    kube.create(MODELS, model(name, test_id, scheduler, model={
        "name": "clf", "format": "onnx", "source": "https://models.example/clf.onnx", "sha256": sha}))
    wait_ready(kube, name, 2)
    dep = kube.get(f"/apis/apps/v1/namespaces/{NS}/deployments/{name}")
    pod = dep["spec"]["template"]["spec"]
    init = pod["initContainers"][0]
    assert init["name"] == "fetch-model" and init["args"][:2] == ["model", "fetch"]
    assert init["args"][init["args"].index("--sha256") + 1] == sha
    assert {v["name"] for v in pod["volumes"]} >= {"model", "model-cache", "tmp"}
    selector = f"labelSelector=galley.dev/inferencemodel={name}"
    victim = kube.get(f"/api/v1/namespaces/{NS}/pods?{selector}")["items"][0]["metadata"]["name"]
    why = f"sha256 of https://models.example/clf.onnx is {'cd' * 32}, the resource says {sha}"
    obj = fail_a_replica(kube, name, victim, "fetch", why, "ModelFetchFailed")
    assert condition(obj, "Ready")["status"] == "False"
    assert obj["status"]["lastModelLoadFailure"] == why
    kube.request("DELETE", f"{MODELS}/{name}")


def test_the_standby_takes_over_when_the_leader_is_killed(kube, operator, cluster, control_plane,
                                                          tmp_path):
    """Last in the module: it kills the module's operator."""
    test_id, scheduler = cluster
    standby = OperatorProcess(control_plane.kubeconfig, tmp_path, "op-b")
    try:
        standby.wait_for("operator_started")
        assert not [l for l in standby.lines if l.get("event") == "operator_leading"]
        operator.proc.kill()
        operator.killed = True
        killed_at = time.monotonic()
        standby.wait_for("operator_leading", timeout=30)
        took = time.monotonic() - killed_at
        assert took < 3.0 + 2.0 + 3.0, took  # lease duration + retry period + margin
        name = f"after-{test_id}"
        kube.create(MODELS, model(name, test_id, scheduler))
        wait_ready(kube, name, 2)
        deployments = kube.get(f"/apis/apps/v1/namespaces/{NS}/deployments"
                               f"?labelSelector=galley.dev/inferencemodel={name}")
        assert len(deployments["items"]) == 1
        kube.request("DELETE", f"{MODELS}/{name}")
        print(f"\nstandby leading {took:.2f} s after the leader was killed")
    finally:
        assert standby.stop() == 0
