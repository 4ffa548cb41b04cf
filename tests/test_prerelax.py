"""The CHGNet pre-relaxation before a GPAW relaxation keeps the input's symmetry exactly.

An unconstrained CHGNet relaxation leaves ~1e-7 A of noise (float32 forces): GPAW's symmetry analysis
(tolerance 1e-7, fractional) then found 1 operation instead of 4 (Na@hollow) or 8 (Na@top-V), and once
an inconsistent set (SymmetryAnalysisBug). These tests run GPAW's own analysis (no DFT) on the models
of the demo campaign before and after the pre-relaxation.
"""

from __future__ import annotations

import numpy as np
import pytest
import spglib
from gpaw.new.symmetry import create_symmetries_object

from hetero.builders import vn001_na
from hetero.builders.sites import adsorption_models
from hetero.engines import ase_tasks
from hetero.engines.base import atoms_dict, fixed_indices
from hetero.engines.mlip import keep_symmetry, prerelax, symmetrized_positions

pytestmark = pytest.mark.mlip


@pytest.fixture(scope="module")
def demo_models():
    """The demo's 8-atom VN(001) slab (bottom 2 planes fixed) and Na at its hollow and top-V sites."""
    slab, _ = vn001_na("fast")
    models = {site.label: st for site, st, _ in adsorption_models(slab, "Na")}
    return {"slab": slab, "hollow": models["hollow"], "top-V": models["top-V"]}


def gpaw_atoms(structure):
    atoms = ase_tasks.atoms_from_dict(atoms_dict(structure))
    atoms.pbc = [True, True, False]  # as the worker sets it for the dipole correction
    return atoms


def gpaw_symmetry(structure):
    """The operations GPAW's calculator finds at its default set-up (backwards-compatible tolerance 1e-7)."""
    sym = create_symmetries_object(gpaw_atoms(structure), _backwards_compatible=True)
    sym.group_check()  # raises SymmetryAnalysisBug when the operations found do not form a group
    return sym


def spacegroup(structure, symprec):
    a = gpaw_atoms(structure)
    return spglib.get_symmetry_dataset((a.cell[:], a.get_scaled_positions(), a.numbers), symprec=symprec).international


@pytest.mark.parametrize("label, n_ops", [("hollow", 4), ("top-V", 8), ("slab", 8)])
def test_prerelax_keeps_gpaw_symmetry(demo_models, label, n_ops):
    start = demo_models[label]
    before = gpaw_symmetry(start)
    assert len(before) == n_ops
    relaxed = prerelax(start)
    moved = np.linalg.norm(relaxed.cart_coords - start.cart_coords, axis=1)
    assert moved.max() > 0.1  # CHGNet really relaxed it (Na moves ~0.5 A, the slab's top ~0.2 A)
    assert moved[fixed_indices(start)].max() < 1e-10
    after = gpaw_symmetry(relaxed)
    assert len(after) == n_ops
    assert {r.tobytes() for r in after.rotation_scc} == {r.tobytes() for r in before.rotation_scc}
    # exactly symmetric: the same space group at 1e-9 A as at 1e-3 A
    assert spacegroup(relaxed, 1e-9) == spacegroup(relaxed, 1e-3)


def test_bottom_fixed_slab_loses_only_its_mirror(demo_models):
    """The bare slab is P4/nmm (16 operations, one the mirror through its middle); with the bottom
    planes fixed that mirror maps fixed atoms onto moving ones, so the pre-relaxation keeps the 8 others."""
    slab = demo_models["slab"]
    assert spacegroup(slab, 1e-5) == "P4/nmm"
    atoms = ase_tasks.atoms_from_dict(atoms_dict(slab), fixed_indices(slab))
    assert len(keep_symmetry(atoms, fixed_indices(slab)).rotations) == 8
    assert spacegroup(prerelax(slab), 1e-9) == "P4mm"


def test_symmetrized_positions_remove_noise(demo_models):
    """Noise below the tolerance (what CHGNet leaves) is projected out; the symmetric part stays."""
    start = demo_models["hollow"]
    atoms = ase_tasks.atoms_from_dict(atoms_dict(start))
    sym = keep_symmetry(atoms, [])
    noisy = atoms.copy()
    noisy.positions += np.random.default_rng(0).normal(scale=3e-6, size=noisy.positions.shape)
    assert spacegroup_of_positions(start, noisy.positions, 1e-7) == "P1"
    clean = symmetrized_positions(noisy, sym)
    assert spacegroup_of_positions(start, clean, 1e-9) == "Pmm2"
    assert np.abs(clean - atoms.positions).max() < 2e-5


def spacegroup_of_positions(structure, positions, symprec):
    s = structure.copy()
    for i, p in enumerate(positions):
        s.replace(i, s[i].species, p, coords_are_cartesian=True)
    return spacegroup(s, symprec)


def test_gpaw_relax_starts_from_the_prerelaxed_positions_under_the_input_hash(demo_models, tmp_path, monkeypatch):
    """The GPAW task folder keeps the hash of the un-pre-relaxed input (a re-run finds it); the worker's
    task.json holds the symmetric CHGNet positions; the result records the pre-relaxation's wall time.
    GPAW itself is replaced by a stand-in that returns the geometry it was given."""
    import json

    from hetero.engines.gpaw import GpawEngine
    from hetero.schemas import settings_hash

    def stand_in(self, folder):
        run = json.loads((folder / "task.json").read_text())
        return {"energy_eV": -1.0, "forces_max_eV_A": 0.0, "atoms": run["atoms"], "files": {}, "wall_s": 0.0}

    monkeypatch.setattr(GpawEngine, "_launch", stand_in)
    start = demo_models["hollow"]
    engine = GpawEngine(preset="fast")
    assert engine.native.get("prerelax_mlip") == "chgnet"
    result = engine.relax(start, tmp_path)
    folder = tmp_path / result.provenance.run_dir.split("/")[-1]
    run = json.loads((folder / "task.json").read_text())
    unrelaxed = {"kind": "relax", "settings": run["settings"], "atoms": atoms_dict(start),
                 "fixed": fixed_indices(start), "cell": False}
    assert folder.name == f"relax-{settings_hash(unrelaxed)}"
    assert run["prerelaxed_with"] == "chgnet"
    moved = np.linalg.norm(np.array(run["atoms"]["positions"]) - start.cart_coords, axis=1)
    assert moved[-1] > 0.1  # the Na moved
    stored = json.loads((folder / "result.json").read_text())
    assert stored["prerelax_wall_s"] > 0
    relaxed = start.copy()
    for i, p in enumerate(run["atoms"]["positions"]):
        relaxed.replace(i, relaxed[i].species, p, coords_are_cartesian=True)
    assert len(gpaw_symmetry(relaxed)) == len(gpaw_symmetry(start)) == 4


def test_chgnet_skips_the_stress_unless_asked(demo_models):
    """Fixed-cell work asks CHGNet for energy and forces only (one backward pass instead of two): the same
    energy and forces as its all-properties task; a cell relaxation's stress request still gets the stress."""
    from hetero.engines.mlip import calculator

    atoms = ase_tasks.atoms_from_dict(atoms_dict(demo_models["hollow"]))
    calc = calculator("chgnet")
    atoms.calc = calc
    forces, energy = atoms.get_forces(), atoms.get_potential_energy()
    assert "stress" not in calc.results and "magmoms" not in calc.results
    calc.calculate(atoms, ["energy"], [], task="efsm")  # CHGNet's own default: everything
    assert calc.results["energy"] == pytest.approx(energy, abs=1e-6)
    assert np.abs(calc.results["forces"] - forces).max() < 1e-5 and np.abs(forces).max() > 0.01
    calc.reset()
    assert atoms.get_stress().shape == (6,) and np.abs(atoms.get_stress()).max() > 0
