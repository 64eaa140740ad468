"""`galley model fetch` (what an InferenceModel's init container runs) against real HTTP and HTTPS
servers on 127.0.0.1: the model is fetched (redirects followed), checked by SHA-256, cached on
the "node" and served by `galley serve` from the repository it laid out; a wrong checksum, a 404
and an untrusted certificate fail with the reason in the termination message and leave nothing
behind; the cache answers when the server is gone."""
from __future__ import annotations

import hashlib
import json
import shutil
import ssl
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import TEST_DATA, clean_env, galley_bin
from test_tls import Pki

MODEL = TEST_DATA / "onnx" / "add_mul.onnx"
SHA = hashlib.sha256(MODEL.read_bytes()).hexdigest()


class FileServer:
    """Serves a folder over HTTP (or HTTPS with `pki`), with /old redirecting to /add_mul.onnx."""

    def __init__(self, root: Path, pki: Pki | None = None):
        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=str(root), **kw)

            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path == "/old":
                    self.send_response(302)
                    self.send_header("Location", "/add_mul.onnx")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                super().do_GET()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if pki is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(pki.server), str(pki.server_key))
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


@pytest.fixture
def files(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(MODEL, root / "add_mul.onnx")
    servers = []

    def start(pki: Pki | None = None) -> FileServer:
        s = FileServer(root, pki)
        servers.append(s)
        return s
    yield start
    for s in servers:
        s.close()


def fetch(tmp_path: Path, source: str, *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    term = tmp_path / "termination-log"
    term.unlink(missing_ok=True)
    p = subprocess.run([galley_bin(), "model", "fetch", "--source", source, "--name", "add_mul",
                        "--termination-log", str(term), *extra], capture_output=True, text=True,
                       timeout=120, env=clean_env(tmp_path))
    return p, term


def event(p: subprocess.CompletedProcess, name: str) -> dict:
    lines = [json.loads(l) for l in (p.stdout + p.stderr).splitlines() if l.startswith("{")]
    found = [l for l in lines if l.get("event") == name]
    assert found, (p.stdout, p.stderr)
    return found[-1]


def test_fetch_over_http_check_cache_and_serve(galley, files, tmp_path):
    srv = files()
    repo, cache = tmp_path / "repo", tmp_path / "cache"
    p, _ = fetch(tmp_path, f"http://127.0.0.1:{srv.port}/old", "--sha256", SHA, "--dest", str(repo),
                 "--cache", str(cache), "--max-batch-size", "8", "--version", "2")
    assert p.returncode == 0, p.stderr
    done = event(p, "model_fetched")
    assert done["sha256"] == SHA and done["from_cache"] is False
    assert done["bytes"] == MODEL.stat().st_size
    assert (repo / "add_mul" / "2" / "model.onnx").read_bytes() == MODEL.read_bytes()
    assert json.loads((repo / "add_mul" / "config.json").read_text())["max_batch_size"] == 8
    assert (cache / "sha256" / SHA).read_bytes() == MODEL.read_bytes()

    # `galley serve` serves what was laid out.
    server = galley(flags={"--model-repository": str(repo), "--grpc-port": "-1"})
    c = server.client()
    r = c.request("POST", "/v2/models/add_mul/infer", body=json.dumps({"inputs": [
        {"name": "a", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
        {"name": "b", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}),
        headers={"Content-Type": "application/json"})
    assert r.status == 200, r
    outs = sorted(o["data"] for o in r.json()["outputs"])
    assert outs == sorted([[2, 3, 4, 5], [1, 2, 3, 4]])

    # The node's cache answers when the source is gone.
    srv.close()
    again, _ = fetch(tmp_path, f"http://127.0.0.1:{srv.port}/add_mul.onnx", "--sha256", SHA,
                     "--dest", str(tmp_path / "repo2"), "--cache", str(cache))
    assert again.returncode == 0, again.stderr
    assert event(again, "model_fetched")["from_cache"] is True
    assert (tmp_path / "repo2" / "add_mul" / "1" / "model.onnx").read_bytes() == MODEL.read_bytes()


def test_failures_say_why_in_the_termination_message_and_leave_nothing(files, tmp_path):
    srv = files()
    repo = tmp_path / "repo"
    wrong = "0" * 64
    p, term = fetch(tmp_path, f"http://127.0.0.1:{srv.port}/add_mul.onnx", "--sha256", wrong,
                    "--dest", str(repo), "--cache", str(tmp_path / "cache"))
    assert p.returncode == 1
    assert term.read_text() == (f"sha256 of http://127.0.0.1:{srv.port}/add_mul.onnx is {SHA}, "
                                f"the resource says {wrong}")
    assert event(p, "model_fetch_failed")["code"] == "FAILED_PRECONDITION"
    assert list(repo.iterdir()) == [] and not (tmp_path / "cache" / "sha256" / wrong).exists()

    p, term = fetch(tmp_path, f"http://127.0.0.1:{srv.port}/missing.onnx", "--dest", str(repo))
    assert p.returncode == 1 and "HTTP 404" in term.read_text(), term.read_text()
    p, term = fetch(tmp_path, "s3://bucket/m.onnx", "--dest", str(repo))
    assert p.returncode == 1 and "not one of file, pvc, http, https" in term.read_text()
    closed = srv.port
    srv.close()
    p, term = fetch(tmp_path, f"http://127.0.0.1:{closed}/add_mul.onnx", "--dest", str(repo))
    assert p.returncode == 1 and "cannot connect" in term.read_text(), term.read_text()
    assert list(repo.iterdir()) == []


def test_https_checks_the_server_certificate(files, tmp_path):
    d = tmp_path / "pki"
    d.mkdir()
    pki = Pki(d)
    srv = files(pki)
    url = f"https://127.0.0.1:{srv.port}/add_mul.onnx"
    p, term = fetch(tmp_path, url, "--sha256", SHA, "--dest", str(tmp_path / "repo"),
                    "--ca-file", str(pki.ca))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "repo" / "add_mul" / "1" / "model.onnx").read_bytes() == MODEL.read_bytes()
    # A CA that did not sign the server's certificate: refused.
    p, term = fetch(tmp_path, url, "--dest", str(tmp_path / "repo-b"), "--ca-file", str(pki.other_ca))
    assert p.returncode == 1
    assert "TLS with 127.0.0.1" in term.read_text() and "certificate verify failed" in term.read_text()
