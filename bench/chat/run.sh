#!/usr/bin/env bash
# The chat pipeline end to end on this machine: `galley up` with two replicas of the chat models
# and a Redis for the conversations (as `make run CHAT=1`), driven by closed-loop clients at
# several concurrencies. Reports latency percentiles in total and per pipeline step (from each
# answer's `nodes`), turns per second, and, as the peer in the same run, the same four model calls
# made by the client itself straight to one replica (no gateway, no pipeline, no Redis): the
# pipeline's cost is the ratio. Peak RSS of the gateway, each replica and Redis, and the
# gateway's RSS at the start and end of the steady load.
# Settings (environment): SECONDS_PER_RUN [20], CONCURRENCY ["1 4 16"], GALLEY_BIN.
# Needs the indexes (make run CHAT=1 builds them). Prints a Markdown report for bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python bench/chat/bench_chat.py
