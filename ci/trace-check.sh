#!/bin/bash
# ci/trace-check.sh RANKS OPTIMIZER [FLAG…]: a 12-step run with --trace must write one Chrome
# trace with a process per rank, every step's data → forward → backward → optimizer step in
# that order and without overlap, the optimizer's own spans (dlion-*: pack, vote, unpack and the
# exchange's waits; global-*: the allreduce and the update) inside each of its steps. Distributed
# Lion without --no-overlap runs backward inside its step instead, and every step must show
# packs and alltoalls started while that backward was still running.
set -uo pipefail
cd "$(dirname "$0")/.."
n=$1 optimizer=$2
shift 2
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
ci/mpirun -np $n .build/release/dlion-train --synthetic --steps 12 --optimizer $optimizer "$@" --trace $w/trace.json >$w/log 2>&1 ||
    { echo "the traced run failed"; tail -5 $w/log; exit 1; }
python3 - "$w/trace.json" "$n" "$optimizer" "$@" <<'PY'
import collections, json, sys
path, ranks, optimizer = sys.argv[1], int(sys.argv[2]), sys.argv[3]
overlapped = optimizer.startswith("dlion") and "--no-overlap" not in sys.argv[4:]
step_name = "optimizer step (overlapped with backward)" if overlapped else "optimizer step"
shape = ["data", "forward", step_name] if overlapped else ["data", "forward", "backward", step_name]
events = json.load(open(path))["traceEvents"]
names = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
assert names == {r: f"rank {r}" for r in range(ranks)}, names
inner = {"pack", "vote", "unpack", "wait for alltoall", "wait for allgather", "startAlltoall", "startAllgather", "holdsOnEveryRank"} \
    if optimizer.startswith("dlion") else {"allreduce(inPlace:)", "update"}
for rank in range(ranks):
    spans = sorted((e for e in events if e["ph"] == "X" and e["pid"] == rank), key=lambda e: (e["ts"], -e["dur"]))
    steps = [e for e in spans if e["name"] in shape]
    assert [e["name"] for e in steps] == shape * 12, [e["name"] for e in steps][:8]
    for a, b in zip(steps, steps[1:]):
        assert a["ts"] + a["dur"] <= b["ts"] + 1e-3, f"rank {rank}: {a['name']} overlaps {b['name']}"
    optimizer_steps = [e for e in steps if e["name"] == step_name]
    if overlapped:
        backwards = [e for e in spans if e["name"] == "backward"]
        assert len(backwards) == 12, len(backwards)
        for step, backward in zip(optimizer_steps, backwards):
            assert step["ts"] <= backward["ts"] and backward["ts"] + backward["dur"] <= step["ts"] + step["dur"] + 1e-3, \
                f"rank {rank}: backward at {backward['ts']} µs is not inside its optimizer step"
            early = [e for e in spans if e["name"] == "startAlltoall" and backward["ts"] <= e["ts"] < backward["ts"] + backward["dur"]]
            assert early, f"rank {rank}: no alltoall started during the backward at {backward['ts']} µs"
        inner.add("backward")
    found = collections.Counter()
    for e in spans:
        if e["name"] in inner or e["name"] == "verdict and argument check":
            holder = [s for s in optimizer_steps if s["ts"] - 1e-3 <= e["ts"] and e["ts"] + e["dur"] <= s["ts"] + s["dur"] + 1e-3]
            # The trainer's own allreduces (loss reports, evaluations) are outside the steps.
            assert len(holder) == 1 or e["name"] == "allreduce(inPlace:)", f"rank {rank}: {e['name']} at {e['ts']} µs is in no optimizer step"
            found[e["name"]] += len(holder)
    # Overlapped, the verdict shares the argument check's reduction after the first step.
    if overlapped:
        found["holdsOnEveryRank"] += found.pop("verdict and argument check", 0)
    assert set(found) == inner and all(found[k] >= 12 for k in inner), (rank, found)
print(f"trace ok: {ranks} ranks, {optimizer}, {len(events)} events")
PY
