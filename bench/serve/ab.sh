#!/usr/bin/env bash
# A/B of batching settings for one model at one concurrency: each variant is the model's folder
# as shipped with a JSON object merged into its config's `dynamic_batching` (a null value deletes
# the key), served by its own `galley serve` on core SERVER_CPU; the load generator runs on core
# CLIENT_CPU (wrk for HTTP, ghz for gRPC, the requests of bench/serve/onnx.sh). Every round
# measures every variant and protocol once, back to back, so that the drift of a shared machine
# hits each alike; the report gives, per variant and protocol, the median requests/s and p99,
# Galley's mean batch, server CPU per request, and the median and geometric mean of the
# per-round ratio to the first variant with the number of rounds it won.
#
# Usage: bench/serve/ab.sh NAME='{json}' NAME='{json}' ...
#   e.g. bench/serve/ab.sh nofill='{"length_fill_ratio": null, "length_fill_rows": null}' shipped='{}'
# Environment: MODEL [sentiment_lstm]  C [64]  DURATION [3s]  ROUNDS [10]  PROTOCOLS ["http grpc"]
#   GALLEY_BIN [build/release/galley]  GHZ_BIN [.deps/bench-bin/ghz] (bench/serve/onnx.sh installs
#   it)  SERVER_CPU [0]  CLIENT_CPU [1]  BIN_<NAME>: the variant NAME's own binary (else GALLEY_BIN),
#   to compare builds, e.g. BIN_before=/tmp/galley-old bench/serve/ab.sh before='{}' after='{}'
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
MODEL="${MODEL:-sentiment_lstm}"
C="${C:-64}"
DURATION="${DURATION:-3s}"
ROUNDS="${ROUNDS:-10}"
PROTOCOLS="${PROTOCOLS:-http grpc}"
GALLEY_BIN="${GALLEY_BIN:-build/release/galley}"
GHZ_BIN="${GHZ_BIN:-.deps/bench-bin/ghz}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
(($# >= 2)) || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
[[ -x "$GALLEY_BIN" ]] || { echo "build first: cmake --build build/release --target galley" >&2; exit 1; }
[[ " $PROTOCOLS " != *" grpc "* || -x "$GHZ_BIN" ]] || { echo "$GHZ_BIN is missing" >&2; exit 1; }

TMP="$(mktemp -d)"
declare -A PID=() HTTP=() GRPC=()
NAMES=()
cleanup() {
  local n
  for n in "${NAMES[@]}"; do [[ -n "${PID[$n]:-}" ]] && kill "${PID[$n]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
python3 bench/serve/onnx_texts.py "$TMP/data" --model "$MODEL" >/dev/null 2>&1

for spec in "$@"; do
  n="${spec%%=*}"
  NAMES+=("$n")
  mkdir -p "$TMP/repo-$n"
  cp -r "models/$MODEL" "$TMP/repo-$n/"
  python3 - "$TMP/repo-$n/$MODEL/config.json" "${spec#*=}" <<'PY'
import json, sys
path, patch = sys.argv[1], json.loads(sys.argv[2])
config = json.load(open(path))
for key, value in patch.items():
    if value is None:
        config["dynamic_batching"].pop(key, None)
    else:
        config["dynamic_batching"][key] = value
json.dump(config, open(path, "w"), indent=2)
PY
  bin_var="BIN_$n"
  [[ -x "${!bin_var:-$GALLEY_BIN}" ]] || { echo "${!bin_var:-$GALLEY_BIN} is not executable" >&2; exit 1; }
  taskset -c "$SERVER_CPU" "${!bin_var:-$GALLEY_BIN}" serve --model-repository "$TMP/repo-$n" --model "$MODEL" \
    --listen 127.0.0.1:0 --grpc-port 0 >"$TMP/galley-$n.log" 2>&1 &
  PID[$n]=$!
done
for n in "${NAMES[@]}"; do
  for _ in $(seq 600); do grep -q '"event":"ready"' "$TMP/galley-$n.log" && break; sleep 0.1; done
  grep -q '"event":"ready"' "$TMP/galley-$n.log" || { tail -5 "$TMP/galley-$n.log" >&2; exit 1; }
  HTTP[$n]="$(grep '"event":"listening"' "$TMP/galley-$n.log" | grep -v '"protocol":"grpc"' | head -n 1 | sed 's/.*"port":\([0-9]*\).*/\1/')"
  GRPC[$n]="$(grep '"event":"listening"' "$TMP/galley-$n.log" | grep '"protocol":"grpc"' | head -n 1 | sed 's/.*"port":\([0-9]*\).*/\1/')"
done

# executions inferences of the model, from /metrics
counters() {
  curl -sS --max-time 5 "http://127.0.0.1:$1/metrics" | awk -v m="model=\"$MODEL\"" 'index($0, m) == 0 { next }
    /^galley_model_executions_total\{/ { e = $NF } /^galley_model_inferences_total\{/ { i = $NF }
    END { print e + 0, i + 0 }'
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# load PROTO NAME DURATION -> "rps p99_us"
load() {
  if [[ "$1" == http ]]; then
    taskset -c "$CLIENT_CPU" wrk -t1 "-c$C" "-d$3" --latency -s bench/serve/infer.lua \
      "http://127.0.0.1:${HTTP[$2]}" -- "$TMP/data/texts.txt" "$MODEL" \
      | sed -n 's/^RESULT .*rps=\([^ ]*\) .*p99_us=\([^ ]*\).*errors=\([^ ]*\).*/\1 \2 \3/p'
  else
    taskset -c "$CLIENT_CPU" "$GHZ_BIN" --insecure --proto proto/grpc_service.proto \
      --call inference.GRPCInferenceService/ModelInfer -D "$TMP/data/grpc-$MODEL.json" \
      --disable-template-data -c "$C" --connections 1 -z "$3" --duration-stop ignore --cpus 1 \
      -O json "127.0.0.1:${GRPC[$2]}" | python3 -c '
import json, sys
d = json.load(sys.stdin)
lat = {int(x["percentage"]): x["latency"] / 1e3 for x in d.get("latencyDistribution") or []}
ok = (d.get("statusCodeDistribution") or {}).get("OK", 0)
print(round(d["rps"], 1), round(lat.get(99, 0)), d.get("count", 0) - ok)'
  fi
}

for n in "${NAMES[@]}"; do for p in $PROTOCOLS; do load "$p" "$n" 2s >/dev/null; done; done
: >"$TMP/points.tsv"
secs="${DURATION%s}"
for ((r = 1; r <= ROUNDS; r++)); do
  for n in "${NAMES[@]}"; do
    for p in $PROTOCOLS; do
      read -r e0 i0 < <(counters "${HTTP[$n]}")
      c0="$(cpu_ticks "${PID[$n]}")"
      read -r rps p99 errors < <(load "$p" "$n" "$DURATION")
      c1="$(cpu_ticks "${PID[$n]}")"
      read -r e1 i1 < <(counters "${HTTP[$n]}")
      [[ "$errors" == 0 ]] || echo "warning: $n $p round $r: $errors errors" >&2
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$p" "$r" "$rps" "$p99" \
        "$(awk -v e="$((${e1%.*} - ${e0%.*}))" -v i="$((${i1%.*} - ${i0%.*}))" 'BEGIN { printf "%.2f", e ? i / e : 0 }')" \
        "$(awk -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" -v rps="$rps" -v s="$secs" \
             'BEGIN { printf "%.0f", (rps > 0 ? 1e6 * c / hz / (rps * s) : 0) }')" \
        "$(date -u +%H:%M:%S)" | tee -a "$TMP/points.tsv" >&2
    done
  done
done

echo "model $MODEL, c=$C, $ROUNDS rounds of $DURATION per variant and protocol; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$TMP/points.tsv" "${NAMES[0]}" <<'PY'
import collections, math, statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
base = sys.argv[2]
pts = collections.defaultdict(dict)  # (name, proto) -> round -> (rps, p99, batch, cpu)
for n, p, r, rps, p99, batch, cpu, _ in rows:
    pts[(n, p)][r] = (float(rps), float(p99), float(batch), float(cpu))
print("| variant | protocol | req/s (median) | ratio to " + base + " (median / geomean) | rounds won | p99 (median) | mean batch | server CPU per request |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for (n, p), rounds in sorted(pts.items(), key=lambda kv: (kv[0][1], kv[0][0] != base)):
    b = pts[(base, p)]
    ratios = [rounds[r][0] / b[r][0] for r in rounds if r in b and b[r][0] > 0]
    geo = math.exp(sum(math.log(x) for x in ratios) / len(ratios)) if ratios else float("nan")
    won = sum(1 for x in ratios if x > 1)
    med = lambda k: statistics.median(v[k] for v in rounds.values())
    print(f"| {n} | {p} | {med(0):.0f} | {statistics.median(ratios):.3f} / {geo:.3f} | "
          f"{'–' if n == base else f'{won}/{len(ratios)}'} | {med(1) / 1000:.1f} ms | {med(2):.1f} | {med(3):.0f} µs |")
PY
