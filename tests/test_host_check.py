"""A site whose host rearranged (a host atom moved > HOST_REARRANGED_A) gets its ion-free host relaxed again, and
the table takes every E_ads of the system against the lowest host found. Real CHGNet relaxations and statics on the
8-atom VN(001) slab (seconds)."""

from __future__ import annotations

import numpy as np
import pytest
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore

from hetero.builders.presets import get_preset
from hetero.builders.sites import find_sites, place_ion
from hetero.engines import get_engine
from hetero.flows.adsorption import ion_free_host_checks, isolated_atom
from hetero.flows.jobs import adsorption_job, calc_doc
from hetero.schemas import HOST_REARRANGED_A
from hetero.table import _host_rearranged, build_table


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
    assert response.output == {"checked": ["hollow"]}  # only the rearranged site
    assert [j.name for j in response.addition.jobs] == [
        "relax host-from-Na@hollow", "static host-from-Na@hollow", "host check Na@hollow"]
    store = JobStore(MemoryStore())
    run_locally(response.addition, store=store, log=False, ensure_success=True)
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
