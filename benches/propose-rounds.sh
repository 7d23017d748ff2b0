#!/usr/bin/env bash
# Propose cost of raft-core against raft-rs, one process per measurement,
# as ranges over rounds: allocator state moves the ratio more than noise
# does, so each measurement runs in a fresh process, with a cold heap (the
# timed run is the process's first) and with a warm one (the same workload
# run once, untimed, before it).
#
#   bash benches/propose-rounds.sh [ROUNDS] [NODES] [BATCH] [PROPOSALS]
#
# Defaults: 5 rounds, 1 node, 1 proposal per round, 100000 proposals. Per
# round and heap state, it runs raft-core, raft-rs with batch_append = true
# (`rs`) and raft-rs as configured by default (`rs-default`, batch_append
# false), in an order that rotates per round, and takes raft-core's
# on-CPU time (from /proc/self/schedstat: time preempted by other
# processes does not count) over each baseline's within the round. It
# prints every round, then per heap state and baseline the median ratio
# and its range.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5} nodes=${2:-1} batch=${3:-1} n=${4:-100000}
cargo build --release --locked -q -p benches --example propose_count
bin="${CARGO_TARGET_DIR:-target}/release/examples/propose_count"
libs=(core rs rs-default)

# on-CPU microseconds of one run of $1 with heap state $2.
cpu_us() {
  "$bin" "$1" "$nodes" "$batch" "$n" "$2" 2>&1 >/dev/null |
    sed -n 's/.*on CPU: \([0-9]*\) us.*/\1/p'
}

echo "propose_count: $nodes node(s), B=$batch, $n proposals, $rounds rounds, one process per run"
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for heap in cold warm; do
  for ((round = 0; round < rounds; round++)); do
    declare -A us=()
    for ((k = 0; k < 3; k++)); do
      lib=${libs[(round + k) % 3]}
      us[$lib]=$(cpu_us "$lib" "$heap")
    done
    for base in rs rs-default; do
      ratio=$(awk -v a="${us[core]}" -v b="${us[$base]}" 'BEGIN { printf "%.3f", b / a }')
      echo "$heap $base $ratio" >>"$results"
    done
    echo "  $heap round $((round + 1)): core ${us[core]} us, rs ${us[rs]} us, rs-default ${us[rs-default]} us"
    unset us
  done
done
echo "raft-core speed-up (baseline on-CPU time / raft-core's), median [min-max] over rounds:"
for heap in cold warm; do
  for base in rs rs-default; do
    awk -v h="$heap" -v b="$base" '$1 == h && $2 == b { print $3 }' "$results" | sort -g |
      awk -v h="$heap" -v b="$base" '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "  %-4s heap, vs %-10s %.2fx [%.2f-%.2fx]\n", h, b, m, v[1], v[NR] }'
  done
done
