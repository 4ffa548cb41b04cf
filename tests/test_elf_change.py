"""An interface's ELF before/after (hetero.analysis.elf, elf_change_job): the fragments' densities and kinetic-energy
densities add, so the 'before' ELF is exact for fragments that do not interact. Real GPAW LCAO on N2 in a box
(serial, ~1 min in all): two molecules 5.9 A apart give the same ELF before and after; two N atoms at 1.10 A
forming N2 raise the ELF at the bond midpoint (the pair's Pauli-pairing, absent from the atoms side by side)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

pytest.importorskip("gpaw")

from hetero.analysis.elf import as_spin_channels, elf_from_parts  # noqa: E402
from hetero.engines import get_engine  # noqa: E402
from hetero.flows.adsorption import AdsorptionFlowMaker  # noqa: E402
from hetero.flows.jobs import calc_doc, elf_change_job  # noqa: E402


def n_engine():
    return get_engine("gpaw", "interface_lcao", overrides={"kpoints_mesh": [1, 1, 1], "dispersion": "off"})


def elf_change(structure: Structure, fragments: dict, folder: Path) -> tuple[dict, dict]:
    eng = n_engine()
    calc = calc_doc(eng.static(structure, folder, outputs=("density", "elf")), "N2", "host").model_dump()
    return calc, elf_change_job.original(calc, fragments, eng, str(folder))


def test_fragments_that_do_not_interact_have_the_same_elf_before_and_after(tmp_path):
    cart = [[3.5, 3.5, 3.45], [3.5, 3.5, 4.55], [3.5, 3.5, 10.45], [3.5, 3.5, 11.55]]  # 5.9 A apart both ways
    s = Structure(Lattice.orthorhombic(7, 7, 14), ["N"] * 4, cart, coords_are_cartesian=True)
    calc, doc = elf_change(s, {"A": [0, 1], "B": [2, 3]}, tmp_path)
    before = np.load(doc["files"]["before"])["elf"]
    after = np.load(doc["files"]["after"])["elf"]
    rho = np.load(calc["files"]["density"])["pseudo"]
    assert before.shape == after.shape == rho.shape
    assert np.abs(after - before)[rho > 1e-3].max() < 0.005  # measured 5e-4
    assert np.abs(np.subtract(doc["planar_before"], doc["planar_after"])).max() < 1e-3
    assert doc["contacts"] == [] and doc["interface_z_A"] == pytest.approx(7.5, abs=1e-6)
    # our formula on a fragment's own parts is GPAW's ELF of that fragment (same stencil): measured 2e-9
    assert doc["method_gap"] < 1e-3
    frag = next(Path(p) for p in tmp_path.rglob("elf_parts.npz") if "cdd-A" in str(p))
    parts = np.load(frag)
    assert as_spin_channels(parts["nt"]).shape[0] == 2
    assert np.allclose(elf_from_parts(parts["nt"], parts["taut"], parts["cell"]),
                       np.load(frag.parent / "elf.npz")["elf"], atol=1e-6)
    # a re-run reads the kept document
    assert elf_change_job.original(calc, {"A": [0, 1], "B": [2, 3]}, n_engine(), str(tmp_path)) == doc


def test_bond_formation_raises_the_elf_at_the_bond_midpoint(tmp_path):
    s = Structure(Lattice.cubic(8.0), ["N", "N"], [[4, 4, 3.45], [4, 4, 4.55]], coords_are_cartesian=True)
    _, doc = elf_change(s, {"A": [0], "B": [1]}, tmp_path)
    (contact,) = doc["contacts"]
    assert contact["pair"] == "N-N" and contact["distance_A"] == pytest.approx(1.10, abs=1e-6)
    assert contact["midpoint_A"] == pytest.approx([4, 4, 4.0], abs=1e-6) == doc["slice_point_A"]
    # measured 0.80 (two spin-polarised N atoms side by side) -> 0.88 (N2)
    assert contact["elf_after"] - contact["elf_before"] > 0.04
    assert 0.6 < contact["elf_before"] < contact["elf_after"] <= 1.0
    from hetero.plots.elf import plot_elf_change

    before, cell = np.load(doc["files"]["before"])["elf"], np.load(doc["files"]["before"])["cell"]
    _, values = plot_elf_change(doc, before, np.load(doc["files"]["after"])["elf"], cell, s, "N2")
    assert values == {"fb": pytest.approx(0.5, abs=0.03), "n_contacts": 1}  # the slice goes through the bond


def test_an_interface_host_gets_the_elf_change_only_on_an_engine_with_the_kinetic_energy_density():
    from hetero.builders.presets import get_preset

    slab, rec = get_preset("vs2_v2co2", "fast")
    names = {}
    for engine in ("gpaw", "vasp"):
        maker = AdsorptionFlowMaker(engine=get_engine(engine), steps=("relax", "static", "cdd", "elf"))
        flow = maker.make(slab, rec.system, "Li", [], "/tmp/unused", host_fragments=rec.fragments)
        jobs = [j for j, _ in flow.iterflow()]
        names[engine] = {j.name for j in jobs}
        cdd = next(j for j in jobs if j.name == "CDD host")
        assert cdd.maker.fragment_elf is (engine == "gpaw")  # the CDD's fragment statics write the ELF parts
    assert "ELF before/after host" in names["gpaw"] and "ELF before/after host" not in names["vasp"]
    maker = AdsorptionFlowMaker(engine=get_engine("gpaw"), steps=("relax", "static", "cdd"))
    assert "ELF before/after host" not in {j.name for j, _ in maker.make(
        slab, rec.system, "Li", [], "/tmp/unused", host_fragments=rec.fragments).iterflow()}


def test_the_table_carries_the_contacts_elf_change():
    from hetero.table import build_table

    prov = {"engine": "gpaw", "settings": {}, "run_dir": "/x"}
    docs = [{"doc_type": "model", "system": "A/B", "kind": "interface", "n_atoms": 4},
            {"doc_type": "elf_change", "system": "A/B", "label": "host", "provenance": prov,
             "contacts": [{"elf_before": 0.5, "elf_after": 0.7}, {"elf_before": 0.4, "elf_after": 0.5}]}]
    row = build_table(docs).iloc[0]
    assert row["elf_contacts_change"] == pytest.approx(0.15) and row["elf_n_contacts"] == 2
