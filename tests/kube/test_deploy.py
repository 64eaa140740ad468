"""deploy/ applied to the real control plane the way a user applies it (`kubectl apply -k
deploy/overlays/cpu --server-side`, with kubectl v1.36.1 built by scripts/fetch_kubectl.sh):
every object is created, the CRD is established, each service account may do what its component
needs and nothing else (`kubectl auth can-i`, allowed and denied), and the operator and the
scheduler, authenticated as those service accounts, take a model to Ready.
"""
from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import REPO, JsonLogProcess, KubeClient, poll
from test_operator import GALLEY, MODELS, NS, condition, model
from test_scheduler import make_node

import kube_control_plane  # noqa: E402 (conftest puts scripts/ on the path)

KUBECTL = REPO / ".deps" / "kubectl" / "kubectl"
SYSTEM = "galley-system"
OPERATOR_SA = f"system:serviceaccount:{SYSTEM}:galley-operator"
SCHEDULER_SA = f"system:serviceaccount:{SYSTEM}:galley-scheduler"
GATEWAY_SA = f"system:serviceaccount:{SYSTEM}:galley-gateway"
AUTOSCALER_SA = f"system:serviceaccount:{SYSTEM}:galley-autoscaler"


@pytest.fixture(scope="module")
def kubectl(control_plane):
    proc = subprocess.run([str(REPO / "scripts" / "fetch_kubectl.sh")], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run([str(KUBECTL), "--kubeconfig", control_plane.kubeconfig, *args],
                           capture_output=True, text=True, timeout=120)
        if check:
            assert p.returncode == 0, (args, p.stdout, p.stderr)
        return p
    return run


@pytest.fixture(scope="module")
def deployed(kubectl):
    rendered = kubectl("kustomize", str(REPO / "deploy" / "overlays" / "cpu")).stdout
    kinds = sorted(line.split(":", 1)[1].strip() for line in rendered.splitlines()
                   if line.startswith("kind:"))
    assert kinds == sorted(["Namespace", "CustomResourceDefinition"] + ["ServiceAccount"] * 4
                           + ["ClusterRole"] * 4 + ["ClusterRoleBinding"] * 4 + ["Role"] * 3
                           + ["RoleBinding"] * 3 + ["Deployment"] * 3 + ["Service"]), kinds
    out = kubectl("apply", "-k", str(REPO / "deploy" / "overlays" / "cpu"), "--server-side",
                  "--field-manager=galley-deploy-test").stdout
    assert "namespace/galley-system serverside-applied" in out, out
    kubectl("wait", "--for=condition=established", "--timeout=60s",
            "crd/inferencemodels.galley.dev")
    return out


def can(kubectl, who: str, *what: str) -> bool:
    p = kubectl("auth", "can-i", *what, f"--as={who}", check=False)
    assert p.returncode in (0, 1), (what, p.stdout, p.stderr)
    return p.returncode == 0


def test_apply_creates_everything_and_a_second_apply_changes_nothing(kubectl, deployed, kube):
    for kind, name in (("deployment", "galley-operator"), ("deployment", "galley-scheduler"),
                       ("deployment", "galley-gateway"), ("service", "galley-gateway"),
                       ("serviceaccount", "galley-operator"), ("serviceaccount", "galley-scheduler"),
                       ("serviceaccount", "galley-gateway")):
        obj = json.loads(kubectl("get", kind, name, "-n", SYSTEM, "-o", "json").stdout)
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "galley", obj["metadata"]
    dep = json.loads(kubectl("get", "deployment", "galley-operator", "-n", SYSTEM, "-o", "json").stdout)
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "galley-operator"
    assert pod["securityContext"]["runAsNonRoot"] is True
    c = pod["containers"][0]
    assert c["image"] == "galley:dev" and c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["args"][:3] == ["operator", "run", "--in-cluster"]
    sched = json.loads(kubectl("get", "deployment", "galley-scheduler", "-n", SYSTEM, "-o", "json").stdout)
    args = sched["spec"]["template"]["spec"]["containers"][0]["args"]
    # The scheduler serves the name models get by default.
    assert args[args.index("--scheduler-name") + 1] == "galley"
    # Idempotent: the same apply again reports every object unchanged in content.
    again = kubectl("apply", "-k", str(REPO / "deploy" / "overlays" / "cpu"), "--server-side",
                    "--field-manager=galley-deploy-test").stdout
    assert again.count("serverside-applied") == deployed.count("serverside-applied")
    # The GPU overlay renders, with its scheduler flag.
    gpu = kubectl("kustomize", str(REPO / "deploy" / "overlays" / "gpu")).stdout
    assert "--percentage-of-nodes-to-score=100" in gpu


@pytest.mark.parametrize("who, what, allowed", [
    # The operator: models and their status, its three kinds of children, pods and nodes read.
    (OPERATOR_SA, ("watch", "inferencemodels.galley.dev", "-A"), True),
    (OPERATOR_SA, ("patch", "inferencemodels.galley.dev", "--subresource=status", "-n", NS), True),
    (OPERATOR_SA, ("create", "deployments.apps", "-n", NS), True),
    (OPERATOR_SA, ("patch", "services", "-n", NS), True),
    (OPERATOR_SA, ("create", "poddisruptionbudgets.policy", "-n", NS), True),
    (OPERATOR_SA, ("list", "nodes"), True),
    (OPERATOR_SA, ("create", "events", "-n", NS), True),
    (OPERATOR_SA, ("update", "leases.coordination.k8s.io/galley-operator", "-n", SYSTEM), True),
    (OPERATOR_SA, ("delete", "deployments.apps", "-n", NS), False),
    (OPERATOR_SA, ("update", "inferencemodels.galley.dev", "-n", NS), False),
    (OPERATOR_SA, ("get", "secrets", "-n", NS), False),
    (OPERATOR_SA, ("create", "pods", "-n", NS), False),
    (OPERATOR_SA, ("patch", "customresourcedefinitions.apiextensions.k8s.io"), False),
    (OPERATOR_SA, ("update", "leases.coordination.k8s.io/galley-scheduler", "-n", SYSTEM), False),
    (OPERATOR_SA, ("update", "leases.coordination.k8s.io/galley-operator", "-n", NS), False),
    # The scheduler: binds pods, reads pods and nodes, and nothing more.
    (SCHEDULER_SA, ("create", "pods", "--subresource=binding", "-n", NS), True),
    (SCHEDULER_SA, ("watch", "pods", "-A"), True),
    (SCHEDULER_SA, ("list", "nodes"), True),
    (SCHEDULER_SA, ("update", "leases.coordination.k8s.io/galley-scheduler", "-n", SYSTEM), True),
    (SCHEDULER_SA, ("create", "pods", "-n", NS), False),
    (SCHEDULER_SA, ("update", "pods", "-n", NS), False),
    (SCHEDULER_SA, ("delete", "pods", "-n", NS), False),
    (SCHEDULER_SA, ("patch", "nodes"), False),
    (SCHEDULER_SA, ("get", "inferencemodels.galley.dev", "-n", NS), False),
    (SCHEDULER_SA, ("update", "leases.coordination.k8s.io/galley-operator", "-n", SYSTEM), False),
    # The gateway: reads EndpointSlices, nothing else.
    (GATEWAY_SA, ("watch", "endpointslices.discovery.k8s.io", "-A"), True),
    (GATEWAY_SA, ("list", "endpointslices.discovery.k8s.io", "-n", NS), True),
    (GATEWAY_SA, ("update", "endpointslices.discovery.k8s.io", "-n", NS), False),
    (GATEWAY_SA, ("list", "pods", "-n", NS), False),
    (GATEWAY_SA, ("get", "secrets", "-n", NS), False),
    (GATEWAY_SA, ("get", "inferencemodels.galley.dev", "-n", NS), False),
    # The autoscaler: reads a model, writes only its scale, reads EndpointSlices.
    (AUTOSCALER_SA, ("update", "inferencemodels.galley.dev", "--subresource=scale", "-n", NS), True),
    (AUTOSCALER_SA, ("get", "inferencemodels.galley.dev", "-n", NS), True),
    (AUTOSCALER_SA, ("watch", "endpointslices.discovery.k8s.io", "-A"), True),
    (AUTOSCALER_SA, ("update", "leases.coordination.k8s.io", "-n", SYSTEM), True),
    (AUTOSCALER_SA, ("update", "inferencemodels.galley.dev", "-n", NS), False),
    (AUTOSCALER_SA, ("patch", "inferencemodels.galley.dev", "--subresource=status", "-n", NS), False),
    (AUTOSCALER_SA, ("update", "deployments.apps", "--subresource=scale", "-n", NS), False),
    (AUTOSCALER_SA, ("update", "leases.coordination.k8s.io", "-n", NS), False),
])
def test_each_service_account_may_do_what_it_needs_and_nothing_else(kubectl, deployed, who, what,
                                                                    allowed):
    assert can(kubectl, who, *what) is allowed, (who, what)


def service_account_kubeconfig(kubectl, control_plane, sa: str, path: Path) -> str:
    token = kubectl("create", "token", sa, "-n", SYSTEM, "--duration=1h").stdout.strip()
    assert token.count(".") == 2, token  # a JWT
    kube_control_plane._write_kubeconfig(path, control_plane.server, Path(control_plane.ca),
                                         sa, {"token": token})
    return str(path)


def test_the_operator_and_scheduler_as_their_service_accounts_take_a_model_to_ready(
        kubectl, deployed, control_plane, kube: KubeClient, tmp_path):
    test_id = uuid.uuid4().hex[:8]
    for i in range(2):
        make_node(kube, f"dep-{test_id}-{i}", test_id, cpu="8")
    op_kc = service_account_kubeconfig(kubectl, control_plane, "galley-operator", tmp_path / "op.kc")
    sched_kc = service_account_kubeconfig(kubectl, control_plane, "galley-scheduler", tmp_path / "s.kc")
    scheduler_name = f"galley-{test_id}"
    # The Lease names the roles allow (galley-operator, galley-scheduler in galley-system).
    op = JsonLogProcess([GALLEY, "operator", "run", "--kubeconfig", op_kc,
                         "--lease-namespace", SYSTEM, "--metrics-listen", "127.0.0.1:0",
                         "--resync-ms", "2000", "--lease-duration-ms", "3000",
                         "--renew-deadline-ms", "2000", "--retry-period-ms", "500"],
                        tmp_path / "operator.log")
    sched = JsonLogProcess([GALLEY, "schedule", "run", "--kubeconfig", sched_kc,
                            "--scheduler-name", scheduler_name, "--lease-namespace", SYSTEM],
                           tmp_path / "scheduler.log")
    name = f"deployed-{test_id}"
    try:
        op.wait_for("operator_leading")
        kube.create(MODELS, model(name, test_id, scheduler_name))

        def ready():
            obj = kube.get(f"{MODELS}/{name}")
            ok = condition(obj, "Ready").get("status") == "True" and obj["status"].get("readyReplicas") == 2
            return obj if ok else None
        obj = poll("Ready=True under the service accounts' RBAC", ready, 90)
        assert {p["node"] for p in obj["status"]["placements"]} <= {f"dep-{test_id}-0", f"dep-{test_id}-1"}
        # Nothing was refused along the way.
        for proc in (op, sched):
            text = proc.log_path.read_text()
            assert "forbidden" not in text.lower(), text[-3000:]
    finally:
        kube.request("DELETE", f"{MODELS}/{name}")
        for proc in (op, sched):
            proc.stop()
        for i in range(2):
            kube.request("DELETE", f"/api/v1/nodes/dep-{test_id}-{i}")
