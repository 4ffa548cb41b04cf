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
    data.update(name="na_vn001_mlgeom", sites=["hollow"], references=["atom"], steps=["relax", "static", "bader", "adsorption"],
                **changes)
    path = tmp_path / "camp.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_bad_geometry_and_steps_that_relax_on_the_engine_are_refused(tmp_path):
    with pytest.raises(CampaignError, match="geometry 'mlip:mace'.*mlip:chgnet"):
        load_campaign(_campaign(tmp_path, geometry="mlip:mace"))
    with pytest.raises(CampaignError, match=r"steps \['neb'\].*--skip-step neb"):
        prepare_campaign(_campaign(tmp_path, geometry="mlip:chgnet"), runs_dir=tmp_path / "runs", add_steps=("neb",),
                         write=False)
    # put off, the CI-NEB no longer blocks the MLIP geometries: the flow builds (statics on GPAW)
    flow = prepare_campaign(_campaign(tmp_path, geometry="mlip:chgnet"), runs_dir=tmp_path / "runs",
                            add_steps=("neb",), skip_steps=("neb",), write=False)[4]
    assert "static Na@hollow" in [j.name for j, _ in flow.iterflow()]


@pytest.mark.dft
def test_mlip_geometries_gpaw_energies(tmp_path):
    pytest.importorskip("gpaw")
    root = run_campaign(_campaign(tmp_path, geometry="mlip:chgnet"), runs_dir=tmp_path / "runs", log=False)
    assert root.name.endswith("-geometry-mlip-chgnet")  # never shares a store with DFT relaxations
    docs = [d.get("output", d) for d in iter_documents(root / "store.json")]
    calcs = [d for d in docs if isinstance(d, dict) and d.get("doc_type") == "calc"]
    relaxes = [d for d in calcs if d["step"] == "relax"]
    statics = [d for d in calcs if d["step"] == "static"]
    # host and site: every relaxation on CHGNet, every static on GPAW at exactly that geometry
    assert len(relaxes) == 2 and {d["provenance"]["engine"] for d in relaxes} == {"mlip:chgnet"}
    assert len(statics) == 3 and {d["provenance"]["engine"] for d in statics} == {"gpaw"}
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
    assert set(sites["engine"]) == {"gpaw//mlip:chgnet"} and len(sites) == 1
    assert (sites["e_ads_eV"] < 0).all()  # Na binds to VN(001) at the CHGNet geometry too
    assert (sites["ion_bader_charge_e"] > 0.05).all()  # a GPAW density: Na gives up charge
    info = json.loads((root / "campaign.json").read_text())
    assert info["geometry"] == "mlip:chgnet"
