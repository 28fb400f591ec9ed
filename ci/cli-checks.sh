#!/usr/bin/env bash
# End-to-end checks of dlion-train under mpirun: a short run writes the metrics it promises,
# and bad input fails on every rank with a clear message instead of hanging.
set -uo pipefail
cd "$(dirname "$0")/.."
train=.build/release/dlion-train
passed=0
failed=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# expect NAME STATUS(zero|nonzero) TEXT COMMAND…: runs COMMAND (60 s at most) and checks
# its exit status and that its output contains TEXT.
expect() {
    local name=$1 status=$2 text=$3
    shift 3
    local output code
    output=$(timeout 120 "$@" 2>&1)
    code=$?
    local ok=1
    if [[ $code -eq 124 ]]; then ok=0; echo "FAIL cli: $name: timed out (a rank hung)"; fi
    if [[ $status == zero && $code -ne 0 ]] || [[ $status == nonzero && $code -eq 0 ]]; then
        ok=0; echo "FAIL cli: $name: exit status $code, expected $status"
    fi
    if ! grep -qF -- "$text" <<<"$output"; then ok=0; echo "FAIL cli: $name: output lacks '$text'"; fi
    if ((ok)); then passed=$((passed + 1)); else failed=$((failed + 1)); echo "$output" | tail -15; fi
}

expect "short synthetic run" zero "test accuracy" \
    ci/mpirun -np 4 $train --synthetic --steps 60 --eval-interval 30 --metrics "$work/m.jsonl"
expect "metrics summary fields" zero "ok" python3 - "$work/m.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
summary = [l for l in lines if l["event"] == "summary"][-1]
need = ["test_accuracy", "test_loss", "steps", "wall_seconds", "samples_per_second", "bytes_sent_per_rank", "fp32_allreduce_bytes_per_rank"]
assert all(k in summary for k in need), summary
assert summary["steps"] == 60 and 0 < summary["bytes_sent_per_rank"] * 28 < summary["fp32_allreduce_bytes_per_rank"], summary
assert any(l["event"] == "step" for l in lines) and sum(l["event"] == "eval" for l in lines) >= 2
print("ok")
PY
expect "every optimizer runs" zero "dgc on 2 rank(s)" \
    bash -c "for o in dlion-avg global-lion global-adamw local-adamw terngrad dgc; do ci/mpirun -np 2 $train --synthetic --steps 10 --optimizer \$o || exit 1; done"
expect "local adamw logs its synchronizations" zero '"event":"sync"' \
    bash -c "ci/mpirun -np 2 $train --synthetic --steps 40 --optimizer local-adamw --metrics $work/sync.jsonl >/dev/null && cat $work/sync.jsonl"
expect "H_base below 1" nonzero "--h-base must be at least 1" ci/mpirun -np 2 $train --optimizer local-adamw --h-base 0
expect "QSR alpha not positive" nonzero "--qsr-alpha must be a positive number" ci/mpirun -np 2 $train --optimizer local-adamw --qsr-alpha 0
expect "top-k ratio outside (0, 1]" nonzero "--topk-ratio must be in (0, 1]" ci/mpirun -np 2 $train --optimizer dgc --topk-ratio 1.5
expect "idle OpenBLAS workers sleep" zero "(OPENBLAS_THREAD_TIMEOUT=4)" \
    env -u OPENBLAS_THREAD_TIMEOUT ci/mpirun -np 1 $train --synthetic --steps 2
expect "a timeout the user set wins" zero "(OPENBLAS_THREAD_TIMEOUT=30)" \
    ci/mpirun -np 1 -x OPENBLAS_THREAD_TIMEOUT=30 $train --synthetic --steps 2
expect "ranks keep their name after the OpenBLAS re-exec" zero "2 ranks named dlion-train" bash -c '
    env -u OPENBLAS_THREAD_TIMEOUT ci/mpirun -np 2 '"$train"' --synthetic --steps 100000 --log-interval 100000 >/dev/null 2>&1 &
    launcher=$!
    named=0
    # The ranks of this launch (by their unusual --steps), counted by the name the kernel shows.
    for _ in $(seq 100); do
        named=0
        for pid in $(pgrep -f -- "--steps 100000 --log-interval 100000" || true); do
            [[ "$(cat /proc/$pid/comm 2>/dev/null)" == dlion-train ]] && named=$((named + 1))
        done
        ((named >= 2)) && break
        sleep 0.2
    done
    kill $launcher; wait $launcher 2>/dev/null
    for _ in $(seq 50); do pgrep -f -- "--steps 100000 --log-interval 100000" >/dev/null || break; sleep 0.2; done
    echo "$named ranks named dlion-train"'
# fault SIGNAL SECONDS FLAGS…: starts 4 ranks, sends SIGNAL to the last of them once they train,
# and prints how mpirun ended, whether within SECONDS of the signal, and whether any rank is left.
fault() {
    local signal=$1 limit=$2
    shift 2
    ci/mpirun -np 4 $train --synthetic --steps 100000 --log-interval 100000 --eval-interval 100000 "$@" 2>&1 &
    local launcher=$! victim="" pid
    for _ in $(seq 100); do
        for pid in $(pgrep -f -- "--steps 100000 --log-interval 100000" || true); do
            [[ "$(cat /proc/$pid/comm 2>/dev/null)" == dlion-train ]] && victim=$pid
        done
        [[ -n $victim && $(pgrep -c -f -- "--steps 100000 --log-interval 100000") -ge 5 ]] && break
        sleep 0.2
    done
    sleep 2
    local start=$(date +%s%N)
    kill -"$signal" "$victim"
    wait $launcher
    local code=$? elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
    sleep 0.5
    local left=$(pgrep -c -f -- "--steps 100000 --log-interval 100000" || true)
    pkill -KILL -f -- "--steps 100000 --log-interval 100000" 2>/dev/null
    echo "mpirun exit $code after $elapsed ms; ranks left: $left"
    ((code != 0 && elapsed <= limit * 1000 && left == 0)) && echo "fault handled within $limit s"
}
export train
export -f fault
expect "a rank killed with SIGKILL ends the job within 10 s" zero "fault handled within 10 s" bash -c "fault KILL 10"
expect "a stopped rank ends the job through the watchdog" zero "fault handled within 30 s" bash -c "fault STOP 30 --stall-timeout 5"
expect "the watchdog says which step it waits in" zero "no step completed in 5 s; this rank is waiting in step" \
    bash -c "fault STOP 30 --stall-timeout 5"
expect "help explains the flags" zero "--batch-size" $train --help
expect "bad flag" nonzero "--epochs must be at least 1" ci/mpirun -np 2 $train --epochs 0
expect "unknown optimizer" nonzero "dlion-mavo" ci/mpirun -np 2 $train --optimizer sgd
expect "single-process optimizer on many ranks" nonzero "under mpirun use global-lion" ci/mpirun -np 2 $train --optimizer lion --synthetic
expect "missing dataset, every rank says so" nonzero "(rank 1): error: dataset file /nonexistent/train-images-idx3-ubyte.gz is missing" \
    ci/mpirun -np 2 $train --data-dir /nonexistent
printf 'not gzip' > "$work/train-images-idx3-ubyte.gz"
expect "corrupt dataset" nonzero "is not a valid IDX file" ci/mpirun -np 2 $train --data-dir "$work"
python3 - "$work" <<'PY'
import gzip, os, struct, sys
# An IDX header whose dimensions overflow the size arithmetic, and a FIFO in place of a file.
for name, dims in [("overflow", (0xFFFFFFFF,) * 3), ("huge", (0xFFFF,) * 3)]:
    os.makedirs(f"{sys.argv[1]}/{name}", exist_ok=True)
    with gzip.open(f"{sys.argv[1]}/{name}/train-images-idx3-ubyte.gz", "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack(">III", *dims))
os.makedirs(f"{sys.argv[1]}/fifo", exist_ok=True)
os.mkfifo(f"{sys.argv[1]}/fifo/train-images-idx3-ubyte.gz")
PY
expect "IDX dimensions that overflow" nonzero "multiply to more elements than can be counted" ci/mpirun -np 2 $train --data-dir "$work/overflow"
expect "IDX dimensions larger than the file" nonzero "the header promises" ci/mpirun -np 2 $train --data-dir "$work/huge"
expect "a FIFO as the dataset" nonzero "it is not a regular file" ci/mpirun -np 2 $train --data-dir "$work/fifo"
expect "epochs whose steps overflow" nonzero "more steps than can be counted" ci/mpirun -np 2 $train --synthetic --epochs 9223372036854775807
expect "hidden widths whose product overflows" nonzero "has more elements than can be counted" ci/mpirun -np 2 $train --synthetic --hidden 4611686018427387904,4
# mpirun's MPMD form gives each rank its own flags: they must agree, or every rank says which differ.
expect "ranks with different seeds" nonzero "(rank 1): error: requireSameSettings: ranks disagree: --seed differs (rank 0: 0, rank 1: 1)" \
    ci/mpirun -np 1 $train --synthetic --steps 5 --seed 0 : -np 1 $train --synthetic --steps 5 --seed 1
expect "ranks with different steps and learning rates" nonzero "--steps differs (rank 0: 5, rank 1: 6); --lr differs (rank 0: default, rank 1: 0.01)" \
    ci/mpirun -np 1 $train --synthetic --steps 5 : -np 1 $train --synthetic --steps 6 --lr 0.01
expect "ranks with and without synthetic data" nonzero "--synthetic differs (rank 0: true, rank 1: false, rank 2: true)" \
    ci/mpirun -np 1 $train --synthetic --steps 5 : -np 1 $train --steps 5 : -np 1 $train --synthetic --steps 5
expect "unwritable metrics file" nonzero "cannot create the metrics file" ci/mpirun -np 2 $train --synthetic --metrics /nonexistent/m.jsonl
expect "a metrics file that cannot be written stops every rank" nonzero "(rank 1): error: reporting failed on 1 other rank(s)" \
    ci/mpirun -np 2 $train --synthetic --steps 120 --metrics /dev/full
expect "the failed write is named" nonzero "(rank 0): error: cannot write /dev/full: No space left on device" \
    ci/mpirun -np 2 $train --synthetic --steps 120 --metrics /dev/full
expect "model too large for memory" nonzero "use smaller --hidden widths" ci/mpirun -np 2 $train --synthetic --hidden 200000,200000
expect "divergence stops every rank" nonzero "(rank 1): error: training diverged" \
    ci/mpirun -np 2 $train --synthetic --optimizer global-lion --lr 1e30 --steps 40 --warmup-steps 0 --schedule constant

echo "cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
