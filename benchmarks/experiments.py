#!/usr/bin/env python3
"""The comparison the two papers make, on Fashion-MNIST with the default MLP.

Runs dlion-train for every method at every rank count (and seed), then writes
benchmarks/RESULTS.md (a table and the claims, checked) and benchmarks/accuracy-vs-bits.svg
(test accuracy against bits sent per parameter per step, log scale, one point per method and
rank count, as the Distributed Lion paper's Figure 4).

    benchmarks/experiments.py                      # 4, 8 and 16 ranks, seed 0, 10 epochs
    benchmarks/experiments.py --ranks 4 --seeds 0 1 2 --epochs 5

Finished runs are kept in benchmarks/results.json, so an interrupted run resumes where it
stopped (--fresh starts over). benchmarks/results-discussion.md, written by a person after
reading a run, is appended to RESULTS.md. Only the standard library is used.
"""
import argparse
import hashlib
import json
import math
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
METHODS = [
    ("Global AdamW", ["--optimizer", "global-adamw"]),
    ("Global Lion", ["--optimizer", "global-lion"]),
    ("D-Lion (MaVo)", ["--optimizer", "dlion-mavo"]),
    ("D-Lion (Avg)", ["--optimizer", "dlion-avg"]),
    ("Local AdamW, H = 4", ["--optimizer", "local-adamw", "--sync-rule", "constant", "--h-base", "4"]),
    ("Local AdamW, H ∝ 1/η", ["--optimizer", "local-adamw", "--sync-rule", "linear"]),
    ("Local AdamW, QSR", ["--optimizer", "local-adamw", "--sync-rule", "qsr"]),
    ("TernGrad", ["--optimizer", "terngrad"]),
    ("GradDrop", ["--optimizer", "graddrop"]),
    ("DGC", ["--optimizer", "dgc"]),
]


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


def run(method, flags, ranks, seed, args):
    """One dlion-train run; returns its summary plus the synchronization events."""
    metrics = pathlib.Path(f"/tmp/dlion-experiment-{ranks}-{seed}-{abs(hash(method))}.jsonl")
    command = [str(ROOT / "ci/mpirun"), "-np", str(ranks), str(ROOT / ".build/release/dlion-train"),
               "--progress", "plain", "--metrics", str(metrics), "--seed", str(seed), *flags]
    command += ["--steps", str(args.steps)] if args.steps else ["--epochs", str(args.epochs)]
    print(f"== {method}, {ranks} ranks, seed {seed}", file=sys.stderr, flush=True)
    started = time.time()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{method} at {ranks} ranks failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    events = [json.loads(line) for line in metrics.read_text().splitlines()]
    metrics.unlink()
    summary = [e for e in events if e["event"] == "summary"][-1]
    summary["sync_periods"] = [e["H"] for e in events if e["event"] == "sync"]
    print(f"   {100 * summary['test_accuracy']:.2f} % in {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    return summary


def bits(summary, key):
    """Bits per parameter per step, from a byte counter."""
    return 8 * summary[key] / summary["steps"] / summary["parameters"]


def aggregate(runs):
    """Mean and standard deviation of the accuracy, means of the rest, over seeds."""
    accuracies = [100 * r["test_accuracy"] for r in runs]
    return {
        "accuracy": statistics.mean(accuracies),
        "spread": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
        "up": statistics.mean(bits(r, "bytes_sent_per_rank") for r in runs),
        "down": statistics.mean(bits(r, "bytes_received_per_rank") for r in runs),
        "bytes": statistics.mean(r["bytes_sent_per_rank"] for r in runs),
        "syncs": statistics.mean(r["synchronizations"] for r in runs),
        "wall": statistics.mean(r["wall_seconds"] for r in runs),
        "seeds": len(runs),
    }


def claims(table, ranks_list):
    """Each claim of the papers, checked against the table, with the numbers that decide it."""
    lines = []
    for ranks in ranks_list:
        row = {m: table[(m, ranks)] for m, _ in METHODS if (m, ranks) in table}
        mavo, glion, gadam = row["D-Lion (MaVo)"], row["Global Lion"], row["Global AdamW"]
        gap = max(glion["accuracy"], gadam["accuracy"]) - mavo["accuracy"]
        ratio = glion["bytes"] / mavo["bytes"]
        lines.append(f"- **{ranks} ranks — D-Lion (MaVo) within 1 point of Global Lion and Global AdamW, at ~1/30 of their bytes:** "
                     f"{'holds' if gap <= 1 else 'does not hold'}. D-Lion {mavo['accuracy']:.2f} %, Global Lion "
                     f"{glion['accuracy']:.2f} %, Global AdamW {gadam['accuracy']:.2f} % (gap to the better {gap:.2f} points); "
                     f"{ratio:.1f}× fewer bytes.")
        better = []
        for other in ["TernGrad", "GradDrop", "DGC"]:
            o = row[other]
            # A better trade-off: at least as accurate with fewer bits, or more accurate with no more bits.
            dominates = (mavo["accuracy"] >= o["accuracy"] and mavo["up"] <= o["up"]) or \
                        (mavo["accuracy"] > o["accuracy"] and mavo["up"] <= o["up"] * 1.0001)
            better.append((other, dominates, o))
        verdict = "holds" if all(d for _, d, _ in better) else "does not hold"
        detail = "; ".join(f"{name} {o['accuracy']:.2f} % at {o['up']:.2f} bits" for name, _, o in better)
        lines.append(f"- **{ranks} ranks — D-Lion gives a better accuracy-per-bit trade-off than TernGrad, GradDrop and DGC:** {verdict}. "
                     f"D-Lion {mavo['accuracy']:.2f} % at {mavo['up']:.2f} bits sent per parameter per step; {detail}.")
        qsr, constant = row["Local AdamW, QSR"], row["Local AdamW, H = 4"]
        noise = max(0.3, 2 * max(qsr["spread"], gadam["spread"]))
        first = qsr["accuracy"] >= constant["accuracy"] - 1e-9 and qsr["syncs"] < constant["syncs"]
        second = abs(qsr["accuracy"] - gadam["accuracy"]) <= noise and gadam["bytes"] >= 5 * qsr["bytes"]
        lines.append(f"- **{ranks} ranks — QSR reaches at least constant H = 4's accuracy while synchronizing less:** "
                     f"{'holds' if first else 'does not hold'}. QSR {qsr['accuracy']:.2f} % with {qsr['syncs']:.0f} synchronizations, "
                     f"constant H {constant['accuracy']:.2f} % with {constant['syncs']:.0f}.")
        lines.append(f"- **{ranks} ranks — QSR within noise (±{noise:.2f} points) of data-parallel AdamW with ≥ 5× fewer bytes:** "
                     f"{'holds' if second else 'does not hold'}. QSR {qsr['accuracy']:.2f} %, Global AdamW {gadam['accuracy']:.2f} %; "
                     f"{gadam['bytes'] / qsr['bytes']:.1f}× fewer bytes.")
    return lines


def svg(table, ranks_list, path):
    """Test accuracy against bits sent per parameter per step (log scale), one point per method and rank count."""
    width, height, left, right, top, bottom = 900, 560, 80, 260, 30, 60
    points = [(m, r, v) for (m, r), v in table.items()]
    xs = [math.log10(max(v["up"], 1e-3)) for _, _, v in points]
    ys = [v["accuracy"] for _, _, v in points]
    x0, x1 = math.floor(min(xs)) - 0.15, math.ceil(max(xs)) + 0.15
    y0, y1 = math.floor(min(ys) - 0.5), math.ceil(max(ys) + 0.5)
    sx = lambda x: left + (x - x0) / max(1e-9, x1 - x0) * (width - left - right)
    sy = lambda y: height - bottom - (y - y0) / max(1e-9, y1 - y0) * (height - top - bottom)
    colours = ["#1f77b4", "#ff7f0e", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#2ca02c", "#7f7f7f", "#bcbd22"]
    shapes = {r: s for r, s in zip(ranks_list, ["circle", "square", "triangle", "diamond"])}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="13">',
           '<rect width="100%" height="100%" fill="white"/>']
    for decade in range(math.ceil(x0), math.floor(x1) + 1):
        x = sx(decade)
        out.append(f'<line x1="{x}" y1="{top}" x2="{x}" y2="{height - bottom}" stroke="#ddd"/>')
        out.append(f'<text x="{x}" y="{height - bottom + 20}" text-anchor="middle">{10 ** decade:g}</text>')
    for y in range(y0, y1 + 1):
        out.append(f'<line x1="{left}" y1="{sy(y)}" x2="{width - right}" y2="{sy(y)}" stroke="#eee"/>')
        out.append(f'<text x="{left - 8}" y="{sy(y) + 4}" text-anchor="end">{y}</text>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 15}" text-anchor="middle">bits sent per parameter per step (log scale)</text>')
    out.append(f'<text x="20" y="{(top + height - bottom) / 2}" transform="rotate(-90 20 {(top + height - bottom) / 2})" text-anchor="middle">test accuracy (%)</text>')
    for index, (method, _) in enumerate(METHODS):
        colour = colours[index % len(colours)]
        for ranks in ranks_list:
            if (method, ranks) not in table:
                continue
            v = table[(method, ranks)]
            x, y = sx(math.log10(max(v["up"], 1e-3))), sy(v["accuracy"])
            out.append(marker(shapes.get(ranks, "circle"), x, y, colour, f"{method}, {ranks} ranks: {v['accuracy']:.2f} %, {v['up']:.3g} bits"))
        ly = top + 20 * index
        out.append(f'<rect x="{width - right + 20}" y="{ly}" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{width - right + 38}" y="{ly + 11}">{method}</text>')
    for index, ranks in enumerate(ranks_list):
        ly = top + 20 * (len(METHODS) + 1 + index)
        out.append(marker(shapes.get(ranks, "circle"), width - right + 26, ly + 6, "#444", f"{ranks} ranks"))
        out.append(f'<text x="{width - right + 38}" y="{ly + 11}">{ranks} ranks</text>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")


def marker(shape, x, y, colour, title):
    """An SVG marker with a hover title."""
    body = {
        "circle": f'<circle cx="{x}" cy="{y}" r="6" fill="{colour}">',
        "square": f'<rect x="{x - 5}" y="{y - 5}" width="10" height="10" fill="{colour}">',
        "triangle": f'<polygon points="{x},{y - 7} {x - 6},{y + 5} {x + 6},{y + 5}" fill="{colour}">',
        "diamond": f'<polygon points="{x},{y - 7} {x - 6},{y} {x},{y + 7} {x + 6},{y}" fill="{colour}">',
    }[shape]
    closing = "</" + body[1:body.index(" ")] + ">"
    return f"{body}<title>{title}</title>{closing}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, help="a fixed step count instead of epochs (smoke tests)")
    parser.add_argument("--fresh", action="store_true", help="forget finished runs")
    parser.add_argument("--out", default=str(ROOT / "benchmarks"))
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    cache_path = out / "results.json"
    cache = {} if args.fresh or not cache_path.exists() else json.loads(cache_path.read_text())
    subprocess.run(["swift", "build", "-c", "release", "--product", "dlion-train"], cwd=ROOT, check=True, capture_output=True)
    budget = f"steps{args.steps}" if args.steps else f"epochs{args.epochs}"
    version = code_version()  # with every flag of the run, the cache key
    table = {}
    for ranks in args.ranks:
        for method, flags in METHODS:
            runs = []
            for seed in args.seeds:
                key = json.dumps([version, method, flags, ranks, seed, budget])
                if key not in cache:
                    cache[key] = run(method, flags, ranks, seed, args)
                    cache_path.write_text(json.dumps(cache, indent=1))
                runs.append(cache[key])
            table[(method, ranks)] = aggregate(runs)
    command = "benchmarks/experiments.py " + " ".join(sys.argv[1:])
    lines = ["# Results: Distributed Lion, Local AdamW with QSR, and their baselines", "",
             f"Fashion-MNIST, MLP 784-1024-1024-10, 32 rows per rank, "
             f"{f'{args.steps} steps' if args.steps else f'{args.epochs} epochs'}, cosine schedule with 100 warm-up steps, "
             f"seeds {', '.join(map(str, args.seeds))}; each method at its dlion-train defaults. Made by `{command.strip()}` "
             f"on this project's 2-core machine (ranks oversubscribed), so wall times compare methods, not hardware.", "",
             "Bits are measured by the communicator's byte counters: *up* is what each rank sends, *down* what it receives, "
             "per parameter per step (fp32 ring allreduce: 2·(N−1)/N·32 each way). Synchronizations: rounds of communication "
             "(every step, except for Local AdamW).", "",
             "| method | ranks | test accuracy (%) | bits/param/step up | down | bytes sent per rank | synchronizations | wall (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for ranks in args.ranks:
        for method, _ in METHODS:
            v = table[(method, ranks)]
            spread = f" ± {v['spread']:.2f}" if v["seeds"] > 1 else ""
            lines.append(f"| {method} | {ranks} | {v['accuracy']:.2f}{spread} | {v['up']:.3g} | {v['down']:.3g} | "
                         f"{v['bytes'] / 2**20:.1f} MiB | {v['syncs']:.0f} | {v['wall']:.0f} |")
    lines += ["", "![test accuracy against bits per parameter per step](accuracy-vs-bits.svg)", "",
              "## The claims, checked", ""] + claims(table, args.ranks)
    discussion = ROOT / "benchmarks/results-discussion.md"
    if discussion.exists():
        lines += ["", discussion.read_text().strip()]
    (out / "RESULTS.md").write_text("\n".join(lines) + "\n")
    svg(table, args.ranks, out / "accuracy-vs-bits.svg")
    print(f"wrote {out / 'RESULTS.md'} and {out / 'accuracy-vs-bits.svg'}", file=sys.stderr)


if __name__ == "__main__":
    main()
