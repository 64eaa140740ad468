#!/usr/bin/env bash
# The gain of length buckets (issue 3): each ONNX text model served three ways, batching on in
# all — without length buckets, with the shipped buckets, and with finer ones — driven over HTTP
# by wrk at concurrency C with the held-out sentences (bench/serve/onnx_texts.py). Pinning as
# bench/serve/onnx.sh: the server on core 0, wrk on core 1. Each point runs REPEATS times in
# rotation; medians of requests/s, p50 and p99, and the server's peak RSS (VmHWM), are reported.
#
# Usage: bench/serve/buckets.sh   (env: MODELS, C [64], DURATION [6s], REPEATS [3])
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
MODELS="${MODELS:-sentiment_transformer sentiment}"
C="${C:-64}"
DURATION="${DURATION:-6s}"
REPEATS="${REPEATS:-3}"
GALLEY_BIN="${GALLEY_BIN:-build/release/galley}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
[[ -x "$GALLEY_BIN" ]] || { echo "build first: cmake --build build/release --target galley" >&2; exit 1; }

args=()
for m in $MODELS; do args+=(--model "$m"); done
python3 bench/serve/onnx_texts.py "$TMP/data" "${args[@]}" >/dev/null 2>&1
TEXTS="$TMP/data/texts.txt"

# Three repositories: none, shipped, fine.
for variant in none shipped fine; do
  mkdir -p "$TMP/$variant"
  for m in $MODELS; do cp -r "models/$m" "$TMP/$variant/"; done
  python3 - "$TMP/$variant" "$variant" $MODELS <<'PY'
import json, sys
root, variant, models = sys.argv[1], sys.argv[2], sys.argv[3:]
for m in models:
    p = f"{root}/{m}/config.json"
    c = json.load(open(p))
    if variant == "none":
        c["dynamic_batching"].pop("length_buckets", None)
    elif variant == "fine":
        c["dynamic_batching"]["length_buckets"] = [4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 64]
    json.dump(c, open(p, "w"))
PY
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# point MODEL VARIANT -> "rps p50_us p99_us hwm_kb"
point() {
  local model=$1 variant=$2 port log pid
  port="$(free_port)"
  log="$TMP/server.log"
  taskset -c 0 "$GALLEY_BIN" serve --model-repository "$TMP/$variant" --model "$model" \
    --listen "127.0.0.1:$port" --grpc-port -1 >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do grep -q '"event":"ready"' "$log" && break; sleep 0.1; done
  grep -q '"event":"ready"' "$log" || { echo "server did not get ready: $(tail -3 "$log")" >&2; kill "$pid"; return 1; }
  taskset -c 1 wrk -t1 -c"$C" -d2s -s bench/serve/infer.lua "http://127.0.0.1:$port" -- "$TEXTS" "$model" >/dev/null
  local out
  out="$(taskset -c 1 wrk -t1 -c"$C" -d"$DURATION" --latency -s bench/serve/infer.lua \
           "http://127.0.0.1:$port" -- "$TEXTS" "$model" | grep '^RESULT')"
  local hwm
  hwm="$(awk '/VmHWM/{print $2}' "/proc/$pid/status")"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  local rps p50 p99 errors
  rps="$(sed -E 's/.* rps=([0-9.]+).*/\1/' <<<"$out")"
  p50="$(sed -E 's/.* p50_us=([0-9]+).*/\1/' <<<"$out")"
  p99="$(sed -E 's/.* p99_us=([0-9]+).*/\1/' <<<"$out")"
  errors="$(sed -E 's/.* errors=([0-9]+).*/\1/' <<<"$out")"
  [[ "$errors" == 0 ]] || { echo "wrk saw $errors errors: $out" >&2; return 1; }
  echo "$rps $p50 $p99 $hwm"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "# Length buckets, $(date -u +'%Y-%m-%d %H:%M UTC'): wrk -c$C, $DURATION per point, median of $REPEATS"
echo "command: MODELS=\"$MODELS\" C=$C DURATION=$DURATION REPEATS=$REPEATS bench/serve/buckets.sh"
echo
echo "| model | length buckets | requests/s | p50 | p99 | peak RSS | vs no buckets |"
echo "|---|---|---:|---:|---:|---:|---:|"
for m in $MODELS; do
  : >"$TMP/points"
  for r in $(seq "$REPEATS"); do
    for v in none shipped fine; do echo "$v $(point "$m" "$v")" >>"$TMP/points"; done
  done
  base=""
  for v in none shipped fine; do
    rps="$(awk -v v=$v '$1==v{print $2}' "$TMP/points" | median)"
    p50="$(awk -v v=$v '$1==v{print $3}' "$TMP/points" | median)"
    p99="$(awk -v v=$v '$1==v{print $4}' "$TMP/points" | median)"
    hwm="$(awk -v v=$v '$1==v{print $5}' "$TMP/points" | sort -g | tail -1)"
    [[ -n "$base" ]] || base="$rps"
    case $v in none) label="none";; shipped) label="shipped [8,16,32,64]";; fine) label="fine (14 bounds)";; esac
    awk -v m="$m" -v l="$label" -v rps="$rps" -v p50="$p50" -v p99="$p99" -v hwm="$hwm" -v base="$base" \
      'BEGIN {printf "| %s | %s | %.0f | %.1f ms | %.1f ms | %.1f MiB | %.2f× |\n", m, l, rps, p50/1000, p99/1000, hwm/1024, rps/base}' 
  done
done
