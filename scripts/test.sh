#!/usr/bin/env bash
# Runs every test suite; exits non-zero if any fails. Called by `make test` after the builds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
export TMPDIR=$SCRATCH
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

echo "== checks: layers, format, links"
python3 scripts/check_layers.py
python3 scripts/check_links.py
# Every C++ file as clang-format (.clang-format) writes it; `make format` fixes a difference.
clang-format --dry-run --Werror $(scripts/cpp_files.sh)
echo "format check: every C++ file is formatted"
"$ROOT/.venv/bin/python" -m pytest -q -p no:cacheprovider tests/tools

echo "== unit tests (release)"
ctest --test-dir build/release --output-on-failure -j "$(nproc)"
echo "== unit tests (asan+ubsan)"
ctest --test-dir build/asan --output-on-failure -j "$(nproc)"

echo "== integration tests (release)"
GALLEY_BIN=$ROOT/build/release/galley "$ROOT/.venv/bin/python" -m pytest -q -p no:cacheprovider tests/integration
echo "== integration tests (asan+ubsan)"
GALLEY_BIN=$ROOT/build/asan/galley "$ROOT/.venv/bin/python" -m pytest -q -p no:cacheprovider tests/integration
echo "== Kubernetes control-plane tests"
GALLEY_BIN=$ROOT/build/release/galley "$ROOT/.venv/bin/python" -m pytest -q -p no:cacheprovider tests/kube
echo "== Kubernetes scheduler and operator tests (asan+ubsan)"
GALLEY_BIN=$ROOT/build/asan/galley "$ROOT/.venv/bin/python" -m pytest -q -p no:cacheprovider tests/kube/test_scheduler.py tests/kube/test_operator.py

echo "== fuzzing (bounded)"
scripts/fuzz.sh "${GALLEY_FUZZ_SECONDS:-20}"
