#!/usr/bin/env bash
# The queue path (a Redis stream consumed by `galley serve --queue-redis`) against the HTTP path
# on the same server, model and machine. Settings (environment):
#   MESSAGES [100000]   messages queued per repeat     REPEATS [3]
#   DURATION [10s]      each wrk run (c=64)              APPENDFSYNC [always]  Redis' AOF policy
#   PACED_RATE [2000], PACED_SECONDS [10]   the latency run
#   SOAK_SECONDS [0]    > 0: a paced run this long, the server's RSS sampled every 10 s
#   MODEL []            a model of models/ (default: the built-in VADER)
#   MAX_INFLIGHT [256]  the server's --queue-max-inflight
#   GALLEY_BIN [build/release/galley]
# Prints a Markdown report; paste it into bench/RESULTS.md with the command and the date.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python bench/queue/bench_queue.py
