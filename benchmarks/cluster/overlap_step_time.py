#!/usr/bin/env python3
"""Distributed Lion's step time with and without overlapping its exchange with backward, on
an emulated cluster at a slow link rate and on unshaped links.

    python3 benchmarks/cluster/overlap_step_time.py                      # 4 × 4, 100mbit vs unlimited, 3 rounds
    python3 benchmarks/cluster/overlap_step_time.py --rates 1gbit unlimited --rounds 5

Each round runs every (link rate, overlap) pair once, one after the other, so that the VM's
drift falls on every configuration alike; the table gives the median over the rounds of the
step time, which is rank 0's data + forward/backward + optimizer seconds over the steps (the
final evaluation is left out), and the optimizer's share of it. The target of issue #12 is a
step at the slow rate, with overlap, within 1.25× of the step on unshaped links.

It writes the table into benchmarks/CLUSTER.md between the markers of --section and prints it.
Needs root (the emulated cluster) and a release build (swift build -c release).
"""
import argparse
import json
import pathlib
import shlex
import statistics
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
REPORT = ROOT / "benchmarks/CLUSTER.md"


def run(rate, overlap, args):
    """One short dlion-train run; its summary line."""
    with tempfile.TemporaryDirectory() as work:
        metrics = pathlib.Path(work) / "metrics.jsonl"
        command = [str(HERE / "cluster.sh"), "--hosts", str(args.hosts), "--slots", str(args.slots), "--rate", rate, "--",
                   *args.mpirun_flags, "-np", str(args.hosts * args.slots), str(ROOT / ".build/release/dlion-train"), "--progress", "plain",
                   "--optimizer", args.optimizer, "--steps", str(args.steps), "--metrics", str(metrics),
                   "--overlap" if overlap else "--no-overlap", *args.train_flags]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"run at {rate} (overlap {overlap}) failed, exit {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        return [json.loads(line) for line in metrics.read_text().splitlines() if '"summary"' in line][-1]


def step_seconds(summary):
    """Seconds per training step on rank 0, evaluations left out."""
    return (summary["data_seconds"] + summary["forward_backward_seconds"] + summary["optimizer_seconds"]) / summary["steps"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--rates", nargs=2, default=["100mbit", "unlimited"], metavar=("SLOW", "BASELINE"))
    parser.add_argument("--optimizer", default="dlion-mavo")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--section", default="overlap")
    parser.add_argument("--train-flags", type=shlex.split, default=[],
                        help="more dlion-train flags, one string (--train-flags='--bucket-length 262144')")
    parser.add_argument("--mpirun-flags", type=shlex.split, default=[], help="more mpirun flags before -np, one string")
    args = parser.parse_args()

    runs = {}
    for round_index in range(args.rounds):
        for rate in args.rates:
            for overlap in (True, False):
                summary = run(rate, overlap, args)
                runs.setdefault((rate, overlap), []).append(summary)
                print(f"round {round_index + 1}: {rate:>9} overlap {'on ' if overlap else 'off'} "
                      f"{1e3 * step_seconds(summary):7.1f} ms/step", file=sys.stderr, flush=True)
    losses = {tuple(round(s["test_loss"], 12) for s in v) for v in runs.values()}

    slow, baseline = args.rates
    median = {key: statistics.median(step_seconds(s) for s in value) for key, value in runs.items()}
    optimizer_share = {key: statistics.median(s["optimizer_seconds"] / s["steps"] for s in value) for key, value in runs.items()}
    start, end = f"<!-- {args.section}:start -->", f"<!-- {args.section}:end -->"
    extra = " " + " ".join(args.train_flags) if args.train_flags else ""
    lines = [start, "",
             f"{args.optimizer} on {args.hosts} hosts × {args.slots} ranks, {args.steps} steps of the default MLP on "
             f"Fashion-MNIST{' with' + extra if extra else ''}, medians of {args.rounds} interleaved rounds. Command: "
             f"`python3 benchmarks/cluster/overlap_step_time.py --hosts {args.hosts} --slots {args.slots} "
             f"--rates {slow} {baseline} --steps {args.steps} --rounds {args.rounds}"
             + (f" --train-flags='{extra.strip()}'" if extra else "")
             + (f" --mpirun-flags='{' '.join(args.mpirun_flags)}'" if args.mpirun_flags else "") + "`.", "",
             "| link | overlap | step ms (median) | optimizer ms of it | rounds (ms) | vs the same on " + baseline + " links |",
             "|---|---|---|---|---|---|"]
    for rate in args.rates:
        for overlap in (True, False):
            key = (rate, overlap)
            each = ", ".join(f"{1e3 * step_seconds(s):.0f}" for s in runs[key])
            ratio = median[key] / median[(baseline, overlap)]
            lines.append(f"| {rate} | {'on' if overlap else 'off'} | {1e3 * median[key]:.1f} | {1e3 * optimizer_share[key]:.1f} "
                         f"| {each} | {ratio:.2f}× |")
    best_baseline = min(median[(baseline, True)], median[(baseline, False)])
    target = median[(slow, True)] / best_baseline
    lines += ["",
              f"With overlap, a step at {slow} takes {target:.2f}× the faster of the two steps on {baseline} links "
              f"(target ≤ 1.25×: {'met' if target <= 1.25 else 'not met'}; "
              f"{median[(slow, True)] / median[(baseline, True)]:.2f}× the overlapped one). Overlap changes the {slow} step by "
              f"{median[(slow, False)] / median[(slow, True)]:.2f}× (off ÷ on) and the {baseline} step by "
              f"{median[(baseline, False)] / median[(baseline, True)]:.2f}×. "
              f"Every run ended with the same test loss: {'yes' if len(losses) == 1 else 'no'}.", "", end]
    section = "\n".join(lines)
    print(section)
    text = REPORT.read_text()
    if start in text and end in text:
        REPORT.write_text(text[:text.index(start)] + section + text[text.index(end) + len(end):])
    else:
        print(f"(no {args.section} markers in {REPORT}: add them where the table belongs)", file=sys.stderr)


if __name__ == "__main__":
    main()
