"""workflows/na_vn001.yaml with only `engine: vasp` added, run the way a user runs it (`hetero run --report`) on
MOCK VASP: tests/mock_vasp.py checks the INCAR/KPOINTS of every step it is given and writes outputs built from
the real VASP outputs in ../shared/reference/vasp with the input structure transplanted (see its docstring).

The mock's numbers are not physics, so nothing here asserts a value: the tests assert behaviour - every step
kind reaches VASP with the tags it needs, the engine's parsers, custodian's validators and handlers, the flows,
table, figures and report all run on VASP-format files, finished work is reused, and a run whose INCAR the
"VASP" rejects exits 1 naming the job.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from hetero.campaigns import load_campaign, run_folder
from hetero.table import build_table, iter_documents
from _refdata import MOCK_VASP, mock_vasp_env, reference_vasp_dir, run_hetero

ROOT = Path(__file__).resolve().parents[1]
NA_VN = ROOT / "workflows" / "na_vn001.yaml"
SITES = {"bridge", "hollow", "top-V", "top-N"}
# na_vn001 on VASP: host + 4 sites relaxed, their statics (each with its non-SCF DOS), two CDD fragments per
# site, the bulk Na reference (cell relax + static), the isolated atom, one CI-NEB
EXPECTED_CALLS = {"relax-slab": 5, "relax-bulk": 1, "static-slab": 5, "static-bulk": 1, "static-atom": 1,
                  "static-fragment": 8, "dos": 5, "neb": 1}


def _calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    ref = reference_vasp_dir()
    if ref is None:
        pytest.fail("reference VASP outputs not found: set HETERO_SHARED=/path/to/shared or clone beside ../shared")
    tmp = tmp_path_factory.mktemp("vasp_mock")
    camp_file = tmp / "na_vn001.yaml"
    # the committed campaign, unchanged apart from the engine line
    camp_file.write_text(NA_VN.read_text() + "engine: vasp\n")
    ours, theirs = load_campaign(camp_file).model_dump(), load_campaign(NA_VN).model_dump()
    assert ours.pop("engine") == "vasp" and theirs.pop("engine") == "gpaw" and ours == theirs
    env = mock_vasp_env(ref, tmp / "calls.jsonl")
    root = run_folder(load_campaign(camp_file), "fast", tmp / "runs")
    # first every site's E_ads with the CDD fragments and the CI-NEB put off, then the full run in the same folder
    first = run_hetero(["run", str(camp_file), "--runs-dir", str(tmp / "runs"), "--skip-step", "cdd",
                        "--skip-step", "neb"], env)
    first_calls = _calls(tmp / "calls.jsonl")
    first_record = json.loads((root / "campaign.json").read_text())
    first_table = build_table(root)
    # then the same campaign asking a CDD of the lowest-energy site only (cdd_sites: best), NEB still put off
    best_file = tmp / "best" / "na_vn001.yaml"
    best_file.parent.mkdir()
    best_file.write_text(camp_file.read_text() + "cdd_sites: best\n")
    best = run_hetero(["run", str(best_file), "--runs-dir", str(tmp / "runs"), "--skip-step", "neb"], env)
    best_calls = _calls(tmp / "calls.jsonl")
    best_table = build_table(root)
    t0 = time.time()
    res = run_hetero(["run", str(camp_file), "--runs-dir", str(tmp / "runs"), "--report"], env)
    wall = time.time() - t0
    return {"camp": camp_file, "env": env, "log": tmp / "calls.jsonl", "root": root, "res": res, "wall_s": wall,
            "first": first, "first_calls": first_calls, "first_record": first_record, "first_table": first_table,
            "best": best, "best_calls": best_calls, "best_table": best_table}


def test_skip_step_puts_the_cdd_and_neb_off_and_the_full_run_adds_only_them(run):
    first = run["first"]
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "put off: cdd, neb" in " ".join(first.stdout.split())
    kinds = Counter(c["kind"] for c in run["first_calls"])
    assert kinds == {k: n for k, n in EXPECTED_CALLS.items() if k not in ("static-fragment", "neb")}
    assert run["first_record"]["steps_deferred"] == ["cdd", "neb"]
    assert "cdd" not in run["first_record"]["steps_run"] and "bader" in run["first_record"]["steps_run"]
    sites = run["first_table"][run["first_table"]["row_kind"] == "site"]
    assert set(sites["site"]) == SITES and np.isfinite(sites["e_ads_eV"].astype(float)).all()
    assert "ion_cdd_transferred_e" not in sites or sites["ion_cdd_transferred_e"].isna().all()
    assert sites["steps_deferred"].str.startswith("cdd, neb").all()
    # the later runs sent VASP only what was put off: the totals are those of one full run
    # (test_campaign_finishes_...), and no static ran twice
    later = Counter(c["kind"] for c in _calls(run["log"])[len(run["first_calls"]):])
    assert later == {"static-fragment": EXPECTED_CALLS["static-fragment"], "neb": EXPECTED_CALLS["neb"]}
    assert "steps_deferred" not in build_table(run["root"]).columns


def test_cdd_sites_best_runs_one_site_cdd_on_the_lowest_energy_site_and_all_adds_the_rest(run):
    best = run["best"]
    assert best.returncode == 0, best.stdout[-3000:] + best.stderr[-3000:]
    # two fragment statics (host frozen at the site geometry, lone Na) instead of eight
    added = Counter(c["kind"] for c in run["best_calls"][len(run["first_calls"]):])
    assert added == {"static-fragment": 2}
    df = run["best_table"]
    sites = df[(df["row_kind"] == "site") & (df["e_ads_reference"] == "bulk metal")].set_index("site")
    with_cdd = sites[sites["ion_cdd_transferred_e"].astype(float).notna()]
    # one reference: the lowest E_ads is the lowest site energy
    assert list(with_cdd.index) == [sites["e_ads_eV"].astype(float).idxmin()], sites[["e_ads_eV", "ion_cdd_transferred_e"]]
    # the full run (cdd_sites: all) then added exactly the other three sites' fragments and the NEB
    full = Counter(c["kind"] for c in _calls(run["log"])[len(run["best_calls"]):])
    assert full == {"static-fragment": EXPECTED_CALLS["static-fragment"] - 2, "neb": EXPECTED_CALLS["neb"]}


def test_skip_step_of_the_chain_itself_is_refused_naming_the_deferrable_steps(run, tmp_path):
    bad = run_hetero(["run", str(run["camp"]), "--runs-dir", str(tmp_path / "runs"), "--skip-step", "static"],
                     run["env"])
    out = " ".join(bad.stdout.split())
    assert bad.returncode == 2 and "--skip-step ['static']" in out and "cdd" in out, out[-1500:]
    assert not (tmp_path / "runs").exists()


def test_campaign_finishes_and_vasp_saw_every_step_with_its_tags(run):
    res = run["res"]
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "done: every job finished" in res.stdout and (run["root"] / "report" / "index.html").exists()
    calls = _calls(run["log"])
    assert Counter(c["kind"] for c in calls) == EXPECTED_CALLS
    assert all(c["checked"] and not c["problems"] for c in calls)
    checked = {kind: set().union(*(c["checked"] for c in calls if c["kind"] == kind)) for kind in EXPECTED_CALLS}
    assert {"ISIF = 2", "LDIPOL = True, IDIPOL = 3 (asymmetric slab)", "k_z = 1 (vacuum along c)"} <= checked["relax-slab"]
    assert "ISIF = 3" in checked["relax-bulk"]
    assert {"LAECHG = True", "LVHAR = True", "LDIPOL = True, IDIPOL = 3 (one side differs)"} <= checked["static-slab"]
    assert {"ISPIN = 2 (isolated atom)", "1x1x1 mesh (isolated atom)"} <= checked["static-atom"]
    assert "ISPIN = 2 (one-atom fragment)" in checked["static-fragment"]
    assert {"LORBIT = 11", "CHGCAR of the static present", "k_z = 1 (vacuum along c)"} <= checked["dos"]
    assert {"IOPT set", "LCLIMB = True", "IBRION = 3, POTIM = 0 (VTST optimiser)",
            "IMAGES = 1 moving image folders"} <= checked["neb"]
    print(f"mock VASP campaign: {len(calls)} VASP runs, hetero run --report took {run['wall_s']:.0f} s")


def test_table_has_every_site_both_references_and_the_barrier(run):
    assert run["res"].returncode == 0
    df = build_table(run["root"])
    assert (run["root"] / "table" / "screening.csv").exists()
    sites = df[df["row_kind"] == "site"]
    assert set(sites["site"]) == SITES and (sites["engine"] == "vasp").all()
    assert set(zip(sites["site"], sites["e_ads_reference"])) == {(s, r) for s in SITES
                                                                 for r in ("bulk metal", "isolated atom")}
    assert np.isfinite(sites["e_ads_eV"].astype(float)).all()
    # every density-based column of every site is filled from the VASP files (Bader on AECCAR0+AECCAR2,
    # non-SCF DOS, CDD from the fragments' CHGCARs, work function from LOCPOT)
    for col in ("ion_bader_charge_e", "site_dos_at_fermi", "ion_cdd_transferred_e"):
        assert np.isfinite(sites[col].astype(float)).all(), col
    wf = sites[["site_work_function_top_eV", "site_work_function_bottom_eV"]].astype(float)
    assert np.isfinite(wf).any(axis=1).all()
    (path,) = df[df["row_kind"] == "path"].itertuples()
    assert np.isfinite(path.barrier_eV) and path.barrier_eV >= 0 and path.status == "ok"
    assert set(path.path.split("->")) <= SITES
    assert not df["status"].astype(str).str.contains("no output").any()


def test_documents_say_how_vasp_ran(run):
    assert run["res"].returncode == 0
    docs: dict[str, list[dict]] = {}
    for d in iter_documents(run["root"] / "store.json"):
        out = d.get("output") if "output" in d else d
        if isinstance(out, dict) and "doc_type" in out:
            docs.setdefault(out["doc_type"], []).append(out)
    assert {d["label"] for d in docs["bader"]} == {"host"} | {f"Na@{s}" for s in SITES}
    for b in docs["bader"]:
        assert b["method"].startswith("Bader basins of the reference density (AECCAR0 + AECCAR2)")
        # the mock normalises each core on the grid: every basin must hold exactly Z - ZVAL of AECCAR0
        assert b["core_check"]["ok"] and set(b["core_check"]["expected"]) <= {2.0, 4.0, 10.0}  # N, Na_pv, V_sv
    for d in docs["dos"]:
        assert d["provenance"]["settings"]["dos"]["incar"]["ICHARG"] == 11
    (neb,) = docs["neb"]
    assert "VTST" in neb["method"] and neb["climbing"] and neb["converged"]
    # the engine's spline is relative to the first image (NebResult), so the barrier is the band's own maximum
    assert neb["spline_e_eV"][0] == pytest.approx(0.0, abs=1e-9) and neb["energies_eV"][0] == 0.0
    assert neb["barrier_eV"] == pytest.approx(max(neb["spline_e_eV"])) and neb["barrier_eV"] >= max(neb["energies_eV"]) - 1e-6
    statics = [d for d in docs["calc"] if d["step"] == "static"]
    # the outputs say they came from the mock (vasprun.xml's generator), never from VASP
    assert statics and all("mock_vasp" in d["provenance"]["engine_version"] for d in statics)
    atom = next(d for d in statics if d["system"] == "Na-atom")
    assert atom["magmom_total"] == pytest.approx(1.0)  # ISPIN 2, read from the OUTCAR


def test_rerun_reuses_every_vasp_run_and_a_rejected_incar_fails_naming_the_job(run):
    assert run["res"].returncode == 0
    env, log, camp = run["env"], run["log"], str(run["camp"])
    runs = str(run["root"].parent)
    n = len(_calls(log))
    again = run_hetero(["run", camp, "--runs-dir", runs], env)
    assert again.returncode == 0, again.stdout[-2000:]
    assert len(_calls(log)) == n  # every VASP folder holds its result: nothing is sent to VASP again
    # the isolated atom again, and this time the "VASP" requires a tag its INCAR lacks (a VASP abort)
    (atom,) = list((run["root"] / "Na-atom" / "reference").glob("static-*"))
    shutil.rmtree(atom)
    broken = run_hetero(["run", camp, "--runs-dir", runs], {**env, "MOCK_VASP_REQUIRE": "static-atom:ISYM=0"})
    out = " ".join(broken.stdout.split())
    assert broken.returncode == 1, broken.stdout[-2000:]
    assert "failed: static Na atom" in out and "INCAR check failed" in out and "ISYM = 0" in out
    assert "skipped (a parent failed): E_ads Na@top-V" in out
    calls = _calls(log)
    assert len(calls) == n + 1 and calls[-1]["kind"] == "static-atom" and calls[-1]["problems"]
    assert json.loads((run["root"] / "run_summary.json").read_text())["failed"][0]["job"] == "static Na atom"
    fixed = run_hetero(["run", camp, "--runs-dir", runs], env)
    assert fixed.returncode == 0, fixed.stdout[-2000:]
    assert len(_calls(log)) == n + 2


# ------------------------------------------------------------------ the mock's checks bite
@pytest.fixture(scope="module")
def dry_folders(tmp_path_factory) -> dict[str, Path]:
    """The first-round input folders of the same campaign, written by the dry run (no VASP)."""
    from hetero.campaigns import make_flow
    from hetero.dryrun import dry_run_flow

    tmp = tmp_path_factory.mktemp("vasp_mock_dry")
    camp = load_campaign(NA_VN)
    camp.engine = "vasp"
    root = run_folder(camp, camp.preset, tmp / "runs")
    root.mkdir(parents=True)
    report = dry_run_flow(make_flow(camp, camp.preset, root)[0])
    assert not report.failed, report.text()
    return {w["job"]: Path(w["folder"]) for w in report.written}


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path.name} has no '{old}'"
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize("job, file, old, new, complaint", [
    ("relax host", None, None, None, None),
    ("relax host", "INCAR", "ISIF = 2", "ISIF = 3", "ISIF = 2"),
    ("relax host", "INCAR", "LDIPOL = True", "", "LDIPOL = True, IDIPOL = 3 (asymmetric slab)"),
    ("relax host", "KPOINTS", "3 3 1", "3 3 3", "k_z = 1 (vacuum along c)"),
    ("relax Na bulk metal (cell)", "INCAR", "ISIF = 3", "ISIF = 2", "ISIF = 3"),
    ("static Na atom", "INCAR", "ISPIN = 2", "ISPIN = 1", "ISPIN = 2 (isolated atom)"),
])
def test_mock_rejects_an_input_a_step_must_not_have(dry_folders, tmp_path, job, file, old, new, complaint):
    folder = tmp_path / "run"
    shutil.copytree(dry_folders[job], folder)
    if file:
        _edit(folder / file, old, new)
    env = {k: v for k, v in os.environ.items() if k != "MOCK_VASP_REQUIRE"}
    res = subprocess.run([sys.executable, str(MOCK_VASP)], cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    if complaint is None:
        assert res.returncode == 0, res.stdout + res.stderr
        assert "reached required accuracy" in res.stdout and (folder / "vasprun.xml").exists()
    else:
        assert res.returncode == 1 and "INCAR check failed" in res.stdout and complaint in res.stdout, res.stdout
        assert not (folder / "vasprun.xml").exists()  # an aborted VASP leaves no result
