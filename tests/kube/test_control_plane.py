"""The control plane that Galley's Kubernetes tests run against is real and does what they need:
authenticated TLS API, Deployments turned into pods by kube-controller-manager, KWOK nodes with
GPU capacity that turn Ready, pods bound to them that turn Running and Ready, and an apiserver
restart that keeps the stored objects (state lives in etcd)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

from conftest import REPO, Kubeconfig, KubeClient, poll

GPU = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
TAINT = {"key": "galley.dev/gpu-pool", "value": "a100", "effect": "NoSchedule"}


def condition(obj, kind: str) -> str | None:
    for c in obj.get("status", {}).get("conditions") or []:
        if c.get("type") == kind:
            return c.get("status")
    return None


def test_token_kubeconfig_authenticates_as_admin(control_plane, kube):
    assert kube.kc.server == control_plane.server
    assert kube.kc.server.startswith("https://127.0.0.1:")
    version = kube.get("/version")
    assert version["gitVersion"] == "v1.36.1", version
    # SelfSubjectReview (authentication.k8s.io/v1) echoes who the apiserver thinks we are.
    status, review = kube.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                  {"apiVersion": "authentication.k8s.io/v1",
                                   "kind": "SelfSubjectReview"})
    assert status == 201, review
    assert review["status"]["userInfo"]["username"] == "galley-admin"
    assert "system:masters" in review["status"]["userInfo"]["groups"]
    # Authentication is enforced: a wrong token is refused.
    status, _ = kube.request("GET", "/api/v1/namespaces", token="not-the-token")
    assert status == 401


def test_cert_kubeconfig_authenticates_as_admin(control_plane, tmp_path):
    kc = Kubeconfig(control_plane.kubeconfig_cert, tmp_path)
    assert kc.token is None  # the identity comes from the client certificate alone
    client = KubeClient(kc)
    status, review = client.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                     {"apiVersion": "authentication.k8s.io/v1",
                                      "kind": "SelfSubjectReview"})
    assert status == 201, review
    assert review["status"]["userInfo"]["username"] == "galley-admin"
    assert "system:masters" in review["status"]["userInfo"]["groups"]
    names = [n["metadata"]["name"] for n in client.get("/api/v1/namespaces")["items"]]
    assert "default" in names and "kube-system" in names


def deploy_and_wait_for_pods(kube: KubeClient) -> None:
    """Creates a 2-replica Deployment and checks kube-controller-manager turns it into one
    ReplicaSet owning 2 pods (nothing schedules them: no kube-scheduler runs)."""
    name = f"web-{uuid.uuid4().hex[:6]}"
    labels = {"app": name}
    kube.create("/apis/apps/v1/namespaces/default/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "c", "image": "galley:test"}]}}}})

    def pods():
        items = kube.get(f"/api/v1/namespaces/default/pods?labelSelector=app%3D{name}")["items"]
        return items if len(items) == 2 else None

    items = poll("2 pods of the deployment", pods)
    owners = {o["kind"] for p in items for o in p["metadata"]["ownerReferences"]}
    assert owners == {"ReplicaSet"}
    rs = kube.get(f"/apis/apps/v1/namespaces/default/replicasets?labelSelector=app%3D{name}")
    assert len(rs["items"]) == 1
    assert rs["items"][0]["metadata"]["ownerReferences"][0]["name"] == name
    poll("deployment status to count 2 replicas",
         lambda: kube.get(f"/apis/apps/v1/namespaces/default/deployments/{name}")
         .get("status", {}).get("replicas") == 2)


def test_deployment_gets_pods_from_controller_manager(kube):
    deploy_and_wait_for_pods(kube)


def make_gpu_node(kube: KubeClient, name: str) -> dict:
    resources = {"cpu": "96", "memory": "1Ti", "pods": "110", GPU: "8"}
    return kube.create("/api/v1/nodes", {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake"},
                     "labels": {GPU_PRODUCT_LABEL: "NVIDIA-A100-SXM4-80GB",
                                "galley.dev/node-pool": "a100", "type": "kwok"}},
        "spec": {"taints": [TAINT]},
        "status": {"capacity": resources, "allocatable": resources}})


def test_kwok_gpu_node_turns_ready(kube):
    name = f"gpu-{uuid.uuid4().hex[:6]}"
    make_gpu_node(kube, name)
    node = poll("the KWOK node to turn Ready",
                lambda: (lambda n: n if condition(n, "Ready") == "True" else None)(
                    kube.get(f"/api/v1/nodes/{name}")))
    assert node["status"]["capacity"][GPU] == "8"
    assert node["status"]["allocatable"][GPU] == "8"
    assert node["metadata"]["labels"][GPU_PRODUCT_LABEL] == "NVIDIA-A100-SXM4-80GB"
    # Other taints may come and go (the node lifecycle controller's not-ready taint, which has
    # no value); ours stays.
    assert TAINT in [{k: t.get(k) for k in TAINT} for t in node["spec"]["taints"]]
    assert node["status"]["nodeInfo"]["kubeletVersion"]  # filled in by KWOK's node stage


def test_pod_bound_to_kwok_node_turns_running_and_ready(kube):
    node = f"gpu-{uuid.uuid4().hex[:6]}"
    make_gpu_node(kube, node)
    poll("the KWOK node to turn Ready",
         lambda: condition(kube.get(f"/api/v1/nodes/{node}"), "Ready") == "True")
    pod = f"worker-{uuid.uuid4().hex[:6]}"
    kube.create("/api/v1/namespaces/default/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod},
        "spec": {"nodeName": node,
                 "tolerations": [{"key": TAINT["key"], "operator": "Equal",
                                  "value": TAINT["value"], "effect": TAINT["effect"]}],
                 "containers": [{"name": "model", "image": "galley:test",
                                 "resources": {"limits": {GPU: "1"}}}]}})

    def running_and_ready():
        p = kube.get(f"/api/v1/namespaces/default/pods/{pod}")
        ok = p["status"].get("phase") == "Running" and condition(p, "Ready") == "True"
        return p if ok else None

    p = poll("the pod to turn Running and Ready", running_and_ready)
    assert p["spec"]["nodeName"] == node
    assert p["status"].get("podIP")
    assert all(cs["ready"] for cs in p["status"]["containerStatuses"])


def test_restart_apiserver_keeps_data(control_plane, kube):
    name = f"kept-{uuid.uuid4().hex[:6]}"
    kube.create("/api/v1/namespaces/default/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
        "data": {"model": "sentiment"}})
    pids_file = control_plane.dir / "pids.json"
    before = json.loads(pids_file.read_text())["kube-apiserver"]

    # The command-line form, working on the folder the fixture's ControlPlane started.
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "kube_control_plane.py"),
                           "restart-apiserver", "--dir", str(control_plane.dir)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout
    after = json.loads(pids_file.read_text())["kube-apiserver"]
    assert after != before
    # It returns once /readyz is ok, on the same address.
    assert kube.get("/api/v1/namespaces/default/configmaps/" + name)["data"] == {
        "model": "sentiment"}
    # The controller manager and KWOK reconnect: new work still gets done.
    deploy_and_wait_for_pods(kube)


def test_command_line_start_prints_details_and_stop_ends_everything(tmp_path):
    import kube_control_plane

    script = str(REPO / "scripts" / "kube_control_plane.py")
    d = tmp_path / "cp"
    start = subprocess.run([sys.executable, script, "start", "--dir", str(d)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    try:
        assert start.returncode == 0, start.stderr
        lines = start.stdout.strip().splitlines()
        assert len(lines) == 1, start.stdout
        info = json.loads(lines[0])
        assert set(info) == {"kubeconfig", "kubeconfig_cert", "server", "token", "ca", "dir"}
        assert info["ca"] == str(d / "ca.crt") and info["dir"] == str(d)
        client = KubeClient(Kubeconfig(info["kubeconfig"], tmp_path / "kc"))
        assert client.kc.server == info["server"] and client.kc.token == info["token"]
        # The command exited; the servers it started keep answering.
        assert client.request("GET", "/readyz") == (200, "ok")
        pids = json.loads((d / "pids.json").read_text())
        assert set(pids) == {"etcd", "kube-apiserver"}
    finally:
        stop = subprocess.run([sys.executable, script, "stop", "--dir", str(d)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=120)
    assert stop.returncode == 0, stop.stdout
    assert not any(kube_control_plane._proc_running(pid) for pid in pids.values())
    assert not (d / "pids.json").exists()
    again = subprocess.run([sys.executable, script, "stop", "--dir", str(d)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=60)
    assert again.returncode == 0, again.stdout
