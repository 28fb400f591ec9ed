#!/bin/bash
# ci/trace-check.sh RANKS OPTIMIZER: a 12-step run with --trace must write one Chrome trace with
# a process per rank, every step's data → forward → backward → optimizer step in that order
# and without overlap, the optimizer's own spans (dlion-*: pack, vote, unpack and the exchange's
# waits; global-*: the allreduce and the update) inside each of its steps.
set -uo pipefail
cd "$(dirname "$0")/.."
n=$1 optimizer=$2
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
ci/mpirun -np $n .build/release/dlion-train --synthetic --steps 12 --optimizer $optimizer --trace $w/trace.json >$w/log 2>&1 ||
    { echo "the traced run failed"; tail -5 $w/log; exit 1; }
python3 - "$w/trace.json" "$n" "$optimizer" <<'PY'
import collections, json, sys
path, ranks, optimizer = sys.argv[1], int(sys.argv[2]), sys.argv[3]
events = json.load(open(path))["traceEvents"]
names = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
assert names == {r: f"rank {r}" for r in range(ranks)}, names
inner = {"pack", "vote", "unpack", "wait for alltoall", "wait for allgather", "startAlltoall", "startAllgather", "holdsOnEveryRank"} \
    if optimizer.startswith("dlion") else {"allreduce(inPlace:)", "update"}
for rank in range(ranks):
    spans = sorted((e for e in events if e["ph"] == "X" and e["pid"] == rank), key=lambda e: (e["ts"], -e["dur"]))
    steps = [e for e in spans if e["name"] in ("data", "forward", "backward", "optimizer step")]
    assert [e["name"] for e in steps] == ["data", "forward", "backward", "optimizer step"] * 12, [e["name"] for e in steps][:8]
    for a, b in zip(steps, steps[1:]):
        assert a["ts"] + a["dur"] <= b["ts"] + 1e-3, f"rank {rank}: {a['name']} overlaps {b['name']}"
    optimizer_steps = [e for e in steps if e["name"] == "optimizer step"]
    found = collections.Counter()
    for e in spans:
        if e["name"] in inner:
            holder = [s for s in optimizer_steps if s["ts"] - 1e-3 <= e["ts"] and e["ts"] + e["dur"] <= s["ts"] + s["dur"] + 1e-3]
            # The trainer's own allreduces (loss reports, evaluations) are outside the steps.
            assert len(holder) == 1 or e["name"] == "allreduce(inPlace:)", f"rank {rank}: {e['name']} at {e['ts']} µs is in no optimizer step"
            found[e["name"]] += len(holder)
    assert set(found) == inner and all(found[k] >= 12 for k in inner), (rank, found)
print(f"trace ok: {ranks} ranks, {optimizer}, {len(events)} events")
PY
