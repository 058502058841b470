#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks for simpo_dist and builds it (Release) into build/.
# Usage: bash scripts/setup.sh [extra cmake args]
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS="build-essential cmake pkg-config git libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools libyaml-dev
      libopenblas-dev libcjson-dev libpcre2-dev"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "setup: installing$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build -j "$(nproc)"
