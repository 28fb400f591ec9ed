#!/bin/bash
# ci/terngrad-exchange-check.sh RANKS: the same 20-step TernGrad run with the codes' sum sent by
# reduce-scatter and by allgather must end with identical tensors in every checkpoint file
# (parameters and every rank's AdamW moments; the files' headers differ in the flag) and the
# same evaluation, the reduce-scatter having sent fewer bytes (from 3 ranks on).
set -uo pipefail
cd "$(dirname "$0")/.."
n=$1
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
for x in reduce-scatter allgather; do
    ci/mpirun -np $n .build/release/dlion-train --synthetic --steps 20 --eval-interval 20 --optimizer terngrad \
        --terngrad-exchange $x --checkpoint-dir $w/$x --checkpoint-every 20 --metrics $w/$x.jsonl >$w/$x.log 2>&1 ||
        { echo "the $x run failed"; tail -5 $w/$x.log; exit 1; }
done
python3 - "$w" <<'PY'
import json, os, struct, sys
work = sys.argv[1]
def tensors(path):
    """A safetensors file's tensor bytes, without the header (whose metadata names the flags)."""
    data = open(path, "rb").read()
    return data[8 + struct.unpack("<Q", data[:8])[0]:]
def summary(form):
    return [json.loads(l) for l in open(f"{work}/{form}.jsonl") if '"summary"' in l][-1]
a, b = (f"{work}/{form}/step-00000020" for form in ("reduce-scatter", "allgather"))
names = sorted(os.listdir(a))
assert names == sorted(os.listdir(b)) and "model.safetensors" in names, (names, os.listdir(b))
differ = [n for n in names if tensors(f"{a}/{n}") != tensors(f"{b}/{n}")]
assert not differ, f"tensors differ in {differ}"
sa, sb = summary("reduce-scatter"), summary("allgather")
assert (sa["test_loss"], sa["test_accuracy"]) == (sb["test_loss"], sb["test_accuracy"]), (sa, sb)
assert 0 < sa["bytes_sent_per_rank"] < sb["bytes_sent_per_rank"], (sa["bytes_sent_per_rank"], sb["bytes_sent_per_rank"])
print(f"terngrad exchanges agree: {len(names)} files' tensors identical, test loss {sa['test_loss']:.4f}, "
      f"bytes per rank {sa['bytes_sent_per_rank']} (reduce-scatter) < {sb['bytes_sent_per_rank']} (allgather)")
PY
