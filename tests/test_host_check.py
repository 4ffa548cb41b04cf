"""A site whose host rearranged (a host atom moved > HOST_REARRANGED_A) gets its ion-free host relaxed again, and
the table takes every E_ads of the system against the lowest host found. Real CHGNet relaxations and statics on the
8-atom VN(001) slab (seconds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from pymatgen.core import Structure

from hetero.builders.presets import get_preset
from hetero.builders.sites import find_sites, place_ion
from hetero.engines import get_engine
from hetero.campaigns import CampaignError, build_host, load_campaign, lowest_host_found
from hetero.flows.adsorption import ion_free_host_checks, isolated_atom, neb_endpoints
from hetero.flows.jobs import adsorption_job, calc_doc
from hetero.schemas import HOST_REARRANGED_A
from hetero.io.store import load_run
from hetero.table import _host_rearranged, build_table, docs_to_json_store

ROOT = Path(__file__).resolve().parents[1]


def _static(engine, structure, tmp_path, label):
    return calc_doc(engine.static(structure, tmp_path / label), "VN001", label).model_dump(mode="json")


def test_a_rearranged_site_gets_its_ion_free_host_relaxed_and_e_ads_uses_the_lowest_host(tmp_path):
    engine = get_engine("mlip:chgnet")
    slab, _ = get_preset("vn001_na", "fast")
    # the "bare host" a run relaxed into a high state: its top N lifted 1.3 A off the surface
    top_n = max((i for i, sp in enumerate(slab.species) if sp.symbol == "N"), key=lambda i: slab.cart_coords[i, 2])
    lifted = slab.copy()
    lifted.translate_sites([top_n], [0, 0, 1.3], frac_coords=False, to_unit_cell=False)
    host = _static(engine, lifted, tmp_path, "host")
    mu_atom = engine.static(isolated_atom("Na", 12.0), tmp_path / "atom").energy_eV

    sites = {s.label: s for s in find_sites(slab, "Na")}
    docs = []
    for site, host_geometry in (("hollow", slab), ("bridge", lifted)):  # hollow: host moved 1.3 A; bridge: not
        calc = _static(engine, place_ion(host_geometry, sites[site], "Na"), tmp_path, f"Na@{site}")
        docs.append(adsorption_job.original(calc, host, "Na", site, None, mu_atom, len(slab)))
    assert docs[0]["host_max_shift_A"] == pytest.approx(1.3, abs=1e-6) and 1.3 > HOST_REARRANGED_A
    assert docs[1]["host_max_shift_A"] < 1e-6

    response = ion_free_host_checks.original(docs, host, engine, {}, "VN001", str(tmp_path))
    assert response.output["checked"] == ["hollow"]  # only the rearranged site
    assert [j.name for j in response.detour.jobs] == [
        "relax host-from-Na@hollow", "static host-from-Na@hollow", "host check Na@hollow"]
    store = JobStore(MemoryStore())
    run_locally(response.detour, store=store, log=False, ensure_success=True)
    check = next(store.query({"output.doc_type": "host_check"}))["output"]
    # relaxed without the Na, the host stays in the flat slab's basin: far below the lifted-N "bare host"
    assert check["delta_eV"] < -0.5
    assert check["delta_eV"] == pytest.approx(check["e_ion_free_host_eV"] - host["energy_eV"])
    assert check["remaining_shift_A"] > 1.0 and check["site_host_shift_A"] == pytest.approx(1.3, abs=1e-6)

    table = build_table([host, *docs, check])
    sites = table[table.row_kind == "site"].set_index("site")
    lowest = host["energy_eV"] + check["delta_eV"]
    for d in docs:  # both sites, checked or not, are measured against the one lowest host
        row = sites.loc[d["site"]]
        assert row.e_ads_eV == pytest.approx(d["e_total_eV"] - lowest - mu_atom, abs=1e-9)
        assert row.host_reference.startswith("ion-free host relaxed from Na@hollow (-")
        assert not row.status.startswith("host rearranged")
    assert not _host_rearranged(table[table.row_kind == "site"]).any()
    # without the check the same rows keep the bare host and the rearranged one is flagged, never compared
    plain = build_table([host, *docs]).query("row_kind == 'site'").set_index("site")
    assert plain.loc["hollow"].status.startswith("host rearranged") and plain.loc["bridge"].status == "ok"
    assert np.isclose(plain.loc["bridge"].e_ads_eV, docs[1]["e_ads_atom_eV"])

    # model.host_from: a new campaign starts from that lowest host (same atoms and cell, its flags kept)
    source = docs_to_json_store([host, *docs, check], tmp_path / "store.json")
    flagged = lifted.copy()
    flagged.add_site_property("selective_dynamics", [[i != 0] * 3 for i in range(len(lifted))])
    start, note = lowest_host_found(source, flagged, "VN001")
    assert np.allclose(start.cart_coords, Structure.from_dict(check["structure"]).cart_coords)
    assert start.site_properties["selective_dynamics"][0] == [False] * 3
    assert "relaxed from Na@hollow" in note and f"{check['delta_eV']:+.3f} eV" in note
    with pytest.raises(CampaignError, match="no ion-free host check of VN002"):
        lowest_host_found(source, flagged, "VN002")
    bigger = flagged.copy()
    bigger.make_supercell([2, 1, 1])
    with pytest.raises(CampaignError, match="does not match this campaign's model"):
        lowest_host_found(source, bigger, "VN001")


def test_host_from_starts_a_campaign_on_the_lowest_host_a_run_found(tmp_path):
    """The strained V2O5 layer of study 2 (committed run): its ion-free host from Li@other-5 is 6.6 eV below the
    builder's; a campaign with model.host_from starts there, under its own system name."""
    camp_file = tmp_path / "v2o5_lowhost.yaml"
    spec = yaml.safe_load((ROOT / "workflows" / "v2o5_li.yaml").read_text())
    spec["model"]["host_from"] = "examples/v2o5_li_mlgeom"
    camp_file.write_text(yaml.safe_dump(spec))
    camp = load_campaign(camp_file)  # found from the project folder: the campaign file sits elsewhere
    assert camp.model.host_from == str(ROOT / "examples" / "v2o5_li_mlgeom")
    slab, record = build_host(camp, "standard")
    checks = {c["site"]: c for c in load_run(ROOT / "examples" / "v2o5_li_mlgeom").docs["host_check"]}
    assert np.allclose(slab.cart_coords, Structure.from_dict(checks["other-5"]["structure"]).cart_coords)
    assert record.system.endswith("-lowest-host") and "(-6.627 eV vs the host that run started from, gpaw//mlip:chgnet)" in record.notes
    # restarts chain: the run started there found a state lower again (from Li@other-7, -0.431 eV)
    spec["model"]["host_from"] = "examples/v2o5_li_lowhost_mlgeom"
    camp_file.write_text(yaml.safe_dump(spec))
    slab, record = build_host(load_campaign(camp_file), "standard")
    (again,) = load_run(ROOT / "examples" / "v2o5_li_lowhost_mlgeom").docs["host_check"]
    assert np.allclose(slab.cart_coords, Structure.from_dict(again["structure"]).cart_coords)
    assert "relaxed from Li@other-7" in record.notes and "(-0.431 eV" in record.notes

    spec["model"] = {"preset": "v2o5_cu2v2o7", "fragment": "substrate", "host_from": "examples/cu2v2o7_li_mlgeom"}
    camp_file.write_text(yaml.safe_dump(spec))
    with pytest.raises(CampaignError, match=r"\(bridge-Cu-O-5 \+0.255 eV\) are all above the bare host"):
        build_host(load_campaign(camp_file), "standard")
    spec["model"]["host_from"] = "examples/no_such_run"
    camp_file.write_text(yaml.safe_dump(spec))
    with pytest.raises(CampaignError, match="model.host_from = 'examples/no_such_run' is not a folder"):
        load_campaign(camp_file)


def test_a_hop_is_chosen_only_between_minima_on_one_host_state():
    """CI-NEB endpoints: the nearest other minimum whose host did not change; none such: no band, and why."""
    slab, _ = get_preset("vn001_na", "fast")
    sites = {s.label: s for s in find_sites(slab, "Na")}
    moved = slab.copy()
    moved.translate_sites([0], [0, 0, 1.5], frac_coords=False, to_unit_cell=False)

    def doc(site, host, energy, shift):
        return {"site": site, "e_total_eV": energy, "structure": place_ion(host, sites[site], "Na").as_dict(),
                "host_max_shift_A": shift}

    best = doc("hollow", slab, -10.0, 0.0)
    rearranged = doc("bridge", moved, -9.9, 1.5)  # nearer and lower, but its host is another state
    same_host = doc("top-N", slab, -9.5, 0.0)
    start, end, why = neb_endpoints([rearranged, same_host, best])
    assert start["site"] == "hollow" and end["site"] == "top-N" and why == ""
    start, end, why = neb_endpoints([rearranged, best])
    assert end is None and "no other minimum shares hollow's host state (largest host-atom move between the ends: " \
                           "bridge 1.5 A" in why and "model.host_from" in why
    # its ion-free host check relaxed back to the bare host: the 1.5 A was the ion's local response, one host state
    back = {"site": "bridge", "remaining_shift_A": 0.2, "delta_eV": 0.01}
    start, end, why = neb_endpoints([rearranged, best], [back])
    assert end["site"] == "bridge" and why == ""
    # a check that found a host state of its own keeps the ends apart
    assert neb_endpoints([rearranged, best], [dict(back, remaining_shift_A=1.4)])[1] is None


def test_the_table_flags_a_hop_between_host_states():
    """The committed V2O5 layer run: its GPAW//CHGNet band joins minima 5.1 A apart in host (computed from the
    endpoints' adsorption results: the store predates NebDoc.host_change_A); Na/VN(001)'s does not."""
    paths = build_table(ROOT / "examples" / "v2o5_li_mlgeom").query("row_kind == 'path' and engine == 'gpaw//mlip:chgnet'")
    assert paths.iloc[0].host_change_A == pytest.approx(5.12, abs=0.01)
    assert "ends on different host states (a host atom moved 5.1 A): not a migration barrier" in paths.iloc[0].status
    vn = build_table(ROOT / "examples" / "na_vn001").query("row_kind == 'path'").iloc[0]
    assert vn.host_change_A < 0.3 and vn.status == "ok"
