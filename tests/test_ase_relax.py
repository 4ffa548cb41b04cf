"""The shared ASE relaxation (hetero.engines.ase_tasks.relax) on EMT: a resumed BFGS keeps its Hessian. EMT
stands in for GPAW/MLIP here: the optimizer logic is the same."""

from __future__ import annotations

import numpy as np
from ase.build import add_adsorbate, fcc100
from ase.calculators.emt import EMT
from ase.constraints import FixAtoms
from ase.io import Trajectory

from hetero.engines import ase_tasks


def _cu_adatom():
    slab = fcc100("Cu", (2, 2, 3), vacuum=6.0)
    slab.set_constraint(FixAtoms(indices=[a.index for a in slab if a.tag == 3]))
    add_adsorbate(slab, "Au", 1.9, "ontop")
    slab.positions[-1, :2] += (0.2, 0.1)  # off-site: a real minimum search, not a saddle
    slab.calc = EMT()
    return slab


def test_resumed_bfgs_replays_its_trajectory(tmp_path):
    """Stopped after 10 steps and resumed, the relaxation retraces the unbroken run's path exactly: the
    resumed BFGS rebuilt its Hessian from the trajectory (restarted from 70 I, the path departs by up to
    0.2 A within 5 steps)."""
    whole = _mk(tmp_path / "whole")
    ase_tasks.relax(_cu_adatom(), whole, fmax=0.01, steps=200)
    part = _mk(tmp_path / "parts")
    first = ase_tasks.relax(_cu_adatom(), part, fmax=0.01, steps=10)
    assert not first["converged"]
    second = ase_tasks.relax(_cu_adatom(), part, fmax=0.01, steps=200)
    assert second["converged"] and second["restarts"] == 1
    path_whole = [a.positions for a in Trajectory(str(whole / "relax.traj"))]
    path_parts = [a.positions for a in Trajectory(str(part / "relax.traj"))]
    assert len(path_whole) == len(path_parts) > 20
    assert max(np.abs(a - b).max() for a, b in zip(path_whole, path_parts)) < 1e-8


def _mk(path):
    path.mkdir(parents=True)
    return path
