"""TLS on `galley serve` and `galley gateway` (server certificates, client certificates for mutual
TLS, reload when the files change) and from the gateway to its replicas, with a throwaway CA the
test makes with the openssl command. Real clients: curl, Python's ssl module and Triton's HTTP
client."""
from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from test_gateway import GATEWAY_FLAGS


def run(*cmd: str, cwd: Path) -> None:
    res = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True)
    assert res.returncode == 0, (cmd, res.stdout, res.stderr)


class Pki:
    """A CA, a server certificate for 127.0.0.1, a client certificate, and a second CA that
    nobody trusts with a client certificate of its own."""

    def __init__(self, d: Path):
        self.d = d
        self.ca, self.ca_key = self._ca("ca", "Galley Test CA")
        self.other_ca, self.other_ca_key = self._ca("other", "Untrusted CA")
        self.server, self.server_key = self.issue("server", "127.0.0.1",
                                                  "subjectAltName=IP:127.0.0.1,DNS:localhost")
        self.client, self.client_key = self.issue("client", "client", "extendedKeyUsage=clientAuth")
        self.stranger, self.stranger_key = self.issue("stranger", "stranger",
                                                      "extendedKeyUsage=clientAuth", ca="other")

    def _ca(self, name: str, cn: str) -> tuple[Path, Path]:
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj",
            f"/CN={cn}", cwd=self.d)
        return self.d / f"{name}.pem", self.d / f"{name}.key"

    def issue(self, name: str, cn: str, ext: str, ca: str = "ca") -> tuple[Path, Path]:
        (self.d / f"{name}.ext").write_text(ext + "\n")
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=self.d)
        run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey",
            f"{ca}.key", "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile",
            f"{name}.ext", cwd=self.d)
        return self.d / f"{name}.pem", self.d / f"{name}.key"


@pytest.fixture
def pki(tmp_path) -> Pki:
    d = tmp_path / "pki"
    d.mkdir()
    return Pki(d)


def curl(url: str, *args: str, data: str | None = None) -> subprocess.CompletedProcess:
    cmd = ["curl", "-sS", "--max-time", "10", *args]
    if data is not None:
        cmd += ["-H", "Content-Type: application/json", "-d", data]
    return subprocess.run(cmd + [url], capture_output=True, text=True)


def peer_certificate(port: int, cafile: Path) -> bytes:
    ctx = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return s.getpeercert(binary_form=True)


def tls_flags(pki: Pki, client_ca: bool = False) -> dict[str, str]:
    f = {"--tls-cert": str(pki.server), "--tls-key": str(pki.server_key)}
    if client_ca:
        f["--tls-client-ca"] = str(pki.ca)
    return f


def test_https_serve_with_curl_python_and_tritonclient(galley, pki):
    import tritonclient.http as httpclient
    srv = galley(flags=tls_flags(pki))
    url = f"https://127.0.0.1:{srv.port}"
    r = curl(f"{url}/inference/analyze", "--cacert", str(pki.ca), data='{"text": "lovely"}')
    assert r.returncode == 0 and json.loads(r.stdout)["sentiment"] == "Positive", r
    # Plain HTTP on the TLS port gets no answer; a client that does not trust the CA refuses.
    plain = curl(f"http://127.0.0.1:{srv.port}/v2/health/live")
    assert plain.returncode != 0 and "live" not in plain.stdout, plain
    untrusted = curl(f"{url}/v2/health/live", "--cacert", str(pki.other_ca))
    assert untrusted.returncode == 60, untrusted  # curl: peer certificate cannot be authenticated
    with pytest.raises(ssl.SSLCertVerificationError):
        peer_certificate(srv.port, pki.other_ca)
    # Triton's HTTP client over TLS, binary tensors.
    tc = httpclient.InferenceServerClient(
        f"127.0.0.1:{srv.port}", ssl=True,
        ssl_context_factory=lambda: ssl.create_default_context(cafile=str(pki.ca)))
    inp = httpclient.InferInput("text", [2], "BYTES")
    inp.set_data_from_numpy(np.array([b"wonderful", b"dreadful"], dtype=object), binary_data=True)
    res = tc.infer("vader", [inp], outputs=[httpclient.InferRequestedOutput("label", binary_data=True)])
    assert [x.decode() for x in res.as_numpy("label")] == ["Positive", "Negative"]
    tc.close()


def test_mutual_tls_needs_a_client_certificate_from_the_ca(galley, pki):
    srv = galley(flags=tls_flags(pki, client_ca=True))
    url = f"https://127.0.0.1:{srv.port}/v2/health/live"
    ok = curl(url, "--cacert", str(pki.ca), "--cert", str(pki.client), "--key", str(pki.client_key))
    assert ok.returncode == 0 and json.loads(ok.stdout) == {"live": True}, ok
    for extra in ((), ("--cert", str(pki.stranger), "--key", str(pki.stranger_key))):
        r = curl(url, "--cacert", str(pki.ca), *extra)
        assert r.returncode != 0 and "live" not in r.stdout, (extra, r)
    # A client resuming its TLS session (a ticket from the first connection) is served too.
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    ctx.load_cert_chain(str(pki.client), str(pki.client_key))
    session = None
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session) as s:
                s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                answer = b""
                while chunk := s.recv(4096):
                    answer += chunk
                assert b"200 OK" in answer, answer
                resumed, session = s.session_reused, s.session
    assert resumed
    # The server is unharmed by the refused handshakes.
    again = curl(url, "--cacert", str(pki.ca), "--cert", str(pki.client), "--key", str(pki.client_key))
    assert again.returncode == 0, again


def test_certificate_files_are_reloaded_when_they_change(galley, pki):
    srv = galley(flags=tls_flags(pki))
    before = peer_certificate(srv.port, pki.ca)
    # A renewed certificate (new serial, same name) written over the old files.
    new_cert, new_key = pki.issue("renewed", "127.0.0.1", "subjectAltName=IP:127.0.0.1")
    os.replace(new_key, pki.server_key)
    os.replace(new_cert, pki.server)
    after = peer_certificate(srv.port, pki.ca)
    assert after != before
    assert after == ssl.PEM_cert_to_DER_cert(pki.server.read_text())
    srv.wait_for("tls_reloaded")
    # A broken file keeps the last good certificate.
    pki.server.write_text("not a certificate")
    assert peer_certificate(srv.port, pki.ca) == after
    srv.wait_for("tls_reload_failed")


def test_gateway_tls_front_door_and_mutual_tls_to_replicas(galley, pki):
    replica = galley(flags=tls_flags(pki, client_ca=True))
    flags = dict(GATEWAY_FLAGS)
    flags.update(tls_flags(pki))
    flags.update({"--replicas": f"127.0.0.1:{replica.port}", "--upstream-tls-ca": str(pki.ca),
                  "--upstream-tls-cert": str(pki.client), "--upstream-tls-key": str(pki.client_key)})
    gw = galley(subcommand="gateway", flags=flags)
    r = curl(f"https://127.0.0.1:{gw.port}/inference/analyze", "--cacert", str(pki.ca), "-i",
             data='{"text": "a lovely evening"}')
    assert r.returncode == 0, r
    head, _, body = r.stdout.replace("\r\n", "\n").partition("\n\n")
    assert json.loads(body)["sentiment"] == "Positive", r.stdout
    assert f"x-galley-replica: 127.0.0.1:{replica.port}" in head.lower(), head
    assert "x-galley-fallback" not in head.lower(), head
    ready = curl(f"https://127.0.0.1:{gw.port}/v2/health/ready", "--cacert", str(pki.ca))
    assert json.loads(ready.stdout)["state"] == "serving", ready


def test_gateway_refuses_a_replica_whose_certificate_it_cannot_verify(galley, pki):
    replica = galley(flags=tls_flags(pki))
    flags = dict(GATEWAY_FLAGS)
    flags.update({"--replicas": f"127.0.0.1:{replica.port}", "--upstream-tls-ca": str(pki.other_ca)})
    gw = galley(subcommand="gateway", flags=flags, wait_ready=False)
    port = gw.wait_for("listening")["port"]
    probe = gw.wait_for("replica_unhealthy")
    assert "certificate verify failed" in probe["error"] or "handshake" in probe["error"], probe
    r = curl(f"http://127.0.0.1:{port}/inference/analyze", "-i", data='{"text": "fine"}')
    assert "x-galley-fallback: true" in r.stdout.lower(), r


def test_bad_tls_files_stop_the_start_with_a_clear_error(galley, pki, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("nope")
    srv = galley(flags={"--tls-cert": str(bad), "--tls-key": str(pki.server_key)}, wait_ready=False)
    assert srv.wait_exit() == 2
    assert "does not load" in srv.stderr and str(bad) in srv.stderr, srv.stderr


def test_grpc_over_tls_and_mutual_tls(galley, pki):
    import grpc
    import tritonclient.grpc as grpcclient
    flags = tls_flags(pki, client_ca=True)
    flags["--grpc-port"] = "0"
    srv = galley(flags=flags)
    target = f"127.0.0.1:{srv.grpc_port}"
    ready = "/inference.GRPCInferenceService/ServerReady"
    # With the CA and a client certificate: served.
    creds = grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes(),
                                         private_key=pki.client_key.read_bytes(),
                                         certificate_chain=pki.client.read_bytes())
    with grpc.secure_channel(target, creds) as ch:
        assert ch.unary_unary(ready)(b"", timeout=10) == b"\x08\x01"
    # Without a client certificate, with one from another CA, in plain text: refused.
    for c in (grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes()),
              grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes(),
                                           private_key=pki.stranger_key.read_bytes(),
                                           certificate_chain=pki.stranger.read_bytes()),
              None):
        ch = grpc.secure_channel(target, c) if c is not None else grpc.insecure_channel(target)
        with pytest.raises(grpc.RpcError) as e:
            ch.unary_unary(ready)(b"", timeout=5)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value
        ch.close()
    # Triton's gRPC client over mutual TLS.
    tc = grpcclient.InferenceServerClient(target, ssl=True, root_certificates=str(pki.ca),
                                          private_key=str(pki.client_key),
                                          certificate_chain=str(pki.client))
    inp = grpcclient.InferInput("text", [1], "BYTES")
    inp.set_data_from_numpy(np.array([b"wonderful"], dtype=object))
    res = tc.infer("vader", [inp])
    assert res.as_numpy("label")[0] in (b"Positive", "Positive")
    tc.close()


def test_grpc_over_tls_keeps_the_connection_cap_and_the_handshake_timeout(galley, pki):
    """TLS on the gRPC port is terminated behind the connection acceptor, so its limits hold:
    at most --max-connections open (a newcomer is closed at once), and a connection whose TLS
    handshake does not finish within the first-byte timeout is closed."""
    import grpc
    flags = tls_flags(pki)
    flags.update({"--grpc-port": "0", "--max-connections": "3",
                  "--first-byte-timeout-ms": "1000"})
    srv = galley(flags=flags)
    port = srv.grpc_port
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    ctx.set_alpn_protocols(["h2"])
    held = []
    for _ in range(3):  # three TLS connections, handshaken (HTTP/2 selected), left idle
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                            server_hostname="127.0.0.1")
        assert s.selected_alpn_protocol() == "h2"
        held.append(s)
    # The fourth is closed at once: its handshake cannot complete.
    with pytest.raises((ssl.SSLError, OSError)):
        extra = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                                server_hostname="127.0.0.1")
        extra.recv(1)  # (a TLS 1.3 handshake may end before the close is seen)
        raise OSError("served")
    for s in held:
        s.close()
    # Room again once they are gone: a real call is served.
    creds = grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes())
    deadline = time.monotonic() + 10
    while True:
        with grpc.secure_channel(f"127.0.0.1:{port}", creds) as ch:
            try:
                assert ch.unary_unary("/inference.GRPCInferenceService/ServerReady")(
                    b"", timeout=5) == b"\x08\x01"
                break
            except grpc.RpcError:
                assert time.monotonic() < deadline, "no room after the connections closed"
    # A connection that starts a handshake and stalls is closed after the timeout.
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    raw.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello, and no more
    assert raw.recv(1) == b""     # closed by the server (within the 1 s timeout + slack)
    raw.close()
