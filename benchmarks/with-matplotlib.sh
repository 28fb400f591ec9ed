#!/usr/bin/env bash
# benchmarks/with-matplotlib.sh SCRIPT [ARGS…]: runs a Python benchmark script with matplotlib,
# installed from PyPI into its own venv, ${DLION_PLOT_VENV:-~/.cache/dlion/plot-venv}, once.
set -euo pipefail
venv=${DLION_PLOT_VENV:-$HOME/.cache/dlion/plot-venv}
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
    if ! python3 -c 'import ensurepip' 2>/dev/null; then
        apt-get update && apt-get install -y python3-venv
    fi
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet matplotlib
fi
exec "$venv/bin/python" "$@"
