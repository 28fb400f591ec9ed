#!/usr/bin/env bash
# The table in benchmarks/CLUSTER.md: collectives-bench at 4 Mi floats per rank on emulated
# clusters (2×1 and 4×1 hosts×ranks at 1 Gbit/s, 4×4 at 1 Gbit/s, 4×1 and 4×4 at 10 Gbit/s),
# with the default and 512 Ki segments, all interleaved, ROUNDS times over (default 3).
# `collectives-matrix.sh ROUNDS node-aware` runs instead the flat and the node-aware sign
# allreduce at 4×4 and 2×8, 1 and 10 Gbit/s, interleaved.
# Prints one prefixed collectives-bench row per operation and run. Needs root; ~10 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
ops=(sign-majority sign-average)
run() {
    local hosts=$1 slots=$2 rate=$3 gbits=$4 segment=$5
    benchmarks/cluster/cluster.sh --hosts "$hosts" --slots "$slots" --rate "$rate" -- -np $((hosts * slots)) \
        .build/release/collectives-bench --min-count 4194304 --max-count 4194304 --ops "${ops[@]}" \
        --link-rate "$gbits" --iterations 10 --segment-length "$segment" 2>&1 |
        grep -E '^(fp32|sign)' | sed "s/^/${hosts}x$slots $rate segment $segment  /"
}
if [[ ${2:-} == node-aware ]]; then
    ops=(sign-majority sign-majority-node-aware)
    for ((round = 1; round <= rounds; round++)); do
        run 4 4 1gbit 1 4194304
        run 2 8 1gbit 1 4194304
        run 4 4 10gbit 10 4194304
    done
    exit
fi
for ((round = 1; round <= rounds; round++)); do
    for segment in 4194304 524288; do
        run 2 1 1gbit 1 $segment
        run 4 1 1gbit 1 $segment
        run 4 4 1gbit 1 $segment
        run 4 1 10gbit 10 $segment
        run 4 4 10gbit 10 $segment
    done
done
