#!/usr/bin/env bash
# The proxy-integrity soak: tests/integration/test_proxy_integrity.py for longer than `make test`
# runs it. Many concurrent clients (keep-alive and close, HTTP/1.0, Expect: 100-continue, chunked
# and slow bodies, pipelining, aborts mid-body, binary tensors) through `galley gateway` while a
# replica is killed, restarted, stopped and continued; every answer must be the replica's answer
# to the same request (byte for byte), the fallback's answer to it, or an error. It also samples
# the gateway's resident memory each second and reports its first and last values and the peak.
#
# Usage: bench/gateway/integrity_soak.sh [-h|--help]
# Environment (defaults in brackets):
#   SECONDS_OF_TRAFFIC [600]   how long the clients run
#   CLIENTS [24]               concurrent clients
#   GALLEY_BIN [build/release/galley]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
SECONDS_OF_TRAFFIC=${SECONDS_OF_TRAFFIC:-600}
CLIENTS=${CLIENTS:-24}
BIN=${GALLEY_BIN:-$ROOT/build/release/galley}
OUT="$ROOT/bench/out"
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
LOG="$OUT/integrity-soak-$STAMP.log"
RSS="$OUT/integrity-soak-$STAMP.rss"
# The gateway's RSS each second (the gateway is the `galley gateway` child of pytest).
( while sleep 1; do
    pid=$(pgrep -f "galley gateway" | head -1 || true)
    [[ -n "$pid" ]] && awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null
  done ) > "$RSS" &
SAMPLER=$!
trap 'kill $SAMPLER 2>/dev/null || true' EXIT
GALLEY_BIN="$BIN" GALLEY_INTEGRITY_SECONDS="$SECONDS_OF_TRAFFIC" GALLEY_INTEGRITY_CLIENTS="$CLIENTS" \
  "$ROOT/.venv/bin/python" -m pytest -q -s -p no:cacheprovider tests/integration/test_proxy_integrity.py \
  2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
kill $SAMPLER 2>/dev/null || true
if [[ -s "$RSS" ]]; then
  awk 'NR==1 {first=$1} {last=$1; if ($1>peak) peak=$1} END {
    printf "gateway RSS: first %.1f MiB, last %.1f MiB, peak %.1f MiB over %d samples\n",
      first/1024, last/1024, peak/1024, NR}' "$RSS" | tee -a "$LOG"
fi
echo "log: $LOG"
exit "$rc"
