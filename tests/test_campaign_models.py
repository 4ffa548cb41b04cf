"""Campaign model building (no DFT): surface and intercalation placements, plain slabs, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from hetero.campaigns import CampaignError, load_campaign, make_flow

WORKFLOWS = Path(__file__).parents[1] / "workflows"


def _campaign(tmp_path: Path, source: str, **replace: str) -> Path:
    text = (WORKFLOWS / source).read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    out = tmp_path / source
    out.write_text(text)
    return out


def test_interlayer_placement_puts_the_ion_between_the_fragments(tmp_path):
    path = _campaign(tmp_path, "vs2_v2co2_li.yaml", **{"sites: all": "sites: all\nplacement: both"})
    camp = load_campaign(path)
    camp.funnel = None  # every site as its own static DFT job (the funnel decides its sites at run time)
    flow, models = make_flow(camp, "fast", tmp_path)
    labels = [s["label"] for s in models["sites"]]
    gap = [s for s in models["sites"] if s["label"].startswith("gap-")]
    surface = [lab for lab in labels if not lab.startswith("gap-")]
    assert gap and surface  # both kinds of site
    frags = models["host"]["fragments"]
    from pymatgen.core import Structure

    host = Structure.from_dict(models["host"]["structure"])
    z_sub = host.cart_coords[frags["substrate"], 2].max()
    z_film = host.cart_coords[frags["film"], 2].min()
    for s in gap:
        assert z_sub < s["cart_coords"][2] < z_film, s["label"]
    relax_jobs = [j.name for j in flow.jobs if j.name.startswith("relax Li@gap-")]
    assert len(relax_jobs) == len(gap)


def test_interlayer_placement_needs_a_stack(tmp_path):
    path = _campaign(tmp_path, "na_vn001.yaml", **{"sites: all": "sites: all\nplacement: interlayer"})
    with pytest.raises(CampaignError, match="needs a stacked model"):
        make_flow(load_campaign(path), "fast", tmp_path)
    bad = _campaign(tmp_path, "na_vn001.yaml", **{"sites: all": "sites: all\nplacement: gap"})
    with pytest.raises(CampaignError, match="placement"):
        load_campaign(bad)


def test_new_campaign_scaffolds_the_best_ranked_model(tmp_path):
    from typer.testing import CliRunner

    from hetero.builders.interfaces import enumerate_interfaces
    from hetero.cli import app

    tol = {"max_length_tol": 0.05, "max_angle_tol": 0.02, "max_area_ratio_tol": 0.09}
    res = CliRunner().invoke(app, ["new-campaign", "VS2_1L", "V2CO2", "--ion", "Li", "--out-dir", str(tmp_path),
                                   "--max-area", "60", "--max-atoms", "60", "--max-length-tol", "0.05",
                                   "--max-angle-tol", "0.02"])
    assert res.exit_code == 0, res.output
    path = tmp_path / "vs21l_v2co2_li.yaml"
    camp = load_campaign(path)
    best = enumerate_interfaces("VS2_1L", "V2CO2", (0, 0, 1), (0, 0, 1), max_area=60, max_atoms=60, **tol).candidates[0].record
    assert f"{best.n_atoms} atoms" in camp.notes and camp.ion == "Li" and camp.placement == "both"
    assert camp.model.tolerances == {"max_length_tol": 0.05, "max_angle_tol": 0.02} and best.n_atoms <= 60
    assert camp.funnel["models"] == ["chgnet", "sevennet"] and camp.funnel["window_eV"] == 0.3  # funnel by default
    assert camp.funnel["stacking"] == {"grid": 3, "distances_A": [2.0, 2.7, 3.4], "max_dft": 3,
                                       "registries": "interface"}  # stacking too, over the distinct registries
    camp.funnel["stacking"] = {"grid": 1, "distances_A": [3.2], "max_dft": 3}  # one candidate: this test's time
    flow, models = make_flow(camp, "fast", tmp_path)
    assert models["host"]["n_atoms"] == best.n_atoms
    assert any(s["label"].startswith("gap-") for s in models["sites"])
    assert any(j.name.startswith("MLIP screen Li") for j in flow.jobs)
    assert {"stacking screen (MLIP)", "stacking checks"} <= {j.name for j in flow.jobs}
    assert "Stacking funnel: 1 stacking(s) (registries x start gaps)" in models["host"]["notes"]
    assert "coverage" in camp.steps and camp.cdd_sites == "best"
    bad = CliRunner().invoke(app, ["new-campaign", "VS2_1L", "V2CO2", "--ion", "Xx", "--out-dir", str(tmp_path)])
    assert bad.exit_code == 2 and "unknown element" in bad.output
    none = CliRunner().invoke(app, ["new-campaign", "VS2_1L", "V2CO2", "--out-dir", str(tmp_path), "--max-area", "5"])
    assert none.exit_code == 2 and "error" in none.output


def test_coverage_site_must_exist_before_anything_runs(tmp_path):
    path = _campaign(tmp_path, "na_vn001.yaml", **{"ion: Na": "ion: Na\ncoverage: {site: fcc}",
                                                   "adsorption, neb]": "adsorption, neb, coverage]"})
    with pytest.raises(CampaignError, match="coverage.site 'fcc' is not a site"):
        make_flow(load_campaign(path), "fast", tmp_path)
    ok = _campaign(tmp_path, "na_vn001.yaml", **{"ion: Na": "ion: Na\ncoverage: {site: hollow, max_ions: 2}",
                                                 "adsorption, neb]": "adsorption, neb, coverage]"})
    flow, _ = make_flow(load_campaign(ok), "fast", tmp_path)
    assert any(j.name == "coverage series Na" for j in flow.jobs)


@pytest.mark.parametrize("side, junction, n_atoms, elements", [
    ("v2o5_li.yaml", "v2o5_cu2v2o7_li.yaml", 42, {"V", "O"}),
    ("cu2v2o7_li.yaml", "v2o5_cu2v2o7_li.yaml", 44, {"Cu", "V", "O"}),
    ("sb2s3_k.yaml", "v5s8_sb2s3_k.yaml", 40, {"Sb", "S"}),
    ("v5s8_k.yaml", "v5s8_sb2s3_k.yaml", 78, {"V", "S"}),
])
def test_junction_sides_alone_are_host_only_campaigns_in_the_junction_cell(tmp_path, side, junction, n_atoms, elements):
    """One side of a junction study (the junction's cell, strain and settings): the slab's own static, DOS,
    Bader and work function; the ion's sites only where the campaign names them (V2O5, Cu2V2O7: every site,
    through the MLIP funnel; Sb2S3: K, with its hop)."""
    from pymatgen.core import Structure

    camp, junc = load_campaign(WORKFLOWS / side), load_campaign(WORKFLOWS / junction)
    assert camp.overrides == junc.overrides and camp.preset == junc.preset and camp.ion == junc.ion
    flow, models = make_flow(camp, camp.preset, tmp_path)
    names = [j.name for j in flow.jobs]
    host_only = ["relax host", "static host", "DOS host", "Bader host", "work function host"]
    if camp.sites:
        assert set(host_only) <= set(names) and camp.funnel["max_dft_sites"] == 3
        assert f"MLIP screen {camp.ion} (chgnet, sevennet)" in names and f"static {camp.ion} atom" in names
    else:
        assert names == host_only
    host = flow.jobs[0].function_args[0]  # what "relax host" gets
    assert isinstance(host, Structure) and models["host"]["n_atoms"] == len(host) == n_atoms
    assert {e.symbol for e in host.composition} == elements
    assert "-from-" in models["host"]["system"]  # named as a side of its junction


def test_elf_sites_host_keeps_the_elf_on_the_bare_host_only(tmp_path):
    """`elf_sites: host`: the host static writes the ELF, the site statics do not (their task hashes stay those
    of a campaign without the elf step, so adding the host's ELF recomputes no site)."""
    import yaml

    base = yaml.safe_load((WORKFLOWS / "na_vn001.yaml").read_text())
    outputs = {}
    for elf_sites in ("all", "host"):
        f = tmp_path / f"{elf_sites}.yaml"
        f.write_text(yaml.safe_dump({**base, "steps": ["relax", "static", "elf", "adsorption"], "elf_sites": elf_sites}))
        flow, _ = make_flow(load_campaign(f), "fast", tmp_path / elf_sites)
        outputs[elf_sites] = {j.name: j.function.__self__.outputs for j, _ in flow.iterflow()
                              if j.name.startswith("static ") and "bulk" not in j.name and "atom" not in j.name}
    assert all("elf" in o for o in outputs["all"].values()) and len(outputs["all"]) > 1
    assert "elf" in outputs["host"]["static host"]
    assert not any("elf" in o for name, o in outputs["host"].items() if name != "static host")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**base, "elf_sites": "best"}))
    with pytest.raises(CampaignError, match="elf_sites"):
        load_campaign(bad)


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_campaign_file_loads(path):
    """A campaign shipped in workflows/ is valid as written: keys, steps, funnel, and files it names
    (model.host_from) are found from the project folder."""
    camp = load_campaign(path)
    assert camp.name and camp.steps
