"""Bader on VASP's reference density (Henkelman's recipe): basins of AECCAR0 + AECCAR2, valence charge of
CHGCAR integrated in them, and the check that AECCAR0's cores integrate to Z - ZVAL.

The real CHGCAR of ../shared/reference/vasp/chgcar_Na3PS4 is a Na-ion occupancy density (pymatgen-analysis-
diffusion's example), not a valence density; the partition's bookkeeping is tested on it. The recipe itself
is tested on an analytic two-atom density built in the test: a bond charge between two atoms, which the
valence density alone hands to one atom (its only maximum), and sharp cores on a coarse grid."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

pytest.importorskip("baderkit")

from hetero.analysis.bader import bader_electrons  # noqa: E402
from hetero.analysis.bader_reference import bader_on_reference  # noqa: E402
from hetero.engines.vasp_outputs import integrate_chgcar, read_chgcar  # noqa: E402
from _refdata import reference_vasp_dir  # noqa: E402

L, N = 6.0, 40  # cubic cell edge (A) and grid points per edge (0.15 A spacing, a typical VASP fine grid)


def _dimer() -> Structure:
    return Structure(Lattice.cubic(L), ["Si", "Si"], [[0.5 - 1.0 / L, 0.5, 0.5], [0.5 + 1.0 / L, 0.5, 0.5]])


def _gauss(centre, electrons: float, sigma: float) -> np.ndarray:
    g = np.arange(N) / N * L
    d = np.stack(np.meshgrid(g - centre[0], g - centre[1], g - centre[2], indexing="ij"))
    d -= L * np.round(d / L)
    return electrons * np.exp(-(d**2).sum(0) / (2 * sigma**2)) / (2 * np.pi * sigma**2) ** 1.5


def _valence(s: Structure) -> np.ndarray:
    a, b = s.cart_coords
    return _gauss((a + b) / 2, 2.0, 0.6) + _gauss(a, 3.0, 0.9) + _gauss(b, 3.0, 0.9)  # 8 e, max on the bond


def test_reference_partition_splits_a_bond_charge_evenly():
    s = _dimer()
    val = _valence(s)
    core = sum(_gauss(x, 10.0, 0.35) for x in s.cart_coords)
    total = val.sum() * s.volume / val.size
    only_valence = bader_electrons(s, val)
    # points below the vacuum cut (1e-5 e/A^3) belong to no atom: here 1.4e-5 of the 8 e
    assert max(only_valence) == pytest.approx(total, abs=1e-4) and min(only_valence) == pytest.approx(0.0, abs=1e-6)
    assert bader_electrons(s, val, vacuum_tol=None).sum() == pytest.approx(total, abs=1e-9)  # no cut: every point
    out = bader_on_reference(s, val, val + core, [4.0, 4.0], fragments={"left": [0]}, core_e_per_A3=core,
                             core_expected=[10.0, 10.0])
    assert out["electrons"] == pytest.approx([total / 2, total / 2], abs=0.05)  # symmetric: the midplane
    assert out["total_electrons"] == pytest.approx(total, abs=1e-4)
    assert out["net_charge"] == pytest.approx([0.0, 0.0], abs=0.05) and out["fragment_charge"]["left"] == out["net_charge"][0]
    assert out["core_check"]["ok"] and out["core_check"]["integrated"] == pytest.approx([10.0, 10.0], abs=0.1)


def test_cores_sharper_than_the_grid_are_flagged(caplog):
    s = _dimer()
    val = _valence(s)
    core = sum(_gauss(x, 10.0, 0.04) for x in s.cart_coords)  # far narrower than the 0.15 A spacing
    # a library's logging.config.dictConfig earlier in the session (disable_existing_loggers) may have
    # switched this module's logger off; the warning itself is what is tested here
    logging.getLogger("hetero.analysis.bader_reference").disabled = False
    with caplog.at_level(logging.WARNING, logger="hetero.analysis.bader_reference"):
        out = bader_on_reference(s, val, val + core, [4.0, 4.0], core_e_per_A3=core, core_expected=[10.0, 10.0])
    assert not out["core_check"]["ok"] and out["core_check"]["bad_atoms"] == [0, 1]
    assert "NGXF" in caplog.text and "Z - ZVAL = 10.0" in caplog.text


def test_partition_of_a_real_chgcar_conserves_charge():
    ref = reference_vasp_dir()
    if ref is None:
        pytest.fail("reference VASP outputs not found: set HETERO_SHARED or clone beside ../shared")
    chg = read_chgcar(ref / "chgcar_Na3PS4" / "CHGCAR")
    s = chg.structure
    rho = np.asarray(chg.data["total"]) / s.volume
    out = bader_on_reference(s, rho, rho, [1.0] * len(s))
    e = np.asarray(out["electrons"])
    assert e.sum() == pytest.approx(integrate_chgcar(chg), rel=1e-6)
    na = [i for i, sp in enumerate(s.species) if sp.symbol == "Na"]
    assert e[na].sum() / e.sum() > 0.95  # a Na-ion occupancy density sits in the Na atoms' basins
    with pytest.raises(ValueError, match="differ"):
        bader_on_reference(s, rho, rho[:-1], [1.0] * len(s))


def test_mock_static_density_reaches_the_reference_bader(tmp_path, monkeypatch):
    """A static asking for the density on mock VASP: the copied vasprun.xml is MoS2's real one; CHGCAR,
    AECCAR0 and AECCAR2 are analytic (Gaussian valence of ZVAL electrons and Gaussian cores of Z - ZVAL
    per atom, written by pymatgen in VASP's format). The engine's density.npz feeds the reference Bader."""
    from pymatgen.io.vasp import Chgcar, Poscar

    from hetero.engines.vasp import VaspEngine
    from test_vasp_engine_chain import fake_vasp

    monkeypatch.setenv("HETERO_VASP_ALLOW_POTCAR_SPEC", "1")
    monkeypatch.setenv("HETERO_CUSTODIAN_POLL_S", "0.1")
    ref = reference_vasp_dir()
    if ref is None:
        pytest.fail("reference VASP outputs not found: set HETERO_SHARED or clone beside ../shared")
    mos2 = ref / "MoS2_monolayer_optB86b"
    s = Structure.from_file(mos2 / "POSCAR")
    shape = (24, 24, 180)
    frac = [np.arange(n) / n for n in shape]
    grid = np.stack(np.meshgrid(*frac, indexing="ij"), axis=-1)

    def density(per_atom: list[float], sigma: float) -> np.ndarray:  # e/A^3
        rho = np.zeros(shape)
        for site, n_e in zip(s, per_atom):
            d = grid - site.frac_coords
            d -= np.round(d)
            r2 = (np.einsum("...j,jk->...k", d, s.lattice.matrix) ** 2).sum(-1)
            rho += n_e * np.exp(-r2 / (2 * sigma**2)) / (2 * np.pi * sigma**2) ** 1.5
        return rho

    src = tmp_path / "src"
    src.mkdir()
    for name in ("vasprun.xml", "CONTCAR"):
        (src / name).write_text((mos2 / name).read_text())
    valence, core = density([12.0, 6.0, 6.0], 0.35), density([30.0, 10.0, 10.0], 0.2)  # tails inside the 3.19 A cell
    for name, rho in (("CHGCAR", valence), ("AECCAR0", core), ("AECCAR2", valence)):
        Chgcar(Poscar(s), {"total": rho * s.volume}).write_file(str(src / name))  # VASP stores rho * V
    monkeypatch.setenv("HETERO_VASP_CMD", str(fake_vasp(tmp_path, src, ["vasprun.xml", "CONTCAR", "CHGCAR", "AECCAR0",
                                                                        "AECCAR2"], {"LAECHG": "True"})))
    res = VaspEngine("fast").static(s, tmp_path / "runs", outputs=("density",))
    assert res.outputs.gpts == list(shape) and res.outputs.valence == [12.0, 6.0, 6.0]
    d = np.load(res.files["density"])
    assert set(d) >= {"pseudo", "all_electron", "core"}
    out = bader_on_reference(s, d["pseudo"], d["all_electron"], res.outputs.valence, core_e_per_A3=d["core"],
                             core_expected=res.outputs.core_electrons)
    assert out["total_electrons"] == pytest.approx(24.0, abs=0.05) and sum(out["net_charge"]) == pytest.approx(0.0, abs=0.05)
    assert out["core_check"]["ok"] and out["core_check"]["integrated"] == pytest.approx([30.0, 10.0, 10.0], abs=0.3)
