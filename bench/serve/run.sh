#!/usr/bin/env bash
# The serving benchmark: Galley's `POST /inference/analyze` against nginx answering the same JSON.
#
# Starts `galley serve` and an nginx (fixed `return 200 '<json>'`, the JSON captured byte for byte
# from Galley) on free 127.0.0.1 ports, drives both with wrk at each concurrency, alternating the
# two servers per repeat, and reports medians of requests/s, p50 and p99, their ratio, the servers'
# peak RSS and Galley's RSS across a steady phase. nginx on the same machine and ports is the HTTP
# limit of this machine, so the ratio is the figure to read. Everything started here is stopped on
# exit.
#
# Usage: bench/serve/run.sh [--nginx-only] [-h|--help]
# Environment (defaults in brackets):
#   DURATION [10s]          wrk duration of one measured point (N, Ns or Nm)
#   CONCURRENCIES ["1 16 64"]  open connections, one point each
#   REPEATS [3]             runs per server and point; the report gives the median
#   GALLEY_BIN [build/release/galley]
#   WARMUP [2s]             unrecorded run per server at the highest concurrency before measuring
#   STEADY_DURATION [3 x DURATION]  Galley-only run at the last concurrency, RSS sampled each second
#   WRK_THREADS [2]         wrk -t (capped at the concurrency: wrk needs connections >= threads)
#   TEXTS [bench/serve/texts.txt]   request sentences, one a line
#   NGINX_BIN [/usr/sbin/nginx], WRK_BIN [wrk], READY_TIMEOUT_S [60]
# --nginx-only: no Galley; nginx answers a canned Galley-shaped JSON (to test this script alone).
#
# The report goes to stdout and to bench/out/serve-<UTC timestamp>.md; every wrk output goes to
# bench/out/serve-<UTC timestamp>.log.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source bench/lib.sh
BENCH_NAME="bench/serve"

ORIG_ARGS="$*"
DURATION="${DURATION:-10s}"
CONCURRENCIES="${CONCURRENCIES:-1 16 64}"
REPEATS="${REPEATS:-3}"
GALLEY_BIN="${GALLEY_BIN:-build/release/galley}"
WARMUP="${WARMUP:-2s}"
WRK_THREADS="${WRK_THREADS:-2}"
TEXTS="${TEXTS:-bench/serve/texts.txt}"
NGINX_BIN="${NGINX_BIN:-/usr/sbin/nginx}"
WRK_BIN="${WRK_BIN:-wrk}"
READY_TIMEOUT_S="${READY_TIMEOUT_S:-60}"
LUA_SCRIPT="bench/serve/post.lua"
# A Galley-shaped answer for --nginx-only (from README.md); a real run captures Galley's own.
CANNED_ANSWER='{"sentiment":"Positive","confidence":0.9614,"model":"vader"}'
# Targets from the issue, checked at this concurrency.
TARGET_C=64
TARGET_RATIO=0.5
TARGET_P99_US=10000
# The steady phase counts as flat when RSS grows by less than this (percent, end vs start).
FLAT_PCT=5

NGINX_ONLY=0
GALLEY_PID=""
NGINX_PID=""
NGINX_WORKERS=""
TMP=""

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

# ---------------------------------------------------------------------------------------------
# Arguments and checks

parse_args() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --nginx-only) NGINX_ONLY=1 ;;
      -h|--help) usage; exit 0 ;;
      *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
  done
}

check_inputs() {
  check_numbers
  command -v "$WRK_BIN" >/dev/null || die "wrk not found (Debian package wrk)"
  [[ -x "$NGINX_BIN" ]] || die "$NGINX_BIN not found (Debian package nginx-light)"
  command -v curl >/dev/null || die "curl not found"
  command -v python3 >/dev/null || die "python3 not found"
  [[ -r "$TEXTS" ]] || die "no texts file at $TEXTS"
  if [[ "$NGINX_ONLY" -eq 0 ]]; then
    [[ -x "$GALLEY_BIN" ]] || die "no Galley binary at $GALLEY_BIN (build it with 'make build')"
  fi
}

# ---------------------------------------------------------------------------------------------
# Processes

# cleanup's hook (bench/lib.sh).
stop_servers() {
  stop_pid "$GALLEY_PID"
  stop_pid "$NGINX_PID"
  local w
  for w in $NGINX_WORKERS; do kill -KILL "$w" 2>/dev/null; done
}

GALLEY_PORT=""
GALLEY_CMD=""
start_galley() {
  GALLEY_PORT="$(free_port)"
  # --drain-delay-ms 0 only shortens shutdown at the end of the run; it changes nothing while
  # serving. Threads are Galley's defaults: 1 HTTP I/O thread + 1 model worker.
  GALLEY_CMD="$GALLEY_BIN serve --listen 127.0.0.1:$GALLEY_PORT --log-level warn --drain-delay-ms 0 --grpc-port -1 --model-repository ''"
  log "starting: $GALLEY_CMD"
  eval "exec $GALLEY_CMD" >"$TMP/galley.log" 2>&1 &
  GALLEY_PID=$!
  if ! wait_ready "http://127.0.0.1:$GALLEY_PORT/v2/health/ready" "$GALLEY_PID" \
      "$READY_TIMEOUT_S" galley; then
    tail -n 20 "$TMP/galley.log" >&2 || true
    die "galley did not become ready"
  fi
}

# Posts the first sentence of $TEXTS to Galley; the answer becomes nginx's fixed body.
capture_answer() {
  write_first_request
  if [[ "$NGINX_ONLY" -eq 1 ]]; then
    printf '%s' "$CANNED_ANSWER" >"$TMP/answer.json"
    return
  fi
  local code
  code="$(curl -sS -o "$TMP/answer.json" -D "$TMP/galley.headers" -w '%{http_code}' \
    -H 'Content-Type: application/json' --data-binary @"$TMP/request.json" \
    "http://127.0.0.1:$GALLEY_PORT/inference/analyze")"
  [[ "$code" == 200 ]] || die "galley answered $code to $(cat "$TMP/request.json"): $(cat "$TMP/answer.json")"
}

NGINX_PORT=""
NGINX_CMD=""
write_nginx_conf() {
  local answer conns max_c
  max_c="$(max_concurrency)"
  answer="$(cat "$TMP/answer.json")"
  [[ "$answer" != *'$'* ]] || die "the answer holds '\$', which nginx's return would expand"
  answer="${answer//\\/\\\\}"
  answer="${answer//\'/\\\'}"
  conns=$((2 * max_c + 64))
  if ((conns < 1024)); then conns=1024; fi
  mkdir -p "$TMP/nginx/tmp"
  cat >"$TMP/nginx/nginx.conf" <<EOF
# Generated by bench/serve/run.sh. 2 workers, one per core (Galley runs 2 HTTP I/O threads + 1 model worker).
daemon off;
master_process on;
worker_processes 2;
worker_rlimit_nofile $((conns + 64));
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections $conns; }
http {
  access_log off;
  keepalive_requests 1000000000;
  keepalive_timeout 60s;          # Galley: --idle-timeout-ms 60000
  client_body_temp_path $TMP/nginx/tmp/body;
  proxy_temp_path $TMP/nginx/tmp/proxy;
  fastcgi_temp_path $TMP/nginx/tmp/fastcgi;
  uwsgi_temp_path $TMP/nginx/tmp/uwsgi;
  scgi_temp_path $TMP/nginx/tmp/scgi;
  tcp_nodelay on;                 # Galley sets TCP_NODELAY on every connection
  server {
    # Galley's listener: SO_REUSEADDR (nginx's default too) and backlog SOMAXCONN (4096).
    listen 127.0.0.1:$NGINX_PORT backlog=4096;
    location / {
      default_type application/json;
      return 200 '$answer';
    }
  }
}
EOF
}

start_nginx() {
  NGINX_PORT="$(free_port)"
  while [[ "$NGINX_PORT" == "$GALLEY_PORT" ]]; do NGINX_PORT="$(free_port)"; done
  write_nginx_conf
  NGINX_CMD="$NGINX_BIN -p $TMP/nginx/ -c $TMP/nginx/nginx.conf -e $TMP/nginx/error.log"
  $NGINX_CMD -t -q 2>"$TMP/nginx/test.log" || { cat "$TMP/nginx/test.log" >&2; die "bad nginx config"; }
  log "starting: $NGINX_CMD"
  $NGINX_CMD 2>>"$TMP/nginx/stderr.log" &
  NGINX_PID=$!
  if ! wait_ready "http://127.0.0.1:$NGINX_PORT/" "$NGINX_PID" 10 nginx; then
    cat "$TMP/nginx/error.log" "$TMP/nginx/stderr.log" >&2 2>/dev/null || true
    die "nginx did not start"
  fi
  NGINX_WORKERS="$(cat /proc/"$NGINX_PID"/task/*/children 2>/dev/null || true)"
  curl -sS -o "$TMP/nginx.answer" -D "$TMP/nginx.headers" -H 'Content-Type: application/json' \
    --data-binary @"$TMP/request.json" "http://127.0.0.1:$NGINX_PORT/inference/analyze"
  cmp -s "$TMP/answer.json" "$TMP/nginx.answer" || die "nginx's answer differs from Galley's"
}

nginx_hwm_kb() {
  local total=0 p kb
  for p in "$NGINX_PID" $NGINX_WORKERS; do
    kb="$(proc_kb "$p" VmHWM)"
    total=$((total + ${kb:-0}))
  done
  echo "$total"
}

# run_wrk's hook (bench/lib.sh).
check_alive() {
  if [[ "$NGINX_ONLY" -eq 0 ]] && ! kill -0 "$GALLEY_PID" 2>/dev/null; then
    tail -n 20 "$TMP/galley.log" >&2 || true
    die "galley exited during the benchmark"
  fi
  kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited during the benchmark"
}

# ---------------------------------------------------------------------------------------------
# Measuring

measure_points() {
  local servers c rep s max_c
  max_c="$(max_concurrency)"
  servers="nginx"
  if [[ "$NGINX_ONLY" -eq 0 ]]; then servers="galley nginx"; fi
  for s in $servers; do
    log "warm-up: $s c=$max_c $WARMUP"
    run_wrk "$s" "$(port_of "$s")" "$max_c" "$WARMUP" warmup
    if [[ "$(field errors "$RESULT_LINE")" != 0 ]]; then
      echo "- $s warm-up (c=$max_c): ${RESULT_LINE#RESULT }" >>"$TMP/warmup_errors.txt"
    fi
  done
  for c in $CONCURRENCIES; do
    for ((rep = 1; rep <= REPEATS; rep++)); do
      # Alternate the order per repeat (ABBA...) so that drifting machine noise hits both.
      if [[ "$NGINX_ONLY" -eq 1 ]]; then
        servers="nginx"
      elif ((rep % 2 == 1)); then
        servers="galley nginx"
      else
        servers="nginx galley"
      fi
      for s in $servers; do
        run_wrk "$s" "$(port_of "$s")" "$c" "$DURATION" point
        record "$s" "$c" "$rep" "$RESULT_LINE"
      done
    done
  done
}

port_of() { if [[ "$1" == galley ]]; then echo "$GALLEY_PORT"; else echo "$NGINX_PORT"; fi; }

# ---------------------------------------------------------------------------------------------
# Report

write_report() {
  local r="$1" c cpu g_rps n_rps ratio
  cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  {
    echo "# Galley serving benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo
    if [[ "$NGINX_ONLY" -eq 1 ]]; then
      echo "**--nginx-only: Galley was not run; nginx answered a canned Galley-shaped JSON.**"
      echo
    fi
    echo "wrk, \`galley serve\` and nginx all run on this machine's $(nproc) cores over 127.0.0.1."
    echo "Nothing is pinned (\`taskset\` is not used): with 2 cores, pinning the client apart from"
    echo "the servers would starve one side. Both servers get the same budget of threads: Galley's"
    echo "defaults are 3 threads (2 HTTP I/O threads + 1 model worker), nginx has worker_processes 2."
    echo "Since the client competes with the server for the same cores, absolute numbers are low and"
    echo "noisy; the ratio galley/nginx is the meaningful figure."
    echo
    echo "- machine: $(nproc) CPUs, $cpu, Linux $(uname -r)"
    echo "- tools: $("$WRK_BIN" -v 2>&1 | head -n 1 | awk '{print $1, $2}'), $("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //')"
    [[ "$NGINX_ONLY" -eq 0 ]] && echo "- galley: $("$GALLEY_BIN" --version 2>&1 | head -n 1) ($GALLEY_BIN)"
    echo "- command: \`$COMMAND_LINE\`"
    [[ "$NGINX_ONLY" -eq 0 ]] && echo "- galley: \`$GALLEY_CMD\`"
    echo "- nginx: \`$NGINX_CMD\` (config below)"
    echo "- wrk: \`$WRK_CMD_SHAPE\` (-t1 at c=1: wrk needs connections >= threads)"
    echo "- $REPEATS repeat(s) of $DURATION per server and concurrency, servers alternated per repeat;"
    echo "  medians shown. Warm-up: $WARMUP per server at the highest concurrency, not recorded."
    echo "- request: \`POST /inference/analyze\`, Content-Type application/json, bodies cycling through"
    echo "  the $(grep -cv '^[[:space:]]*\(#\|$\)' "$TEXTS") sentences of $TEXTS (nginx ignores the body)."
    echo "- answer: nginx returns \`$(cat "$TMP/answer.json")\` ($(wc -c <"$TMP/answer.json") bytes, $(answer_origin));"
    echo "  header block: $(header_sizes)"
    echo
    echo "| concurrency | galley rps | galley p50 | galley p99 | nginx rps | nginx p50 | nginx p99 | ratio galley/nginx |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
    for c in $CONCURRENCIES; do
      if [[ "$NGINX_ONLY" -eq 1 ]]; then
        g_rps="–"; ratio="–"
        echo "| $c | – | – | – | $(rps_cell nginx "$c") | $(ms "$(med nginx "$c" 5)") | $(ms "$(med nginx "$c" 6)") | – |"
      else
        g_rps="$(med galley "$c" 4)"; n_rps="$(med nginx "$c" 4)"
        ratio="$(awk -v g="$g_rps" -v n="$n_rps" 'BEGIN { if (n > 0) printf "%.2f", g / n; else print "–" }')"
        echo "| $c | $(rps_cell galley "$c") | $(ms "$(med galley "$c" 5)") | $(ms "$(med galley "$c" 6)") | $(rps_cell nginx "$c") | $(ms "$(med nginx "$c" 5)") | $(ms "$(med nginx "$c" 6)") | $ratio |"
      fi
    done
    echo
    memory_lines
    echo
    verdict_line
    echo
    error_lines
    echo
    echo "## Every run"
    echo
    every_run_table
    echo
    echo "## nginx config"
    echo
    echo '```nginx'
    cat "$TMP/nginx/nginx.conf"
    echo '```'
    echo
    echo "wrk's full output: $RAW_LOG"
  } >"$r"
}

answer_origin() {
  if [[ "$NGINX_ONLY" -eq 1 ]]; then echo "canned, from README.md"; return; fi
  echo "byte-identical to Galley's answer to the first sentence"
}

header_sizes() {
  local n g
  n="$(wc -c <"$TMP/nginx.headers")"
  if [[ "$NGINX_ONLY" -eq 1 ]]; then echo "nginx $n bytes."; return; fi
  g="$(wc -c <"$TMP/galley.headers")"
  echo "galley $g bytes, nginx $n bytes (status line and headers, as curl saw them)."
}

memory_lines() {
  echo "## Memory"
  echo
  echo "- nginx peak RSS (VmHWM, master + workers): $(kb_mib "$(nginx_hwm_kb)")"
  if [[ "$NGINX_ONLY" -eq 1 ]]; then
    echo "- galley: not run (--nginx-only)"
    return
  fi
  echo "- galley peak RSS (VmHWM, after every run incl. the steady phase): $(kb_mib "$GALLEY_HWM_KB")"
  steady_rss_lines galley
}

verdict_line() {
  if [[ "$NGINX_ONLY" -eq 1 ]]; then echo "**Verdict: n/a (--nginx-only)**"; return; fi
  if ! grep -qw "$TARGET_C" <<<"$CONCURRENCIES"; then
    echo "**Verdict: n/a (c=$TARGET_C was not measured)**"; return
  fi
  local g n p99 e ratio r_ok p_ok e_ok overall
  g="$(med galley "$TARGET_C" 4)"; n="$(med nginx "$TARGET_C" 4)"; p99="$(med galley "$TARGET_C" 6)"
  e="$(errsum galley "$TARGET_C")"
  ratio="$(awk -v g="$g" -v n="$n" 'BEGIN { printf "%.2f", (n > 0) ? g / n : 0 }')"
  r_ok="$(awk -v r="$ratio" -v t="$TARGET_RATIO" 'BEGIN { print (r >= t) ? "PASS" : "FAIL" }')"
  p_ok="$(awk -v p="$p99" -v t="$TARGET_P99_US" 'BEGIN { print (p < t) ? "PASS" : "FAIL" }')"
  e_ok=PASS
  if [[ "$e" -gt 0 ]]; then e_ok=FAIL; fi
  overall=FAIL
  if [[ "$r_ok$p_ok$e_ok" == PASSPASSPASS ]]; then overall=PASS; fi
  echo "**Verdict: $overall** — at c=$TARGET_C: ratio galley/nginx $ratio >= $TARGET_RATIO: $r_ok;" \
       "galley p99 $(ms "$p99") < $((TARGET_P99_US / 1000)) ms: $p_ok; galley errors $e: $e_ok"
}

error_lines() {
  echo "## Errors"
  echo
  local any
  any="$(awk -F'\t' '$7 > 0' "$RESULTS")"
  if [[ -n "$STEADY_LINE" && "$(field errors "$STEADY_LINE")" != 0 ]]; then
    any+=" steady"
    echo "- galley steady phase: $(sed 's/^RESULT //' <<<"$STEADY_LINE")"
  fi
  if [[ -s "$TMP/warmup_errors.txt" ]]; then
    cat "$TMP/warmup_errors.txt"
  fi
  if [[ -z "$any" ]]; then
    echo "- none: every response in every measured run was < 400, no socket errors or timeouts."
  else
    run_error_lines
  fi
  if [[ "$NGINX_ONLY" -eq 0 ]]; then
    echo "- Galley's own count of analyze answers (galley_requests_total, whole run incl. warm-up):"
    if [[ -s "$TMP/metrics.txt" ]]; then
      grep '^galley_requests_total{.*endpoint="analyze"' "$TMP/metrics.txt" | sed 's/^/  - `/; s/$/`/' || echo "  - none"
    else
      echo "  - /metrics could not be read"
    fi
    if [[ -s "$TMP/galley.log" ]]; then
      echo "- Galley's log (warn and above), last lines:"
      echo
      echo '```'
      tail -n 10 "$TMP/galley.log"
      echo '```'
    else
      echo "- Galley logged nothing at warn or above."
    fi
  fi
  if [[ -s "$TMP/nginx/error.log" ]]; then
    echo "- nginx error log, last lines:"
    echo
    echo '```'
    tail -n 10 "$TMP/nginx/error.log"
    echo '```'
  fi
}

# ---------------------------------------------------------------------------------------------

main() {
  parse_args "$@"
  check_inputs
  STEADY_DURATION="${STEADY_DURATION:-$((3 * $(to_seconds "$DURATION")))s}"
  WRK_CMD_SHAPE="$WRK_BIN -t$WRK_THREADS -c<C> -d<D> --latency -s $LUA_SCRIPT"
  WRK_CMD_SHAPE+=" http://127.0.0.1:<port> -- $TEXTS"
  COMMAND_LINE="DURATION=$DURATION CONCURRENCIES=\"$CONCURRENCIES\" REPEATS=$REPEATS"
  COMMAND_LINE+=" WARMUP=$WARMUP STEADY_DURATION=$STEADY_DURATION GALLEY_BIN=$GALLEY_BIN"
  COMMAND_LINE+=" bench/serve/run.sh${ORIG_ARGS:+ $ORIG_ARGS}"

  TMP="$(mktemp -d /tmp/galley-bench.XXXXXX)"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  mkdir -p bench/out
  local stamp
  stamp="$(date -u +%Y%m%dT%H%M%SZ)"
  REPORT="bench/out/serve-$stamp.md"
  RAW_LOG="bench/out/serve-$stamp.log"
  RESULTS="$TMP/results.tsv"
  : >"$RESULTS"
  : >"$RAW_LOG"

  if [[ "$NGINX_ONLY" -eq 0 ]]; then start_galley; fi
  capture_answer
  start_nginx
  measure_points
  GALLEY_HWM_KB=""
  if [[ "$NGINX_ONLY" -eq 0 ]]; then
    steady_phase galley "$GALLEY_PORT" "$GALLEY_PID"
    GALLEY_HWM_KB="$(proc_kb "$GALLEY_PID" VmHWM)"
    curl -sS --max-time 5 -o "$TMP/metrics.txt" "http://127.0.0.1:$GALLEY_PORT/metrics" || true
  fi
  write_report "$TMP/report.md"
  cp "$TMP/report.md" "$REPORT"
  cat "$REPORT"
  log "report: $REPORT; wrk output: $RAW_LOG"
}

main "$@"
