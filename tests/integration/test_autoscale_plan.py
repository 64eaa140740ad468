"""`galley autoscale plan`: one JSON document on stdin, one decision on stdout.

Runs the real binary ($GALLEY_BIN, default build/release/galley) on the documents in
tests/data/autoscale and on inline ones, including bad input (exit 2, message on stderr).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GALLEY = os.environ.get("GALLEY_BIN", str(REPO / "build" / "release" / "galley"))
DATA = REPO / "tests" / "data" / "autoscale"


def plan(document: str) -> subprocess.CompletedProcess:
    return subprocess.run([GALLEY, "autoscale", "plan"], input=document, capture_output=True,
                          text=True, timeout=30)


def decide(document: dict | str) -> dict:
    text = document if isinstance(document, str) else json.dumps(document)
    result = plan(text)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def pod(name: str, cpu: str, ready: bool = True) -> dict:
    return {"name": name, "phase": "Running", "ready": ready, "startTime": "2024-05-01T11:00:00Z",
            "readyTime": "2024-05-01T11:00:20Z", "requests": {"cpu": "1"}, "metrics": {"cpu": cpu}}


def hpa_doc(current: int, pods: list, **spec) -> dict:
    base = {"minReplicas": 1, "maxReplicas": 10, "metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": 30}}}]}
    base.update(spec)
    return {"now": "2024-05-01T12:00:00Z", "spec": base, "currentReplicas": current, "pods": pods}


def test_hpa_scale_up_like_kubernetes():
    # replica_calculator_test TestReplicaCalcScaleUp: 50% against 30% on 3 pods -> 5.
    d = decide(hpa_doc(3, [pod("a", "300m"), pod("b", "500m"), pod("c", "700m")]))
    assert d["replicas"] == 5
    assert d["reason"] == "DesiredWithinRange"
    assert d["proposals"][0] == {"metric": "resource/cpu", "replicas": 5, "current": 50,
                                 "target": 30}


def test_hpa_downscale_is_stabilised_by_history():
    d = decide((DATA / "hpa_cpu.json").read_text())
    assert d["replicas"] == 5
    assert d["recommendation"] == 3
    assert d["reason"] == "ScaleDownStabilized"


def test_hpa_legacy_scale_up_cap():
    d = decide(hpa_doc(1, [pod("a", "1")], maxReplicas=20, metrics=[
        {"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": 10}}}]))
    assert d["replicas"] == 4
    assert d["reason"] == "ScaleUpLimit"


def test_hpa_behavior_rate_limit():
    doc = hpa_doc(2, [pod("a", "1"), pod("b", "1")], maxReplicas=50, behavior={
        "scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}})
    d = decide(doc)
    assert d["replicas"] == 3
    assert d["reason"] == "ScaleUpLimit"


def test_galley_burst_enters_panic():
    d = decide((DATA / "galley_burst.json").read_text())
    assert d["replicas"] == 6
    assert d["panic"] is True
    assert d["reason"] == "ScaleUp"


@pytest.mark.parametrize("document, fragment", [
    ("not json", "not valid JSON"),
    ('{"spec": {"maxReplicas": 3}, "currentReplicas": 1}', "now"),
    (json.dumps({"now": "2024-05-01T12:00:00Z", "spec": {"maxReplicas": 3, "metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Percent"}}}]},
        "currentReplicas": 1}), "spec.metrics[0].resource.target.type"),
    (json.dumps({"now": "2024-05-01T12:00:00Z", "spec": {"maxReplicas": 3},
                 "currentReplicas": -1}), "currentReplicas"),
])
def test_bad_input_exits_2_with_message(document, fragment):
    result = plan(document)
    assert result.returncode == 2
    assert result.stdout == ""
    assert fragment in result.stderr
