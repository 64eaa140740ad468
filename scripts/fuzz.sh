#!/usr/bin/env bash
# Runs each libFuzzer target for a bounded time (seconds, default 20) from its seed corpus.
# A crash, leak or sanitizer report fails the run; the input that caused it is kept in $OUT_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-20}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for target in http_request_fuzzer infer_json_fuzzer upstream_response_fuzzer; do
  case $target in
    http_request_fuzzer) seeds=fuzz/corpus/http ;;
    infer_json_fuzzer) seeds=fuzz/corpus/infer_json ;;
    upstream_response_fuzzer) seeds=fuzz/corpus/upstream_response ;;
  esac
  mkdir -p "$WORK/$target"
  echo "fuzz: $target for ${SECONDS_EACH}s"
  build/fuzz/fuzz/$target -max_total_time="$SECONDS_EACH" -max_len=8192 -timeout=10 \
    -artifact_prefix="$WORK/" -print_final_stats=1 "$WORK/$target" "$seeds" 2>"$WORK/$target.log" || {
      tail -50 "$WORK/$target.log"; echo "fuzz: $target FAILED"; exit 1; }
  grep -E "stat::number_of_executed_units" "$WORK/$target.log" || true
done
echo "fuzz: all targets ran clean"
