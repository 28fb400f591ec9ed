#!/usr/bin/env python3
"""Time to accuracy on an emulated cluster: every optimizer of benchmarks/experiments.py on
HOSTS × SLOTS ranks at each link rate, trained on Fashion-MNIST for the same budget.

    benchmarks/cluster/time-to-accuracy.sh                              # 4 × 4, 100mbit 1gbit 10gbit, 2 epochs
    benchmarks/cluster/time-to-accuracy.sh --rates 1gbit --methods "D-Lion (MaVo)" "Global AdamW"
    benchmarks/cluster/time-to-accuracy.sh --section longer-budget --epochs 6 --reference-epochs 2 --methods "D-Lion (MaVo)"

Each run's evaluations carry the seconds since training started and the bytes sent so far,
so the script reads, per method and link rate, the wall time until test accuracy first
reached (a) Global AdamW's final accuracy at that rate and (b) the fixed --target, the wall
time of the whole budget, the final accuracy and the bytes per rank. It writes the table into
benchmarks/CLUSTER.md (between the markers of its --section) and plots test accuracy against
wall-clock seconds, one line per method and one panel per link rate, with matplotlib, into
benchmarks/cluster-SECTION.png. With --reference-epochs, Global AdamW keeps that budget while
the other methods train for --epochs, to time methods that need longer to reach its accuracy.

Finished runs are kept in benchmarks/cluster/time-to-accuracy.json, keyed by the code version
and every setting, so an interrupted comparison resumes and a changed one reruns; the code
version digests the sources, so a commit to documents or benchmarks keeps them. --cached-only
rewrites the section and plot from those runs alone.
"""
import argparse
import json
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from experiments import METHODS, code_version  # noqa: E402

CACHE = HERE / "time-to-accuracy.json"
REPORT = ROOT / "benchmarks/CLUSTER.md"


def markers(section):
    """The comments that enclose a section's text in CLUSTER.md."""
    return f"<!-- {section}:start -->", f"<!-- {section}:end -->"


def plot_path(section):
    """Where a section's plot goes."""
    return ROOT / f"benchmarks/cluster-{section}.png"


def epochs_of(method, args):
    """The budget of `method`: Global AdamW's own with --reference-epochs."""
    return args.reference_epochs if method == "Global AdamW" else args.epochs


def run(method, flags, rate, args):
    """One dlion-train run on the emulated cluster; its evaluations and summary."""
    metrics = pathlib.Path(f"/tmp/dlion-tta-{rate}-{abs(hash(method))}.jsonl")
    ranks = args.hosts * args.slots
    command = [str(HERE / "cluster.sh"), "--hosts", str(args.hosts), "--slots", str(args.slots), "--rate", rate, "--",
               "-np", str(ranks), str(ROOT / ".build/release/dlion-train"), "--progress", "plain",
               "--metrics", str(metrics), "--seed", str(args.seed), "--epochs", str(epochs_of(method, args)),
               "--eval-interval", str(args.eval_interval), *flags]
    print(f"== {method} at {rate}", file=sys.stderr, flush=True)
    started = time.time()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{method} at {rate} failed (exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    events = [json.loads(line) for line in metrics.read_text().splitlines()]
    metrics.unlink()
    summary = [e for e in events if e["event"] == "summary"][-1]
    evaluations = [{"seconds": e["seconds"], "accuracy": 100 * e["test_accuracy"], "bytes": e["bytes_sent_per_rank"]}
                   for e in events if e["event"] == "eval"]
    print(f"   {100 * summary['test_accuracy']:.2f} % in {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    return {"evaluations": evaluations, "wall": summary["wall_seconds"], "accuracy": 100 * summary["test_accuracy"],
            "bytes": summary["bytes_sent_per_rank"], "syncs": summary["synchronizations"], "steps": summary["steps"]}


def first_reaching(result, target):
    """The first evaluation at or above target accuracy, or None."""
    return next((e for e in result["evaluations"] if e["accuracy"] >= target - 1e-9), None)


def table(results, rates, methods, args, version):
    """The markdown section: one table per link rate."""
    start, end = markers(args.section)
    budget, longer = f"{args.epochs} epochs", ""
    if args.reference_epochs != args.epochs:
        budget += f" (Global AdamW {args.reference_epochs})"
        longer = f" --reference-epochs {args.reference_epochs}"
    chosen = [m for m in methods if m != "Global AdamW"]
    named = "" if set(methods) == {m.name for m in METHODS} else " --methods " + " ".join(f"'{m}'" for m in chosen)
    lines = [start, "",
             f"{args.hosts} hosts × {args.slots} ranks, {budget} of Fashion-MNIST with the default MLP, "
             f"seed {args.seed}, an evaluation every {args.eval_interval} steps (its time is part of the wall time, "
             "the same for every method). One seed: a first look, not a verdict. Command: "
             f"`benchmarks/cluster/time-to-accuracy.sh --section {args.section} --hosts {args.hosts} --slots {args.slots} "
             f"--epochs {args.epochs}{longer} --rates {' '.join(rates)}{named}`, "
             f"code {version}.", ""]
    for rate in rates:
        adamw = results[(rate, "Global AdamW")]
        goal = adamw["accuracy"]
        reference = first_reaching(adamw, goal)["seconds"]
        lines += [f"### {rate}", "",
                  f"| method | to {args.target:.0f} % (s) | to Global AdamW's {goal:.2f} % (s) | sooner than Global AdamW "
                  "| whole budget (s) | final accuracy | MiB sent per rank | synchronizations |",
                  "|---|---|---|---|---|---|---|---|"]
        for method in methods:
            r = results[(rate, method)]
            fixed, reached = first_reaching(r, args.target), first_reaching(r, goal)
            best = max(e["accuracy"] for e in r["evaluations"])
            cells = [method, f"{fixed['seconds']:.1f}" if fixed else "not reached",
                     f"{reached['seconds']:.1f}" if reached else f"not reached (best {best:.2f} %)",
                     f"{reference / reached['seconds']:.1f}×" if reached else "-",
                     f"{r['wall']:.1f}", f"{r['accuracy']:.2f} %", f"{r['bytes'] / 2**20:.1f}", str(r["syncs"])]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += [f"![test accuracy against wall-clock seconds]({plot_path(args.section).name})", "", end]
    return "\n".join(lines)


def plot(results, rates, methods, path):
    """Test accuracy against wall-clock seconds: one panel per link rate, one line per method."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(1, len(rates), figsize=(5 * len(rates), 4.2), sharey=True, squeeze=False)
    for axis, rate in zip(axes[0], rates):
        for method in methods:
            r = results[(rate, method)]
            axis.plot([e["seconds"] for e in r["evaluations"]], [e["accuracy"] for e in r["evaluations"]],
                      marker=".", label=method)
        axis.set_xscale("log")
        axis.set_title(f"links at {rate}")
        axis.set_xlabel("wall-clock seconds (log)")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", nargs="+", default=["100mbit", "1gbit", "10gbit"])
    parser.add_argument("--methods", nargs="+", default=[m.name for m in METHODS], help="names as in experiments.py")
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--reference-epochs", type=int, help="Global AdamW's budget (default: --epochs)")
    parser.add_argument("--section", default="time-to-accuracy", help="names the table's markers in CLUSTER.md and the plot")
    parser.add_argument("--eval-interval", type=int, default=26)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=80.0, help="the fixed target accuracy in percent")
    parser.add_argument("--cached-only", action="store_true",
                        help="rewrite the section and plot from finished runs; fail instead of running a missing one")
    args = parser.parse_args()
    args.reference_epochs = args.reference_epochs or args.epochs
    flags = {m.name: list(m.flags) for m in METHODS}  # each at its dlion-train defaults
    unknown = [m for m in args.methods if m not in flags]
    if unknown:
        sys.exit(f"unknown methods {unknown}; choose from {list(flags)}")
    if "Global AdamW" not in args.methods:
        args.methods.append("Global AdamW")  # the reference every other method is timed against
    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    version = code_version()
    results = {}
    for rate in args.rates:
        for method in args.methods:
            key = json.dumps([version, flags[method], rate, args.hosts, args.slots, epochs_of(method, args), args.eval_interval, args.seed])
            if key not in cache and args.cached_only:
                sys.exit(f"no finished run of {method} at {rate} for code {version}; run without --cached-only")
            if key not in cache:
                cache[key] = run(method, flags[method], rate, args)
                CACHE.write_text(json.dumps(cache, indent=1))
            results[(rate, method)] = cache[key]
    section = table(results, args.rates, args.methods, args, version)
    start, end = markers(args.section)
    text = REPORT.read_text()
    if start in text:
        text = text[:text.index(start)] + section + text[text.index(end) + len(end):]
    else:
        text += f"\n## {args.section}\n\n" + section + "\n"
    REPORT.write_text(text)
    plot(results, args.rates, args.methods, plot_path(args.section))
    print(section)


if __name__ == "__main__":
    main()
