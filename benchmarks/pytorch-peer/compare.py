"""dlion's transformer step against the same model in PyTorch, interleaved in one script.

For each thread count and model, runs transformer-bench --json (dlion) and peer.py (PyTorch)
alternately, swapping which goes first every round (the second run of a pair is often the
slower on a drifting VM), and prints the medians and their ratio as a Markdown table.

    python compare.py --transformer-bench .build/release/transformer-bench --runs 5
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys

PEER = pathlib.Path(__file__).with_name("peer.py")
STEP = "full step, adamw"


def run_json(command, threads):
    environment = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        sys.exit(f"compare.py: {' '.join(command)} failed with status {result.returncode}:\n{result.stderr}")
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        sys.exit(f"compare.py: {' '.join(command)} printed no JSON line:\n{result.stdout}{result.stderr}")
    return json.loads(lines[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transformer-bench", required=True, help="path of the release transformer-bench")
    parser.add_argument("--runs", type=int, default=5, help="runs of each side per row (at least 3)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--models", nargs="+", default=["gpt", "vit"], choices=["gpt", "vit"])
    parser.add_argument("--rounds", type=int, default=20, help="timed steps per run")
    args = parser.parse_args()
    if args.runs < 3:
        parser.error("--runs must be at least 3: a ratio is a median of several runs")

    rows = []
    for threads in args.threads:
        for model in args.models:
            dlion_command = [args.transformer_bench, "--model", model, "--threads", str(threads),
                             "--rounds", str(args.rounds), "--json"]
            peer_command = [sys.executable, str(PEER), "--model", model, "--threads", str(threads),
                            "--rounds", str(args.rounds)]
            dlion, torch, ceiling_share = [], [], []
            for run in range(args.runs):
                order = [("dlion", dlion_command), ("torch", peer_command)]
                for side, command in order if run % 2 == 0 else reversed(order):
                    result = run_json(command, threads)
                    if side == "dlion":
                        dlion.append(result[STEP])
                        ceiling_share.append(result["full step, dlion-mavo"] / result["GEMMs only"])
                    else:
                        torch.append(result[STEP])
                print(f"# {model}, {threads} thread(s), run {run + 1}: dlion {dlion[-1]:.0f}, "
                      f"PyTorch {torch[-1]:.0f} {result['unit']}; dlion's step at {100 * ceiling_share[-1]:.1f} % of its GEMM ceiling", file=sys.stderr, flush=True)
            ratios = [a / b for a, b in zip(dlion, torch)]
            rows.append((model, threads, result["unit"], dlion, torch, ratios, ceiling_share))

    print(f"| model | threads | dlion, AdamW step | PyTorch, AdamW step | dlion / PyTorch (median of {args.runs}) | "
          "paired ratios | Distributed Lion step / GEMM ceiling, median (range) |")
    print("|---|---|---|---|---|---|---|")
    for model, threads, unit, dlion, torch, ratios, share in rows:
        print(f"| {model} | {threads} | {statistics.median(dlion):.0f} {unit} | {statistics.median(torch):.0f} {unit} | "
              f"**{statistics.median(dlion) / statistics.median(torch):.2f}×** | "
              f"{', '.join(f'{r:.2f}' for r in ratios)} | {100 * statistics.median(share):.1f} % ({100 * min(share):.1f}–{100 * max(share):.1f}) |")


if __name__ == "__main__":
    main()
