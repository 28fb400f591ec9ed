#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the unit tests, the multi-rank
# conformance suite at 1, 2, 3, 4, 5, 8 and 16 ranks, the example package under mpirun,
# the benchmark scripts' logic, end-to-end checks of dlion-train, and multi-host checks on an
# emulated cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

ci/setup.sh
start=$(date +%s)

swift build -c release
swift test

passed=0
failed=0
for ranks in 1 2 3 4 5 8 16; do
    echo "== conformance at $ranks ranks"
    log=$(mktemp)
    status=0
    timeout 600 ci/mpirun -np "$ranks" .build/release/mpi-conformance 2>&1 | tee "$log" || status=$?
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1 || true)
    rm -f "$log"
    if [[ -z "$summary" || $status -ne 0 ]]; then
        echo "conformance at $ranks ranks failed (exit $status)"
        failed=$((failed + 1))
        continue
    fi
    passed=$((passed + ${summary%% passed*}))
    rest=${summary#*, }
    failed=$((failed + ${rest%% failed}))
done

echo "== example package (links Collectives and Training from outside, runs under mpirun -np 4)"
(cd examples && swift build -c release)
ci/mpirun -np 4 examples/.build/release/collectives-example
ci/mpirun -np 4 examples/.build/release/lion-example

echo "== the experiment scripts' verdicts, sweeps and cache keys (benchmarks/test_experiments.py)"
scripts=0
(cd benchmarks && python3 -m unittest test_experiments) || scripts=$?

echo "== dlion-train end to end"
cli=0
ci/cli-checks.sh || cli=$?

echo "== several hosts (an emulated cluster: 2 hosts x 2 ranks over 1 Gbit/s TCP)"
cluster=0
ci/cluster-checks.sh || cluster=$?

echo "== done in $(( $(date +%s) - start )) s"
echo "conformance: $passed passed, $failed failed"
[[ $failed -eq 0 && $scripts -eq 0 && $cli -eq 0 && $cluster -eq 0 ]]
