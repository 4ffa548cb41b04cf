"""Derived library structures (beta-Cu2V2O7, V5S8, hetero.structures.derived): provenance, symmetry, bonds,
powder pattern, plane spacings, the V5S8 ordering enumeration, the plausibility check and regeneration.

The shipped CIFs are tested directly (fast); one test rebuilds both from the recipe with CHGNet (about a
minute on one core) and compares with the shipped files.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pymatgen.analysis.bond_valence import BVAnalyzer, calculate_bv_sum
from pymatgen.analysis.diffraction.xrd import XRDCalculator
from pymatgen.core import Composition
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from hetero.structures import derived, get_entry, load_structure

warnings.filterwarnings("ignore")

# strong Cu Ka lines of the new phase in the V2O5/Cu2V2O7 study (deg 2theta)
STUDY_CVO_LINES = (24.8, 28.2, 28.8, 29.0)
# 0.6 deg at 2theta ~ 25-29 deg is a 2.0-2.4 % change of d: the spread expected between a thin film of the
# study and the ziesite cell the model keeps (line positions depend only on the cell, not on CHGNet)
TWO_THETA_TOL = 0.6
STRONG = 10.0  # % of the strongest line in 10-40 deg


@pytest.fixture(scope="module")
def cvo():
    return load_structure("Cu2V2O7_beta")


@pytest.fixture(scope="module")
def v5s8():
    return load_structure("V5S8")


def _neighbours(s, center, other, rmax):
    """Per `center` atom, sorted distances to `other` atoms within rmax."""
    return [sorted(n.nn_distance for n in s.get_neighbors(site, rmax) if n.specie.symbol == other)
            for site in s if site.specie.symbol == center]


# ------------------------------------------------------------------------------------------------
def test_entries_are_derived_not_experimental():
    for name in derived.BUILDERS:
        e = get_entry(name)
        assert e.provenance == "derived" and not e.verified
        assert e.source.startswith("DERIVED (not experimental)")
        assert e.path is not None and e.path.read_text().startswith(f"# {name}: DERIVED structure")
        rel = e.recipe["relaxation"]
        assert rel["code"].startswith("chgnet") and "FixSymmetry" in rel["constraint"]
        assert "GPAW" in e.recipe["not_done"]
    assert get_entry("Cu2V2O7_beta").recipe["relaxation"]["what"].startswith("positions only")
    assert get_entry("V5S8").recipe["relaxation"]["what"] == "cell and positions"


# ------------------------------------------------------------------------------------------------ beta-Cu2V2O7
def test_cu2v2o7_space_group_and_ziesite_cell(cvo):
    assert SpacegroupAnalyzer(cvo, symprec=0.01).get_space_group_symbol() == "C2/c"
    assert SpacegroupAnalyzer(cvo, symprec=1e-3).get_space_group_number() == 15  # kept exactly, not just nearly
    assert cvo.composition.reduced_composition == Composition("Cu2V2O7") and len(cvo) == 44  # Z = 4
    c = derived.ZIESITE_CELL
    assert np.allclose(cvo.lattice.abc, (c["a"], c["b"], c["c"]), atol=1e-4)
    assert cvo.lattice.beta == pytest.approx(c["beta"], abs=1e-3)
    assert cvo.lattice.d_hkl((2, 0, 0)) == pytest.approx(3.61, abs=0.01)  # the study's (200), 0.36 nm


def test_cu2v2o7_bond_valence(cvo):
    found = {}
    for site, v in zip(cvo, BVAnalyzer().get_valences(cvo)):
        found.setdefault(site.specie.symbol, set()).add(v)
    assert found == {"Cu": {2}, "V": {5}, "O": {-2}}


def test_cu2v2o7_coordination(cvo):
    for d in _neighbours(cvo, "V", "O", 2.5):  # VO4 tetrahedra (V2O7 groups)
        assert len(d) == 4 and 1.60 <= min(d) and max(d) <= 1.85
    for d in _neighbours(cvo, "Cu", "O", 2.6):
        # five-fold Cu. CHGNet gives the Jahn-Teller [4+1] of Cu2+: four O at 1.90-1.99 A and one at 2.27 A,
        # so the "all five Cu-O 1.9-2.1 A" holds for the substituted prototype (next test), not here
        assert len(d) == 5
        assert 1.85 <= d[0] and d[3] <= 2.05
        assert 2.15 <= d[4] <= 2.40
    cu = [s for s in cvo if s.specie.symbol == "Cu"][0]
    sixth = sorted(n.nn_distance for n in cvo.get_neighbors(cu, 4.0) if n.specie.symbol == "O")[5]
    assert sixth > 2.6


def test_cu2v2o7_prototype_before_relaxation():
    s = derived.cu2v2o7_beta_unrelaxed()
    assert SpacegroupAnalyzer(s, symprec=0.01).get_space_group_number() == 15
    for d in _neighbours(s, "Cu", "O", 2.6):
        assert len(d) == 5 and 1.9 <= d[0] and d[-1] <= 2.1
    for d in _neighbours(s, "V", "O", 2.5):
        assert len(d) == 4 and 1.6 <= d[0] and d[-1] <= 1.85


def test_cu2v2o7_powder_pattern_matches_the_study(cvo):
    p = XRDCalculator("CuKa").get_pattern(cvo, two_theta_range=(10, 40))
    x, y = np.asarray(p.x), np.asarray(p.y)
    strong = x[y >= STRONG]
    for line in STUDY_CVO_LINES:
        off = np.abs(strong - line).min()
        assert off <= TWO_THETA_TOL, f"no strong computed line within {TWO_THETA_TOL} deg of {line} deg"
    # and the strongest computed line is one of them (computed 25.33 deg for the study's 24.8 deg)
    assert min(abs(x[np.argmax(y)] - t) for t in STUDY_CVO_LINES) <= TWO_THETA_TOL


# ------------------------------------------------------------------------------------------------ V5S8
def test_v5s8_composition_and_space_group(v5s8):
    assert v5s8.composition.reduced_formula == "V5S8" and len(v5s8) == 26  # Z = 2, conventional cell
    assert SpacegroupAnalyzer(v5s8, symprec=0.01).get_space_group_symbol() == "C2/m"
    assert SpacegroupAnalyzer(v5s8, symprec=1e-3).get_space_group_number() == 12


def test_v5s8_bonds_and_valence(v5s8):
    for d in _neighbours(v5s8, "V", "S", 2.7):  # VS6 octahedra
        assert len(d) == 6
        # CHGNet's shortest V-S is 2.28 A, 0.02 A under the 2.30 A; longest 2.52 A
        assert 2.25 <= d[0] and d[-1] <= 2.60
    bvs = [calculate_bv_sum(site, v5s8.get_neighbors(site, 3.2)) for site in v5s8 if site.specie.symbol == "V"]
    # formal mean 16 * 2 / 10 = 3.2; 0.15 is the usual agreement of bond-valence sums (about 5 %)
    assert np.mean(bvs) == pytest.approx(3.2, abs=0.15)


def test_v5s8_plane_spacings_and_pattern(v5s8):
    # the study's "(110)" (d ~ 5.10 A, twice its d(220) = 2.55 A) is (1 1 -1) of this cell
    assert v5s8.lattice.d_hkl((1, 1, -1)) == pytest.approx(5.10, abs=0.05)
    p = XRDCalculator("CuKa").get_pattern(v5s8, two_theta_range=(10, 80))
    top = int(np.argmax(p.y))
    assert p.d_hkls[top] == pytest.approx(2.55, abs=0.02)  # strongest computed line = the study's d(220)
    assert tuple(p.hkls[top][0]["hkl"]) in {(2, 2, -2), (-2, -2, 2)}


def test_v5s8_cell_near_its_nias_parent(v5s8):
    """No published V5S8 cell was readable offline; the check here is against the ideal parent supercell
    (2*sqrt3 a x 2a x 2c of VS with a 3.33, c 5.80 A): CHGNet changes each length by less than 3 %."""
    A, B, C, beta = derived.orthohexagonal_cell(v5s8)
    a, c = derived.VS_NIAS["a"], derived.VS_NIAS["c"]
    for got, ideal in ((A, 2 * np.sqrt(3) * a), (B, 2 * a), (C, 2 * c)):
        assert abs(got / ideal - 1) < 0.03
    assert 90.0 <= beta < 92.0  # monoclinic shear of the vacancy order, small


def test_v5s8_enumeration():
    en = derived.enumerate_v5s8_orderings()
    assert en.n_configurations == 28 * 28  # 2 of 8 V kept in each of the two partial layers
    assert sum(en.by_spacegroup.values()) == en.n_configurations
    # issue 13 expected exactly one C2/m ordering; the enumeration finds two symmetry-distinct ones
    # (Wyckoff V 2b/4f/4i and V 2d/4g/4i). The library keeps the lower in CHGNet energy.
    assert en.by_spacegroup["C2/m"] == 16 and len(en.distinct["C2/m"]) == 2
    for s in en.distinct["C2/m"]:
        assert s.composition.reduced_formula == "V5S8" and len(s) == 52
        assert len(s.get_primitive_structure()) == 13
    variants = get_entry("V5S8").recipe["c2m_variants"]
    chosen = [v for v in variants if v["chosen"]]
    assert len(variants) == 2 and len(chosen) == 1
    assert chosen[0]["energy_per_atom_eV"] == min(v["energy_per_atom_eV"] for v in variants)
    assert "V 4g" in chosen[0]["wyckoff"]


# ------------------------------------------------------------------------------------------------ check, CLI
@pytest.fixture(scope="module")
def optimizer():
    pytest.importorskip("chgnet")
    from hetero.structures.check import get_optimizer

    return get_optimizer()


@pytest.mark.parametrize("name", ["Cu2V2O7_beta", "V5S8"])
def test_plausibility_check_passes(name, optimizer):
    from hetero.structures.check import check_structure

    r = check_structure(load_structure(name), get_entry(name), optimizer=optimizer)
    assert r.passed, r.summary()
    items = {i.name: i for i in r.items}
    assert items["space group"].passed and items["nn distances"].passed and items["CHGNet relax"].passed
    if name == "Cu2V2O7_beta":
        assert items["bond valence"].passed  # Cu2+ V5+ O2-
    else:
        assert items["bond valence"].passed is None  # metallic mixed-valence sulfide: no formal valences
    assert abs(r.volume_change) < 0.05 and r.max_displacement < 0.1


def test_cli_lists_them_as_derived():
    from typer.testing import CliRunner

    from hetero.cli import app

    res = CliRunner().invoke(app, ["structures", "list"])
    assert res.exit_code == 0, res.output
    for name in ("Cu2V2O7_beta", "V5S8"):
        line = next(ln for ln in res.output.splitlines() if f" {name} " in ln)
        assert "DERIVED" in line
    res = CliRunner().invoke(app, ["structures", "check", "Cu2V2O7_beta", "V5S8", "--no-relax"])
    assert res.exit_code == 0 and res.output.count("pass") >= 2, res.output


# ------------------------------------------------------------------------------------------------ regeneration
def test_recipe_regenerates_the_shipped_files(tmp_path):
    """The recipe in code rebuilds both CIFs (CHGNet on one thread, about a minute)."""
    pytest.importorskip("chgnet")
    from pymatgen.analysis.structure_matcher import StructureMatcher

    from hetero.structures import read_structure_file

    # the relaxation stops at a force/stress threshold on a flat energy surface, so where it stops depends on
    # the machine's floating point: CI machines rebuilt V5S8 with a 11.426 and 11.421 A, c 8.036 A, beta
    # 134.52 deg against the shipped 11.429 / 8.021 A / 134.46 deg (0.2 % / 0.06 deg). A wrong recipe moves the
    # cell by whole percent, so 0.3 % and 0.15 deg still catch it.
    matcher = StructureMatcher(ltol=0.005, stol=0.01, angle_tol=0.2, primitive_cell=False, scale=False)
    for name, d in derived.build_all().items():
        rec = derived.write(d, tmp_path)
        assert rec["provenance"] == "derived" and rec["n_sites"] == len(d.structure)
        rebuilt, shipped = read_structure_file(tmp_path / f"{name}.cif"), load_structure(name)
        assert np.allclose(rebuilt.lattice.abc, shipped.lattice.abc, rtol=0.003, atol=0)
        assert np.allclose(rebuilt.lattice.angles, shipped.lattice.angles, atol=0.15)
        assert matcher.fit(rebuilt, shipped), name
