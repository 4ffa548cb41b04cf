"""Screening funnel: candidate starts, grouping by where the ion ends, selection, and the whole
MLIP -> 'DFT' flow (the second stage on the MLIP engine here, so the test runs in minutes; the same
flow runs GPAW when the campaign's engine is gpaw)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from pymatgen.core import Structure

from hetero.builders.candidates import classify_final_positions, ion_candidates, ion_on_relaxed_host, select_for_dft
from hetero.builders.presets import get_preset
from hetero.builders.sites import find_sites, place_ion
from hetero.campaigns import CampaignError, load_campaign, run_campaign
from hetero.io.store import unwrap


@pytest.fixture(scope="module")
def vn():
    slab, _ = get_preset("vn001_na", "fast")
    return slab, find_sites(slab, "Na")


def test_candidates_start_off_site_and_reproducibly(vn):
    slab, sites = vn
    cands = ion_candidates(slab, "Na", sites, random_starts=6, seed=3)
    assert len(cands) == len(sites) + 6
    for c, s in zip(cands, sites):
        d = np.linalg.norm(c["structure"].cart_coords[-1][:2] - np.array(s.cart_coords[:2]))
        assert 0.1 <= d <= 0.25  # exactly-on-site starts stop on saddles
        assert c["structure"].site_properties["selective_dynamics"][-1] == [True] * 3
    again = ion_candidates(slab, "Na", sites, random_starts=6, seed=3)
    assert all(np.allclose(a["structure"].cart_coords, b["structure"].cart_coords) for a, b in zip(cands, again))
    # random placements touch the surface: the ion's nearest host atom sits at about the covalent contact
    for c in cands[len(sites):]:
        st = c["structure"]
        assert min(st.get_distance(len(st) - 1, i) for i in range(len(st) - 1)) > 2.0


def test_final_positions_group_onto_sites_and_symmetry_copies(vn):
    slab, sites = vn
    by_label = {s.label: s for s in sites}
    hollow = np.array(place_ion(slab, by_label["hollow"], "Na").cart_coords[-1])
    a = slab.lattice.matrix[0]
    finals = [hollow + [0.1, -0.05, 0.0],  # near the hollow
              hollow + a,  # a periodic copy of it
              np.array(place_ion(slab, by_label["top-N"], "Na").cart_coords[-1]),
              hollow + 0.3 * a + [0, 0, 5.0]]  # far above anything: a group of its own
    labels = classify_final_positions(slab, finals, sites)
    assert labels[:3] == ["hollow", "hollow", "top-N"]
    assert labels[3].startswith("other-")


def test_selection_window_union_and_never_top1_alone():
    e = {"A": {"m1": -10.0, "m2": -9.0}, "B": {"m1": -9.8, "m2": -9.5}, "C": {"m1": -9.0, "m2": -9.3}}
    sel, rule = select_for_dft(e, 0.3)
    assert sel == ["A", "B", "C"]  # B within m1's window, C within m2's: the union
    sel, rule = select_for_dft({"A": {"m1": -10.0}, "B": {"m1": -9.0}}, 0.3)
    assert sel == ["A", "B"] and "never top-1 alone" in rule
    sel, _ = select_for_dft(e, 0.0, always=["C"])
    assert "C" in sel


def test_selection_puts_every_models_best_before_any_second_best():
    """The VS2/V2CO2 + Li screen: CHGNet's window holds four gap minima, SevenNet-0's best is CHGNet's third; with a
    cap of 3 (hcp-1 named) both models' best must reach DFT."""
    from hetero.flows.funnel import cap_selection

    e = {"gap-fcc": {"chgnet": -3.093, "sevennet": -3.453}, "other-2": {"chgnet": -3.056, "sevennet": -3.442},
         "other-3": {"chgnet": -3.054, "sevennet": -3.537}, "gap-hcp": {"chgnet": -3.031, "sevennet": -3.423},
         "hcp-1": {"chgnet": -1.726, "sevennet": -1.704}}
    sel, _ = select_for_dft(e, 0.3, always=["hcp-1"])
    assert sel[:3] == ["gap-fcc", "other-3", "other-2"] and sel[-1] == "hcp-1"
    assert cap_selection(sel, ["hcp-1"], 3) == ["gap-fcc", "other-3", "hcp-1"]


def test_cap_keeps_the_sites_the_campaign_names():
    """VS2/V2CO2 + Li: four gap minima in the window, the surface hcp-1 named, cap 3 -> two gap sites + hcp-1."""
    from hetero.flows.funnel import cap_selection

    window = ["gap-hcp", "other-2", "gap-fcc", "other-1", "hcp-1"]
    assert cap_selection(window, ["hcp-1"], 3) == ["gap-hcp", "other-2", "hcp-1"]
    assert cap_selection(window, [], 3) == ["gap-hcp", "other-2", "gap-fcc"]


def test_group_representative_is_stable_under_noise():
    """Three equivalent hcp minima 0.3 meV apart (as CHGNet gave on VS2 + Li): the DFT start is the first start
    within 1 meV, whichever copy noise makes lowest in a run; a clearly lower member (5 meV) still wins; a group
    only the second model found takes that model's member."""
    from hetero.flows.funnel import group_representative
    from hetero.schemas import FunnelCandidate

    def rec(cid, model, e, group="hcp"):
        return FunnelCandidate(id=cid, origin="site", model=model, energy_eV=e, group=group, final_ion_cart_A=[0, 0, 0],
                               moved_A=0.0, converged=True, n_steps=1)

    run1 = [rec("site-hcp", "m1", -65.80299), rec("random-00", "m1", -65.80291), rec("random-03", "m1", -65.80309)]
    run2 = [rec("site-hcp", "m1", -65.80281), rec("random-00", "m1", -65.80309), rec("random-03", "m1", -65.80293)]
    assert group_representative(run1, "hcp", "m1") == group_representative(run2, "hcp", "m1") == ("m1", "site-hcp")
    clearly = [rec("site-hcp", "m1", -65.800), rec("random-03", "m1", -65.805)]
    assert group_representative(clearly, "hcp", "m1") == ("m1", "random-03")
    second_only = [rec("site-fcc", "m1", -1.0, "fcc"), rec("random-01", "m2", -2.0, "hcp")]
    assert group_representative(second_only, "hcp", "m1") == ("m2", "random-01")


def test_relaxed_host_start_carries_the_ion_with_its_neighbours(vn):
    """dft_start: relaxed_host: the DFT host, not the MLIP one, and the ion keeps its bonds to the atoms
    it sat on, even when those atoms are wrapped across the cell edge in one of the two geometries."""
    slab, sites = vn
    hollow = next(s for s in sites if s.label == "hollow")
    mlip = place_ion(slab, hollow, "Na")
    relaxed = slab.copy()
    top = [i for i in range(len(slab)) if slab.cart_coords[i][2] > slab.cart_coords[:, 2].max() - 2.5]
    for i in range(len(slab)):  # the "DFT" host: the top two layers 0.12 A higher, everything shifted in-plane
        dz = 0.12 if i in top else 0.0
        relaxed.translate_sites([i], [0.05, -0.03, dz], frac_coords=False, to_unit_cell=True)
    relaxed.translate_sites([top[0]], [1.0, 0.0, 0.0], frac_coords=True, to_unit_cell=False)  # a periodic copy
    start = ion_on_relaxed_host(mlip, relaxed)
    assert len(start) == len(slab) + 1 and start[-1].species_string == "Na"
    assert np.allclose(start.cart_coords[:-1], relaxed.cart_coords)  # the host is the relaxed one, untouched
    near = [n.index for n in mlip.get_neighbors(mlip[-1], 3.5) if n.index < len(slab)]
    assert near and all(i in top for i in near)
    for i in near:  # Na moved with the surface atoms it sits on: bond lengths kept to 0.01 A
        assert abs(start.get_distance(len(start) - 1, i) - mlip.get_distance(len(mlip) - 1, i)) < 0.01
    assert start.cart_coords[-1][2] - mlip.cart_coords[-1][2] == pytest.approx(0.12, abs=1e-6)
    with pytest.raises(ValueError, match="expected the host's sites plus the ion"):
        ion_on_relaxed_host(slab, relaxed)


def test_mlip_stage_relaxes_the_ion_alone_on_surfaces_and_everything_in_a_gap(vn):
    from hetero.flows.funnel import mlip_starts

    slab, sites = vn
    relaxed = slab.copy()
    relaxed.translate_sites(list(range(len(slab))), [0, 0, 0.05], frac_coords=False)  # the "MLIP-relaxed" host
    cands = ion_candidates(slab, "Na", sites, random_starts=2, seed=0)
    cands[-1]["in_gap"] = True  # as a gap placement of a stack would be
    starts = mlip_starts(cands, relaxed, "auto")
    for c, st in zip(cands[:-1], starts[:-1]):
        assert np.allclose(st.cart_coords[:-1], relaxed.cart_coords)  # on the model's relaxed host...
        assert np.allclose(st.cart_coords[-1], c["structure"].cart_coords[-1])  # ...with the ion where it started
        flags = st.site_properties["selective_dynamics"]
        assert not any(any(f) for f in flags[:-1]) and flags[-1] == [True] * 3  # only the ion moves
    assert starts[-1] is cands[-1]["structure"]  # in a gap the layers must open: the whole start relaxes
    assert all(a is c["structure"] for a, c in zip(mlip_starts(cands, relaxed, "all"), cands))


def test_bad_funnel_blocks_are_refused(tmp_path):
    base = yaml.safe_load((Path(__file__).parents[1] / "workflows" / "na_vn001.yaml").read_text())
    for block, msg in (({"modles": ["chgnet"]}, "unknown funnel keys"), ({"models": ["mace"]}, "use one or both"),
                       ({"window_eV": -1}, "window_eV"), ({"dft_start": "builder"}, "dft_start"),
                       ({"mlip_relax": "host"}, "mlip_relax"), ({"bfgs_alpha": -5}, "bfgs_alpha"),
                       ({"dft_relax": "cell"}, "dft_relax"), ({"dft_relax": "ion", "dft_start": "mlip"}, "dft_start")):
        f = tmp_path / "c.yaml"
        f.write_text(yaml.safe_dump({**base, "funnel": block}))
        with pytest.raises(CampaignError, match=msg):
            load_campaign(f)


def test_bfgs_alpha_reaches_the_optimiser_and_only_when_set(tmp_path, vn):
    """mlip: {bfgs_alpha} changes BFGS's initial Hessian (a softer start takes other steps to the same minimum);
    unset, the task settings (and so every cached MLIP result's hash) are as before."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from hetero.engines import ase_tasks, get_engine
    from hetero.engines.settings import ModelFacts

    slab = vn[0]
    plain = get_engine("mlip:chgnet", "fast")
    soft = get_engine("mlip:chgnet", "fast", {"mlip": {"bfgs_alpha": 20}})
    facts = ModelFacts(kind="slab")
    assert "bfgs_alpha" not in plain.translate(plain.resolve(slab, facts), slab, "relax")
    assert soft.translate(soft.resolve(slab, facts), slab, "relax")["bfgs_alpha"] == 20.0
    runs = {}
    for alpha in (None, 20.0):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2)
        atoms.rattle(0.05, seed=1)
        atoms.calc = EMT()
        folder = tmp_path / f"alpha-{alpha}"
        folder.mkdir()
        runs[alpha] = ase_tasks.relax(atoms, folder, 0.01, 200, "BFGS", bfgs_alpha=alpha)
    assert all(r["converged"] for r in runs.values())
    assert runs[None]["energy_eV"] == pytest.approx(runs[20.0]["energy_eV"], abs=1e-3)
    assert runs[None]["n_ionic_steps"] != runs[20.0]["n_ionic_steps"]


@pytest.mark.mlip
def test_funnel_campaign_end_to_end(tmp_path):
    """A VN(001) + Na campaign with a funnel: 4 sites + 4 random starts on CHGNet, grouped and selected,
    an MLIP NEB band, then the second stage on the selected minima only, the agreement document, the
    table and the funnel figure."""
    from hetero.plots import make_figures
    from hetero.table import build_table

    camp = {
        "name": "vn_na_funnel", "model": {"preset": "vn001_na", "size": "fast", "extra_vacuum_A": 0},
        "ion": "Na", "steps": ["relax", "static", "adsorption", "neb"], "engine": "mlip",
        "neb": {"images": 1, "steps": 30}, "funnel": {"models": ["chgnet"], "window_eV": 0.3, "random_starts": 4},
    }
    f = tmp_path / "funnel.yaml"
    f.write_text(yaml.safe_dump(camp))
    root = run_campaign(f, runs_dir=tmp_path / "runs", log=False)
    outputs = json.loads((root / "store.json").read_text())
    docs = [d["output"] for d in outputs if isinstance(d.get("output"), dict)]
    funnel = next(d for d in docs if d.get("doc_type") == "funnel")
    assert funnel["n_candidates"] == 8 and len(funnel["candidates"]) == 8
    labels = {g["label"] for g in funnel["groups"]}
    assert labels <= {"top-V", "top-N", "bridge", "hollow"} or any(x.startswith("other") for x in labels)
    assert 2 <= len(funnel["selected"]) < len(funnel["candidates"])
    ads = [d for d in docs if d.get("doc_type") == "adsorption"]
    assert sorted(d["site"] for d in ads) == sorted(funnel["selected"])  # the second stage ran only these
    agree = next(d for out in outputs for d in unwrap(out) if d.get("doc_type") == "funnel_agreement")
    assert agree["mlip_best"] in funnel["selected"] and agree["dft_best"] in funnel["selected"]
    # same model in both stages here: its ranking must agree with itself; the screen relaxed the ion alone on a
    # frozen host (mlip_relax auto), the second stage everything: the screen's E_ads sit above, not below
    assert agree["best_agrees"] and -0.02 < agree["mean_offset_eV"] < 0.15
    neb = [d for d in docs if d.get("doc_type") == "neb"]
    if funnel["hops"]:
        assert len(neb) == 1 and neb[0]["barrier_eV"] >= 0
    df = build_table(root)
    mlip_rows = df[df["funnel_rank"].notna()]
    assert len(mlip_rows) == len(funnel["groups"]) and set(mlip_rows["engine"]) == {"mlip:chgnet"}
    assert df[df["row_kind"] == "funnel"]["mlip_best_is_dft_best"].iloc[0]
    fs = make_figures(root, out=tmp_path / "figs")
    fun = [v for v in fs.figures.values() if v["kind"] == "funnel"]
    assert len(fun) == 1 and set(fun[0]["values"]["selected"]) == set(funnel["selected"])

    # a re-run loads every MLIP relaxation from its folder: no throughput is claimed for that
    assert funnel["n_reused"] == 0 and funnel["candidates_per_minute"] > 0
    root = run_campaign(f, runs_dir=tmp_path / "runs", log=False)
    docs = [d["output"] for d in json.loads((root / "store.json").read_text()) if isinstance(d.get("output"), dict)]
    again = [d for d in docs if d.get("doc_type") == "funnel"][-1]
    assert again["n_reused"] == 8 and again["candidates_per_minute"] is None
    assert again["selected"] == funnel["selected"]


@pytest.mark.mlip
def test_funnel_dft_relax_ion_holds_the_relaxed_host(tmp_path):
    """funnel: {dft_relax: ion}: the second stage starts each selected minimum's ion on the stage's own relaxed
    host and moves only the ion; every adsorption document names where its ion ended."""
    camp = {
        "name": "vn_na_ion", "model": {"preset": "vn001_na", "size": "fast", "extra_vacuum_A": 0},
        "ion": "Na", "steps": ["relax", "static", "adsorption"], "engine": "mlip",
        "funnel": {"models": ["chgnet"], "random_starts": 0, "dft_relax": "ion"},
    }
    f = tmp_path / "ion.yaml"
    f.write_text(yaml.safe_dump(camp))
    root = run_campaign(f, runs_dir=tmp_path / "runs", log=False)
    docs = [d["output"] for d in json.loads((root / "store.json").read_text()) if isinstance(d.get("output"), dict)]
    host = next(d for d in docs if d.get("doc_type") == "calc" and d["label"] == "host" and d["step"] == "static")
    host_xyz = np.array([s["xyz"] for s in host["structure"]["sites"]])
    sites = {s.label for s in find_sites(Structure.from_dict(host["structure"]), "Na")}
    ads = [d for d in docs if d.get("doc_type") == "adsorption"]
    assert len(ads) >= 2
    for d in ads:
        xyz = np.array([s["xyz"] for s in d["structure"]["sites"]])
        assert np.allclose(xyz[:-1], host_xyz, atol=1e-6)  # the host did not move
        assert d["ended_at"] in sites or d["ended_at"].startswith("other-")


def test_agreement_with_a_minimum_only_the_second_model_found():
    """The union selection can keep a group only SevenNet-0 reached (seen on VS2 + Li): each model's agreement
    document compares that model on the groups it has, and does not fail on the others."""
    from hetero.flows.funnel import funnel_agreement_job

    groups = [
        {"label": "top-V", "e_min_eV": {"mlip:chgnet": -10.0, "mlip:sevennet": -11.0},
         "e_ads_bulk_eV": {"mlip:chgnet": -0.5, "mlip:sevennet": -0.6}},
        {"label": "hollow", "e_min_eV": {"mlip:chgnet": -9.9, "mlip:sevennet": -11.1},
         "e_ads_bulk_eV": {"mlip:chgnet": -0.4, "mlip:sevennet": -0.7}},
        {"label": "other-1", "e_min_eV": {"mlip:sevennet": -11.05}, "e_ads_bulk_eV": {"mlip:sevennet": -0.65}},
    ]
    doc = {"system": "S", "ion": "Li", "models": ["mlip:chgnet", "mlip:sevennet"], "groups": groups,
           "selected": ["top-V", "hollow", "other-1"]}
    ads = [{"site": s, "e_ads_bulk_eV": e, "e_total_eV": e - 20} for s, e in
           (("top-V", -0.30), ("hollow", -0.35), ("other-1", -0.40))]
    chgnet, sevennet = funnel_agreement_job.original(doc, ads)  # one document per model
    assert chgnet["model"] == "mlip:chgnet" and sevennet["model"] == "mlip:sevennet"
    assert chgnet["mlip_best"] == "top-V" and chgnet["dft_best"] == "other-1" and not chgnet["best_agrees"]
    assert chgnet["mlip_e_ads_bulk_eV"] == [-0.5, -0.4, None] and chgnet["spearman"] is None  # 2 comparable sites
    # SevenNet-0 has all three: best hollow (E -11.1) vs DFT's other-1; ranks -0.6/-0.7/-0.65 vs -0.30/-0.35/-0.40
    assert sevennet["mlip_best"] == "hollow" and not sevennet["best_agrees"]
    assert sevennet["spearman"] == pytest.approx(0.5)


def test_adsorption_doc_and_table_name_the_site_where_the_ion_ended(vn):
    """Na started on the bridge and relaxed onto top-N (as on VN(001) with PBE): the document and the table
    keep the start's label and say where the ion ended; an ion that stayed ends on its own site."""
    from hetero.flows.jobs import adsorption_job
    from hetero.table import build_table

    slab, sites = vn
    by_label = {s.label: s for s in sites}
    catalogue = [s.as_dict() for s in sites]
    host = {"structure": slab.as_dict(), "energy_eV": -100.0, "system": "VN(001)"}
    start = place_ion(slab, by_label["bridge"], "Na")
    docs = []
    for end in ("top-N", "bridge"):
        final = place_ion(slab, by_label[end], "Na")
        calc = {"structure": final.as_dict(), "energy_eV": -101.5, "provenance": {"engine": "gpaw"}}
        doc = adsorption_job.original(calc, host, "Na", "bridge", -1.0, None, len(final) - 1,
                                      start_cart=start.cart_coords[-1].tolist(), catalogue=catalogue)
        assert doc["site"] == "bridge" and doc["ended_at"] == end
        assert (doc["lateral_shift_A"] > 0.5) == (end != "bridge")
        docs.append(doc)
    table = build_table(docs)
    assert table[table.row_kind == "site"].ended_at.tolist() == ["top-N", "bridge"]


def test_neb_not_run_when_every_site_folds_into_one_minimum_is_said(tmp_path):
    """Two sites that relaxed onto one minimum give no path: the NEB step says so (the CLI prints it) instead of
    leaving a requested step silently out."""
    import json

    from hetero.builders import vn001_na
    from hetero.flows.adsorption import neb_from_best_site
    from hetero.io.store import steps_not_run
    from hetero.schemas import NOT_RUN_KEY

    slab, _ = vn001_na("fast")
    with_ion = slab.copy()
    with_ion.append("Na", with_ion.cart_coords[-1] + [0.0, 0.0, 2.6], coords_are_cartesian=True)
    moved = with_ion.copy()
    moved.translate_sites([len(moved) - 1], [0.2, 0.0, 0.0], frac_coords=False)  # within 0.5 A: the same minimum
    docs = [{"site": "top-V", "e_total_eV": -10.0, "structure": with_ion.as_dict()},
            {"site": "hollow", "e_total_eV": -9.9, "structure": moved.as_dict()}]
    out = neb_from_best_site.original(docs, None, {}, [], "VN", "Na", str(tmp_path))
    assert out["path"] is None and out[NOT_RUN_KEY].startswith("neb: ") and "hollow" in out[NOT_RUN_KEY]
    store = tmp_path / "store.json"
    store.write_text(json.dumps([{"uuid": "a", "index": 1, "output": out, "name": "select NEB path"}]))
    assert steps_not_run(store) == [out[NOT_RUN_KEY]]


@pytest.mark.mlip
def test_a_relaxation_that_overlaps_atoms_is_kept_out_of_every_group_and_of_dft(tmp_path, vn, monkeypatch):
    """SevenNet-0 once put Li 0.41 A from an O of the V2O5/Cu2V2O7 junction, 25 eV below every other minimum: a broken
    relaxation that won the ranking and was sent to DFT. Here one real CHGNet result is broken the same way (the Na
    moved onto an N, 50 eV lower): it must be named, kept out of the groups, and never selected."""
    import dataclasses

    from hetero.flows import funnel as fn
    from hetero.schemas import plain_structure_dict

    real = fn._relax_all

    def one_broken(engine, structures, folders, tick=None, facts=None):
        out = real(engine, structures, folders, tick, facts)
        s = Structure.from_dict(out[0].structure)
        n = max((i for i, sp in enumerate(s.species) if sp.symbol == "N"), key=lambda i: s.cart_coords[i, 2])
        s.replace(len(s) - 1, "Na", s.cart_coords[n] + [0, 0, 0.3], coords_are_cartesian=True)
        out[0] = out[0].model_copy(update={"structure": plain_structure_dict(s), "energy_eV": out[0].energy_eV - 50})
        return out

    monkeypatch.setattr(fn, "_relax_all", one_broken)
    slab, sites = vn
    doc = fn.mlip_screen_job.original(slab, "Na", [dataclasses.asdict(s) for s in sites], "VN", str(tmp_path),
                                      {"models": ["chgnet"], "random_starts": 2}, with_hops=False)
    broken = [c for c in doc["candidates"] if c["unphysical"]]
    assert len(broken) == 1 and broken[0]["group"] == fn.UNPHYSICAL_GROUP
    assert broken[0]["unphysical"].startswith("N") and "Na" in broken[0]["unphysical"] and "0.30 A" in broken[0]["unphysical"]
    assert all(broken[0]["id"] not in g["members"] for g in doc["groups"])
    assert fn.UNPHYSICAL_GROUP not in doc["selected"] and len(doc["selected"]) >= 1
    assert all(c["unphysical"] is None for c in doc["candidates"] if c is not broken[0])


def test_relax_and_static_refuse_overlapping_atoms_before_running(tmp_path):
    from pymatgen.core import Lattice

    from hetero.engines import get_engine
    from hetero.engines.base import UnphysicalStructureError

    s = Structure(Lattice.cubic(8.0), ["Li", "O"], [[0, 0, 0], [0, 0, 0.3 / 8]])
    for engine in (get_engine("gpaw", "fast"), get_engine("vasp")):  # the DFT engines; the funnel checks MLIP results
        with pytest.raises(UnphysicalStructureError, match=r"static refused: atoms Li0-O1 0.30 A \(0.15 x"):
            engine.static(s, tmp_path / engine.name)
        with pytest.raises(UnphysicalStructureError, match="relax refused"):
            engine.relax(s, tmp_path / engine.name)
        assert not (tmp_path / engine.name).exists() or not any((tmp_path / engine.name).rglob("task.json"))
