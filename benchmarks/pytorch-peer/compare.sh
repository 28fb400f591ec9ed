#!/usr/bin/env bash
# dlion's GPT and ViT training step against the same models in PyTorch on this CPU, at 1 and 2
# threads, medians of interleaved runs (compare.py). PyTorch is a benchmark-only dependency:
# this script installs it from PyPI into its own virtual environment (about 5 GB, once), never
# into the test command's path.
#   benchmarks/pytorch-peer/compare.sh [compare.py flags…, e.g. --runs 5 --threads 2]
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=${DLION_TORCH_VENV:-$HOME/.cache/dlion/torch-venv}
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import torch, numpy' 2>/dev/null; then
    if ! python3 -c 'import ensurepip' 2>/dev/null; then
        apt-get update && apt-get install -y python3-venv
    fi
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet torch numpy
fi
swift build -c release --product transformer-bench >/dev/null
exec "$venv/bin/python" benchmarks/pytorch-peer/compare.py --transformer-bench .build/release/transformer-bench "$@"
