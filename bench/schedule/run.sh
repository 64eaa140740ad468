#!/usr/bin/env bash
# Scheduler benchmark: replays the Alibaba openb trace (../shared/data/alibaba-gpu-v2023) with every
# policy (FGD paper protocol, median of 10 seeds), the same for seeded synthetic variants (galley
# vs fgd), and single-threaded throughput on the trace's cluster and on a synthetic 5,000-node
# cluster. Prints a Markdown table per part; peak RSS from /usr/bin/time -v.
# Usage: bench/schedule/run.sh [SEEDS]   (GALLEY_BIN overrides build/release/galley)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${GALLEY_BIN:-build/release/galley}
DATA=../shared/data/alibaba-gpu-v2023
NODES=$DATA/openb_node_list_gpu_node.csv
PODS=$DATA/openb_pod_list_default.csv
SEEDS=${1:-10}
OUT=bench/out/schedule
mkdir -p "$OUT"

# replay NAME NODES PODS POLICY SEEDS [PCT [FIRST_SEED]] -> "| name | policy | unallocated | decisions/s | rss |"
# PCT: --percentage-of-nodes-to-score (100 = every node, the default; 0 = kube's adaptive).
replay() {
  local name=$1 nodes=$2 pods=$3 policy=$4 seeds=$5 pct=${6:-100} first=${7:-42}
  local log="$OUT/$1-$4-pct$pct.log" label=$name
  [[ $pct == 100 ]] || label="$name (nodes to score: $pct%)"
  /usr/bin/time -v "$BIN" schedule replay --nodes "$nodes" --pods "$pods" --policy "$policy" \
    --seed "$first" --seeds "$seeds" --percentage-of-nodes-to-score "$pct" >"$log" 2>"$log.time"
  local unalloc rate rss
  unalloc=$(tail -1 "$log" | sed -E 's/.*arrival: ([0-9.]+)%.*/\1/')
  rate=$(awk '/^seed /{print $7}' "$log" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  rss=$(awk '/Maximum resident set size/{printf "%.0f", $6/1024}' "$log.time")
  echo "| $label | $policy | $unalloc | $rate | $rss |"
}

echo "## Trace: $NODES, $PODS ($SEEDS seeds from 42)"
echo "| workload | policy | unallocated GPU % at 100% arrival (median) | decisions/s (median seed) | peak RSS MiB |"
echo "|---|---|---|---|---|"
for policy in random dotprod gpuclustering gpupacking bestfit fgd galley; do
  replay openb "$NODES" "$PODS" "$policy" "$SEEDS"
done

# variants TITLE GENERATOR_SEED FIRST_REPLAY_SEED SUFFIX SPEC...: one table, bestfit/fgd/galley
# on each synthetic variant (SPEC = variant:percent) made by `galley schedule synth`.
variants() {
  local title=$1 gen_seed=$2 first=$3 suffix=$4 spec variant percent file
  shift 4
  echo
  echo "## $title"
  echo "| workload | policy | unallocated GPU % at 100% arrival (median) | decisions/s (median seed) | peak RSS MiB |"
  echo "|---|---|---|---|---|"
  for spec in "$@"; do
    variant=${spec%%:*} percent=${spec##*:}
    file="$OUT/pods-$variant$percent$suffix.csv"
    "$BIN" schedule synth --nodes "$NODES" --pods "$PODS" --variant "$variant" \
      --percent "$percent" --seed "$gen_seed" --out "$file"
    for policy in bestfit fgd galley; do
      replay "$variant$percent$suffix" "$NODES" "$file" "$policy" "$SEEDS" 100 "$first"
    done
  done
}

variants "Synthetic variants (seeded generator: galley schedule synth --seed 7)" 7 42 "" \
  share:80 multigpu:20 gpuspec:33 cpu:40
# Generated only after the galley policy was fixed: another generator seed, other proportions.
variants "Held-out synthetic variants (generator seed 11, other proportions, seeds 142..)" 11 142 -s11 \
  share:60 multigpu:30 gpuspec:50 cpu:25

echo
echo "## Throughput on a synthetic 5,000-node cluster (node types drawn from the trace, seed 7)"
echo "| workload | policy | unallocated GPU % at 100% arrival | decisions/s | peak RSS MiB |"
echo "|---|---|---|---|---|"
"$BIN" schedule synth --nodes "$NODES" --pods "$PODS" --cluster-size 5000 --seed 7 \
  --nodes-out "$OUT/nodes-5000.csv"
for policy in galley fgd bestfit; do
  replay nodes5000 "$OUT/nodes-5000.csv" "$PODS" "$policy" 1
done
# kube-scheduler's adaptive percentageOfNodesToScore (0: 50 - 5000/125 = 10% of the nodes).
for policy in galley fgd; do
  replay nodes5000 "$OUT/nodes-5000.csv" "$PODS" "$policy" 1 0
done
