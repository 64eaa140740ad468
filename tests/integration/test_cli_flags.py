"""Cross-flag rules: each command checks its flag groups against each other before it starts
anything, exits 2, and names the flags in its message."""
import pytest

from conftest import run_galley

CASES = [
    # (subcommand and flags, words the message must hold)
    (["up", "--autoscale", "--min-replicas", "3", "--max-replicas", "2"],
     ["--max-replicas (2) is below --min-replicas (3)"]),
    (["up", "--autoscale", "--min-replicas", "0"], ["--min-replicas 0 needs --scale-to-zero"]),
    (["up", "--scale-to-zero"], ["--scale-to-zero needs --autoscale"]),
    (["up", "--autoscale", "--queue-redis", "127.0.0.1:1", "--queue-amqp", "127.0.0.1:2"],
     ["--queue-redis and --queue-amqp"]),
    (["up", "--autoscale", "--autoscale-mode", "hpa"], ["--autoscale-mode hpa needs --hpa-target"]),
    (["gateway", "--replicas", "127.0.0.1:1", "--chat-redis", "127.0.0.1:2"],
     ["--chat-redis needs --pipelines"]),
    (["schedule", "run", "--lease-duration-ms", "2000", "--renew-deadline-ms", "2000"],
     ["--lease-duration-ms must be greater than --renew-deadline-ms"]),
    (["operator", "run", "--renew-deadline-ms", "1000", "--retry-period-ms", "1000"],
     ["--renew-deadline-ms must be greater than 1.2 x --retry-period-ms"]),
    (["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:nope"],
     ["--metrics-listen"]),
]


@pytest.mark.parametrize("args,words", CASES, ids=[" ".join(c[0][:3]) for c in CASES])
def test_a_flag_that_contradicts_another_exits_2_naming_both(tmp_path, args, words):
    listen = ["--listen", "127.0.0.1:0"] if args[0] in ("up", "gateway") else []
    p = run_galley(tmp_path, *args, *listen)
    assert p.returncode == 2, (args, p.returncode, p.stdout, p.stderr)
    for w in words:
        assert w in p.stderr, (args, p.stderr)
    # Nothing started: no log line at all (no listener, no replica, no Kubernetes call).
    assert p.stdout == "", p.stdout
