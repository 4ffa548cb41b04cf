"""Dry run of the seed campaigns on VASP: every input folder that can be written before anything runs, the
jobs that wait for earlier results, no POTCARs and no VASP needed. The campaign files are the committed
ones with only `engine: vasp`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("atomate2")

from pymatgen.core import Structure  # noqa: E402
from pymatgen.io.vasp import Incar, Kpoints  # noqa: E402

from hetero.campaigns import build_host, load_campaign, make_flow, model_facts, run_folder  # noqa: E402
from hetero.dryrun import dry_run_flow  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "workflows"
SEEDS = ["na_vn001", "vs2_v2co2_li", "v2o5_cu2v2o7_li", "v5s8_sb2s3_k"]


@pytest.fixture(autouse=True)
def _no_vasp(monkeypatch):
    from pymatgen.core import SETTINGS

    monkeypatch.delenv("PMG_VASP_PSP_DIR", raising=False)
    monkeypatch.setitem(SETTINGS, "PMG_VASP_PSP_DIR", None)
    monkeypatch.delenv("HETERO_VASP_ALLOW_POTCAR_SPEC", raising=False)
    monkeypatch.setenv("HETERO_VASP_CMD", "/nonexistent/vasp_std")


def _written(report, job: str) -> Path:
    (w,) = [w for w in report.written if w["job"] == job]
    return Path(w["folder"])


@pytest.mark.parametrize("seed", SEEDS)
def test_dry_run_writes_first_round_inputs(seed, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    camp = load_campaign(ROOT / f"{seed}.yaml")
    camp.engine = "vasp"
    camp.funnel = None  # every site as its own VASP folder now (a funnel picks its DFT sites after its MLIP stage)
    root = run_folder(camp, camp.preset, tmp_path / "runs")
    root.mkdir(parents=True)
    flow, _ = make_flow(camp, camp.preset, root)
    report = dry_run_flow(flow, root / "dry_run.json")
    assert not report.failed, report.text()
    slab, record = build_host(camp, camp.model.size or "fast")
    facts = model_facts(record, slab)

    host = _written(report, "relax host")
    inc = Incar.from_file(host / "INCAR")
    assert inc["ISIF"] == 2 and inc["IBRION"] == 2 and inc["NSW"] > 0  # slab: the vacuum axis never relaxes
    # D3(BJ) exactly on the van der Waals models, or where the campaign sets it (V2O5, Sb2S3 junctions)
    want_d3 = facts.van_der_waals or camp.overrides.get("dispersion") == "d3bj"
    assert (inc.get("IVDW") == 12) == want_d3
    assert ("IDIPOL" in inc) == facts.asymmetric and (inc.get("LDIPOL", False) is True) == facts.asymmetric
    assert Kpoints.from_file(host / "KPOINTS").kpts[0][2] == 1
    assert (host / "POTCAR.spec").exists() and not (host / "POTCAR").exists() and not (host / "vasprun.xml").exists()
    assert len(Structure.from_file(host / "POSCAR")) == len(slab)
    # no POTCARs: ENCUT is the preset's and the INCAR says the 1.3 x ENMAX check waits for them
    assert "ENMAX of the POTCARs" in (host / "INCAR").read_text() and "waits for POTCARs" in report.text()
    moms = camp.overrides.get("magmoms")
    if moms:  # the Cu2V2O7 and V5S8 campaigns state their starting moments: VASP gets them, not MP's V 5 muB
        species = [sp.symbol for sp in Structure.from_file(host / "POSCAR").species]
        assert inc["ISPIN"] == 2 and {e for e in species if e in moms} == set(moms)
        assert all(m == moms[e] for e, m in zip(species, inc["MAGMOM"]) if e in moms)

    sites = [w for w in report.written if w["job"].startswith(f"relax {camp.ion}@")]
    assert sites, report.text()
    for w in sites:  # an ion on one side: the dipole correction is on
        assert Incar.from_file(Path(w["folder"]) / "INCAR")["IDIPOL"] == 3

    atom = _written(report, f"static {camp.ion} atom")
    inc = Incar.from_file(atom / "INCAR")
    assert inc["ISPIN"] == 2 and inc["MAGMOM"] == [1.0] and Kpoints.from_file(atom / "KPOINTS").kpts[0] == (1, 1, 1)
    bulk = _written(report, f"relax {camp.ion} bulk metal (cell)")
    assert Incar.from_file(bulk / "INCAR")["ISIF"] == 3

    waits = {w["job"]: w["waits_for"] for w in report.waiting}
    assert waits["static host"] == ["relax host"] and ("select NEB path" in waits) == ("neb" in camp.steps)
    saved = json.loads((root / "dry_run.json").read_text())
    assert len(saved["written"]) == len(report.written)


def test_second_dry_run_rewrites_the_same_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    camp = load_campaign(ROOT / "na_vn001.yaml")
    camp.engine = "vasp"
    root = run_folder(camp, camp.preset, tmp_path / "runs")
    root.mkdir(parents=True)
    first = dry_run_flow(make_flow(camp, camp.preset, root)[0])
    second = dry_run_flow(make_flow(camp, camp.preset, root)[0])
    assert sorted(w["folder"] for w in first.written) == sorted(w["folder"] for w in second.written)
    assert not any(Path(w["folder"], "result.json").exists() for w in second.written)
