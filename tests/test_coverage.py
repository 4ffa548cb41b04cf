"""Coverage series: builder geometry (fast) and the real GPAW series on a tiny VN(001) cell (dft)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from hetero.builders import BuildError, find_sites, place_ion
from hetero.builders.presets import get_preset
from hetero.builders.sites import (
    coverage_models,
    default_ion_separation,
    equivalent_positions,
)
from hetero.campaigns import CampaignError, build_host, load_campaign

CAMPAIGN = Path(__file__).parent / "data" / "na_vn001_coverage_tiny.yaml"


def _supercell(slab, m):
    s = slab.copy()
    s.make_supercell([[m[0][0], m[0][1], 0], [m[1][0], m[1][1], 0], [0, 0, 1]])
    return s


@pytest.mark.parametrize("matrix, n_max", [([[1, 0], [0, 1]], 1), ([[1, 1], [-1, 1]], 2), ([[2, 0], [0, 2]], 4)])
def test_copies_fill_farthest_first_and_respect_separation(matrix, n_max):
    slab = _supercell(get_preset("vn001_na", "fast")[0], matrix)
    hollow = next(s for s in find_sites(slab, "Na") if s.label.startswith("hollow"))
    one = place_ion(slab, hollow, "Na")
    models = coverage_models(slab, "Na", one, max_ions=8)
    assert 1 + len(models) == n_max
    sep = default_ion_separation("Na")
    for k, m in enumerate(models, start=2):
        assert len(m) == len(slab) + k
        assert [str(x.specie) for x in m[len(slab):]] == ["Na"] * k  # ions last, host untouched
        ions = list(range(len(slab), len(m)))
        d = m.distance_matrix[np.ix_(ions, ions)]
        assert d[np.triu_indices(k, 1)].min() >= sep - 1e-6
        assert m.site_properties["selective_dynamics"][: len(slab)] == slab.site_properties["selective_dynamics"]
    # every copy is a symmetry image of the hollow: same height above the surface
    if models:
        z = models[-1].cart_coords[len(slab):, 2]
        assert np.ptp(z) < 0.05


def test_copies_equal_site_multiplicity():
    slab = _supercell(get_preset("vn001_na", "fast")[0], [[2, 0], [0, 2]])
    for site in find_sites(slab, "Na"):
        assert len(equivalent_positions(slab, site.cart_coords[:2])) == site.multiplicity, site.label


def test_bad_coverage_inputs(tmp_path):
    slab = get_preset("vn001_na", "fast")[0]
    one = place_ion(slab, "hollow", "Na")
    with pytest.raises(BuildError, match="at least 2 ions"):
        coverage_models(slab, "Na", one, max_ions=1)
    with pytest.raises(BuildError, match="expected the ion Li"):
        coverage_models(slab, "Li", one, max_ions=2)
    bad = tmp_path / "bad.yaml"
    bad.write_text(CAMPAIGN.read_text().replace("coverage: {max_ions: 3}", "coverage: {max_ion: 3}"))
    with pytest.raises(CampaignError, match="unknown coverage keys"):
        load_campaign(bad)
    noslab = tmp_path / "noslab.yaml"
    noslab.write_text(CAMPAIGN.read_text().replace("layers: 2, ", ""))
    with pytest.raises(CampaignError, match="needs material, miller and layers"):
        build_host(load_campaign(noslab), "fast")


# ------------------------------------------------------------------------------- real GPAW


@pytest.fixture(scope="module")
def coverage_run(tmp_path_factory):
    pytest.importorskip("gpaw")
    from hetero.campaigns import run_campaign
    from hetero.table import iter_documents

    runs = Path(os.environ.get("HETERO_COVERAGE_RUNS") or tmp_path_factory.mktemp("cov"))
    root = run_campaign(CAMPAIGN, runs_dir=runs, log=False)
    docs: dict[str, list[dict]] = {}
    for d in iter_documents(root / "store.json"):
        out = d.get("output") if "output" in d else d
        if isinstance(out, dict) and "doc_type" in out:
            docs.setdefault(out["doc_type"], []).append(out)
    return root, docs


@pytest.mark.dft
def test_coverage_series_gives_a_falling_voltage_profile(coverage_run):
    _, docs = coverage_run
    (cov,) = docs["coverage"]
    assert cov["n_ions"] == [0, 1, 2]
    assert "2.66 A" in cov["stopped_because"]  # a third Na would sit 2.07 A from another
    one = next(d for d in docs["adsorption"] if d["n_ions"] == 1)
    two = next(d for d in docs["adsorption"] if d["n_ions"] == 2)
    # first step = the one-ion result, taken and not recomputed
    assert cov["e_total_eV"][1] == one["e_total_eV"]
    assert cov["step_voltage_V"][0] == pytest.approx(-one["e_ads_bulk_eV"], abs=1e-9)
    # two Na+ 2.9 A apart repel: the second ion binds less, so the voltage falls with coverage
    assert two["e_ads_bulk_eV"] > one["e_ads_bulk_eV"]
    assert cov["step_voltage_V"][1] < cov["step_voltage_V"][0]
    # average of the steps = average voltage from 0 to 2 ions
    assert np.mean(cov["step_voltage_V"]) == pytest.approx(-two["e_ads_bulk_eV"], abs=1e-9)
    assert cov["capacity_mAh_g"][2] == pytest.approx(2 * cov["capacity_mAh_g"][1])
    assert cov["min_ion_distance_A"][2] > 2.3  # the ions stay apart during relaxation
    assert abs(two["height_A"] - one["height_A"]) < 1.0  # both ions sit on the surface, not on each other


@pytest.mark.dft
def test_coverage_rows_and_figure(coverage_run, tmp_path):
    from hetero.plots import make_figures
    from hetero.table import build_table

    root, docs = coverage_run
    df = build_table(root)
    rows = df[(df.row_kind == "site") & (df.e_ads_reference == "bulk metal")].set_index("n_ions")
    cov = docs["coverage"][0]
    assert rows.loc[2, "ocv_step_V"] == pytest.approx(cov["step_voltage_V"][1])
    assert rows.loc[2, "ocv_V"] == pytest.approx(np.mean(cov["step_voltage_V"]))
    figs = make_figures(root, out=tmp_path)
    ocv = [f for f in figs.figures.values() if f["kind"] == "ocv"]
    assert len(ocv) == 1 and all(Path(p).stat().st_size > 0 for p in ocv[0]["files"])
    assert ocv[0]["values"]["step_voltage_V"] == pytest.approx(cov["step_voltage_V"])
