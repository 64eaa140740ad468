#!/usr/bin/env bash
# The retrieval agent's parts on this machine: the embedding model's throughput with one text per
# request against batches (client-side and the server's dynamic batching), and the index's recall
# against exact search versus search time for several ef_search values. Peak RSS of the server.
# Settings (environment): TEXTS [256] texts per throughput run, REPEATS [3],
#   GALLEY_BIN [build/release/galley]. Needs an index: galley index build (docs/retrieval.md).
# Prints a Markdown report; paste it into bench/RESULTS.md with the command and the date.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python bench/retrieval/bench_retrieval.py
