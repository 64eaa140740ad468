"""GET /metrics: valid Prometheus text (promtool check metrics), the documented families and
labels, and counters that move by exactly what the traffic should move them by."""

import shutil
import subprocess

import pytest

from conftest import Metrics

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

FAMILIES = {
    "galley_requests_total": ("counter", {"endpoint", "model", "outcome"}),
    "galley_request_duration_seconds": ("histogram", {"endpoint"}),
    "galley_queue_duration_seconds": ("histogram", {"model"}),
    "galley_compute_duration_seconds": ("histogram", {"model"}),
    "galley_queue_length": ("gauge", {"model"}),
    "galley_http_inflight_requests": ("gauge", set()),
    "galley_model_inflight_requests": ("gauge", {"model"}),
    "galley_batch_size": ("histogram", {"model"}),
    "galley_model_executions_total": ("counter", {"model"}),
    "galley_model_inferences_total": ("counter", {"model"}),
    "galley_model_load_duration_seconds": ("gauge", {"model"}),
    "galley_model_ready": ("gauge", {"model"}),
    "galley_http_open_connections": ("gauge", set()),
}
ENDPOINTS = {"analyze", "infer", "model_metadata", "model_ready", "server_metadata",
             "health_live", "health_ready", "metrics", "not_found"}
OUTCOMES = {"ok", "invalid_input", "not_found", "method_not_allowed", "too_large", "queue_full",
            "deadline_exceeded", "unavailable", "client_error", "internal"}


def promtool_check(text: str, path) -> None:
    assert shutil.which(PROMTOOL), "promtool is missing (Debian package `prometheus`)"
    path.write_text(text)
    with open(path, "rb") as f:
        p = subprocess.run([PROMTOOL, "check", "metrics"], stdin=f, capture_output=True,
                           text=True, timeout=30)
    assert p.returncode == 0, (f"promtool check metrics exited {p.returncode} "
                               f"(3 means lint problems):\n{p.stdout}{p.stderr}")


def check_histogram(m: Metrics, name: str, **labels) -> float:
    """Asserts one histogram series is well-formed; returns its count."""
    buckets = [(l, v) for l, v in m.find(name + "_bucket", **labels)]
    assert buckets, f"no {name}_bucket{labels}"
    les = [l["le"] for l, _ in buckets]
    assert les[-1] == "+Inf", les
    values = [v for _, v in buckets]
    assert values == sorted(values), f"{name} buckets are not cumulative: {values}"
    count = m.value(name + "_count", **labels)
    assert values[-1] == count, (name, values[-1], count)
    assert len(m.find(name + "_sum", **labels)) == 1
    return count


def test_metrics_after_traffic(galley, tmp_path):
    s = galley()
    c = s.client()
    before = c.metrics()
    # Traffic on a second connection: 5 ok analyses, 3 bad ones, 2 unknown paths, one 3-row and
    # one 2-row inference, an unknown model, a wrong method.
    t = s.client()
    for text in ["I love it", "I hate it", "a table", "great!", "awful :("]:
        assert t.analyze(text).status == 200
    for body in [b"{}", b"nope", b'{"text": 1}']:
        r = t.request("POST", "/inference/analyze", body=body,
                      headers={"Content-Type": "application/json"})
        assert r.status == 400
    assert t.get("/nope").status == 404
    assert t.get("/v2/nope").status == 404
    assert t.infer(["I love it", "meh", "bad"]).status == 200
    assert t.infer(["good", "bad"]).status == 200
    assert t.infer(["x"], model="nope").status == 404
    assert t.get("/inference/analyze").status == 405
    assert t.get("/v2/models/vader/ready").status == 200
    after = c.metrics()
    promtool_check(after.text, tmp_path / "metrics.txt")

    # Every documented family, with its type and labels.
    for name, (kind, labels) in FAMILIES.items():
        assert after.types.get(name) == kind, (name, after.types.get(name))
        series = after.find(name + ("_count" if kind == "histogram" else ""))
        assert series, f"{name} has no series"
        for l, _ in series:
            assert set(l) == labels, (name, l)
    for l, _ in after.find("galley_requests_total"):
        assert l["endpoint"] in ENDPOINTS and l["outcome"] in OUTCOMES, l

    def delta(name, **labels):
        return after.value(name, **labels) - before.value(name, **labels)

    req = "galley_requests_total"
    assert delta(req, endpoint="analyze", model="vader", outcome="ok") == 5
    assert delta(req, endpoint="analyze", model="vader", outcome="invalid_input") == 3
    assert delta(req, endpoint="analyze", outcome="method_not_allowed") == 1
    assert delta(req, endpoint="not_found", outcome="not_found") == 2
    assert delta(req, endpoint="infer", model="vader", outcome="ok") == 2
    assert delta(req, endpoint="infer", outcome="not_found") == 1
    assert delta(req, endpoint="model_ready", model="vader", outcome="ok") == 1
    # The first scrape is counted once it is answered, so the second sees it.
    assert delta(req, endpoint="metrics", outcome="ok") == 1
    assert delta(req) == 5 + 3 + 1 + 2 + 2 + 1 + 1 + 1

    # Durations: one observation per answered request of the endpoint.
    for endpoint, n in [("analyze", 9), ("infer", 3), ("not_found", 2)]:
        b = before.value("galley_request_duration_seconds_count", endpoint=endpoint)
        assert check_histogram(after, "galley_request_duration_seconds", endpoint=endpoint) - b == n
    # The model ran 7 requests (5 analyses, 2 inferences), one batch each since they came one at
    # a time, with 5 + 3 + 2 rows.
    v = {"model": "vader"}
    for name in ("galley_queue_duration_seconds", "galley_compute_duration_seconds",
                 "galley_batch_size"):
        check_histogram(after, name, **v)
    assert delta("galley_queue_duration_seconds_count", **v) == 7
    assert delta("galley_model_executions_total", **v) == 7
    assert delta("galley_compute_duration_seconds_count", **v) == 7
    assert delta("galley_batch_size_count", **v) == 7
    assert delta("galley_model_inferences_total", **v) == 10
    assert delta("galley_batch_size_sum", **v) == 10
    def one_row_bucket(m):
        return sum(val for l, val in m.find("galley_batch_size_bucket", **v)
                   if float(l["le"]) == 1.0)
    assert one_row_bucket(after) - one_row_bucket(before) == 5

    # Gauges.
    assert after.value("galley_model_load_duration_seconds", **v) > 0
    assert after.value("galley_model_ready", **v) == 1
    assert after.value("galley_queue_length", **v) == 0
    assert after.value("galley_model_inflight_requests", **v) == 0
    assert after.value("galley_http_inflight_requests") == 1  # the scrape itself
    assert after.value("galley_http_open_connections") == 2   # c and t
    t.close()


def test_metrics_count_queue_full_and_pass_promtool(galley, tmp_path):
    s = galley(flags={"--queue-capacity": "0"})
    for _ in range(4):
        assert s.analyze("I love it").status == 429
    assert s.infer(["I love it"]).status == 429
    m = s.metrics()
    promtool_check(m.text, tmp_path / "metrics.txt")
    assert m.value("galley_requests_total", endpoint="analyze", model="vader",
                   outcome="queue_full") == 4
    assert m.value("galley_requests_total", endpoint="infer", model="vader",
                   outcome="queue_full") == 1
    assert m.value("galley_model_executions_total", model="vader") == 0
    assert m.value("galley_queue_duration_seconds_count", model="vader") == 0


def test_fresh_server_metrics_pass_promtool(galley, tmp_path):
    s = galley()
    m = s.metrics()
    promtool_check(m.text, tmp_path / "metrics.txt")
    # Warm-up runs outside the queue: nothing is counted as served yet.
    assert m.value("galley_model_executions_total", model="vader") == 0
    assert m.value("galley_model_ready", model="vader") == 1
    assert m.value("galley_model_load_duration_seconds", model="vader") > 0
    assert m.value("galley_requests_total") == 0


@pytest.mark.parametrize("path", ["/metrics", "/metrics?name[]=galley_model_ready"])
def test_metrics_content_type(galley, path):
    s = galley()
    r = s.get(path)
    assert r.status == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers
    assert b"# TYPE galley_model_ready gauge" in r.body


def test_http_layer_rejections_are_counted(galley):
    s = galley(flags={"--max-body-bytes": "100"})
    assert s.analyze("a" * 200).status == 413
    m = s.metrics()
    assert m.value("galley_requests_total", outcome="too_large") == 1, \
        [l for l in m.text.splitlines() if l.startswith("galley_requests_total")]


def test_unknown_model_names_do_not_create_series(galley):
    s = galley()
    for i in range(5):
        assert s.get(f"/v2/models/made-up-{i}").status == 404
        assert s.get(f"/v2/models/made-up-{i}/ready").status == 404
        assert s.infer(["x"], model=f"made-up-{i}").status == 404
    m = s.metrics()
    models = {l["model"] for l, _ in m.find("galley_requests_total")}
    assert not any(name.startswith("made-up-") for name in models), sorted(models)
