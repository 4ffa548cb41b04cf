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
# compile baderkit's numba kernels once per .venv (1-2 min; cached beside the package), here rather
# than in the first campaign's first Bader step; a no-op when they are compiled already
python - <<'PY' >/dev/null
import numpy as np
from pymatgen.core import Lattice, Structure
from hetero.analysis.bader import bader_electrons
s = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
g = np.indices((16, 16, 16)).transpose(1, 2, 3, 0) / 16
rho = sum(np.exp(-3 * np.linalg.norm(((g - f) - np.round(g - f)) * 4.0, axis=-1) ** 2) for f in s.frac_coords)
bader_electrons(s, 10 * rho)
PY
echo "hetero set up in $(pwd)/.venv"
