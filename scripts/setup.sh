#!/usr/bin/env bash
# Idempotent set-up on a bare Debian 12 machine: system libraries for GPAW, a virtual environment
# in .venv, CPU torch (for CHGNet) and hetero with all its extras. Never purges system packages.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS="libxc-dev libopenblas-dev libfftw3-dev openmpi-bin libopenmpi-dev pkg-config chromium"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip setuptools wheel
# CPU torch first: an unpinned torch would pull a multi-GB CUDA build.
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[all]"
# baderkit 0.10.2 pins pymatgen<=2025.10.7, but we need pymatgen>=2026 (its compiled CHGCAR reader
# is 3-8x faster). baderkit only uses Structure/VolumetricData, which are unchanged: install it
# without its pins (its other requirements - numba, scipy, pandas - come with hetero).
python -c "import baderkit" 2>/dev/null || python -m pip install -q --no-deps "baderkit==0.10.2"
echo "hetero set up in $(pwd)/.venv"
