#!/usr/bin/env bash
# End-to-end checks of dlion-train under mpirun: a short run writes the metrics it promises,
# and bad input fails on every rank with a clear message instead of hanging.
set -uo pipefail
cd "$(dirname "$0")/.."
train=.build/release/dlion-train
work=$(mktemp -d)
trap 'umount "$work/full" 2>/dev/null; rm -rf "$work"' EXIT

suite=cli
source ci/expect.sh

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
evals = [l for l in lines if l["event"] == "eval"]
assert all(0 <= a["seconds"] <= b["seconds"] <= summary["wall_seconds"] and 0 < a["bytes_sent_per_rank"] < b["bytes_sent_per_rank"]
           for a, b in zip(evals, evals[1:])), evals
print("ok")
PY
expect "every optimizer runs" zero "dgc on 2 rank(s)" \
    bash -c "for o in dlion-avg global-lion global-adamw local-adamw terngrad graddrop dgc; do ci/mpirun -np 2 $train --synthetic --steps 10 --optimizer \$o || exit 1; done"
expect "local adamw logs its synchronizations" zero '"event":"sync"' \
    bash -c "ci/mpirun -np 2 $train --synthetic --steps 40 --optimizer local-adamw --metrics $work/sync.jsonl >/dev/null && cat $work/sync.jsonl"
expect "terngrad's two exchanges give the same run, the reduce-scatter in fewer bytes" zero "terngrad exchanges agree" \
    ci/terngrad-exchange-check.sh 3
expect "terngrad without clipping runs" zero "test accuracy" ci/mpirun -np 2 $train --synthetic --steps 10 --optimizer terngrad --terngrad-clip 0
expect "terngrad flags with another optimizer" nonzero "--terngrad-exchange and --terngrad-clip apply to --optimizer terngrad only" \
    ci/mpirun -np 2 $train --optimizer dgc --terngrad-clip 3
expect "negative terngrad clip" nonzero "--terngrad-clip must be a number of standard deviations ≥ 0" \
    ci/mpirun -np 2 $train --optimizer terngrad --terngrad-clip=-1
expect "H_base below 1" nonzero "--h-base must be at least 1" ci/mpirun -np 2 $train --optimizer local-adamw --h-base 0
expect "QSR alpha not positive" nonzero "--qsr-alpha must be a positive number" ci/mpirun -np 2 $train --optimizer local-adamw --qsr-alpha 0
expect "top-k ratio outside (0, 1]" nonzero "--topk-ratio must be in (0, 1]" ci/mpirun -np 2 $train --optimizer dgc --topk-ratio 1.5
expect "top-k ratio with a dense optimizer" nonzero "--topk-ratio applies to --optimizer dgc or graddrop only" \
    ci/mpirun -np 2 $train --optimizer terngrad --topk-ratio 0.01
expect "DGC clipping norm not positive" nonzero "--dgc-clip-norm must be a positive number" ci/mpirun -np 2 $train --optimizer dgc --dgc-clip-norm 0
expect "DGC flags with another optimizer" nonzero "--dgc-warmup-steps and --dgc-clip-norm apply to --optimizer dgc only" \
    ci/mpirun -np 2 $train --optimizer graddrop --dgc-warmup-steps 10
expect "DGC reports its warm-up and steady traffic apart" zero "then" bash -c "
    ci/mpirun -np 2 $train --synthetic --steps 30 --optimizer dgc --dgc-warmup-steps 8 --dgc-clip-norm 1 --metrics $work/dgc.jsonl | grep 'DGC traffic' &&
    python3 -c '
import json, sys
s = [json.loads(l) for l in open(sys.argv[1]) if \"summary\" in l][-1]
assert s[\"dgc_steady_steps\"] == 22 and 0 < s[\"dgc_steady_bytes_sent_per_rank\"] < s[\"dgc_warmup_bytes_sent_per_rank\"], s
assert s[\"dgc_warmup_bytes_sent_per_rank\"] + s[\"dgc_steady_bytes_sent_per_rank\"] <= s[\"bytes_sent_per_rank\"], s
' $work/dgc.jsonl"
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
# fault SIGNAL SECONDS FLAGS…: starts 4 ranks, sends SIGNAL to the last of them once they train
# (rank 0 has logged a step: a rank stopped in set-up, before the watchdog runs, would only show
# that a loaded machine is slow), and prints how mpirun ended, whether within SECONDS of the
# signal, and whether any rank is left.
fault() {
    local signal=$1 limit=$2 log=$(mktemp)
    shift 2
    local marker="--steps 100000 --eval-interval 100000"
    ci/mpirun -np 4 $train --synthetic $marker --log-interval 1 --metrics "$log" "$@" 2>&1 &
    local launcher=$! victim="" pid
    for _ in $(seq 600); do
        for pid in $(pgrep -f -- "$marker" || true); do
            [[ "$(cat /proc/$pid/comm 2>/dev/null)" == dlion-train ]] && victim=$pid
        done
        [[ -n $victim && $(pgrep -c -f -- "$marker") -ge 5 ]] && grep -q '"event":"step"' "$log" && break
        sleep 0.1
    done
    local start=$(date +%s%N)
    kill -"$signal" "$victim"
    wait $launcher
    local code=$? elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
    sleep 0.5
    local left=$(pgrep -c -f -- "$marker" || true)
    pkill -KILL -f -- "$marker" 2>/dev/null
    rm -f "$log"
    echo "mpirun exit $code after $elapsed ms; ranks left: $left"
    ((code != 0 && elapsed <= limit * 1000 && left == 0)) && echo "fault handled within $limit s"
}
export train
export -f fault
expect "a rank killed with SIGKILL ends the job within 10 s" zero "fault handled within 10 s" bash -c "fault KILL 10"
expect "a stopped rank ends the job through the watchdog" zero "fault handled within 30 s" bash -c "fault STOP 30 --stall-timeout 5"
expect "the watchdog says which step it waits in" zero "no step completed in 5 s; this rank is waiting in step" \
    bash -c "fault STOP 30 --stall-timeout 5"
# Checkpoints: a stopped and resumed run ends exactly as the uninterrupted one.
for optimizer in dlion-mavo dlion-avg global-lion global-adamw local-adamw terngrad graddrop dgc; do
    expect "resume is exact: $optimizer at 2 ranks" zero "resume exact: $optimizer at 2 rank(s)" ci/resume-check.sh 2 "$optimizer"
done
expect "resume is exact: dlion-mavo at 4 ranks" zero "resume exact: dlion-mavo at 4 rank(s)" ci/resume-check.sh 4 dlion-mavo
expect "resume is exact: local-adamw (constant H = 7) at 4 ranks" zero "resume exact: local-adamw at 4 rank(s)" \
    ci/resume-check.sh 4 local-adamw --sync-rule constant --h-base 7
expect "resume is exact: adamw at 1 rank" zero "resume exact: adamw at 1 rank(s)" ci/resume-check.sh 1 adamw
for signal in KILL TERM USR1; do
    expect "a run interrupted by SIG$signal resumes to the uninterrupted result" zero "ended identical to the uninterrupted run" ci/fault-resume-check.sh $signal
done
expect "checkpoints by the clock" zero "clock checkpoints ok" bash -c "
    ci/mpirun -np 2 $train --synthetic --steps 400 --checkpoint-dir $work/clock --checkpoint-minutes 0.002 --keep-checkpoints 1000 >/dev/null &&
    n=\$(ls $work/clock | wc -l) && echo \"\$n checkpoints\" && [[ \$n -ge 4 ]] && echo 'clock checkpoints ok'"
expect "checkpoints by the clock need a directory" nonzero "--checkpoint-minutes needs --checkpoint-dir" $train --checkpoint-minutes 5
ck=$work/checkpoints
ci/mpirun -np 2 $train --synthetic --steps 20 --checkpoint-dir "$ck" --checkpoint-every 10 --keep-checkpoints 1 >/dev/null 2>&1
expect "only the newest checkpoints are kept" zero "step-00000020" ls "$ck"
expect "a checkpoint opens in NumPy (and safetensors where it installs)" zero "names and shapes ok" python3 - "$ck/step-00000020" <<'PY'
import json, struct, subprocess, sys
import numpy as np
path = sys.argv[1] + "/model.safetensors"
raw = open(path, "rb").read()
length = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + length])
shapes = {name: entry["shape"] for name, entry in header.items() if name != "__metadata__"}
assert shapes == {"layer0.weight": [1024, 784], "layer0.bias": [1024], "layer1.weight": [1024, 1024], "layer1.bias": [1024],
                  "layer2.weight": [10, 1024], "layer2.bias": [10]}, shapes
start, end = header["layer0.weight"]["data_offsets"]
weights = np.frombuffer(raw[8 + length + start: 8 + length + end], dtype="<f4").reshape(1024, 784)
assert np.isfinite(weights).all() and 0.01 < np.abs(weights).max() < 1, weights
assert header["__metadata__"]["step"] == "20" and header["__metadata__"]["--optimizer"] == "dlion-mavo"
try:
    import safetensors.numpy
except ImportError:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "safetensors"], capture_output=True)
try:
    from safetensors.numpy import load_file
    loaded = load_file(path)
    assert {k: list(v.shape) for k, v in loaded.items()} == shapes and (loaded["layer0.weight"] == weights).all()
    print("safetensors reads it too")
except ImportError:
    print("safetensors could not be installed here; NumPy only")
print("names and shapes ok")
PY
expect "--init-from loads the parameters alone, into another optimizer and rank count" zero "parameters loaded" bash -c "
    ci/mpirun -np 3 $train --synthetic --steps 1 --optimizer global-adamw --lr 1e-30 --init-from $ck --checkpoint-dir $work/init >/dev/null &&
    python3 -c '
import numpy as np, sys, struct, json
def load(path):
    data = open(path, \"rb\").read(); n = struct.unpack(\"<Q\", data[:8])[0]; header = json.loads(data[8:8 + n])
    return {k: np.frombuffer(data[8 + n + v[\"data_offsets\"][0]:8 + n + v[\"data_offsets\"][1]], \"<f4\") for k, v in header.items() if k != \"__metadata__\"}
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a.keys() == b.keys() and all(np.allclose(a[k], b[k], rtol=0, atol=1e-20) for k in a)
print(\"parameters loaded\")' $ck/step-00000020/model.safetensors $work/init/step-00000001/model.safetensors"
expect "--init-from a model of another shape" nonzero "layer0.weight is [1024, 784] there, [64, 784] in the model" \
    ci/mpirun -np 2 $train --synthetic --steps 1 --hidden 64 --init-from "$ck"
expect "--init-from nothing" nonzero "(rank 1): error: reading the initial parameters failed on 1 other rank(s)" \
    ci/mpirun -np 2 $train --synthetic --steps 1 --init-from "$work/nowhere"
expect "resume without a checkpoint" nonzero "no complete checkpoint in $work/empty to resume from" \
    ci/mpirun -np 2 $train --synthetic --steps 20 --checkpoint-dir "$work/empty" --resume
expect "resume with another rank count" nonzero "it was saved by 2 ranks, this run has 3" \
    ci/mpirun -np 3 $train --synthetic --steps 20 --checkpoint-dir "$ck" --resume
expect "resume with another model" nonzero "--hidden is 1024,1024 there, 64 here" \
    ci/mpirun -np 2 $train --synthetic --steps 20 --hidden 64 --checkpoint-dir "$ck" --resume
expect "resume with another optimizer" nonzero "--optimizer is dlion-mavo there, global-adamw here" \
    ci/mpirun -np 2 $train --synthetic --steps 20 --optimizer global-adamw --checkpoint-dir "$ck" --resume
cp -r "$ck" "$work/truncated" && truncate -s 1000 "$work/truncated/step-00000020/rank-00001.safetensors"
expect "a truncated checkpoint, every rank says so" nonzero "(rank 0): error: restoring the checkpoint failed on 1 other rank(s)" \
    ci/mpirun -np 2 $train --synthetic --steps 20 --checkpoint-dir "$work/truncated" --resume
expect "the truncated file is named" nonzero "rank-00001.safetensors is damaged: tensor momentum's data_offsets lie outside" \
    ci/mpirun -np 2 $train --synthetic --steps 20 --checkpoint-dir "$work/truncated" --resume
cp -r "$ck" "$work/lying" && python3 - "$work/lying/step-00000020/model.safetensors" <<'PY'
import struct, sys
raw = bytearray(open(sys.argv[1], "rb").read())
length = struct.unpack("<Q", raw[:8])[0]
header = raw[8:8 + length].replace(b'"shape":[10]', b'"shape":[99]')
open(sys.argv[1], "wb").write(raw[:8] + header + raw[8 + length:])
PY
expect "a header that lies about sizes" nonzero "layer2.bias's shape [99] does not match its 40 bytes" \
    ci/mpirun -np 2 $train --synthetic --steps 20 --checkpoint-dir "$work/lying" --resume
expect "an unwritable checkpoint directory" nonzero "cannot create directory /proc/" \
    ci/mpirun -np 2 $train --synthetic --steps 20 --checkpoint-dir /proc/dlion-checkpoints
# A checkpoint directory that fills up: every rank fails, and the checkpoints before are intact.
full=$work/full
mkdir -p "$full"
if mount -t tmpfs -o size=60m tmpfs "$full" 2>/dev/null; then
    expect "a full checkpoint directory stops every rank, naming the file" nonzero "safetensors: cannot write: No space left on device" \
        ci/mpirun -np 2 $train --synthetic --steps 30 --checkpoint-every 10 --checkpoint-dir "$full/ck"
    mkdir -p "$work/survivor" && cp -r "$full/ck/step-00000020" "$work/survivor/"
    expect "the checkpoint before the full disk resumes" zero "resumed from $work/survivor/step-00000020 at step 20" \
        ci/mpirun -np 2 $train --synthetic --steps 30 --checkpoint-every 10 --checkpoint-dir "$work/survivor" --resume
    umount "$full"
else
    echo "skip cli: a full checkpoint directory (no tmpfs can be mounted here)"
fi
expect "resume needs a directory" nonzero "--resume needs --checkpoint-dir" ci/mpirun -np 2 $train --synthetic --resume
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
# A different build on one rank (here the same binary with one byte appended) is refused first.
mkdir -p "$work/other" && cp $train "$work/other/" && printf 'x' >>"$work/other/dlion-train"
expect "ranks running different builds" nonzero "(rank 2): error: requireSameExecutable: ranks disagree: ranks run different executables (rank 0: $(realpath $train) digest" \
    ci/mpirun -np 2 $train --synthetic --steps 5 : -np 1 "$work/other/dlion-train" --synthetic --steps 5 --lr 0.01
expect "unwritable metrics file" nonzero "cannot create the metrics file" ci/mpirun -np 2 $train --synthetic --metrics /nonexistent/m.jsonl
expect "--trace writes every rank's steps and the sign allreduce's phases" zero "trace ok: 3 ranks, dlion-mavo" ci/trace-check.sh 3 dlion-mavo
expect "--no-overlap trains the same model as the overlapped default" zero "same model" bash -c '
    for flag in --overlap --no-overlap; do
        ci/mpirun -np 3 '"$train"' --synthetic --steps 40 --hidden 300,200 --metrics "$1/overlap$flag.jsonl" $flag >/dev/null || exit 1
    done
    python3 - "$1/overlap--overlap.jsonl" "$1/overlap--no-overlap.jsonl" <<PY
import json, sys
a, b = ([json.loads(l) for l in open(p) if "\"summary\"" in l][-1] for p in sys.argv[1:])
keys = ["test_loss", "test_accuracy"]
assert all(a[k] == b[k] for k in keys), [(k, a[k], b[k]) for k in keys]
print("same model")
PY' _ "$work"
expect "a bucket below one word of signs" nonzero "--bucket-length must be at least 64 (one word of signs), got 63" \
    ci/mpirun -np 2 $train --synthetic --steps 5 --bucket-length 63
expect "a negative gradient block" nonzero "--gradient-block must be 0 (whole layers) or a number of parameters, got -5" \
    ci/mpirun -np 2 $train --synthetic --steps 5 --gradient-block=-5
expect "--trace without overlap keeps backward before the optimizer step" zero "trace ok: 2 ranks, dlion-avg" ci/trace-check.sh 2 dlion-avg --no-overlap
expect "--trace shows Global AdamW's allreduce and update inside its steps" zero "trace ok: 2 ranks, global-adamw" ci/trace-check.sh 2 global-adamw
expect "unwritable trace file" nonzero "cannot create the trace file /nonexistent/t.json" \
    ci/mpirun -np 2 $train --synthetic --steps 5 --trace /nonexistent/t.json
expect "a metrics file that cannot be written stops every rank" nonzero "(rank 1): error: reporting failed on 1 other rank(s)" \
    ci/mpirun -np 2 $train --synthetic --steps 120 --metrics /dev/full
expect "the failed write is named" nonzero "(rank 0): error: cannot write /dev/full: No space left on device" \
    ci/mpirun -np 2 $train --synthetic --steps 120 --metrics /dev/full
expect "model too large for memory" nonzero "use smaller --hidden widths" ci/mpirun -np 2 $train --synthetic --hidden 200000,200000
# One rank under an address-space limit (ulimit -v), the other free: the memory check fails on one
# rank only, and the set-up agreement stops both instead of leaving one blocked.
expect "a model too large for one rank's memory only" nonzero "(rank 0): error: set-up failed on 1 other rank(s)" \
    ci/mpirun -np 1 $train --synthetic --steps 5 --hidden 12000,12000 : \
    -np 1 bash -c "ulimit -v 1500000; exec $train --synthetic --steps 5 --hidden 12000,12000"
expect "divergence stops every rank" nonzero "(rank 1): error: training diverged" \
    ci/mpirun -np 2 $train --synthetic --optimizer global-lion --lr 1e30 --steps 40 --warmup-steps 0 --schedule constant

# Distributed Lion's policies from the flags: ties kept as zero (the paper's sign(0) = 0) send a
# second bit plane back at an even rank count, 1.5x the bytes of the random tie-break.
expect "--tie-policy zero sends a second bit plane back" zero "ok" bash -c '
    for policy in random zero; do
        ci/mpirun -np 2 '"$train"' --synthetic --steps 20 --tie-policy $policy --zero-sign positive --metrics "$1/ties-$policy.jsonl" >/dev/null || exit 1
    done
    python3 - "$1" <<"PY"
import json, sys
def sent(policy):
    lines = open(f"{sys.argv[1]}/ties-{policy}.jsonl")
    return [json.loads(l) for l in lines if "\"summary\"" in l][-1]["bytes_sent_per_rank"]
ratio = sent("zero") / sent("random")
assert 1.45 < ratio < 1.55, ratio
print("ok")
PY' _ "$work"
expect "--tie-policy with another optimizer" nonzero "--tie-policy applies to --optimizer dlion-mavo only (got adamw)" \
    $train --optimizer adamw --tie-policy zero
expect "--zero-sign with another optimizer" nonzero "--zero-sign applies to --optimizer dlion-mavo or dlion-avg only (got global-lion)" \
    $train --optimizer global-lion --zero-sign positive

# The GPT on Debian's fortunes: it trains, reports bits per character and samples text; bad text
# and shapes fail on every rank before training.
expect "a GPT trains on the fortunes and samples text" zero "sample (temperature 0.8)" \
    ci/mpirun -np 2 $train --model gpt --steps 20 --batch-size 4 --context 32 --sample-length 40
expect "a GPT reports bits per character" zero "bits/char" ci/mpirun -np 2 $train --model gpt --steps 5 --batch-size 2 --context 16 --sample-length 0
expect "a GPT batches 8 windows per rank by default" zero "× batch 8," $train --model gpt --steps 1 --context 16 --sample-length 0
# --profile's GEMM time is that of the training steps' forward and backward, of which it is a
# part: the final evaluation's GEMMs (here far more than 20 steps') are not counted in it.
expect "a GPT profile counts only the steps' GEMMs" zero "ok" bash -c '
    ci/mpirun -np 1 '"$train"' --model gpt --steps 20 --batch-size 4 --context 32 --sample-length 0 --profile --metrics "$1" >/dev/null &&
    python3 - "$1" <<"PY"
import json, sys
summary = [json.loads(l) for l in open(sys.argv[1]) if "\"summary\"" in l][-1]
gemm, fb = summary["gemm_seconds"], summary["forward_backward_seconds"]
assert 0 < gemm <= fb, (gemm, fb)
print("ok")
PY' _ "$work/profile.jsonl"
expect "GPT resume is exact" zero "resume exact: dlion-mavo at 2 rank(s)" \
    ci/resume-check.sh 2 dlion-mavo --model gpt --batch-size 4 --context 32 --sample-length 0
expect "a width the heads do not divide" nonzero "--channels 65 is not divisible by --heads 4" $train --model gpt --channels 65
expect "a GPT context whose activations overflow" nonzero "are more floats than can be counted; use a smaller --context" \
    ci/mpirun -np 2 $train --model gpt --context 4000000000
expect "a GPT too large for memory, activations counted" nonzero "with its gradients and activations" \
    ci/mpirun -np 2 $train --model gpt --context 100000
mkdir -p "$work/text-empty" "$work/text-binary" "$work/text-short"
printf '\xff\xfe\x00binary' > "$work/text-binary/data.txt"
printf 'too short' > "$work/text-short/a.txt"
expect "an empty text directory, every rank says so" nonzero "(rank 1): error: text $work/text-empty cannot be used: it holds 0 character(s)" \
    ci/mpirun -np 2 $train --model gpt --data-dir "$work/text-empty"
expect "text that is not UTF-8" nonzero "data.txt cannot be used: it is not UTF-8 text" ci/mpirun -np 2 $train --model gpt --data-dir "$work/text-binary"
expect "text shorter than a window" nonzero "too few for windows of 64" ci/mpirun -np 2 $train --model gpt --data-dir "$work/text-short"
expect "a missing text directory" nonzero "Point --data-dir at a directory of plain text files" ci/mpirun -np 2 $train --model gpt --data-dir /nonexistent

# The ViT on Fashion-MNIST's images: it trains and resumes exactly; a patch that does not divide
# the image fails on every rank before training.
expect "a ViT trains on the images" zero "ViT 1 layers × 16 wide, 2 heads, 7×7 patches (16 per image)" \
    ci/mpirun -np 2 $train --model vit --synthetic --steps 10 --layers 1 --channels 16 --heads 2 --patch-size 7
expect "ViT resume is exact" zero "resume exact: dlion-mavo at 2 rank(s)" \
    ci/resume-check.sh 2 dlion-mavo --model vit --layers 1 --channels 16 --heads 2 --patch-size 7
expect "a patch the image does not divide, every rank says so" nonzero "(rank 1): error: the patch size 5 does not divide the 28×28 images; choose --patch-size among 1, 2, 4, 7, 14, 28" \
    ci/mpirun -np 2 $train --model vit --synthetic --patch-size 5

echo "cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
