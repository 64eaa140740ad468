#!/usr/bin/env bash
# The serving benchmark of the ONNX text models (issue 3): for each model, in one run, on loopback,
#   1. the limit: the same ONNX model driven in-process through ONNX Runtime (build/release/bench/
#      onnx_limit: OnnxBackend::RunBatch on pre-tokenized texts) at batch sizes 1..64, once per
#      repeat (at the start of each, between the other systems' points, with the servers up and
#      idle); the best batch size's median inferences/s over the repeats (for an even count the
#      upper middle run) is the limit;
#   2. Galley (`galley serve`) with the model's config as shipped (batching on) and with a copy of
#      it without `dynamic_batching` (batching off), over HTTP (POST /v2/models/NAME/infer, JSON)
#      and gRPC (inference.GRPCInferenceService/ModelInfer), one text per request;
#   3. the Python peer a user would pick instead: a KServe model server with the same model on
#      Python onnxruntime (bench/serve/kserve_peer.py), REST v2 and gRPC v2;
# all driven by the same standard load generators with the same requests: wrk (HTTP,
# bench/serve/infer.lua) and ghz (gRPC, built from its Go module), cycling through the held-out
# sentences of the models' training data (bench/serve/onnx_texts.py). Triton's perf_analyzer does
# not install here (its wheels need glibc 2.38; Debian 12 has 2.36).
#
# Pinning: the machine has 2 cores. Every system under test runs alone on core SERVER_CPU (0) with
# `taskset` (Galley with all its threads, the KServe process, and the limit tool too), and the
# load generator on core CLIENT_CPU (1). Each system gets one core and the client the other.
#
# Before the first model it waits until the 1-minute load average is below MAX_LOAD (other
# engineers build on this machine), before each later one until the CPUs are less than
# MAX_LOAD / nproc busy over 5 s (the load average then still holds our own runs), and reports
# the load it measured under. Galley points run REPEATS times
# (medians reported); KServe points KSERVE_REPEATS times; the order of the systems rotates per
# repeat so that drifting noise hits each. Every system's answers are checked (bench/serve/
# onnx_check.py: same labels and probabilities from every server and protocol) before measuring.
#
# Usage: bench/serve/onnx.sh [--quick] [-h|--help]
#   --quick  a smoke run: 1 repeat of 2 s per point, 0.5 s per limit batch size, no load wait
# Environment (defaults in brackets):
#   MODELS ["sentiment_lstm sentiment_lstm_int8 sentiment_transformer sentiment"]  models under
#                           MODEL_DIR (each needs config.json)
#   TARGET_MODELS ["sentiment_lstm sentiment_lstm_int8 sentiment_transformer"]  models the 90%
#                           target is judged on (compute >= ~200 us per request); the others'
#                           ratios are reported
#   MODEL_DIR [models]  the model repository the models are taken from
#   CONCURRENCIES ["1 8 64"]  client concurrency (wrk connections, ghz concurrent calls)
#   DURATION [5s]  one measured point     WARMUP [2s]  unrecorded, per server and protocol
#   REPEATS [3]    Galley repeats         KSERVE_REPEATS [3]
#   LIMIT_SECONDS [1.5]  per batch size     LIMIT_BATCHES [1,2,4,8,16,32,64]
#   SERVER_CPU [0]  CLIENT_CPU [1]        MAX_LOAD [0.5]  LOAD_WAIT_S [1200]  LOAD_POLL_S [15]
#   GALLEY_BIN [build/release/galley]     LIMIT_BIN [build/release/bench/onnx_limit]
#   GHZ_BIN [.deps/bench-bin/ghz]  BENCH_VENV [.deps/bench-venv]  GHZ_CONNECTIONS [1]
# Tools: wrk (Debian), ghz v0.120.0 (installed into .deps/bench-bin with `go install` when
# missing), a venv with kserve==0.21.0 onnxruntime==1.31.1 numpy (created when missing).
# Build first: cmake --build build/release --target galley onnx_limit
#
# The report goes to stdout and bench/out/onnx-<UTC stamp>.md; raw tool output to .log, every
# measured point to .tsv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source bench/lib.sh
BENCH_NAME="bench/serve/onnx"

ORIG_ARGS="$*"
QUICK=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg' (see --help)" ;;
  esac
done
if [[ "$QUICK" -eq 1 ]]; then
  : "${DURATION:=2s}" "${WARMUP:=1s}" "${REPEATS:=1}" "${LIMIT_SECONDS:=0.5}" "${LOAD_WAIT_S:=0}"
fi
MODELS="${MODELS:-sentiment_lstm sentiment_lstm_int8 sentiment_transformer sentiment}"
TARGET_MODELS="${TARGET_MODELS:-sentiment_lstm sentiment_lstm_int8 sentiment_transformer}"
MODEL_DIR="${MODEL_DIR:-models}"
CONCURRENCIES="${CONCURRENCIES:-1 8 64}"
DURATION="${DURATION:-5s}"
WARMUP="${WARMUP:-2s}"
REPEATS="${REPEATS:-3}"
KSERVE_REPEATS="${KSERVE_REPEATS:-3}"
LIMIT_SECONDS="${LIMIT_SECONDS:-1.5}"
LIMIT_BATCHES="${LIMIT_BATCHES:-1,2,4,8,16,32,64}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
MAX_LOAD="${MAX_LOAD:-0.5}"
LOAD_WAIT_S="${LOAD_WAIT_S:-1200}"
LOAD_POLL_S="${LOAD_POLL_S:-15}"
GALLEY_BIN="${GALLEY_BIN:-build/release/galley}"
LIMIT_BIN="${LIMIT_BIN:-build/release/bench/onnx_limit}"
GHZ_BIN="${GHZ_BIN:-.deps/bench-bin/ghz}"
GHZ_VERSION="v0.120.0"
GHZ_CONNECTIONS="${GHZ_CONNECTIONS:-1}"
BENCH_VENV="${BENCH_VENV:-.deps/bench-venv}"
READY_TIMEOUT_S="${READY_TIMEOUT_S:-90}"
WRK_BIN="${WRK_BIN:-wrk}"
WRK_THREADS=1  # one core for the client: one wrk thread (lib.sh's check_numbers wants it set)
LUA_SCRIPT="bench/serve/infer.lua"
# Targets from the issue.
TARGET_LIMIT_RATIO=0.9
TARGET_PEER_RATIO=5
TARGET_BATCHING_RATIO=2
TARGET_C=64

TMP=""
declare -A PID=() HTTP=() GRPC=()
SERVER_KEYS=()   # started servers, for stop_servers
QUIET_NOTES=()   # one line per model: the load it was measured under

# ---------------------------------------------------------------------------------------------
# Tools and inputs

setup_tools() {
  command -v "$WRK_BIN" >/dev/null || die "wrk is missing (Debian: apt-get install wrk)"
  command -v taskset >/dev/null || die "taskset is missing (util-linux)"
  [[ -x "$GALLEY_BIN" ]] || die "$GALLEY_BIN is missing: cmake --build build/release --target galley"
  [[ -x "$LIMIT_BIN" ]] || die "$LIMIT_BIN is missing: cmake --build build/release --target onnx_limit"
  if [[ ! -x "$GHZ_BIN" ]]; then
    log "installing ghz $GHZ_VERSION into $(dirname "$GHZ_BIN") (go install)"
    GOBIN="$ROOT/$(dirname "$GHZ_BIN")" go install "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION" \
      || die "could not build ghz"
  fi
  if [[ ! -x "$BENCH_VENV/bin/python" ]] || ! "$BENCH_VENV/bin/python" -c 'import kserve, onnxruntime' 2>/dev/null; then
    log "creating the bench venv $BENCH_VENV (kserve==0.21.0 onnxruntime==1.31.1 numpy)"
    python3 -m venv "$BENCH_VENV"
    "$BENCH_VENV/bin/pip" install -q kserve==0.21.0 onnxruntime==1.31.1 numpy || die "pip install failed"
  fi
  (( $(nproc) > SERVER_CPU && $(nproc) > CLIENT_CPU )) || die "SERVER_CPU/CLIENT_CPU beyond $(nproc) CPUs"
  check_numbers
  [[ "$KSERVE_REPEATS" =~ ^[1-9][0-9]*$ ]] || die "KSERVE_REPEATS must be a positive integer"
  local m
  for m in $MODELS; do
    [[ -f "$MODEL_DIR/$m/config.json" ]] || die "$MODEL_DIR/$m/config.json is missing"
    compgen -G "$MODEL_DIR/$m/[0-9]*/model.onnx" >/dev/null || die "$MODEL_DIR/$m/<version>/model.onnx is missing"
  done
  models/training/fetch_data.sh >/dev/null || die "could not fetch the sentiment data"
}

# A field of models/$1/config.json by a Python expression on `c`, e.g. 'c["max_batch_size"]'.
config_value() {
  python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
    "$MODEL_DIR/$1/config.json" "$2"
}

# The model's served version folder (the highest number holding model.onnx).
model_file() {
  local m="$1"
  find "$MODEL_DIR/$m" -mindepth 2 -maxdepth 2 -name model.onnx \
    | awk -F/ '$(NF - 1) ~ /^[0-9]+$/ { print $(NF - 1) "\t" $0 }' | sort -n | tail -n 1 | cut -f2
}

# Two single-model repositories: $TMP/repo-on (the model's folder as shipped) and $TMP/repo-off
# (the same with `dynamic_batching` removed from config.json).
make_repositories() {
  local m="$1"
  rm -rf "$TMP/repo-on" "$TMP/repo-off"
  mkdir -p "$TMP/repo-on" "$TMP/repo-off"
  cp -r "$MODEL_DIR/$m" "$TMP/repo-on/$m"
  cp -r "$MODEL_DIR/$m" "$TMP/repo-off/$m"
  python3 - "$TMP/repo-off/$m/config.json" <<'EOF'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
if "dynamic_batching" not in config:
    sys.exit(f"{path}: the shipped config has no dynamic_batching, nothing to turn off")
del config["dynamic_batching"]
json.dump(config, open(path, "w"), indent=2)
EOF
}

# ---------------------------------------------------------------------------------------------
# A quiet machine

# Percent of all CPUs busy (not idle or iowait) over the next $1 seconds, from /proc/stat.
cpu_busy_pct() {
  local a b
  a="$(head -n 1 /proc/stat)"
  sleep "$1"
  b="$(head -n 1 /proc/stat)"
  awk -v a="$a" -v b="$b" 'BEGIN { n = split(a, x, " "); split(b, y, " "); t = 0
    for (i = 2; i <= n; i++) t += y[i] - x[i]
    idle = (y[5] - x[5]) + (y[6] - x[6])
    printf "%.0f", (t > 0 ? 100 * (t - idle) / t : 0) }'
}

# Waits until the machine is quiet. Before the first model: the 1-minute load average below
# MAX_LOAD. Before a later model our own previous runs still weigh in that average (it decays
# over minutes), so the test is what the others use now: the CPUs busy less than
# MAX_LOAD / nproc (25% for 0.5 on 2 cores) over 5 s, while nothing of ours runs.
wait_quiet() {
  local m="$1" first="$2" start=$SECONDS load busy max_busy ok top what
  max_busy="$(awk -v l="$MAX_LOAD" -v n="$(nproc)" 'BEGIN { printf "%.0f", 100 * l / n }')"
  while :; do
    load="$(cut -d' ' -f1 /proc/loadavg)"
    busy="$(cpu_busy_pct 5)"
    if [[ "$first" -eq 1 ]]; then
      ok="$(awk -v l="$load" -v m="$MAX_LOAD" 'BEGIN { print (l < m) ? 1 : 0 }')"
      what="1-min load average $load (must be < $MAX_LOAD; CPUs $busy% busy over 5 s)"
    else
      ok="$(awk -v b="$busy" -v m="$max_busy" 'BEGIN { print (b < m) ? 1 : 0 }')"
      what="CPUs $busy% busy over 5 s with nothing of ours running (must be < $max_busy%; 1-min load average $load, which still holds our previous model's runs)"
    fi
    if [[ "$ok" -eq 1 ]]; then
      QUIET_NOTES+=("$m: quiet: $what, after waiting $((SECONDS - start)) s")
      log "machine quiet: $what"
      return
    fi
    if ((SECONDS - start >= LOAD_WAIT_S)); then
      top="$(ps -eo pcpu=,comm= --sort=-pcpu | head -n 3 | awk '{ printf "%s%s %s%%", s, $2, $1; s = ", " }')"
      QUIET_NOTES+=("$m: **NOT QUIET**: $what after waiting $((SECONDS - start)) s; measured anyway (busiest: $top)")
      log "not quiet after $((SECONDS - start)) s ($what): measuring anyway"
      return
    fi
    log "not quiet: $what; waiting (polls every ${LOAD_POLL_S} s, up to ${LOAD_WAIT_S} s)"
    sleep "$LOAD_POLL_S"
  done
}

# ---------------------------------------------------------------------------------------------
# Servers

# start_galley KEY REPO MODEL: `galley serve` on core SERVER_CPU, free ports from its log.
start_galley() {
  local key="$1" repo="$2" model="$3" log_file="$TMP/galley-$1.log" deadline
  local cmd=(taskset -c "$SERVER_CPU" "$GALLEY_BIN" serve --model-repository "$repo" --model "$model"
             --listen 127.0.0.1:0 --grpc-port 0)
  echo "${cmd[*]}" >"$TMP/cmd-$key"
  log "starting $key: ${cmd[*]}"
  "${cmd[@]}" >"$log_file" 2>&1 &
  PID[$key]=$!
  SERVER_KEYS+=("$key")
  deadline=$((SECONDS + READY_TIMEOUT_S))
  while ! grep -q '"event":"ready"' "$log_file"; do
    if ! kill -0 "${PID[$key]}" 2>/dev/null || ((SECONDS > deadline)); then
      tail -n 20 "$log_file" >&2
      die "galley ($key) did not become ready"
    fi
    sleep 0.1
  done
  HTTP[$key]="$(grep '"event":"listening"' "$log_file" | grep -v '"protocol":"grpc"' | head -n 1 \
                | sed 's/.*"port":\([0-9]*\).*/\1/')"
  GRPC[$key]="$(grep '"event":"listening"' "$log_file" | grep '"protocol":"grpc"' | head -n 1 \
                | sed 's/.*"port":\([0-9]*\).*/\1/')"
  [[ -n "${HTTP[$key]}" && -n "${GRPC[$key]}" ]] || die "no listening ports in $log_file"
  wait_ready "http://127.0.0.1:${HTTP[$key]}/v2/health/ready" "${PID[$key]}" "$READY_TIMEOUT_S" "galley ($key)" \
    || die "galley ($key) not ready"
}

# start_kserve MODEL: the KServe peer on core SERVER_CPU.
start_kserve() {
  local m="$1" key=kserve
  HTTP[$key]="$(free_port)"
  GRPC[$key]="$(free_port)"
  while [[ "${GRPC[$key]}" == "${HTTP[$key]}" ]]; do GRPC[$key]="$(free_port)"; done
  local cmd=(taskset -c "$SERVER_CPU" "$BENCH_VENV/bin/python" bench/serve/kserve_peer.py
             --model_dir "$MODEL_DIR/$m" --model_name "$m" --http_port "${HTTP[$key]}"
             --grpc_port "${GRPC[$key]}" --enable_latency_logging false --workers 1)
  echo "${cmd[*]}" >"$TMP/cmd-$key"
  log "starting $key: ${cmd[*]}"
  "${cmd[@]}" >"$TMP/kserve.log" 2>&1 &
  PID[$key]=$!
  SERVER_KEYS+=("$key")
  if ! wait_ready "http://127.0.0.1:${HTTP[$key]}/v2/health/ready" "${PID[$key]}" "$READY_TIMEOUT_S" kserve; then
    tail -n 30 "$TMP/kserve.log" >&2
    die "the KServe peer did not start"
  fi
}

stop_servers() {
  local key
  for key in "${SERVER_KEYS[@]}"; do
    [[ -n "${PID[$key]:-}" ]] && stop_pid "${PID[$key]}"
    PID[$key]=""
  done
  SERVER_KEYS=()
}

check_alive() {
  local key
  for key in "${SERVER_KEYS[@]}"; do
    if ! kill -0 "${PID[$key]}" 2>/dev/null; then
      tail -n 20 "$TMP/galley-$key.log" "$TMP/kserve.log" 2>/dev/null >&2 || true
      die "$key exited during the benchmark"
    fi
  done
}

# Peak RSS of a server and its children since the last reset_hwm, in kB.
server_hwm_kb() {
  local total=0 p kb
  for p in "$1" $(cat /proc/"$1"/task/*/children 2>/dev/null || true); do
    kb="$(proc_kb "$p" VmHWM)"
    total=$((total + ${kb:-0}))
  done
  echo "$total"
}
# CPU seconds (user + system, all threads) used so far by a server and its children.
server_cpu_s() {
  local p total=0 t
  for p in "$1" $(cat /proc/"$1"/task/*/children 2>/dev/null || true); do
    t="$(sed 's/.*) //' /proc/"$p"/stat 2>/dev/null | awk '{ print $12 + $13 }')"
    total=$((total + ${t:-0}))
  done
  awk -v t="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}
# Resets VmHWM to the current RSS (Linux: clear_refs 5), so that each point has its own peak.
HWM_RESET_OK=1
reset_hwm() {
  local p
  for p in "$1" $(cat /proc/"$1"/task/*/children 2>/dev/null || true); do
    echo 5 2>/dev/null >/proc/"$p"/clear_refs || HWM_RESET_OK=0
  done
}

# ---------------------------------------------------------------------------------------------
# Measuring

# Galley's counters for model $2 at port $1: execs infers queue_sum queue_count compute_sum compute_count
galley_counters() {
  curl -sS --max-time 5 "http://127.0.0.1:$1/metrics" 2>/dev/null | awk -v m="model=\"$2\"" '
    index($0, m) == 0 { next }
    /^galley_model_executions_total\{/ { e = $NF } /^galley_model_inferences_total\{/ { i = $NF }
    /^galley_queue_duration_seconds_sum\{/ { qs = $NF } /^galley_queue_duration_seconds_count\{/ { qc = $NF }
    /^galley_compute_duration_seconds_sum\{/ { cs = $NF } /^galley_compute_duration_seconds_count\{/ { cc = $NF }
    END { printf "%s %s %s %s %s %s\n", e + 0, i + 0, qs + 0, qc + 0, cs + 0, cc + 0 }'
}

# run_load PROTO PORT MODEL C DURATION LABEL: one wrk (http) or ghz (grpc) run from core
# CLIENT_CPU; sets POINT="rps p50_us p99_us errors requests duration_s client_cpu_s".
POINT=""
run_load() {
  local proto="$1" port="$2" model="$3" c="$4" d="$5" label="$6" secs rc=0
  secs="$(to_seconds "$d")"
  local cmd
  if [[ "$proto" == http ]]; then
    cmd=(taskset -c "$CLIENT_CPU" /usr/bin/time -f '%U %S' -o "$TMP/client.time" "$WRK_BIN" -t1 "-c$c" "-d$d" --latency -s "$LUA_SCRIPT"
         "http://127.0.0.1:$port" -- "$TMP/data/texts.txt" "$model")
  else
    cmd=(taskset -c "$CLIENT_CPU" /usr/bin/time -f '%U %S' -o "$TMP/client.time" "$GHZ_BIN" --insecure --proto proto/grpc_service.proto
         --call inference.GRPCInferenceService/ModelInfer -D "$TMP/data/grpc-$model.json"
         --disable-template-data -c "$c" --connections "$((c < GHZ_CONNECTIONS ? c : GHZ_CONNECTIONS))"
         -z "$d" --duration-stop ignore --cpus 1 -O json "127.0.0.1:$port")
  fi
  { echo "=== $label"; echo "\$ ${cmd[*]}"; } >>"$RAW_LOG"
  timeout $((secs + 60)) "${cmd[@]}" >"$TMP/load.out" 2>"$TMP/load.err" &
  WRK_PID=$!
  wait "$WRK_PID" || rc=$?
  WRK_PID=""
  cat "$TMP/load.out" "$TMP/load.err" >>"$RAW_LOG"
  echo >>"$RAW_LOG"
  [[ $rc -eq 0 ]] || die "$proto load failed (exit $rc) for $label: $(tail -c 300 "$TMP/load.err")"
  if [[ "$proto" == http ]]; then
    local line
    line="$(grep '^RESULT ' "$TMP/load.out" || true)"
    [[ -n "$line" ]] || die "no RESULT line from wrk for $label"
    POINT="$(field rps "$line") $(field p50_us "$line") $(field p99_us "$line") $(field errors "$line")"
    POINT+=" $(field requests "$line") $(awk -v u="$(field duration_us "$line")" 'BEGIN { print u / 1e6 }')"
  else
    POINT="$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
lat = {int(x["percentage"]): x["latency"] / 1e3 for x in (d.get("latencyDistribution") or [])}
codes = d.get("statusCodeDistribution") or {}
count = d.get("count", 0)
errors = count - codes.get("OK", 0)
rps, secs = d.get("rps", 0), d.get("total", 0) / 1e9
print(f"{rps:.1f} {lat.get(50, 0):.0f} {lat.get(99, 0):.0f} {errors} {count} {secs:.3f}")
' "$TMP/load.out")" || die "cannot read ghz output for $label"
  fi
  POINT+=" $(awk 'END { print $1 + $2 }' "$TMP/client.time")"
  check_alive
}

# measure MODEL SYSTEM PROTO C REP: one recorded point, with the server's own peak RSS and (for
# Galley) its batching counters over the point.
measure() {
  local m="$1" sys="$2" proto="$3" c="$4" rep="$5" port before after hwm cpu0 cpu1
  if [[ "$proto" == http ]]; then port="${HTTP[$sys]}"; else port="${GRPC[$sys]}"; fi
  before="0 0 0 0 0 0"
  [[ "$sys" == galley-* ]] && before="$(galley_counters "${HTTP[$sys]}" "$m")"
  reset_hwm "${PID[$sys]}"
  cpu0="$(server_cpu_s "${PID[$sys]}")"
  run_load "$proto" "$port" "$m" "$c" "$DURATION" "$m $sys $proto c=$c rep=$rep"
  cpu1="$(server_cpu_s "${PID[$sys]}")"
  hwm="$(server_hwm_kb "${PID[$sys]}")"
  after="0 0 0 0 0 0"
  [[ "$sys" == galley-* ]] && after="$(galley_counters "${HTTP[$sys]}" "$m")"
  local delta
  delta="$(awk -v a="$after" -v b="$before" 'BEGIN { n = split(a, x, " "); split(b, y, " ");
    for (i = 1; i <= n; i++) printf "%s%s", (i > 1 ? "\t" : ""), x[i] - y[i] }')"
  local p=($POINT)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$m" "$sys" "$proto" "$c" "$rep" \
    "${p[0]}" "${p[1]}" "${p[2]}" "${p[3]}" "${p[4]}" "$hwm" "$delta" "${p[5]}" \
    "$(awk -v a="$cpu1" -v b="$cpu0" 'BEGIN { printf "%.2f", a - b }')" "${p[6]}" >>"$RESULTS"
  log "$(printf '%-22s %-10s %-4s c=%-3s rep=%s rps=%-8s p50_us=%-7s p99_us=%-7s errors=%s rss=%s' \
    "$m" "$sys" "$proto" "$c" "$rep" "${p[0]}" "${p[1]}" "${p[2]}" "${p[3]}" "$(kb_mib "$hwm")")"
}

# The systems in the order of repeat `rep` (rotated so that each takes each slot in turn).
SYSTEM_POINTS=("galley-on http" "galley-on grpc" "galley-off http" "galley-off grpc" "kserve http" "kserve grpc")
rotated_points() {
  local rep="$1" n=${#SYSTEM_POINTS[@]} i
  for ((i = 0; i < n; i++)); do echo "${SYSTEM_POINTS[(i + (rep - 1) * 2) % n]}"; done
}

# The limit: onnx_limit on core SERVER_CPU, in both batch orders, for repeat REP; stdout lines go
# to $TMP/limit-MODEL.REP.txt (consecutive: the limit) and $TMP/limit-sorted-MODEL.REP.txt.
run_limit() {
  local m="$1" rep="$2" threads max_length order out
  threads="$(config_value "$m" 'c.get("parameters", {}).get("intra_op_threads", 1)')"
  max_length="$(config_value "$m" 'c.get("preprocess", {}).get("max_length", 128)')"
  for order in consecutive sorted; do
    out="$TMP/limit-$m.$rep.txt"
    [[ "$order" == sorted ]] && out="$TMP/limit-sorted-$m.$rep.txt"
    local cmd=(taskset -c "$SERVER_CPU" "$LIMIT_BIN" --model "$(model_file "$m")"
               --vocab "$MODEL_DIR/$m/$(config_value "$m" 'c["preprocess"]["vocab"]')"
               --texts "$TMP/data/texts.txt" --max-length "$max_length" --threads "$threads"
               --seconds "$LIMIT_SECONDS" --batch-sizes "$LIMIT_BATCHES" --order "$order")
    echo "${cmd[*]}" >"$TMP/cmd-limit-$order-$m"
    log "limit ($order, repeat $rep): ${cmd[*]}"
    { echo "=== limit $m $order repeat $rep"; echo "\$ ${cmd[*]}"; } >>"$RAW_LOG"
    "${cmd[@]}" >"$out" 2>>"$RAW_LOG" || die "onnx_limit failed for $m (see $RAW_LOG)"
    cat "$out" >>"$RAW_LOG"
  done
}

# Merges the repeats' limit files of MODEL into $TMP/limit-MODEL.txt and $TMP/limit-sorted-
# MODEL.txt, in onnx_limit's format: per batch size the line of the repeat with the median
# inferences/s (the upper middle one for an even count), BEST the batch size with the highest
# median, COMPUTE_B1_US from batch 1's median line, the largest PEAK_RSS_KB, the first TEXTS.
merge_limit() {
  local m="$1" prefix
  for prefix in limit limit-sorted; do
    python3 - "$TMP/$prefix-$m".*.txt >"$TMP/$prefix-$m.txt" <<'PY'
import re, sys
lines = {}
rss, texts = 0, None
for path in sys.argv[1:]:
    for line in open(path):
        if line.startswith("LIMIT "):
            batch = int(re.search(r"batch=(\d+)", line).group(1))
            lines.setdefault(batch, []).append(line.rstrip("\n"))
        elif line.startswith("PEAK_RSS_KB "):
            rss = max(rss, int(line.split("=")[1]))
        elif line.startswith("TEXTS ") and texts is None:
            texts = line.rstrip("\n")
rate = lambda line: float(re.search(r"inferences_per_s=([0-9.]+)", line).group(1))
median = {}
for batch, group in sorted(lines.items()):
    group.sort(key=rate)
    median[batch] = group[len(group) // 2]
    print(median[batch])
best = max(median, key=lambda b: rate(median[b]))
print(f"BEST batch={best} inferences_per_s={rate(median[best]):.1f}")
if 1 in median:
    print(f"COMPUTE_B1_US us={1e6 / rate(median[1]):.1f}")
print(texts)
print(f"PEAK_RSS_KB kb={rss}")
PY
  done
}

bench_model() {
  local m="$1" first="$2" rep c sp sys proto max_c
  max_c="$(max_concurrency)"
  wait_quiet "$m" "$first"
  make_repositories "$m"
  start_galley galley-on "$TMP/repo-on" "$m"
  start_galley galley-off "$TMP/repo-off" "$m"
  start_kserve "$m"
  log "checking every server's answers"
  "$BENCH_VENV/bin/python" bench/serve/onnx_check.py --model "$m" --labels "$TMP/data/labels.tsv" \
    --server "galley-on=${HTTP[galley-on]},${GRPC[galley-on]}" \
    --server "galley-off=${HTTP[galley-off]},${GRPC[galley-off]}" \
    --server "kserve=${HTTP[kserve]},${GRPC[kserve]}" | tee "$TMP/check-$m.txt" >&2 \
    || die "the servers' answers differ (see above)"
  for sp in "${SYSTEM_POINTS[@]}"; do
    read -r sys proto <<<"$sp"
    log "warm-up: $m $sys $proto c=$max_c $WARMUP"
    run_load "$proto" "$( [[ $proto == http ]] && echo "${HTTP[$sys]}" || echo "${GRPC[$sys]}")" \
      "$m" "$max_c" "$WARMUP" "warm-up $m $sys $proto c=$max_c"
  done
  for ((rep = 1; rep <= REPEATS; rep++)); do
    run_limit "$m" "$rep"
    for c in $CONCURRENCIES; do
      while read -r sys proto; do
        if [[ "$sys" == kserve && "$rep" -gt "$KSERVE_REPEATS" ]]; then continue; fi
        measure "$m" "$sys" "$proto" "$c" "$rep"
      done < <(rotated_points "$rep")
    done
  done
  merge_limit "$m"
  local key
  for key in galley-on galley-off kserve; do
    echo "$m $key $(proc_kb "${PID[$key]}" VmRSS)" >>"$TMP/rss-end.txt"
  done
  echo "$m $(cut -d' ' -f1-3 /proc/loadavg)" >>"$TMP/load-end.txt"
  curl -sS --max-time 5 -o "$TMP/metrics-$m.txt" "http://127.0.0.1:${HTTP[galley-on]}/metrics" || true
  cp "$TMP/repo-off/$m/config.json" "$TMP/config-off-$m.json"
  stop_servers
}

# ---------------------------------------------------------------------------------------------
# Report

# Values of column k for (model, system, proto, c) rows.
col() { awk -F'\t' -v m="$1" -v s="$2" -v p="$3" -v c="$4" -v k="$5" \
  '$1 == m && $2 == s && $3 == p && $4 == c { print $k }' "$RESULTS"; }
med_of() { col "$@" | median; }
max_of() { col "$@" | sort -g | tail -n 1; }
sum_of() { col "$@" | awk '{ s += $1 } END { print s + 0 }'; }
# limit_field MODEL LINE KEY [sorted]
limit_field() { sed -n "s/^$2 .*\b$3=\([^ ]*\).*/\1/p" "$TMP/limit-${4:+$4-}$1.txt" | head -n 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "nan") printf "%.2f", a / b; else print "–" }'; }
pass() { awk -v r="$1" -v t="$2" 'BEGIN { print (r != "–" && r >= t) ? "PASS" : "FAIL" }'; }
us_cell() { awk -v us="$1" 'BEGIN { if (us == "nan" || us == "") print "–"; else if (us < 10000) printf "%.2f ms", us / 1000; else printf "%.1f ms", us / 1000 }'; }

# Server and client CPU over a point's wall time (% of one core), summed over repeats.
cpu_cell() {
  awk -F'\t' -v m="$1" -v s="$2" -v p="$3" -v c="$4" '$1 == m && $2 == s && $3 == p && $4 == c {
      w += $18; sc += $19; cc += $20 }
    END { if (w > 0) printf "%.0f%% / %.0f%%", 100 * sc / w, 100 * cc / w; else print "–" }' "$RESULTS"
}

system_label() {
  case "$1" in
    galley-on) echo "Galley, batching on" ;;
    galley-off) echo "Galley, batching off" ;;
    kserve) echo "KServe (Python onnxruntime)" ;;
  esac
}

model_table() {
  local m="$1" limit best sp sys proto c rps e cell
  limit="$(limit_field "$m" BEST inferences_per_s)"
  best="$(limit_field "$m" BEST batch)"
  echo "| system | protocol | concurrency | throughput (req/s) | p50 | p99 | peak RSS | ratio to limit | CPU server / client |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
  echo "| **limit**: in-process ONNX Runtime, batch $best (best) | – | – | $(num "$limit") |" \
       "$(us_cell "$(sed -n "s/^LIMIT batch=$best .*p50_us=\([^ ]*\).*/\1/p" "$TMP/limit-$m.txt")") per batch |" \
       "$(us_cell "$(sed -n "s/^LIMIT batch=$best .*p99_us=\([^ ]*\).*/\1/p" "$TMP/limit-$m.txt")") per batch |" \
       "$(kb_mib "$(limit_field "$m" PEAK_RSS_KB kb)") | 1.00 | – |"
  local sbest slimit
  sbest="$(limit_field "$m" BEST batch sorted)"
  slimit="$(limit_field "$m" BEST inferences_per_s sorted)"
  echo "| limit, length-sorted batches (least padding; not the target's limit), batch $sbest (best) | – | – | $(num "$slimit") |" \
       "$(us_cell "$(sed -n "s/^LIMIT batch=$sbest .*p50_us=\([^ ]*\).*/\1/p" "$TMP/limit-sorted-$m.txt")") per batch |" \
       "$(us_cell "$(sed -n "s/^LIMIT batch=$sbest .*p99_us=\([^ ]*\).*/\1/p" "$TMP/limit-sorted-$m.txt")") per batch |" \
       "$(kb_mib "$(limit_field "$m" PEAK_RSS_KB kb sorted)") | $(ratio "$slimit" "$limit") | – |"
  for sp in "galley-on http" "galley-off http" "galley-on grpc" "galley-off grpc" "kserve http" "kserve grpc"; do
    read -r sys proto <<<"$sp"
    for c in $CONCURRENCIES; do
      rps="$(med_of "$m" "$sys" "$proto" "$c" 6)"
      e="$(sum_of "$m" "$sys" "$proto" "$c" 9)"
      cell="$(num "$rps")"
      [[ "$e" != 0 ]] && cell+=" (ERRORS: $e)"
      echo "| $(system_label "$sys") | ${proto/http/HTTP} | $c | $cell | $(us_cell "$(med_of "$m" "$sys" "$proto" "$c" 7)") |" \
           "$(us_cell "$(med_of "$m" "$sys" "$proto" "$c" 8)") | $(kb_mib "$(max_of "$m" "$sys" "$proto" "$c" 11)") |" \
           "$(ratio "$rps" "$limit") | $(cpu_cell "$m" "$sys" "$proto" "$c") |" | sed 's/| grpc |/| gRPC |/'
    done
  done
}

limit_table() {
  local m="$1"
  echo "| batch | consecutive: inferences/s | µs per batch (mean) | p50 | p99 | sorted: inferences/s | µs per batch (mean) | p50 | p99 |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  join <(limit_rows "$TMP/limit-$m.txt") <(limit_rows "$TMP/limit-sorted-$m.txt") | sort -n \
    | while read -r b r u p50 p99 sr su sp50 sp99; do
      echo "| $b | $(num "$r") | $u | $(us_cell "$p50") | $(us_cell "$p99") | $(num "$sr") | $su | $(us_cell "$sp50") | $(us_cell "$sp99") |"
    done
}
limit_rows() {
  sed -n 's/^LIMIT batch=\([0-9]*\) inferences_per_s=\([^ ]*\) us_per_batch=\([^ ]*\) p50_us=\([^ ]*\) p99_us=\([^ ]*\).*/\1 \2 \3 \4 \5/p' "$1" | sort -k1,1
}

# Galley's own account of each point, from /metrics deltas (summed over repeats).
batching_table() {
  local m="$1" sys proto c
  echo "| system | protocol | c | mean batch (inferences / executions) | mean queue wait | compute per execution | compute per inference | model busy (compute / wall) |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  for sys in galley-on galley-off; do
    for proto in http grpc; do
      for c in $CONCURRENCIES; do
        awk -F'\t' -v m="$m" -v s="$sys" -v p="$proto" -v c="$c" -v label="$(system_label "$sys")" '
          $1 == m && $2 == s && $3 == p && $4 == c { e += $12; i += $13; qs += $14; qc += $15; cs += $16; cc += $17; w += $18 }
          END {
            if (e == 0 || cc == 0) { printf "| %s | %s | %s | – | – | – | – | – |\n", label, p, c; exit }
            printf "| %s | %s | %s | %.2f | %.0f µs | %.0f µs | %.0f µs | %.0f%% |\n", label, p, c,
                   i / e, 1e6 * qs / (qc > 0 ? qc : 1), 1e6 * cs / cc, 1e6 * cs / i, 100 * cs / w }' "$RESULTS"
      done
    done
  done | sed 's/| http |/| HTTP |/; s/| grpc |/| gRPC |/'
}

verdicts() {
  local m="$1" limit proto c g k gp kp r pr ok sys
  limit="$(limit_field "$m" BEST inferences_per_s)"
  local primary=0
  grep -qw -- "$m" <<<"$TARGET_MODELS" && primary=1
  echo "Targets for \`$m\`$([[ $primary -eq 1 ]] && echo " (a target model: compute ≥ ~200 µs per request)" || echo " (ratios reported; the 90% target is judged on $TARGET_MODELS)"); batch-1 compute $(limit_field "$m" COMPUTE_B1_US us) µs per request in-process:"
  echo
  for proto in http grpc; do
    local best_r="–" best_c=""
    for c in $CONCURRENCIES; do
      g="$(med_of "$m" galley-on "$proto" "$c" 6)"
      r="$(ratio "$g" "$limit")"
      if [[ "$best_r" == "–" ]] || awk -v a="$r" -v b="$best_r" 'BEGIN { exit !(a > b) }'; then best_r="$r"; best_c="$c"; fi
    done
    echo "- Galley ≥ ${TARGET_LIMIT_RATIO} × limit, ${proto/http/HTTP} (batching on, best concurrency c=$best_c): $best_r × → **$(pass "$best_r" "$TARGET_LIMIT_RATIO")**$([[ $primary -eq 0 ]] && echo " (reported only)")" \
         "(against the length-sorted limit: $(ratio "$(med_of "$m" galley-on "$proto" "$best_c" 6)" "$(limit_field "$m" BEST inferences_per_s sorted)") ×)" | sed 's/grpc/gRPC/'
  done
  # Throughput is judged where both servers are saturated (c=TARGET_C); lower concurrencies are
  # listed too, but at c=1 the ratio is a latency ratio (nothing to batch).
  for proto in http grpc; do
    local line="- Galley ≥ ${TARGET_PEER_RATIO} × KServe at equal or lower p99, ${proto/http/HTTP} (batching on):"
    local all=PASS at_target="not measured"
    for c in $CONCURRENCIES; do
      g="$(med_of "$m" galley-on "$proto" "$c" 6)"; k="$(med_of "$m" kserve "$proto" "$c" 6)"
      gp="$(med_of "$m" galley-on "$proto" "$c" 8)"; kp="$(med_of "$m" kserve "$proto" "$c" 8)"
      r="$(ratio "$g" "$k")"
      ok="$(pass "$r" "$TARGET_PEER_RATIO")"
      if ! awk -v a="$gp" -v b="$kp" 'BEGIN { exit !(a <= b) }'; then ok=FAIL; fi
      [[ "$ok" == PASS ]] || all=FAIL
      [[ "$c" == "$TARGET_C" ]] && at_target="$ok"
      line+=" c=$c: ${r}×, p99 $(us_cell "$gp") vs $(us_cell "$kp") ($ok);"
    done
    echo "${line%;} → at c=$TARGET_C (both saturated): **$at_target**; at every concurrency: $all" |
      sed 's/, grpc/, gRPC/'
  done
  if grep -qw "$TARGET_C" <<<"$CONCURRENCIES"; then
    for proto in http grpc; do
      g="$(med_of "$m" galley-on "$proto" "$TARGET_C" 6)"; k="$(med_of "$m" galley-off "$proto" "$TARGET_C" 6)"
      r="$(ratio "$g" "$k")"
      echo "- batching on ≥ ${TARGET_BATCHING_RATIO} × off at c=$TARGET_C, ${proto/http/HTTP}: $(num "$g") vs $(num "$k") req/s = ${r}× → **$(pass "$r" "$TARGET_BATCHING_RATIO")**" | sed 's/, grpc/, gRPC/'
    done
  else
    echo "- batching on vs off at c=$TARGET_C: not measured"
  fi
}

write_report() {
  local m cpu
  cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  {
    echo "# Serving ONNX models: Galley vs the in-process limit vs KServe, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    [[ "$QUICK" -eq 1 ]] && { echo "**--quick smoke run: 1 repeat, short points; not for reading numbers.**"; echo; }
    echo "- command: \`$COMMAND_LINE\`"
    echo "- machine: $(nproc) CPUs, $cpu, Linux $(uname -r); loopback (127.0.0.1)"
    echo "- pinning: every system under test on core $SERVER_CPU (\`taskset -c $SERVER_CPU\`: Galley with all its"
    echo "  threads, the KServe process, the limit tool), the load generator (wrk -t1 / ghz --cpus 1) on core"
    echo "  $CLIENT_CPU: each system gets one core, the client the other. Nothing else of ours runs meanwhile;"
    echo "  the idle servers of the same model stay up (their idle threads sleep)."
    for m in "${QUIET_NOTES[@]}"; do echo "- before measuring $m"; done
    [[ -s "$TMP/load-end.txt" ]] && echo "- load average (1/5/15 min) after each model: $(awk '{ printf "%s%s %s/%s/%s", s, $1, $2, $3, $4; s = "; " }' "$TMP/load-end.txt")"
    echo "- Galley: \`$GALLEY_BIN\` ($("$GALLEY_BIN" --version 2>&1 | head -n 1)), ONNX Runtime $(cat .deps/onnxruntime/VERSION) (C++);" \
         "defaults otherwise (2 HTTP I/O threads); \`galley serve --model-repository REPO --model NAME --listen 127.0.0.1:0 --grpc-port 0\`"
    echo "  with REPO a copy of models/NAME as shipped (batching on) or with \`dynamic_batching\` deleted from config.json (batching off)"
    echo "- KServe: \`bench/serve/kserve_peer.py\` (kserve $("$BENCH_VENV/bin/python" -c 'from importlib.metadata import version as v; print(v("kserve"), "onnxruntime", v("onnxruntime"), "python", __import__("platform").python_version())'),"
    echo "  1 uvicorn worker, gRPC on, per-request log lines off, 1 intra-op thread), REST v2 and gRPC v2"
    echo "- limit: \`$LIMIT_BIN\` (OnnxBackend::RunBatch on pre-tokenized texts, consecutive texts per batch,"
    echo "  padded to the batch's longest, the config's intra-op threads), $LIMIT_SECONDS s per batch size, once per repeat"
    echo "  with the servers up and idle (median per batch size shown); also with"
    echo "  the texts sorted by length (\`--order sorted\`: nearly unpadded batches, what length buckets approach), for reference"
    echo "- clients: $("$WRK_BIN" -v 2>&1 | head -n 1 | awk '{ print $1, $2 }') (\`-t1 -cC --latency -s $LUA_SCRIPT\`), ghz $GHZ_VERSION"
    echo "  (\`--proto proto/grpc_service.proto --call inference.GRPCInferenceService/ModelInfer -c C --connections $GHZ_CONNECTIONS --cpus 1 --disable-template-data\`)"
    echo "- requests: one text per request, cycling through the $(wc -l <"$TMP/data/texts.txt") held-out (validation + test) sentences of"
    echo "  UCI Sentiment Labelled Sentences as split by models/training/train_sentiment.py, shuffled (seed fixed):"
    echo "  $(sed -n 's/^TEXTS //p' "$TMP/limit-$(awk '{ print $1 }' <<<"$MODELS").txt") (token ids per text, ${MODELS%% *}'s vocabulary)"
    echo "- points: $DURATION each after a $WARMUP warm-up per server and protocol; Galley $REPEATS repeat(s), KServe $KSERVE_REPEATS;"
    echo "  medians shown; peak RSS = the server's VmHWM over the point (reset before each point$([[ $HWM_RESET_OK -eq 0 ]] && echo ": **reset failed, so cumulative**")), largest over repeats"
    echo
    for m in $MODELS; do
      echo "## $m"
      echo
      echo "Config as shipped: \`$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(json.dumps({k: c[k] for k in c if k in ("max_batch_size", "dynamic_batching", "instance_group", "parameters")}))' "$MODEL_DIR/$m/config.json")\`"
      echo
      model_table "$m"
      echo
      verdicts "$m"
      echo
      echo "Correctness, checked before measuring (bench/serve/onnx_check.py):"
      echo
      sed 's/^onnx_check: /- /' "$TMP/check-$m.txt"
      echo
      echo "### The limit by batch size ($m)"
      echo
      limit_table "$m"
      echo
      echo "### Galley's own metrics over the points ($m; /metrics deltas, all repeats)"
      echo
      batching_table "$m"
      echo
    done
    echo "Raw tool output: $RAW_LOG; every point: $TSV_OUT"
  } >"$1"
}

# ---------------------------------------------------------------------------------------------

main() {
  setup_tools
  COMMAND_LINE="DURATION=$DURATION WARMUP=$WARMUP REPEATS=$REPEATS KSERVE_REPEATS=$KSERVE_REPEATS"
  COMMAND_LINE+=" CONCURRENCIES=\"$CONCURRENCIES\" LIMIT_SECONDS=$LIMIT_SECONDS MODELS=\"$MODELS\""
  COMMAND_LINE+=" bench/serve/onnx.sh${ORIG_ARGS:+ $ORIG_ARGS}"
  TMP="$(mktemp -d /tmp/galley-onnx-bench.XXXXXX)"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  mkdir -p bench/out "$TMP/data"
  local stamp m
  stamp="$(date -u +%Y%m%dT%H%M%SZ)"
  REPORT="bench/out/onnx-$stamp.md"
  RAW_LOG="bench/out/onnx-$stamp.log"
  TSV_OUT="bench/out/onnx-$stamp.tsv"
  RESULTS="$TMP/results.tsv"
  : >"$RESULTS"
  : >"$RAW_LOG"
  local model_args=()
  for m in $MODELS; do model_args+=(--model "$m"); done
  python3 bench/serve/onnx_texts.py "$TMP/data" "${model_args[@]}"
  log "pinning: servers and the limit tool on core $SERVER_CPU, load generators on core $CLIENT_CPU"
  local first=1
  for m in $MODELS; do
    bench_model "$m" "$first"
    first=0
  done
  { printf 'model\tsystem\tprotocol\tc\trepeat\trps\tp50_us\tp99_us\terrors\trequests\thwm_kb\texecutions\tinferences\tqueue_sum_s\tqueue_count\tcompute_sum_s\tcompute_count\tduration_s\tserver_cpu_s\tclient_cpu_s\n'
    cat "$RESULTS"; } >"$TSV_OUT"
  write_report "$TMP/report.md"
  cp "$TMP/report.md" "$REPORT"
  cat "$REPORT"
  log "report: $REPORT"
}

main "$@"
