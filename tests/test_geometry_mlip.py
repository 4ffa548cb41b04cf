"""`geometry: mlip:chgnet`: every relaxation (host, sites, bulk metal) on CHGNet, every static, DOS, Bader and
E_ads on GPAW at those geometries, labelled gpaw//mlip:chgnet (AdsorbML's ML + SP). Real GPAW on the 8-atom
VN(001) slab + Na at hollow, coarse settings: three statics (host, site, atom), a few minutes on 2 cores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from pymatgen.core import Structure

from hetero.campaigns import CampaignError, load_campaign, prepare_campaign, run_campaign
from hetero.table import build_table, iter_documents

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "na_vn001_tiny.yaml"


def _campaign(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load(TINY.read_text())
    # CI-sized: one site, the atom reference; statics only on GPAW
    data.update({"name": "na_vn001_mlgeom", "sites": ["hollow"], "references": ["atom"],
                 "steps": ["relax", "static", "bader", "adsorption"], **changes})
    path = tmp_path / "camp.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_bad_geometry_refused_and_every_step_builds_on_mlip_geometries(tmp_path):
    with pytest.raises(CampaignError, match="geometry 'mlip:mace'.*mlip:chgnet"):
        load_campaign(_campaign(tmp_path, geometry="mlip:mace"))
    # the CI-NEB (band on the MLIP, DFT single points) and the coverage series (each ion count relaxed on the
    # MLIP) build like every other step
    flow = prepare_campaign(_campaign(tmp_path, geometry="mlip:chgnet", sites=["top-V", "hollow"]),
                            runs_dir=tmp_path / "runs", add_steps=("neb", "coverage"), write=False)[4]
    names = [j.name for j, _ in flow.iterflow()]
    assert "static Na@hollow" in names and "select NEB path" in names and "coverage series Na" in names


def test_coverage_series_relaxes_on_the_geometry_engine(tmp_path):
    """A DFT//MLIP coverage series: every added ion count relaxes on the MLIP, its static runs on DFT."""
    from hetero.campaigns import build_host, build_sites
    from hetero.engines import get_engine
    from hetero.flows.adsorption import coverage_series

    camp = load_campaign(_campaign(tmp_path, sites=["hollow"]))
    slab, _ = build_host(camp, "fast")
    slab.make_supercell([2, 2, 1])  # room for a second Na on a copy of the site
    site = build_sites(camp, slab)[0]["structure"]
    one = {"site": "hollow", "e_total_eV": -1.0, "structure": site.as_dict()}
    response = coverage_series.original([one], {"structure": slab.as_dict()}, None, -1.0, get_engine("gpaw", "fast"),
                                        {}, [], "sys", "Na", str(tmp_path), {"max_ions": 2},
                                        geometry_engine=get_engine("mlip:chgnet"))
    jobs = {j.name: j for j in response.addition.jobs}
    assert {"relax 2Na@hollow", "static 2Na@hollow"} <= set(jobs)
    assert jobs["relax 2Na@hollow"].maker.engine.label == "mlip:chgnet"
    static = jobs["static 2Na@hollow"].maker
    assert static.engine.name == "gpaw" and static.geometry_engine == "mlip:chgnet"


@pytest.mark.dft
def test_mlip_geometries_gpaw_energies(tmp_path):
    pytest.importorskip("gpaw")
    camp = _campaign(tmp_path, geometry="mlip:chgnet", sites=["top-V", "hollow"],
                     steps=["relax", "static", "bader", "adsorption", "neb"], neb={"images": 1})
    root = run_campaign(camp, runs_dir=tmp_path / "runs", log=False)
    assert root.name.endswith("-geometry-mlip-chgnet")  # never shares a store with DFT relaxations
    docs = [d.get("output", d) for d in iter_documents(root / "store.json")]
    calcs = [d for d in docs if isinstance(d, dict) and d.get("doc_type") == "calc"]
    relaxes = [d for d in calcs if d["step"] == "relax"]
    statics = [d for d in calcs if d["step"] == "static"]
    # host and sites: every relaxation on CHGNet, every static on GPAW at exactly that geometry (host, two sites,
    # the atom and the NEB band's one moving image)
    assert len(relaxes) == 3 and {d["provenance"]["engine"] for d in relaxes} == {"mlip:chgnet"}
    assert len(statics) == 5 and {d["provenance"]["engine"] for d in statics} == {"gpaw"}
    # the CI-NEB: the band optimised on CHGNet, GPAW single points on its image, the DFT endpoints' energies
    (neb,) = [d for d in docs if isinstance(d, dict) and d.get("doc_type") == "neb"]
    ads = {d["site"]: d for d in docs if isinstance(d, dict) and d.get("doc_type") == "adsorption"}
    (image,) = [d for d in statics if d["label"].startswith("neb-")]
    assert neb["band_engine"] == "mlip:chgnet" and neb["provenance"]["engine"] == "gpaw" and not neb["climbing"]
    assert image["provenance"]["geometry_engine"] == "mlip:chgnet"
    a, b = neb["path"].split("->")
    assert neb["endpoint_energies_eV"] == [ads[a]["e_total_eV"], ads[b]["e_total_eV"]]
    assert len(neb["energies_eV"]) == 3 and neb["energies_eV"][0] == 0.0
    assert np.isclose(neb["energies_eV"][1], image["energy_eV"] - ads[a]["e_total_eV"])
    assert np.isclose(neb["barrier_eV"], max(neb["energies_eV"])) and neb["band_barrier_eV"] is not None
    assert neb["host_change_A"] < 1.0  # both ends on one host state: the band is the ion's hop
    # the image sits between the endpoints: the ion part-way along the hop
    ion = np.asarray(neb["image_ion_positions_A"])
    assert 0.1 < np.linalg.norm(ion[1] - ion[0]) < neb["hop_length_A"]
    relaxed = {(d["system"], d["label"]): Structure.from_dict(d["structure"]) for d in relaxes}
    for d in statics:
        if (d["system"], d["label"]) in relaxed:
            assert d["provenance"]["geometry_engine"] == "mlip:chgnet"
            assert np.allclose(Structure.from_dict(d["structure"]).cart_coords,
                               relaxed[(d["system"], d["label"])].cart_coords, atol=1e-6)
    # the host keeps the builder's symmetry through the MLIP relaxation (GPAW then needs fewer k-points): the
    # operations that keep the fixed bottom planes fixed (P4mm's 8; the slab's mid-plane mirror is not one)
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    host = next(d for d in relaxes if d["label"] == "host")
    assert host["provenance"]["settings"]["keep_symmetry_A"] == 1e-4
    assert len(SpacegroupAnalyzer(relaxed[(host["system"], "host")], 1e-5).get_symmetry_operations()) == 8
    df = build_table(root)
    sites = df[df["row_kind"] == "site"]
    assert set(sites["engine"]) == {"gpaw//mlip:chgnet"} and len(sites) == 2
    (path,) = df[df["row_kind"] == "path"].to_dict("records")
    assert path["engine"] == "gpaw//mlip:chgnet" and "not re-optimised on gpaw" in path["neb_method"]
    assert (sites["e_ads_eV"] < 0).all()  # Na binds to VN(001) at the CHGNet geometry too
    assert (sites["ion_bader_charge_e"] > 0.05).all()  # a GPAW density: Na gives up charge
    info = json.loads((root / "campaign.json").read_text())
    assert info["geometry"] == "mlip:chgnet"
