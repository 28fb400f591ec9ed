#!/bin/bash
# ci/resume-check.sh RANKS OPTIMIZER [flags…]: a 60-step run that checkpoints at 25, 50 and 60, against
# the same run stopped at 25 (mid-epoch; mid-round for Local AdamW) and resumed from that
# checkpoint: the resumed run must start at step 25 and end with byte-identical checkpoint files
# (parameters and every rank's optimizer state) and the same final evaluation.
set -uo pipefail
cd "$(dirname "$0")/.."
n=$1 o=$2; shift 2
w=$(mktemp -d)
flags="--synthetic --steps 60 --eval-interval 30 --log-interval 10 --optimizer $o $*"
ci/mpirun -np $n .build/release/dlion-train $flags --checkpoint-dir $w/a --checkpoint-every 25 --keep-checkpoints 5 --metrics $w/a.jsonl >$w/a.log 2>&1 || { echo "run A failed"; tail -5 $w/a.log; exit 1; }
mkdir -p $w/b && cp -r $w/a/step-00000025 $w/b/
ci/mpirun -np $n .build/release/dlion-train $flags --checkpoint-dir $w/b --checkpoint-every 25 --resume --metrics $w/b.jsonl >$w/b.log 2>&1 || { echo "run B failed"; tail -5 $w/b.log; exit 1; }
same=1
grep -q "resumed from $w/b/step-00000025 at step 25 of 60" $w/b.log || { same=0; echo "run B did not resume at step 25"; }
first=$(grep -m1 '"event":"step"' $w/b.jsonl | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["step"])')
[[ $first == 30 ]] || { same=0; echo "run B's first logged step is $first, not 30"; }
for f in $w/a/step-00000060/*; do cmp -s $f $w/b/step-00000060/$(basename $f) || { same=0; echo "differs: $(basename $f)"; }; done
sa=$(grep '"summary"' $w/a.jsonl | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(d["test_accuracy"], d["test_loss"], d["steps"], d["synchronizations"])')
sb=$(grep '"summary"' $w/b.jsonl | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(d["test_accuracy"], d["test_loss"], d["steps"], d["synchronizations"])')
[[ "$sa" == "$sb" ]] || { same=0; echo "summaries differ: $sa | $sb"; }
((same)) && echo "resume exact: $o at $n rank(s) ($(ls $w/a/step-00000060 | wc -l) files identical; $sa)"
rm -rf "$w"
((same))
