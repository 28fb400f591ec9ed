#!/usr/bin/env python3
"""The two papers' comparison, decided by seeds and intervals, in two studies: the default MLP on
Fashion-MNIST (test accuracy) and dlion-train's default GPT on Debian's fortunes (validation loss,
nats per character).

For every method at every rank count of a study:

1. a learning-rate sweep on the tuning seed (--tune-seed, 0): the method's dlion-train default
   peak learning rate times each of the study's factors (MLP --lr-factors 1/3, 1, 3, 9; GPT
   --gpt-lr-factors 1/3, 1, 3), the weight decay divided by the same factor, so that η·λ stays at
   the method's default (each method keeps its own relation between the two: the Lion family's
   smaller η and larger λ than AdamW's); while the best factor is at an edge of the grid, the
   grid grows by ×3 past that edge (up to --widen, 2, times), so the choice is bracketed;
2. the best factor on the tuning seed, run at every one of --seeds (1, 2, 3): seeds apart from
   the tuning one, so the reported numbers are not those the choice was made on;
3. where a claim's difference is within the study's close margin of deciding it at those seeds
   (MLP --close-margin 0.5 points, GPT --gpt-close-margin 0.01 nats/char), both of its rows run
   at --close-seeds (4, 5) as well.

The MLP runs 2 epochs (--epochs) at 4 and 8 ranks (--ranks), and at --control-ranks (5), an odd
count where a majority vote has no ties, only the tie-policy ablation: the control for its
verdicts at the even counts. The GPT runs 2 Mi training characters over all ranks (--gpt-tokens:
the same data at every rank count, about one pass over the text) at 4, 8 and 16 ranks
(--gpt-ranks), with the same methods; D-Lion's first claim there is "within 0.02 nats per
character of the better global method" (--gpt-within), the MLP's "within 1 point". A third study,
gpt-long, runs that claim's three methods with 4× the characters at 16 ranks (--gpt-long-ranks),
to see whether a verdict of the short budget holds in a longer one.

Writes benchmarks/RESULTS.md (each study's table as mean ± standard deviation over seeds; each
claim of the papers with a paired 95 % interval, Student t over the seeds, of the difference that
decides it, and a verdict: "holds", "does not hold" or "not resolved at this noise"; the sweeps;
QSR.md, from qsr_study.py, as its QSR section) and the plots accuracy-vs-bits.png and
gpt-loss-vs-bits.png (matplotlib):

    benchmarks/with-matplotlib.sh benchmarks/experiments.py    # every study, about 3.5 hours from nothing

Finished runs are kept in benchmarks/results.json (MLP), gpt-results.json and
gpt-long-results.json, keyed by the code version and every flag of the run, so an interrupted
comparison resumes where it stopped and a changed one never reuses stale runs (--fresh starts
over; --studies runs only the named studies' missing runs). benchmarks/results-discussion.md, written by a person after reading a run, is appended
to RESULTS.md.
"""
import argparse
import dataclasses
import hashlib
import json
import math
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


@dataclasses.dataclass(frozen=True)
class Metric:
    """What a study scores a run by: a field of dlion-train's summary, scaled for the table."""
    field: str
    scale: float
    higher_is_better: bool
    label: str  # a column or axis title
    unit: str  # of a difference
    digits: int  # decimals in the tables
    better: str  # how a claim says "better": "more accurate", "lower in validation loss"

    def value(self, summary):
        """The run's score in the table's units; None for a run that diverged."""
        return None if summary.get("diverged") else self.scale * summary[self.field]

    def rank(self, summary):
        """A sort key, larger for a better run, a diverged one the worst."""
        value = self.value(summary)
        return -math.inf if value is None else self.oriented(value)

    def oriented(self, difference):
        """a − b as "how much better a is": the difference itself, or its negative for a loss."""
        return difference if self.higher_is_better else -difference

    def text(self, value, signed=False):
        return f"{value:{'+' if signed else ''}.{self.digits}f}"


ACCURACY = Metric("test_accuracy", 100, True, "test accuracy (%)", "points", 2, "more accurate")
LOSS = Metric("test_loss", 1, False, "validation loss (nats/char)", "nats/char", 3, "lower in validation loss")
# GPT: dlion-train's default of 8 windows of 64 characters per rank, so a step's tokens are 512 × ranks.
GPT_TOKENS_PER_RANK_STEP = 8 * 64


@dataclasses.dataclass(frozen=True)
class Budget:
    """How long every run of a study trains, as dlion-train flags and a step count by rank count:
    Fashion-MNIST epochs (60 000 images in 32 rows per rank), a fixed step count (smoke tests),
    or GPT training tokens over all ranks, with the warm-up 10 % of the steps."""
    epochs: int = None
    steps: int = None
    tokens: int = None

    def steps_at(self, ranks):
        if self.steps:
            return self.steps
        if self.tokens:
            return self.tokens // (GPT_TOKENS_PER_RANK_STEP * ranks)
        return self.epochs * (60_000 // (32 * ranks))

    def flags(self, ranks):
        if self.tokens and not self.steps:
            steps = self.steps_at(ranks)
            return ["--steps", str(steps), "--warmup-steps", str(steps // 10)]
        return ["--steps", str(self.steps)] if self.steps else ["--epochs", str(self.epochs)]

    def text(self, ranks_list):
        if self.steps:
            return f"{self.steps} steps per run"
        if self.tokens:
            steps = ", ".join(f"{self.steps_at(r)} at {r}" for r in ranks_list)
            return f"{self.tokens / 2**20:g} Mi training characters per run (steps: {steps} ranks; warm-up 10 % of them)"
        return f"{self.epochs} epochs per run, 100 warm-up steps"


class Runs:
    """dlion-train runs, cached in a JSON file by every input that decides their result."""

    def __init__(self, path, fresh, budget, model_flags=()):
        self.path = path
        self.version = code_version()
        cached = {} if fresh or not path.exists() else json.loads(path.read_text())
        # Runs of other code versions can never be used again.
        prefix = json.dumps([self.version])[:-1] + ","
        self.cache = {key: summary for key, summary in cached.items() if key.startswith(prefix)}
        self.budget, self.model_flags = budget, list(model_flags)

    def get(self, method, factor, ranks, seed):
        """The summary of `method` at `factor` × its default learning rate, running it if needed."""
        flags = [*self.model_flags, *method.flags, "--lr", f"{method.lr * factor:.6g}",
                 "--weight-decay", f"{method.weight_decay / factor:.6g}", "--seed", str(seed), *self.budget.flags(ranks)]
        if method.warmup_share is not None:
            flags += ["--dgc-warmup-steps", str(round(method.warmup_share * self.budget.steps_at(ranks)))]
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
            return {"diverged": True, "elapsed_seconds": time.time() - started, "platform": PLATFORM}
        if result.returncode != 0:
            sys.exit(f"{name} at {ranks} ranks failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        summary = [json.loads(line) for line in metrics.read_text().splitlines() if '"summary"' in line][-1]
        metrics.unlink()
        summary["elapsed_seconds"] = time.time() - started
        summary["platform"] = PLATFORM
        print(f"   test accuracy {100 * summary['test_accuracy']:.2f} %, test loss {summary['test_loss']:.4f} "
              f"in {summary['elapsed_seconds']:.0f} s", file=sys.stderr, flush=True)
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
    metric: Metric = ACCURACY

    @property
    def values(self):
        """The metric of each seed's run, in the table's units."""
        return [self.metric.value(r) for r in self.runs]

    @property
    def value(self):
        return statistics.mean(self.values)

    @property
    def spread(self):
        return statistics.stdev(self.values) if len(self.runs) > 1 else 0.0

    def mean(self, field):
        return statistics.mean(r[field] for r in self.runs)

    @property
    def up(self):
        return statistics.mean(bits(r) for r in self.runs)

    @property
    def down(self):
        return statistics.mean(bits(r, "bytes_received_per_rank") for r in self.runs)


def paired_interval(a, b):
    """Mean and 95 % half-width of a − b over paired seeds (Student t), in the metric's units."""
    differences = [x - y for x, y in zip(a.values, b.values)]
    mean = statistics.mean(differences)
    if len(differences) < 2:
        return mean, float("inf")
    return mean, T95.get(len(differences) - 1, 1.96) * statistics.stdev(differences) / len(differences) ** 0.5


def seeds(a, b):
    """How many seeds a paired interval of rows a and b is over (the seeds both ran)."""
    return min(len(a.runs), len(b.runs))


def interval_text(mean, half, metric=ACCURACY):
    return f"{metric.text(mean, True)} [{metric.text(mean - half, True)}, {metric.text(mean + half, True)}]"


def better_verdict(mean, half, margin=0.0, metric=ACCURACY):
    """Whether a is better than b by more than −margin, from a − b's interval: 'holds' when the
    whole interval says so, 'does not hold' when none of it does, else not resolved."""
    low, high = sorted((metric.oriented(mean - half), metric.oriented(mean + half)))
    if low > -margin:
        return "holds"
    if high < -margin:
        return "does not hold"
    return "not resolved at this noise"


@dataclasses.dataclass(frozen=True)
class Study:
    """One model's comparison: its runs' flags, budget and score, and what decides its claims."""
    name: str  # as the command line names it: mlp, gpt
    title: str  # its RESULTS.md section
    protocol: str  # the sentence that opens its section: data, model, batch
    model_flags: tuple
    metric: Metric
    within: float  # D-Lion's first claim: within this much of the better global method
    close_margin: float  # a claim this close to being decided gets the close seeds
    methods: tuple
    ranks: tuple
    control_ranks: tuple  # rank counts that run only the tie-policy ablation (odd: no ties)
    lr_factors: tuple
    budget: Budget
    cache: str
    plot: str  # the file of its plot of quality against bits, or None for a study of one rank count


def best_global(row):
    """The better of the two global methods, the one D-Lion's first claim compares with."""
    return max(row["Global Lion"], row["Global AdamW"], key=lambda r: r.metric.oriented(r.value))


def claim_pairs(row, study):
    """Each claim's two rows (a, b) and the margin m that decides it (a better than b by > −m), where both exist."""
    pairs = []
    if "Global AdamW" in row and "Global Lion" in row:
        pairs.append(("D-Lion (MaVo)", best_global(row).method.name, study.within))
    pairs += [("D-Lion (MaVo)", name, 0.0) for name in ["TernGrad", "GradDrop", *DGC_ROWS]]
    pairs += [("Local AdamW, QSR", "Local AdamW, H = 4", 0.0), ("Local AdamW, QSR", "Global AdamW", 0.0),
              ("D-Lion (MaVo), ties → 0", "D-Lion (MaVo)", 0.0)]
    return [(a, b, margin) for a, b, margin in pairs if a in row and b in row]


def claims(rows, ranks, study):
    """Each claim of the papers at `ranks`, with the interval that decides it."""
    metric = study.metric
    row = {name: rows[(name, ranks)] for name in BY_NAME if (name, ranks) in rows}
    mavo, lines = row["D-Lion (MaVo)"], []
    if set(row) == set(TIE_ABLATION):
        return tie_ablation(row, ranks, metric)

    def difference(a, b):
        mean, half = paired_interval(a, b)
        return mean, half, f"{interval_text(mean, half, metric)} {metric.unit} over {seeds(a, b)} seeds"

    if "Global AdamW" in row and "Global Lion" in row:
        best = best_global(row)
        mean, half, text = difference(mavo, best)
        within = "1 point" if metric is ACCURACY and study.within == 1 else f"{study.within:g} {metric.unit}"
        lines.append(f"- **{ranks} ranks — D-Lion (MaVo) within {within} of the better global method, at ~1/30 of its bytes:** "
                     f"{better_verdict(mean, half, study.within, metric)}. MaVo − {best.method.name}: {text}; "
                     f"{best.mean('bytes_sent_per_rank') / mavo.mean('bytes_sent_per_rank'):.1f}× fewer bytes.")
    for name in ["TernGrad", "GradDrop", *DGC_ROWS]:
        if name not in row:
            continue
        other = row[name]
        mean, half, text = difference(mavo, other)
        fewer = mavo.up < other.up
        better = better_verdict(mean, half, metric=metric)
        verdict = ("holds" if fewer and better == "holds" else
                   "does not hold" if not fewer or better == "does not hold" else "not resolved at this noise")
        steady = ""
        if name in DGC_ROWS:
            steady = f" ({other.mean('dgc_steady_bits_per_parameter_step'):.3g} after its warm-up)" \
                if other.mean("dgc_steady_steps") > 0 else " (all of it in the warm-up)"
        lines.append(f"- **{ranks} ranks — D-Lion (MaVo) {metric.better} than {name} with fewer bits:** {verdict}. "
                     f"MaVo − {name}: {text}; {mavo.up:.3g} against {other.up:.3g} bits sent per parameter per step{steady}.")
    if not {"Local AdamW, QSR", "Local AdamW, H = 4", "Global AdamW"} <= set(row):
        return lines + tie_ablation(row, ranks, metric)
    qsr, constant, adamw = row["Local AdamW, QSR"], row["Local AdamW, H = 4"], row["Global AdamW"]
    mean, half, text = difference(qsr, constant)
    fewer = qsr.mean("synchronizations") < constant.mean("synchronizations")
    verdict = better_verdict(mean, half, metric=metric) if fewer else "does not hold"
    lines.append(f"- **{ranks} ranks — QSR {metric.better} than constant H = 4 with fewer synchronizations:** {verdict}. "
                 f"QSR − H = 4: {text}; {qsr.mean('synchronizations'):.0f} against "
                 f"{constant.mean('synchronizations'):.0f} synchronizations.")
    mean, half, text = difference(qsr, adamw)
    ratio = adamw.mean("bytes_sent_per_rank") / qsr.mean("bytes_sent_per_rank")
    verdict = better_verdict(mean, half, metric=metric) if ratio >= 5 else "does not hold"
    good = "as accurate as" if metric is ACCURACY else "as low in validation loss as"
    lines.append(f"- **{ranks} ranks — QSR at least {good} data-parallel AdamW with ≥ 5× fewer bytes:** {verdict}. "
                 f"QSR − Global AdamW: {text}; {ratio:.1f}× fewer bytes.")
    return lines + tie_ablation(row, ranks, metric)


def tie_ablation(row, ranks, metric):
    """sign(Σ) = 0 on ties against a random tie-break; at an odd rank count there are no ties."""
    if not set(TIE_ABLATION) <= set(row):
        return []
    zero, random = row["D-Lion (MaVo), ties → 0"], row["D-Lion (MaVo)"]
    mean, half = paired_interval(zero, random)
    if mean == 0 and half == 0:
        resolved = "identical runs, seed by seed (a vote that cannot tie leaves the policy nothing to change)"
    elif abs(mean) <= half:
        resolved = "not resolved at this noise"
    else:
        resolved = "zero ties better" if metric.oriented(mean) > 0 else "random ties better"
    parity = "even: ties happen" if ranks % 2 == 0 else "odd: no ties, a control"
    return [f"- **{ranks} ranks ({parity}) — ablation, ties → 0 against a random tie-break:** {resolved}. "
            f"Zero − random: {interval_text(mean, half, metric)} {metric.unit} over {seeds(zero, random)} seeds; "
            f"{zero.up:.3g} against {random.up:.3g} bits sent per parameter per step."]


def plot(rows, study, path):
    """The metric (mean ± std over seeds) against bits sent per parameter per step, log scale."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(11, 5.5))
    markers = dict(zip(study.ranks, "osD^v"))
    tab20 = plt.get_cmap("tab20").colors
    colours = tab20[0::2] + tab20[1::2]  # ten strong colours, then their light twins
    for index, method in enumerate(METHODS):
        for ranks in study.ranks:
            row = rows.get((method.name, ranks))
            if row is None:
                continue
            axis.errorbar(row.up, row.value, yerr=row.spread, marker=markers[ranks], color=colours[index % len(colours)],
                          capsize=3, linestyle="none", label=method.name if ranks == study.ranks[0] else None)
    axis.set_xscale("log")
    axis.set_xlabel("bits sent per parameter per step (log scale)")
    axis.set_ylabel(f"{study.metric.label}, mean ± std over seeds")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    if len(study.ranks) > 1:
        axis.set_title("markers: " + ", ".join(f"{markers[r]} {r} ranks" for r in study.ranks))
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def tune(runs, method, ranks, study, args):
    """The sweep of `method` on the tuning seed over the study's factors, widened by ×3 past an
    edge of the grid while the best factor is on that edge (at most --widen times each way), so
    the chosen learning rate is bracketed; returns the sweep and its best factor."""
    sweep = {f: runs.get(method, f, ranks, args.tune_seed) for f in study.lr_factors}
    for widened in range(args.widen + 1):
        best, grid = max(sweep, key=lambda f: study.metric.rank(sweep[f])), sorted(sweep)
        if widened == args.widen or best not in (grid[0], grid[-1]) or sweep[best].get("diverged"):
            break
        factor = best * 3 if best == grid[-1] else best / 3
        sweep[factor] = runs.get(method, factor, ranks, args.tune_seed)
    return {f: sweep[f] for f in grid}, best


def compare(study, args):
    """Every run of `study` (running those not cached), as rows by (method name, ranks), and the runs' cache."""
    runs = Runs(args.out / study.cache, args.fresh, study.budget, study.model_flags)
    methods = [BY_NAME[name] for name in args.methods] if args.methods else [BY_NAME[n] for n in study.methods]
    rows = {}
    for ranks in [*study.ranks, *study.control_ranks]:
        for method in methods if ranks in study.ranks else [BY_NAME[name] for name in TIE_ABLATION]:
            sweep, factor = tune(runs, method, ranks, study, args)
            rows[(method.name, ranks)] = Row(method, ranks, sweep, factor,
                                             [runs.get(method, factor, ranks, s) for s in args.seeds], study.metric)
        # A claim within the margin of being decided gets more seeds on both of its rows.
        row = {name: rows[(name, ranks)] for name in BY_NAME if (name, ranks) in rows}
        for a, b, margin in claim_pairs(row, study):
            mean, _ = paired_interval(row[a], row[b])
            if abs(study.metric.oriented(mean) + margin) < study.close_margin:
                for close in (row[a], row[b]):
                    close.runs = [runs.get(close.method, close.factor, ranks, s) for s in args.seeds + args.close_seeds]
    return rows


def section(study, rows, args):
    """A study's part of RESULTS.md: its protocol, table, plot, claims and sweep, and its machine time."""
    metric = study.metric
    used = [summary for row in rows.values() for summary in [*row.sweep.values(), *row.runs]]
    compute = sum(summary["elapsed_seconds"] for summary in used)
    every_ranks = [*study.ranks, *study.control_ranks]
    grid = sorted({f for row in rows.values() for f in row.sweep})
    widened = [f for f in grid if f not in study.lr_factors]
    lines = [f"{study.protocol}, {study.budget.text(study.ranks)}, cosine schedule. Each method's peak learning rate η is its "
             f"dlion-train default times the best of {', '.join(f'{f:.3g}' for f in study.lr_factors)} on seed {args.tune_seed} "
             "(the weight decay λ divided by the same factor, so η·λ stays at the method's default)"
             + (f", the grid widened by ×3 past an edge where the best factor was on it ({', '.join(f'{f:.3g}' for f in widened)})"
                if widened else "")
             + f"; the table reports that setting over seeds {', '.join(map(str, args.seeds))}, apart from the tuning seed"
             + (f", and over {', '.join(map(str, args.close_seeds))} too for both rows of a claim whose difference was "
                f"within {study.close_margin:g} {metric.unit} of deciding it (the *seeds* column)" if args.close_seeds else "")
             + (f"; at {', '.join(map(str, study.control_ranks))} ranks only the tie-policy ablation runs, the odd-rank "
                "control where a vote never ties" if study.control_ranks else "")
             + f". These runs took {compute / 3600:.1f} hours of machine time. Runs by platform: {platforms(used)}.", "",
             f"| method | ranks | η (×default) | seeds | {metric.label} | bits/param/step up | down | bytes sent per rank | "
             "synchronizations | wall (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    present = [(method, ranks) for ranks in every_ranks for method in METHODS if (method.name, ranks) in rows]
    for method, ranks in present:
        row = rows[(method.name, ranks)]
        lines.append(f"| {method.name} | {ranks} | {method.lr * row.factor:.3g} (×{row.factor:.3g}) | {len(row.runs)} | "
                     f"{metric.text(row.value)} ± {metric.text(row.spread)} | {row.up:.3g} | {row.down:.3g} | "
                     f"{row.mean('bytes_sent_per_rank') / 2**20:.1f} MiB | {row.mean('synchronizations'):.0f} | "
                     f"{row.mean('wall_seconds'):.0f} |")
    if study.plot:
        lines += ["", f"![{metric.label} against bits per parameter per step]({study.plot})"]
    lines += ["", "## The claims, checked" if study.name == "mlp" else "### The claims, checked", ""]
    for ranks in every_ranks:
        lines += claims(rows, ranks, study)
    lines += ["", ("## Appendix: the learning-rate sweep" if study.name == "mlp" else "### The learning-rate sweep")
              + f" (seed {args.tune_seed}, {metric.label.replace(' (', ', ').rstrip(')')})", "",
              "| method | ranks | " + " | ".join(f"η × {f:.3g}" for f in grid) + " |",
              "|---|---|" + "---|" * len(grid)]
    for method, ranks in present:
        row = rows[(method.name, ranks)]
        cells = ["" if f not in row.sweep else "diverged" if row.sweep[f].get("diverged") else
                 f"**{metric.text(metric.value(row.sweep[f]))}**" if f == row.factor else metric.text(metric.value(row.sweep[f]))
                 for f in grid]
        lines.append(f"| {method.name} | {ranks} | " + " | ".join(cells) + " |")
    return lines


def report(sections, args, started, hours):
    """RESULTS.md: every study's section, then the QSR study and the discussion."""
    command = "benchmarks/experiments.py " + " ".join(sys.argv[1:])
    lines = ["# Results: Distributed Lion, Local AdamW with QSR, and their baselines", "",
             f"Made by `{command.strip()}` on this project's 2-core machine (ranks oversubscribed), so wall times compare "
             f"methods, not hardware. The whole comparison took {hours:.1f} hours of machine time "
             f"({(time.time() - started) / 60:.0f} minutes in this invocation, the rest cached). "
             "Bits are measured by the communicator's byte counters: *up* is what each rank sends, *down* what it receives, "
             "per parameter per step (fp32 ring allreduce: 2·(N−1)/N·32 each way). Synchronizations: rounds of communication "
             "(every step, except for Local AdamW). Intervals are paired by seed (the same seed gives every method the same "
             "initialization and data order): mean difference [95 % interval], Student t with seeds − 1 degrees of freedom.", ""]
    for study, body in sections:
        if study.name != "mlp":
            lines += ["", f"## {study.title}", ""]
        lines += body
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


def studies(args):
    """The MLP comparison on Fashion-MNIST and the GPT on Debian's fortunes, from the command line."""
    every = tuple(m.name for m in METHODS)
    return {
        "mlp": Study("mlp", "The MLP on Fashion-MNIST",
                     "Fashion-MNIST, MLP 784-1024-1024-10, 32 rows per rank",
                     (), ACCURACY, within=1.0, close_margin=args.close_margin, methods=every, ranks=tuple(args.ranks),
                     control_ranks=tuple(args.control_ranks), lr_factors=tuple(args.lr_factors),
                     budget=Budget(epochs=args.epochs, steps=args.steps), cache="results.json", plot="accuracy-vs-bits.png"),
        "gpt": Study("gpt", "The GPT: a character-level language model on Debian's fortunes",
                     "Debian's fortunes (the last 10 % of every file held out as validation text), dlion-train's default GPT "
                     "(2 blocks, width 64, 4 heads, context 64), 8 windows per rank",
                     ("--model", "gpt"), LOSS, within=args.gpt_within, close_margin=args.gpt_close_margin,
                     methods=every, ranks=tuple(args.gpt_ranks), control_ranks=(),
                     lr_factors=tuple(args.gpt_lr_factors),
                     budget=Budget(tokens=args.gpt_tokens, steps=args.steps), cache="gpt-results.json",
                     plot="gpt-loss-vs-bits.png"),
        "gpt-long": Study("gpt-long", "The GPT for 4× as long: D-Lion against the global methods",
                          "The same GPT and protocol, with 4× the training characters, for the methods of D-Lion's "
                          "first claim only",
                          ("--model", "gpt"), LOSS, within=args.gpt_within, close_margin=args.gpt_close_margin,
                          methods=("Global AdamW", "Global Lion", "D-Lion (MaVo)"), ranks=tuple(args.gpt_long_ranks),
                          control_ranks=(), lr_factors=tuple(args.gpt_lr_factors),
                          budget=Budget(tokens=4 * args.gpt_tokens, steps=args.steps), cache="gpt-long-results.json",
                          plot=None),
    }


STUDIES = ["mlp", "gpt", "gpt-long"]


def command_line():
    """experiments.py's flags."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", nargs="+", choices=STUDIES, default=STUDIES,
                        help="run only these studies' missing runs (RESULTS.md needs them all)")
    parser.add_argument("--ranks", type=int, nargs="+", default=[4, 8], help="the MLP's rank counts")
    parser.add_argument("--gpt-ranks", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--gpt-long-ranks", type=int, nargs="+", default=[16], help="the 4×-budget GPT study's")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="the seeds the table reports")
    parser.add_argument("--close-seeds", type=int, nargs="*", default=[4, 5], help="added to both rows of a close claim")
    parser.add_argument("--close-margin", type=float, default=0.5,
                        help="MLP, points: a claim whose difference is this close to deciding it gets --close-seeds")
    parser.add_argument("--gpt-close-margin", type=float, default=0.01, help="the GPT's, in nats per character")
    parser.add_argument("--gpt-within", type=float, default=0.02,
                        help="nats per character: the GPT's margin for D-Lion against the better global method "
                             "(the MLP's is 1 point)")
    parser.add_argument("--control-ranks", type=int, nargs="*", default=[5],
                        help="MLP rank counts that run only the tie-policy ablation (odd: no ties)")
    parser.add_argument("--tune-seed", type=int, default=0, help="the seed the learning-rate sweep runs on")
    parser.add_argument("--lr-factors", type=float, nargs="+", default=[1 / 3, 1, 3, 9], help="the MLP's sweep")
    parser.add_argument("--gpt-lr-factors", type=float, nargs="+", default=[1 / 3, 1, 3], help="the GPT's sweep")
    parser.add_argument("--widen", type=int, default=2, help="how far a sweep may grow by ×3 past an edge of its grid")
    parser.add_argument("--epochs", type=int, default=2, help="the MLP's budget")
    parser.add_argument("--gpt-tokens", type=int, default=2 * 2**20, help="the GPT's budget: training characters over all ranks")
    parser.add_argument("--steps", type=int, help="a fixed step count instead of the budgets (smoke tests)")
    parser.add_argument("--methods", nargs="+", help="only these methods (names as in the table)")
    parser.add_argument("--fresh", action="store_true", help="forget finished runs")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "benchmarks")
    return parser


def main():
    args = command_line().parse_args()
    if args.tune_seed in args.seeds + args.close_seeds:
        sys.exit(f"the tuning seed {args.tune_seed} is among --seeds: report on seeds the sweep did not choose on")
    args.out.mkdir(parents=True, exist_ok=True)
    build()
    started = time.time()
    every = studies(args)
    chosen = [study for name, study in every.items() if name in args.studies]
    sections = [(study, compare(study, args)) for study in chosen]
    if args.methods or len(chosen) < len(every):
        print("ran the chosen runs; RESULTS.md needs every method of every study", file=sys.stderr)
        return
    hours = sum(summary["elapsed_seconds"] for _, rows in sections for row in rows.values()
                for summary in [*row.sweep.values(), *row.runs]) / 3600
    (args.out / "RESULTS.md").write_text(report([(study, section(study, rows, args)) for study, rows in sections], args, started, hours))
    for study, rows in sections:
        if study.plot:
            plot(rows, study, args.out / study.plot)
    print(f"wrote {args.out / 'RESULTS.md'} and the plots", file=sys.stderr)


if __name__ == "__main__":
    main()
