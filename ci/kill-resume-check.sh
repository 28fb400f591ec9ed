#!/bin/bash
# ci/kill-resume-check.sh: a run whose rank is killed with SIGKILL after its third checkpoint,
# resumed from the newest complete checkpoint, ends byte for byte as the run never killed.
set -uo pipefail
cd "$(dirname "$0")/.."
train=.build/release/dlion-train
w=$(mktemp -d)
trap 'pkill -KILL -f -- "--checkpoint-dir $w/" 2>/dev/null; rm -rf "$w"' EXIT
flags="--synthetic --steps 1500 --log-interval 100 --eval-interval 500 --checkpoint-every 100"
ci/mpirun -np 2 $train $flags --checkpoint-dir $w/a >$w/a.log 2>&1 || { echo "the uninterrupted run failed"; tail -5 $w/a.log; exit 1; }
ci/mpirun -np 2 $train $flags --checkpoint-dir $w/b >$w/b.log 2>&1 &
launcher=$!
for _ in $(seq 600); do [[ -d $w/b/step-00000300 ]] && break; sleep 0.05; done
victim=$(for pid in $(pgrep -f -- "--checkpoint-dir $w/b"); do [[ $(cat /proc/$pid/comm) == dlion-train ]] && echo $pid; done | tail -1)
kill -KILL "$victim"
wait $launcher && { echo "the killed run exited 0"; exit 1; }
ci/mpirun -np 2 $train $flags --checkpoint-dir $w/b --resume >$w/c.log 2>&1 || { echo "the resumed run failed"; tail -5 $w/c.log; exit 1; }
resumed=$(grep -o "resumed from [^ ]* at step [0-9]*" $w/c.log)
for f in $w/a/step-00001500/*; do cmp -s "$f" "$w/b/step-00001500/$(basename "$f")" || { echo "differs after resume: $(basename "$f")"; exit 1; }; done
echo "killed after a checkpoint, $resumed, ended identical to the uninterrupted run"
