#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] [TARGET…]: builds the libFuzzer targets (-sanitize=fuzzer,address,
# linked with lld) and runs each for SECONDS (default 60), starting from the seeds in
# fuzz/corpus/TARGET and every crasher found before (fuzz/crashers/TARGET). A new finding is
# written to fuzz/crashers/TARGET/ and fails the run: fix it, keep the file (the unit tests
# replay every crasher), and run again. Targets: idx, text, checkpoint.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(idx text checkpoint)
../ci/setup.sh >/dev/null
swift build -c release --toolset toolset.json 2>&1 | grep -E "error|warning: |Compiling fuzz|Build complete" || true
bin=$(swift build -c release --toolset toolset.json --show-bin-path)
status=0
for target in "${targets[@]}"; do
    work=$(mktemp -d)
    mkdir -p "crashers/$target"
    cp corpus/"$target"/* crashers/"$target"/* "$work"/ 2>/dev/null || true
    echo "== fuzz-$target for $seconds s"
    if "$bin/fuzz-$target" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="crashers/$target/" \
        "$work" >"$work.log" 2>&1; then
        grep -E "^stat::number_of_executed_units|^stat::new_units_added|cov:" "$work.log" | tail -3
        echo "fuzz-$target: no finding"
    else
        status=1
        grep -E "ERROR|Fatal error|SUMMARY|Test unit written" "$work.log" | head -8
        echo "fuzz-$target: FINDING (log above; the input is in crashers/$target/)"
    fi
    rm -rf "$work" "$work.log"
done
exit $status
