#!/usr/bin/env python3
"""A real Kubernetes control plane on loopback for tests: etcd, kube-apiserver and, on request,
kube-controller-manager and KWOK (simulated nodes, no kubelets).

The binaries come from scripts/fetch_kube.sh (built from Go modules into .deps/kube/bin; see
docs/kubernetes-test-plane.md). Standard library only; runs with /usr/bin/python3 or the .venv.

Command line:
  kube_control_plane.py start --dir DIR [--controller-manager] [--kwok]
      Starts everything, waits until it is ready, writes DIR/kubeconfig (bearer token user) and
      DIR/kubeconfig-cert (client certificate user), prints one JSON line
      {"kubeconfig", "kubeconfig_cert", "server", "token", "ca", "dir"} and exits, leaving the
      processes running (pids in DIR/pids.json, logs in DIR/<name>.log).
  kube_control_plane.py stop --dir DIR
      Stops them (SIGTERM, then SIGKILL after a bound). Idempotent.
  kube_control_plane.py restart-apiserver --dir DIR
      Stops kube-apiserver and starts it again on the same port over the same etcd, returning
      once /readyz answers ok.

From Python:
  with ControlPlane(dir, controller_manager=True, kwok=True) as cp:
      cp.server, cp.token, cp.ca, cp.kubeconfig, cp.kubeconfig_cert, cp.restart_apiserver()
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
DEFAULT_KUBE_DIR = REPO / ".deps" / "kube"

# Upper bounds only: every wait polls a condition and returns as soon as it holds. The first start
# of kube-apiserver on a busy two-core machine can take tens of seconds (it bootstraps RBAC roles,
# priority levels and the system namespaces before /readyz turns ok).
ETCD_READY_TIMEOUT_S = 60.0
APISERVER_READY_TIMEOUT_S = 180.0
CONTROLLER_MANAGER_READY_TIMEOUT_S = 120.0
KWOK_READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
# kube-apiserver on SIGTERM stops listening at once and drains requests, then waits for open
# HTTP/2 connections (the watches of the controller manager and KWOK) to close, for up to
# --request-timeout (a minute). All its state is in etcd, so after this grace it is killed.
APISERVER_STOP_GRACE_S = 5.0
POLL_INTERVAL_S = 0.1

SERVICE_CIDR = "10.96.0.0/16"      # the Service ClusterIP range (kubeadm's default)
POD_CIDR = "10.244.0.1/16"         # KWOK hands out pod IPs from here; nothing routes to them
ADMIN_USER = "galley-admin"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node=fake"
# How fast the node lifecycle controller notices a node that stopped renewing its Lease: it looks
# every NODE_MONITOR_PERIOD and declares the node unreachable (Ready=Unknown, then the NoExecute
# taint) after NODE_MONITOR_GRACE without a renewal. Kubernetes' defaults are 5 s and 50 s; the
# tests use shorter ones so that a node failure plays out in seconds. The grace must exceed
# KWOK's renewal interval (a quarter of its 40 s lease: 10 s).
NODE_MONITOR_PERIOD = "2s"
NODE_MONITOR_GRACE = "20s"

# Stop order: clients before the servers they talk to.
STOP_ORDER = ("kwok", "kube-controller-manager", "kube-apiserver", "etcd")


class ControlPlaneError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# Small helpers


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(what: str, condition: Callable[[], bool], timeout_s: float,
              alive: Callable[[], str | None] = lambda: None) -> None:
    """Polls `condition` until it returns True; fails after `timeout_s` or as soon as `alive`
    reports that a process the condition depends on has died."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return
        dead = alive()
        if dead:
            raise ControlPlaneError(f"{what}: {dead}")
        if time.monotonic() > deadline:
            raise ControlPlaneError(f"{what}: not ready after {timeout_s:.0f}s")
        time.sleep(POLL_INTERVAL_S)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise ControlPlaneError(f"openssl {' '.join(args)} failed:\n{proc.stdout}")


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _proc_cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.decode(errors="replace").split("\0")


def _proc_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (/proc/PID/stat, field 3, see proc(5))."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split(" ", 1)[0] != "Z"


# ---------------------------------------------------------------------------------------------
# Certificates (openssl CLI) and kubeconfigs


def _make_certificates(d: Path) -> None:
    """A CA, the apiserver's serving certificate, client certificates for the admin (group
    system:masters) and for kube-controller-manager (the identity the bootstrap RBAC policy binds
    to its role), and the service-account signing key. ECDSA P-256 keeps generation fast."""
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650",
             "-subj", "/CN=galley-test-ca",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
             "-addext", "subjectKeyIdentifier=hash", cwd=d)

    def leaf(name: str, subject: str, ext: str) -> None:
        (d / f"{name}.ext").write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n" + ext)
        _openssl("req", "-new", *curve, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", subject, cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "365",
                 "-extfile", f"{name}.ext", cwd=d)
        (d / f"{name}.csr").unlink()
        (d / f"{name}.ext").unlink()

    sans = ",".join(["IP:127.0.0.1", "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default",
                     "DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local",
                     "IP:10.96.0.1"])
    leaf("apiserver", "/CN=kube-apiserver",
         f"extendedKeyUsage=serverAuth\nsubjectAltName={sans}\n")
    leaf("admin", f"/O=system:masters/CN={ADMIN_USER}", "extendedKeyUsage=clientAuth\n")
    leaf("controller-manager", "/CN=system:kube-controller-manager",
         "extendedKeyUsage=clientAuth\n")
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "sa.key", cwd=d)
    _openssl("ec", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)


def _write_kubeconfig(path: Path, server: str, ca: Path, user_name: str,
                      user: dict[str, str]) -> None:
    """A kubeconfig with one cluster, one user and one context, written as plain block YAML
    (format: https://kubernetes.io/docs/concepts/configuration/organize-cluster-access-kubeconfig/)."""
    user_lines = "".join(f"    {k}: {v}\n" for k, v in user.items())
    path.write_text(
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        "- name: galley-test\n"
        "  cluster:\n"
        f"    server: {server}\n"
        f"    certificate-authority-data: {_b64(ca)}\n"
        "users:\n"
        f"- name: {user_name}\n"
        "  user:\n"
        f"{user_lines}"
        "contexts:\n"
        "- name: galley-test\n"
        "  context:\n"
        "    cluster: galley-test\n"
        f"    user: {user_name}\n"
        "    namespace: default\n"
        "current-context: galley-test\n"
        "preferences: {}\n")
    path.chmod(0o600)


# ---------------------------------------------------------------------------------------------
# The control plane


class ControlPlane:
    """Starts (or, with `attach`, takes over) a control plane whose state lives in `dir`."""

    def __init__(self, dir: str | os.PathLike, controller_manager: bool = False,
                 kwok: bool = False, kube_dir: str | os.PathLike | None = None,
                 extra_kwok_stages: list[str | os.PathLike] = ()):
        self.dir = Path(dir).resolve()
        self.extra_kwok_stages = [Path(p).resolve() for p in extra_kwok_stages]
        self.controller_manager = controller_manager
        self.kwok = kwok
        self.kube_dir = Path(kube_dir or os.environ.get("GALLEY_KUBE_DIR") or DEFAULT_KUBE_DIR)
        self.bin_dir = self.kube_dir / "bin"
        self.server = ""
        self.token = ""
        self.ca = str(self.dir / "ca.crt")
        self.kubeconfig = str(self.dir / "kubeconfig")
        self.kubeconfig_cert = str(self.dir / "kubeconfig-cert")
        self._children: dict[int, subprocess.Popen] = {}  # processes this object started

    # -- public API ------------------------------------------------------------------------

    def __enter__(self) -> "ControlPlane":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def info(self) -> dict[str, str]:
        return {"kubeconfig": self.kubeconfig, "kubeconfig_cert": self.kubeconfig_cert,
                "server": self.server, "token": self.token, "ca": self.ca, "dir": str(self.dir)}

    def start(self) -> "ControlPlane":
        for name in ["etcd", "kube-apiserver"] + (["kube-controller-manager"] if
                                                   self.controller_manager else []) + (
                                                      ["kwok"] if self.kwok else []):
            if not os.access(self.bin_dir / name, os.X_OK):
                raise ControlPlaneError(
                    f"{self.bin_dir / name} is missing: build the control plane with "
                    f"scripts/fetch_kube.sh first")
        self.dir.mkdir(parents=True, exist_ok=True)
        if any(_proc_running(pid) for pid in self._pids().values()):
            raise ControlPlaneError(f"{self.dir} already has a running control plane "
                                    f"(pids.json); stop it first")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        pids = self._pids()
        state = self._state()
        for name in STOP_ORDER:
            if name in pids:
                self._stop_one(name, pids[name], state.get("binaries", {}).get(name))
        (self.dir / "pids.json").unlink(missing_ok=True)

    def restart_apiserver(self) -> None:
        state = self._state()
        pids = self._pids()
        if "kube-apiserver" not in pids or not state.get("apiserver_args"):
            raise ControlPlaneError(f"no kube-apiserver recorded in {self.dir}")
        self._load_info(state)
        self._stop_one("kube-apiserver", pids["kube-apiserver"],
                       state["binaries"]["kube-apiserver"])
        pid = self._spawn("kube-apiserver", state["apiserver_args"])
        pids["kube-apiserver"] = pid
        self._save_pids(pids)
        self._wait_apiserver_ready(pid)

    @classmethod
    def attach(cls, dir: str | os.PathLike) -> "ControlPlane":
        """The control plane a `start` left running in `dir`."""
        cp = cls(dir)
        state = cp._state()
        if not state:
            raise ControlPlaneError(f"no control plane state in {cp.dir}")
        cp._load_info(state)
        cp.controller_manager = state.get("controller_manager", False)
        cp.kwok = state.get("kwok", False)
        if state.get("kube_dir"):
            cp.kube_dir = Path(state["kube_dir"])
            cp.bin_dir = cp.kube_dir / "bin"
        return cp

    # -- HTTP to the apiserver --------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        req = urllib.request.Request(self.server + path,
                                     headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(req, context=self.ssl_context(), timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    # -- internals ---------------------------------------------------------------------------

    def _state(self) -> dict:
        try:
            return json.loads((self.dir / "state.json").read_text())
        except (OSError, ValueError):
            return {}

    def _pids(self) -> dict[str, int]:
        try:
            return json.loads((self.dir / "pids.json").read_text())
        except (OSError, ValueError):
            return {}

    def _save_pids(self, pids: dict[str, int]) -> None:
        tmp = self.dir / "pids.json.tmp"
        tmp.write_text(json.dumps(pids, indent=1) + "\n")
        tmp.replace(self.dir / "pids.json")

    def _load_info(self, state: dict) -> None:
        self.server = state["server"]
        self.token = state["token"]

    def _spawn(self, name: str, args: list[str]) -> int:
        log = open(self.dir / f"{name}.log", "ab")
        try:
            proc = subprocess.Popen([str(self.bin_dir / name), *args], stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, cwd=self.dir,
                                    start_new_session=True, close_fds=True)
        finally:
            log.close()
        self._children[proc.pid] = proc
        return proc.pid

    def _died(self, name: str, pid: int) -> Callable[[], str | None]:
        def check() -> str | None:
            proc = self._children.get(pid)
            running = proc.poll() is None if proc else _proc_running(pid)
            if running:
                return None
            code = proc.returncode if proc else "?"
            return (f"{name} exited (status {code}); last lines of "
                    f"{self.dir / (name + '.log')}:\n{_tail(self.dir / (name + '.log'))}")
        return check

    def _stop_one(self, name: str, pid: int, binary: str | None) -> None:
        proc = self._children.pop(pid, None)
        if proc is None:
            # Started by another process: make sure the pid still is that program before
            # signalling it, since pids get reused.
            cmd = _proc_cmdline(pid)
            if not cmd or (binary and cmd[0] != binary) or not _proc_running(pid):
                return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        grace = APISERVER_STOP_GRACE_S if name == "kube-apiserver" else STOP_TIMEOUT_S
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                return
            if proc is None and not _proc_running(pid):
                return
            time.sleep(POLL_INTERVAL_S)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        if proc is not None:
            proc.wait(timeout=STOP_TIMEOUT_S)
        else:
            _wait_for(f"{name} (pid {pid}) to exit after SIGKILL", lambda: not _proc_running(pid),
                      STOP_TIMEOUT_S)

    def _apiserver_ready(self) -> bool:
        try:
            status, body = self.get("/readyz", timeout=3.0)
        except (OSError, ssl.SSLError):
            return False
        return status == 200 and body.strip() == b"ok"

    def _wait_apiserver_ready(self, pid: int) -> None:
        _wait_for("kube-apiserver /readyz", self._apiserver_ready, APISERVER_READY_TIMEOUT_S,
                  self._died("kube-apiserver", pid))

    def _start(self) -> None:
        d = self.dir
        _make_certificates(d)
        self.token = secrets.token_hex(24)
        # Static token file: token,user,uid,"group1,group2"
        # (https://kubernetes.io/docs/reference/access-authn-authz/authentication/#static-token-file)
        tokens = d / "tokens.csv"
        tokens.write_text(f'{self.token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
        tokens.chmod(0o600)

        etcd_port, peer_port, api_port = _free_port(), _free_port(), _free_port()
        self.server = f"https://127.0.0.1:{api_port}"
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        pids: dict[str, int] = {}
        state = {"server": self.server, "token": self.token, "etcd": etcd_url,
                 "controller_manager": self.controller_manager, "kwok": self.kwok,
                 "kube_dir": str(self.kube_dir),
                 "binaries": {n: str(self.bin_dir / n) for n in STOP_ORDER}}

        def record(name: str, pid: int) -> None:
            pids[name] = pid
            self._save_pids(pids)

        # etcd (https://etcd.io/docs/v3.6/op-guide/configuration/): a one-member cluster on
        # loopback. --unsafe-no-fsync trades durability on power loss, which a test store
        # does not need, for much lower write latency on a shared disk.
        peer = f"http://127.0.0.1:{peer_port}"
        etcd_pid = self._spawn("etcd", [
            "--name=default", f"--data-dir={d / 'etcd-data'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}", "--log-level=warn", "--unsafe-no-fsync"])
        record("etcd", etcd_pid)

        def etcd_healthy() -> bool:
            try:
                with urllib.request.urlopen(etcd_url + "/health", timeout=3.0) as r:
                    return json.loads(r.read()).get("health") == "true"
            except (OSError, ValueError):
                return False
        _wait_for("etcd /health", etcd_healthy, ETCD_READY_TIMEOUT_S, self._died("etcd", etcd_pid))

        # kube-apiserver, flags as in
        # https://kubernetes.io/docs/reference/command-line-tools-reference/kube-apiserver/ ,
        # serving TLS on loopback only, with client certificates and the static token file as
        # authenticators. The endpoint reconciler is off: it would publish 127.0.0.1 as the
        # endpoint of the `kubernetes` Service, which Endpoints validation rejects.
        apiserver_args = [
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={api_port}", f"--cert-dir={d / 'apiserver-certs'}",
            f"--tls-cert-file={d / 'apiserver.crt'}",
            f"--tls-private-key-file={d / 'apiserver.key'}",
            f"--client-ca-file={d / 'ca.crt'}", f"--token-auth-file={tokens}",
            "--authorization-mode=Node,RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={d / 'sa.pub'}",
            f"--service-account-signing-key-file={d / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--endpoint-reconciler-type=none", "--allow-privileged=true", "--profiling=false",
        ]
        state["apiserver_args"] = apiserver_args
        (d / "state.json").write_text(json.dumps(state, indent=1) + "\n")
        api_pid = self._spawn("kube-apiserver", apiserver_args)
        record("kube-apiserver", api_pid)
        self._wait_apiserver_ready(api_pid)

        ca = d / "ca.crt"
        _write_kubeconfig(Path(self.kubeconfig), self.server, ca, ADMIN_USER, {"token": self.token})
        _write_kubeconfig(Path(self.kubeconfig_cert), self.server, ca, ADMIN_USER, {
            "client-certificate-data": _b64(d / "admin.crt"),
            "client-key-data": _b64(d / "admin.key")})

        if self.controller_manager:
            cm_kubeconfig = d / "controller-manager.kubeconfig"
            _write_kubeconfig(cm_kubeconfig, self.server, ca,
                              "system:kube-controller-manager", {
                "client-certificate-data": _b64(d / "controller-manager.crt"),
                "client-key-data": _b64(d / "controller-manager.key")})
            # https://kubernetes.io/docs/reference/command-line-tools-reference/kube-controller-manager/
            # Each controller runs under its own service account, as kubeadm sets it up, so the
            # bootstrap RBAC roles apply; one instance, so no leader election.
            cm_pid = self._spawn("kube-controller-manager", [
                f"--kubeconfig={cm_kubeconfig}",
                f"--authentication-kubeconfig={cm_kubeconfig}",
                f"--authorization-kubeconfig={cm_kubeconfig}",
                "--bind-address=127.0.0.1", f"--secure-port={_free_port()}",
                f"--cert-dir={d / 'controller-manager-certs'}",
                "--leader-elect=false", "--use-service-account-credentials=true",
                f"--service-account-private-key-file={d / 'sa.key'}",
                f"--root-ca-file={ca}",
                f"--cluster-signing-cert-file={ca}", f"--cluster-signing-key-file={d / 'ca.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}", "--profiling=false",
                f"--node-monitor-period={NODE_MONITOR_PERIOD}",
                f"--node-monitor-grace-period={NODE_MONITOR_GRACE}"])
            record("kube-controller-manager", cm_pid)
            # Pods are admitted only once their namespace's service account exists (the
            # ServiceAccount admission plugin), so wait for the one in `default`.
            _wait_for("the default service account (kube-controller-manager)",
                      lambda: self.get("/api/v1/namespaces/default/serviceaccounts/default")[0]
                      == 200, CONTROLLER_MANAGER_READY_TIMEOUT_S,
                      self._died("kube-controller-manager", cm_pid))

        if self.kwok:
            stages = sorted((self.kube_dir / "kwok-stages").glob("*.yaml"))
            if not stages:
                raise ControlPlaneError(f"no KWOK stages in {self.kube_dir / 'kwok-stages'}: "
                                        f"run scripts/fetch_kube.sh")
            stages += self.extra_kwok_stages  # the caller's own (e.g. a node failure)
            # https://kwok.sigs.k8s.io/docs/user/kwok-in-cluster/ : KWOK manages the nodes that
            # carry the annotation and plays its upstream default stages on them and their pods
            # (node-initialize, node-heartbeat-with-lease, pod-ready, pod-complete, pod-delete).
            kwok_pid = self._spawn("kwok", [
                f"--kubeconfig={self.kubeconfig_cert}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}",
                "--node-lease-duration-seconds=40", f"--cidr={POD_CIDR}",
                *[f"--config={s}" for s in stages]])
            record("kwok", kwok_pid)
            # KWOK has no readiness endpoint unless it serves a kubelet port; it logs a "Watch
            # nodes" line (pkg/kwok/cmd/root.go) once its configuration and stages are loaded and
            # its client is built, just before its controllers start.
            kwok_log = d / "kwok.log"
            _wait_for("kwok to start watching nodes",
                      lambda: '"msg":"Watch nodes"' in kwok_log.read_text(errors="replace"),
                      KWOK_READY_TIMEOUT_S, self._died("kwok", kwok_pid))


# ---------------------------------------------------------------------------------------------
# Command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a control plane and print its details as JSON")
    start.add_argument("--dir", required=True)
    start.add_argument("--controller-manager", action="store_true")
    start.add_argument("--kwok", action="store_true")
    for name in ("stop", "restart-apiserver"):
        sub.add_parser(name).add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            cp = ControlPlane(args.dir, controller_manager=args.controller_manager,
                              kwok=args.kwok)
            cp.start()
            print(json.dumps(cp.info()), flush=True)
        elif args.command == "stop":
            ControlPlane(args.dir).stop()
        else:
            ControlPlane.attach(args.dir).restart_apiserver()
    except ControlPlaneError as e:
        print(f"kube_control_plane: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
