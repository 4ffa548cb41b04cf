import warnings

import numpy as np
import pytest
from pymatgen.core import Composition, Lattice, Structure

from hetero.builders import BuildError, find_sites, get_preset, vn001_na
from hetero.builders.common import resolve_structure
from hetero.builders.interfaces import enumerate_interfaces
from hetero.builders.paths import _min_pair_distance, find_interlayer_sites, find_paths
from hetero.builders.presets import JUNCTION_MAX_STRAIN, JUNCTIONS, PAPER_PLANES, max_atoms

warnings.filterwarnings("ignore")


def _comp_ok(s, rec):
    film = Composition(" ".join(str(s[i].specie) for i in rec.fragments["film"]))
    sub = Composition(" ".join(str(s[i].specie) for i in rec.fragments["substrate"]))
    return film, sub


@pytest.mark.parametrize("name", ["vs2_v2co2", "vs2_v2coh2", "vs2_v2cf2", "v2o5_cu2v2o7", "v5s8_sb2s3"])
@pytest.mark.parametrize("model", ["fast", "standard"])
def test_interface_presets(name, model):
    from hetero.builders.presets import JUNCTION_TOL, MXENE

    s, rec = get_preset(name, model)
    assert len(s) == rec.n_atoms <= max_atoms(name, model)
    # composition conserved: each fragment is a whole number of its parent's formula units
    for frag, parent in (("film", rec.film), ("substrate", rec.substrate)):
        p, _ = resolve_structure(parent)
        c = Composition(" ".join(str(s[i].specie) for i in rec.fragments[frag]))
        assert c.reduced_formula == p.composition.reduced_formula
    assert sorted(rec.fragments["film"] + rec.fragments["substrate"]) == list(range(len(s)))
    assert rec.strain_percent is not None
    if name in MXENE:
        assert rec.strain_percent < 5.0
        assert 3.0 <= rec.interlayer_distance_A <= 3.5
        assert rec.film_d_spacing_A is None  # 2D layers: c includes the vacuum
    if name in JUNCTIONS:
        # no match of the papers' planes is below 5 %: the junctions accept up to JUNCTION_MAX_STRAIN
        assert rec.strain_percent <= JUNCTION_MAX_STRAIN
        assert max(abs(x) for x in rec.strain_principal_percent) <= 100 * JUNCTION_TOL["max_length_tol"]
        f, fm, sub, sm = JUNCTIONS[name]
        assert (rec.film, tuple(rec.film_miller), rec.substrate, tuple(rec.substrate_miller)) == (f, fm, sub, sm)
        for side in ("film", "substrate"):  # the record states the spacing the paper reports
            assert getattr(rec, f"{side}_d_spacing_A") == pytest.approx(PAPER_PLANES[name][side][1], abs=0.05)
        assert "study" in rec.paper_plane_note
        # the film really sits on the substrate: its planes lie above, a gap apart
        z = s.cart_coords[:, 2]
        assert z[rec.fragments["film"]].min() - z[rec.fragments["substrate"]].max() == pytest.approx(
            rec.interlayer_distance_A, abs=1e-3)
    assert _min_pair_distance(s) > 0.9  # O-H bonds of V2C(OH)2 are 0.97 A
    assert np.allclose(s.lattice.matrix[2][:2], 0)


# The four seed planes of the papers (issue 13), as d-spacings in A. The tolerance is 0.01 A for the three
# planes of experimental cells (the papers quote d to 0.01 A) and 0.05 A (1 %) for V5S8, whose cell is a
# CHGNet-relaxed derived cell and whose 5.10 A is twice the study's d(220) = 2.55 A.
SEED_PLANES = [("V2O5", (1, 1, 0), 3.40, 0.01), ("Sb2S3", (0, 1, 1), 3.62, 0.01),
               ("Cu2V2O7_beta", (2, 0, 0), 3.61, 0.01), ("V5S8", (1, 1, -1), 5.10, 0.05)]


@pytest.mark.parametrize("name,miller,d_paper,tol", SEED_PLANES)
def test_seed_plane_spacings(name, miller, d_paper, tol):
    s, _ = resolve_structure(name)
    assert s.lattice.d_hkl(miller) == pytest.approx(d_paper, abs=tol)
    assert any((f, fm) == (name, miller) or (sub, sm) == (name, miller) for f, fm, sub, sm in JUNCTIONS.values())


def test_library_settings_differ_from_the_papers():
    """Why the presets do not use the papers' indices literally: in the library cells their (101) planes
    have other spacings (V2O5 2.76 A, Sb2S3 7.96 A)."""
    assert resolve_structure("V2O5")[0].lattice.d_hkl((1, 0, 1)) == pytest.approx(2.76, abs=0.01)
    assert resolve_structure("Sb2S3")[0].lattice.d_hkl((1, 0, 1)) == pytest.approx(7.96, abs=0.01)


def test_junction_records_carry_plane_spacings():
    from hetero.builders.interfaces import enumerate_interfaces

    res = enumerate_interfaces("V5S8", "Sb2S3", (1, 1, -1), (0, 1, 1), max_area=300, max_atoms=200,
                               max_length_tol=0.1, max_angle_tol=0.1, max_area_ratio_tol=0.1, max_candidates=1)
    rec = res.candidates[0].record
    assert rec.film_d_spacing_A == pytest.approx(5.10, abs=0.05)
    assert rec.substrate_d_spacing_A == pytest.approx(3.62, abs=0.01)


def test_enumeration_ranked_and_skips():
    res = enumerate_interfaces("VS2_1L", "V2CO2", max_area=150, max_atoms=100)
    keys = [(round(c.record.strain_percent, 3), c.record.n_atoms) for c in res.candidates]
    assert keys == sorted(keys)
    assert all(c.record.n_atoms <= 100 for c in res.candidates)
    assert any("max_atoms" in m for m in res.skipped)


def test_interface_errors():
    vn = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.14), ["V", "N"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(BuildError, match="max_length_tol"):
        enumerate_interfaces("V2O5", vn, (1, 0, 1), (0, 0, 1), max_area=80)
    with pytest.raises(BuildError, match="Miller"):
        enumerate_interfaces("V2O5", vn, (0, 0, 0), (0, 0, 1))
    with pytest.raises(BuildError):
        enumerate_interfaces("VS2_1L", vn, (0, 0, 1), (0, 0, 1))
    with pytest.raises(BuildError):
        get_preset("nope")
    with pytest.raises(BuildError):
        get_preset("vn001_na", "huge")


def test_vn_paths():
    s, _ = vn001_na("fast")
    sites = find_sites(s, "Na")
    labels = {x.label for x in sites}
    paths = find_paths(s, sites, "Na", max_hop=3.0, n_images=5)
    assert paths
    for p in paths:
        assert p.start.label in labels and p.end.label in labels
        assert len(p.images) == 7
        assert min(_min_pair_distance(im) for im in p.images) > 1.0
        ion0, ion1 = p.images[0][p.ion_index].coords, p.images[-1][p.ion_index].coords
        assert np.linalg.norm(ion1 - ion0) == pytest.approx(p.hop_length_A, abs=1e-3)
    assert len({p.label for p in paths}) == len(paths)


def test_interlayer_sites_and_paths():
    s, rec = get_preset("vs2_v2co2", "fast")
    gs = find_interlayer_sites(s, rec.fragments, "Li")
    assert gs and all(x.label.startswith("gap-") for x in gs)
    zf = s.cart_coords[rec.fragments["film"], 2].min()
    zs = s.cart_coords[rec.fragments["substrate"], 2].max()
    assert all(zs < x.cart_coords[2] < zf for x in gs)
    ps = find_paths(s, gs, "Li", max_hop=2.5, n_images=3)
    assert ps and all(min(_min_pair_distance(im) for im in p.images) > 1.0 for p in ps)


def test_cli_interlayer_paths(tmp_path):
    import json

    from typer.testing import CliRunner

    from hetero.cli import app

    res = CliRunner().invoke(app, ["build", "paths", "vs2_v2co2", "--interlayer", "--ion", "Li", "--n-images", "3",
                                   "--max-hop", "2.5", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    paths = json.loads((tmp_path / "paths.json").read_text())
    assert paths and all("gap-" in p["label"] for p in paths)
    assert len(list((tmp_path / "path_00").glob("*.vasp")) or list((tmp_path / "path_00").iterdir())) >= 5
    bad = CliRunner().invoke(app, ["build", "paths", "vn001_na", "--interlayer", "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "film" in bad.output  # a single slab has no gap: the error says what is missing


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sites_do_not_follow_float_noise(seed):
    """The same stack built on another machine differs by last-bit noise; its sites (labels and the position of
    each, which decide the funnel's task hashes) must not move to a symmetry-equivalent spot."""
    s, _ = get_preset("vs2_v2co2", "fast")
    noisy = s.copy()
    rng = np.random.default_rng(seed)
    for i in range(len(noisy)):
        noisy.translate_sites([i], rng.normal(0, 1e-9, 3), frac_coords=False, to_unit_cell=False)
    order = list(range(len(s)))
    rng.shuffle(order)  # and the atoms listed in another order
    noisy = Structure.from_sites([noisy[i] for i in order])
    ref = {x.label: x.cart_coords for x in find_sites(s, "Li")}
    got = {x.label: x.cart_coords for x in find_sites(noisy, "Li")}
    assert got.keys() == ref.keys() and len(ref) >= 5
    for label, xyz in ref.items():
        assert np.allclose(got[label], xyz, atol=1e-6), label
