#!/usr/bin/env bash
# Runs benchmarks/cluster/time_to_accuracy.py (its arguments pass through) with matplotlib
# (benchmarks/with-matplotlib.sh installs it into its own venv once).
# Needs root (the emulated cluster) and a release build (swift build -c release).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec benchmarks/with-matplotlib.sh benchmarks/cluster/time_to_accuracy.py "$@"
