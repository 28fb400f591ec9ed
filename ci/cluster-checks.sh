#!/usr/bin/env bash
# Multi-host checks on an emulated cluster (benchmarks/cluster/cluster.sh): 2 hosts x 2 ranks
# joined by 1 Gbit/s TCP links. The conformance suite passes across hosts, training (with the
# node-aware exchange there) ends byte for byte as on one host, and a bad launch (too many ranks, an unreachable host, different
# builds or flags on the hosts, a rank killed on one host, Ctrl-C) fails within seconds with
# no rank and no namespace left behind. Skipped, with the reason, where network namespaces
# cannot be created.
set -uo pipefail
cd "$(dirname "$0")/.."
train=.build/release/dlion-train
cluster=benchmarks/cluster/cluster.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
suite=cluster
source ci/expect.sh

if ! reason=$($cluster --check 2>&1); then
    echo "cluster: SKIPPED, no emulated cluster here: $reason"
    exit 0
fi
two="$cluster --hosts 2 --slots 2 --rate 1gbit --"
steps="--synthetic --steps 40 --log-interval 20 --eval-interval 20 --checkpoint-every 40"

expect "conformance at 2 hosts x 2 ranks" zero ", 0 failed" $two -np 4 .build/release/mpi-conformance

# Every collective's result is independent of the transport and of the exchange's shape, so
# training is too: across 2 hosts Distributed Lion's exchange is node-aware (its timeline has
# the node count's spans), on one host flat, and the checkpoints are the same bytes.
same_as_one_host() {
    ci/mpirun -np 4 $train $steps --checkpoint-dir "$work/one" >"$work/one.log" 2>&1 || { tail -5 "$work/one.log"; return 1; }
    $two -np 4 $train $steps --checkpoint-dir "$work/two" --trace "$work/two.json" >"$work/two.log" 2>&1 \
        || { tail -5 "$work/two.log"; return 1; }
    grep -q '"name":"count"' "$work/two.json" || { echo "the 2-host run's exchange was not node-aware"; return 1; }
    for file in "$work"/one/step-00000040/*; do
        cmp "$file" "$work/two/step-00000040/$(basename "$file")" || return 1
    done
    echo "every checkpoint file after 40 steps equals the one-host run's"
}
export train cluster work two steps
export -f same_as_one_host
expect "dlion-train across 2 hosts ends as on one host" zero "equals the one-host run's" bash -c same_as_one_host

expect "more ranks than the hosts have slots" nonzero "There are not enough slots available" $two -np 5 $train $steps
expect "an unreachable host" nonzero "ORTE was unable to reliably start one or more daemons" \
    $cluster --hosts 2 --slots 2 --unreachable 1 -- -np 4 $train $steps
mkdir -p "$work/other" && cp $train "$work/other/" && printf 'x' >>"$work/other/dlion-train"
expect "a different build on the second host" nonzero "ranks run different executables (rank 0: $(realpath $train) digest" \
    $two -np 2 $train $steps : -np 2 "$work/other/dlion-train" $steps
expect "different flags on the second host" nonzero "--lr differs (rank 0: default, rank 1: default, rank 2: 0.01, rank 3: 0.01)" \
    $two -np 2 $train $steps : -np 2 $train $steps --lr 0.01

# interrupt HOW LIMIT: starts a long run on 2 hosts, then kills one rank on the second host
# (HOW=kill-rank) or sends the cluster script SIGINT as Ctrl-C would (HOW=ctrl-c); passes when
# the launch exits non-zero within LIMIT seconds and leaves no rank and no namespace behind.
interrupt() {
    local how=$1 limit=$2
    set -m  # job control: a background job started without it ignores SIGINT
    $two -np 4 $train --synthetic --steps 1000000 --log-interval 1000000 --eval-interval 1000000 >"$work/long.log" 2>&1 &
    local launcher=$! victim=""
    for _ in $(seq 200); do
        victim=$(ip netns pids "dlion$launcher-h1" 2>/dev/null | while read -r pid; do
            [[ $(cat /proc/$pid/comm 2>/dev/null) == dlion-train ]] && echo $pid; done | head -1)
        [[ -n $victim ]] && grep -q "step" "$work/long.log" && break
        sleep 0.1
    done
    [[ -n $victim ]] || { echo "no rank started on the second host"; kill -9 $launcher; return 1; }
    local start=$(date +%s%N)
    if [[ $how == kill-rank ]]; then kill -KILL "$victim"; else kill -INT "$launcher"; fi
    wait $launcher
    local code=$? elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
    local ranks=$(ps -C dlion-train -o stat= | grep -vc Z)  # zombies wait only for init to reap them namespaces=$(ip netns list | grep -c "^dlion$launcher-" || true)
    echo "exit $code after $elapsed ms; ranks left: $ranks; namespaces left: $namespaces"
    ((code != 0 && elapsed <= limit * 1000 && ranks == 0 && namespaces == 0)) && echo "handled within $limit s"
}
export -f interrupt
expect "a rank killed on the second host ends the job" zero "handled within 10 s" bash -c "interrupt kill-rank 10"
expect "Ctrl-C ends the job and removes the cluster" zero "handled within 10 s" bash -c "interrupt ctrl-c 10"

echo "cluster: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
