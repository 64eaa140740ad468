"""The RabbitMQ consumer of `galley serve --queue-amqp`, against a real RabbitMQ (Debian's
rabbitmq-server, or $RABBITMQ_SERVER_BIN) that this module starts once on free loopback ports
(AMQP, the Erlang distribution port and its own epmd, all on 127.0.0.1), with its own data and
log folders, and stops afterwards (epmd included). Each test uses queues of its own.

What is proved: results for good messages and a dead letter with a clear reason for each kind of
bad one; the queue's delivery limit dead-letters a message that keeps coming back; SIGTERM
finishes and acknowledges what a consumer holds; three consumers killed with SIGKILL every 1-2 s
under load end with every good message answered at least once (results carry the message id;
duplicates counted and bounded) and every poison message dead-lettered with its reason, nothing
left in the queue; the broker killed with SIGKILL and restarted loses no confirmed result and no
confirmed request. $GALLEY_QUEUE_MESSAGES sets the size of the kill test (default 3000).
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pika
import pytest

from conftest import QUEUE_SCALE_FROM_ZERO_FLAGS, GalleyServer, free_port

RABBITMQ_BIN = os.environ.get("RABBITMQ_SERVER_BIN") or "/usr/lib/rabbitmq/bin/rabbitmq-server"
EPMD_BIN = shutil.which("epmd") or "/usr/bin/epmd"
# pika logs every refused connection while the broker starts; the tests report what matters.
logging.getLogger("pika").setLevel(logging.CRITICAL)

if not os.path.exists(RABBITMQ_BIN):
    pytest.skip(f"no RabbitMQ at {RABBITMQ_BIN} (scripts/deps.sh installs rabbitmq-server)",
                allow_module_level=True)


def wait_until(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.05)  # polling the broker for a condition, bounded by the deadline
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class RabbitServer:
    """RabbitMQ as a plain process: AMQP, distribution and epmd on 127.0.0.1, free ports."""

    def __init__(self, base: Path):
        self.dir = base / "rabbitmq"
        (self.dir / "home").mkdir(parents=True)
        self.port, self.dist_port, self.epmd_port = free_port(), free_port(), free_port()
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        d = str(self.dir)
        return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": f"{d}/home", "LANG": "C.UTF-8",
                "RABBITMQ_NODENAME": f"galleytest{self.port}@localhost",
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1", "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "ERL_EPMD_ADDRESS": "127.0.0.1", "ERL_EPMD_PORT": str(self.epmd_port),
                "RABBITMQ_MNESIA_BASE": f"{d}/mnesia", "RABBITMQ_LOG_BASE": f"{d}/log",
                "RABBITMQ_CONFIG_FILE": f"{d}/rabbitmq",
                "RABBITMQ_ENABLED_PLUGINS_FILE": f"{d}/enabled_plugins",
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}"}

    def start(self) -> "RabbitServer":
        self.log = open(self.dir / "server.log", "ab")
        # Its own session: the script, erl and beam are one process group (epmd detaches).
        self.proc = subprocess.Popen([RABBITMQ_BIN], env=self.env(), stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"rabbitmq-server exited\n{self.tail()}"
            try:
                self.connect().close()
                return self
            except pika.exceptions.AMQPConnectionError:
                time.sleep(0.1)  # polling a port that is not open yet; not a synchronisation
        raise AssertionError(f"RabbitMQ not up within 90 s\n{self.tail()}")

    def connect(self) -> pika.BlockingConnection:
        return pika.BlockingConnection(pika.ConnectionParameters(
            "127.0.0.1", self.port, connection_attempts=1, socket_timeout=5,
            blocked_connection_timeout=30))

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()
        # wait() reaps only the start script; beam, which holds the listening sockets, is its
        # child and may outlive it for a moment. A restart must not race it for the old ports, so
        # wait until no process of the group is left (an orphan is reaped by init).
        deadline = time.monotonic() + 10
        while True:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            assert time.monotonic() < deadline, "RabbitMQ's process group outlived SIGKILL by 10 s"
            time.sleep(0.05)  # polling for the kernel to finish a kill; not a synchronisation

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self.proc:
            self.log.close()
        subprocess.run([EPMD_BIN, "-port", str(self.epmd_port), "-kill"], env=self.env(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)

    def tail(self) -> str:
        return (self.dir / "server.log").read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def rabbit(tmp_path_factory):
    srv = RabbitServer(tmp_path_factory.mktemp("amqp")).start()
    yield srv
    srv.stop()


class Broker:
    """A test's view of its queues through pika: publish with confirms, read results."""

    def __init__(self, rabbit: RabbitServer, queue: str):
        self.rabbit = rabbit
        self.queue = queue
        self.reconnect()

    def reconnect(self) -> None:
        self.conn = self.rabbit.connect()
        self.ch = self.conn.channel()
        self.ch.confirm_delivery()

    def publish(self, body: str | bytes, routing_key: str | None = None, **props) -> None:
        """Publishes with a confirm; a negative confirm (a quorum queue electing its leader
        after a broker restart) is retried with the same message id, as a producer must."""
        headers = props.pop("headers", None)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.ch.basic_publish("", routing_key or self.queue, body, pika.BasicProperties(
                    delivery_mode=2, headers=headers, **props), mandatory=True)
                return
            except pika.exceptions.NackError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)  # the broker refused it for now; bounded by the deadline

    def count(self, queue: str) -> int:
        return self.ch.queue_declare(queue, passive=True).method.message_count

    def take(self, queue: str) -> list[tuple[pika.BasicProperties, bytes]]:
        """Every message waiting in `queue`, acknowledged."""
        out = []
        while True:
            method, props, body = self.ch.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append((props, body))


class Consumers:
    """`galley serve --queue-amqp` processes; stopped (SIGTERM) at teardown."""

    def __init__(self, tmp_path: Path, rabbit: RabbitServer, queue: str, extra: dict[str, str]):
        self.tmp_path, self.rabbit, self.queue, self.extra = tmp_path, rabbit, queue, extra
        self.procs: dict[str, GalleyServer] = {}
        self.all: list[GalleyServer] = []

    def start(self, name: str, wait: bool = True) -> GalleyServer:
        d = self.tmp_path / f"{name}-{len(self.all)}"
        d.mkdir()
        flags = {"--queue-amqp": f"127.0.0.1:{self.rabbit.port}", "--queue-amqp-queue": self.queue,
                 "--queue-consumer": name}
        flags.update(self.extra)
        srv = GalleyServer(d, flags=flags).start()
        if wait:
            srv.wait_for("queue_connected")
        self.procs[name] = srv
        self.all.append(srv)
        return srv

    def kill9(self, name: str) -> None:
        srv = self.procs[name]
        srv.proc.kill()
        srv.wait_exit()

    def stop(self) -> list[str]:
        return [f"{p}\n{srv.describe()}" for srv in self.all for p in srv.stop()]


@pytest.fixture
def consumers(tmp_path, rabbit):
    made: list[Consumers] = []

    def make(queue: str, extra: dict[str, str] | None = None) -> Consumers:
        c = Consumers(tmp_path, rabbit, queue, extra or {})
        made.append(c)
        return c

    yield make
    problems = [p for c in made for p in c.stop()]
    if problems:
        pytest.fail("galley at teardown: " + "\n".join(problems), pytrace=False)


def analyze_body(text: str) -> str:
    return json.dumps({"text": text})


def held_now(srv: GalleyServer) -> float:
    """Messages the consumer holds now (0 while it starts and has no metrics yet)."""
    try:
        return srv.metrics().value("galley_consumer_inflight_messages", broker="amqp")
    except (OSError, AssertionError):
        return 0.0


def amqp_metric(srv: GalleyServer, outcome: str) -> float:
    return srv.metrics().value("galley_consumer_messages_total", outcome=outcome, broker="amqp")


def test_results_for_good_messages_and_dead_letters_with_reasons_for_bad_ones(rabbit, consumers):
    q = "good-and-bad"
    c = consumers(q, {"--max-body-bytes": "4096"})
    srv = c.start("c0")
    b = Broker(rabbit, q)
    b.ch.queue_declare("mine", durable=True)
    now_ms = int(time.time() * 1000)
    b.publish(analyze_body("The food was great!"), message_id="good-1")
    b.publish(json.dumps({"id": "r2", "inputs": [
        {"name": "text", "datatype": "BYTES", "shape": [1], "data": ["awful"]}]}),
        correlation_id="good-2", reply_to="mine", headers={"model": "vader"})
    bad = {
        "not-json": ("{not json", {}),
        "unknown-model": (analyze_body("x"), {"model": "nope"}),
        "oversized": (analyze_body("x" * 5000), {}),
        "past-deadline": (analyze_body("late"), {"deadline_ms": now_ms - 1000}),
        "bad-tensor": (json.dumps({"inputs": [
            {"name": "text", "datatype": "FP32", "shape": [1], "data": [1.0]}]}), {}),
        "no-reply-queue": (analyze_body("nobody listens"), {}),
    }
    for key, (body, headers) in bad.items():
        props = {"reply_to": "no-such-queue"} if key == "no-reply-queue" else {}
        b.publish(body, message_id=key, headers=headers, **props)
    b.publish(analyze_body("who am I"))  # no id at all
    dead, results, mine = [], [], []

    def settled():
        dead.extend(b.take(f"{q}.dead"))
        results.extend(b.take(f"{q}.results"))
        mine.extend(b.take("mine"))
        return len(dead) == len(bad) + 1 and len(results) == 1 and len(mine) == 1
    wait_until(settled, 30, "one result each and a dead letter per bad message")

    props, body = results[0]
    assert props.message_id == "good-1" and props.correlation_id == "good-1"
    assert props.headers["status"] == "ok" and props.headers["id"] == "good-1"
    assert json.loads(body)["sentiment"] == "Positive"
    props, body = mine[0]
    assert props.correlation_id == "good-2"
    out = json.loads(body)
    assert out["id"] == "r2" and out["model_name"] == "vader"
    assert out["outputs"][0]["data"] == ["Negative"]

    reasons = {p.message_id: p.headers["galley-reason"] for p, _ in dead}
    assert set(reasons) == set(bad) | {None}
    assert "JSON" in reasons["not-json"]
    assert "unknown model 'nope'" in reasons["unknown-model"]
    assert "over the limit of 4096" in reasons["oversized"]
    assert "deadline passed" in reasons["past-deadline"]
    assert "text" in reasons["bad-tensor"] or "FP32" in reasons["bad-tensor"]
    assert "no queue 'no-such-queue'" in reasons["no-reply-queue"]
    assert "no id" in reasons[None]
    # Nothing is lost: each dead letter keeps the original body, id and headers (as text).
    for p, body in dead:
        if p.message_id is None:
            assert body == analyze_body("who am I").encode()
            continue
        original, headers = bad[p.message_id]
        assert body == original.encode()
        for k, v in headers.items():
            assert p.headers[k] == str(v)
        assert p.headers["galley-queue"] == q and p.headers["galley-deliveries"] == 1
    assert b.count(q) == 0
    m = srv.metrics()
    assert m.value("galley_consumer_messages_total", outcome="dead_lettered", broker="amqp") == len(bad) + 1
    assert m.value("galley_consumer_messages_total", outcome="acked", broker="amqp") == 2
    assert m.value("galley_consumer_inflight_messages", broker="amqp") == 0


def test_the_delivery_limit_dead_letters_a_message_that_keeps_coming_back(rabbit, consumers):
    """The queue galley declares carries x-delivery-limit = --queue-max-deliveries - 1: a message
    returned that often by others (here a bare client that nacks it) reaches galley on its last
    allowed delivery and is answered; one returned once more is dead-lettered by the broker."""
    q = "delivery-limit"
    c = consumers(q, {"--queue-max-deliveries": "3"})
    srv = c.start("c0")
    srv.send_signal(signal.SIGTERM)  # the queue is declared; now a ghost consumer plays
    assert srv.wait_exit() == 0
    b = Broker(rabbit, q)
    # One message in the queue at a time, so the ghost returns exactly what it means to.
    for key, returns in (("over-limit", 3), ("last-chance", 2)):
        b.publish(analyze_body(f"{key} was good"), message_id=key)
        for _ in range(returns):
            # A requeue goes through the queue's log: the message is back shortly after.
            method, props, _ = wait_until(lambda: (lambda g: g if g[0] else None)(
                b.ch.basic_get(q)), 10, f"{key} back in the queue")
            assert props.message_id == key
            b.ch.basic_nack(method.delivery_tag, requeue=True)
    wait_until(lambda: b.count(q) == 1, 10, "only last-chance left")  # over-limit is dead
    c.start("c1")
    results, dead = [], []

    def settled():
        results.extend(b.take(f"{q}.results"))
        dead.extend(b.take(f"{q}.dead"))
        return len(results) == 1 and len(dead) == 1
    wait_until(settled, 30, "one result and one dead letter")
    assert results[0][0].message_id == "last-chance"
    assert results[0][0].headers["deliveries"] == 3
    assert dead[0][0].message_id == "over-limit"
    assert dead[0][0].headers["x-first-death-reason"] == "delivery_limit"


def test_sigterm_finishes_and_acknowledges_what_the_consumer_holds(rabbit, consumers):
    q = "sigterm"
    c = consumers(q, {"--queue-max-inflight": "64"})
    srv = c.start("c0")
    b = Broker(rabbit, q)
    n = 2000
    for i in range(n):
        b.publish(analyze_body(f"message {i} is fine"), message_id=f"m{i}")
    wait_until(lambda: b.count(f"{q}.results") >= 100, 30, "work under way")
    srv.send_signal(signal.SIGTERM)
    assert srv.wait_exit() == 0
    drained = srv.wait_for("queue_drained", pred=lambda l: l.get("broker") == "amqp")
    assert drained["held"] == 0
    answered = b.count(f"{q}.results")
    # Everything it took has its result (acknowledged); the rest waits in the queue, once.
    assert answered + b.count(q) == n, (answered, b.count(q))
    c.start("c1")
    wait_until(lambda: b.count(f"{q}.results") == n and b.count(q) == 0, 60, "the rest")
    ids = [p.message_id for p, _ in b.take(f"{q}.results")]
    assert sorted(ids) == sorted(f"m{i}" for i in range(n))  # no failure: exactly one each


def produce(b: Broker, n: int, poison_every: int, seconds: float, sent: dict[str, float]) -> set[str]:
    """Publishes n messages (confirmed) at an even rate; every poison_every-th is not JSON."""
    poison = set()
    start = time.monotonic()
    for i in range(n):
        key = f"m{i}"
        if i % poison_every == poison_every - 1:
            b.publish("{poison " + key, message_id=key)
            poison.add(key)
        else:
            b.publish(analyze_body(f"message {i}: the service was good"), message_id=key)
        sent[key] = time.monotonic()
        due = start + seconds * (i + 1) / n
        wait = due - time.monotonic()  # one reading: a second one could already be past due
        if wait > 0:
            time.sleep(wait)  # the producer's pace, not a synchronisation
    return poison


class Collector:
    """Reads results and dead letters as they come, with the time each was seen."""

    def __init__(self, b: Broker, queue: str):
        self.b, self.queue = b, queue
        self.results: dict[str, list[tuple[float, dict]]] = {}
        self.dead: list[pika.BasicProperties] = []

    def poll(self) -> int:
        now = time.monotonic()
        for props, body in self.b.take(f"{self.queue}.results"):
            self.results.setdefault(props.message_id, []).append((now, {"headers": props.headers,
                                                                        "body": json.loads(body)}))
        self.dead.extend(p for p, _ in self.b.take(f"{self.queue}.dead"))
        return len(self.results) + len(self.dead)


def check_at_least_once(col: Collector, n: int, poison: set[str], sent: dict[str, float] | None) -> dict:
    good = {f"m{i}" for i in range(n)} - poison
    missing = good - set(col.results)
    assert not missing, f"{len(missing)} messages without a result, e.g. {sorted(missing)[:5]}"
    assert set(col.results) == good, "a result for a message never sent, or for poison"
    for key, copies in col.results.items():  # every copy of a result is the same answer
        assert all(c["body"] == copies[0][1]["body"] for _, c in copies), key
        assert copies[0][1]["body"]["sentiment"] in ("Positive", "Negative", "Neutral")
        assert copies[0][1]["headers"]["status"] == "ok" and copies[0][1]["headers"]["id"] == key
    dead_ids = [p.message_id for p in col.dead]
    assert sorted(dead_ids) == sorted(poison), "dead letters must be exactly the poison messages"
    assert all("JSON" in p.headers["galley-reason"] for p in col.dead)
    duplicates = sum(len(v) - 1 for v in col.results.values())
    # Answers on a second or later delivery: a killed consumer had held the message. The delay is
    # from publish to that answer being seen.
    again = {k: min(t for t, c in v if c["headers"]["deliveries"] > 1)
             for k, v in col.results.items() if any(c["headers"]["deliveries"] > 1 for _, c in v)}
    redelivered = list(again)
    longest = max((t - sent[k] for k, t in again.items()), default=0.0) if sent else 0.0
    return {"results": len(col.results), "dead": len(col.dead), "duplicates": duplicates,
            "redelivered": len(redelivered), "longest_redelivered_s": round(longest, 2)}


def test_consumers_killed_with_sigkill_under_load_lose_nothing(rabbit, consumers):
    n = int(os.environ.get("GALLEY_QUEUE_MESSAGES", "3000"))
    q = "kill-consumers"
    inflight = 16
    c = consumers(q, {"--queue-max-inflight": str(inflight), "--queue-max-deliveries": "10"})
    names = ["c0", "c1", "c2"]
    for name in names:
        c.start(name)
    b, reader = Broker(rabbit, q), Broker(rabbit, q)
    col = Collector(reader, q)
    sent: dict[str, float] = {}
    poison_box: list[set[str]] = []
    producer = threading.Thread(target=lambda: poison_box.append(
        produce(b, n, 100, max(6.0, n / 500), sent)))
    producer.start()
    rng = random.Random(7)
    kills = held_at_kills = 0
    next_kill = time.monotonic() + rng.uniform(1.0, 2.0)
    while producer.is_alive() or kills < 3:
        if time.monotonic() >= next_kill:
            # The fault schedule: one kill every 1-2 s, of the consumer holding the most work
            # (ties broken at random), so that kills land while messages are in hand.
            held = {name: held_now(c.procs[name]) for name in names}
            victim = max(names, key=lambda name: (held[name], rng.random()))
            held_at_kills += held[victim]
            c.kill9(victim)
            kills += 1
            c.start(victim, wait=False)
            next_kill = time.monotonic() + rng.uniform(1.0, 2.0)
        col.poll()
        time.sleep(0.05)  # polling the result queues between kills
    producer.join()
    wait_until(lambda: col.poll() >= n, 90, "every message answered or dead-lettered")
    # Nothing left behind: the consumers drain and stop, and the queue is empty.
    for srv in c.procs.values():
        srv.send_signal(signal.SIGTERM)
        assert srv.wait_exit() == 0
    assert b.count(q) == 0
    col.poll()
    summary = check_at_least_once(col, n, poison_box[0], sent)
    # A duplicate needs a kill between a confirmed result and its acknowledgement: at most what
    # the killed consumer held.
    assert summary["duplicates"] <= kills * inflight, summary
    print(f"\n{n} messages, {len(poison_box[0])} poison, {kills} kills holding "
          f"{held_at_kills:.0f} messages: {summary}")
    assert kills >= 3


def test_broker_killed_with_sigkill_loses_no_confirmed_message(rabbit, consumers):
    q = "kill-broker"
    c = consumers(q)
    c.start("c0")
    c.start("c1")
    # RabbitMQ 3.10 registers a new quorum queue's Raft member lazily: killed within seconds of
    # the declaration, the broker comes back with the queue leaderless and its log empty (term 0,
    # index 0), which is the broker losing its own metadata, not a delivery outcome. A clean
    # restart is the point from which the broker guarantees what it confirmed; the crash below is
    # measured from there. The consumers reconnect by themselves.
    rabbit.stop()
    rabbit.start()
    b = Broker(rabbit, q)
    n = 1500
    for i in range(n // 2):
        b.publish(analyze_body(f"first half {i} was good"), message_id=f"m{i}")
    wait_until(lambda: b.count(f"{q}.results") >= 200, 30, "results before the crash")
    # Every message a consumer acknowledged had its result confirmed first: those results must
    # survive the crash. (The queue's length is no measure: it counts results not yet confirmed.)
    # The consumers are frozen (SIGSTOP) from the count on, so that after the restart the results
    # queue holds only what survived; acknowledgements after the count only add to it.
    acked_before = sum(amqp_metric(srv, "acked") for srv in c.procs.values())
    for srv in c.procs.values():
        srv.send_signal(signal.SIGSTOP)
    rabbit.kill9()
    rabbit.start()
    b.reconnect()
    # The queue's length grows while the broker replays its log after the restart.
    try:
        wait_until(lambda: b.count(f"{q}.results") >= acked_before, 30, "the results recovered")
    finally:
        after = b.count(f"{q}.results")
        for srv in c.procs.values():
            srv.send_signal(signal.SIGCONT)
    assert after >= acked_before, f"acknowledged results lost: {acked_before} acked, {after} kept"
    for i in range(n // 2, n):
        b.publish(analyze_body(f"second half {i} was good"), message_id=f"m{i}")
    col = Collector(b, q)
    wait_until(lambda: col.poll() >= 0 and set(col.results) >= {f"m{i}" for i in range(n)}, 90,
               "every message answered after the broker's restart")
    summary = check_at_least_once(col, n, set(), None)
    print(f"\nbroker killed: {n} messages, {acked_before:.0f} acknowledged before the crash, "
          f"{after} results kept: {summary}")


def test_up_scales_on_the_queue_from_zero_to_many_and_back_losing_nothing(rabbit, galley):
    """`galley up --autoscale --scale-to-zero --queue-amqp`: the autoscaler declares the queue at
    start (a fleet at zero has no consumer to do it), reads its ready count every tick, wakes the
    fleet from zero on a burst, grows it past one replica, and takes it back to zero when the work
    is done; the unacknowledged messages it counts come from the replicas' in-flight gauges.
    Every replica stopped had finished and acknowledged what it held; every message has exactly
    one result (no replica died, so nothing was answered twice)."""
    q = "up-scale"
    up = galley("--autoscale", "--scale-to-zero", subcommand="up", flags={
        **QUEUE_SCALE_FROM_ZERO_FLAGS,
        "--queue-amqp": f"127.0.0.1:{rabbit.port}", "--queue-amqp-queue": q,
        "--serve-arg": "--queue-max-inflight=8"})
    own = lambda l: "replica" not in l  # noqa: E731
    # The first decision with a queue reading (a tick before the first read of the broker has
    # no queue metrics at all).
    first = up.wait_for("autoscale_decision",
                        pred=lambda l: own(l) and "queueLag" in l.get("metrics", {}))
    assert first["desired"] == 0 and first["current"] == 0, first
    assert first["metrics"]["queueLag"] == 0 and first["metrics"]["queuePending"] == 0, first
    # The queue exists before any replica ran: declared by the autoscaler, with its limits.
    b = Broker(rabbit, q)
    assert b.count(q) == 0
    n = 3000
    start = len(up.log_lines())
    for i in range(n):
        b.publish(analyze_body(f"burst message {i} was lovely"), message_id=f"m{i}")
    woke = up.wait_for("replicas_scaled", start=start, pred=lambda l: own(l) and l["from"] == 0)
    assert woke["to"] >= 1, woke
    # 3000 messages are more than one replica's worth: the fleet grows past one, at the wake if the
    # tick saw enough of the burst, else while the first replica loads and the lag builds.
    grown = woke if woke["to"] >= 2 else up.wait_for(
        "replicas_scaled", start=start, timeout=30, pred=lambda l: own(l) and l["to"] >= 2)
    assert grown["to"] >= 2, grown
    col = Collector(Broker(rabbit, q), q)
    wait_until(lambda: col.poll() >= n, 90, "the burst answered")
    up.wait_for("replicas_scaled", start=start, timeout=60, pred=lambda l: own(l) and l["to"] == 0)
    decisions = [l for l in up.log_lines()[start:] if l.get("event") == "autoscale_decision" and own(l)]
    # While replicas held work, the autoscaler saw it through their gauges.
    assert any(d["metrics"].get("queuePending", 0) > 0 for d in decisions), decisions[-3:]
    col.poll()
    summary = check_at_least_once(col, n, set(), None)
    # No replica died: every message answered exactly once. A message the broker had already
    # sent towards a replica being drained when it cancelled may come back to the queue with its
    # channel and be answered by another (RabbitMQ marks it redelivered): never more than the
    # prefetch per stopped replica.
    scale_downs = sum(1 for l in up.log_lines() if l.get("event") == "replica_stopping")
    assert summary["duplicates"] == 0, summary
    assert summary["redelivered"] <= 8 * scale_downs, summary
    assert b.count(q) == 0
    consumed_by = {l["replica"] for l in up.log_lines() if l.get("event") == "queue_consuming"}
    assert len(consumed_by) >= 2, consumed_by
    for replica in consumed_by:  # stopped by a scale-down, drained holding nothing
        drained = up.wait_for("queue_drained", pred=lambda l, r=replica: l.get("replica") == r)
        assert drained["held"] == 0, drained
