#!/usr/bin/env bash
# Autoscaling benchmark: `galley sim autoscale` with every policy (hpa-cpu, hpa-queue, kpa, keda,
# galley-concurrency, galley) beside the baselines (oracle, cheapest static fleet, static fleet of the peak's need) on
# the Azure LLM inference trace (../shared/data/azure-llm-2023, scaled so its peak needs about 10
# replicas), a step from idle to that peak, and the synthetic patterns (diurnal, bursts, climb,
# flash, quiet), each over several seeds; medians over seeds per scenario. With PARETO=1 also each
# policy's main knob swept (seed 1, no baselines) for the Pareto fronts.
# Builds nothing: uses build/release/galley or $GALLEY. Writes bench/out/autoscale-<time>/ (one
# JSON document and one /usr/bin/time -v log per run) and bench/out/autoscale-<time>.md, the
# Markdown to paste into bench/RESULTS.md ("Autoscaling"). Every run reports its peak RSS and wall
# time (/usr/bin/time -v).
# Usage: bench/autoscale/run.sh   (SEEDS="1 2 3", SCENARIOS, SLO_MS=25, SLO_TARGET=0.995,
#        PEAK_REPLICAS=10, DURATION=1800, JOBS=2, PARETO=0 override the defaults)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${GALLEY:-build/release/galley}
TRACE=../shared/data/azure-llm-2023/AzureLLMInferenceTrace_code.csv
SEEDS=${SEEDS:-1 2 3}
SCENARIOS=${SCENARIOS:-trace step diurnal bursts climb flash quiet}
SLO_MS=${SLO_MS:-25}
SLO_TARGET=${SLO_TARGET:-0.995}
PEAK_REPLICAS=${PEAK_REPLICAS:-10}
DURATION=${DURATION:-1800}
JOBS=${JOBS:-2}
PARETO=${PARETO:-0}
[[ -x "$BIN" ]] || { echo "bench/autoscale: no galley binary at $BIN (build it, or set GALLEY)" >&2; exit 1; }
[[ -r "$TRACE" ]] || { echo "bench/autoscale: cannot read $TRACE" >&2; exit 1; }
"$BIN" sim autoscale --help 2>/dev/null | grep -- --no-baselines >/dev/null ||
  { echo "bench/autoscale: $BIN has no 'sim autoscale' with baselines" >&2; exit 1; }
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || { echo "bench/autoscale: JOBS must be a positive integer" >&2; exit 1; }
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=bench/out/autoscale-$STAMP
REPORT=$OUT.md
mkdir -p "$OUT"
COMMON=(--trace "$TRACE" --slo-ms "$SLO_MS" --slo-target "$SLO_TARGET" --peak-replicas "$PEAK_REPLICAS"
        --duration-seconds "$DURATION" --json)

# One line per run: NAME<TAB>ARGS...; NAME names the files in $OUT.
jobs_list() {
  local sc seed
  for sc in $SCENARIOS; do
    for seed in $SEEDS; do printf '%s\t%s\n' "main-$sc-$seed" "--scenario $sc --seed $seed"; done
  done
  [[ "$PARETO" == 1 ]] || return 0
  local knobs=("hpa-cpu:40 60 80 95" "hpa-queue:2 10 50" "kpa:10 35 70" "keda:1 2 8 32"
               "galley-concurrency:1 2 4 8" "galley:0.6 0.7 0.8 0.9")
  local k policy x
  for sc in $SCENARIOS; do
    for k in "${knobs[@]}"; do
      policy=${k%%:*}
      for x in ${k#*:}; do
        printf '%s\t%s\n' "pareto-$sc-$policy-$x" \
          "--scenario $sc --seed 1 --policy $policy --no-baselines --policy-target $x"
      done
    done
  done
}

# run NAME ARGS...: the JSON document in $OUT/NAME.json, /usr/bin/time -v in $OUT/NAME.time.
run_one() {
  local name=$1; shift
  # shellcheck disable=SC2068
  /usr/bin/time -v "$BIN" sim autoscale "${COMMON[@]}" $@ >"$OUT/$name.json" 2>"$OUT/$name.time"
}
export -f run_one
export BIN OUT
export COMMON_STR="${COMMON[*]}"

echo "bench/autoscale: $(jobs_list | wc -l) runs, $JOBS at a time, into $OUT" >&2
jobs_list | while IFS=$'\t' read -r name args; do printf '%s\0%s\0' "$name" "$args"; done |
  xargs -0 -n 2 -P "$JOBS" bash -c 'COMMON=($COMMON_STR); run_one "$0" $1'

{
  echo "# Autoscaling simulation, $STAMP"
  echo
  echo "- binary: \`$BIN\` ($("$BIN" --version 2>/dev/null || echo unknown)); machine: $(nproc) CPUs, $(uname -sr); $JOBS runs at a time; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- each run: \`$BIN sim autoscale ${COMMON[*]} --scenario S --seed N\` (PARETO: \`--seed 1 --policy P --no-baselines --policy-target X\`)"
  echo
  python3 bench/autoscale/summarize.py "$OUT" "$SLO_TARGET"
} | tee "$REPORT"
echo >&2
echo "bench/autoscale: report in $REPORT; paste its tables into bench/RESULTS.md (\"Autoscaling\")." >&2
