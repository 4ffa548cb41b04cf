"""The README's first command, minus the set-up: `hetero run workflows/demo.yaml --report` with real GPAW.

One run (tests/conftest.py `demo_run`, shared with tests/test_chain_gpaw.py; HETERO_CORES as set, else 2)
feeds every assertion: the progress lines, the last lines (report path, next command), the physics of every
step, the table, figures and report, and that a secret in the environment (a database URI with a password)
appears in none of the outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gpaw")

pytestmark = pytest.mark.dft
ROOT = Path(__file__).resolve().parents[1]
from conftest import DEMO_SECRET as SECRET  # noqa: E402


@pytest.fixture(scope="module")
def demo(demo_run):
    return demo_run  # tests/conftest.py: one run of the README command per session


@pytest.fixture(scope="module")
def docs(demo):
    from hetero.io.store import load_run

    assert demo["rc"] == 0, demo["out"][-3000:]
    return load_run(demo["root"])


def test_progress_lines_and_last_lines(demo, docs):
    summary = demo["summary"]
    assert summary["failed"] == [] and summary["skipped"] == []
    done = [ln for ln in demo["out"].splitlines() if ln.startswith("done [")]
    assert len(done) == summary["jobs_finished"]
    assert all("elapsed" in ln for ln in done)
    if not all("(reused)" in ln or "estimating" in ln for ln in done):  # some DFT ran in this invocation
        assert "left" in done[-1] and sum("left" in ln for ln in done) >= len(done) // 2
    last = [ln for ln in demo["out"].splitlines() if ln.strip()][-3:]
    report = demo["root"] / "report" / "index.html"
    assert last[1] == f"report:  {report}" and report.stat().st_size > 10_000
    assert "next:" in last[2] and "workflows/na_vn001.yaml" in last[2]


def test_every_step_ran_with_real_dft(docs):
    calcs = docs.of("calc")
    assert {(d["label"], d["step"]) for d in calcs} >= {
        ("host", "relax"), ("host", "static"), ("Na@top-V", "relax"), ("Na@hollow", "static"), ("reference", "relax")}
    assert all(d["provenance"]["engine"] == "gpaw" and (d["provenance"]["wall_s"] or 0) > 0 for d in calcs)
    assert {d["site"] for d in docs.of("adsorption")} == {"top-V", "hollow"}
    assert len(docs.of("cdd")) == 2 and len(docs.of("neb")) == 1
    assert {d["label"] for d in docs.of("bader")} == {"host", "Na@top-V", "Na@hollow"}


def test_physics_is_sane(docs):
    for d in docs.of("adsorption"):
        assert d["e_ads_atom_eV"] < 0, d["site"]  # Na binds to VN(001)
        cohesive = d["mu_atom_eV"] - d["mu_bulk_eV"]  # Na's cohesive energy: PBE ~1.1 eV, coarse settings here
        assert 0.7 < cohesive < 1.5
        assert 1.5 < d["height_A"] < 4.0
    host_dos = next(d for d in docs.of("dos") if d["label"] == "host")
    assert host_dos["band_gap_eV"] == 0 and host_dos["dos_at_fermi"] > 1  # VN(001) is a metal
    for d in docs.of("bader"):
        if d["label"].startswith("Na@"):
            assert 0.05 < d["fragment_charge"]["ion"] < 1.0  # Na gives part of its 3s electron
    for d in docs.of("cdd"):
        assert abs(d["integral_e"]) < 1e-3 and d["transferred_e"] < 0
    neb = docs.of("neb")[0]
    assert np.isfinite(neb["barrier_eV"]) and 0 <= neb["barrier_eV"] < 1.5
    wf = {d["label"]: d for d in docs.of("work_function")}
    assert 3.0 < wf["host"]["work_function_top_eV"] < 6.0
    # Na donates charge to the surface: the Na side's work function drops below the bare surface's
    assert wf["Na@hollow"]["work_function_top_eV"] < wf["host"]["work_function_top_eV"]


def test_table_figures_report(demo):
    import pandas as pd

    table = pd.read_csv(demo["root"] / "table" / "screening.csv")
    ads = table[table["e_ads_eV"].notna()]
    assert len(ads) == 4 and set(ads["e_ads_reference"]) == {"bulk metal", "isolated atom"}
    assert (table["status"] == "ok").all(), table[table["status"] != "ok"][["system", "status"]]
    pngs = list((demo["root"] / "figures").glob("*.png"))
    assert len(pngs) >= 5
    html = (demo["root"] / "report" / "index.html").read_text()
    assert "top-V" in html and "hollow" in html


def test_no_secret_in_outputs(demo):
    leaks = [p for p in demo["root"].rglob("*") if p.is_file() and p.suffix not in (".npz", ".png", ".pdf", ".traj")
             and SECRET in p.read_text(errors="replace")]
    assert leaks == [] and SECRET not in demo["out"]
