"""Galley's container image (scripts/image.sh, deploy/image/Containerfile): the root file system
has no shell, and the server runs from it and answers (ONNX Runtime no longer needs /bin/sh);
buildah builds it reproducibly, and podman runs it as the non-root user and stops it cleanly.
Container storage is the test's own (vfs, in its tmp folder); traffic stays on loopback (host
network, the server bound to 127.0.0.1). The image is built from the release binary."""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import free_port

REPO = Path(__file__).resolve().parents[2]
RELEASE = REPO / "build" / "release" / "galley"
IMAGE_SH = REPO / "scripts" / "image.sh"
INFER = {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES",
                     "data": ["I love it", "This is the worst service ever"]}]}


def post(port: int, path: str, doc: dict) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(doc).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def wait_ready(port: int, proc_alive, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc_alive(), "the server exited before it was ready"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)  # polling a port that is not open yet; not a synchronisation
    raise AssertionError(f"not ready on port {port} within {timeout} s")


def labels(answer: dict) -> list[str]:
    return next(o["data"] for o in answer["outputs"] if o["name"] == "label")


def test_the_root_file_system_has_no_shell_and_the_server_runs_from_it(tmp_path):
    root = tmp_path / "rootfs"
    subprocess.run([str(IMAGE_SH), "rootfs", str(root)], check=True, timeout=300,
                   env={**os.environ, "GALLEY_BIN": str(RELEASE)})
    assert not (root / "bin" / "sh").exists() and not (root / "usr" / "bin" / "sh").exists()
    assert (root / "models" / "sentiment" / "config.json").exists()
    assert not (root / "models" / "training").exists()
    assert "galley:x:65532:65532" in (root / "etc" / "passwd").read_text()
    port = free_port()
    # Its own root (and a user namespace, so that no privilege is needed): /bin/sh, /etc/machine-id
    # and /proc do not exist there.
    proc = subprocess.Popen(["unshare", "--map-root-user", f"--root={root}",
                             "/usr/local/bin/galley", "serve", "--listen", f"127.0.0.1:{port}",
                             "--grpc-port", "-1", "--model-repository", "/models"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_ready(port, lambda: proc.poll() is None)
        assert labels(post(port, "/v2/models/sentiment/infer", INFER)) == ["Positive", "Negative"]
        assert post(port, "/inference/analyze", {"text": "what a lovely day"})["sentiment"] == "Positive"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out[-3000:]
    assert "telemetry" not in out.lower(), out[-3000:]


@pytest.fixture
def containers(tmp_path):
    """buildah and podman with storage and configuration of the test's own."""
    for tool in ("buildah", "podman"):
        assert shutil.which(tool), f"{tool} is not installed (scripts/deps.sh installs it)"
    storage = tmp_path / "storage.conf"
    storage.write_text(f'[storage]\ndriver = "vfs"\ngraphroot = "{tmp_path}/graph"\n'
                       f'runroot = "{tmp_path}/run"\n')
    # podman asks for more open files than a process may have here; runc rather than crun, which
    # refuses this machine's hybrid cgroups.
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)
    conf = tmp_path / "containers.conf"
    conf.write_text(f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", '
                    f'"nproc={nproc}:{nproc}"]\n[engine]\nruntime = "runc"\n')
    return {**os.environ, "CONTAINERS_STORAGE_CONF": str(storage), "CONTAINERS_CONF": str(conf),
            "GALLEY_BIN": str(RELEASE)}


def test_the_image_builds_reproducibly_and_podman_runs_it(containers, tmp_path):
    tag = f"localhost/galley:test-{uuid.uuid4().hex[:8]}"
    run = lambda *a, **kw: subprocess.run(a, env=containers, capture_output=True, text=True,  # noqa: E731
                                          timeout=kw.pop("timeout", 300), **kw)
    built = run(str(IMAGE_SH), "build", tag)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    first = run("podman", "image", "inspect", "--format", "{{.Digest}}", tag).stdout.strip()
    again = run(str(IMAGE_SH), "build", tag)
    assert again.returncode == 0, again.stderr[-3000:]
    assert run("podman", "image", "inspect", "--format", "{{.Digest}}", tag).stdout.strip() == first
    info = json.loads(run("podman", "image", "inspect", tag).stdout)[0]
    assert info["Config"]["User"] == "65532:65532"
    assert info["Config"]["Entrypoint"] == ["/usr/local/bin/galley"]
    size_mb = info["Size"] / 1e6
    assert size_mb < 150, size_mb  # the binary, its libraries and the models; nothing else
    print(f"\nimage {tag}: {size_mb:.1f} MB, digest {first}")

    port = free_port()
    name = f"galley-test-{uuid.uuid4().hex[:8]}"
    started = run("podman", "run", "-d", "--name", name, "--network", "host", "--read-only",
                  "--tmpfs", "/tmp", tag, "serve", "--listen", f"127.0.0.1:{port}",
                  "--grpc-port", "-1", "--model-repository", "/models", "--drain-delay-ms", "0")
    assert started.returncode == 0, started.stderr
    try:
        running = lambda: run("podman", "inspect", "--format", "{{.State.Running}}",  # noqa: E731
                              name).stdout.strip() == "true"
        wait_ready(port, running)
        assert labels(post(port, "/v2/models/sentiment/infer", INFER)) == ["Positive", "Negative"]
        assert run("podman", "exec", name, "/bin/sh", "-c", "true").returncode != 0  # no shell
        stopped = run("podman", "stop", "-t", "30", name, timeout=60)
        assert stopped.returncode == 0, stopped.stderr
        code = run("podman", "inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert code == "0", run("podman", "logs", name).stdout[-3000:]
        assert '"event":"stopped"' in run("podman", "logs", name).stdout
    finally:
        run("podman", "rm", "-f", name)
        run("podman", "rmi", "-f", tag)
