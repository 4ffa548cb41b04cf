"""workflows/na_vn001.yaml, unchanged, on GPAW.

The file's whole chain on GPAW (17 atoms, four sites, both references, a 20-step CI-NEB) costs 45-85 min on
2 cores: more than CI can give one test (it pushed CI past its limit). Its real run is committed instead
(examples/na_vn001_fast: `hetero run workflows/na_vn001.yaml --preset fast` on a fresh clone), and the same flow
code runs end to end on real GPAW in tests/test_demo.py (the README command, 8 atoms). Here, without any SCF:
every GPAW task of the file's flow gets the file's own settings, and today's reader rebuilds the committed run's
table with all four sites on both references.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from jobflow import Flow
from pymatgen.core import Structure

from hetero.campaigns import load_campaign, make_flow
from hetero.engines.base import ModelFacts
from hetero.flows.jobs import RelaxMaker, StaticMaker

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN = ROOT / "workflows" / "na_vn001.yaml"
COMMITTED = ROOT / "examples" / "na_vn001_fast"


def _jobs(flow):
    for j in flow.jobs:
        yield from (_jobs(j) if isinstance(j, Flow) else [j])


def _gpaw_tasks(preset: str) -> dict[str, dict]:
    """GPAW's own settings for every relaxation and static of the file's flow, by job name. A static's input is
    its relaxation's output, which has the relaxation's input cell (all that k-points and spin depend on)."""
    flow, _ = make_flow(load_campaign(CAMPAIGN), preset, Path("/nonexistent/na_vn001"))
    jobs = list(_jobs(flow))
    inputs = {j.name.split(" ", 1)[1].removesuffix(" (cell)"): j.function_args[0] for j in jobs if j.name.startswith("relax ")}
    tasks = {}
    for j in jobs:
        maker = getattr(j.function, "__self__", None)
        if not isinstance(maker, (RelaxMaker, StaticMaker)):
            continue
        structure = j.function_args[0]
        if not isinstance(structure, Structure):
            structure = inputs[j.name.split(" ", 1)[1]]
        kind = "relax" if isinstance(maker, RelaxMaker) else "static"
        eng = maker.engine
        assert eng.name == "gpaw"
        resolved = eng.resolve(structure, ModelFacts(**maker.facts))
        tasks[j.name] = {"gpaw": eng.translate(resolved, structure, kind), "sources": resolved.sources,
                         "engine": eng, "structure": structure, "resolved": resolved}
    return tasks


def test_the_files_overrides_reach_every_gpaw_task():
    """3x3x1 k-points and spin off come from the file (source 'user'), the cutoff from the preset, the
    one-image 20-step CI-NEB from the file's neb block; the references follow their own rules."""
    tasks = _gpaw_tasks("demo")
    slab_jobs = [n for n in tasks if n.endswith(" host") or "Na@" in n]
    assert len(slab_jobs) == 2 * 5  # relax + static of the host and of the four sites
    for name in slab_jobs:
        t = tasks[name]
        assert len(t["structure"]) in (16, 17), name  # the file's sqrt2 x sqrt2 surface cell, not the demo's 8 atoms
        assert t["gpaw"]["kpts"] == [3, 3, 1] and t["sources"]["kpoints"].startswith("user"), name
        assert t["gpaw"]["spinpol"] is False and t["sources"]["spin"] == "user", name
        assert t["gpaw"]["ecut_eV"] == 250 and t["sources"]["cutoff_eV"] == "preset", name
        assert t["gpaw"]["dipole_correction"] is True, name  # bottom planes fixed: an asymmetric slab
    atom = tasks["static Na atom"]["gpaw"]
    assert atom["kpts"] == [1, 1, 1] and atom["spinpol"] is True and atom["magmoms"] == {"Na": 1.0}
    assert tasks["relax Na bulk metal (cell)"]["gpaw"]["kpts"][2] > 1  # bulk: k along every axis
    # the file's neb block travels with the NEB job (the path is chosen at run time) and reaches GPAW's NEB task
    flow, _ = make_flow(load_campaign(CAMPAIGN), "demo", Path("/nonexistent/na_vn001"))
    select = next(j for j in _jobs(flow) if j.name == "select NEB path")
    neb_block = next(a for a in select.function_args if isinstance(a, dict) and "neb_steps" in a)
    assert neb_block == {"neb_images": 1, "neb_steps": 20, "neb_fmax_eV_A": 0.1}
    host = tasks["relax host"]
    eng = select.function_args[1]
    assert eng.as_dict() == host["engine"].as_dict()

    class Captured(Exception):
        pass

    def capture(task, *args):  # stands in for the run: what GPAW's NEB task would get
        raise Captured(task)

    eng._cached_or_run = capture
    with pytest.raises(Captured) as got:
        eng.neb([host["structure"]] * 3, [0.0, 0.0], "/nonexistent", ModelFacts(**select.function_args[2]), neb=neb_block)
    neb_task = got.value.args[0]
    assert neb_task["kind"] == "neb" and len(neb_task["images"]) == 3
    assert neb_task["settings"]["neb_steps"] == 20 and neb_task["settings"]["neb_fmax_eV_A"] == 0.1
    assert neb_task["settings"]["kpts"] == [3, 3, 1] and neb_task["settings"]["spinpol"] is False
    assert host["gpaw"]["relax_steps"] == 7  # the demo preset's


def test_committed_gpaw_run_of_the_file_reads_into_a_full_table():
    """The committed GPAW run of this file (fast preset): all four sites on both references, the density-based
    columns on every site, one NEB path; the physics signs hold."""
    import json

    from hetero.table import build_table

    info = json.loads((COMMITTED / "campaign.json").read_text())
    assert info["engine"] == "gpaw" and info["preset_used"] == "fast"
    # the committed run used this file's settings (only comments and later-added keys may differ)
    # (it predates the neutral spellings: kpts/spinpol then, kpoints_mesh/spin now)
    here = load_campaign(CAMPAIGN)
    assert info["overrides"]["kpts"] == here.overrides["kpoints_mesh"] == [3, 3, 1]
    assert info["overrides"]["spinpol"] is False and here.overrides["spin"] in (False, "off")
    assert info["neb"] == here.neb
    df = build_table(COMMITTED)
    sites = df[df["row_kind"] == "site"]
    assert set(sites["site"]) == {"top-V", "top-N", "bridge", "hollow"}
    assert set(sites["e_ads_reference"]) == {"bulk metal", "isolated atom"} and sites["e_ads_eV"].notna().all()
    atom = sites[sites["e_ads_reference"] == "isolated atom"].set_index("site")["e_ads_eV"]
    bulk = sites[sites["e_ads_reference"] == "bulk metal"].set_index("site")["e_ads_eV"]
    assert (atom < 0).all()  # a free Na atom binds to VN(001) on every site
    assert ((bulk - atom).between(0.7, 1.4)).all()  # Na's cohesive energy
    for col in ("ion_bader_charge_e", "ion_cdd_transferred_e", "site_dos_at_fermi"):
        assert sites[col].notna().all(), col
    assert (sites["ion_bader_charge_e"] > 0.3).all()  # Na gives up electrons
    assert (sites["engine"] == "gpaw").all()
    paths = df[df["row_kind"] == "path"]
    assert len(paths) == 1 and paths["barrier_eV"].iloc[0] >= 0
