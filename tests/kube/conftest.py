"""Fixtures for the Kubernetes control-plane tests.

`control_plane` is one real control plane for the whole session (etcd, kube-apiserver,
kube-controller-manager and KWOK on loopback), started through the importable `ControlPlane` of
scripts/kube_control_plane.py in a scratch folder under pytest's tmp path, and stopped at the end.
The binaries come from scripts/fetch_kube.sh, which is run first (it returns at once when the
pinned build is already in place).
"""

from __future__ import annotations

import base64
import json
import json
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import kube_control_plane  # noqa: E402

FETCH_TIMEOUT_S = 3600.0   # a cold build of the binaries (docs/kubernetes-test-plane.md)
HTTP_TIMEOUT_S = 10.0


def ensure_binaries() -> None:
    proc = subprocess.run([str(REPO / "scripts" / "fetch_kube.sh")], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=FETCH_TIMEOUT_S)
    if proc.returncode != 0:
        pytest.fail(f"scripts/fetch_kube.sh failed:\n{proc.stdout}", pytrace=False)


def poll(what: str, condition: Callable[[], Any], timeout_s: float = 60.0,
         interval_s: float = 0.2) -> Any:
    """Returns the first truthy value of `condition()`; fails the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval_s)
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what} (last value: {last!r})")


class JsonLogProcess:
    """A Galley process whose JSON log lines are collected as they come (and copied to a file)."""

    def __init__(self, cmd: list[str], log_path: Path):
        self.lines: list[dict] = []
        self.cv = threading.Condition()
        self.log_path = log_path
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        with open(self.log_path, "w") as log:
            for raw in self.proc.stdout:
                log.write(raw)
                log.flush()
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                with self.cv:
                    self.lines.append(line)
                    self.cv.notify_all()

    def wait_for(self, event: str, pred=lambda l: True, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for line in self.lines:
                    if line.get("event") == event and pred(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and not self.reader.is_alive():
                    raise AssertionError(f"no {event} within {timeout}s; log {self.log_path}:\n"
                                         + self.log_path.read_text()[-4000:])
                self.cv.wait(left)

    def events(self, event: str) -> list[dict]:
        with self.cv:
            return [l for l in self.lines if l.get("event") == event]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(30)
        self.reader.join(10)
        return rc


class Kubeconfig:
    """The fields Galley's tests need from a kubeconfig written by kube_control_plane.py."""

    def __init__(self, path: str, scratch: Path):
        text = Path(path).read_text()

        def field(name: str) -> str | None:
            m = re.search(rf"^\s*{re.escape(name)}: (\S+)\s*$", text, re.MULTILINE)
            return m.group(1) if m else None

        self.server = field("server")
        self.token = field("token")
        self.context = ssl.create_default_context(
            cadata=base64.b64decode(field("certificate-authority-data")).decode())
        cert, key = field("client-certificate-data"), field("client-key-data")
        if cert and key:
            scratch.mkdir(parents=True, exist_ok=True)
            (scratch / "client.crt").write_bytes(base64.b64decode(cert))
            (scratch / "client.key").write_bytes(base64.b64decode(key))
            self.context.load_cert_chain(scratch / "client.crt", scratch / "client.key")


class KubeClient:
    """Plain JSON over HTTPS to the apiserver, with the CA from the kubeconfig verifying TLS."""

    def __init__(self, kubeconfig: Kubeconfig):
        self.kc = kubeconfig

    def request(self, method: str, path: str, body: Any = None,
                token: str | None = None) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        token = self.kc.token if token is None else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.kc.server + path, data=data, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, context=self.kc.context,
                                        timeout=HTTP_TIMEOUT_S) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def get(self, path: str) -> Any:
        status, obj = self.request("GET", path)
        assert status == 200, (path, status, obj)
        return obj

    def create(self, path: str, body: Any) -> Any:
        status, obj = self.request("POST", path, body)
        assert status == 201, (path, status, obj)
        return obj


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory):
    ensure_binaries()
    # Plus the tests' own KWOK stages (tests/kube/kwok/: a node that fails on a label).
    cp = kube_control_plane.ControlPlane(
        tmp_path_factory.mktemp("kube"), controller_manager=True, kwok=True,
        extra_kwok_stages=sorted((Path(__file__).parent / "kwok").glob("*.yaml")))
    try:
        cp.start()
    except kube_control_plane.ControlPlaneError as e:
        pytest.fail(f"control plane did not start: {e}", pytrace=False)
    yield cp
    cp.stop()


@pytest.fixture(scope="session")
def kube(control_plane, tmp_path_factory) -> KubeClient:
    """A client authenticated with the bearer token of `control_plane.kubeconfig`."""
    return KubeClient(Kubeconfig(control_plane.kubeconfig, tmp_path_factory.mktemp("kc")))
