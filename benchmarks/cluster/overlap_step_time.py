#!/usr/bin/env python3
"""Distributed Lion's step time with and without overlapping its exchange with backward, on
an emulated cluster at a slow link rate and on unshaped links.

    python3 benchmarks/cluster/overlap_step_time.py                      # 4 × 4, 100mbit vs unlimited, 3 rounds
    python3 benchmarks/cluster/overlap_step_time.py --rates 1gbit unlimited --rounds 5
    python3 benchmarks/cluster/overlap_step_time.py --vary exchange --section node-aware   # node-aware vs flat

Each round runs every (link rate, overlap) pair (or with --vary exchange, every pair of link rate
and exchange shape, with overlap) once, one after the other, so that the VM's
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


# What a round varies besides the link rate: each variant's label and its dlion-train flags.
VARIANTS = {
    "overlap": [("on", ["--overlap"]), ("off", ["--no-overlap"])],
    "exchange": [("node-aware", ["--exchange", "node-aware"]), ("flat", ["--exchange", "flat"])],
}


def run(rate, variant, args):
    """One short dlion-train run with `variant`'s flags; its summary line."""
    with tempfile.TemporaryDirectory() as work:
        metrics = pathlib.Path(work) / "metrics.jsonl"
        command = [str(HERE / "cluster.sh"), "--hosts", str(args.hosts), "--slots", str(args.slots), "--rate", rate, "--",
                   *args.mpirun_flags, "-np", str(args.hosts * args.slots), str(ROOT / ".build/release/dlion-train"), "--progress", "plain",
                   "--optimizer", args.optimizer, "--steps", str(args.steps), "--metrics", str(metrics),
                   *variant, *args.train_flags]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"run at {rate} ({' '.join(variant)}) failed, exit {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
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
    parser.add_argument("--vary", choices=list(VARIANTS), default="overlap",
                        help="what each round varies besides the rate: overlap on and off, or the exchange's shape "
                             "(node-aware and flat, with overlap)")
    parser.add_argument("--mpirun-flags", type=shlex.split, default=[], help="more mpirun flags before -np, one string")
    args = parser.parse_args()

    runs = {}
    for round_index in range(args.rounds):
        for rate in args.rates:
            for label, flags in VARIANTS[args.vary]:
                summary = run(rate, flags, args)
                runs.setdefault((rate, label), []).append(summary)
                print(f"round {round_index + 1}: {rate:>9} {args.vary} {label:>10} "
                      f"{1e3 * step_seconds(summary):7.1f} ms/step", file=sys.stderr, flush=True)
    losses = {tuple(round(s["test_loss"], 12) for s in v) for v in runs.values()}

    slow, baseline = args.rates
    (first, _), (second, _) = VARIANTS[args.vary]
    median = {key: statistics.median(step_seconds(s) for s in value) for key, value in runs.items()}
    optimizer_share = {key: statistics.median(s["optimizer_seconds"] / s["steps"] for s in value) for key, value in runs.items()}
    start, end = f"<!-- {args.section}:start -->", f"<!-- {args.section}:end -->"
    extra = " " + " ".join(args.train_flags) if args.train_flags else ""
    lines = [start, "",
             f"{args.optimizer} on {args.hosts} hosts × {args.slots} ranks, {args.steps} steps of the default MLP on "
             f"Fashion-MNIST{' with' + extra if extra else ''}, medians of {args.rounds} interleaved rounds. Command: "
             f"`python3 benchmarks/cluster/overlap_step_time.py --hosts {args.hosts} --slots {args.slots} "
             f"--rates {slow} {baseline} --steps {args.steps} --rounds {args.rounds}"
             + (f" --vary {args.vary}" if args.vary != "overlap" else "")
             + (f" --section {args.section}" if args.section != "overlap" else "")
             + (f" --train-flags='{extra.strip()}'" if extra else "")
             + (f" --mpirun-flags='{' '.join(args.mpirun_flags)}'" if args.mpirun_flags else "") + "`.", "",
             f"| link | {args.vary} | step ms (median) | optimizer ms of it | rounds (ms) | vs the same on " + baseline + " links |",
             "|---|---|---|---|---|---|"]
    for rate in args.rates:
        for label, _ in VARIANTS[args.vary]:
            key = (rate, label)
            each = ", ".join(f"{1e3 * step_seconds(s):.0f}" for s in runs[key])
            ratio = median[key] / median[(baseline, label)]
            lines.append(f"| {rate} | {label} | {1e3 * median[key]:.1f} | {1e3 * optimizer_share[key]:.1f} "
                         f"| {each} | {ratio:.2f}× |")
    best_baseline = min(median[(baseline, first)], median[(baseline, second)])
    target = median[(slow, first)] / best_baseline
    lines += ["",
              f"With {args.vary} {first}, a step at {slow} takes {target:.2f}× the faster of the two steps on {baseline} links "
              f"(target ≤ 1.25×: {'met' if target <= 1.25 else 'not met'}; "
              f"{median[(slow, first)] / median[(baseline, first)]:.2f}× the {first} one). {second} ÷ {first}: "
              f"{median[(slow, second)] / median[(slow, first)]:.2f}× at {slow}, "
              f"{median[(baseline, second)] / median[(baseline, first)]:.2f}× on {baseline} links. "
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
