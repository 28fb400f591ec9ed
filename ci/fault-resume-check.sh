#!/bin/bash
# ci/fault-resume-check.sh KILL|TERM|USR1: a run interrupted after its third checkpoint —
# one rank SIGKILLed, or mpirun sent SIGTERM (forwarded to every rank as SIGTERM, SIGKILL
# two seconds later) or SIGUSR1 (forwarded, no kill) — and resumed from the newest complete
# checkpoint ends byte for byte as the run never interrupted. With TERM and USR1 every rank
# must stop after the same step, save a checkpoint there and say how to resume.
set -uo pipefail
cd "$(dirname "$0")/.."
signal=${1:?usage: ci/fault-resume-check.sh KILL|TERM|USR1}
train=.build/release/dlion-train
w=$(mktemp -d)
trap 'pkill -KILL -f -- "--checkpoint-dir $w/" 2>/dev/null; rm -rf "$w"' EXIT
flags="--synthetic --steps 1500 --log-interval 100 --eval-interval 500 --checkpoint-every 100"
ci/mpirun -np 2 $train $flags --checkpoint-dir $w/a >$w/a.log 2>&1 || { echo "the uninterrupted run failed"; tail -5 $w/a.log; exit 1; }
ci/mpirun -np 2 $train $flags --checkpoint-dir $w/b >$w/b.log 2>&1 &
launcher=$!
for _ in $(seq 600); do [[ -d $w/b/step-00000300 ]] && break; sleep 0.05; done
sent=$(date +%s.%N)
if [[ $signal == KILL ]]; then
    victim=$(for pid in $(pgrep -f -- "--checkpoint-dir $w/b"); do [[ $(cat /proc/$pid/comm) == dlion-train ]] && echo $pid; done | tail -1)
    kill -KILL "$victim"
else
    kill -"$signal" "$launcher"
fi
wait $launcher && { echo "the interrupted run exited 0"; exit 1; }
seconds=$(echo "$(date +%s.%N) - $sent" | bc)
if [[ $signal != KILL ]]; then
    stopped=$(grep -o "stopped by SIG$signal after step [0-9]*: checkpoint saved in [^;]*; to continue, run the same command with --resume" $w/b.log) \
        || { echo "no stop message"; tail -5 $w/b.log; exit 1; }
    saved=$(grep -o "saved in [^;]*" <<<"$stopped")
    [[ -d ${saved#saved in } ]] || { echo "the checkpoint the message names is missing: $stopped"; exit 1; }
fi
ci/mpirun -np 2 $train $flags --checkpoint-dir $w/b --resume >$w/c.log 2>&1 || { echo "the resumed run failed"; tail -5 $w/c.log; exit 1; }
resumed=$(grep -o "resumed from [^ ]* at step [0-9]*" $w/c.log)
for f in $w/a/step-00001500/*; do cmp -s "$f" "$w/b/step-00001500/$(basename "$f")" || { echo "differs after resume: $(basename "$f")"; exit 1; }; done
printf "SIG%s: mpirun exited non-zero after %.1f s, %s, ended identical to the uninterrupted run\n" "$signal" "$seconds" "$resumed"
