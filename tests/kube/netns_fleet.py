"""Runs a gateway and its replicas in a network namespace of their own, for the EndpointSlice
tests: the API server refuses loopback addresses in EndpointSlices, so the replicas listen on
10.77.0.1, an address this private namespace puts on its own `lo` (nothing leaves it: the
namespace has no other interface). Started by the test as
`unshare --user --map-root-user --net python3 netns_fleet.py SPEC_JSON`.

The namespace reaches the API server, and the test reaches the gateway, through Unix sockets in
the test's folder (a file system is shared across network namespaces): the test bridges
SPEC["api_socket"] to the API server; here a TCP port on the namespace's 127.0.0.1 is bridged to
it (so the API server's certificate for 127.0.0.1 still matches), and SPEC["gateway_socket"] is
bridged to the gateway. Prints one JSON line {"replicas": {name: port}} once everything is
ready, then runs until stdin closes, and stops every process with SIGTERM."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

ADDRESS = "10.77.0.1"


def pump(a: socket.socket, b: socket.socket) -> None:
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def bridge(listener: socket.socket, connect) -> None:
    """Accepts on `listener` and joins each connection to a new one made by `connect()`."""
    def serve():
        while True:
            try:
                c, _ = listener.accept()
            except OSError:
                return
            try:
                up = connect()
            except OSError:
                c.close()
                continue
            threading.Thread(target=pump, args=(c, up), daemon=True).start()
            threading.Thread(target=pump, args=(up, c), daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()


def wait_event(proc: subprocess.Popen, log: Path, event: str, pred=lambda l: True) -> dict:
    with open(log, "a") as out:
        for raw in proc.stdout:
            out.write(raw)
            out.flush()
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if line.get("event") == event and pred(line):
                threading.Thread(target=drain, args=(proc, log), daemon=True).start()
                return line
    raise SystemExit(f"{log}: exited before {event}")


def drain(proc: subprocess.Popen, log: Path) -> None:
    with open(log, "a") as out:
        for raw in proc.stdout:
            out.write(raw)
            out.flush()


def main() -> int:
    spec = json.loads(sys.argv[1])
    d = Path(spec["dir"])
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", f"{ADDRESS}/32", "dev", "lo"], check=True)

    api = socket.socket()
    api.bind(("127.0.0.1", 0))
    api.listen(64)
    bridge(api, lambda: _unix(spec["api_socket"]))
    kubeconfig = Path(spec["kubeconfig"]).read_text().replace(
        spec["api_server"], f"https://127.0.0.1:{api.getsockname()[1]}")
    (d / "netns.kubeconfig").write_text(kubeconfig)

    procs: list[subprocess.Popen] = []
    ports = {}
    for name, flags in spec["replicas"].items():
        p = subprocess.Popen([spec["galley"], "serve", "--listen", f"{ADDRESS}:0", "--grpc-port", "-1",
                              "--drain-delay-ms", "0", *flags], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        procs.append(p)
        ports[name] = wait_event(p, d / f"{name}.log", "listening")["port"]
    gw = subprocess.Popen([spec["galley"], "gateway", "--kube-endpoints", "--kubeconfig",
                           str(d / "netns.kubeconfig"), "--kube-namespace", spec["namespace"],
                           "--listen", "127.0.0.1:0", "--health-interval-ms", "100",
                           "--drain-delay-ms", "0"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    procs.append(gw)
    gw_port = wait_event(gw, d / "gateway.log", "listening",
                         lambda l: l.get("protocol", "http") == "http")["port"]
    if "autoscaler" in spec:  # `galley autoscale run` for one model, scraping the replicas here
        a = subprocess.Popen([spec["galley"], "autoscale", "run", "--kubeconfig",
                              str(d / "netns.kubeconfig"), *spec["autoscaler"]],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(a)
        wait_event(a, d / "autoscaler.log", "autoscaler_leading")
    front = socket.socket(socket.AF_UNIX)
    front.bind(spec["gateway_socket"])
    front.listen(64)
    bridge(front, lambda: socket.create_connection(("127.0.0.1", gw_port)))
    print(json.dumps({"replicas": ports}), flush=True)

    sys.stdin.read()  # until the test closes it
    worst = 0
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            rc = p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
        worst = worst or rc
    return worst


def _unix(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    return s


if __name__ == "__main__":
    sys.exit(main())
