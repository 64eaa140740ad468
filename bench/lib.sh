# Shell functions shared by the HTTP benchmarks (bench/serve/run.sh, bench/gateway/run.sh).
# Source it; it defines functions and a few state variables and runs nothing.
#
# The sourcing script sets, before calling these:
#   BENCH_NAME    prefix of log lines ("bench/serve")
#   TMP           scratch folder; RESULTS (TSV of measured runs) and RAW_LOG (every wrk output)
#   WRK_BIN, WRK_THREADS, LUA_SCRIPT, TEXTS, DURATION, WARMUP, REPEATS, CONCURRENCIES,
#   STEADY_DURATION (may be unset while checking), FLAT_PCT (steady RSS growth counted as flat)
# and defines two hooks:
#   check_alive   called after every wrk run; dies if a server under test has exited
#   stop_servers  called by cleanup to stop what the script started
#
# RESULTS columns (tab-separated, 1-based):
#   1 server  2 c  3 repeat  4 rps  5 p50_us  6 p99_us  7 errors  8 connect  9 read  10 write
#   11 status  12 timeout  13 requests

WRK_PID=""
SAMPLER_PID=""
RESULT_LINE=""

log() { echo "[$BENCH_NAME] $*" >&2; }
die() { log "error: $*"; exit 1; }

# Seconds in a wrk duration: N, Ns or Nm.
to_seconds() {
  case "$1" in
    *m) echo $(( ${1%m} * 60 )) ;;
    *s) echo "${1%s}" ;;
    *) echo "$1" ;;
  esac
}

# The checks every benchmark makes on its numeric settings.
check_numbers() {
  local d c
  for d in "$DURATION" "$WARMUP" "${STEADY_DURATION:-1s}"; do
    [[ "$d" =~ ^[1-9][0-9]*[sm]?$ ]] || die "durations must look like 10, 10s or 1m, got '$d'"
  done
  [[ "$REPEATS" =~ ^[1-9][0-9]*$ ]] || die "REPEATS must be a positive integer, got '$REPEATS'"
  [[ "$WRK_THREADS" =~ ^[1-9][0-9]*$ ]] || die "WRK_THREADS must be a positive integer"
  [[ -n "${CONCURRENCIES// /}" ]] || die "CONCURRENCIES is empty"
  for c in $CONCURRENCIES; do
    [[ "$c" =~ ^[1-9][0-9]*$ ]] || die "CONCURRENCIES must be positive integers, got '$c'"
  done
}

# ---------------------------------------------------------------------------------------------
# Processes

# A port that is free on 127.0.0.1 now (the kernel picks it; the caller binds it right after).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Stops one process we started: TERM, up to 10 s, then KILL.
stop_pid() {
  local pid="$1" i
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# The EXIT trap: stops wrk, the RSS sampler and (through stop_servers) the servers; keeps $TMP
# when the run failed.
cleanup() {
  local rc=$?
  set +e
  [[ -n "$WRK_PID" ]] && kill -TERM "$WRK_PID" 2>/dev/null && wait "$WRK_PID" 2>/dev/null
  [[ -n "$SAMPLER_PID" ]] && kill "$SAMPLER_PID" 2>/dev/null && wait "$SAMPLER_PID" 2>/dev/null
  stop_servers
  if [[ -n "$TMP" ]]; then
    if [[ $rc -ne 0 ]]; then log "logs kept in $TMP"; else rm -rf "$TMP"; fi
  fi
  exit "$rc"
}

# Polls `url` with curl until it answers 200 or `timeout_s` passes; fails early if `pid` exits.
wait_ready() {
  local url="$1" pid="$2" timeout_s="$3" what="$4"
  local deadline=$((SECONDS + timeout_s))
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || return 1
    if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  log "$what not ready after ${timeout_s}s"
  return 1
}

# Writes $TMP/request.json: {"text": <first sentence of $TEXTS>}.
write_first_request() {
  python3 -c 'import json,sys
for line in open(sys.argv[1], encoding="utf-8"):
    if line.strip() and not line.lstrip().startswith("#"):
        print(json.dumps({"text": line.rstrip("\n")}, ensure_ascii=False), end=""); break' \
    "$TEXTS" >"$TMP/request.json"
}

# kB from a /proc status field (VmRSS, VmHWM) of one process; empty if it is gone.
proc_kb() { awk -v f="$2:" '$1 == f { print $2 }' /proc/"$1"/status 2>/dev/null || true; }

kb_mib() { awk -v k="$1" 'BEGIN { if (k == "") print "–"; else printf "%.1f MiB", k / 1024 }'; }

# ---------------------------------------------------------------------------------------------
# Measuring

# Runs wrk once and sets RESULT_LINE to its RESULT line (fields: see post.lua); the full output
# goes to $RAW_LOG. wrk runs in the background and we `wait` for it, so that a signal to this
# script runs the cleanup at once instead of after wrk's run.
run_wrk() {
  local server="$1" port="$2" c="$3" d="$4" label="$5"
  local t=$((c < WRK_THREADS ? c : WRK_THREADS))
  local secs out line rc=0
  secs="$(to_seconds "$d")"
  # WRK_CPUS (optional): the CPU list wrk is pinned to with taskset.
  local cmd=(${WRK_CPUS:+taskset -c "$WRK_CPUS"} "$WRK_BIN" "-t$t" "-c$c" "-d$d" --latency -s "$LUA_SCRIPT"
             "${BENCH_SCHEME:-http}://127.0.0.1:$port" -- "$TEXTS")
  {
    echo "=== $label: $server c=$c d=$d"
    echo "\$ ${cmd[*]}"
  } >>"$RAW_LOG"
  timeout $((secs + 30)) "${cmd[@]}" >"$TMP/wrk.out" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || rc=$?
  WRK_PID=""
  out="$(cat "$TMP/wrk.out")"
  echo "$out" >>"$RAW_LOG"
  [[ $rc -eq 0 ]] || die "wrk failed (exit $rc) against $server (c=$c): $(tail -n 3 <<<"$out")"
  line="$(grep '^RESULT ' <<<"$out" || true)"
  [[ -n "$line" ]] || die "no RESULT line from wrk against $server (c=$c); see $RAW_LOG"
  check_alive
  RESULT_LINE="$line"
}

# Value of `key` in a RESULT line.
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

# Appends one run to $RESULTS: server c repeat rps p50_us p99_us errors connect read write status timeout requests
record() {
  local server="$1" c="$2" rep="$3" line="$4" k
  local row="$server	$c	$rep"
  for k in rps p50_us p99_us errors connect read write status timeout requests; do
    row+="	$(field "$k" "$line")"
  done
  echo "$row" >>"$RESULTS"
  log "$(printf '%-6s c=%-4s rep=%s rps=%s p50_us=%s p99_us=%s errors=%s' \
    "$server" "$c" "$rep" "$(field rps "$line")" "$(field p50_us "$line")" \
    "$(field p99_us "$line")" "$(field errors "$line")")"
}

max_concurrency() { tr ' ' '\n' <<<"$CONCURRENCIES" | sort -n | tail -n 1; }

# One server alone at the last concurrency for STEADY_DURATION, sampling the VmRSS of `pid` every
# second into $TMP/rss.txt ("second kB" lines). Sets STEADY_C, STEADY_LINE and RSS_IDLE_KB.
STEADY_C=""
STEADY_LINE=""
RSS_IDLE_KB=""
steady_phase() {
  local server="$1" port="$2" pid="$3" secs i
  STEADY_C="$(awk '{print $NF}' <<<"$CONCURRENCIES")"
  secs="$(to_seconds "$STEADY_DURATION")"
  RSS_IDLE_KB="$(proc_kb "$pid" VmRSS)"
  log "steady phase: $server c=$STEADY_C $STEADY_DURATION, RSS sampled each second"
  (
    for ((i = 1; i < secs; i++)); do
      sleep 1
      echo "$i $(proc_kb "$pid" VmRSS)"
    done
  ) >"$TMP/rss.txt" &
  SAMPLER_PID=$!
  run_wrk "$server" "$port" "$STEADY_C" "$STEADY_DURATION" steady
  STEADY_LINE="$RESULT_LINE"
  wait "$SAMPLER_PID" 2>/dev/null || true
  SAMPLER_PID=""
}

# ---------------------------------------------------------------------------------------------
# Report

median() {
  sort -g | awk '{ a[NR] = $1 } END {
    if (NR == 0) { print "nan"; exit }
    if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# Median of column `col` (1-based) for server `s` at concurrency `c`.
med() { awk -F'\t' -v s="$1" -v c="$2" -v k="$3" '$1 == s && $2 == c { print $k }' "$RESULTS" | median; }
# Sum of errors for server `s` at concurrency `c`.
errsum() { awk -F'\t' -v s="$1" -v c="$2" '$1 == s && $2 == c { n += $7 } END { print n + 0 }' "$RESULTS"; }

ms() { awk -v us="$1" 'BEGIN { if (us == "nan" || us == "") print "–"; else printf "%.2f ms", us / 1000 }'; }
num() { awk -v x="$1" 'BEGIN { if (x == "nan" || x == "") print "–"; else printf "%.0f", x }'; }

# "12345" or "12345 (ERRORS: 7)"
rps_cell() {
  local s="$1" c="$2" e
  e="$(errsum "$s" "$c")"
  if [[ "$e" -gt 0 ]]; then echo "$(num "$(med "$s" "$c" 4)") (ERRORS: $e)"; else num "$(med "$s" "$c" 4)"; fi
}

# The steady phase's lines of the memory section, for the server `server` that steady_phase ran.
steady_rss_lines() {
  local server="$1" first last max growth pct flat
  first="$(awk 'NR == 1 { print $2 }' "$TMP/rss.txt")"
  last="$(awk 'END { print $2 }' "$TMP/rss.txt")"
  max="$(awk '$2 > m { m = $2 } END { print m + 0 }' "$TMP/rss.txt")"
  echo "- $server steady phase: c=$STEADY_C for $STEADY_DURATION ($(field rps "$STEADY_LINE") rps," \
       "p99 $(ms "$(field p99_us "$STEADY_LINE")"), errors $(field errors "$STEADY_LINE"))"
  echo "  - RSS idle before it: $(kb_mib "$RSS_IDLE_KB")"
  if [[ -z "$first" || -z "$last" ]]; then
    echo "  - RSS under load: no samples (steady phase shorter than 2 s)"
    return
  fi
  growth=$((last - first))
  pct="$(awk -v g="$growth" -v f="$first" 'BEGIN { printf "%.1f", 100 * g / f }')"
  flat="$(awk -v p="$pct" -v t="$FLAT_PCT" 'BEGIN { print (p < t) ? "flat" : "GROWING" }')"
  echo "  - RSS at start (1 s in): $(kb_mib "$first"); at end ($(awk 'END { print $1 }' "$TMP/rss.txt") s in):" \
       "$(kb_mib "$last"); max $(kb_mib "$max"); growth ${growth} KiB (${pct}%): $flat (< ${FLAT_PCT}%)"
}

# The "Every run" table: one row per measured run in $RESULTS.
every_run_table() {
  echo "| server | c | repeat | rps | p50 | p99 | errors (connect/read/write/status>=400/timeout) | requests |"
  echo "|---|---:|---:|---:|---:|---:|---|---:|"
  awk -F'\t' '{ printf "| %s | %s | %s | %.0f | %.2f ms | %.2f ms | %s (%s/%s/%s/%s/%s) | %s |\n",
                $1, $2, $3, $4, $5 / 1000, $6 / 1000, $7, $8, $9, $10, $11, $12, $13 }' "$RESULTS"
}

# "- none: ..." or one line per measured run with errors, from $RESULTS.
run_error_lines() {
  awk -F'\t' '$7 > 0 { printf "- %s c=%s repeat %s: %s errors (connect %s, read %s, write %s, status>=400 %s, timeout %s)\n",
               $1, $2, $3, $7, $8, $9, $10, $11, $12 }' "$RESULTS"
}
