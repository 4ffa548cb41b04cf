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


def test_neb_whose_image_reaches_an_endpoint_keeps_its_energies(tmp_path, monkeypatch):
    """A climbing image that climbs onto an endpoint which is itself a saddle (seen on the MLIP band top-N -> top-V
    of the 8-atom VN(001) + Na) leaves two coinciding images, and ASE's spline fit raises LinAlgError: the band's
    energies and path coordinate are kept, without a spline, and the method says why."""
    from ase.mep import NEBTools

    start = _cu_adatom()
    end = start.copy()
    end.positions[-1, 0] += 2.55  # the next hollow along x
    images = [start] + [start.copy() for _ in range(2)] + [end]
    for k, im in enumerate(images[1:-1], start=1):
        im.positions[-1] = start.positions[-1] + (end.positions[-1] - start.positions[-1]) * k / 3
        im.calc = EMT()
    e_ends = []
    for a in (start, end):
        a.calc = EMT()
        e_ends.append(a.get_potential_energy())

    def singular(self, *a, **k):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(NEBTools, "get_fit", singular)
    out = ase_tasks.neb(images, e_ends, tmp_path, {"neb_steps": 3, "neb_fmax_eV_A": 0.05})
    assert "no spline" in out["method"]
    assert len(out["reaction_coord_A"]) == 4 and out["reaction_coord_A"][0] == 0.0
    assert np.all(np.diff(out["reaction_coord_A"]) > 0) and out["spline_x_A"] == out["reaction_coord_A"]
    assert np.allclose(out["spline_e_eV"], np.asarray(out["energies_eV"]) - out["energies_eV"][0])
