#!/usr/bin/env bash
# Runs benchmarks/cluster/time_to_accuracy.py (its arguments pass through) with matplotlib,
# installed from PyPI into its own venv, ${DLION_PLOT_VENV:-~/.cache/dlion/plot-venv}, once.
# Needs root (the emulated cluster) and a release build (swift build -c release).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=${DLION_PLOT_VENV:-$HOME/.cache/dlion/plot-venv}
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
    if ! python3 -c 'import ensurepip' 2>/dev/null; then
        apt-get update && apt-get install -y python3-venv
    fi
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet matplotlib
fi
exec "$venv/bin/python" benchmarks/cluster/time_to_accuracy.py "$@"
