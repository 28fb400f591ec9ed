#!/usr/bin/env bash
# Trains the default MLP on Fashion-MNIST with each optimizer at the same rank count, epochs
# and seed, and prints a Markdown table of test accuracy and bytes sent per rank.
#   benchmarks/compare-optimizers.sh [RANKS] [extra dlion-train flags…]
set -euo pipefail
cd "$(dirname "$0")/.."
ranks=${1:-16}
shift || true
out=$(mktemp -d)
swift build -c release --product dlion-train >/dev/null
for optimizer in dlion-mavo dlion-avg global-lion global-adamw; do
    echo "== $optimizer on $ranks ranks" >&2
    ci/mpirun -np "$ranks" .build/release/dlion-train --optimizer "$optimizer" --progress plain \
        --metrics "$out/$optimizer.jsonl" "$@" >"$out/$optimizer.log" 2>&1 || { cat "$out/$optimizer.log" >&2; exit 1; }
done
python3 - "$out" "$ranks" <<'PY'
import json, sys, pathlib
out, ranks = pathlib.Path(sys.argv[1]), sys.argv[2]
print(f"| optimizer ({ranks} ranks) | test accuracy | bytes sent per rank | vs fp32 allreduce | bits sent per parameter per step | wall |")
print("|---|---|---|---|---|---|")
for name in ["dlion-mavo", "dlion-avg", "global-lion", "global-adamw"]:
    summary = [json.loads(l) for l in (out / f"{name}.jsonl").read_text().splitlines() if '"summary"' in l][-1]
    sent, fp32 = summary["bytes_sent_per_rank"], summary["fp32_allreduce_bytes_per_rank"]
    bits = 8 * sent / summary["steps"] / summary["parameters"]   # bits each rank sends per parameter per step
    print(f"| {name} | {100 * summary['test_accuracy']:.2f} % | {sent / 2**20:.1f} MiB | {fp32 / sent:.1f}× less | "
          f"{bits:.2f} | {summary['wall_seconds']:.0f} s |")
PY
rm -rf "$out"
