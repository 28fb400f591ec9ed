#!/usr/bin/env bash
# The main job: installs what is missing, builds, and trains the default model with
# Distributed Lion on 16 ranks (pass other dlion-train flags to change it, and RANKS=N for
# another rank count).
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
swift build -c release --product dlion-train
exec ci/mpirun -np "${RANKS:-16}" .build/release/dlion-train "$@"
