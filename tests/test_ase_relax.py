"""The shared ASE relaxation (hetero.engines.ase_tasks.relax) on EMT: a resumed BFGS keeps its Hessian, and a
starting Hessian is used. EMT stands in for GPAW/MLIP here: the optimizer logic is the same."""

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


def test_initial_hessian_is_used(tmp_path):
    """The true Hessian (finite differences) as H0 converges in fewer steps than ASE's 70 I."""
    atoms = _cu_adatom()
    hessian = _finite_difference_hessian(atoms)
    plain = ase_tasks.relax(_cu_adatom(), _mk(tmp_path / "plain"), fmax=0.01, steps=200)
    seeded = ase_tasks.relax(_cu_adatom(), _mk(tmp_path / "seeded"), fmax=0.01, steps=200, initial_hessian=hessian)
    assert plain["converged"] and seeded["converged"]
    assert seeded["n_ionic_steps"] < plain["n_ionic_steps"]
    assert abs(seeded["energy_eV"] - plain["energy_eV"]) < 2e-3


def _mk(path):
    path.mkdir(parents=True)
    return path


def _finite_difference_hessian(atoms, dx=0.005):
    a = atoms.copy()
    a.calc = EMT()
    fixed = set(a.constraints[0].index)
    n = 3 * len(a)
    h = np.eye(n) * 70.0
    free = [3 * i + k for i in range(len(a)) if i not in fixed for k in range(3)]
    p0 = a.positions.copy()
    block = np.zeros((len(free), len(free)))
    for col, dof in enumerate(free):
        f = []
        for sign in (1, -1):
            a.positions = p0.copy()
            a.positions[dof // 3, dof % 3] += sign * dx
            f.append(a.get_forces(apply_constraint=False).ravel()[free])
        block[:, col] = -(f[0] - f[1]) / (2 * dx)
    block = 0.5 * (block + block.T)
    h[np.ix_(free, free)] = block
    return h
