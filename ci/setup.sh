#!/usr/bin/env bash
# Installs the Debian packages dlion needs, skipping those already present.
# Safe to run again; needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(libopenmpi-dev openmpi-bin libopenblas-dev libblas-dev dataset-fashion-mnist fortunes pkg-config zlib1g-dev iproute2 python3)

if ! command -v swift >/dev/null 2>&1; then
    echo "setup: no 'swift' on PATH; install a Swift 6 toolchain (https://www.swift.org/install/linux/) first" >&2
    exit 1
fi

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if ((${#missing[@]} > 0)); then
    echo "setup: installing ${missing[*]}"
    sudo=""
    if [[ "$(id -u)" -ne 0 ]]; then sudo="sudo"; fi
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    echo "setup: all Debian packages present"
fi
