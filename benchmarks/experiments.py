#!/usr/bin/env python3
"""The two papers' comparison on Fashion-MNIST with the default MLP, decided by seeds and intervals.

For every method at every rank count:

1. a learning-rate sweep on the tuning seed (--tune-seed, 0): the method's dlion-train default
   peak learning rate times each of --lr-factors (1/3, 1, 3, 9), the weight decay divided by the
   same factor, so that η·λ stays at the method's default (each method keeps its own relation
   between the two: the Lion family's smaller η and larger λ than AdamW's);
2. the factor with the best tuning-seed accuracy, run at every one of --seeds (1, 2, 3): seeds
   apart from the tuning one, so the reported numbers are not those the choice was made on;
3. where a claim's difference is within --close-margin (0.5) points of deciding it at those
   seeds, both of its rows run at --close-seeds (4, 5) as well.

At --control-ranks (5), an odd count where a majority vote has no ties, only the tie-policy
ablation runs: the control for its verdicts at the even counts.

Writes benchmarks/RESULTS.md (the table as mean ± standard deviation over seeds; each claim of
the papers with a paired 95 % interval, Student t over the seeds, of the difference that
decides it, and a verdict: "holds", "does not hold" or "not resolved at this noise"; the sweep
in an appendix; QSR.md, from qsr_study.py, as its QSR section) and benchmarks/accuracy-vs-bits.png
(matplotlib):

    benchmarks/with-matplotlib.sh benchmarks/experiments.py    # 4 and 8 ranks, 2 epochs a run

Finished runs are kept in benchmarks/results.json, keyed by the code version and every flag of
the run, so an interrupted comparison resumes where it stopped and a changed one never reuses
stale runs (--fresh starts over). benchmarks/results-discussion.md, written by a person after
reading a run, is appended to RESULTS.md.
"""
import argparse
import dataclasses
import hashlib
import json
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Method:
    """A row of the table: dlion-train flags and the defaults the sweep scales (dlion-train's own)."""
    name: str
    flags: tuple
    lr: float
    weight_decay: float
    warmup_share: float = None  # DGC: its sparsity warm-up as a share of the run's steps


LION = dict(lr=3e-4, weight_decay=0.1)
ADAMW = dict(lr=1e-3, weight_decay=0.01)
METHODS = [
    Method("Global AdamW", ("--optimizer", "global-adamw"), **ADAMW),
    Method("Global Lion", ("--optimizer", "global-lion"), **LION),
    Method("D-Lion (MaVo)", ("--optimizer", "dlion-mavo"), **LION),
    Method("D-Lion (MaVo), ties → 0", ("--optimizer", "dlion-mavo", "--tie-policy", "zero"), **LION),
    Method("D-Lion (Avg)", ("--optimizer", "dlion-avg"), **LION),
    Method("Local AdamW, H = 4", ("--optimizer", "local-adamw", "--sync-rule", "constant", "--h-base", "4"), **ADAMW),
    Method("Local AdamW, H ∝ 1/η", ("--optimizer", "local-adamw", "--sync-rule", "linear"), **ADAMW),
    Method("Local AdamW, QSR", ("--optimizer", "local-adamw", "--sync-rule", "qsr"), **ADAMW),
    Method("TernGrad", ("--optimizer", "terngrad"), **ADAMW),
    Method("GradDrop", ("--optimizer", "graddrop"), **ADAMW),
    # DGC's paper warms up over 4 of 90 epochs; a run of a few epochs is all warm-up at its
    # default of four epochs, so the warm-up here is a share of the run, the paper's and a longer one.
    Method("DGC, warm-up 4/90 of the run", ("--optimizer", "dgc"), lr=0.1, weight_decay=1e-4, warmup_share=4 / 90),
    Method("DGC, warm-up 1/4 of the run", ("--optimizer", "dgc"), lr=0.1, weight_decay=1e-4, warmup_share=1 / 4),
]
DGC_ROWS = [m.name for m in METHODS if m.warmup_share is not None]
TIE_ABLATION = ["D-Lion (MaVo)", "D-Lion (MaVo), ties → 0"]
BY_NAME = {m.name: m for m in METHODS}
# Two-sided 95 % quantiles of Student's t, by degrees of freedom.
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def code_version():
    """What the runs are built from: a digest of the committed Sources tree and Package.swift,
    plus one of any uncommitted change to them. A cached result never outlives the code that
    made it, and survives commits that touch only benchmarks or documents."""
    def git(*arguments):
        return subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True).stdout
    committed = git("rev-parse", "HEAD:Sources", "HEAD:Package.swift").strip() or "unknown"
    diff = git("diff", "HEAD", "--", "Sources", "Package.swift")
    version = "sources-" + hashlib.sha256(committed.encode()).hexdigest()[:12]
    return version + ("+" + hashlib.sha256(diff.encode()).hexdigest()[:12] if diff else "")


def platform():
    """The CPU and OpenBLAS kernel the runs compute on. The same code and flags round floats
    differently on another kernel (the runs are bit-reproducible on one platform only), so each
    run records it and RESULTS.md says where its runs came from."""
    import ctypes
    cpu = next((line.split(":", 1)[1].strip() for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    try:
        corename = ctypes.CDLL("libopenblas.so.0").openblas_get_corename
        corename.restype = ctypes.c_char_p
        kernel = corename().decode()
    except (OSError, AttributeError):
        kernel = "unknown"
    return f"{cpu}, OpenBLAS {kernel} kernels"


def platforms(summaries):
    """Which platforms `summaries` ran on, with how many runs each, as a sentence's clause."""
    counts = {}
    for summary in summaries:
        name = summary.get("platform", "a platform not recorded (runs before platforms were)")
        counts[name] = counts.get(name, 0) + 1
    return "; ".join(f"{count} on {name}" for name, count in sorted(counts.items(), key=lambda item: -item[1]))


PLATFORM = platform()


class Runs:
    """dlion-train runs, cached in a JSON file by every input that decides their result."""

    def __init__(self, path, fresh, epochs, steps):
        self.path = path
        self.version = code_version()
        cached = {} if fresh or not path.exists() else json.loads(path.read_text())
        # Runs of other code versions can never be used again.
        prefix = json.dumps([self.version])[:-1] + ","
        self.cache = {key: summary for key, summary in cached.items() if key.startswith(prefix)}
        self.epochs, self.steps = epochs, steps

    def get(self, method, factor, ranks, seed):
        """The summary of `method` at `factor` × its default learning rate, running it if needed."""
        flags = [*method.flags, "--lr", f"{method.lr * factor:.6g}", "--weight-decay", f"{method.weight_decay / factor:.6g}",
                 "--seed", str(seed), *(["--steps", str(self.steps)] if self.steps else ["--epochs", str(self.epochs)])]
        if method.warmup_share is not None:
            # Fashion-MNIST's 60 000 training images in dlion-train's 32 rows per rank.
            total = self.steps or self.epochs * (60_000 // (32 * ranks))
            flags += ["--dgc-warmup-steps", str(round(method.warmup_share * total))]
        key = json.dumps([self.version, flags, ranks])
        if key not in self.cache:
            self.cache[key] = self.run(method.name, flags, ranks)
            self.path.write_text(json.dumps(self.cache, indent=1))
        return self.cache[key]

    @staticmethod
    def run(name, flags, ranks):
        """One dlion-train run under mpirun; its summary, with the run's elapsed seconds."""
        metrics = pathlib.Path(f"/tmp/dlion-experiment-{ranks}-{hashlib.sha256(' '.join(flags).encode()).hexdigest()[:12]}.jsonl")
        command = [str(ROOT / "ci/mpirun"), "-np", str(ranks), str(ROOT / ".build/release/dlion-train"),
                   "--progress", "plain", "--metrics", str(metrics), *flags]
        print(f"== {name}, {ranks} ranks: {' '.join(flags)}", file=sys.stderr, flush=True)
        started = time.time()
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 and "training diverged" in result.stdout + result.stderr:
            # A sweep point too hot to train is a result (never the best), not a failure.
            print("   diverged", file=sys.stderr, flush=True)
            metrics.unlink(missing_ok=True)
            return {"diverged": True, "test_accuracy": 0.0, "elapsed_seconds": time.time() - started, "platform": PLATFORM}
        if result.returncode != 0:
            sys.exit(f"{name} at {ranks} ranks failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        summary = [json.loads(line) for line in metrics.read_text().splitlines() if '"summary"' in line][-1]
        metrics.unlink()
        summary["elapsed_seconds"] = time.time() - started
        summary["platform"] = PLATFORM
        print(f"   {100 * summary['test_accuracy']:.2f} % in {summary['elapsed_seconds']:.0f} s", file=sys.stderr, flush=True)
        return summary


def bits(summary, key="bytes_sent_per_rank"):
    """Bits per parameter per step, from a byte counter."""
    return 8 * summary[key] / summary["steps"] / summary["parameters"]


@dataclasses.dataclass
class Row:
    """A method at one rank count: the sweep on the tuning seed, then the best factor's seeds."""
    method: Method
    ranks: int
    sweep: dict  # factor → tuning-seed summary
    factor: float
    runs: list  # summaries at the best factor, one per seed, in --seeds order

    @property
    def accuracies(self):
        return [100 * r["test_accuracy"] for r in self.runs]

    @property
    def accuracy(self):
        return statistics.mean(self.accuracies)

    @property
    def spread(self):
        return statistics.stdev(self.accuracies) if len(self.runs) > 1 else 0.0

    def mean(self, field):
        return statistics.mean(r[field] for r in self.runs)

    @property
    def up(self):
        return statistics.mean(bits(r) for r in self.runs)

    @property
    def down(self):
        return statistics.mean(bits(r, "bytes_received_per_rank") for r in self.runs)


def paired_interval(a, b):
    """Mean and 95 % half-width of a − b over paired seeds (Student t), in accuracy points."""
    differences = [x - y for x, y in zip(a.accuracies, b.accuracies)]
    mean = statistics.mean(differences)
    if len(differences) < 2:
        return mean, float("inf")
    return mean, T95.get(len(differences) - 1, 1.96) * statistics.stdev(differences) / len(differences) ** 0.5


def seeds(a, b):
    """How many seeds a paired interval of rows a and b is over (the seeds both ran)."""
    return min(len(a.runs), len(b.runs))


def interval_text(mean, half):
    return f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}]"


def better_verdict(mean, half, margin=0.0):
    """Whether a − b > −margin: 'holds' when the whole interval is above −margin, 'does not hold'
    when it is all below, else not resolved."""
    if mean - half > -margin:
        return "holds"
    if mean + half < -margin:
        return "does not hold"
    return "not resolved at this noise"


def best_global(row):
    """The more accurate of the two global methods, the one D-Lion's first claim compares with."""
    return max(row["Global Lion"], row["Global AdamW"], key=lambda r: r.accuracy)


def claim_pairs(row):
    """Each claim's two rows (a, b) and the margin m that decides it (a − b > −m), where both exist."""
    pairs = []
    if "Global AdamW" in row and "Global Lion" in row:
        pairs.append(("D-Lion (MaVo)", best_global(row).method.name, 1.0))
    pairs += [("D-Lion (MaVo)", name, 0.0) for name in ["TernGrad", "GradDrop", *DGC_ROWS]]
    pairs += [("Local AdamW, QSR", "Local AdamW, H = 4", 0.0), ("Local AdamW, QSR", "Global AdamW", 0.0),
              ("D-Lion (MaVo), ties → 0", "D-Lion (MaVo)", 0.0)]
    return [(a, b, margin) for a, b, margin in pairs if a in row and b in row]


def claims(rows, ranks):
    """Each claim of the papers at `ranks`, with the interval that decides it."""
    row = {name: rows[(name, ranks)] for name in BY_NAME if (name, ranks) in rows}
    mavo, lines = row["D-Lion (MaVo)"], []
    if set(row) == set(TIE_ABLATION):
        return tie_ablation(row, ranks)
    best = best_global(row)
    mean, half = paired_interval(mavo, best)
    lines.append(f"- **{ranks} ranks — D-Lion (MaVo) within 1 point of the better global method, at ~1/30 of its bytes:** "
                 f"{better_verdict(mean, half, margin=1)}. MaVo − {best.method.name}: {interval_text(mean, half)} points over {seeds(mavo, best)} seeds; "
                 f"{best.mean('bytes_sent_per_rank') / mavo.mean('bytes_sent_per_rank'):.1f}× fewer bytes.")
    for name in ["TernGrad", "GradDrop", *DGC_ROWS]:
        other = row[name]
        mean, half = paired_interval(mavo, other)
        fewer = mavo.up < other.up
        accuracy = better_verdict(mean, half)
        verdict = ("holds" if fewer and accuracy == "holds" else
                   "does not hold" if not fewer or accuracy == "does not hold" else "not resolved at this noise")
        steady = ""
        if name in DGC_ROWS:
            steady = f" ({other.mean('dgc_steady_bits_per_parameter_step'):.3g} after its warm-up)" \
                if other.mean("dgc_steady_steps") > 0 else " (all of it in the warm-up)"
        lines.append(f"- **{ranks} ranks — D-Lion (MaVo) more accurate than {name} with fewer bits:** {verdict}. "
                     f"MaVo − {name}: {interval_text(mean, half)} points over {seeds(mavo, other)} seeds; {mavo.up:.3g} against {other.up:.3g} bits sent per "
                     f"parameter per step{steady}.")
    qsr, constant, adamw = row["Local AdamW, QSR"], row["Local AdamW, H = 4"], row["Global AdamW"]
    mean, half = paired_interval(qsr, constant)
    fewer = qsr.mean("synchronizations") < constant.mean("synchronizations")
    verdict = better_verdict(mean, half) if fewer else "does not hold"
    lines.append(f"- **{ranks} ranks — QSR more accurate than constant H = 4 with fewer synchronizations:** {verdict}. "
                 f"QSR − H = 4: {interval_text(mean, half)} points over {seeds(qsr, constant)} seeds; {qsr.mean('synchronizations'):.0f} against "
                 f"{constant.mean('synchronizations'):.0f} synchronizations.")
    mean, half = paired_interval(qsr, adamw)
    ratio = adamw.mean("bytes_sent_per_rank") / qsr.mean("bytes_sent_per_rank")
    verdict = better_verdict(mean, half) if ratio >= 5 else "does not hold"
    lines.append(f"- **{ranks} ranks — QSR at least as accurate as data-parallel AdamW with ≥ 5× fewer bytes:** {verdict}. "
                 f"QSR − Global AdamW: {interval_text(mean, half)} points over {seeds(qsr, adamw)} seeds; {ratio:.1f}× fewer bytes.")
    return lines + tie_ablation(row, ranks)


def tie_ablation(row, ranks):
    """sign(Σ) = 0 on ties against a random tie-break; at an odd rank count there are no ties."""
    zero, random = row["D-Lion (MaVo), ties → 0"], row["D-Lion (MaVo)"]
    mean, half = paired_interval(zero, random)
    if mean == 0 and half == 0:
        resolved = "identical runs, seed by seed (a vote that cannot tie leaves the policy nothing to change)"
    elif abs(mean) <= half:
        resolved = "not resolved at this noise"
    else:
        resolved = "zero ties better" if mean > 0 else "random ties better"
    parity = "even: ties happen" if ranks % 2 == 0 else "odd: no ties, a control"
    return [f"- **{ranks} ranks ({parity}) — ablation, ties → 0 against a random tie-break:** {resolved}. "
            f"Zero − random: {interval_text(mean, half)} points over {seeds(zero, random)} seeds; "
            f"{zero.up:.3g} against {random.up:.3g} bits sent per parameter per step."]


def plot(rows, ranks_list, path):
    """Test accuracy (mean ± std over seeds) against bits sent per parameter per step, log scale."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(11, 5.5))
    markers = dict(zip(ranks_list, "osD^v"))
    tab20 = plt.get_cmap("tab20").colors
    colours = tab20[0::2] + tab20[1::2]  # ten strong colours, then their light twins
    for index, method in enumerate(METHODS):
        for ranks in ranks_list:
            row = rows.get((method.name, ranks))
            if row is None:
                continue
            axis.errorbar(row.up, row.accuracy, yerr=row.spread, marker=markers[ranks], color=colours[index % len(colours)],
                          capsize=3, linestyle="none", label=method.name if ranks == ranks_list[0] else None)
    axis.set_xscale("log")
    axis.set_xlabel("bits sent per parameter per step (log scale)")
    axis.set_ylabel("test accuracy (%), mean ± std over seeds")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    if len(ranks_list) > 1:
        axis.set_title("markers: " + ", ".join(f"{markers[r]} {r} ranks" for r in ranks_list))
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def report(rows, args, started):
    """RESULTS.md: the protocol, the table, the claims and the sweep."""
    budget = f"{args.steps} steps" if args.steps else f"{args.epochs} epochs"
    used = [summary for row in rows.values() for summary in [*row.sweep.values(), *row.runs]]
    compute = sum(summary["elapsed_seconds"] for summary in used)
    command = "benchmarks/experiments.py " + " ".join(sys.argv[1:])
    lines = ["# Results: Distributed Lion, Local AdamW with QSR, and their baselines", "",
             f"Fashion-MNIST, MLP 784-1024-1024-10, 32 rows per rank, {budget} per run, cosine schedule with 100 warm-up "
             f"steps. Each method's peak learning rate η is its dlion-train default times the best of "
             f"{', '.join(f'{f:.3g}' for f in args.lr_factors)} on seed {args.tune_seed} (the weight decay λ divided by the "
             f"same factor, so η·λ stays at the method's default); the table reports that setting over seeds "
             f"{', '.join(map(str, args.seeds))}, apart from the tuning seed"
             + (f", and over {', '.join(map(str, args.close_seeds))} too for both rows of a claim whose difference was "
                f"within {args.close_margin:g} points of deciding it (the *seeds* column)" if args.close_seeds else "")
             + (f"; at {', '.join(map(str, args.control_ranks))} ranks only the tie-policy ablation runs, the odd-rank "
                "control where a vote never ties" if args.control_ranks else "")
             + f". Made by `{command.strip()}` on this "
             f"project's 2-core machine (ranks oversubscribed), so wall times compare methods, not hardware; "
             f"the runs in this table took {compute / 3600:.1f} hours of machine time "
             f"({(time.time() - started) / 60:.0f} minutes in this invocation, the rest cached). Runs by platform: "
             f"{platforms(used)}.", "",
             "Bits are measured by the communicator's byte counters: *up* is what each rank sends, *down* what it receives, "
             "per parameter per step (fp32 ring allreduce: 2·(N−1)/N·32 each way). Synchronizations: rounds of communication "
             "(every step, except for Local AdamW). Intervals are paired by seed (the same seed gives every method the same "
             "initialization and data order): mean difference [95 % interval], Student t with seeds − 1 degrees of freedom.", "",
             "| method | ranks | η (×default) | seeds | test accuracy (%) | bits/param/step up | down | bytes sent per rank | synchronizations | wall (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    every_ranks = [*args.ranks, *args.control_ranks]
    present = [(method, ranks) for ranks in every_ranks for method in METHODS if (method.name, ranks) in rows]
    for method, ranks in present:
        row = rows[(method.name, ranks)]
        lines.append(f"| {method.name} | {ranks} | {method.lr * row.factor:.3g} (×{row.factor:.3g}) | {len(row.runs)} | "
                     f"{row.accuracy:.2f} ± {row.spread:.2f} | {row.up:.3g} | {row.down:.3g} | "
                     f"{row.mean('bytes_sent_per_rank') / 2**20:.1f} MiB | {row.mean('synchronizations'):.0f} | "
                     f"{row.mean('wall_seconds'):.0f} |")
    lines += ["", "![test accuracy against bits per parameter per step](accuracy-vs-bits.png)", "", "## The claims, checked", ""]
    for ranks in every_ranks:
        lines += claims(rows, ranks)
    lines += ["", f"## Appendix: the learning-rate sweep (seed {args.tune_seed}, test accuracy %)", "",
              "| method | ranks | " + " | ".join(f"η × {f:.3g}" for f in args.lr_factors) + " |",
              "|---|---|" + "---|" * len(args.lr_factors)]
    for method, ranks in present:
        row = rows[(method.name, ranks)]
        cells = ["diverged" if row.sweep[f].get("diverged") else
                 f"**{100 * row.sweep[f]['test_accuracy']:.2f}**" if f == row.factor else f"{100 * row.sweep[f]['test_accuracy']:.2f}"
                 for f in args.lr_factors]
        lines.append(f"| {method.name} | {ranks} | " + " | ".join(cells) + " |")
    qsr = ROOT / "benchmarks/QSR.md"
    if qsr.exists():
        lines += ["", "## QSR in its regime: a long schedule (benchmarks/qsr_study.py)", "", qsr.read_text().strip()]
    discussion = ROOT / "benchmarks/results-discussion.md"
    if discussion.exists():
        lines += ["", discussion.read_text().strip()]
    return "\n".join(lines) + "\n"


def build():
    """dlion-train in release, as the runs use it."""
    subprocess.run(["swift", "build", "-c", "release", "--product", "dlion-train"], cwd=ROOT, check=True, capture_output=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="the seeds the table reports")
    parser.add_argument("--close-seeds", type=int, nargs="*", default=[4, 5], help="added to both rows of a close claim")
    parser.add_argument("--close-margin", type=float, default=0.5,
                        help="points: a claim whose difference is this close to deciding it gets --close-seeds")
    parser.add_argument("--control-ranks", type=int, nargs="*", default=[5],
                        help="rank counts that run only the tie-policy ablation (odd: no ties)")
    parser.add_argument("--tune-seed", type=int, default=0, help="the seed the learning-rate sweep runs on")
    parser.add_argument("--lr-factors", type=float, nargs="+", default=[1 / 3, 1, 3, 9])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, help="a fixed step count instead of epochs (smoke tests)")
    parser.add_argument("--methods", nargs="+", help="only these methods (names as in the table)")
    parser.add_argument("--fresh", action="store_true", help="forget finished runs")
    parser.add_argument("--out", default=str(ROOT / "benchmarks"))
    args = parser.parse_args()
    if args.tune_seed in args.seeds + args.close_seeds:
        sys.exit(f"the tuning seed {args.tune_seed} is among --seeds: report on seeds the sweep did not choose on")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    build()
    started = time.time()
    runs = Runs(out / "results.json", args.fresh, args.epochs, args.steps)
    methods = [BY_NAME[name] for name in args.methods] if args.methods else METHODS
    rows = {}
    for ranks in [*args.ranks, *args.control_ranks]:
        for method in methods if ranks in args.ranks else [BY_NAME[name] for name in TIE_ABLATION]:
            sweep = {f: runs.get(method, f, ranks, args.tune_seed) for f in args.lr_factors}
            factor = max(args.lr_factors, key=lambda f: sweep[f]["test_accuracy"])
            rows[(method.name, ranks)] = Row(method, ranks, sweep, factor, [runs.get(method, factor, ranks, s) for s in args.seeds])
        # A claim within the margin of being decided gets more seeds on both of its rows.
        row = {name: rows[(name, ranks)] for name in BY_NAME if (name, ranks) in rows}
        for a, b, margin in claim_pairs(row):
            mean, _ = paired_interval(row[a], row[b])
            if abs(mean + margin) < args.close_margin:
                for close in (row[a], row[b]):
                    close.runs = [runs.get(close.method, close.factor, ranks, s) for s in args.seeds + args.close_seeds]
    if args.methods:
        print("ran the chosen methods; RESULTS.md needs them all", file=sys.stderr)
        return
    (out / "RESULTS.md").write_text(report(rows, args, started))
    plot(rows, args.ranks, out / "accuracy-vs-bits.png")
    print(f"wrote {out / 'RESULTS.md'} and {out / 'accuracy-vs-bits.png'}", file=sys.stderr)


if __name__ == "__main__":
    main()
