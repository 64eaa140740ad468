#!/usr/bin/env bash
# Autoscaling benchmark: `galley sim autoscale` with every policy (hpa-cpu, hpa-queue, kpa, galley)
# on the Azure LLM inference trace (../shared/data/azure-llm-2023, scaled so its peak needs about
# 10 replicas) and on a step from idle to that peak. Builds nothing: uses build/release/galley or
# $GALLEY. Writes bench/out/autoscale-<time>.md (with the raw output beside it) and prints the
# Markdown to paste into bench/RESULTS.md. Peak RSS and wall time come from /usr/bin/time -v.
# Usage: bench/autoscale/run.sh   (SEED, SLO_MS, PEAK_REPLICAS override the defaults)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${GALLEY:-build/release/galley}
TRACE=../shared/data/azure-llm-2023/AzureLLMInferenceTrace_code.csv
SEED=${SEED:-1}
SLO_MS=${SLO_MS:-25}
PEAK_REPLICAS=${PEAK_REPLICAS:-10}
[[ -x "$BIN" ]] || { echo "bench/autoscale: no galley binary at $BIN (build it, or set GALLEY)" >&2; exit 1; }
[[ -r "$TRACE" ]] || { echo "bench/autoscale: cannot read $TRACE" >&2; exit 1; }
"$BIN" sim autoscale --help >/dev/null 2>&1 || { echo "bench/autoscale: $BIN has no 'sim autoscale'" >&2; exit 1; }
mkdir -p bench/out
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
REPORT=bench/out/autoscale-$STAMP.md

# run SCENARIO -> the table on stdout; raw output and /usr/bin/time in bench/out
run() {
  local scenario=$1 log="bench/out/autoscale-$STAMP-$1.log"
  local cmd=("$BIN" sim autoscale --trace "$TRACE" --scenario "$scenario" --policy all
             --slo-ms "$SLO_MS" --peak-replicas "$PEAK_REPLICAS" --seed "$SEED")
  echo "Command: \`${cmd[*]}\`"
  echo
  /usr/bin/time -v "${cmd[@]}" >"$log" 2>"$log.time"
  cat "$log"
  local rss wall
  rss=$(awk '/Maximum resident set size/{printf "%.1f", $6/1024}' "$log.time")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/{print $2}' "$log.time")
  echo
  echo "Simulator (all four policies, one process): peak RSS $rss MiB, wall time $wall (m:ss)."
  echo
}

{
  echo "# Autoscaling simulation, $STAMP"
  echo
  echo "- binary: \`$BIN\` ($("$BIN" --version 2>/dev/null || echo unknown)); machine: $(nproc) CPUs, $(uname -sr); load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "## Azure LLM inference trace, scaled"
  echo
  run trace
  echo "## Step from idle to the peak"
  echo
  run step
} | tee "$REPORT"
echo >&2
echo "bench/autoscale: report in $REPORT; paste its tables into bench/RESULTS.md (\"Autoscaling\")." >&2
