"""The stacking funnel: registries x interlayer distances of a two-fragment stack relaxed on an MLIP, grouped,
the lowest chosen as the host, the other selected stackings checked with the host's settings after its static.
Real CHGNet on an 8-atom VN(001) stack split into a 2-plane film on a 2-plane substrate: the rock-salt registry
(V over N, bonded at a/2) lies 0.55 eV below every other registry on CHGNet+D3, far above its noise."""

from __future__ import annotations

import numpy as np
import pytest
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from pymatgen.core import Lattice, Structure

from hetero.builders.common import BuildError
from hetero.builders.interfaces import in_plane_translations, registry_cell, stacking_candidates
from hetero.builders.presets import get_preset
from hetero.engines import get_engine
from hetero.engines.settings import ModelFacts
from hetero.flows.jobs import calc_doc
from hetero.flows.stacking import check_stacking, screen_stackings, stacking_checks, stacking_note


def vn_stack():
    slab, _ = get_preset("vn001_na", "fast")  # 4 planes x (1 V + 1 N), bottom 2 planes fixed
    order = np.argsort(slab.cart_coords[:, 2])
    return slab, {"substrate": sorted(order[:4].tolist()), "film": sorted(order[4:].tolist())}


def test_candidates_move_only_the_upper_fragment_to_each_registry_and_gap():
    slab, frags = vn_stack()
    cands = stacking_candidates(slab, frags, 2, [2.1, 3.0])
    assert [c["id"] for c in cands][:2] == ["shift-00-d2.10", "shift-00-d3.00"] and len(cands) == 8
    for c in cands:
        s = c["structure"]
        assert s.lattice == slab.lattice and [x.symbol for x in s.species] == [x.symbol for x in slab.species]
        z = s.cart_coords[:, 2]
        assert z[frags["film"]].min() - z[frags["substrate"]].max() == pytest.approx(c["distance_A"], abs=1e-6)
        assert s.site_properties["selective_dynamics"] == slab.site_properties["selective_dynamics"]
        # the substrate keeps its in-plane positions; the film moved by the shift
        d_sub = s.frac_coords[frags["substrate"], :2] - slab.frac_coords[frags["substrate"], :2]
        assert np.allclose(d_sub - np.round(d_sub), 0, atol=1e-8)
        d_film = s.frac_coords[frags["film"], :2] - slab.frac_coords[frags["film"], :2] - c["shift_frac"]
        assert np.allclose(d_film - np.round(d_film), 0, atol=1e-8)
    z = slab.cart_coords[:, 2]
    m = slab.lattice.matrix.copy()
    m[2, 2] = z.max() - z.min() + 7.0  # 7 A of vacuum: a 2 A wider gap leaves under 5
    cart = slab.cart_coords - [0, 0, z.min() - 3.5]
    thin = Structure(Lattice(m), slab.species, cart, coords_are_cartesian=True, site_properties=slab.site_properties)
    with pytest.raises(BuildError, match="under 5 A of vacuum"):
        stacking_candidates(thin, frags, 1, [2.07 + 2.5])
    with pytest.raises(ValueError, match=r"funnel.stacking.distances_A .*between 1 and 6"):
        check_stacking({"distances_A": [0.5]})
    with pytest.raises(ValueError, match="unknown funnel.stacking keys"):
        check_stacking({"shifts": 3})


def supercell(slab: Structure, frags: dict, n: tuple[int, int]) -> tuple[Structure, dict]:
    big = slab * (n[0], n[1], 1)  # pymatgen keeps each site's images together: site i -> i*k ... i*k + k-1
    k = n[0] * n[1]
    return big, {name: sorted(i * k + j for i in idx for j in range(k)) for name, idx in frags.items()}


def test_registry_cell_is_the_lattice_both_fragments_generate():
    slab, frags = vn_stack()
    assert np.allclose(registry_cell(slab, frags), np.eye(2))  # a primitive interface: its own cell
    big, bfr = supercell(slab, frags, (2, 1))
    assert np.allclose(registry_cell(big, bfr), [[0.5, 0], [0, 1]])
    # a 2x2 supercell where a substituted N row keeps only (1/2, 0) in the film and only (0, 1/2) in the
    # substrate: each side alone repeats twice, together they give every half-cell shift
    big, bfr = supercell(slab, frags, (2, 2))
    f = big.frac_coords
    for name, axis in (("film", 1), ("substrate", 0)):
        top_n = max((i for i in bfr[name] if big[i].specie.symbol == "N"), key=lambda i: big.cart_coords[i, 2])
        row = [i for i in bfr[name] if big[i].specie.symbol == "N" and abs(big.cart_coords[i, 2] - big.cart_coords[top_n, 2]) < 0.1
               and abs(f[i, axis] - f[top_n, axis]) < 0.01]
        assert len(row) == 2
        for i in row:
            big.replace(i, "C")
    assert len(in_plane_translations(big, bfr["film"])) == 2 and len(in_plane_translations(big, bfr["substrate"])) == 2
    cell = registry_cell(big, bfr)
    assert np.allclose(cell, [[0.5, 0], [0, 0.5]])
    # the grid then spans the primitive interface's registries: the same Cartesian shifts as the primitive's grid
    shifts_big = [c["shift_frac"] @ big.lattice.matrix[:2, :2] for c in stacking_candidates(big, bfr, 2, [2.1], cell)]
    shifts_prim = [c["shift_frac"] @ slab.lattice.matrix[:2, :2] for c in stacking_candidates(slab, frags, 2, [2.1])]
    assert np.allclose(shifts_big, shifts_prim, atol=1e-8)
    # the study-2 junction: V2O5 repeats 3x along a, Cu2V2O7 at (a + b)/2: 6 equivalent registries per cell
    junction, rec = get_preset("v2o5_cu2v2o7", "standard")
    cell = registry_cell(junction, rec.fragments)
    assert abs(np.linalg.det(cell)) == pytest.approx(1 / 6, abs=1e-6)
    with pytest.raises(ValueError, match="funnel.stacking.registries 'primitive'"):
        check_stacking({"registries": "primitive"})
    with pytest.raises(ValueError, match=r"funnel.stacking.models \['mace'\]: use one or both of chgnet"):
        check_stacking({"models": ["mace"]})
    assert check_stacking({"models": ["mlip:chgnet"]})["models"] == ["chgnet"] and "models" not in check_stacking({})


@pytest.mark.mlip
def test_the_rock_salt_registry_is_chosen_and_the_stacking_fault_is_checked_on_the_engine(tmp_path):
    slab, frags = vn_stack()
    facts = ModelFacts(kind="slab")
    funnel = {"models": ["chgnet"], "window_eV": 5.0, "stacking": {"grid": 2, "distances_A": [2.1, 3.0], "max_dft": 2}}
    doc, host = screen_stackings(slab, frags, "VN/VN", str(tmp_path), funnel, facts)
    e = {c.id: c.energy_eV["mlip:chgnet"] for c in doc.candidates}
    assert len(doc.candidates) == 8 and doc.n_reused == 0
    # V over N (no shift): rock salt continues, from either start gap, and is the lowest by a clear margin;
    # V over V (shift 1/2, 1/2) does not bond: the film stays > 2.5 A off, from either start
    chosen = next(g for g in doc.groups if g.label == doc.chosen)
    assert set(chosen.members) == {"shift-00-d2.10", "shift-00-d3.00"}
    assert min(v for k, v in e.items() if k not in chosen.members) - e[doc.chosen] > 0.3
    gap = {c.id: c.final_gap_A["mlip:chgnet"] for c in doc.candidates}
    assert gap[doc.chosen] == pytest.approx(2.07, abs=0.15)  # VN's (002) spacing, a/2
    assert min(gap["shift-11-d2.10"], gap["shift-11-d3.00"]) > 2.5
    assert sum(len(g.members) for g in doc.groups) == 8 and len(doc.groups) >= 2
    assert doc.selected[0] == doc.chosen and len(doc.selected) == 2  # capped at max_dft, the host first
    assert host.site_properties["selective_dynamics"] == slab.site_properties["selective_dynamics"]
    assert "Stacking funnel: 8 stacking(s)" in stacking_note(doc)
    again, _ = screen_stackings(slab, frags, "VN/VN", str(tmp_path), funnel, facts)
    assert again.n_reused == 8 and again.chosen == doc.chosen  # a re-run only loads the relaxations

    # the DFT-stage check, here on the same MLIP as the engine: it must reproduce the screen's difference
    engine = get_engine("mlip:chgnet")
    relaxed = engine.relax(host, tmp_path / "host-relax", ModelFacts(van_der_waals=True))
    host_static = calc_doc(engine.static(Structure.from_dict(relaxed.structure), tmp_path / "host-static",
                                         ModelFacts(van_der_waals=True)), "VN/VN", "host")
    d3 = {"van_der_waals": True}  # the screen's own dispersion (D3 on every candidate)
    response = stacking_checks.original(doc.model_dump(), host_static.model_dump(mode="json"), engine, d3, "VN/VN",
                                        str(tmp_path))
    other = doc.selected[1]
    assert response.output == {"checked": [other]}
    assert [j.name for j in response.addition.jobs] == [
        f"relax stacking-{other}", f"static stacking-{other}", f"stacking check {other}"]
    store = JobStore(MemoryStore())
    run_locally(response.addition, store=store, log=False, ensure_success=True)
    check = next(store.query({"output.doc_type": "stacking_check"}))["output"]
    assert check["delta_eV"] > 0  # the chosen host stays the lower one
    assert check["delta_eV"] == pytest.approx(check["mlip_delta_eV"]["mlip:chgnet"], abs=0.02)

    from hetero.table import build_table

    table = build_table([host_static.model_dump(mode="json"), doc.model_dump(mode="json"), check])
    rows = table[table.row_kind == "stacking"]
    assert len(rows) == len(doc.groups) + 1  # each distinct stacking on the MLIP, and the engine's check
    assert rows[rows.stacking_chosen == True].stacking_delta_eV.tolist() == [0.0]  # noqa: E712
    checked = rows[rows.stacking_delta_eV.notna() & (rows.stacking == other) & (rows.stacking_chosen == False)]  # noqa: E712
    assert len(checked) == 2 and (checked.stacking_delta_eV > 0).all() and (checked.status == "ok").all()


def test_a_bad_stacking_block_or_a_single_slab_is_refused_naming_the_key(tmp_path):
    import yaml

    from hetero.campaigns import CampaignError, load_campaign, prepare_campaign

    base = {"name": "stk", "model": {"preset": "vn001_na", "size": "fast"}, "ion": "Na", "sites": ["hollow"],
            "steps": ["relax", "static"], "engine": "mlip"}
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({**base, "funnel": {"stacking": {"grid": 0}}}))
    with pytest.raises(CampaignError, match=r"funnel.stacking.grid 0"):
        load_campaign(f)
    f.write_text(yaml.safe_dump({**base, "funnel": {"stacking": {}}}))
    with pytest.raises(CampaignError, match="needs film and substrate fragments"):
        prepare_campaign(f, runs_dir=tmp_path / "runs", write=False)


@pytest.mark.mlip
def test_a_campaign_with_a_stacking_block_runs_its_chain_on_the_chosen_stacking(tmp_path):
    """VS2/V2CO2 (29 atoms), two start gaps: the flow's host is the chosen stacking, the screen is stored with
    the results, the model record says what was chosen."""
    import yaml

    from hetero.campaigns import prepare_campaign

    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({
        "name": "stk", "model": {"preset": "vs2_v2co2", "size": "fast"}, "ion": "Li", "sites": "all",
        "steps": ["relax", "static"], "engine": "mlip",
        "funnel": {"models": ["chgnet"], "random_starts": 0, "stacking": {"grid": 1, "distances_A": [2.6, 3.6]}}}))
    _camp, _preset, _eng, _root, flow, models = prepare_campaign(f, runs_dir=tmp_path / "runs", write=False)
    jobs = {j.name: j for j, _parents in flow.iterflow()}
    assert "stacking screen (MLIP)" in jobs and "stacking checks" in jobs
    assert not any(name.startswith("MLIP screen") for name in jobs)  # no adsorption step: no site screen
    screen = jobs["stacking screen (MLIP)"].function_args[0]
    chosen = next(g for g in screen["groups"] if g["label"] == screen["chosen"])
    host_in = jobs["relax host"].function_args[0]
    host_in = host_in if isinstance(host_in, Structure) else Structure.from_dict(host_in)
    assert np.allclose(host_in.cart_coords, Structure.from_dict(chosen["structure"]).cart_coords, atol=1e-6)
    assert "Stacking funnel: 2 stacking(s)" in models["host"]["notes"]
    assert models["host"]["interlayer_distance_A"] == pytest.approx(
        next(c for c in screen["candidates"] if c["id"] == screen["chosen"])["final_gap_A"]["mlip:chgnet"])
    assert {c["distance_A"] for c in screen["candidates"]} == {2.6, 3.6}


def test_the_stacking_figure_plots_each_candidate_against_the_chosen_host():
    """Figure values from a hand-made screen document (no computation): the chosen candidate sits at 0, the
    others at their MLIP difference, the engine check at its own difference."""
    from hetero.plots.stacking import plot_stacking

    cands = [{"id": f"shift-{i}0-d2.00", "shift_frac": [i / 2, 0], "distance_A": 2.0,
              "energy_eV": {"mlip:chgnet": -10.0 + 0.4 * i}, "final_gap_A": {"mlip:chgnet": 2.0 + i}, "group": ""}
             for i in range(2)]
    groups = [{"label": c["id"], "members": [c["id"]], "e_min_eV": c["energy_eV"], "structure": {}, "selected": True}
              for c in cands]
    doc = {"system": "A/B", "models": ["mlip:chgnet"], "window_eV": 0.5, "candidates": cands, "groups": groups,
           "selected": [c["id"] for c in cands], "chosen": "shift-00-d2.00"}
    _fig, values = plot_stacking(doc, [{"stacking": "shift-10-d2.00", "delta_eV": 0.31}])
    assert values["mlip"]["mlip:chgnet"]["delta_eV"] == pytest.approx([0.0, 0.4])
    assert values["mlip"]["mlip:chgnet"]["gap_A"] == [2.0, 3.0] and values["checks"] == {"shift-10-d2.00": 0.31}
