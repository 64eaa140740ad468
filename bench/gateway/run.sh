#!/usr/bin/env bash
# The gateway overhead benchmark: `POST /inference/analyze` sent to one `galley serve` replica
# directly, and the same through `galley gateway` in front of that replica.
#
# Starts the replica and the gateway (--replicas <the replica>) on free 127.0.0.1 ports, waits for
# both to be ready and for the gateway to see the replica ready, checks one answer through each,
# then drives both with wrk at each concurrency, alternating direct and gateway per repeat, and
# reports medians of requests/s, p50 and p99, the throughput ratio gateway/direct, the p50 latency
# the hop adds, both processes' peak RSS and the gateway's RSS across a steady phase. It also
# checks that no request was answered by the gateway's fallback model. Everything started here is
# stopped on exit.
#
# Usage: bench/gateway/run.sh [-h|--help]
# Environment (defaults in brackets):
#   DURATION [10s]          wrk duration of one measured point (N, Ns or Nm)
#   CONCURRENCIES ["1 16 64"]  open connections, one point each
#   REPEATS [3]             runs per path (direct, gateway) and point; the report gives the median
#   GALLEY_BIN [build/release/galley]
#   WARMUP [2s]             unrecorded run per path at the highest concurrency before measuring
#   STEADY_DURATION [3 x DURATION]  gateway-only run at the last concurrency, RSS sampled each second
#   WRK_THREADS [2]         wrk -t (capped at the concurrency: wrk needs connections >= threads)
#   TEXTS [bench/serve/texts.txt]   request sentences, one a line
#   TARGET_LATENCY_C [lowest of CONCURRENCIES]     where the p50 overhead target is judged
#   TARGET_THROUGHPUT_C [highest of CONCURRENCIES] where the throughput target is judged
#   WRK_BIN [wrk], READY_TIMEOUT_S [60]
#   MODEL [vader]           the replica's model behind /inference/analyze: vader (the CPU model,
#                           --model-repository '') or default (the model repository as shipped,
#                           i.e. the ONNX `sentiment` model that `galley up` serves)
#   TLS [0]                 1: HTTPS everywhere: the replica and the gateway serve TLS 1.3 with a
#                           throwaway CA's certificate (made here with openssl), and the gateway
#                           reaches the replica over TLS, verifying its certificate
#   PIN [none]              none: every process floats over all cores; split: the replica on core
#                           0, the gateway and wrk on core 1 (two machines' roles on one: the
#                           replica's core is the same in both paths, and the ratio says whether
#                           the gateway, sharing wrk's core, keeps up with it)
#
# The report goes to stdout and to bench/out/gateway-<UTC timestamp>.md; every wrk output goes to
# bench/out/gateway-<UTC timestamp>.log.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source bench/lib.sh
BENCH_NAME="bench/gateway"

ORIG_ARGS="$*"
DURATION="${DURATION:-10s}"
CONCURRENCIES="${CONCURRENCIES:-1 16 64}"
REPEATS="${REPEATS:-3}"
GALLEY_BIN="${GALLEY_BIN:-build/release/galley}"
WARMUP="${WARMUP:-2s}"
WRK_THREADS="${WRK_THREADS:-2}"
TEXTS="${TEXTS:-bench/serve/texts.txt}"
WRK_BIN="${WRK_BIN:-wrk}"
READY_TIMEOUT_S="${READY_TIMEOUT_S:-60}"
MODEL="${MODEL:-vader}"
PIN="${PIN:-none}"
TLS="${TLS:-0}"
BENCH_SCHEME=http
REPLICA_CPUS=""
GATEWAY_CPUS=""
LUA_SCRIPT="bench/serve/post.lua"
# Targets from the issue: the hop adds under 200 µs at p50 and keeps >= 80% of direct throughput.
TARGET_ADDED_P50_US=200
TARGET_RATIO=0.8
# The steady phase counts as flat when RSS grows by less than this (percent, end vs start).
FLAT_PCT=5

REPLICA_PID=""
GATEWAY_PID=""
TMP=""

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

# ---------------------------------------------------------------------------------------------
# Arguments and checks

parse_args() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -h|--help) usage; exit 0 ;;
      *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
  done
}

check_inputs() {
  check_numbers
  local c
  for c in "$TARGET_LATENCY_C" "$TARGET_THROUGHPUT_C"; do
    grep -qw -- "$c" <<<"$CONCURRENCIES" || die "target concurrency $c is not in CONCURRENCIES"
  done
  command -v "$WRK_BIN" >/dev/null || die "wrk not found (Debian package wrk)"
  command -v curl >/dev/null || die "curl not found"
  command -v python3 >/dev/null || die "python3 not found"
  [[ -r "$TEXTS" ]] || die "no texts file at $TEXTS"
  [[ -x "$GALLEY_BIN" ]] || die "no Galley binary at $GALLEY_BIN (build it with 'make build')"
  case "$MODEL" in vader|default) ;; *) die "MODEL must be vader or default, not '$MODEL'" ;; esac
  case "$PIN" in
    none) ;;
    split)
      [[ "$(nproc)" -ge 2 ]] || die "PIN=split needs 2 cores"
      command -v taskset >/dev/null || die "taskset not found (Debian package util-linux)"
      REPLICA_CPUS=0 GATEWAY_CPUS=1 WRK_CPUS=1 ;;
    *) die "PIN must be none or split, not '$PIN'" ;;
  esac
}

min_concurrency() { tr ' ' '\n' <<<"$CONCURRENCIES" | sed '/^$/d' | sort -n | head -n 1; }

# ---------------------------------------------------------------------------------------------
# Processes

# cleanup's hook (bench/lib.sh): the gateway first, so that it does not see its replica vanish.
stop_servers() {
  stop_pid "$GATEWAY_PID"
  stop_pid "$REPLICA_PID"
}

# run_wrk's hook (bench/lib.sh).
check_alive() {
  if ! kill -0 "$REPLICA_PID" 2>/dev/null; then
    tail -n 20 "$TMP/replica.log" >&2 || true
    die "the replica exited during the benchmark"
  fi
  if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
    tail -n 20 "$TMP/gateway.log" >&2 || true
    die "the gateway exited during the benchmark"
  fi
}

# --drain-delay-ms 0 only shortens shutdown at the end of the run; it changes nothing while
# serving. Threads are Galley's defaults in both processes.
# TLS=1: a throwaway CA and a certificate for 127.0.0.1; curl trusts the CA (CURL_CA_BUNDLE).
TLS_SERVE_FLAGS=""
TLS_UPSTREAM_FLAGS=""
make_pki() {
  local d="$TMP/pki"
  mkdir -p "$d"
  (cd "$d" &&
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
      -out ca.pem -days 2 -subj "/CN=bench CA" &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key \
      -out server.csr -subj "/CN=127.0.0.1" &&
    printf 'subjectAltName=IP:127.0.0.1\n' > server.ext &&
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
      -days 2 -extfile server.ext) >/dev/null 2>&1 || die "openssl could not make the test CA"
  export CURL_CA_BUNDLE="$d/ca.pem"
  BENCH_SCHEME=https
  TLS_SERVE_FLAGS=" --tls-cert $d/server.pem --tls-key $d/server.key"
  TLS_UPSTREAM_FLAGS=" --upstream-tls-ca $d/ca.pem"
}

REPLICA_PORT=""
REPLICA_CMD=""
start_replica() {
  REPLICA_PORT="$(free_port)"
  REPLICA_CMD="${REPLICA_CPUS:+taskset -c $REPLICA_CPUS }$GALLEY_BIN serve --listen 127.0.0.1:$REPLICA_PORT --log-level warn --drain-delay-ms 0 --grpc-port -1$TLS_SERVE_FLAGS"
  if [[ "$MODEL" == vader ]]; then REPLICA_CMD+=" --model-repository ''"; fi
  log "starting: $REPLICA_CMD"
  eval "exec $REPLICA_CMD" >"$TMP/replica.log" 2>&1 &
  REPLICA_PID=$!
  if ! wait_ready "$BENCH_SCHEME://127.0.0.1:$REPLICA_PORT/v2/health/ready" "$REPLICA_PID" \
      "$READY_TIMEOUT_S" replica; then
    tail -n 20 "$TMP/replica.log" >&2 || true
    die "the replica did not become ready"
  fi
}

GATEWAY_PORT=""
GATEWAY_CMD=""
start_gateway() {
  GATEWAY_PORT="$(free_port)"
  while [[ "$GATEWAY_PORT" == "$REPLICA_PORT" ]]; do GATEWAY_PORT="$(free_port)"; done
  GATEWAY_CMD="${GATEWAY_CPUS:+taskset -c $GATEWAY_CPUS }$GALLEY_BIN gateway --listen 127.0.0.1:$GATEWAY_PORT"
  GATEWAY_CMD+=" --replicas 127.0.0.1:$REPLICA_PORT --log-level warn --drain-delay-ms 0$TLS_SERVE_FLAGS$TLS_UPSTREAM_FLAGS"
  log "starting: $GATEWAY_CMD"
  $GATEWAY_CMD >"$TMP/gateway.log" 2>&1 &
  GATEWAY_PID=$!
  if ! wait_ready "$BENCH_SCHEME://127.0.0.1:$GATEWAY_PORT/v2/health/ready" "$GATEWAY_PID" \
      "$READY_TIMEOUT_S" gateway; then
    tail -n 20 "$TMP/gateway.log" >&2 || true
    die "the gateway did not become ready"
  fi
  wait_replica_seen
}

# The gateway turns ready once its fallback model is loaded, whatever its replicas do; wait until
# its ready answer counts the replica ready too ({"ready":true,"replicas_ready":1}), or requests
# could go to the fallback.
wait_replica_seen() {
  local deadline=$((SECONDS + READY_TIMEOUT_S)) body
  while ((SECONDS < deadline)); do
    kill -0 "$GATEWAY_PID" 2>/dev/null || die "the gateway exited while probing its replica"
    body="$(curl -sS --max-time 1 "$BENCH_SCHEME://127.0.0.1:$GATEWAY_PORT/v2/health/ready" 2>/dev/null || true)"
    if [[ "$body" =~ \"replicas_ready\":([0-9]+) ]] && ((BASH_REMATCH[1] >= 1)); then
      GATEWAY_READY_BODY="$body"
      return 0
    fi
    sleep 0.1
  done
  die "the gateway did not see its replica ready within ${READY_TIMEOUT_S}s (last: $body)"
}

# Posts the first sentence of $TEXTS directly and through the gateway; both answers must be
# sentiment JSON, and the gateway's must name the replica and not be a fallback.
capture_answers() {
  write_first_request
  local path port code
  for path in direct gateway; do
    port="$(port_of "$path")"
    code="$(curl -sS -o "$TMP/$path.answer" -D "$TMP/$path.headers" -w '%{http_code}' \
      -H 'Content-Type: application/json' --data-binary @"$TMP/request.json" \
      "$BENCH_SCHEME://127.0.0.1:$port/inference/analyze")"
    [[ "$code" == 200 ]] || die "$path answered $code to $(cat "$TMP/request.json"): $(cat "$TMP/$path.answer")"
    python3 - "$TMP/$path.answer" <<'EOF' || die "$path's answer is not sentiment JSON: $(cat "$TMP/$path.answer")"
import json, sys
a = json.load(open(sys.argv[1], encoding="utf-8"))
assert isinstance(a, dict), "not an object"
assert a.get("sentiment") in ("Positive", "Negative", "Neutral"), "sentiment"
c = a.get("confidence")
assert isinstance(c, (int, float)) and not isinstance(c, bool) and 0.5 <= c <= 1, "confidence"
assert isinstance(a.get("model"), str) and a["model"], "model"
assert a.get("fallback") is not True, "fallback answer"
EOF
  done
  GATEWAY_REPLICA_HEADER="$(header_value "$TMP/gateway.headers" X-Galley-Replica)"
  [[ "$GATEWAY_REPLICA_HEADER" == "127.0.0.1:$REPLICA_PORT" ]] ||
    die "the gateway's answer has X-Galley-Replica '$GATEWAY_REPLICA_HEADER', want 127.0.0.1:$REPLICA_PORT"
  [[ -z "$(header_value "$TMP/gateway.headers" X-Galley-Fallback)" ]] ||
    die "the gateway answered from its fallback model: $(cat "$TMP/gateway.headers")"
  if cmp -s "$TMP/direct.answer" "$TMP/gateway.answer"; then SAME_BODY=1; else SAME_BODY=0; fi
}

# Value of header `name` (case-insensitive) in a curl -D dump; empty if absent.
header_value() {
  awk -v n="$(tr '[:upper:]' '[:lower:]' <<<"$2")" 'BEGIN { FS = ": *" }
    { sub(/\r$/, ""); k = tolower($1) } k == n { sub(/^[^:]*: */, ""); print; exit }' "$1"
}

port_of() { if [[ "$1" == gateway ]]; then echo "$GATEWAY_PORT"; else echo "$REPLICA_PORT"; fi; }

# ---------------------------------------------------------------------------------------------
# Measuring

measure_points() {
  local paths c rep p max_c
  max_c="$(max_concurrency)"
  for p in direct gateway; do
    log "warm-up: $p c=$max_c $WARMUP"
    run_wrk "$p" "$(port_of "$p")" "$max_c" "$WARMUP" warmup
    if [[ "$(field errors "$RESULT_LINE")" != 0 ]]; then
      echo "- $p warm-up (c=$max_c): ${RESULT_LINE#RESULT }" >>"$TMP/warmup_errors.txt"
    fi
  done
  for c in $CONCURRENCIES; do
    for ((rep = 1; rep <= REPEATS; rep++)); do
      # Alternate the order per repeat (ABBA...) so that drifting machine noise hits both.
      if ((rep % 2 == 1)); then paths="direct gateway"; else paths="gateway direct"; fi
      for p in $paths; do
        run_wrk "$p" "$(port_of "$p")" "$c" "$DURATION" point
        record "$p" "$c" "$rep" "$RESULT_LINE"
      done
    done
  done
}

# ---------------------------------------------------------------------------------------------
# Report

# Microseconds as milliseconds with three decimals (p50s differ by tens of µs here).
ms3() { awk -v us="$1" 'BEGIN { if (us == "nan" || us == "") print "–"; else printf "%.3f ms", us / 1000 }'; }

# gateway rps / direct rps at `c`, two decimals.
ratio_at() {
  awk -v g="$(med gateway "$1" 4)" -v d="$(med direct "$1" 4)" \
    'BEGIN { if (d > 0 && g != "nan") printf "%.2f", g / d; else print "nan" }'
}
# gateway p50 - direct p50 at `c`, µs.
added_p50_at() {
  awk -v g="$(med gateway "$1" 5)" -v d="$(med direct "$1" 5)" \
    'BEGIN { if (g == "nan" || d == "nan") print "nan"; else printf "%.0f", g - d }'
}
ratio_ok() { awk -v r="$1" -v t="$TARGET_RATIO" 'BEGIN { print (r != "nan" && r >= t) ? "PASS" : "FAIL" }'; }
added_ok() { awk -v a="$1" -v t="$TARGET_ADDED_P50_US" 'BEGIN { print (a != "nan" && a < t) ? "PASS" : "FAIL" }'; }
signed_us() { awk -v a="$1" 'BEGIN { if (a == "nan") print "–"; else printf "%+d µs", a }'; }

# Sum of the samples of one metric family in a Prometheus text file ("" if none).
metric_sum() {
  awk -v m="$2" '$1 == m || index($1, m "{") == 1 { s += $NF; n++ } END { if (n) printf "%.0f", s }' "$1"
}

write_report() {
  local r="$1" c cpu
  cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  {
    echo "# Galley gateway overhead benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo
    if [[ "$PIN" == split ]]; then
      echo "Pinned (PIN=split): the replica on core 0, the gateway and wrk on core 1 (\`taskset\`), over"
      echo "127.0.0.1. \"direct\" sends wrk's requests to the replica; \"gateway\" sends them to the"
      echo "gateway, which forwards each to the replica over a pooled keep-alive connection and relays"
      echo "the answer. The replica has core 0 to itself in both paths, so the ratio says whether the"
      echo "gateway, on the load generator's core, keeps the replica as busy as wrk alone does (a"
      echo "front door on its own machine is the usual deployment); it is not the CPU the hop costs."
    else
      echo "wrk, \`galley gateway\` and one \`galley serve\` replica all run on this machine's $(nproc)"
      echo "cores over 127.0.0.1; nothing is pinned. \"direct\" sends wrk's requests to the replica;"
      echo "\"gateway\" sends them to the gateway, which forwards each to the replica over a pooled"
      echo "keep-alive connection and relays the answer. Through the gateway every request costs a"
      echo "second HTTP parse and serialisation on each side of the hop, run on the same cores that wrk"
      echo "and the replica need, so the throughput ratio here measures the hop's CPU cost against the"
      echo "replica's own, not the gateway's capacity: with the load generator and the gateway on"
      echo "their own cores it would be higher."
    fi
    echo "The replica's model: $MODEL. The p50 difference at c=$(min_concurrency) (no queueing) is the"
    echo "hop's latency; at higher concurrency it also holds the queueing the extra CPU work causes."
    echo
    echo "- machine: $(nproc) CPUs, $cpu, Linux $(uname -r)$(load_note)"
    echo "- tools: $("$WRK_BIN" -v 2>&1 | head -n 1 | awk '{print $1, $2}')"
    echo "- galley: $("$GALLEY_BIN" --version 2>&1 | head -n 1) ($GALLEY_BIN)"
    echo "- command: \`$COMMAND_LINE\`"
    echo "- replica: \`$REPLICA_CMD\` ($(thread_count "$REPLICA_PID") threads)"
    echo "- gateway: \`$GATEWAY_CMD\` ($(thread_count "$GATEWAY_PID") threads)"
    echo "- wrk: \`$WRK_CMD_SHAPE\` (-t1 at c=1: wrk needs connections >= threads)"
    echo "- $REPEATS repeat(s) of $DURATION per path and concurrency, direct and gateway alternated per"
    echo "  repeat; medians shown. Warm-up: $WARMUP per path at the highest concurrency, not recorded."
    echo "- request: \`POST /inference/analyze\`, Content-Type application/json, bodies cycling through"
    echo "  the $(grep -cv '^[[:space:]]*\(#\|$\)' "$TEXTS") sentences of $TEXTS."
    echo "- answers to the first sentence: direct \`$(cat "$TMP/direct.answer")\`; through the gateway"
    echo "  \`$(cat "$TMP/gateway.answer")\` with \`X-Galley-Replica: $GATEWAY_REPLICA_HEADER\`,"
    echo "  no \`X-Galley-Fallback\`; bodies $(if ((SAME_BODY)); then echo byte-identical; else echo "DIFFER"; fi)."
    echo "  The gateway's ready answer before measuring: \`$GATEWAY_READY_BODY\`."
    echo
    echo "| concurrency | direct rps | direct p50 | direct p99 | gateway rps | gateway p50 | gateway p99 | ratio gateway/direct (≥ $TARGET_RATIO) | p50 added (< $TARGET_ADDED_P50_US µs) |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    local ratio added
    for c in $CONCURRENCIES; do
      ratio="$(ratio_at "$c")"; added="$(added_p50_at "$c")"
      echo "| $c | $(rps_cell direct "$c") | $(ms3 "$(med direct "$c" 5)") | $(ms "$(med direct "$c" 6)")" \
           "| $(rps_cell gateway "$c") | $(ms3 "$(med gateway "$c" 5)") | $(ms "$(med gateway "$c" 6)")" \
           "| $ratio $(ratio_ok "$ratio") | $(signed_us "$added") $(added_ok "$added") |"
    done
    echo
    verdict_lines
    echo
    memory_lines
    echo
    error_lines
    echo
    echo "## Every run"
    echo
    every_run_table
    echo
    echo "wrk's full output: $RAW_LOG"
  } >"$r"
}

load_note() { echo "; load average before the run: $LOAD_BEFORE"; }

thread_count() { awk '$1 == "Threads:" { print $2 }' /proc/"$1"/status 2>/dev/null || echo "?"; }

verdict_lines() {
  local lc="$TARGET_LATENCY_C" tc="$TARGET_THROUGHPUT_C" added ratio a_ok r_ok e g_err f_ok
  added="$(added_p50_at "$lc")"; ratio="$(ratio_at "$tc")"
  a_ok="$(added_ok "$added")"; r_ok="$(ratio_ok "$ratio")"
  e="$(awk -F'\t' '{ n += $7 } END { print n + 0 }' "$RESULTS")"
  g_err=PASS
  if [[ "$e" -gt 0 || "$(field errors "$STEADY_LINE")" != 0 ]]; then g_err=FAIL; fi
  f_ok=PASS
  if [[ "${FALLBACKS:-0}" != 0 ]]; then f_ok=FLAGGED; fi
  echo "## Verdict"
  echo
  echo "- p50 overhead < $TARGET_ADDED_P50_US µs, judged at c=$lc (the hop alone, no queueing):" \
       "$(signed_us "$added"): **$a_ok**"
  echo "- throughput ≥ $TARGET_RATIO × direct, judged at c=$tc (both saturated): $ratio: **$r_ok**"
  if [[ "$PIN" == split ]]; then
    echo "  (replica on core 0; gateway and wrk on core 1; see above)"
  else
    echo "  (on $(nproc) cores shared by wrk, the gateway and the replica; see above)"
  fi
  echo "- every concurrency: p50 overhead $(count_pass added) of $(wc -w <<<"$CONCURRENCIES") PASS," \
       "throughput $(count_pass ratio) of $(wc -w <<<"$CONCURRENCIES") PASS (per-row marks in the table)"
  echo "- no wrk errors or status >= 400 in any measured or steady run: **$g_err**"
  echo "- no fallback answers (galley_gateway_fallbacks_total: ${FALLBACKS:-absent}): **$f_ok**"
}

count_pass() {
  local c n=0 v
  for c in $CONCURRENCIES; do
    if [[ "$1" == added ]]; then v="$(added_ok "$(added_p50_at "$c")")"; else v="$(ratio_ok "$(ratio_at "$c")")"; fi
    if [[ "$v" == PASS ]]; then n=$((n + 1)); fi
  done
  echo "$n"
}

memory_lines() {
  echo "## Memory"
  echo
  echo "- replica peak RSS (VmHWM, after every run): $(kb_mib "$REPLICA_HWM_KB")"
  echo "- gateway peak RSS (VmHWM, after every run incl. the steady phase): $(kb_mib "$GATEWAY_HWM_KB")"
  steady_rss_lines gateway
  echo "  - replica RSS before the steady phase: $(kb_mib "$REPLICA_RSS_BEFORE_KB"); after:" \
       "$(kb_mib "$REPLICA_RSS_AFTER_KB")"
}

error_lines() {
  echo "## Errors, retries and fallbacks"
  echo
  local any
  any="$(awk -F'\t' '$7 > 0' "$RESULTS")"
  if [[ -n "$STEADY_LINE" && "$(field errors "$STEADY_LINE")" != 0 ]]; then
    any+=" steady"
    echo "- gateway steady phase: $(sed 's/^RESULT //' <<<"$STEADY_LINE")"
  fi
  if [[ -s "$TMP/warmup_errors.txt" ]]; then
    cat "$TMP/warmup_errors.txt"
  fi
  if [[ -z "$any" ]]; then
    echo "- none: every response in every measured run was < 400, no socket errors or timeouts."
  else
    run_error_lines
  fi
  echo "- the gateway's /metrics at the end (whole run incl. warm-up and steady phase):"
  if [[ -s "$TMP/gateway.metrics" ]]; then
    local m v
    for m in galley_gateway_fallbacks_total galley_gateway_retries_total \
             galley_gateway_retries_denied_total galley_gateway_ejections_total \
             galley_gateway_breaker_transitions_total; do
      v="$(metric_sum "$TMP/gateway.metrics" "$m")"
      echo "  - \`$m\`: ${v:-absent}"
    done
    grep -E '^galley_gateway_upstream_requests_total\{|^galley_requests_total\{.*endpoint="analyze"' \
      "$TMP/gateway.metrics" | sed 's/^/  - `/; s/$/`/' || true
  else
    echo "  - /metrics could not be read"
  fi
  echo "- the replica's count of analyze answers (direct and forwarded):"
  if [[ -s "$TMP/replica.metrics" ]]; then
    grep '^galley_requests_total{.*endpoint="analyze"' "$TMP/replica.metrics" |
      sed 's/^/  - `/; s/$/`/' || echo "  - none"
  else
    echo "  - /metrics could not be read"
  fi
  local who
  for who in gateway replica; do
    if [[ -s "$TMP/$who.log" ]]; then
      echo "- the $who's log (warn and above), last lines:"
      echo
      echo '```'
      tail -n 10 "$TMP/$who.log"
      echo '```'
    else
      echo "- the $who logged nothing at warn or above."
    fi
  done
}

# ---------------------------------------------------------------------------------------------

main() {
  parse_args "$@"
  TARGET_LATENCY_C="${TARGET_LATENCY_C:-$(min_concurrency)}"
  TARGET_THROUGHPUT_C="${TARGET_THROUGHPUT_C:-$(max_concurrency)}"
  check_inputs
  STEADY_DURATION="${STEADY_DURATION:-$((3 * $(to_seconds "$DURATION")))s}"
  WRK_CMD_SHAPE="${WRK_CPUS:+taskset -c $WRK_CPUS }$WRK_BIN -t$WRK_THREADS -c<C> -d<D> --latency -s $LUA_SCRIPT"
  WRK_CMD_SHAPE+=" $BENCH_SCHEME://127.0.0.1:<port> -- $TEXTS"
  COMMAND_LINE="DURATION=$DURATION CONCURRENCIES=\"$CONCURRENCIES\" REPEATS=$REPEATS"
  COMMAND_LINE+=" WARMUP=$WARMUP STEADY_DURATION=$STEADY_DURATION GALLEY_BIN=$GALLEY_BIN"
  COMMAND_LINE+=" MODEL=$MODEL PIN=$PIN TLS=$TLS"
  COMMAND_LINE+=" bench/gateway/run.sh${ORIG_ARGS:+ $ORIG_ARGS}"
  LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

  TMP="$(mktemp -d /tmp/galley-bench.XXXXXX)"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  mkdir -p bench/out
  local stamp
  stamp="$(date -u +%Y%m%dT%H%M%SZ)"
  REPORT="bench/out/gateway-$stamp.md"
  RAW_LOG="bench/out/gateway-$stamp.log"
  RESULTS="$TMP/results.tsv"
  : >"$RESULTS"
  : >"$RAW_LOG"

  case "$TLS" in
    0) ;;
    1) make_pki ;;
    *) die "TLS must be 0 or 1, not '$TLS'" ;;
  esac
  start_replica
  start_gateway
  capture_answers
  measure_points
  REPLICA_RSS_BEFORE_KB="$(proc_kb "$REPLICA_PID" VmRSS)"
  steady_phase gateway "$GATEWAY_PORT" "$GATEWAY_PID"
  REPLICA_RSS_AFTER_KB="$(proc_kb "$REPLICA_PID" VmRSS)"
  GATEWAY_HWM_KB="$(proc_kb "$GATEWAY_PID" VmHWM)"
  REPLICA_HWM_KB="$(proc_kb "$REPLICA_PID" VmHWM)"
  curl -sS --max-time 5 -o "$TMP/gateway.metrics" "$BENCH_SCHEME://127.0.0.1:$GATEWAY_PORT/metrics" || true
  curl -sS --max-time 5 -o "$TMP/replica.metrics" "$BENCH_SCHEME://127.0.0.1:$REPLICA_PORT/metrics" || true
  # "" when the family is absent (no fallback yet), "unread" when /metrics did not answer.
  FALLBACKS="unread"
  if [[ -s "$TMP/gateway.metrics" ]]; then
    FALLBACKS="$(metric_sum "$TMP/gateway.metrics" galley_gateway_fallbacks_total)"
  fi
  if [[ -n "$FALLBACKS" && "$FALLBACKS" != 0 ]]; then
    log "WARNING: the gateway answered $FALLBACKS request(s) from its fallback model"
  fi
  write_report "$TMP/report.md"
  cp "$TMP/report.md" "$REPORT"
  cat "$REPORT"
  log "report: $REPORT; wrk output: $RAW_LOG"
}

main "$@"
